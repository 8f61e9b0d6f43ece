// Mean activations over a probe set, the values a mean ablation of `cpiscope intervene` writes
// (InterventionJob.swift) and the mean baseline of `cpiscope attribute` (AttributionJob.swift).
import Instrumentation

/// Mean activations over a probe set, per position counted from the end of each prompt (mean ablation).
struct MeanActivations {
    /// hook → [position from end] → (sum, count) of the activation row
    private var sums: [HookPoint: [[Double]]] = [:]
    private var counts: [HookPoint: [Int]] = [:]

    init(_ recordings: [HookRecorder] = []) {
        for rec in recordings { add(rec) }
    }

    /// Adds one probe's recording (streaming: nothing of it is kept but the sums).
    mutating func add(_ rec: HookRecorder) {
        for (hook, t) in rec.tensors {
            let n = t.shape[0], width = t.count / max(n, 1)
            var s = sums[hook] ?? [], c = counts[hook] ?? []
            if s.count < n { s += [[Double]](repeating: [Double](repeating: 0, count: width), count: n - s.count); c += [Int](repeating: 0, count: n - c.count) }
            for pos in 0..<n {
                let e = n - 1 - pos
                for j in 0..<width { s[e][j] += Double(t.pointer[pos * width + j]) }
                c[e] += 1
            }
            sums[hook] = s
            counts[hook] = c
        }
    }

    /// The mean row of `hook` at `fromEnd` positions before a prompt's end, or nil when no probe is that long.
    func row(_ hook: HookPoint, fromEnd e: Int) -> [Float]? {
        guard let s = sums[hook], let c = counts[hook], e < s.count, c[e] > 0 else { return nil }
        return s[e].map { Float($0 / Double(c[e])) }
    }

    /// The mean at `fromEnd` positions before a prompt's end (the value to write: one head's d_head slice
    /// for `hook_z`), or nil when no probe is that long.
    func value(_ site: ActivationSite, fromEnd e: Int, dHead: Int) -> [Float]? {
        guard let row = row(InterventionJob.hook(site), fromEnd: e) else { return nil }
        if case let .head(_, h) = site { return Array(row[(h * dHead)..<((h + 1) * dHead)]) }
        return row
    }
}

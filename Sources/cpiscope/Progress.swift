// A progress line on stderr: redrawn in place on a terminal, one line per checkpoint otherwise
// (so logs stay readable). Shows checkpoint i/n, probe j/m, rate and ETA.
import Foundation
import ProbeRun

final class ProgressLine: ProbeJobProgress {
    private let tty = Terminal.stderrIsTTY
    private let quiet: Bool
    private var checkpoint = 0, checkpoints = 0, name = ""
    private let start = Date()
    private var probesDone = 0
    private var totalProbes = 0
    private var lastDraw = Date.distantPast

    /// What the inner counter counts ("probe", "intervention").
    private let unit: String

    /// --verbose: also print how the probes are grouped.
    var verbose = false

    func probeGroupsChosen(groupSize: Int, budgetBytes: Int, source: String) {
        guard verbose else { return }
        Terminal.error("probe groups: at most \(groupSize) probes (--batch), KV caches within \(budgetBytes >> 20) MiB \(source); recorded as probe_group_cache_bytes")
    }

    init(quiet: Bool, unit: String = "probe") {
        self.quiet = quiet
        self.unit = unit
    }

    func checkpointStarted(_ index: Int, of total: Int, name: String) {
        checkpoint = index; checkpoints = total; self.name = name
    }

    func probeFinished(_ index: Int, of total: Int) {
        probesDone += 1
        totalProbes = total * checkpoints
        guard tty, !quiet else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > 0.1 || index + 1 == total else { return }
        lastDraw = now
        let elapsed = now.timeIntervalSince(start)
        let rate = Double(probesDone) / max(elapsed, 1e-9)
        let remaining = Double(max(0, totalProbes - probesDone)) / max(rate, 1e-9)
        let line = String(format: "checkpoint %d/%d %@  %@ %d/%d  %.1f %@s/s  ETA %@",
                          checkpoint + 1, checkpoints, name, unit as NSString, index + 1, total, rate, unit as NSString, Self.clock(remaining))
        Terminal.flushOutput(); FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line).utf8))
    }

    func checkpointFinished(_ s: CheckpointSummary) { finished(name: s.name, skipped: s.skipped) }

    func finished(name: String, skipped: Bool) {
        guard !quiet else { return }
        let elapsed = Date().timeIntervalSince(start)
        let line = String(format: "checkpoint %d/%d %@ %@  (%.0f s elapsed)", checkpoint + 1, checkpoints, name,
                          (skipped ? "already complete" : "done") as NSString, elapsed)
        Terminal.flushOutput(); FileHandle.standardError.write(Data(((tty ? "\r\u{1B}[2K" : "") + line + "\n").utf8))
    }

    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "--:--" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

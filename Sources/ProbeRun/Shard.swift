// Shards of a probe or intervention job (`--shard I/N`, `--shard-by checkpoints|probes|interventions`)
// and the probe groups that both a single-process run and every probe shard measure: a probe is measured
// in the same group in either, so a merged file equals a single-process run bit for bit.
import Foundation
import Checkpoints
import HDF5Store
import ProbeKit

/// Which part of a job one process runs.
public struct ProbeShard: Sendable, Equatable, CustomStringConvertible {
    /// What a shard splits: checkpoints (probe, intervene, criticality), probe groups (probe only), the
    /// intervention list (intervene only) or the examples at scoring-batch boundaries (criticality only).
    public enum Axis: String, Sendable, CaseIterable {
        case checkpoints, probes, interventions, examples

        /// The file dimension this axis splits, and the root attribute holding the whole job's list of it.
        public var dimension: String {
            switch self {
            case .checkpoints: return RunSchema.Dim.checkpoint
            case .probes: return RunSchema.Dim.probe
            case .interventions: return InterventionSchema.Dim.intervention
            case .examples: return CriticalitySchema.Dim.example
            }
        }
        public var jobAttribute: String { "shard_job_\(rawValue)" }
    }
    /// 1-based, as written on the command line (`--shard 2/3`).
    public var index: Int
    public var count: Int
    public var axis: Axis

    public init(index: Int, count: Int, axis: Axis = .checkpoints) {
        self.index = index
        self.count = count
        self.axis = axis
    }

    /// Parses `I/N` (1 ≤ I ≤ N); nil when malformed.
    public init?(_ text: String, axis: Axis = .checkpoints) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (1...n).contains(i) else { return nil }
        self.init(index: i, count: n, axis: axis)
    }

    public var description: String { "\(index)/\(count)" }

    /// Shard I's part of `total` items in contiguous ranges, balanced by count (sizes differ by at most one;
    /// the first `total % N` shards take one more). Empty when N > total and I > total.
    public func range(of total: Int) -> Range<Int> {
        let base = total / count, extra = total % count
        let lower = (index - 1) * base + min(index - 1, extra)
        return lower..<(lower + base + (index <= extra ? 1 : 0))
    }

    /// `OUT.shard-I-of-N.h5` beside `output`.
    public func output(for output: URL) -> URL {
        let ext = output.pathExtension.isEmpty ? "h5" : output.pathExtension
        return output.deletingPathExtension().appendingPathExtension("shard-\(index)-of-\(count).\(ext)")
    }

    /// Root attributes of a shard file. `merge` reads them and keeps them out of the merged file.
    /// (`shard_job_interventions` only in intervention shards.)
    public static let attributeNames = [RunSchema.Attribute.shard, RunSchema.Attribute.shardBy] + Axis.allCases.map(\.jobAttribute)
}

extension ProbeJob {
    /// The probe groups of a job, in order: each dumped probe alone (its options differ); the rest in runs of
    /// at most `groupSize` consecutive probes whose KV caches (`cacheBytes(i)`) fit `cacheBudget` together.
    /// The one grouping rule: `run` measures these groups, and probe shards split between them.
    public static func probeGroups(count: Int, dumped: Set<Int>, groupSize: Int, cacheBudget: Int,
                                   cacheBytes: (Int) -> Int) -> [[Int]] {
        var groups: [[Int]] = []
        var batch: [Int] = []
        var batchBytes = 0
        func close() { if !batch.isEmpty { groups.append(batch) }; batch = []; batchBytes = 0 }
        for pi in 0..<count {
            if dumped.contains(pi) { close(); batch = [pi]; close(); continue }
            let bytes = cacheBytes(pi)
            if !batch.isEmpty && batchBytes + bytes > cacheBudget { close() }
            batch.append(pi)
            batchBytes += bytes
            if batch.count == groupSize { close() }
        }
        close()
        return groups
    }

    /// The bytes of one probe's KV cache: prompt + longest answer or generation, float32 keys and values.
    static func cacheBytes(_ p: TokenizedProbe, config c: ModelConfig, maxNewTokens: Int) -> Int {
        let positions = p.promptIDs.count + max(p.answerIDs.count, p.memoryAnswerIDs.count, maxNewTokens) + 1
        return 2 * c.layers * c.kvHeads * c.dHead * positions * MemoryLayout<Float>.stride
    }
}

// Shards of a trajectory job (`--shard I/N`, `--shard-by checkpoints|probes|interventions|examples`): which
// part of the job one process runs, split along the checkpoints (every job) or along the one other axis a
// job can split (probe groups, interventions, scoring batches). A merged file equals a single-process run
// bit for bit, because each job splits its second axis only where its own batching already cuts.
import Foundation
import HDF5Store

/// Which part of a job one process runs.
public struct JobShard: Sendable, Equatable, CustomStringConvertible {
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

        /// The units a shard of this axis takes whole (what an empty shard has none of).
        var units: String {
            switch self {
            case .checkpoints: return "checkpoints"
            case .probes: return "probe groups"
            case .interventions: return "interventions"
            case .examples: return "scoring batches"
            }
        }
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
    public static let attributeNames = [RunSchema.Attribute.shard, RunSchema.Attribute.shardBy] + Axis.allCases.map(\.jobAttribute)

    /// The root attributes of this shard's file: which part, along which axis, and the whole job's list of
    /// each axis the job has (`lists`, e.g. every checkpoint name and every probe id).
    public func attributes(jobLists lists: [(Axis, [String])]) -> [String: AttributeValue] {
        var a: [String: AttributeValue] = [RunSchema.Attribute.shard: .string(description), RunSchema.Attribute.shardBy: .string(axis.rawValue)]
        for (axis, names) in lists { a[axis.jobAttribute] = .strings(names) }
        return a
    }
}

/// The part of a job one process runs: a range of the checkpoints and, for a shard along the job's second
/// axis, a range of its units.
public struct JobPart: Sendable, Equatable {
    public var checkpoints: Range<Int>
    /// Indices into the job's units of the second axis (probe groups, interventions, scoring batches); nil: all.
    public var units: Range<Int>?

    /// The one shard switch of every job. `shard` nil: the whole job. A shard along the checkpoints takes its
    /// range of them and every unit; a shard along `axis` every checkpoint and its range of the units
    /// (`unitCount` is only asked for then). Any other axis is refused, naming `command`'s axes, and an empty
    /// part is an error (a shard with nothing to do would write a file that `merge` must reject later).
    public static func of(_ shard: JobShard?, checkpoints: Int, axis: JobShard.Axis, unitCount: () throws -> Int,
                          command: String) throws -> JobPart {
        guard let shard else { return JobPart(checkpoints: 0..<checkpoints, units: nil) }
        let part: JobPart
        let total: Int
        switch shard.axis {
        case .checkpoints:
            total = checkpoints
            part = JobPart(checkpoints: shard.range(of: checkpoints), units: nil)
        case axis:
            total = try unitCount()
            part = JobPart(checkpoints: 0..<checkpoints, units: shard.range(of: total))
        default:
            throw TrajectoryJobError.shardAxis(axis: shard.axis.rawValue, command: command, axes: [JobShard.Axis.checkpoints, axis].map(\.rawValue))
        }
        if part.checkpoints.isEmpty || part.units?.isEmpty == true {
            throw TrajectoryJobError.emptyShard(shard: shard.description, units: shard.axis.units, available: total)
        }
        return part
    }
}

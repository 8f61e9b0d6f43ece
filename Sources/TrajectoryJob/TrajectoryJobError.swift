// Errors every trajectory job can raise before or while it runs its checkpoints: the output path, the
// checkpoints' shapes, the tokenizer, the shard, and a failed write. Each names the file or checkpoint at
// fault; the hint says what to do. Job-specific errors stay with their jobs (ProbeRunError, CriticalityError).

public enum TrajectoryJobError: Error, CustomStringConvertible, Sendable, Equatable {
    case outputExists(path: String)
    case outputDirectoryMissing(path: String)
    case outputNotWritable(path: String)
    case mixedArchitectures(checkpoint: String, found: String, expected: String)
    case noTokenizer(checkpoint: String)
    case tokenizerMismatch(checkpoint: String, first: String)
    case shardAxis(axis: String, command: String, axes: [String])
    case emptyShard(shard: String, units: String, available: Int)
    case writeFailed(path: String, detail: String)

    public var description: String {
        switch self {
        case let .outputExists(p): return "\(p): output already exists"
        case let .outputDirectoryMissing(p): return "\(p): output folder does not exist"
        case let .outputNotWritable(p): return "\(p): output folder is not writable"
        case let .mixedArchitectures(c, f, e): return "\(c): checkpoint is \(f), but the trajectory's first checkpoint is \(e)"
        case let .noTokenizer(c): return "\(c): no tokenizer.json in the checkpoint, the trajectory folder or the base model"
        case let .tokenizerMismatch(c, f): return "\(c): its tokenizer.json differs from \(f)'s"
        case let .shardAxis(a, c, _): return "`cpiscope \(c)` cannot shard by \(a)"
        case let .emptyShard(s, units, n):
            return "shard \(s) holds no \(units) (the job has \(n) \(n == 1 ? String(units.dropLast(units.hasSuffix("ches") ? 2 : 1)) : units))"
        case let .writeFailed(p, d): return "\(p): write failed: \(d)"
        }
    }

    public var hint: String {
        switch self {
        case .outputExists: return "Pass --force to overwrite it, or --resume to finish an interrupted run."
        case .outputDirectoryMissing: return "Create the folder first, or choose another -o path."
        case .outputNotWritable: return "Choose an output path in a folder you can write to."
        case .mixedArchitectures: return "A trajectory holds checkpoints of one model; select a subset with --checkpoints."
        case .noTokenizer: return "Pass --tokenizer PATH (a tokenizer.json or a folder holding one)."
        case .tokenizerMismatch: return "Give every checkpoint the same tokenizer, or pass --tokenizer PATH."
        case let .shardAxis(_, c, axes): return "\(c) shards by \(axes.joined(separator: " or ")) (--shard-by)."
        case let .emptyShard(_, units, n):
            let more = units == "scoring batches" ? " (a smaller --batch-tokens makes more batches)"
                : units == "probe groups" ? " (a smaller --batch makes more groups)" : ""
            return "Split into at most \(n) shard\(n == 1 ? "" : "s") along the \(units)\(more)."
        case .writeFailed: return "Check free disk space and permissions; completed checkpoints are kept and --resume continues."
        }
    }
}

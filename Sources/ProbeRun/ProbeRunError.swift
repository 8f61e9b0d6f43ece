// Errors of the probe job. Each names the file, checkpoint, probe or field at fault.

public enum ProbeRunError: Error, CustomStringConvertible, Sendable {
    case promptTooLong(probeID: String, tokens: Int, limit: Int, byModel: Bool)
    case outputExists(path: String)
    case outputDirectoryMissing(path: String)
    case outputNotWritable(path: String)
    case mixedArchitectures(checkpoint: String, found: String, expected: String)
    case noTokenizer(checkpoint: String)
    case tokenizerMismatch(checkpoint: String, detail: String)
    case resumeMismatch(path: String, detail: String)
    case notARun(path: String, detail: String)
    case writeFailed(path: String, detail: String)
    case emptyProbeSet(path: String)
    case badDumpLayer(layer: Int, layers: Int)
    case shardWithDump
    case emptyShard(shard: String)
    case shardAxis(axis: String, command: String)

    public var description: String {
        switch self {
        case let .promptTooLong(id, n, limit, byModel):
            return "probe '\(id)': prompt is \(n) tokens, over the \(byModel ? "model's position limit" : "--max-tokens limit") of \(limit)"
        case let .outputExists(p): return "\(p): output already exists"
        case let .outputDirectoryMissing(p): return "\(p): output folder does not exist"
        case let .outputNotWritable(p): return "\(p): output folder is not writable"
        case let .mixedArchitectures(c, f, e): return "\(c): checkpoint is \(f), but the trajectory's first checkpoint is \(e)"
        case let .noTokenizer(c): return "\(c): no tokenizer.json in the checkpoint or the trajectory folder"
        case let .tokenizerMismatch(c, d): return "\(c): \(d)"
        case let .resumeMismatch(p, d): return "\(p): cannot resume: \(d)"
        case let .notARun(p, d): return "\(p): not a cpiscope run: \(d)"
        case let .writeFailed(p, d): return "\(p): write failed: \(d)"
        case let .emptyProbeSet(p): return "\(p): the probe set holds no probes"
        case let .badDumpLayer(l, n): return "--dump layer \(l) is outside the model's layers 0–\(n - 1)"
        case .shardWithDump: return "--shard-by probes cannot be combined with --dump"
        case let .emptyShard(s): return "shard \(s) holds no checkpoints, probes or interventions"
        case let .shardAxis(a, c): return "`cpiscope \(c)` cannot shard by \(a)"
        }
    }

    public var hint: String {
        switch self {
        case .promptTooLong(_, _, _, let byModel):
            return byModel ? "Shorten the context, or select probes that fit the model's context window (for rotary models, --max-tokens N runs past it)."
                : "Raise --max-tokens, or shorten the probe's context."
        case .outputExists: return "Pass --force to overwrite it, or --resume to finish an interrupted run."
        case .outputDirectoryMissing: return "Create the folder first, or choose another -o path."
        case .outputNotWritable: return "Choose an output path in a folder you can write to."
        case .mixedArchitectures: return "A trajectory holds checkpoints of one model; select a subset with --checkpoints."
        case .noTokenizer: return "Pass --tokenizer PATH (a tokenizer.json or a folder holding one)."
        case .tokenizerMismatch: return "Give every checkpoint the same tokenizer, or pass --tokenizer PATH."
        case .resumeMismatch: return "Resume with the same probes, template and checkpoints, or start again with --force."
        case .notARun: return "Pass a file written by `cpiscope probe`."
        case .writeFailed: return "Check free disk space and permissions; completed checkpoints are kept and --resume continues."
        case .emptyProbeSet: return "Add probes to the file (see Probes/README.md)."
        case .badDumpLayer: return "Choose layers from 0 to the model's layer count − 1."
        case .shardWithDump: return "Shard dumping runs by checkpoint (the default --shard-by), or dump in a separate run."
        case .emptyShard: return "Use fewer shards than checkpoints (or probe groups, or interventions)."
        case .shardAxis: return "probe shards by checkpoints or probes; intervene by checkpoints or interventions."
        }
    }
}

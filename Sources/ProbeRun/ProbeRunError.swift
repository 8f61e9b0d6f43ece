// Errors of the probe and intervention jobs. Each names the file, checkpoint, probe or field at fault.
// What every trajectory job can raise (output path, checkpoints, tokenizer, shard, a failed write) is
// TrajectoryJobError.

public enum ProbeRunError: Error, CustomStringConvertible, Sendable {
    case promptTooLong(probeID: String, tokens: Int, limit: Int, byModel: Bool)
    case resumeMismatch(path: String, detail: String)
    case notARun(path: String, detail: String)
    case emptyProbeSet(path: String)
    case badDumpLayer(layer: Int, layers: Int)
    case shardWithDump

    public var description: String {
        switch self {
        case let .promptTooLong(id, n, limit, byModel):
            return "probe '\(id)': prompt is \(n) tokens, over the \(byModel ? "model's position limit" : "--max-tokens limit") of \(limit)"
        case let .resumeMismatch(p, d): return "\(p): cannot resume: \(d)"
        case let .notARun(p, d): return "\(p): not a cpiscope run: \(d)"
        case let .emptyProbeSet(p): return "\(p): the probe set holds no probes"
        case let .badDumpLayer(l, n): return "--dump layer \(l) is outside the model's layers 0–\(n - 1)"
        case .shardWithDump: return "--shard-by probes cannot be combined with --dump"
        }
    }

    public var hint: String {
        switch self {
        case .promptTooLong(_, _, _, let byModel):
            return byModel ? "Shorten the context, or select probes that fit the model's context window (for rotary models, --max-tokens N runs past it)."
                : "Raise --max-tokens, or shorten the probe's context."
        case .resumeMismatch: return "Resume with the same probes, template and checkpoints, or start again with --force."
        case .notARun: return "Pass a file written by `cpiscope probe`."
        case .emptyProbeSet: return "Add probes to the file (see Probes/README.md)."
        case .badDumpLayer: return "Choose layers from 0 to the model's layer count − 1."
        case .shardWithDump: return "Shard dumping runs by checkpoint (the default --shard-by), or dump in a separate run."
        }
    }
}

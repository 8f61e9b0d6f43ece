// Why `cpiscope intervene` cannot proceed (InterventionJob.swift), with a hint for each case.

/// Why an intervention run cannot proceed.
public enum InterventionJobError: Error, CustomStringConvertible, Sendable {
    case noExperiment
    case experiment(ExperimentError)
    case unknownSource(name: String, available: [String])
    case incompatibleSource(source: String, detail: String)
    case resumeMismatch(path: String, detail: String)

    public var description: String {
        switch self {
        case .noExperiment: return "no experiment given"
        case let .experiment(e): return e.description
        case let .unknownSource(name, available):
            let list = available.count <= 12 ? available.joined(separator: ", ")
                : available.prefix(10).joined(separator: ", ") + ", …, \(available.last ?? "") (\(available.count) in all)"
            return "source checkpoint '\(name)' is neither a checkpoint of the trajectory (\(list)) nor a checkpoint folder"
        case let .incompatibleSource(source, detail): return "\(source): \(detail)"
        case let .resumeMismatch(path, detail): return "\(path): cannot resume: \(detail)"
        }
    }

    public var hint: String {
        switch self {
        case .noExperiment: return "Give at least one of --ablate, --knockout, --transplant-from, --patch-from (see cpiscope intervene --help)."
        case .experiment: return "See cpiscope intervene --help for the experiment syntax."
        case .unknownSource: return "Name a checkpoint of the trajectory (its name or step) or a checkpoint folder."
        case .incompatibleSource: return "Transplants and patches need another checkpoint of the same model."
        case .resumeMismatch: return "Resume with the same probes, checkpoints and experiments, or start again with --force."
        }
    }
}

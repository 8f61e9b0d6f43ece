// AnalysisError: the one error type of Analysis. Each description is one line naming the run
// file and the field or option at fault; `hint` suggests the fix.

/// Errors from reading probe-run files and analysing them.
public enum AnalysisError: Error, CustomStringConvertible, Sendable {
    /// The file is missing, unreadable, a directory, or not HDF5.
    case cannotOpen(path: String, reason: String)
    /// An HDF5 file that `cpiscope probe` did not write (no `cpiscope_schema_version`).
    case notARun(path: String, detail: String)
    /// A run written with another schema version than this build reads.
    case schemaVersion(path: String, found: Int64, supported: Int64)
    /// A variable or coordinate is missing, of the wrong type, or of the wrong shape.
    case malformedRun(path: String, field: String, detail: String)
    /// Too few checkpoints are complete (`checkpoint_complete` = 1) for the analysis asked for.
    case incompleteRun(path: String, complete: Int, needed: Int)
    /// `--from` / `--to` / `--checkpoint` named a checkpoint the run does not hold (or is incomplete).
    case unknownCheckpoint(path: String, name: String, available: [String])
    /// `--span` named a span the run does not hold.
    case unknownSpan(path: String, name: String, available: [String])
    /// Two runs that do not share probes and checkpoints.
    case unmatchedRuns(path: String, other: String, detail: String)
    /// An option value outside its range.
    case invalidOption(option: String, detail: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason):
            return "cannot open run file \(path): \(reason)"
        case let .notARun(path, detail):
            return "\(path) is not a cpiscope probe run: \(detail)"
        case let .schemaVersion(path, found, supported):
            return "\(path): cpiscope_schema_version is \(found); this cpiscope reads versions 1 to \(supported)"
        case let .malformedRun(path, field, detail):
            return "\(path): field '\(field)': \(detail)"
        case let .incompleteRun(path, complete, needed):
            return complete == 0 ? "\(path): no checkpoint is complete yet (checkpoint_complete is 0 for every checkpoint)"
                : "\(path): only \(complete) checkpoint(s) are complete; this needs at least \(needed)"
        case let .unknownCheckpoint(path, name, available):
            return "\(path): no complete checkpoint '\(name)' (complete: \(Self.list(available)))"
        case let .unknownSpan(path, name, available):
            return "\(path): no span '\(name)' (spans: \(Self.list(available)))"
        case let .unmatchedRuns(path, other, detail):
            return "runs \(path) and \(other) cannot be compared: \(detail)"
        case let .invalidOption(option, detail):
            return "\(option): \(detail)"
        }
    }

    public var hint: String {
        switch self {
        case .cannotOpen:
            return "Pass the .h5 file written by `cpiscope probe ... -o RUN.h5`."
        case .notARun:
            return "diff reads files written by `cpiscope probe` or `cpiscope intervene`; report reads those and `cpiscope criticality` files. Make a probe run with `cpiscope probe TRAJECTORY -o RUN.h5`."
        case .schemaVersion:
            return "Rerun `cpiscope probe` with this version of cpiscope, or analyse the file with the cpiscope that wrote it."
        case .malformedRun:
            return "The file is damaged or was edited; rerun `cpiscope probe` (with --resume if it was interrupted)."
        case .incompleteRun:
            return "Finish the run: rerun the command that wrote it with --resume (e.g. `cpiscope probe ... --resume`), or analyse it once a checkpoint is written."
        case .unknownCheckpoint:
            return "Name a checkpoint by its name (e.g. checkpoint-500) or its step (e.g. 500); `cpiscope diff RUN.h5 --format json` lists them."
        case .unknownSpan:
            return "Use one of the spans listed (context, subject, question, context_answer, memory_mention, bos, other)."
        case .unmatchedRuns:
            return "Compare runs made with the same probe file and the same checkpoint steps (e.g. --checkpoints on both)."
        case .invalidOption:
            return "See `cpiscope diff --help`."
        }
    }

    static func list(_ names: [String]) -> String {
        names.isEmpty ? "none" : names.count <= 8 ? names.joined(separator: ", ")
            : names.prefix(8).joined(separator: ", ") + ", … (\(names.count) in all)"
    }
}

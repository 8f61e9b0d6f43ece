// ReportError: the one error type of Reports. Each description is one line naming the path at
// fault; `hint` suggests the fix. Errors reading the run itself are `AnalysisError`s.

/// Errors writing a report.
public enum ReportError: Error, CustomStringConvertible, Sendable {
    /// The output directory could not be created (or the path is a file).
    case cannotCreateDirectory(path: String, reason: String)
    /// A report file could not be written.
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotCreateDirectory(path, reason): return "cannot create report directory \(path): \(reason)"
        case let .writeFailed(path, reason): return "cannot write \(path): \(reason)"
        }
    }

    public var hint: String {
        switch self {
        case .cannotCreateDirectory: return "Pass -o with a writable directory path (it is created if missing)."
        case .writeFailed: return "Check that the directory is writable and the disk has space."
        }
    }
}

// Everything that can go wrong when a chat template is found, parsed or rendered. Each case names the
// construct at fault with its line and column in the template (1-based, columns in code points), or the
// file at fault. A template's own `raise_exception(msg)` is its own case, with the message verbatim.
//
// `description` is one line (newlines in a message are shown as `\n`): the CLI prints it after "error: ".

/// Where in a template: 1-based line and column (column counted in Unicode code points).
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    /// 1-based line.
    public let line: Int
    /// 1-based column, in Unicode code points.
    public let column: Int

    /// A place in a template.
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// "line L, column C".
    public var description: String { "line \(line), column \(column)" }
}

/// Why a chat template could not be loaded, parsed or rendered.
public enum ChatTemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The template called `raise_exception(message)`: the template's own refusal (Llama-2 and Mistral refuse
    /// a system message or roles that do not alternate). `message` is verbatim.
    case raised(message: String, at: SourceLocation)
    /// The template is not valid Jinja: `what` says what was found and what was expected.
    case syntax(what: String, at: SourceLocation)
    /// Valid Jinja that this interpreter does not support (a tag, filter, test or method outside the
    /// subset in docs/probes-and-templates.md), or a name jinja2 itself does not know (an unknown filter).
    case unsupported(construct: String, at: SourceLocation)
    /// An error while rendering, as jinja2 would raise it (`'x' is undefined`, a TypeError, a
    /// ZeroDivisionError…): `pythonType` is the Python exception's class name.
    case runtime(pythonType: String, message: String, at: SourceLocation)
    /// A guard against hostile templates tripped (output size, loop iterations, recursion depth…).
    case limitExceeded(what: String, limit: Int, at: SourceLocation)
    /// The model folder has no chat template: `searched` lists the files looked at.
    case noTemplate(directory: String, searched: [String])
    /// The folder holds several named templates and none is called `name`.
    case templateNotFound(name: String, file: String, available: [String])
    /// A file could not be read or is not what it should be (not UTF-8, not JSON, a field of the wrong type).
    case invalidFile(file: String, reason: String)
    /// `apply_chat_template` refuses an empty conversation, and so does `render`.
    case emptyConversation

    /// One line: what went wrong, where, and the template's own message for `.raised`.
    public var description: String {
        switch self {
        case let .raised(message, at):
            return "the chat template raised an exception (\(at)): \(oneLine(message))"
        case let .syntax(what, at):
            return "chat template syntax error at \(at): \(oneLine(what))"
        case let .unsupported(construct, at):
            return "chat template uses \(oneLine(construct)) at \(at), which cpiscope's Jinja interpreter does not support"
        case let .runtime(type, message, at):
            return "chat template error at \(at): \(type): \(oneLine(message))"
        case let .limitExceeded(what, limit, at):
            return "chat template stopped at \(at): \(oneLine(what)) exceeds the limit of \(limit)"
        case let .noTemplate(directory, searched):
            return "\(oneLine(directory)) has no chat template (looked for \(searched.map(oneLine).joined(separator: ", ")))"
        case let .templateNotFound(name, file, available):
            return "\(oneLine(file)) has no chat template named \(oneLine(pythonRepr(name))); available: "
                + available.map { oneLine(pythonRepr($0)) }.joined(separator: ", ")
        case let .invalidFile(file, reason):
            return "\(oneLine(file)): \(oneLine(reason))"
        case .emptyConversation:
            return "cannot apply a chat template to an empty conversation; provide at least one message"
        }
    }

    /// Where in the template, for the errors that have a place.
    public var location: SourceLocation? {
        switch self {
        case .raised(_, let at), .syntax(_, let at), .unsupported(_, let at), .runtime(_, _, let at), .limitExceeded(_, _, let at):
            return at
        default:
            return nil
        }
    }
}

/// Shows control line breaks as escapes so that every error is one line.
func oneLine(_ s: String) -> String {
    guard s.unicodeScalars.contains(where: { isPythonLineBreak($0) }) else { return s }
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        default: if isPythonLineBreak(c) { out += "\\u" + hex(c.value, 4) } else { out.unicodeScalars.append(c) }
        }
    }
    return out
}

/// The guards against hostile templates. Real chat templates are a few kilobytes, render in well under
/// a thousand loop iterations and nest a handful of levels deep; the defaults leave a wide margin.
public struct ChatTemplateLimits: Sendable, Equatable {
    /// The largest template source accepted, in UTF-8 bytes.
    public var maxTemplateBytes = 1 << 20
    /// The most deeply nested statements or expressions the parser accepts.
    public var maxNesting = 100
    /// The largest rendered output, and the largest string an operation may build, in UTF-8 bytes.
    public var maxOutputBytes = 8 << 20
    /// The most loop iterations in one render, all loops together.
    public var maxIterations = 1_000_000
    /// The most evaluation steps in one render (an expression node, or one element of a filter's work).
    public var maxSteps = 50_000_000
    /// The deepest macro recursion.
    public var maxCallDepth = 64
    /// The deepest evaluation: statements and expressions being evaluated inside each other, across
    /// macro calls (each call evaluates its body inside the call's expression).
    public var maxEvaluationDepth = 1_000
    /// The most elements a list or dict built by the template may hold.
    public var maxCollectionCount = 1_000_000

    /// The default limits.
    public init() {}

    /// The deepest nesting of values (lists in lists…) a template may build or compare.
    static let maxValueDepth = 200
    /// The deepest recursion when printing or comparing values (≥ maxValueDepth; namespaces can be cyclic).
    static let maxCompareDepth = 256
}

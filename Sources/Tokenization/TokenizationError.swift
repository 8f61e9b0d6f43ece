// The one error type of the Tokenization module.
//
// Every case names the file and the JSON field at fault (a dotted path such as
// `pre_tokenizer.pretokenizers[1].pattern.Regex`), so that a malformed `tokenizer.json`
// is reported precisely instead of trapping or encoding silently wrong.
import StrictJSON

/// Errors raised while loading a `tokenizer.json` / `tokenizer_config.json`, or encoding text.
public enum TokenizationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No file (or no `tokenizer.json` inside the folder) at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read, or is larger than the loader accepts.
    case unreadableFile(path: String, reason: String)
    /// The bytes are not valid JSON; `offset` is the byte offset of the problem.
    case malformedJSON(file: String, offset: Int, reason: String)
    /// A required field is absent.
    case missingField(file: String, field: String)
    /// A field has the wrong JSON type.
    case wrongType(file: String, field: String, expected: String)
    /// A field has the right type but an unusable value.
    case invalidValue(file: String, field: String, reason: String)
    /// A component (`"type"` of a normalizer, pre-tokenizer, model, ...) that this module does not implement.
    case unsupportedComponent(file: String, field: String, type: String)
    /// A merge rule names a token that is not in `model.vocab` (or whose concatenation is not).
    case unknownMergeToken(file: String, field: String, token: String)
    /// A regular expression pattern failed to compile.
    case invalidRegex(file: String, field: String, pattern: String, reason: String)
    /// The text to encode is longer than the encoder accepts.
    case inputTooLarge(scalars: Int, limit: Int)
    /// The regular-expression engine gave up on a piece of text (backtracking limit).
    case regexFailure(pattern: String, length: Int)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "no tokenizer.json at \(path)"
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .malformedJSON(let file, let offset, let reason):
            return "\(file): malformed JSON at byte \(offset): \(reason)"
        case .missingField(let file, let field):
            return "\(file): missing field `\(field)`"
        case .wrongType(let file, let field, let expected):
            return "\(file): field `\(field)` should be \(expected)"
        case .invalidValue(let file, let field, let reason):
            return "\(file): field `\(field)`: \(reason)"
        case .unsupportedComponent(let file, let field, let type):
            return "\(file): `\(field)` has type \"\(type)\", which cpiscope does not support"
        case .unknownMergeToken(let file, let field, let token):
            return "\(file): `\(field)` names token \(quoted(token)), which is not in model.vocab"
        case .invalidRegex(let file, let field, let pattern, let reason):
            return "\(file): `\(field)` is not a valid regular expression (\(quoted(pattern))): \(reason)"
        case .inputTooLarge(let scalars, let limit):
            return "text of \(scalars) characters is longer than the encoder's limit of \(limit)"
        case .regexFailure(let pattern, let length):
            return "the regular expression \(quoted(pattern)) failed on a piece of \(length) characters (backtracking limit)"
        }
    }

    /// A suggestion for the user on how to fix the problem.
    public var hint: String {
        switch self {
        case .fileNotFound:
            return "pass a tokenizer.json file, or a model folder that contains one"
        case .unreadableFile:
            return "check the file's permissions and that it is a tokenizer.json of a Hugging Face tokenizer"
        case .malformedJSON:
            return "the file is truncated, not JSON, or gives a key twice in one object; re-download it or re-save it with `tokenizer.save(path)` in Python"
        case .missingField, .wrongType, .invalidValue:
            return "compare the file with one written by Python `tokenizers` (`Tokenizer.from_file(p).save(q)` normalizes the schema)"
        case .unsupportedComponent:
            return "only BPE models with ByteLevel/Metaspace/Split-style pipelines are supported; see docs/tokenizers.md"
        case .unknownMergeToken:
            return "model.merges and model.vocab come from different tokenizers; use the tokenizer.json that shipped with the model"
        case .invalidRegex:
            return "the pattern must be valid for Oniguruma/ICU; check the escaping of backslashes in the JSON string"
        case .inputTooLarge:
            return "split the text into smaller pieces and encode them separately"
        case .regexFailure:
            return "split long runs (e.g. of whitespace) in the text, or encode it in smaller pieces"
        }
    }
}

/// A string in double quotes, escaped as a JSON string literal (so it stays on one line), and
/// clipped to `limit` Unicode scalars, for messages.
func quoted(_ s: String, limit: Int = 80) -> String {
    guard s.unicodeScalars.count > limit else { return JSONValue.quoted(s) }
    var clipped = String()
    clipped.unicodeScalars.append(contentsOf: s.unicodeScalars.prefix(limit))
    return JSONValue.quoted(clipped).dropLast() + "…\""
}

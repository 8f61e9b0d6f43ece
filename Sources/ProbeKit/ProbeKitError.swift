// ProbeKitError: the one error type of the ProbeKit module.
//
// Every case names what is at fault: the probe file and the line (JSONL, 1-based) or item
// (JSON array, 0-based index), the field, the template and its placeholder, or the probe id.

/// Where a probe came from: a file plus a JSONL line (1-based) or a JSON-array index (0-based).
public struct ProbeLocation: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    /// The file's last path component, e.g. `world_facts.json`.
    public let file: String
    /// 1-based line number for JSONL files; nil for JSON arrays.
    public let line: Int?
    /// 0-based position of the item in the file (array index, or ordinal among non-blank JSONL lines).
    public let index: Int

    public init(file: String, line: Int?, index: Int) {
        self.file = file
        self.line = line
        self.index = index
    }

    public var description: String {
        if let line { return "\(file) line \(line)" }
        return "\(file) item [\(index)]"
    }
}

/// Errors raised while loading probe sets, parsing templates, building prompts and mapping tokens.
public enum ProbeKitError: Error, CustomStringConvertible, Sendable, Equatable {
    // MARK: probe files
    case fileUnreadable(path: String, reason: String)
    case fileTooLarge(path: String, bytes: Int, limit: Int)
    case emptyFile(path: String)
    case notUTF8(path: String, location: String)
    case invalidJSON(location: String, detail: String)
    case notAnObject(location: String, found: String)
    case missingField(location: ProbeLocation, field: String)
    case wrongType(location: ProbeLocation, field: String, expected: String, found: String)
    case emptyField(location: ProbeLocation, field: String)
    case fieldTooLarge(location: ProbeLocation, field: String, bytes: Int, limit: Int)
    case conflictingFields(location: ProbeLocation, first: String, second: String)
    case duplicateID(id: String, first: ProbeLocation, second: ProbeLocation)
    case tooManyProbes(path: String, limit: Int)

    // MARK: templates
    case templateUnknownPlaceholder(template: String, placeholder: String, offset: Int)
    case templateMissingPlaceholder(template: String, placeholder: String)
    case templateUnbalancedBrace(template: String, brace: String, offset: Int)

    // MARK: prompts and tokens
    case contextNotInPrompt(probeID: String, template: String, detail: String)
    case encoderFailed(probeID: String, text: String, detail: String)
    case encoderOutputInvalid(probeID: String, text: String, detail: String)
    case emptyPromptTokens(probeID: String)
    case answerTokenizesToNothing(probeID: String, which: String, answer: String, detail: String)

    /// One line: control characters from the input (a probe id or placeholder holding a newline) are escaped.
    public var description: String { escapingControlCharacters(unescapedDescription) }

    private var unescapedDescription: String {
        switch self {
        case let .fileUnreadable(path, reason):
            return "probe file \(path): cannot be read (\(reason))"
        case let .fileTooLarge(path, bytes, limit):
            return "file \(path): \(bytes) bytes exceeds the limit of \(limit) bytes"
        case let .emptyFile(path):
            return "probe file \(path): empty (no probes)"
        case let .notUTF8(path, location):
            return "file \(path): \(location) is not valid UTF-8"
        case let .invalidJSON(location, detail):
            return "\(location): not valid JSON (\(detail))"
        case let .notAnObject(location, found):
            return "\(location): expected a JSON object with probe fields, found \(found)"
        case let .missingField(location, field):
            return "\(location): missing field '\(field)'"
        case let .wrongType(location, field, expected, found):
            return "\(location): field '\(field)' must be \(expected), found \(found)"
        case let .emptyField(location, field):
            return "\(location): field '\(field)' is empty"
        case let .fieldTooLarge(location, field, bytes, limit):
            return "\(location): field '\(field)' is \(bytes) UTF-8 bytes, over the limit of \(limit)"
        case let .conflictingFields(location, first, second):
            return "\(location): fields '\(first)' and '\(second)' are both present and differ"
        case let .duplicateID(id, first, second):
            return "duplicate probe id '\(id)' at \(second) (first used at \(first))"
        case let .tooManyProbes(path, limit):
            return "probe file \(path): more than \(limit) probes"
        case let .templateUnknownPlaceholder(template, placeholder, offset):
            return "template '\(template)': unknown placeholder '{\(placeholder)}' at character \(offset)"
        case let .templateMissingPlaceholder(template, placeholder):
            return "template '\(template)': missing the required placeholder '{\(placeholder)}'"
        case let .templateUnbalancedBrace(template, brace, offset):
            return "template '\(template)': unbalanced '\(brace)' at character \(offset)"
        case let .contextNotInPrompt(probeID, template, detail):
            return "probe '\(probeID)': context not found in the prompt built with template '\(template)' (\(detail))"
        case let .encoderFailed(probeID, text, detail):
            return "probe '\(probeID)': tokenizer failed on the \(text) (\(detail))"
        case let .encoderOutputInvalid(probeID, text, detail):
            return "probe '\(probeID)': tokenizer output for the \(text) is inconsistent (\(detail))"
        case let .emptyPromptTokens(probeID):
            return "probe '\(probeID)': the prompt tokenizes to no tokens"
        case let .answerTokenizesToNothing(probeID, which, answer, detail):
            return "probe '\(probeID)': the \(which) '\(answer)' tokenizes to nothing after the prompt (\(detail))"
        }
    }

    /// A suggestion for fixing the input.
    public var hint: String {
        switch self {
        case .fileUnreadable:
            return "Check the path and the file's permissions."
        case .fileTooLarge:
            return "Split the probe set into smaller files (probe files are capped at 256 MiB, template files at 64 KiB)."
        case .emptyFile:
            return "Give a JSON array of probe objects or one JSON object per line (JSONL)."
        case .notUTF8:
            return "Re-save the file as UTF-8."
        case .invalidJSON:
            return "A probe file is either one JSON array of objects or JSONL (one object per line); fix the syntax at the named place."
        case .notAnObject:
            return "Each probe is a JSON object with 'context', 'question', 'answer' and 'memory_answer' (or 'parametric_answer')."
        case let .missingField(_, field):
            return "Add '\(field)' to the probe; required fields are context, question, answer and memory_answer or parametric_answer."
        case .wrongType:
            return "Probe fields are strings ('id' may also be an integer)."
        case .emptyField:
            return "Give a non-blank value, or drop the probe."
        case .fieldTooLarge:
            return "Field limits: context 64 KiB, question 4 KiB, answers and subject 1 KiB, id 256 bytes (see Probes/README.md)."
        case .conflictingFields:
            return "Keep only one of 'memory_answer' and 'parametric_answer'."
        case .duplicateID:
            return "Give each probe a unique 'id', or drop the 'id' fields to get '<file-stem>-<index>' ids."
        case .tooManyProbes:
            return "Split the probe set into several files."
        case .templateUnknownPlaceholder:
            return "Only {context} and {question} are placeholders; write '{{' and '}}' for literal braces."
        case .templateMissingPlaceholder:
            return "A template must contain both {context} and {question}."
        case .templateUnbalancedBrace:
            return "Write '{{' and '}}' for literal braces."
        case .contextNotInPrompt:
            return "Use a template that inserts {context} verbatim."
        case .encoderFailed, .encoderOutputInvalid:
            return "Check that the tokenizer matches the checkpoint and can encode this text."
        case .emptyPromptTokens:
            return "Check the template and the probe's text."
        case .answerTokenizesToNothing:
            return "Check the answer text and the tokenizer; a template ending in whitespace can merge the answer's first token into the prompt."
        }
    }
}

/// `text` with newlines, tabs and other control characters written as escapes (`\n`, `\u{1B}`),
/// so that an error message stays on one line whatever the input held.
func escapingControlCharacters(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isLineBreaking) else { return text }
    var out = ""
    for u in text.unicodeScalars {
        switch u {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default: if isLineBreaking(u) { out += "\\u{\(String(u.value, radix: 16, uppercase: true))}" } else { out.unicodeScalars.append(u) }
        }
    }
    return out
}

private func isLineBreaking(_ u: Unicode.Scalar) -> Bool {
    u.value < 0x20 || u.value == 0x7F || u.value == 0x85 || u.value == 0x2028 || u.value == 0x2029
}

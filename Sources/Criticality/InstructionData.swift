// Instruction-finetuning data as published: Alpaca JSON/JSONL, SQuAD (the nested release or Hugging Face
// rows) and any JSON/JSONL with named fields. Each row becomes an `InstructionExample` (instruction,
// optional context, response); the file's container is kept so that `CriticalityFilter` can write the data
// back in its own format minus removed rows. Rows are untrusted: a row that is not an object, lacks a
// required field or holds a non-string is an error naming the row (1-based: the line of a JSONL file, the
// element of a JSON array); a row whose response is empty is kept and skipped with that reason.
import Foundation
import StrictJSON

/// One example: what the model is asked, the context it may get, and the response it is trained on.
public struct InstructionExample: Sendable, Equatable {
    /// 0-based position among the file's examples (the `example` coordinate of the output).
    public var index: Int
    /// The example's id: the row's `id` field if it has one, else its index.
    public var id: String
    public var instruction: String
    /// nil: the example has no context (Alpaca's empty `input`).
    public var context: String?
    public var response: String
    /// Why the example cannot be scored, known from the data alone (e.g. an unanswerable SQuAD question).
    public var skipReason: String?
    /// The example's data category (`--category-field`, or TULU's `dataset`), for loss curves per category.
    public var category: String = ""

    public init(index: Int, id: String, instruction: String, context: String?, response: String, skipReason: String? = nil) {
        self.index = index
        self.id = id
        self.instruction = instruction
        self.context = context
        self.response = response
        self.skipReason = skipReason
    }

    public var hasContext: Bool { context != nil }
}

/// How the rows of the data file are read.
public enum InstructionDataFormat: String, Sendable, CaseIterable {
    /// `instruction`, `input` (the context; missing or "" = none), `output`.
    case alpaca
    /// `context`, `question`, `answers` (first answer = response), nested or as rows.
    case squad
    /// `--instruction-field`, `--context-field`, `--response-field`.
    case fields
    /// Chat rows as TULU and other SFT mixtures publish them: `messages` = [{role, content}, …]; the first
    /// user turn is the instruction and the assistant turn after it the response. These rows carry no
    /// separate context, so they are scored without one (the S group).
    case messages
}

/// The field names of `--format fields`.
public struct InstructionFields: Sendable, Equatable {
    public var instruction: String
    public var context: String?
    public var response: String
    public init(instruction: String, context: String?, response: String) {
        self.instruction = instruction
        self.context = context
        self.response = response
    }
}

/// The data file as read: its examples and, for writing a filtered copy, its container.
public struct InstructionDataset: Sendable {
    public enum Container: Sendable {
        /// A JSON array of row objects.
        case jsonArray([JSONValue])
        /// JSON Lines: each row's line text exactly as in the file (blank lines dropped).
        case jsonLines([String])
        /// SQuAD's nested release; example k is the question at `squadPaths[k]` (article, paragraph, question).
        case squadNested(JSONValue, [SquadPath])
    }
    public struct SquadPath: Sendable, Equatable {
        public var article: Int, paragraph: Int, question: Int
    }

    public var url: URL
    public var format: InstructionDataFormat
    public var fields: InstructionFields?
    public var examples: [InstructionExample]
    public var container: Container
    /// SHA-256 of the file's bytes (recorded in the output).
    public var sha256: String

    public var containerName: String {
        switch container {
        case .jsonArray: return "json"
        case .jsonLines: return "jsonl"
        case .squadNested: return "squad-json"
        }
    }
}

public enum InstructionDataLoader {
    /// Largest data file read (4 GiB: the published Alpaca file is 22 MB, SQuAD 2.0's train 40 MB).
    public static let maxFileBytes = 4 << 30

    /// Reads `url` as `format` (nil: detected from the first row; see `detect`).
    /// `categoryField` names the field that holds each row's data category (nil: TULU's `dataset` in chat rows,
    /// else none); a row where it is missing or not a string has category "".
    public static func load(url: URL, format: InstructionDataFormat? = nil, fields: InstructionFields? = nil,
                            categoryField: String? = nil, sha256: (URL) -> String = { _ in "" }) throws -> InstructionDataset {
        let path = url.path
        let bytes: [UInt8]
        do { bytes = try JSONFile.contents(path: path, limit: maxFileBytes) } catch {
            throw CriticalityError.dataUnreadable(path: path, reason: error.reason)
        }
        let (rows, container, squadPaths) = try parseContainer(bytes, path: path)
        var fmt = format
        if fmt == nil { fmt = try detect(rows: rows, container: container, path: path) }
        if fmt == .fields && fields == nil {
            throw CriticalityError.unknownFormat(path: path, detail: "--format fields needs --instruction-field and --response-field")
        }
        var examples: [InstructionExample] = []
        examples.reserveCapacity(rows.count)
        for (k, row) in rows.enumerated() {
            var e = try example(row.value, index: k, row: row.number, format: fmt!, fields: fields, path: path)
            if let field = categoryField ?? (fmt == .messages ? "dataset" : nil) {
                e.category = row.value[field]?.string ?? ""
            }
            examples.append(e)
        }
        guard !examples.isEmpty else { throw CriticalityError.noExamples(path: path) }
        let finalContainer: InstructionDataset.Container
        switch container {
        case .squadNested(let doc, _): finalContainer = .squadNested(doc, squadPaths)
        default: finalContainer = container
        }
        return InstructionDataset(url: url, format: fmt!, fields: fmt == .fields ? fields : nil, examples: examples,
                                  container: finalContainer, sha256: sha256(url))
    }

    typealias Row = (value: JSONValue, number: Int)

    /// JSON (an array of rows, or SQuAD's nested object) or JSON Lines.
    static func parseContainer(_ bytes: [UInt8], path: String) throws
        -> (rows: [Row], container: InstructionDataset.Container, squad: [InstructionDataset.SquadPath]) {
        let first = bytes.first { !isSpace($0) }
        if first == UInt8(ascii: "[") || first == UInt8(ascii: "{") {
            // One JSON document, unless it is JSONL whose first line is an object.
            do {
                let doc = try JSONValue.parse(bytes)
                if let a = doc.array { return (a.enumerated().map { ($0.element, $0.offset + 1) }, .jsonArray(a), []) }
                if let data = doc["data"], data.array != nil {
                    let (rows, paths) = try squadRows(doc, path: path)
                    return (rows, .squadNested(doc, paths), paths)
                }
                // A lone object: a one-line JSONL file.
                return ([(doc, 1)], .jsonLines([String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)]), [])
            } catch let e as JSONParseError {
                if first == UInt8(ascii: "[") { throw jsonError(e, bytes: bytes, path: path) }
                // Fall through to JSONL.
            }
        } else if first == nil {
            throw CriticalityError.noExamples(path: path)
        } else {
            throw CriticalityError.notJSON(path: path, detail: "it starts with neither '[', '{' nor a JSON object per line")
        }
        var rows: [Row] = [], lines: [String] = []
        var lineNumber = 0
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            lineNumber += 1
            var slice = bytes[start..<end]
            if slice.last == UInt8(ascii: "\r") { slice = slice.dropLast() }
            if slice.contains(where: { !isSpace($0) }) {
                let value: JSONValue
                do { value = try JSONValue.parse(slice) } catch {
                    if case .invalidUTF8 = error.reason { throw CriticalityError.invalidUTF8(path: path, line: lineNumber) }
                    throw CriticalityError.notJSON(path: path, detail: "line \(lineNumber): \(error.message)")
                }
                rows.append((value, lineNumber))
                lines.append(String(decoding: slice, as: UTF8.self))
            }
            start = end + 1
        }
        return (rows, .jsonLines(lines), [])
    }

    static func jsonError(_ e: JSONParseError, bytes: [UInt8], path: String) -> CriticalityError {
        if case .invalidUTF8 = e.reason {
            let line = bytes.prefix(e.offset).reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            return .invalidUTF8(path: path, line: line)
        }
        let (line, column) = bytes.withUnsafeBytes { JSONParseError.lineAndColumn(of: e.offset, in: $0) }
        return .notJSON(path: path, detail: "\(e.what) at line \(line), column \(column)")
    }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    /// SQuAD's nested release flattened into one HF-style row per question.
    static func squadRows(_ doc: JSONValue, path: String) throws -> ([Row], [InstructionDataset.SquadPath]) {
        var rows: [Row] = [], paths: [InstructionDataset.SquadPath] = []
        for (a, article) in (doc["data"]?.array ?? []).enumerated() {
            guard let paragraphs = article["paragraphs"]?.array else {
                throw CriticalityError.missingField(path: path, row: a + 1, field: "data[\(a)].paragraphs")
            }
            for (p, paragraph) in paragraphs.enumerated() {
                guard let context = paragraph["context"] else {
                    throw CriticalityError.missingField(path: path, row: a + 1, field: "data[\(a)].paragraphs[\(p)].context")
                }
                for (q, qa) in (paragraph["qas"]?.array ?? []).enumerated() {
                    var members: [(key: String, value: JSONValue)] = [("context", context)]
                    for (k, v) in qa.members ?? [] where k != "context" { members.append((k, v)) }
                    rows.append((.object(members), rows.count + 1))
                    paths.append(.init(article: a, paragraph: p, question: q))
                }
            }
        }
        return (rows, paths)
    }

    /// The format of rows that name it by their fields: `instruction` + `output` is Alpaca, `question` +
    /// `context` + `answers` is SQuAD.
    static func detect(rows: [Row], container: InstructionDataset.Container, path: String) throws -> InstructionDataFormat {
        if case .squadNested = container { return .squad }
        guard let first = rows.first?.value else { throw CriticalityError.noExamples(path: path) }
        guard let members = first.members else { throw CriticalityError.rowNotObject(path: path, row: rows[0].number) }
        let keys = Set(members.map(\.key))
        if keys.contains("instruction") && keys.contains("output") { return .alpaca }
        if keys.contains("question") && keys.contains("context") && keys.contains("answers") { return .squad }
        if keys.contains("messages") { return .messages }
        throw CriticalityError.unknownFormat(path: path, detail: "the first row's fields are \(members.map(\.key).sorted().map { JSONValue.string($0).jsonText }.joined(separator: ", "))")
    }

    static func string(_ row: JSONValue, _ field: String, required: Bool, row number: Int, path: String) throws -> String? {
        guard let v = row[field], !v.isNull else {
            if required { throw CriticalityError.missingField(path: path, row: number, field: field) }
            return nil
        }
        guard let s = v.string else { throw CriticalityError.fieldNotString(path: path, row: number, field: field, found: v.typeName) }
        return s
    }

    static func example(_ row: JSONValue, index: Int, row number: Int, format: InstructionDataFormat, fields: InstructionFields?,
                        path: String) throws -> InstructionExample {
        guard row.members != nil else { throw CriticalityError.rowNotObject(path: path, row: number) }
        let idValue = row["id"]
        let id = idValue?.string ?? idValue?.int.map(String.init) ?? String(index)
        func nonEmpty(_ s: String?) -> String? { (s?.isEmpty ?? true) ? nil : s }
        switch format {
        case .alpaca:
            let instruction = try string(row, "instruction", required: true, row: number, path: path)!
            let input = try string(row, "input", required: false, row: number, path: path)
            let output = try string(row, "output", required: true, row: number, path: path)!
            return InstructionExample(index: index, id: id, instruction: instruction, context: nonEmpty(input), response: output)
        case .squad:
            let question = try string(row, "question", required: true, row: number, path: path)!
            let context = try string(row, "context", required: true, row: number, path: path)!
            guard let answers = row["answers"] else { throw CriticalityError.missingField(path: path, row: number, field: "answers") }
            // HF rows: {"text": [...], "answer_start": [...]}; the release: [{"text": ..., "answer_start": ...}].
            let texts: [JSONValue] = answers["text"]?.array ?? (answers.array ?? []).compactMap { $0["text"] }
            if answers["text"] == nil && answers.array == nil {
                throw CriticalityError.fieldNotString(path: path, row: number, field: "answers", found: answers.typeName)
            }
            guard let first = texts.first else {
                return InstructionExample(index: index, id: id, instruction: question, context: nonEmpty(context), response: "",
                                          skipReason: "unanswerable: the question has no answer")
            }
            guard let answer = first.string else {
                throw CriticalityError.fieldNotString(path: path, row: number, field: "answers.text", found: first.typeName)
            }
            return InstructionExample(index: index, id: id, instruction: question, context: nonEmpty(context), response: answer)
        case .messages:
            guard let turns = row["messages"] else { throw CriticalityError.missingField(path: path, row: number, field: "messages") }
            guard let list = turns.array else { throw CriticalityError.fieldNotString(path: path, row: number, field: "messages", found: turns.typeName) }
            var instruction: String? = nil, response: String? = nil
            for turn in list {
                guard turn.members != nil else { throw CriticalityError.rowNotObject(path: path, row: number) }
                let role = try string(turn, "role", required: true, row: number, path: path)!
                let content = try string(turn, "content", required: true, row: number, path: path)
                if instruction == nil, role == "user" { instruction = content; continue }
                if instruction != nil, role == "assistant" { response = content; break }
            }
            guard let instruction else { throw CriticalityError.missingField(path: path, row: number, field: "messages[role=user]") }
            return InstructionExample(index: index, id: id, instruction: instruction, context: nil, response: response ?? "",
                                      skipReason: response == nil ? "no assistant turn after the first user turn" : nil)
        case .fields:
            let f = fields!
            let instruction = try string(row, f.instruction, required: true, row: number, path: path)!
            let context = try f.context.flatMap { try string(row, $0, required: false, row: number, path: path) }
            let response = try string(row, f.response, required: true, row: number, path: path)!
            return InstructionExample(index: index, id: id, instruction: instruction, context: nonEmpty(context), response: response)
        }
    }
}

// ProbeSetLoader: reads probe files (a JSON array of objects, or JSONL) into a ProbeSet.
//
// Format (documented in Probes/README.md):
//   required  context, question, answer, memory_answer | parametric_answer   (strings)
//   optional  subject (string; null or blank = absent), id (string or integer)
//   any other field is ignored.
// The layout is detected from the first non-whitespace byte (after an optional UTF-8 BOM):
// '[' = JSON array, '{' = JSONL. Blank JSONL lines are skipped.
// Every input is untrusted: the file and each field have a size cap, the JSON is read by the strict
// reader (StrictJSON: UTF-8, nesting limit, no repeated key in a probe), and every error names the
// file and the JSONL line (1-based) or the array item (0-based), and the field.

import Foundation
import StrictJSON

public enum ProbeSetLoader {
    /// Largest probe file accepted, in bytes (256 MiB).
    public static let maxFileBytes = 256 << 20
    /// Largest number of probes in one file.
    public static let maxProbes = 1_000_000

    /// Per-field caps in UTF-8 bytes. The paper's longest context is 2,353 characters; 64 KiB leaves
    /// room for long documents while keeping a prompt within what a CPU forward pass can take.
    public enum FieldLimit {
        public static let context = 64 << 10
        public static let question = 4 << 10
        public static let answer = 1 << 10
        public static let subject = 1 << 10
        public static let id = 256
    }

    /// Loads a probe file. Throws `ProbeKitError` naming the file, line or item, and field at fault.
    public static func load(url: URL) throws -> ProbeSet {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ProbeKitError.fileUnreadable(path: path, reason: "no such file")
        }
        if isDirectory.boolValue {
            throw ProbeKitError.fileUnreadable(path: path, reason: "is a directory")
        }
        let data = try readCapped(url: url, limit: maxFileBytes)
        return try parse(data: data, path: path)
    }

    /// Parses probe-file bytes; `path` names the file in errors and gives the default-id stem.
    public static func parse(data: Data, path: String) throws -> ProbeSet {
        let fileName = (path as NSString).lastPathComponent
        let stem = (fileName as NSString).deletingPathExtension
        guard data.count <= maxFileBytes else {
            throw ProbeKitError.fileTooLarge(path: path, bytes: data.count, limit: maxFileBytes)
        }
        let bytes = [UInt8](data)
        var start = 0
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { start = 3 }
        if let bad = bytes.withUnsafeBytes({ UTF8Check.firstInvalidOffset(in: UnsafeRawBufferPointer(rebasing: $0[start...])) }) {
            throw ProbeKitError.notUTF8(path: path, location: "line \(lineAndColumn(ofByte: start + bad, in: bytes).line)")
        }
        guard let first = bytes[start...].firstIndex(where: { !isJSONWhitespace($0) }) else {
            throw ProbeKitError.emptyFile(path: path)
        }
        let raw: [(record: JSONValue, location: ProbeLocation)]
        let format: ProbeSet.Format
        switch bytes[first] {
        case UInt8(ascii: "["):
            format = .jsonArray
            raw = try parseArray(bytes: bytes, from: first, path: path, fileName: fileName)
        case UInt8(ascii: "{"):
            format = .jsonLines
            raw = try parseLines(bytes: bytes, from: start, path: path, fileName: fileName)
        default:
            let line = lineAndColumn(ofByte: first, in: bytes).line
            throw ProbeKitError.invalidJSON(
                location: "\(fileName) line \(line)",
                detail: "a probe file starts with '[' (JSON array) or '{' (JSONL)")
        }
        guard !raw.isEmpty else { throw ProbeKitError.emptyFile(path: path) }
        guard raw.count <= maxProbes else { throw ProbeKitError.tooManyProbes(path: path, limit: maxProbes) }

        var probes: [Probe] = []
        probes.reserveCapacity(raw.count)
        var seen: [String: ProbeLocation] = [:]
        for (record, location) in raw {
            let probe = try makeProbe(record, location: location, stem: stem)
            if let firstUse = seen[probe.id] {
                throw ProbeKitError.duplicateID(id: probe.id, first: firstUse, second: location)
            }
            seen[probe.id] = location
            probes.append(probe)
        }
        return ProbeSet(name: stem, path: path, format: format, probes: probes, byteCount: data.count)
    }

    // MARK: - reading

    /// Reads at most `limit` bytes; a longer file is an error (never read past the cap).
    static func readCapped(url: URL, limit: Int) throws -> Data {
        do throws(JSONFileError) {
            return Data(try JSONFile.contents(path: url.path, limit: limit))
        } catch {
            switch error {
            case let .tooLarge(size, limit): throw ProbeKitError.fileTooLarge(path: url.path, bytes: size, limit: limit)
            case .unreadable(let reason): throw ProbeKitError.fileUnreadable(path: url.path, reason: reason)
            case .invalid: throw ProbeKitError.fileUnreadable(path: url.path, reason: error.reason)  // not reached: nothing is parsed
            }
        }
    }

    private static func parseArray(bytes: [UInt8], from start: Int, path: String,
                                   fileName: String) throws -> [(record: JSONValue, location: ProbeLocation)] {
        let top: JSONValue
        do throws(JSONParseError) {
            top = try JSONValue.parse(bytes[start...])
        } catch {
            let (line, column) = lineAndColumn(ofByte: start + error.offset, in: bytes)
            throw ProbeKitError.invalidJSON(location: fileName,
                                            detail: "\(error.what) at line \(line), column \(column)")
        }
        guard case .array(let items) = top else {
            throw ProbeKitError.notAnObject(location: "\(fileName) top level", found: top.typeName)
        }
        return items.enumerated().map { (i, item) in
            (item, ProbeLocation(file: fileName, line: nil, index: i))
        }
    }

    private static func parseLines(bytes: [UInt8], from start: Int, path: String,
                                   fileName: String) throws -> [(record: JSONValue, location: ProbeLocation)] {
        var out: [(record: JSONValue, location: ProbeLocation)] = []
        var lineNo = 0
        var lineStart = start
        var index = 0
        while lineStart <= bytes.count {
            lineNo += 1
            let lineEnd = bytes[lineStart...].firstIndex(of: 0x0A) ?? bytes.count
            let line = bytes[lineStart..<lineEnd]
            if line.contains(where: { !isJSONWhitespace($0) }) {
                let record: JSONValue
                do throws(JSONParseError) {
                    record = try JSONValue.parse(line)
                } catch {
                    throw ProbeKitError.invalidJSON(
                        location: "\(fileName) line \(lineNo)",
                        detail: "\(error.what) at column \(error.offset + 1)"
                            + "; JSONL needs exactly one complete JSON object per line")
                }
                out.append((record, ProbeLocation(file: fileName, line: lineNo, index: index)))
                index += 1
                if out.count > maxProbes { throw ProbeKitError.tooManyProbes(path: path, limit: maxProbes) }
            }
            lineStart = lineEnd + 1
        }
        return out
    }

    // MARK: - fields

    private static func makeProbe(_ obj: JSONValue, location: ProbeLocation, stem: String) throws -> Probe {
        guard case .object = obj else {
            throw ProbeKitError.notAnObject(location: location.description, found: obj.typeName)
        }
        let context = try requiredText(obj, "context", location, limit: FieldLimit.context, trim: false)
        let question = try requiredText(obj, "question", location, limit: FieldLimit.question, trim: false)
        let answer = try requiredText(obj, "answer", location, limit: FieldLimit.answer, trim: true)
        let memory = try optionalText(obj, "memory_answer", location, limit: FieldLimit.answer)
        let parametric = try optionalText(obj, "parametric_answer", location, limit: FieldLimit.answer)
        for (field, value) in [("memory_answer", memory), ("parametric_answer", parametric)] {
            if let value, value.isEmpty { throw ProbeKitError.emptyField(location: location, field: field) }
        }
        let memoryAnswer: String
        switch (memory, parametric) {
        case (nil, nil):
            throw ProbeKitError.missingField(location: location, field: "memory_answer/parametric_answer")
        case let (m?, p?):
            guard m == p else {
                throw ProbeKitError.conflictingFields(location: location, first: "memory_answer",
                                                      second: "parametric_answer")
            }
            memoryAnswer = m
        case let (m?, nil): memoryAnswer = m
        case let (nil, p?): memoryAnswer = p
        }
        let subject = try optionalText(obj, "subject", location, limit: FieldLimit.subject)
        let id: String
        switch obj["id"] {
        case nil, .null?:
            id = "\(stem)-\(location.index)"
        case .string(let s)?:
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !t.isEmpty else { throw ProbeKitError.emptyField(location: location, field: "id") }
            guard t.utf8.count <= FieldLimit.id else {
                throw ProbeKitError.fieldTooLarge(location: location, field: "id", bytes: t.utf8.count,
                                                  limit: FieldLimit.id)
            }
            id = t
        case let value? where value.int != nil:
            id = String(value.int!)
        case .number(let n)?:
            throw ProbeKitError.wrongType(location: location, field: "id", expected: "a string or an integer",
                                          found: "the number \(n.text)")
        case let other?:
            throw ProbeKitError.wrongType(location: location, field: "id", expected: "a string or an integer",
                                          found: other.typeName)
        }
        return Probe(id: id, context: context, question: question, answer: answer, memoryAnswer: memoryAnswer,
                     subject: (subject?.isEmpty ?? true) ? nil : subject, location: location)
    }

    private static func requiredText(_ obj: JSONValue, _ field: String, _ location: ProbeLocation,
                                     limit: Int, trim: Bool) throws -> String {
        guard let value = obj[field] else { throw ProbeKitError.missingField(location: location, field: field) }
        guard let s = value.string else {
            throw ProbeKitError.wrongType(location: location, field: field, expected: "a string",
                                          found: value.typeName)
        }
        try checkSize(s, field, location, limit: limit)
        let trimmed = s.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ProbeKitError.emptyField(location: location, field: field) }
        return trim ? trimmed : s
    }

    /// A string field that may be absent or null; returned trimmed ("" when blank).
    private static func optionalText(_ obj: JSONValue, _ field: String, _ location: ProbeLocation,
                                     limit: Int) throws -> String? {
        guard let value = obj[field], !value.isNull else { return nil }
        guard let s = value.string else {
            throw ProbeKitError.wrongType(location: location, field: field, expected: "a string",
                                          found: value.typeName)
        }
        try checkSize(s, field, location, limit: limit)
        return s.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func checkSize(_ s: String, _ field: String, _ location: ProbeLocation, limit: Int) throws {
        let n = s.utf8.count
        if n > limit { throw ProbeKitError.fieldTooLarge(location: location, field: field, bytes: n, limit: limit) }
    }

    // MARK: - helpers

    private static func isJSONWhitespace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D
    }

    /// The 1-based line and column of a byte of the file.
    private static func lineAndColumn(ofByte offset: Int, in bytes: [UInt8]) -> (line: Int, column: Int) {
        bytes.withUnsafeBytes { JSONParseError.lineAndColumn(of: offset, in: $0) }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? ProbeKitError { return e.description }
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }
}

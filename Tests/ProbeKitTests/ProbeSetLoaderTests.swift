// ProbeSetLoader: formats, defaults, limits, and one specific error per bad input.

import Foundation
import Testing
@testable import ProbeKit

@Suite("ProbeSetLoader")
struct ProbeSetLoaderTests {
    @Test("JSONL with a BOM, CRLF endings, blank lines, extra fields, an integer id and both memory names loads")
    func validMixed() throws {
        let set = try ProbeSetLoader.load(url: Paths.fixture("valid_mixed.jsonl"))
        #expect(set.format == .jsonLines)
        #expect(set.name == "valid_mixed")
        #expect(set.probes.count == 2)
        let a = set.probes[0], b = set.probes[1]
        #expect(a.id == "7")                                   // integer id -> decimal string
        #expect(a.answer == "Herat")                           // answers are trimmed
        #expect(a.context == "  Kabul was destroyed; the capital moved to Herat.")  // context verbatim
        #expect(a.memoryAnswer == "Kabul")
        #expect(a.subject == nil)                              // null subject = absent
        #expect(a.location == ProbeLocation(file: "valid_mixed.jsonl", line: 1, index: 0))
        #expect(b.id == "valid_mixed-1")                       // default id: <stem>-<item index>
        #expect(b.memoryAnswer == "Algiers")                   // from parametric_answer
        #expect(b.subject == "Algeria")
        #expect(b.location?.line == 3)                         // the blank line 2 is skipped
    }

    @Test("The project's probe sets load, 30-60 items each, every item with an annotated subject")
    func projectProbeSets() throws {
        for name in ["capitals.jsonl", "biographies.jsonl", "quotes.jsonl"] {
            let set = try ProbeSetLoader.load(url: Paths.probes.appendingPathComponent(name))
            print("Probes/\(name): \(set.probes.count) probes")
            #expect((30...60).contains(set.probes.count), "\(name): \(set.probes.count) probes")
            for p in set.probes {
                let subject = try #require(p.subject, "\(p.id) has no subject")
                #expect(p.answer.lowercased() != p.memoryAnswer.lowercased(), "\(p.id): answers agree")
                let built = try PromptBuilder.build(p, template: .plain)
                #expect(built.subjectSource == .annotated(subject))
                #expect(built.spanStatus[.subject] == .found, "\(p.id): \(String(describing: built.spanStatus[.subject]))")
                #expect(built.spanStatus[.contextAnswer] == .found, "\(p.id): context answer not in context")
                // The subject occurs in the question and in the context.
                let ranges = built.spans[.subject] ?? []
                let q = built.spans[.question]![0], c = built.spans[.context]![0]
                #expect(ranges.contains { q.contains($0.lowerBound) }, "\(p.id): subject not in question")
                #expect(ranges.contains { c.contains($0.lowerBound) }, "\(p.id): subject not in context")
            }
        }
    }

    @Test("A JSONL line with a missing field names the file, the line and the field")
    func missingField() {
        let e = probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixture("missing_field.jsonl")) }
        #expect(e == .missingField(location: ProbeLocation(file: "missing_field.jsonl", line: 3, index: 1), field: "answer"))
        #expect(e?.description == "missing_field.jsonl line 3: missing field 'answer'")
    }

    @Test("A JSON-array item without either memorized-answer field names the item and both names")
    func missingMemory() {
        let e = probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixture("missing_memory.json")) }
        #expect(e == .missingField(location: ProbeLocation(file: "missing_memory.json", line: nil, index: 1),
                                   field: "memory_answer/parametric_answer"))
        #expect(e?.description.contains("missing_memory.json item [1]") == true)
    }

    @Test("A number where a string is required is a wrong-type error naming line and field")
    func wrongType() {
        let e = probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixture("wrong_type.jsonl")) }
        #expect(e == .wrongType(location: ProbeLocation(file: "wrong_type.jsonl", line: 2, index: 1), field: "answer",
                                expected: "a string", found: "a number"))
    }

    @Test("A blank answer is an empty-field error")
    func emptyAnswer() {
        let e = probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixture("empty_answer.jsonl")) }
        #expect(e == .emptyField(location: ProbeLocation(file: "empty_answer.jsonl", line: 1, index: 0), field: "answer"))
    }

    @Test("An empty file and a file of blank lines are empty-file errors")
    func emptyFiles() {
        for name in ["empty.jsonl", "blank_lines.jsonl"] {
            let url = Paths.fixture(name)
            let e = probeKitError { _ = try ProbeSetLoader.load(url: url) }
            #expect(e == .emptyFile(path: url.path), "\(name): \(String(describing: e))")
        }
    }

    @Test("Duplicate ids name the id and both lines")
    func duplicateIDs() {
        let e = probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixture("duplicate_ids.jsonl")) }
        #expect(e == .duplicateID(id: "dup", first: ProbeLocation(file: "duplicate_ids.jsonl", line: 1, index: 0),
                                  second: ProbeLocation(file: "duplicate_ids.jsonl", line: 3, index: 2)))
    }

    @Test("A default id colliding with an explicit one is a duplicate too")
    func defaultIDCollision() {
        let text = """
        {"id": "f-1", "context": "c", "question": "q", "answer": "a", "memory_answer": "m"}
        {"context": "c", "question": "q", "answer": "a", "memory_answer": "m"}
        """
        let e = probeKitError { _ = try ProbeSetLoader.parse(data: Data(text.utf8), path: "/x/f.jsonl") }
        guard case let .duplicateID(id, _, second)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(id == "f-1")
        #expect(second.line == 2)
    }

    @Test("An array item that is not an object names the item and what it found")
    func notAnObject() {
        let e = probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixture("not_object.json")) }
        #expect(e == .notAnObject(location: "not_object.json item [1]", found: "a string"))
    }

    @Test("A JSON syntax error in an array reports the line")
    func invalidJSONArray() {
        let e = probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixture("invalid_json.json")) }
        guard case let .invalidJSON(location, detail)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(location == "invalid_json.json")
        #expect(detail == "expected ',' or ']' in an array at line 4, column 3", "detail: \(detail)")
    }

    @Test("A field given twice in one probe is invalid JSON naming the field, the line and the column")
    func repeatedField() {
        let jsonl = #"{"context": "c", "question": "q", "answer": "a", "memory_answer": "m"}"# + "\n"
            + #"{"context": "c", "question": "q", "answer": "a", "answer": "b", "memory_answer": "m"}"# + "\n"
        let e = probeKitError { _ = try ProbeSetLoader.parse(data: Data(jsonl.utf8), path: "twice.jsonl") }
        #expect(e == .invalidJSON(location: "twice.jsonl line 2",
                                  detail: "duplicate key \"answer\" at column 50; JSONL needs exactly one complete JSON object per line"))
        let array = "[\n" + #" {"context": "c", "question": "q", "context": "d"}"# + "\n]"
        let e2 = probeKitError { _ = try ProbeSetLoader.parse(data: Data(array.utf8), path: "twice.json") }
        #expect(e2 == .invalidJSON(location: "twice.json", detail: "duplicate key \"context\" at line 2, column 36"))
    }

    @Test("Integer ids are kept exactly; a fractional id is refused naming its literal")
    func numericIDs() throws {
        let text = #"{"id": 12345678901234567, "context": "c", "question": "q", "answer": "a", "memory_answer": "m"}"# + "\n"
            + #"{"id": 7.0, "context": "c", "question": "q", "answer": "a", "memory_answer": "m"}"#
        let set = try ProbeSetLoader.parse(data: Data(text.utf8), path: "ids.jsonl")
        #expect(set.probes.map(\.id) == ["12345678901234567", "7"])
        let bad = #"{"id": 1.5, "context": "c", "question": "q", "answer": "a", "memory_answer": "m"}"#
        let e = probeKitError { _ = try ProbeSetLoader.parse(data: Data(bad.utf8), path: "ids.jsonl") }
        #expect(e == .wrongType(location: ProbeLocation(file: "ids.jsonl", line: 1, index: 0), field: "id",
                                expected: "a string or an integer", found: "the number 1.5"))
    }

    @Test("A truncated JSONL line names the line")
    func invalidJSONL() {
        let e = probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixture("invalid_jsonl.jsonl")) }
        guard case let .invalidJSON(location, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(location == "invalid_jsonl.jsonl line 2")
    }

    @Test("A pretty-printed single object (not JSONL) fails at line 1 with a JSONL hint")
    func prettyObject() {
        let e = probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixture("pretty_object.json")) }
        guard case let .invalidJSON(location, detail)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(location == "pretty_object.json line 1")
        #expect(detail.contains("one complete JSON object per line"))
    }

    @Test("memory_answer and parametric_answer that differ are a conflict")
    func conflictingMemory() {
        let e = probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixture("conflicting_memory.jsonl")) }
        #expect(e == .conflictingFields(location: ProbeLocation(file: "conflicting_memory.jsonl", line: 1, index: 0),
                                        first: "memory_answer", second: "parametric_answer"))
    }

    @Test("Invalid UTF-8 names the line")
    func badUTF8() {
        let url = Paths.fixture("bad_utf8.jsonl")
        let e = probeKitError { _ = try ProbeSetLoader.load(url: url) }
        #expect(e == .notUTF8(path: url.path, location: "line 2"))
    }

    @Test("A file that starts with neither '[' nor '{' is rejected")
    func notJSONAtAll() {
        let e = probeKitError { _ = try ProbeSetLoader.parse(data: Data("context,question\n".utf8), path: "p.csv") }
        guard case let .invalidJSON(location, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(location == "p.csv line 1")
    }

    @Test("Other wrong types: a boolean id, an array subject, a null question")
    func otherWrongTypes() {
        let cases: [(String, String, String)] = [
            (#"{"id": true, "context": "c", "question": "q", "answer": "a", "memory_answer": "m"}"#, "id", "a boolean"),
            (#"{"context": "c", "question": "q", "answer": "a", "memory_answer": "m", "subject": ["s"]}"#, "subject", "an array"),
            (#"{"context": "c", "question": null, "answer": "a", "memory_answer": "m"}"#, "question", "null"),
            (#"{"id": 1.5, "context": "c", "question": "q", "answer": "a", "memory_answer": "m"}"#, "id", "the number 1.5"),
        ]
        for (line, field, found) in cases {
            let e = probeKitError { _ = try ProbeSetLoader.parse(data: Data(line.utf8), path: "t.jsonl") }
            guard case let .wrongType(_, f, _, got)? = e else { Issue.record("\(field): got \(String(describing: e))"); continue }
            #expect(f == field)
            #expect(got == found)
        }
    }

    @Test("A 1 MB context is a field-size error naming the field, its size and the limit")
    func hugeContext() throws {
        let dir = try Paths.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("huge.jsonl")
        let context = String(repeating: "word ", count: 200_000)   // 1,000,000 bytes
        let record: [String: Any] = ["context": context, "question": "q?", "answer": "a", "memory_answer": "m"]
        try JSONSerialization.data(withJSONObject: record).write(to: url)
        let e = probeKitError { _ = try ProbeSetLoader.load(url: url) }
        #expect(e == .fieldTooLarge(location: ProbeLocation(file: "huge.jsonl", line: 1, index: 0), field: "context",
                                    bytes: 1_000_000, limit: ProbeSetLoader.FieldLimit.context))
    }

    @Test("A context at exactly the limit loads")
    func contextAtLimit() throws {
        let context = String(repeating: "a", count: ProbeSetLoader.FieldLimit.context)
        let record: [String: Any] = ["context": context, "question": "q?", "answer": "a", "memory_answer": "m"]
        let data = try JSONSerialization.data(withJSONObject: [record])
        let set = try ProbeSetLoader.parse(data: data, path: "limit.json")
        #expect(set.probes[0].context.utf8.count == ProbeSetLoader.FieldLimit.context)
    }

    @Test("A file over 256 MiB is refused before it is read (sparse file)")
    func fileTooLarge() throws {
        let dir = try Paths.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("big.jsonl")
        #expect(FileManager.default.createFile(atPath: url.path, contents: Data("{".utf8)))
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(ProbeSetLoader.maxFileBytes + 1))
        try handle.close()
        let e = probeKitError { _ = try ProbeSetLoader.load(url: url) }
        #expect(e == .fileTooLarge(path: url.path, bytes: ProbeSetLoader.maxFileBytes + 1, limit: ProbeSetLoader.maxFileBytes))
    }

    @Test("Deeply nested JSON is an error, not a crash")
    func deepNesting() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let e = probeKitError { _ = try ProbeSetLoader.parse(data: Data(deep.utf8), path: "deep.json") }
        guard case .invalidJSON(location: "deep.json", _)? = e else { Issue.record("got \(String(describing: e))"); return }
    }

    @Test("A template file over 64 KiB is refused")
    func templateTooLarge() throws {
        let dir = try Paths.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("big.txt")
        let text = "{context} {question}" + String(repeating: "x", count: PromptTemplate.maxFileBytes)
        try Data(text.utf8).write(to: url)
        let e = probeKitError { _ = try PromptTemplate.load(url: url) }
        #expect(e == .fileTooLarge(path: url.path, bytes: text.utf8.count, limit: PromptTemplate.maxFileBytes))
    }

    @Test("A missing path and a directory are unreadable-file errors")
    func unreadable() throws {
        let missing = Paths.fixture("no_such_file.jsonl")
        #expect(probeKitError { _ = try ProbeSetLoader.load(url: missing) } == .fileUnreadable(path: missing.path, reason: "no such file"))
        #expect(probeKitError { _ = try ProbeSetLoader.load(url: Paths.fixtures) } == .fileUnreadable(path: Paths.fixtures.path, reason: "is a directory"))
    }

    @Test("Every error has a one-line description and a hint")
    func errorShape() {
        let errors: [ProbeKitError] = [
            .missingField(location: ProbeLocation(file: "f", line: 1, index: 0), field: "answer"),
            .templateUnknownPlaceholder(template: "t", placeholder: "hint", offset: 3),
            .answerTokenizesToNothing(probeID: "p", which: "context answer", answer: "a", detail: "d"),
        ]
        for e in errors {
            #expect(!e.description.contains("\n"))
            #expect(!e.hint.isEmpty)
        }
    }

    @Test("Probe round-trips through Codable with memory_answer, and decodes parametric_answer")
    func codable() throws {
        let p = Probe(id: "x", context: "c", question: "q", answer: "a", memoryAnswer: "m", subject: "s")
        let data = try JSONEncoder().encode(p)
        let json = try #require(String(data: data, encoding: .utf8))
        #expect(json.contains("\"memory_answer\""))
        #expect(try JSONDecoder().decode(Probe.self, from: data) == p)
        let alt = #"{"id": "y", "context": "c", "question": "q", "answer": "a", "parametric_answer": "m"}"#
        #expect(try JSONDecoder().decode(Probe.self, from: Data(alt.utf8)).memoryAnswer == "m")
    }
}

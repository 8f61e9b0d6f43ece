// The data loaders read Alpaca, SQuAD (nested release and HF rows) and named fields as published, and
// every malformed input is an error naming the file and the row (or line), never a crash or a guess.
import Criticality
import Foundation
import Testing
import TrajectoryJob

@Suite("Instruction data")
struct InstructionDataTests {
    @Test("Alpaca JSON array: input is the context, empty or missing input is none; ids default to the index")
    func alpacaArray() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let url = try write("""
        [
            {"instruction": "Q1", "input": "C1", "output": "R1"},
            {"instruction": "Q2", "input": "", "output": "R2"},
            {"instruction": "Q3", "output": "R3", "id": "x-3"}
        ]
        """, "a.json", in: dir)
        let d = try InstructionDataLoader.load(url: url)
        #expect(d.format == .alpaca && d.containerName == "json")
        #expect(d.examples.map(\.context) == ["C1", nil, nil])
        #expect(d.examples.map(\.id) == ["0", "1", "x-3"])
        #expect(d.examples.map(\.response) == ["R1", "R2", "R3"])
    }

    @Test("JSONL keeps each line's text; blank lines and CRLF are fine; line numbers name bad rows")
    func jsonl() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let url = try write("{\"instruction\": \"Q\", \"input\": \"Zürich\", \"output\": \"東京\"}\r\n\n{\"instruction\": \"Q2\",  \"output\": \"R\"}\n", "a.jsonl", in: dir)
        let d = try InstructionDataLoader.load(url: url)
        #expect(d.examples.count == 2 && d.examples[0].context == "Zürich" && d.examples[0].response == "東京")
        guard case .jsonLines(let lines) = d.container else { Issue.record("not JSONL"); return }
        #expect(lines == ["{\"instruction\": \"Q\", \"input\": \"Zürich\", \"output\": \"東京\"}", "{\"instruction\": \"Q2\",  \"output\": \"R\"}"])

        let bad = try write("{\"instruction\": \"Q\", \"output\": \"R\"}\n{\"instruction\": \"Q\"}\n", "b.jsonl", in: dir)
        #expect(throws: CriticalityError.missingField(path: bad.path, row: 2, field: "output")) { try InstructionDataLoader.load(url: bad) }
    }

    @Test("SQuAD as published (nested) and as HF rows; an unanswerable question is skipped with its reason")
    func squad() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let nested = try write("""
        {"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": "The Loire is long.",
          "qas": [{"id": "q1", "question": "What is long?", "answers": [{"text": "The Loire", "answer_start": 0}]},
                  {"id": "q2", "question": "Who?", "answers": [], "is_impossible": true}]}]}]}
        """, "squad.json", in: dir)
        let d = try InstructionDataLoader.load(url: nested)
        #expect(d.format == .squad && d.containerName == "squad-json")
        #expect(d.examples.map(\.id) == ["q1", "q2"])
        #expect(d.examples[0].context == "The Loire is long." && d.examples[0].response == "The Loire" && d.examples[0].instruction == "What is long?")
        #expect(d.examples[1].skipReason?.contains("unanswerable") == true)

        let rows = try write("{\"id\": \"a\", \"context\": \"C\", \"question\": \"Q\", \"answers\": {\"text\": [\"A\", \"B\"], \"answer_start\": [0, 1]}}\n", "rows.jsonl", in: dir)
        let r = try InstructionDataLoader.load(url: rows)
        #expect(r.format == .squad && r.examples[0].response == "A" && r.examples[0].context == "C")
    }

    @Test("--format fields reads named fields; a missing optional context field means no context")
    func fields() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let url = try write("[{\"prompt\": \"P\", \"doc\": \"D\", \"answer\": \"A\"}, {\"prompt\": \"P2\", \"answer\": \"A2\"}]", "f.json", in: dir)
        let d = try InstructionDataLoader.load(url: url, format: .fields, fields: InstructionFields(instruction: "prompt", context: "doc", response: "answer"))
        #expect(d.examples.map(\.context) == ["D", nil] && d.examples.map(\.instruction) == ["P", "P2"])
        #expect(throws: CriticalityError.unknownFormat(path: url.path, detail: "the first row's fields are \"answer\", \"doc\", \"prompt\"")) {
            try InstructionDataLoader.load(url: url)
        }
    }

    @Test("chat rows (TULU's messages): the first user turn and the assistant reply after it; no context")
    func messages() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let url = try write("""
        {"dataset": "flan_v2", "id": "f-1", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "R1"}, {"role": "user", "content": "Q2"}]}
        {"dataset": "oasst1", "id": "o-2", "messages": [{"role": "user", "content": "Q"}]}
        """, "tulu.jsonl", in: dir)
        let d = try InstructionDataLoader.load(url: url)
        #expect(d.format == .messages)
        #expect(d.examples[0].instruction == "Q1" && d.examples[0].response == "R1" && d.examples[0].context == nil && d.examples[0].id == "f-1")
        #expect(d.examples[1].skipReason?.contains("no assistant turn") == true)
    }

    @Test("bad files: not JSON, invalid UTF-8 (with its line), a non-object row, a non-string field, empty")
    func badFiles() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let notJSON = try write("instruction,input,output\nQ,C,R\n", "x.csv", in: dir)
        #expect(throws: CriticalityError.self) { try InstructionDataLoader.load(url: notJSON) }
        do { _ = try InstructionDataLoader.load(url: notJSON) } catch let e as CriticalityError {
            #expect(e.description.contains(notJSON.path) && e.description.contains("not JSON"))
        }
        let utf8 = dir.appendingPathComponent("u.jsonl")
        try Data("{\"instruction\": \"Q\", \"output\": \"R\"}\n{\"instruction\": \"\u{FF}".utf8.map { $0 } + [0xFF, 0x22, 0x7D, 0x0A]).write(to: utf8)
        #expect(throws: CriticalityError.invalidUTF8(path: utf8.path, line: 2)) { try InstructionDataLoader.load(url: utf8) }
        let row = try write("[{\"instruction\": \"Q\", \"output\": \"R\"}, 3]", "r.json", in: dir)
        #expect(throws: CriticalityError.rowNotObject(path: row.path, row: 2)) { try InstructionDataLoader.load(url: row) }
        let num = try write("[{\"instruction\": \"Q\", \"output\": 3}]", "n.json", in: dir)
        #expect(throws: CriticalityError.fieldNotString(path: num.path, row: 1, field: "output", found: "a number")) { try InstructionDataLoader.load(url: num) }
        let empty = try write("  \n", "e.json", in: dir)
        #expect(throws: CriticalityError.noExamples(path: empty.path)) { try InstructionDataLoader.load(url: empty) }
        let none = try write("[]", "z.json", in: dir)
        #expect(throws: CriticalityError.self) { try InstructionDataLoader.load(url: none) }
        let missing = dir.appendingPathComponent("absent.json")
        #expect(throws: CriticalityError.self) { try InstructionDataLoader.load(url: missing) }
    }
}

@Suite("Instruction templates")
struct InstructionTemplateTests {
    @Test("the built-in alpaca texts are Stanford Alpaca's two prompts; plain joins the response with a space")
    func builtins() throws {
        let e = InstructionExample(index: 0, id: "0", instruction: "Name it.", context: "It is {x}.", response: "R")
        let a = InstructionTemplate.builtin("alpaca")!
        #expect(a.promptWithContext(e) == "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nName it.\n\n### Input:\nIt is {x}.\n\n### Response:")
        #expect(a.promptWithoutContext(e) == "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nName it.\n\n### Response:")
        #expect(InstructionTemplate.builtin("tulu")!.promptWithContext(e) == "<|user|>\nName it.\n\nIt is {x}.\n<|assistant|>\n")
        #expect(InstructionTemplate.builtin("plain")!.separator == " ")
        let none = InstructionExample(index: 0, id: "0", instruction: "I", context: nil, response: "R")
        #expect(a.promptWithContext(none) == nil)
    }

    @Test("template files: placeholders checked, braces escaped, unknown keys refused")
    func files() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let ok = try write("{\"with_context\": \"{{doc}} {context} | {instruction} =>\", \"without_context\": \"{instruction} =>\", \"separator\": \" \"}", "t.json", in: dir)
        let t = try InstructionTemplate.load(url: ok)
        #expect(t.promptWithContext(InstructionExample(index: 0, id: "0", instruction: "I", context: "C", response: "R")) == "{doc} C | I =>")
        for (text, needle) in [("{\"with_context\": \"{instruction}\", \"without_context\": \"{instruction}\"}", "no {context}"),
                               ("{\"with_context\": \"{context}{instruction}\", \"without_context\": \"{context}{instruction}\"}", "\"{context}\" in without_context"),
                               ("{\"with_context\": \"{question}{context}\", \"without_context\": \"{instruction}\"}", "unknown placeholder \"{question}\""),
                               ("{\"with_context\": \"{context}{instruction}\"}", "missing 'without_context'"),
                               ("{\"with_context\": \"{context}{instruction}\", \"without_context\": \"{instruction}\", \"sep\": \"\"}", "unknown key \"sep\""),
                               ("[1]", "not a JSON object")] {
            let u = try write(text, "bad.json", in: dir)
            do { _ = try InstructionTemplate.load(url: u); Issue.record("accepted \(text)") } catch let e as CriticalityError {
                #expect(e.description.contains(needle) && e.description.contains(u.path), "\(e.description)")
            }
        }
    }
}

// The §3.4 filter: which examples go (lowest criticality among those with a context, ties by index,
// floor of the share), and the filtered file in the data's own container.
import Criticality
import Foundation
import StrictJSON
import Testing
import TrajectoryJob

@Suite("Criticality filter")
struct FilterTests {
    @Test("removes floor(count × P%) context examples, lowest criticality first, ties by index; no-context and NaN rows stay")
    func removals() {
        let crit: [Float] = [5, 1, 3, 1, .nan, 0.5, 2, 9]
        let ctx = [true, true, true, true, true, false, true, true]
        // Context and finite: 0,1,2,3,6,7 (6 of them). 50% → 3: 1 (1.0), 3 (1.0, tie → by index), 6 (2.0).
        #expect(CriticalityFilter.removals(criticality: crit, hasContext: ctx, percent: 50) == [1, 3, 6])
        #expect(CriticalityFilter.removals(criticality: crit, hasContext: ctx, percent: 25) == [1])  // floor(1.5)
        #expect(CriticalityFilter.removals(criticality: crit, hasContext: ctx, percent: 0) == [])
        #expect(CriticalityFilter.removals(criticality: crit, hasContext: ctx, percent: 100) == [0, 1, 2, 3, 6, 7])
    }

    @Test("percentages parse with or without %, and out-of-range values are refused")
    func percent() throws {
        #expect(try CriticalityFilter.percent("25%") == 25)
        #expect(try CriticalityFilter.percent(" 12.5 ") == 12.5)
        for bad in ["-1%", "101", "abc", "nan", ""] {
            #expect(throws: CriticalityError.badPercent(bad)) { try CriticalityFilter.percent(bad) }
        }
    }

    @Test("JSONL keeps the other lines byte for byte; JSON arrays and SQuAD's nested release stay in their format")
    func writesOwnFormat() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let lines = ["{\"instruction\":  \"A\", \"input\": \"x\", \"output\": \"1\"}", "{\"instruction\": \"B\", \"input\": \"y\", \"output\": \"2\"}",
                     "{\"output\": \"3\", \"instruction\": \"C\"}"]
        let jsonl = try write(lines.joined(separator: "\n") + "\n", "d.jsonl", in: dir)
        let d = try InstructionDataLoader.load(url: jsonl)
        let out = dir.appendingPathComponent("f.jsonl")
        let sidecar = try CriticalityFilter.write(d, removing: [1], criticality: [4, 2, .nan], percent: 50, checkpoint: "base", to: out)
        #expect(try String(contentsOf: out, encoding: .utf8) == lines[0] + "\n" + lines[2] + "\n")
        let side = try JSONValue.parse(Array(try Data(contentsOf: sidecar)))
        #expect(side["removed"]?.array?.first?["index"]?.int == 1 && side["count_with_context"]?.int == 2 && side["checkpoint"]?.string == "base")
        #expect(sidecar.lastPathComponent == "f.removed.json")

        let array = try write("[{\"instruction\": \"A\", \"output\": \"1\"}, {\"instruction\": \"B\", \"output\": \"2\"}]", "d.json", in: dir)
        let a = try InstructionDataLoader.load(url: array)
        let outA = dir.appendingPathComponent("f.json")
        _ = try CriticalityFilter.write(a, removing: [0], criticality: [1, 2], percent: 50, checkpoint: "c", to: outA)
        let back = try InstructionDataLoader.load(url: outA)
        #expect(back.examples.map(\.instruction) == ["B"] && back.containerName == "json")

        let squad = try write("""
        {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": "C", "qas": [
          {"id": "q1", "question": "Q1", "answers": [{"text": "A1", "answer_start": 0}]},
          {"id": "q2", "question": "Q2", "answers": [{"text": "A2", "answer_start": 0}]}]}]}]}
        """, "s.json", in: dir)
        let s = try InstructionDataLoader.load(url: squad)
        let outS = dir.appendingPathComponent("fs.json")
        _ = try CriticalityFilter.write(s, removing: [0], criticality: [1, 2], percent: 50, checkpoint: "c", to: outS)
        let backS = try InstructionDataLoader.load(url: outS)
        #expect(backS.examples.map(\.id) == ["q2"] && backS.containerName == "squad-json")
        let doc = try JSONValue.parse(Array(try Data(contentsOf: outS)))
        #expect(doc["version"]?.string == "1.1" && doc["data"]?.array?.first?["title"]?.string == "T")
    }
}

// The criticality job end to end on the bundled demo trajectory: the file's layout, that scores do not
// depend on how examples are batched, skipping (never truncating) over-long examples, resume, and that a
// bad input stops the job before anything is written.
import Analysis
import Checkpoints
import Criticality
import Foundation
import HDF5Store
import Testing
import TrajectoryJob

private let rows = """
{"instruction": "What is the capital of France?", "input": "Paris is the capital of France.", "output": "Paris"}
{"instruction": "Name a colour.", "input": "", "output": "Blue is a colour."}
{"instruction": "Who founded Zorblat Inc.?", "input": "Zorblat Inc. was founded by Mira Okonkwo in 1987.", "output": "Mira Okonkwo founded it."}
{"instruction": "Empty", "input": "x", "output": ""}
{"instruction": "Where is Zürich?", "input": "Zürich lies in Switzerland.", "output": "In Switzerland, on a lake."}
{"instruction": "Summarise.", "input": "The river Vell runs north. It floods each spring. Farmers plant after the flood.", "output": "The Vell floods every spring, and farming follows."}

"""

private func spec(_ data: URL, _ out: URL, checkpoints: String = "0,250,500") throws -> CriticalityJobSpec {
    let traj = demoDir.appendingPathComponent("full-ft")
    var s = CriticalityJobSpec(checkpoints: try Trajectory.select(try Trajectory.discover(at: traj), spec: checkpoints),
                               trajectoryRoot: traj, data: data, template: InstructionTemplate.builtin("plain")!, output: out)
    s.job.threads = 1
    return s
}

@Suite("Criticality job")
struct CriticalityJobTests {
    @Test("layout: checkpoint × example scores, per-example facts, attributes; batching does not change the numbers (≤ 1e-5)")
    func layoutAndBatching() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let data = try write(rows, "d.jsonl", in: dir)
        var big = try spec(data, dir.appendingPathComponent("big.h5"))
        big.batchTokens = 4096
        var small = try spec(data, dir.appendingPathComponent("small.h5"))
        small.batchTokens = 1  // one example per pass
        let r = try CriticalityJob.run(big)
        _ = try CriticalityJob.run(small)
        #expect(r.examples == 6 && r.skipped.map(\.index) == [3] && r.skipped[0].reason == "empty response")

        let t = try CriticalityTable.read(big.job.output)
        #expect(t.checkpoints == ["checkpoint-0", "checkpoint-250", "checkpoint-500"] && t.steps == [0, 250, 500])
        #expect(t.hasContext == [true, false, true, true, true, true])
        let f = try HDF5File.open(at: big.job.output, writable: false); defer { try? f.close() }
        #expect(try f.shape(of: CriticalitySchema.criticality) == [3, 6])
        #expect(try f.dimensions(of: CriticalitySchema.nllWithContext) == ["checkpoint", "example"])
        // Definitions hold row by row: criticality = exp(nll_without), nll = sum / tokens, gain = without − with.
        let sumW = try f.readFloats(CriticalitySchema.nllWithoutContextSum).values, tokens = try f.readInts32(CriticalitySchema.responseTokens).values
        for c in 0..<3 { for e in 0..<6 where e != 3 {
            let k = c * 6 + e
            let nll = t.nllWithoutContext[k]
            #expect(abs(nll - sumW[k] / Float(tokens[e])) <= 1e-5 * max(1, abs(nll)))
            #expect(abs(t.criticality[k] - Float(Foundation.exp(Double(nll)))) <= 1e-4 * t.criticality[k])
            if e != 1 { #expect(t.nllWithContext[k].isFinite) } else { #expect(t.nllWithContext[k].isNaN) }
        } }
        #expect(t.criticality[3].isNaN)
        guard case .string(let def)? = try? f.attribute("score_definition") else { Issue.record("no score_definition"); return }
        #expect(def.contains("exp(nll_without_context)"))

        let s = try CriticalityTable.read(small.job.output)
        for (name, a, b) in [("nll_with", t.nllWithContext, s.nllWithContext), ("nll_without", t.nllWithoutContext, s.nllWithoutContext)] {
            let d = zip(a, b).map { $0.isNaN && $1.isNaN ? 0 : abs($0 - $1) }.max()!
            #expect(d <= 1e-5, "\(name): batch of 4096 tokens vs one example per pass, max |Δ| = \(d)")
        }
        // Finetuning lowers the loss of the training-format data (the demo trains on this template's kind of text).
        #expect(try t.curves(groups: t.paperGroups(), order: ["C", "C+S", "S"], resamples: 200).allSatisfy { $0.mean.count == 3 })
    }

    @Test("an example over --max-tokens is skipped with its length and the limit, never truncated")
    func overLong() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        var s = try spec(try write(rows, "d.jsonl", in: dir), dir.appendingPathComponent("o.h5"), checkpoints: "0")
        s.maxTokens = 30
        let r = try CriticalityJob.run(s)
        let long = r.skipped.first { $0.index == 5 }
        #expect(long?.reason.contains("over the --max-tokens limit of 30") == true, "\(r.skipped)")
        let t = try CriticalityTable.read(s.job.output)
        #expect(t.criticality[5].isNaN && t.skipReason[5].contains("tokens"))
        #expect(t.criticality[1].isFinite, "a short example still scores: \(t.skipReason[1])")
    }

    @Test("resume finishes a run and refuses one of another job; an existing output is kept without --force")
    func resume() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let data = try write(rows, "d.jsonl", in: dir)
        let out = dir.appendingPathComponent("r.h5")
        _ = try CriticalityJob.run(try spec(data, out, checkpoints: "0"))
        let before = try Data(contentsOf: out)
        #expect(throws: TrajectoryJobError.outputExists(path: out.path)) { try CriticalityJob.run(try spec(data, out, checkpoints: "0")) }
        #expect(try Data(contentsOf: out) == before)
        var again = try spec(data, out, checkpoints: "0")
        again.job.resume = true
        let r = try CriticalityJob.run(again)
        #expect(r.summaries.map(\.skipped) == [true])
        var other = again
        other.template = InstructionTemplate.builtin("tulu")!
        #expect(throws: CriticalityError.resumeMismatch(path: out.path, detail: "its template differs")) { try CriticalityJob.run(other) }
    }

    @Test("a data error stops the job before the output exists")
    func badDataWritesNothing() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let data = try write("{\"instruction\": \"Q\", \"output\": \"R\"}\n{\"input\": \"C\", \"output\": \"R\"}\n", "bad.jsonl", in: dir)
        let out = dir.appendingPathComponent("never.h5")
        #expect(throws: CriticalityError.missingField(path: data.path, row: 2, field: "instruction")) { try CriticalityJob.run(try spec(data, out)) }
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }
}

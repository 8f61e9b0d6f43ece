// The probe job end to end: the HDF5 it writes holds the same numbers as direct measurement,
// resumes, and refuses bad input before writing anything.
import Checkpoints
import Foundation
import HDF5Store
import Models
import ProbeKit
import ProbeRun
import Testing
import TrajectoryJob
import Tokenization

func spec(_ output: URL, checkpoints: [CheckpointRef]? = nil, probes: URL? = nil) throws -> ProbeJobSpec {
    let refs = try checkpoints ?? Trajectory.discover(at: trajectoryDir)
    return ProbeJobSpec(checkpoints: refs, trajectoryRoot: trajectoryDir,
                        probeFile: probes ?? trajectoryDir.appendingPathComponent("probes.jsonl"),
                        template: .plain, output: output)
}

@Suite("Probe job", .serialized)
struct ProbeJobTests {
    @Test("the run file holds every measurement, one slab per checkpoint, marked complete")
    func runFileMatchesMeasurements() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run.h5")
        // One group of all six probes (a budget far above their caches), so that the recomputation below
        // can measure the same group: results depend on the group in the last bits (docs/cluster.md).
        var s = try spec(out)
        s.probeGroupSize = 6
        s.batchCacheBytes = 1 << 30
        let summaries = try ProbeJob.run(s)
        #expect(summaries.count == 3)
        let f = try HDF5File.open(at: out, writable: false)
        defer { try? f.close() }
        #expect(try f.readStrings("checkpoint").values == ["checkpoint-0", "checkpoint-10", "checkpoint-20"])
        #expect(try f.readInt64("step").values == [0, 10, 20])
        #expect(try f.readUInt8("checkpoint_complete").values == [1, 1, 1])
        #expect(try f.attribute("complete") == .int(1))
        let mass = try f.readFloats("attention_mass")
        #expect(mass.shape == [3, 6, SpanKind.allCases.count, 2, 4])
        // Independent recomputation for checkpoint-10, probe 4.
        let tokenizer = try Tokenizer.load(from: trajectoryDir)
        let model = try DecoderModel.load(from: trajectoryDir.appendingPathComponent("checkpoint-10"))
        let group = try ProbeSetLoader.load(url: trajectoryDir.appendingPathComponent("probes.jsonl")).probes.map { probe in
            let built = try PromptBuilder.build(probe, template: .plain)
            return (try TokenizedProbe(built, encoder: TokenizerEncoder(tokenizer)), built)
        }
        #expect(group.count == 6)
        var o = MeasureOptions(); o.stopTokens = Set(model.config.eosTokenIDs)
        let m = try ProbeMeasurer.measureBatch(group, model: model, options: o, decode: { tokenizer.decode($0, skipSpecialTokens: true) })[4]
        let per = SpanKind.allCases.count * 2 * 4
        let slab = Array(mass.values[(1 * 6 + 4) * per ..< (1 * 6 + 5) * per])
        let diff = zip(slab, m.attentionMass).map { $0.isNaN && $1.isNaN ? 0 : abs($0 - $1) }.max()!
        #expect(diff == 0, "attention mass in the file vs direct measurement: max |Δ| = \(diff)")
        #expect(try f.readStrings("generated").values[1 * 6 + 4] == m.generated)
        // Missing spans are NaN, never a silent number.
        let found = try f.readUInt8("span_found").values
        for p in 0..<6 { for (s, _) in SpanKind.allCases.enumerated() where found[p * SpanKind.allCases.count + s] == 0 {
            #expect(mass.values[(0 * 6 + p) * per + s * 8].isNaN)
        } }
    }

    @Test("an existing output is refused without --force and left untouched")
    func existingOutputRefused() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run.h5")
        try Data("precious".utf8).write(to: out)
        #expect { try ProbeJob.run(try spec(out)) } throws: { e in
            guard case TrajectoryJobError.outputExists = e else { return false }; return true
        }
        #expect(try String(contentsOf: out, encoding: .utf8) == "precious")
    }

    @Test("an output folder that does not exist is refused before any work")
    func missingOutputFolder() throws {
        let out = URL(fileURLWithPath: "/nonexistent-\(UUID().uuidString)/run.h5")
        #expect { try ProbeJob.run(try spec(out)) } throws: { e in
            guard case TrajectoryJobError.outputDirectoryMissing = e else { return false }; return true
        }
    }

    @Test("mixed architectures in one trajectory are refused, and no file is written")
    func mixedArchitectures() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run.h5")
        let refs = try Trajectory.discover(at: trajectoryDir).prefix(1) + Trajectory.discover(at: fixtures.appendingPathComponent("probe-gpt2"))
        var s = try spec(out, checkpoints: Array(refs))
        s.job.tokenizer = trajectoryDir
        #expect { try ProbeJob.run(s) } throws: { e in
            guard case TrajectoryJobError.mixedArchitectures(let c, _, _) = e else { return false }
            return c.contains("probe-gpt2")
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test("a probe line with a missing field names the line, and no file is written")
    func badProbeLine() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let probes = dir.appendingPathComponent("bad.jsonl")
        try Data("""
        {"context": "Paris is in France.", "question": "Where is Paris?", "answer": "France", "memory_answer": "France"}
        {"context": "x", "question": "y", "memory_answer": "z"}
        """.utf8).write(to: probes)
        let out = dir.appendingPathComponent("run.h5")
        #expect { try ProbeJob.run(try spec(out, probes: probes)) } throws: { e in
            "\(e)".contains("line 2") && "\(e)".contains("answer")
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test("--max-tokens refuses an over-long prompt with a clear error")
    func maxTokens() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var s = try spec(dir.appendingPathComponent("run.h5"))
        s.options.maxPromptTokens = 10
        #expect { try ProbeJob.run(s) } throws: { e in
            guard case ProbeRunError.promptTooLong(_, let n, 10, false) = e else { return false }
            return n > 10
        }
    }

    @Test("--resume skips complete checkpoints and gives the same file contents")
    func resume() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = dir.appendingPathComponent("full.h5"), part = dir.appendingPathComponent("part.h5")
        _ = try ProbeJob.run(try spec(full))
        // A run of the first checkpoint only, then resumed over all three.
        let refs = try Trajectory.discover(at: trajectoryDir)
        var first = try spec(part)
        first.job.checkpoints = refs
        _ = try ProbeJob.run(first)
        // Simulate an interruption after checkpoint 0: clear the completion marks of 1 and 2.
        do {
            let f = try HDF5File.open(at: part, writable: true)
            try f.writeSlab("checkpoint_complete", index: 1, uint8: [0])
            try f.writeSlab("checkpoint_complete", index: 2, uint8: [0])
            try f.setAttribute("complete", .int(0))
            try f.close()
        }
        var again = try spec(part)
        again.job.resume = true
        let summaries = try ProbeJob.run(again)
        #expect(summaries.map(\.skipped) == [true, false, false])
        let a = try HDF5File.open(at: full, writable: false), b = try HDF5File.open(at: part, writable: false)
        defer { try? a.close(); try? b.close() }
        for name in ["attention_mass", "lens_logprob", "mc_ratio", "answer_loglik"] {
            let x = try a.readFloats(name).values, y = try b.readFloats(name).values
            #expect(zip(x, y).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "\(name) differs after resume")
        }
        #expect(try a.readStrings("generated").values == b.readStrings("generated").values)
        #expect(try b.attribute("complete") == .int(1))
    }
}

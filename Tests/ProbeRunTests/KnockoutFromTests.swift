// `intervene --knockout-from` (issue 29.8): which query positions a knockout blocks. Checked on the
// probe-trajectory fixture: from the answer position and from generation block the same answer-position
// row (identical logit difference and M_C, bit for bit), generation also blocks every generated token
// (teacher-forced rows after the answer position change, rows up to it do not), and all blocks the
// prompt's positions outside the span too (the answer-position value changes).
import Checkpoints
import Foundation
import HDF5Store
import Instrumentation
import Models
import ProbeKit
import ProbeRun
import TensorCore
import Testing
import TrajectoryJob
import Tokenization

@Suite("Knockout query positions (--knockout-from)", .serialized)
struct KnockoutFromTests {
    @Test("names carry 'from generation' / 'from all'; the answer default keeps the old names")
    func names() throws {
        var r = ExperimentRequest()
        r.knockout = ["context@0-1"]
        #expect(try r.expand(layers: 2, heads: 4).map(\.name) == ["knockout context L0-1"])
        r.knockoutFrom = .generation
        #expect(try r.expand(layers: 2, heads: 4).map(\.name) == ["knockout context L0-1 from generation"])
        r.knockoutFrom = .all
        #expect(try r.expand(layers: 2, heads: 4).map(\.name) == ["knockout context L0-1 from all"])
    }

    @Test("answer and generation agree at the answer position bit for bit; all differs there")
    func answerPosition() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var values: [KnockoutQueries: (diff: [Float], mc: [Float])] = [:]
        for from in KnockoutQueries.allCases {
            let refs = try Trajectory.discover(at: trajectoryDir).prefix(1)
            var probe = ProbeJobSpec(checkpoints: Array(refs), trajectoryRoot: trajectoryDir,
                                     probeFile: trajectoryDir.appendingPathComponent("probes.jsonl"), template: .plain,
                                     output: dir.appendingPathComponent("k-\(from.rawValue).h5"))
            probe.options.compute = ComputeContext(threads: 1)
            var request = ExperimentRequest()
            request.knockout = ["context@all"]
            request.knockoutFrom = from
            try InterventionJob.run(InterventionJobSpec(probe: probe, experiments: request))
            let f = try HDF5File.open(at: probe.job.output, writable: false)
            defer { try? f.close() }
            values[from] = (try f.readFloats("intervened_logit_diff").values, try f.readFloats("intervened_mc").values)
        }
        #expect(values[.answer]!.diff.map(\.bitPattern) == values[.generation]!.diff.map(\.bitPattern))
        #expect(values[.answer]!.mc.map(\.bitPattern) == values[.generation]!.mc.map(\.bitPattern))
        let moved = zip(values[.answer]!.diff, values[.all]!.diff).map { abs($0 - $1) }.filter(\.isFinite).max() ?? 0
        #expect(moved > 1e-3, "blocking the prompt's own rows too must change the answer-position logit difference; max change \(moved)")
    }

    @Test("generation blocks the rows after the answer position: teacher-forced rows past it change, rows up to it do not")
    func generatedRows() throws {
        let checkpoint = try Trajectory.discover(at: trajectoryDir)[0].path
        let model = try DecoderModel.load(from: checkpoint)
        let tokenizer = try Tokenizer.load(from: trajectoryDir)
        let set = try ProbeSetLoader.load(url: trajectoryDir.appendingPathComponent("probes.jsonl"))
        let t = try TokenizedProbe(PromptBuilder.build(set.probes[0], template: .plain), encoder: TokenizerEncoder(tokenizer))
        let keys = Set(try #require(t.spanPositions[.context]))
        let q = t.answerPosition
        let ids = t.promptIDs + [5, 6, 7]   // three "generated" tokens after the prompt
        func logits(_ queries: PositionSet) throws -> [Float] {
            let m = try model.intervened((0..<model.config.layers).map { .knockout(layer: $0, queries: queries, keys: .only(keys)) })
            return try m.forward(ids, logits: .all, compute: .serial).array
        }
        let answerOnly = try logits(.only([q])), generation = try logits(.from(q))
        let V = model.config.vocab
        func row(_ x: [Float], _ r: Int) -> [UInt32] { x[(r * V)..<((r + 1) * V)].map(\.bitPattern) }
        for r in 0...q { #expect(row(answerOnly, r) == row(generation, r), "row \(r) ≤ the answer position must not change") }
        for r in (q + 1)..<ids.count { #expect(row(answerOnly, r) != row(generation, r), "row \(r) after the answer position must change") }
    }
}

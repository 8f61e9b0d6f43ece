// How each generation ended and the first-answer-token readout (issue 29.7), on the demo's trained
// checkpoint at the counterfactual-accuracy peak (Demo/full-ft/checkpoint-50, 48 held-out probes).
import Checkpoints
import Foundation
import HDF5Store
import Models
import ProbeKit
import ProbeRun
import Testing
import TrajectoryJob

@Suite("Generation end and first-answer readout", .serialized)
struct ReadoutTests {
    static let checkpoint = demoDir.appendingPathComponent("full-ft/checkpoint-50")
    static let probes = demoDir.deletingLastPathComponent().appendingPathComponent("Probes/demo_heldout.jsonl")

    func run(maxNewTokens: Int, correctness: CorrectnessRule = .paper) throws -> (file: HDF5File, dir: URL, summary: CheckpointSummary) {
        let dir = try tempDir()
        var s = ProbeJobSpec(checkpoints: [CheckpointRef(name: "checkpoint-50", step: 50, path: Self.checkpoint)], trajectoryRoot: nil,
                             probeFile: Self.probes, template: .plain, output: dir.appendingPathComponent("run.h5"))
        s.options.maxNewTokens = maxNewTokens
        s.options.correctness = correctness
        s.options.compute = .init(threads: 1)
        let summary = try ProbeJob.run(s)[0]
        return (try HDF5File.open(at: s.job.output, writable: false), dir, summary)
    }

    @Test("""
          where the generation emits an answer's first token right after the prompt (step 0), the readout \
          equals the last-prompt-token logit difference and the last lens layer's M_C exactly; elsewhere it \
          is NaN only with step -1; generation_end is max_new_tokens exactly for the generations that hit the limit
          """)
    func readoutAndEnds() throws {
        let (f, dir, summary) = try run(maxNewTokens: 8)
        defer { try? f.close(); try? FileManager.default.removeItem(at: dir) }
        let steps = try f.readInts32(RunSchema.firstAnswerStep.name).values
        let diff = try f.readFloats(RunSchema.firstAnswerLogitDiff.name).values
        let mc = try f.readFloats(RunSchema.firstAnswerMC.name).values
        let logitDiff = try f.readFloats(RunSchema.logitDiff.name).values
        let lensMC = try f.readFloats(RunSchema.mcRatio.name)
        let layers = lensMC.shape.last!
        let ends = try f.readStrings(RunSchema.generationEnd.name).values
        #expect(steps.count == 48 && ends.count == 48)
        var atZero = 0
        for p in 0..<48 {
            if steps[p] == 0 {
                atZero += 1
                #expect(abs(diff[p] - logitDiff[p]) <= 1e-4 * max(1, abs(logitDiff[p])), "probe \(p): \(diff[p]) vs logit_diff \(logitDiff[p])")
                #expect(abs(mc[p] - lensMC.values[p * layers + layers - 1]) <= 1e-5, "probe \(p): \(mc[p]) vs mc_ratio \(lensMC.values[p * layers + layers - 1])")
            }
            #expect(diff[p].isNaN == (steps[p] < 0) && mc[p].isNaN == (steps[p] < 0), "probe \(p): step \(steps[p]), readout \(diff[p])")
            #expect(GenerationEnd(rawValue: ends[p]) != nil, "probe \(p): generation_end '\(ends[p])'")
        }
        #expect(atZero >= 24, "the peak checkpoint answers at once for most probes; \(atZero) did")
        #expect(summary.firstAnswerProbes == steps.filter { $0 >= 0 }.count)
        #expect(summary.truncatedGenerations == ends.filter { $0 == GenerationEnd.maxNewTokens.rawValue }.count)

        // With room for 1 token only, every generation that did not stop at once is cut by the limit.
        let (g, gdir, cut) = try run(maxNewTokens: 1)
        defer { try? g.close(); try? FileManager.default.removeItem(at: gdir) }
        let oneEnds = try g.readStrings(RunSchema.generationEnd.name).values
        let generated = try g.readStrings(RunSchema.generated.name).values
        for p in 0..<48 where !generated[p].isEmpty { #expect(oneEnds[p] != GenerationEnd.stopToken.rawValue, "probe \(p)") }
        #expect(cut.manyTruncated, "\(cut.truncatedGenerations) of \(cut.probes) cut: the CLI warns above 10%")
    }

    @Test("--correctness is recorded with its definition, and never scores more correct answers than the paper's rule")
    func correctnessRecorded() throws {
        let (paper, d1, s1) = try run(maxNewTokens: 8)
        defer { try? paper.close(); try? FileManager.default.removeItem(at: d1) }
        for rule in [CorrectnessRule.firstSentence, .noEcho] {
            let (f, d2, s2) = try run(maxNewTokens: 8, correctness: rule)
            defer { try? f.close(); try? FileManager.default.removeItem(at: d2) }
            #expect(try f.attribute("correctness") == .string(rule.rawValue))
            #expect(try f.attribute("correctness_rule") == .string(rule.definition))
            #expect(s2.counterfactualAccuracy <= s1.counterfactualAccuracy, "\(rule): \(s2.counterfactualAccuracy) > \(s1.counterfactualAccuracy)")
        }
        #expect(try paper.attribute("correctness") == .string("paper"))
    }
}

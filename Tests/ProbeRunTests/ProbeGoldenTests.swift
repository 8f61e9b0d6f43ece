// The probe job's measurements against transformers.
// Reference: Tests/Fixtures/probe-trajectory/goldens.json and Tests/Fixtures/probe-gpt2/goldens.json,
// written by Tools/goldens/make_probe_fixtures.py (transformers 5.24.0, fp32, eager attention).
// Tolerances: attention mass ≤ 1e-5; lens log-prob, M_C and answer log-likelihood ≤ 1e-4;
// lens ranks and greedy-generation token ids identical.
import Checkpoints
import Foundation
import HDF5Store
import Models
import ProbeKit
import ProbeRun
import Testing
import Tokenization

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")
let trajectoryDir = fixtures.appendingPathComponent("probe-trajectory")

struct GoldenProbe: Decodable {
    let id: String
    let prompt: String
    let prompt_ids: [Int]
    let answer_ids: [Int]
    let memory_ids: [Int]
    let attention_mass: [String: [[Double]]]
    let lens: Lens
    let answer_loglik: [Double]
    let generated_ids: [Int]
    struct Lens: Decodable { let logprob: [[Double]]; let rank: [[Int]]; let mc: [Double] }
}
struct GoldenFile: Decodable { let max_new_tokens: Int; let eos: Int; let checkpoints: [String: [GoldenProbe]] }

func loadGoldens(_ dir: URL) throws -> GoldenFile {
    try JSONDecoder().decode(GoldenFile.self, from: Data(contentsOf: dir.appendingPathComponent("goldens.json")))
}

/// Each probe's prompt built with `template` and tokenized, as the probe job does.
func built(_ probes: [Probe], template: PromptTemplate, tokenizer: Tokenizer) throws -> [(TokenizedProbe, BuiltPrompt)] {
    try probes.map { p in
        let b = try PromptBuilder.build(p, template: template)
        return (try TokenizedProbe(b, encoder: TokenizerEncoder(tokenizer)), b)
    }
}

func tempDir() throws -> URL {
    let u = FileManager.default.temporaryDirectory.appendingPathComponent("cpiscope-probe-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
    return u
}

@Suite("Probe measurements match transformers")
struct ProbeGoldenTests {
    @Test("attention mass, logit lens, answer log-likelihood and greedy ids per checkpoint",
          arguments: [("probe-trajectory", "checkpoint-0"), ("probe-trajectory", "checkpoint-10"),
                      ("probe-trajectory", "checkpoint-20"), ("probe-gpt2", "probe-gpt2")])
    func measurements(fixture: String, checkpoint: String) throws {
        let dir = fixtures.appendingPathComponent(fixture)
        let golden = try loadGoldens(dir)
        let tokenizer = try Tokenizer.load(from: dir)
        let set = try ProbeSetLoader.load(url: trajectoryDir.appendingPathComponent("probes.jsonl"))
        let ckptDir = fixture == "probe-gpt2" ? dir : dir.appendingPathComponent(checkpoint)
        let model = try DecoderModel.load(from: ckptDir)
        var options = MeasureOptions()
        options.maxNewTokens = golden.max_new_tokens
        options.stopStrings = []           // transformers' generate stops only at EOS
        options.stopTokens = [golden.eos]
        let spans = SpanKind.allCases
        for (probe, ref) in zip(set.probes, try #require(golden.checkpoints[checkpoint])) {
            let built = try PromptBuilder.build(probe, template: .plain)
            #expect(built.prompt == ref.prompt)
            let t = try TokenizedProbe(built, encoder: TokenizerEncoder(tokenizer))
            #expect(t.promptIDs == ref.prompt_ids, "\(probe.id): prompt ids")
            #expect(t.answerIDs == ref.answer_ids && t.memoryAnswerIDs == ref.memory_ids, "\(probe.id): answer ids")
            let m = try ProbeMeasurer.measure(t, built: built, model: model, options: options,
                                              decode: { tokenizer.decode($0, skipSpecialTokens: true) })
            let L = model.layers, H = model.config.heads
            var worst = 0.0
            for (name, rows) in ref.attention_mass {
                let s = try #require(spans.firstIndex { $0.rawValue == name })
                for l in 0..<L { for h in 0..<H {
                    worst = max(worst, abs(Double(m.attentionMass[(s * L + l) * H + h]) - rows[l][h]))
                } }
            }
            #expect(worst <= 1e-5, "\(checkpoint) \(probe.id): attention mass max |Δ| = \(worst)")
            var lensWorst = 0.0, mcWorst = 0.0
            for a in 0..<2 { for k in 0...L {
                lensWorst = max(lensWorst, abs(Double(m.lensLogprob[a * (L + 1) + k]) - ref.lens.logprob[a][k]))
                #expect(Int(m.lensRank[a * (L + 1) + k]) == ref.lens.rank[a][k], "\(probe.id): rank a=\(a) lens=\(k)")
            } }
            for k in 0...L { mcWorst = max(mcWorst, abs(Double(m.mcRatio[k]) - ref.lens.mc[k])) }
            #expect(lensWorst <= 1e-4, "\(checkpoint) \(probe.id): lens log-prob max |Δ| = \(lensWorst)")
            #expect(mcWorst <= 1e-4, "\(checkpoint) \(probe.id): M_C max |Δ| = \(mcWorst)")
            let llWorst = zip(m.answerLoglik, ref.answer_loglik).map { abs(Double($0) - $1) }.max()!
            #expect(llWorst <= 1e-4, "\(checkpoint) \(probe.id): answer log-likelihood max |Δ| = \(llWorst)")
            #expect(m.generatedIDs == ref.generated_ids, "\(checkpoint) \(probe.id): greedy ids \(m.generatedIDs) vs \(ref.generated_ids)")
        }
    }

    @Test("probes measured as one group (mixed prompt lengths: batched lens, answers and generation) give transformers' numbers",
          arguments: [("probe-trajectory", "checkpoint-10"), ("probe-gpt2", "probe-gpt2")])
    func batchedGeneration(fixture: String, checkpoint: String) throws {
        let dir = fixtures.appendingPathComponent(fixture)
        let golden = try loadGoldens(dir)
        let tokenizer = try Tokenizer.load(from: dir)
        let set = try ProbeSetLoader.load(url: trajectoryDir.appendingPathComponent("probes.jsonl"))
        let model = try DecoderModel.load(from: fixture == "probe-gpt2" ? dir : dir.appendingPathComponent(checkpoint))
        var options = MeasureOptions()
        options.maxNewTokens = golden.max_new_tokens
        options.stopStrings = []
        options.stopTokens = [golden.eos]
        let pairs = try built(set.probes, template: .plain, tokenizer: tokenizer)
        #expect(Set(pairs.map { $0.0.promptIDs.count }).count > 1, "the batch should mix prompt lengths")
        let batched = try ProbeMeasurer.measureBatch(pairs, model: model, options: options,
                                                     decode: { tokenizer.decode($0, skipSpecialTokens: true) })
        for (k, ref) in try #require(golden.checkpoints[checkpoint]).enumerated() {
            #expect(batched[k].generatedIDs == ref.generated_ids, "\(ref.id): batched \(batched[k].generatedIDs) vs \(ref.generated_ids)")
            let L = model.layers
            var lensWorst = 0.0
            for a in 0..<2 { for l in 0...L {
                lensWorst = max(lensWorst, abs(Double(batched[k].lensLogprob[a * (L + 1) + l]) - ref.lens.logprob[a][l]))
            } }
            #expect(lensWorst <= 1e-4, "\(ref.id): batched lens log-prob max |Δ| = \(lensWorst)")
            let mcWorst = (0...L).map { abs(Double(batched[k].mcRatio[$0]) - ref.lens.mc[$0]) }.max()!
            #expect(mcWorst <= 1e-4, "\(ref.id): batched M_C max |Δ| = \(mcWorst)")
            let llWorst = zip(batched[k].answerLoglik, ref.answer_loglik).map { abs(Double($0) - $1) }.max()!
            #expect(llWorst <= 1e-4, "\(ref.id): batched answer log-likelihood max |Δ| = \(llWorst)")
            let single = try ProbeMeasurer.measure(pairs[k].0, built: pairs[k].1, model: model, options: options,
                                                   decode: { tokenizer.decode($0, skipSpecialTokens: true) })
            #expect(single.generated == batched[k].generated)
            // The group's prompt pass stacks the prompts' rows in every product, which may sum in another
            // order than a lone prompt's (docs/cluster.md, "What results depend on"). Bound from the arithmetic
            // (Tests/NumericTolerance): two orders of a length-K float32 dot product differ by ≤ 2·γ_K·Σ|x·w|;
            // with Σ|x·w| ≤ √K·max|t| and one such difference per product on the path to the last layer's
            // pattern (4·(L−1) + 1 products; a mass is at most 1): P · 2·γ_K · √K (the same rule as
            // Tests/ModelsTests/BatchedObserverTests.swift, which checks every hook tensor).
            let c = model.config, K = max(c.dModel, c.dMLP)
            let gamma = Double(K) * 0x1p-24 / (1 - Double(K) * 0x1p-24)
            let massBound = Double(4 * (c.layers - 1) + 1) * 2 * gamma * Double(K).squareRoot()
            let d = zip(single.attentionMass, batched[k].attentionMass).map { $0.isNaN && $1.isNaN ? 0 : abs($0 - $1) }.max()!
            #expect(Double(d) <= massBound, "\(ref.id): attention mass single vs batched max |Δ| = \(d) > \(massBound)")
        }
    }

    @Test("the last logit-lens row is the model's real next-token distribution")
    func lastLensRowIsModelOutput() throws {
        let tokenizer = try Tokenizer.load(from: trajectoryDir)
        let model = try DecoderModel.load(from: trajectoryDir.appendingPathComponent("checkpoint-10"))
        let probe = try ProbeSetLoader.load(url: trajectoryDir.appendingPathComponent("probes.jsonl")).probes[2]
        let built = try PromptBuilder.build(probe, template: .plain)
        let t = try TokenizedProbe(built, encoder: TokenizerEncoder(tokenizer))
        let m = try ProbeMeasurer.measure(t, built: built, model: model, options: MeasureOptions(), decode: { _ in "" })
        let logits = try model.forward(t.promptIDs, logits: .last).array
        let mx = logits.max()!
        let lse = mx + Float(Foundation.log(logits.reduce(0.0) { $0 + Double(Foundation.exp($1 - mx)) }))
        let L = model.layers
        for (a, id) in [t.answerIDs[0], t.memoryAnswerIDs[0]].enumerated() {
            let diff = abs(m.lensLogprob[a * (L + 1) + L] - (logits[id] - lse))
            #expect(diff <= 1e-5, "answer \(a): last lens row vs model output |Δ| = \(diff)")
        }
    }
}

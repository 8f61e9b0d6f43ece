// Parity of the forward pass with Hugging Face transformers.
// Reference: goldens written by Tools/goldens/make_model_fixtures.py (transformers 5.24.0, fp32, eager
// attention, CPU). Tolerances (issue #2): attention probabilities max |Δ| ≤ 1e-5; hidden states and
// logits max |Δ| ≤ 1e-4.
import Checkpoints
import Foundation
import Instrumentation
@testable import Models
import TensorCore
import Testing

let fixturesRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/models")

struct Golden {
    let sequences: [[Int]]
    let store: WeightStore

    init(_ name: String) throws {
        let dir = fixturesRoot.appendingPathComponent(name)
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("golden.json"))) as! [String: Any]
        sequences = (meta["sequences"] as! [[NSNumber]]).map { $0.map(\.intValue) }
        store = try WeightStore(files: [dir.appendingPathComponent("golden.safetensors")])
    }

    func tensor(_ s: Int, _ key: String) throws -> Tensor { try store.tensor("s\(s).\(key)") }
}

/// Max |a - b| over all elements; shapes must match.
func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.shape == b.shape, "shape \(a.shape) vs \(b.shape)")
    var m: Float = 0
    for i in 0..<a.count { m = max(m, abs(a.pointer[i] - b.pointer[i])) }
    return m
}

/// Stacks per-layer recordings [pos, d] into [layer, pos, d].
func stack(_ ts: [Tensor]) -> Tensor {
    let out = Tensor(zeros: [ts.count] + ts[0].shape)
    for (i, t) in ts.enumerated() { (out.pointer + i * t.count).update(from: t.pointer, count: t.count) }
    return out
}

let allFixtures = ["gpt2-tied", "gpt2-inverse-layer-scale", "neox-parallel", "neox-sequential", "llama-gqa",
                   "llama-rope-llama3", "llama-rope-linear", "mistral-window", "qwen2-bias", "llama-bf16",
                   "neox-f16", "llama-sharded", "olmo2", "qwen3", "gemma2-softcap", "phi3-longrope"]

@Suite("Forward-pass parity with transformers")
struct ParityTests {
    @Test("logits, residual stream and attention match transformers", arguments: allFixtures)
    func parity(fixture: String) throws {
        let golden = try Golden(fixture)
        let model = try DecoderModel.load(from: fixturesRoot.appendingPathComponent(fixture))
        for (s, ids) in golden.sequences.enumerated() {
            let rec = HookRecorder.everything(layers: model.layers)
            let logits = try model.forward(ids, logits: .all, observer: rec)
            let checks: [(String, Tensor, Float)] = [
                ("logits", logits, 1e-4),
                ("embed", rec[.embed]!, 1e-4),
                ("resid_post", stack((0..<model.layers).map { rec[.residPost($0)]! }), 1e-4),
                ("ln_final", rec[.lnFinal]!, 1e-4),
                ("attn", stack((0..<model.layers).map { rec[.attnPattern($0)]! }), 1e-5),
            ]
            for (key, mine, tol) in checks {
                let ref = try golden.tensor(s, key)
                #expect(mine.shape == ref.shape, "\(fixture) seq \(s) \(key): shape \(mine.shape) vs \(ref.shape)")
                guard mine.shape == ref.shape else { continue }
                let diff = maxAbsDiff(mine, ref)
                #expect(diff <= tol, "\(fixture) seq \(s) \(key): max |Δ| = \(diff) > \(tol)")
            }
        }
    }

    @Test("incremental decoding with the KV cache equals the full pass", arguments: ["gpt2-tied", "llama-gqa", "mistral-window", "neox-parallel"])
    func kvCacheMatchesFullPass(fixture: String) throws {
        let golden = try Golden(fixture)
        let model = try DecoderModel.load(from: fixturesRoot.appendingPathComponent(fixture))
        let ids = golden.sequences[1]
        let ref = try golden.tensor(1, "logits")
        let cache = KVCache(layers: model.layers, kvHeads: model.config.kvHeads, dHead: model.config.dHead, capacity: 2)
        // prefill 5 tokens, then one at a time
        var worst: Float = 0
        let first = try model.forward(Array(ids[0..<5]), cache: cache, logits: .last)
        for j in 0..<model.vocab { worst = max(worst, abs(first.pointer[j] - ref.pointer[4 * model.vocab + j])) }
        for i in 5..<ids.count {
            let step = try model.forward([ids[i]], cache: cache, logits: .last)
            for j in 0..<model.vocab { worst = max(worst, abs(step.pointer[j] - ref.pointer[i * model.vocab + j])) }
        }
        #expect(worst <= 1e-4, "\(fixture): cached decoding max |Δ| = \(worst)")
    }

    @Test("causal query blocking on long prompts equals token-by-token decoding (max |Δ| ≤ 1e-4)",
          arguments: ["llama-gqa", "mistral-window", "neox-parallel"])
    func longPromptBlocks(fixture: String) throws {
        let model = try DecoderModel.load(from: fixturesRoot.appendingPathComponent(fixture))
        let n = 2 * DecoderModel.queryBlock + 37      // three query blocks, the last one partial
        let ids = (0..<n).map { ($0 * 31 + 7) % model.vocab }
        let full = try model.forward(ids, logits: .all)
        let cache = model.makeCache(capacity: n)
        var worst: Float = 0
        for i in 0..<n {
            let step = try model.forward([ids[i]], cache: cache, logits: .last)
            for j in 0..<model.vocab { worst = max(worst, abs(step.pointer[j] - full.pointer[i * model.vocab + j])) }
        }
        #expect(worst <= 1e-4, "\(fixture): blocked prefill vs one-token steps, max |Δ| = \(worst)")
    }

    @Test("recording nothing gives the same logits as recording everything")
    func observerDoesNotChangeResult() throws {
        let model = try DecoderModel.load(from: fixturesRoot.appendingPathComponent("llama-gqa"))
        let ids = [3, 14, 15, 92, 65, 35]
        let a = try model.forward(ids)
        let b = try model.forward(ids, observer: HookRecorder.everything(layers: model.layers))
        #expect(maxAbsDiff(a, b) == 0)
    }

    @Test("a last-position pass (last block pruned) gives the golden last-row logits and attention", arguments: allFixtures)
    func lastPositionPass(fixture: String) throws {
        let golden = try Golden(fixture)
        let model = try DecoderModel.load(from: fixturesRoot.appendingPathComponent(fixture))
        let ids = golden.sequences[1]
        let n = ids.count
        var lastRows = Set<HookPoint>()
        for l in 0..<model.layers { lastRows.insert(.attnPatternLast(l)) }
        let rec = HookRecorder(lastRows)
        let logits = try model.forward(ids, logits: .last, observer: rec)
        let refLogits = try golden.tensor(1, "logits")
        var worst: Float = 0
        for j in 0..<model.vocab { worst = max(worst, abs(logits.pointer[j] - refLogits.pointer[(n - 1) * model.vocab + j])) }
        #expect(worst <= 1e-4, "\(fixture): last-row logits max |Δ| = \(worst)")
        let attn = try golden.tensor(1, "attn")  // [layer, head, q, k]
        let H = model.config.heads
        var worstAttn: Float = 0
        for l in 0..<model.layers {
            let row = try #require(rec[.attnPatternLast(l)])
            #expect(row.shape == [H, n])
            for h in 0..<H { for k in 0..<n {
                let ref = attn.pointer[((l * H + h) * n + (n - 1)) * n + k]
                worstAttn = max(worstAttn, abs(row.pointer[h * n + k] - ref))
            } }
        }
        #expect(worstAttn <= 1e-5, "\(fixture): last-row attention max |Δ| = \(worstAttn)")
    }

    @Test("a pass split over threads equals a sequential pass (≤ 1e-6; column-split products may differ in the last ulp)")
    func workersDoNotChangeResults() throws {
        let model = try DecoderModel.load(from: fixturesRoot.appendingPathComponent("llama-gqa"))
        let ids = (0..<60).map { ($0 * 37) % model.vocab }
        let a = try model.forward(ids, compute: ComputeContext(threads: 4))
        let b = try model.forward(ids, compute: .serial)
        let diff = maxAbsDiff(a, b)
        #expect(diff <= 1e-6, "threads 4 vs 1: max |Δ| = \(diff)")
    }

    @Test("BF16/F16 weights stay 16-bit in the mapping (no float32 copy) and give the float32 result",
          arguments: ["llama-bf16", "neox-f16"])
    func halfWeightsStayHalf(fixture: String) throws {
        let model = try DecoderModel.load(from: fixturesRoot.appendingPathComponent(fixture))
        #expect(model.blocks.allSatisfy { $0.attnOut.half != nil })
        #expect(model.tokenEmbedding.half != nil && model.tokenEmbedding.float == nil)
        let ids = try Golden(fixture).sequences[1]
        let kept = try model.forward(ids)
        let dir = fixturesRoot.appendingPathComponent(fixture)
        let context = LoadContext()
        context.keepHalfWeights = false
        let decoded = try DecoderModel.load(config: try ModelConfig.load(from: dir), store: try WeightStore(directory: dir),
                                            checkpoint: dir.path, context: context)
        #expect(decoded.blocks.allSatisfy { $0.attnOut.half == nil })
        let diff = maxAbsDiff(kept, try decoded.forward(ids))
        #expect(diff <= 1e-5, "\(fixture): 16-bit kept vs decoded up front, max |Δ| = \(diff)")
    }

    @Test("hook names round-trip in TransformerLens style")
    func hookNames() {
        let hooks: [HookPoint] = [.embed, .residPre(3), .attnPattern(0), .attnPatternLast(5), .attnOut(2), .residMid(1), .mlpOut(4), .residPost(11), .lnFinal, .logits]
        for h in hooks { #expect(HookPoint(name: h.description) == h, "\(h)") }
        #expect(HookPoint.attnPattern(3).description == "blocks.3.attn.hook_pattern")
        #expect(HookPoint(name: "blocks.x.hook_resid_pre") == nil)
    }
}

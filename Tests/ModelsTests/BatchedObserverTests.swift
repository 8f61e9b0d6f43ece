// Observers in a multi-sequence pass (DecoderModel.forward(_ sequences:observers:)): each sequence's
// observer sees what it sees in a pass of that sequence alone. Reference: the single-sequence pass of the
// same model (the one-prompt-per-pass probe job), itself checked against transformers in ParityTests.
//
// What is bit-identical, and why: the embedding and block 0's input (no arithmetic over other rows), the
// shapes and first positions of every view, and the whole pass for a group of one (the same code path).
// What may differ in the last bits: everything downstream of a weight product, because a product over the
// stacked rows of several sequences may be blocked differently by the kernel (OpenBLAS chooses its kernel
// and blocking by the row count; the bf16 kernel too), i.e. summed in another order. Tolerance, from the
// arithmetic (Tests/NumericTolerance/Tolerance.swift): a float32 dot product of length K is within
// γ_K·Σ|x·w| of the exact value in any summation order, so two orders differ by at most 2·γ_K·Σ|x·w|.
// We bound Σ|x·w| of each product by the largest magnitude the observed tensor reaches in the lone pass
// times √K (Cauchy–Schwarz with ‖x‖, ‖w‖ of rows of about unit scale after a norm), and let the
// difference accumulate over the P weight products on the path to the hook (4 per block: q/k/v, o, up,
// down; + 1 for the unembedding), with no amplification: bound = P · 2·γ_K · √K · max|t|, K = the
// longest dot product (max(d_model, d_mlp)). The test prints the worst measured |Δ| / bound.
import Checkpoints
import Foundation
import Instrumentation
@testable import Models
import TensorCore
import Testing

@Suite("Observers in a multi-sequence pass see what a lone pass shows them")
struct BatchedObserverTests {
    /// Three prompts of different lengths (the middle one long enough for two query blocks on some fixtures).
    static func prompts(vocab: Int) -> [[Int]] {
        [(0..<7).map { ($0 * 37 + 5) % vocab }, (0..<19).map { ($0 * 53 + 11) % vocab }, (0..<4).map { ($0 * 71 + 2) % vocab }]
    }

    /// Every hook of every layer, except the full pattern of layers in `skipPatterns`.
    static func recorder(layers: Int) -> HookRecorder { HookRecorder.everything(layers: layers) }

    /// The probe job's observers for one prompt: they read only the last row of the last block, so that
    /// sequence's last block runs on its last row alone (the rows updated are then not contiguous).
    final class LastRowObservers {
        let resid: ResidualRecorder
        let components: ComponentRecorder
        let span: SpanAttentionRecorder
        let group: ObserverGroup
        init(_ c: ModelConfig, last: Int) {
            resid = ResidualRecorder(position: last, layers: c.layers, dModel: c.dModel)
            components = ComponentRecorder(position: last, layers: c.layers, heads: c.heads, dHead: c.dHead, dModel: c.dModel)
            span = SpanAttentionRecorder(queryPosition: last, spans: [[0, 1], nil, Array(0...last)], layers: c.layers, heads: c.heads)
            group = ObserverGroup([resid, components, span])
        }
        var values: [Float] { resid.residuals + components.embed + components.z + components.pattern + components.mlp + components.finalResidual + span.mass }
    }

    static func gamma(_ k: Int) -> Double { Double(k) * 0x1p-24 / (1 - Double(k) * 0x1p-24) }

    /// Weight products on the path to `hook` (see the file comment).
    static func products(_ hook: HookPoint, layers: Int) -> Int {
        switch hook {
        case .embed: return 0
        case .residPre(let l): return 4 * l
        case .attnPattern(let l), .attnPatternLast(let l), .attnZ(let l): return 4 * l + 1
        case .attnOut(let l), .residMid(let l): return 4 * l + 2
        case .mlpOut(let l), .residPost(let l): return 4 * l + 4
        case .lnFinal: return 4 * layers
        case .logits: return 4 * layers + 1
        }
    }

    @Test("every hook of each sequence equals its lone pass within P·2γ_K·√K·max|t|; embed and block 0's input bit-identical",
          arguments: ["gpt2-tied", "neox-parallel", "llama-gqa", "mistral-window", "olmo2", "qwen3", "gemma2-softcap", "phi3-longrope", "llama-bf16"])
    func observedTensorsMatchLonePasses(fixture: String) throws {
        let model = try DecoderModel.load(from: fixturesRoot.appendingPathComponent(fixture))
        let c = model.config
        let prompts = Self.prompts(vocab: c.vocab)
        let K = max(c.dModel, c.dMLP)
        let perProduct = 2 * Self.gamma(K) * Double(K).squareRoot()

        // Sequences 0 and 2 record everything; sequence 1 carries the probe job's last-row observers.
        let batchedRecs = [Self.recorder(layers: c.layers), Self.recorder(layers: c.layers)]
        let batchedProbe = LastRowObservers(c, last: prompts[1].count - 1)
        let caches = prompts.map { model.makeCache(capacity: $0.count + 2) }
        let logits = try model.forward(zip(prompts, caches).map { SequenceInput(ids: $0, cache: $1) }, logits: .last,
                                       observers: [batchedRecs[0], batchedProbe.group, batchedRecs[1]])
        #expect(caches.map(\.length) == prompts.map(\.count))

        var worstRatio = 0.0, worstAt = ""
        for (k, s) in [0, 2].enumerated() {
            let alone = Self.recorder(layers: c.layers)
            let aloneLogits = try model.forward(prompts[s], logits: .last, observer: alone)
            for (hook, ref) in alone.tensors {
                let mine = try #require(batchedRecs[k][hook], "\(fixture) seq \(s): \(hook) not observed")
                #expect(mine.shape == ref.shape, "\(fixture) seq \(s) \(hook): shape \(mine.shape) vs \(ref.shape)")
                guard mine.shape == ref.shape else { continue }
                var scale: Float = 0, diff: Float = 0
                for i in 0..<ref.count { scale = max(scale, abs(ref.pointer[i])); diff = max(diff, abs(mine.pointer[i] - ref.pointer[i])) }
                switch hook {
                case .embed, .residPre(0):
                    #expect(diff == 0, "\(fixture) seq \(s) \(hook): max |Δ| = \(diff), must be bit-identical")
                default:
                    let bound = Double(Self.products(hook, layers: c.layers)) * perProduct * Double(scale)
                    let ratio = bound > 0 ? Double(diff) / bound : (diff == 0 ? 0 : .infinity)
                    if ratio > worstRatio { worstRatio = ratio; worstAt = "seq \(s) \(hook) |Δ| \(diff)" }
                    #expect(Double(diff) <= bound, "\(fixture) seq \(s) \(hook): max |Δ| = \(diff) > bound \(bound)")
                }
            }
            var d: Float = 0, scale: Float = 0
            for j in 0..<c.vocab {
                d = max(d, abs(logits.pointer[s * c.vocab + j] - aloneLogits.pointer[j]))
                scale = max(scale, abs(aloneLogits.pointer[j]))
            }
            #expect(Double(d) <= Double(Self.products(.logits, layers: c.layers)) * perProduct * Double(scale),
                    "\(fixture) seq \(s) returned logits: max |Δ| = \(d)")
        }

        // The last-row-only sequence: same observers alone.
        let aloneProbe = LastRowObservers(c, last: prompts[1].count - 1)
        _ = try model.forward(prompts[1], logits: .last, observer: aloneProbe.group)
        let (a, b) = (batchedProbe.values, aloneProbe.values)
        #expect(a.count == b.count)
        var diff: Float = 0, scale: Float = 0
        for i in 0..<min(a.count, b.count) {
            if a[i].isNaN != b[i].isNaN { diff = .infinity }
            if !b[i].isNaN { scale = max(scale, abs(b[i])); diff = max(diff, abs(a[i] - b[i])) }
        }
        let bound = Double(Self.products(.residPost(c.layers - 1), layers: c.layers)) * perProduct * Double(scale)
        #expect(Double(diff) <= bound, "\(fixture) last-row observers: max |Δ| = \(diff) > \(bound)")
        print("\(fixture): worst |Δ| / bound = \(worstRatio) (\(worstAt)); last-row observers max |Δ| = \(diff)")
    }

    @Test("a group of one through the sequences API is bit-identical to the lone pass, observers included")
    func groupOfOneIsTheLonePass() throws {
        let model = try DecoderModel.load(from: fixturesRoot.appendingPathComponent("llama-gqa"))
        let ids = Self.prompts(vocab: model.vocab)[1]
        let a = Self.recorder(layers: model.layers), b = Self.recorder(layers: model.layers)
        let la = try model.forward(ids, logits: .last, observer: a)
        let lb = try model.forward([SequenceInput(ids: ids, cache: model.makeCache(capacity: ids.count))], logits: .last, observers: [b])
        #expect(maxAbsDiff(la, lb) == 0)
        for (hook, t) in a.tensors { #expect(b[hook].map { maxAbsDiff($0, t) } == 0, "\(hook)") }
    }

    @Test("interventions apply per sequence at its own positions in a multi-sequence pass")
    func interventionsPerSequence() throws {
        let base = try DecoderModel.load(from: fixturesRoot.appendingPathComponent("llama-gqa"))
        let model = try base.intervened([.zeroHeads(layer: 0, heads: [1], positions: .only([2, 5])),
                                         Intervention(.write(.residPost(1), heads: nil, edit: .scale(0.5)), positions: .from(3))])
        let c = model.config
        let prompts = Self.prompts(vocab: model.vocab)
        let K = max(c.dModel, c.dMLP)
        let batched = try model.forward(prompts.map { SequenceInput(ids: $0, cache: model.makeCache(capacity: $0.count)) }, logits: .last)
        for (s, p) in prompts.enumerated() {
            let alone = try model.forward(p, logits: .last)
            let plain = try base.forward(p, logits: .last)
            var d: Float = 0, scale: Float = 0, effect: Float = 0
            for j in 0..<model.vocab {
                d = max(d, abs(batched.pointer[s * model.vocab + j] - alone.pointer[j]))
                scale = max(scale, abs(alone.pointer[j]))
                effect = max(effect, abs(alone.pointer[j] - plain.pointer[j]))
            }
            let bound = Double(Self.products(.logits, layers: c.layers)) * 2 * Self.gamma(K) * Double(K).squareRoot() * Double(scale)
            #expect(Double(d) <= bound, "seq \(s): max |Δ| = \(d) > \(bound)")
            #expect(Double(effect) > 100 * bound, "seq \(s): the interventions change the logits (max |Δ| = \(effect))")
        }
    }
}

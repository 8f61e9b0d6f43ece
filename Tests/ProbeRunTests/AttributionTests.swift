// Direct logit attribution, interventions in generation, and concurrent models, against transformers.
// Reference: Tests/Fixtures/dla/goldens.json, written by Tools/goldens/make_dla_goldens.py (transformers
// 5.24.0, fp32, eager; hooks on each o_proj's input and the final norm's input, the final norm frozen at the
// real residual's scale, TransformerLens `apply_ln_to_stack` + `logit_attrs` semantics), not by cpiscope.
// Tolerance: 1e-4 absolute for every attribution; the components sum to the logit difference within 1e-4.
import Checkpoints
import Foundation
import Instrumentation
import Models
import ProbeKit
import ProbeRun
import TensorCore
import Testing
import Tokenization

let dlaGoldenURL = fixtures.appendingPathComponent("dla/goldens.json")
let demoDir = fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Demo")

struct DLAGolden: Decodable {
    struct Case: Decodable {
        let id: String?
        let ids: [Int]
        let answers: [Int]
        let spans: [String: [Int]]
        let logit_diff: Double
        let head_dla: [[Double]]
        let head_dla_by_span: [String: [[Double]]]
        let mlp_dla: [Double]
        let embed_dla: Double
        let bias_dla: Double
        let norm_bias_dla: Double
    }
    struct Generation: Decodable { let id: String; let prompt_ids: [Int]; let clean_ids: [Int]; let zeroed_ids: [Int] }
    struct InterventionCase: Decodable { let max_new_tokens: Int; let eos: Int; let generations: [Generation] }
    struct Knocked: Decodable { let id: String; let ids: [Int]; let keys: [Int]; let logits: [Double] }
    struct KnockoutCase: Decodable { let probes: [Knocked] }
    let cases: [String: [Case]]
    let intervention: InterventionCase
    let knockout: KnockoutCase
}

func loadDLAGolden() throws -> DLAGolden {
    try JSONDecoder().decode(DLAGolden.self, from: Data(contentsOf: dlaGoldenURL))
}

/// Max |Δ| between an attribution and its golden over every component; `spanIndex` maps golden span names
/// to indices in `a.headBySpan`.
func attributionDiff(_ a: LogitAttribution, _ g: DLAGolden.Case, layers L: Int, heads H: Int, spanIndex: [String: Int]) -> (worst: Double, what: String) {
    var worst = 0.0, what = ""
    func see(_ x: Float, _ ref: Double, _ name: String) {
        let d = abs(Double(x) - ref)
        if !(d <= worst) { worst = d.isNaN ? .infinity : d; what = name }
    }
    see(a.logitDiff, g.logit_diff, "logit_diff")
    see(a.embed, g.embed_dla, "embed_dla")
    see(a.attnBias, g.bias_dla, "bias_dla")
    see(a.normBias, g.norm_bias_dla, "norm_bias_dla")
    for l in 0..<L {
        see(a.mlp[l], g.mlp_dla[l], "mlp_dla[\(l)]")
        for h in 0..<H {
            see(a.head[l * H + h], g.head_dla[l][h], "head_dla[\(l),\(h)]")
            for (name, rows) in g.head_dla_by_span {
                guard let s = spanIndex[name] else { continue }
                see(a.headBySpan[(s * L + l) * H + h], rows[l][h], "head_dla_by_span[\(name),\(l),\(h)]")
            }
        }
    }
    return (worst, what)
}

func tensorDiff(_ a: Tensor, _ b: Tensor) -> Float {
    precondition(a.count == b.count)
    var d: Float = 0
    for i in 0..<a.count { d = max(d, abs(a.pointer[i] - b.pointer[i])) }
    return d
}

@Suite("Direct logit attribution and interventions against transformers")
struct AttributionTests {
    @Test("per head, per source span, per MLP, embedding and biases; components sum to the logit difference",
          arguments: ["gpt2-tied", "neox-parallel", "neox-sequential", "llama-gqa", "qwen2-bias"])
    func fixtureModels(name: String) throws {
        let golden = try loadDLAGolden()
        let g = try #require(golden.cases[name]?.first)
        let model = try DecoderModel.load(from: fixtures.appendingPathComponent("models/\(name)"))
        let c = model.config
        let names = g.spans.keys.sorted()
        let rec = ComponentRecorder(position: g.ids.count - 1, layers: c.layers, heads: c.heads, dHead: c.dHead, dModel: c.dModel)
        let cache = model.makeCache(capacity: g.ids.count)
        let logits = try model.forward(g.ids, cache: cache, logits: .last, observer: rec).array
        let a = model.directLogitAttribution(records: [rec], caches: [cache], spans: [names.map { g.spans[$0] }],
                                             answers: [(g.answers[0], g.answers[1])], logits: [logits])[0]
        let (worst, what) = attributionDiff(a, g, layers: c.layers, heads: c.heads,
                                            spanIndex: Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) }))
        #expect(worst <= 1e-4, "\(name): max |Δ| = \(worst) at \(what)")
        #expect(abs(a.componentSum - a.logitDiff) <= 1e-4, "\(name): components sum to \(a.componentSum), logit diff \(a.logitDiff)")
        #expect(abs(a.remainder) <= 1e-4, "\(name): remainder \(a.remainder)")
    }

    @Test("the components sum to the logit difference for the families with q/k norms, post-norms, soft-capping and fused projections",
          arguments: ["olmo2", "qwen3", "gemma2-softcap", "phi3-longrope"])
    func sumIdentity(name: String) throws {
        let dir = fixtures.appendingPathComponent("models/\(name)")
        let model = try DecoderModel.load(from: dir)
        let c = model.config
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("golden.json"))) as! [String: Any]
        let ids = (meta["sequences"] as! [[NSNumber]])[1].map(\.intValue)
        let rec = ComponentRecorder(position: ids.count - 1, layers: c.layers, heads: c.heads, dHead: c.dHead, dModel: c.dModel)
        let cache = model.makeCache(capacity: ids.count)
        let logits = try model.forward(ids, cache: cache, logits: .last, observer: rec).array
        let (a, b) = (3, 7)
        let attr = model.directLogitAttribution(records: [rec], caches: [cache], spans: [[Array(0..<ids.count)]],
                                                answers: [(a, b)], logits: [logits])[0]
        #expect(abs(attr.remainder) <= 1e-4, "\(name): components \(attr.componentSum) vs logit diff \(attr.logitDiff)")
        // Every head's source split adds up to the head (one span covering every key).
        let worst = (0..<(c.layers * c.heads)).map { abs(attr.head[$0] - attr.headBySpan[$0]) }.max()!
        #expect(worst <= 1e-5, "\(name): by-source sums vs heads max |Δ| = \(worst)")
        if let cap = c.finalLogitSoftcap {
            // Attribution is of the uncapped difference: undo the model's cap on its real logits.
            let uncapped = { (l: Float) in cap * Foundation.atanh(l / cap) }
            let expected = uncapped(logits[a]) - uncapped(logits[b])
            #expect(abs(expected - attr.logitDiff) <= 1e-3, "\(name): uncapped diff \(expected) vs \(attr.logitDiff)")
        } else {
            #expect(abs(attr.logitDiff - (logits[a] - logits[b])) <= 1e-6)
        }
    }

    @Test("through the probe job's measurements (probe-trajectory, and the demo at its peak and final checkpoints)",
          arguments: ["probe-trajectory/checkpoint-10", "demo/full-ft/checkpoint-50", "demo/full-ft/checkpoint-500"])
    func probeRuns(key: String) throws {
        let isDemo = key.hasPrefix("demo/")
        if isDemo && !FileManager.default.fileExists(atPath: demoDir.appendingPathComponent("base/tokenizer.json").path) { return }
        let golden = try loadDLAGolden()
        let rows = try #require(golden.cases[key])
        let checkpoint = isDemo ? demoDir.appendingPathComponent(String(key.dropFirst("demo/".count)))
                                : fixtures.appendingPathComponent(key)
        let tokenizer = try Tokenizer.load(from: isDemo ? demoDir.appendingPathComponent("base") : trajectoryDir)
        let probeFile = isDemo ? demoDir.deletingLastPathComponent().appendingPathComponent("Probes/demo_heldout.jsonl")
                               : trajectoryDir.appendingPathComponent("probes.jsonl")
        let probes = try ProbeSetLoader.load(url: probeFile).probes
        let model = try DecoderModel.load(from: checkpoint)
        let pairs = try rows.map { g -> (TokenizedProbe, BuiltPrompt) in
            let p = try #require(probes.first { $0.id == g.id })
            let b = try PromptBuilder.build(p, template: .plain)
            return (try TokenizedProbe(b, encoder: TokenizerEncoder(tokenizer)), b)
        }
        var options = MeasureOptions()
        options.maxNewTokens = 0
        let measured = try ProbeMeasurer.measureBatch(pairs, model: model, options: options, decode: { _ in "" })
        let spanIndex = Dictionary(uniqueKeysWithValues: SpanKind.allCases.enumerated().map { ($1.rawValue, $0) })
        for (k, g) in rows.enumerated() {
            #expect(pairs[k].0.promptIDs == g.ids, "\(key) \(g.id ?? ""): prompt ids")
            #expect([pairs[k].0.answerIDs.first, pairs[k].0.memoryAnswerIDs.first] == [g.answers[0], g.answers[1]], "answer tokens")
            let a = measured[k].attribution
            let (worst, what) = attributionDiff(a, g, layers: model.layers, heads: model.config.heads, spanIndex: spanIndex)
            #expect(worst <= 1e-4, "\(key) \(g.id ?? ""): max |Δ| = \(worst) at \(what)")
            #expect(abs(a.remainder) <= 1e-4 && abs(a.componentSum - a.logitDiff) <= 1e-4,
                    "\(key) \(g.id ?? ""): remainder \(a.remainder)")
        }
    }

    @Test("an intervention reaches generation: every head of the last layer zeroed gives transformers' greedy ids")
    func interventionInGeneration() throws {
        let golden = try loadDLAGolden().intervention
        let tokenizer = try Tokenizer.load(from: trajectoryDir)
        let model = try DecoderModel.load(from: trajectoryDir.appendingPathComponent("checkpoint-10"))
        let zeroed = try model.intervened([.zeroHeads(layer: model.layers - 1)])
        let set = try ProbeSetLoader.load(url: trajectoryDir.appendingPathComponent("probes.jsonl"))
        var options = MeasureOptions()
        options.maxNewTokens = golden.max_new_tokens
        options.stopStrings = []
        options.stopTokens = [golden.eos]
        let pairs = try built(set.probes, template: .plain, tokenizer: tokenizer)
        let decode: ([Int]) -> String = { tokenizer.decode($0, skipSpecialTokens: true) }
        let clean = try ProbeMeasurer.measureBatch(pairs, model: model, options: options, decode: decode)
        let intervened = try ProbeMeasurer.measureBatch(pairs, model: zeroed, options: options, decode: decode)
        var changed = 0
        for (k, g) in golden.generations.enumerated() {
            #expect(pairs[k].0.promptIDs == g.prompt_ids)
            #expect(clean[k].generatedIDs == g.clean_ids, "\(g.id): clean \(clean[k].generatedIDs) vs \(g.clean_ids)")
            #expect(intervened[k].generatedIDs == g.zeroed_ids, "\(g.id): zeroed \(intervened[k].generatedIDs) vs \(g.zeroed_ids)")
            if g.clean_ids != g.zeroed_ids { changed += 1 }
        }
        #expect(changed > 0, "the intervention must change some generation")
        // The answers' teacher-forced log-likelihoods change too (they run through the same intervened block).
        #expect(zip(clean, intervened).contains { $0.answerLoglik != $1.answerLoglik })
    }

    @Test("interventions are checked against the model's shape")
    func interventionValidation() throws {
        let model = try DecoderModel.load(from: trajectoryDir.appendingPathComponent("checkpoint-10"))
        #expect(throws: InterventionError.self) { try model.intervened([.zeroHeads(layer: model.layers)]) }
        #expect(throws: InterventionError.self) { try model.intervened([.zeroHeads(layer: 0, heads: [model.config.heads])]) }
        #expect(throws: InterventionError.self) { try model.intervened([Intervention(.write(.attnOut(0), heads: nil, edit: .add([1, 2])))]) }
        #expect(throws: InterventionError.self) { try model.intervened([Intervention(.write(.attnPattern(0), heads: nil, edit: .zero))]) }
        // Zeroing with an all-zero replace equals zeroing; a knockout of every key but the query's own changes the output.
        let ids = Array(try loadGoldens(trajectoryDir).checkpoints["checkpoint-10"]![0].prompt_ids)
        let zeroA = try model.intervened([.zeroHeads(layer: 1)]).forward(ids, logits: .last)
        let zeroB = try model.intervened([Intervention(.write(.attnZ(1), heads: nil, edit: .replace([Float](repeating: 0, count: model.config.dHead))))])
            .forward(ids, logits: .last)
        #expect(tensorDiff(zeroA, zeroB) == 0)
    }

    @Test("attention knockout (last position → context, every layer and head) gives transformers' logits with a −∞ score mask")
    func knockout() throws {
        let golden = try loadDLAGolden().knockout
        let model = try DecoderModel.load(from: trajectoryDir.appendingPathComponent("checkpoint-10"))
        for g in golden.probes {
            let last = g.ids.count - 1
            let knocked = try model.intervened((0..<model.layers).map {
                .knockout(layer: $0, queries: .only([last]), keys: .only(Set(g.keys)))
            })
            let logits = try knocked.forward(g.ids, logits: .last).array
            let worst = zip(logits, g.logits).map { abs(Double($0) - $1) }.max()!
            #expect(worst <= 1e-4, "\(g.id): knocked-out logits max |Δ| = \(worst)")
            let plain = try model.forward(g.ids, logits: .last).array
            #expect(zip(plain, logits).map { abs($0 - $1) }.max()! > 1e-3, "\(g.id): the knockout must change the output")
        }
    }

    @Test("two models run concurrently in one process give their sequential results exactly")
    func concurrentModels() throws {
        let tokenizer = try Tokenizer.load(from: trajectoryDir)
        let set = try ProbeSetLoader.load(url: trajectoryDir.appendingPathComponent("probes.jsonl"))
        let pairs = try built(set.probes, template: .plain, tokenizer: tokenizer)
        let models = try ["checkpoint-0", "checkpoint-20"].map { try DecoderModel.load(from: trajectoryDir.appendingPathComponent($0)) }
        let decode: @Sendable ([Int]) -> String = { tokenizer.decode($0, skipSpecialTokens: true) }
        var options = MeasureOptions()
        options.compute = ComputeContext(threads: 2)
        let sequential = try models.map { try ProbeMeasurer.measureBatch(pairs, model: $0, options: options, decode: decode) }
        let box = ResultBox(count: 2)
        let opts = options
        let shared = UncheckedSendable(pairs)
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            box.set(i, Result { try ProbeMeasurer.measureBatch(shared.value, model: models[i], options: opts, decode: decode) })
        }
        for i in 0..<2 {
            let concurrent = try box.get(i)
            for (a, b) in zip(sequential[i], concurrent) {
                #expect(a.generatedIDs == b.generatedIDs)
                #expect(a.attentionMass.elementsEqual(b.attentionMass) { $0 == $1 || ($0.isNaN && $1.isNaN) })
                #expect(a.mcRatio == b.mcRatio && a.answerLoglik == b.answerLoglik && a.attribution.head == b.attribution.head)
            }
        }
    }
}

final class ResultBox: @unchecked Sendable {
    private var results: [Result<[ProbeMeasurement], any Error>?]
    private let lock = NSLock()
    init(count: Int) { results = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ r: Result<[ProbeMeasurement], any Error>) { lock.lock(); results[i] = r; lock.unlock() }
    func get(_ i: Int) throws -> [ProbeMeasurement] { lock.lock(); defer { lock.unlock() }; return try results[i]!.get() }
}

// Probes through one model: every measurement of the probe job from one instrumented prompt pass over
// the prompts of a probe group (each prompt observed on its own), then the logit lens, two teacher-forced
// answer continuations and a greedy generation, batched over the group and sharing each prompt's KV cache.
import Checkpoints
import Foundation
import Instrumentation
import Models
import ProbeKit
import TensorCore
import TrajectoryJob

/// Measurement settings shared by all probes of a run.
public struct MeasureOptions: Sendable {
    /// Greedy generation stops after this many new tokens (the probe job's default adapts it to the
    /// probe set: `ProbeJob.automaticMaxNewTokens`).
    public var maxNewTokens: Int = 12
    /// …or when the decoded continuation contains one of these strings after its first visible character
    /// (the text is cut there; `StopConditions.cut`).
    public var stopStrings: [String] = ["\n"]
    /// …or at one of these token ids (EOS).
    public var stopTokens: Set<Int> = []
    /// Prompts longer than this many tokens are refused with a clear error (nil: the model's limit).
    public var maxPromptTokens: Int? = nil
    /// Layers whose full attention pattern [head, query_pos, key_pos] is kept (--dump).
    public var dumpLayers: [Int] = []
    /// Threads for every pass (--threads).
    public var compute: ComputeContext = .allCores
    /// A tuned lens scored beside the logit lens (--lens tuned:PATH; TunedLens.swift).
    public var tunedLens: TunedLens? = nil
    /// How generations are scored for the two answers (--correctness; ProbeKit/AnswerCheck.swift).
    public var correctness: CorrectnessRule = .paper

    public init() {}
}

/// What one probe produced under one checkpoint. Shapes use the run's span order `SpanKind.allCases`.
public struct ProbeMeasurement: Sendable {
    /// [span, layer, head] attention mass from the answer position; NaN for a missing span.
    public var attentionMass: [Float]
    /// [answer (context, memory), lens_layer] log-probability of each answer's first token.
    public var lensLogprob: [Float]
    /// [answer, lens_layer] rank (1 = top) of each answer's first token.
    public var lensRank: [Int32]
    /// [lens_layer] M_C = p_ctx / (p_ctx + p_mem).
    public var mcRatio: [Float]
    /// [answer] teacher-forced log-likelihood of the whole answer.
    public var answerLoglik: [Float]
    /// Greedy continuation (decoded, cut at the first stop string) and its ids.
    public var generated: String
    public var generatedIDs: [Int]
    public var counterfactualCorrect: Bool
    public var parametricCorrect: Bool
    /// Why the greedy generation ended (`max_new_tokens`: it may be cut mid-answer).
    public var generationEnd: GenerationEnd = .maxNewTokens
    /// The first-answer-token readout: the generation step that emitted the first token of either answer
    /// (0 = right after the prompt; -1 = neither was emitted), and the logit difference
    /// logit[context answer] − logit[memory answer] (first tokens) and M_C = p_ctx / (p_ctx + p_mem) of
    /// the model's output at that step (NaN when -1).
    public var firstAnswerStep: Int32 = -1
    public var firstAnswerLogitDiff: Float = .nan
    public var firstAnswerMC: Float = .nan
    /// Direct logit attribution at the answer position (context answer a vs memory answer b, first tokens).
    public var attribution: LogitAttribution
    /// [dump layer, head, query_pos, key_pos] for `MeasureOptions.dumpLayers` (empty when none).
    public var dumpedPatterns: [Float]
    /// [lens_layer, pos, d_model] residual streams at every position (only with dumps).
    public var dumpedResiduals: [Float]
    /// The tuned lens's `lensLogprob`, `lensRank` and `mcRatio` (empty without `MeasureOptions.tunedLens`).
    public var tunedLensLogprob: [Float] = []
    public var tunedLensRank: [Int32] = []
    public var tunedMCRatio: [Float] = []
}

/// The phases of a probe group's measurement (`ProbeMeasurer.measureBatch`), as CPISCOPE_TIMING=1 reports them.
extension JobPhase {
    public static let promptPass = JobPhase("instrumented prompt passes")
    public static let attribution = JobPhase("direct logit attribution")
    public static let logitLens = JobPhase("logit lens")
    public static let answers = JobPhase("teacher-forced answers")
    public static let generation = JobPhase("greedy generation")
}

public enum ProbeMeasurer {
    /// The longest prompt a run accepts, and whether that limit is the model's (else --max-tokens).
    /// Without --max-tokens it is the model's position count (`n_positions` / `max_position_embeddings`):
    /// a longer prompt is outside the trained context, and its attention costs O(tokens²) memory (a
    /// 64 KiB context is ~28k tokens: gigabytes per layer). --max-tokens may lower it, and for rotary
    /// models (no position table) raise it; learned position embeddings (GPT-2) cap it regardless.
    public static func promptLimit(config c: ModelConfig, maxPromptTokens: Int?) -> (limit: Int, byModel: Bool) {
        guard let m = maxPromptTokens else { return (c.maxPositions, true) }
        if c.learnedPositions && m > c.maxPositions { return (c.maxPositions, true) }
        return (m, false)
    }

    /// Runs every measurement of `probe` through `model`. `decode` turns generated ids into text.
    public static func measure(_ probe: TokenizedProbe, built: BuiltPrompt, model: DecoderModel, options: MeasureOptions,
                               decode: ([Int]) -> String) throws -> ProbeMeasurement {
        try measureBatch([(probe, built)], model: model, options: options, decode: decode)[0]
    }

    /// Measures several probes, all of them together, so that each weight matrix is read once per step
    /// for the whole group rather than once per probe: one instrumented prompt pass over all prompts
    /// (their rows stacked in every product, each prompt observed on its own: `promptPasses`), the
    /// logit lens of every probe's residuals in one unembedding product, the teacher-forced
    /// answers one token position at a time over all prompt caches (`continuationLogLikelihoodBatch`),
    /// and the greedy generation one batched decoding step per token (`greedyContinueBatch`).
    public static func measureBatch(_ probes: [(TokenizedProbe, BuiltPrompt)], model: DecoderModel, options: MeasureOptions,
                                    decode: ([Int]) -> String) throws -> [ProbeMeasurement] {
        let c = model.config
        var clock = PhaseClock()
        let passes = try promptPasses(probes.map(\.0), model: model, options: options)
        // The work of each phase (PhaseTimes: its roofline bound under CPISCOPE_TIMING=1).
        clock.lap(.promptPass, work: .forward(model, tokens: probes.reduce(0) { $0 + $1.0.promptIDs.count }, logitRows: probes.count, passes: 1))

        // Direct logit attribution from each prompt pass's components and cache, before the caches grow.
        let attribution = model.directLogitAttribution(
            records: passes.map(\.components), caches: passes.map(\.cache), spans: passes.map(\.spans),
            answers: probes.map { ($0.0.answerIDs.first ?? -1, $0.0.memoryAnswerIDs.first ?? -1) },
            logits: passes.map(\.lastLogits))
        clock.lap(.attribution)

        // Logit lens over embeddings + every block, for the first token of each answer (and the tuned lens, if any).
        let firstTokens = probes.map { [$0.0.answerIDs.first ?? -1, $0.0.memoryAnswerIDs.first ?? -1] }
        let lens = LogitLens.scoresBatch(model: model, residuals: passes.map(\.residuals), lensLayers: c.layers + 1,
                                         targets: firstTokens, compute: options.compute)
        let tuned = options.tunedLens?.scores(model: model, residuals: passes.map(\.residuals), targets: firstTokens, compute: options.compute)
        clock.lap(.logitLens, work: .unembedding(model, rows: probes.count * (c.layers + 1), passes: 1))

        let loglik = try answerLogLikelihoods(probes.map(\.0), caches: passes.map(\.cache), lastLogits: passes.map(\.lastLogits),
                                              model: model, compute: options.compute)
        let answerTokens = probes.reduce(0) { $0 + $1.0.answerIDs.count + $1.0.memoryAnswerIDs.count }
        // Two batched teacher-forced passes: the context answers of the group, then the memory answers.
        clock.lap(.answers, work: .forward(model, tokens: answerTokens, logitRows: answerTokens, passes: 2))

        var results = passes.indices.map { k in
            ProbeMeasurement(
                attentionMass: passes[k].attentionMass, lensLogprob: lens[k].logprob, lensRank: lens[k].rank,
                mcRatio: lens[k].mcRatio, answerLoglik: loglik[k], generated: "", generatedIDs: [],
                counterfactualCorrect: false, parametricCorrect: false, attribution: attribution[k],
                dumpedPatterns: passes[k].dumpedPatterns, dumpedResiduals: passes[k].dumpedResiduals,
                tunedLensLogprob: tuned?[k].logprob ?? [], tunedLensRank: tuned?[k].rank ?? [], tunedMCRatio: tuned?[k].mcRatio ?? [])
        }

        let generated = try generations(probes, caches: passes.map(\.cache), lastLogits: passes.map(\.lastLogits), model: model,
                                        options: options, decode: decode)
        let generatedTokens = generated.reduce(0) { $0 + $1.ids.count }
        clock.lap(.generation, work: .forward(model, tokens: generatedTokens, logitRows: generatedTokens,
                                              passes: generated.map(\.ids.count).max() ?? 0))
        for (k, g) in generated.enumerated() {
            results[k].generated = g.text
            results[k].generatedIDs = g.ids
            results[k].generationEnd = g.end
            results[k].firstAnswerStep = g.firstAnswerStep
            results[k].firstAnswerLogitDiff = g.firstAnswerLogitDiff
            results[k].firstAnswerMC = g.firstAnswerMC
            results[k].counterfactualCorrect = g.counterfactual
            results[k].parametricCorrect = g.parametric
        }
        return results
    }

    /// Teacher-forced log-likelihood [answer] of each probe's two whole answers, all answers of the group
    /// together: on the prompt's cache (`caches[k]`, next-token logits `lastLogits[k]`), or, when the answer
    /// changed how the prompt's last characters tokenize, on a cache of its own prefix.
    static func answerLogLikelihoods(_ probes: [TokenizedProbe], caches promptCaches: [KVCache], lastLogits: [[Float]],
                                     model: DecoderModel, compute: ComputeContext) throws -> [[Float]] {
        var loglik = [[Float]](repeating: [.nan, .nan], count: probes.count)
        for a in 0..<2 {
            var caches: [KVCache] = [], firsts: [[Float]] = [], continuations: [[Int]] = []
            for (k, probe) in probes.enumerated() {
                let answer = a == 0 ? probe.contextAnswer : probe.memoryAnswer
                if answer.prefixIDs == probe.promptIDs {
                    caches.append(promptCaches[k])
                    firsts.append(lastLogits[k])
                } else {
                    let fresh = model.makeCache(capacity: answer.prefixIDs.count + answer.ids.count)
                    firsts.append(try model.forward(answer.prefixIDs, cache: fresh, logits: .last, compute: compute).array)
                    caches.append(fresh)
                }
                continuations.append(answer.ids)
            }
            let scored = try model.continuationLogLikelihoodBatch(caches: caches, firstLogits: firsts, continuations: continuations,
                                                                  compute: compute)
            for k in probes.indices { loglik[k][a] = scored[k] }
        }
        return loglik
    }

    /// One probe's greedy generation: the text cut by the stop rule, its ids, and whether each answer appears.
    struct Generation {
        var text: String
        var ids: [Int]
        var counterfactual: Bool
        var parametric: Bool
        var end: GenerationEnd
        var firstAnswerStep: Int32
        var firstAnswerLogitDiff: Float
        var firstAnswerMC: Float
    }

    /// Greedy generation for a group from each prompt's cache, cut at the first stop string after the
    /// first visible character; scored for the context answer and the memorised one under
    /// `options.correctness`; with the first-answer-token readout (`ProbeMeasurement.firstAnswerStep`).
    static func generations(_ probes: [(TokenizedProbe, BuiltPrompt)], caches: [KVCache], lastLogits: [[Float]], model: DecoderModel,
                            options: MeasureOptions, decode: ([Int]) -> String) throws -> [Generation] {
        let stop = StopConditions(maxNewTokens: options.maxNewTokens, stopTokens: options.stopTokens, stopStrings: options.stopStrings)
        let watch = probes.map { [$0.0.answerIDs.first ?? -1, $0.0.memoryAnswerIDs.first ?? -1] }
        let generated = try model.greedyContinueBatch(caches: caches, lastLogits: lastLogits, stop: stop, watch: watch,
                                                      decode: decode, compute: options.compute)
        return zip(zip(probes, generated), watch).map { pair, answers in
            let (probe, g) = pair
            let text = stop.cut(decode(g.ids)).text
            let context = probe.1.spans[.context]?.first.map(probe.1.text(of:)) ?? ""
            // The first step that emitted either answer's first token (a step past the ids is the stop token's).
            let step = g.ids.firstIndex { answers.contains($0) && $0 >= 0 }
            var diff = Float.nan, mc = Float.nan
            if let step, step < g.watchedLogits.count {
                let (a, b) = (g.watchedLogits[step][0], g.watchedLogits[step][1])
                diff = a - b
                mc = Float(1 / (1 + Foundation.exp(Double(b) - Double(a))))   // p_a / (p_a + p_b) = σ(a − b)
            }
            return Generation(text: text, ids: g.ids,
                              counterfactual: options.correctness.answerAppears(probe.1.answer, in: text, context: context),
                              parametric: options.correctness.answerAppears(probe.1.memoryAnswer, in: text, context: context),
                              end: g.end, firstAnswerStep: Int32(step ?? -1), firstAnswerLogitDiff: diff, firstAnswerMC: mc)
        }
    }

    /// What one probe's instrumented prompt pass leaves for the batched steps.
    struct PromptPass {
        /// [span, layer, head] attention mass from the answer position.
        var attentionMass: [Float]
        /// [lens_layer, d_model] residual stream at the answer position.
        var residuals: [Float]
        /// The prompt's keys and values (room for the longest answer or generation).
        var cache: KVCache
        /// Next-token logits after the prompt.
        var lastLogits: [Float]
        /// The residual stream's components at the answer position, for attribution.
        var components: ComponentRecorder
        /// Key positions of each span (`SpanKind.allCases` order; nil: not found).
        var spans: [[Int]?]
        var dumpedPatterns: [Float]
        var dumpedResiduals: [Float]
    }

    /// The instrumented prompt pass of a group: one pass over all prompts, their rows stacked in every
    /// projection and MLP (attention per prompt), each prompt with its own observers, which see what a
    /// pass of that prompt alone shows them (span attention, the residual stream at the answer position
    /// for the lens, components for attribution, dumps if asked); each prompt's cache and next-token logits.
    static func promptPasses(_ probes: [TokenizedProbe], model: DecoderModel, options: MeasureOptions) throws -> [PromptPass] {
        guard !probes.isEmpty else { return [] }
        let (limit, byModel) = promptLimit(config: model.config, maxPromptTokens: options.maxPromptTokens)
        for probe in probes where probe.promptIDs.count > limit {
            throw ProbeRunError.promptTooLong(probeID: probe.probeID, tokens: probe.promptIDs.count, limit: limit, byModel: byModel)
        }
        let recorders = probes.map { Recorders($0, model: model, options: options) }
        let caches = probes.map { probe in
            model.makeCache(capacity: probe.promptIDs.count + max(probe.answerIDs.count, probe.memoryAnswerIDs.count, options.maxNewTokens) + 1)
        }
        let logits = try model.forward(zip(probes, caches).map { SequenceInput(ids: $0.promptIDs, cache: $1) }, logits: .last,
                                       observers: recorders.map(\.group), compute: options.compute)
        let V = model.config.vocab
        return recorders.indices.map { k in
            recorders[k].pass(cache: caches[k], lastLogits: Array(UnsafeBufferPointer(start: logits.pointer + k * V, count: V)),
                              model: model, options: options)
        }
    }

    /// One prompt's observers in the group's prompt pass.
    struct Recorders {
        let spanRec: SpanAttentionRecorder
        let residRec: ResidualRecorder
        let components: ComponentRecorder
        let dumpRec: HookRecorder?
        let spans: [[Int]?]
        let group: ObserverGroup

        init(_ probe: TokenizedProbe, model: DecoderModel, options: MeasureOptions) {
            let c = model.config
            let q = probe.answerPosition
            let spans: [[Int]?] = SpanKind.allCases.map { kind in
                (probe.spanStatus[kind]?.isFound ?? false) ? probe.spanPositions[kind] ?? [] : nil
        }
        let spanRec = SpanAttentionRecorder(queryPosition: q, spans: spans, layers: c.layers, heads: c.heads)
        let dumpAll = !options.dumpLayers.isEmpty
        let residRec = ResidualRecorder(position: q, layers: c.layers, dModel: c.dModel,
                                        keepStreamsFor: dumpAll ? Set(0...c.layers) : [])
        let components = ComponentRecorder(position: q, layers: c.layers, heads: c.heads, dHead: c.dHead, dModel: c.dModel)
        var members: [any ForwardObserver] = [spanRec, residRec, components]
        let dumpRec = dumpAll ? HookRecorder(Set(options.dumpLayers.map { HookPoint.attnPattern($0) })) : nil
        if let dumpRec { members.append(dumpRec) }
        self.spanRec = spanRec
        self.residRec = residRec
        self.components = components
        self.dumpRec = dumpRec
        self.spans = spans
        group = ObserverGroup(members)
        }

        /// What the observers kept, with the prompt's cache and next-token logits.
        func pass(cache: KVCache, lastLogits: [Float], model: DecoderModel, options: MeasureOptions) -> PromptPass {
            let c = model.config
            let dumpAll = !options.dumpLayers.isEmpty
            var patterns: [Float] = []
            if let dumpRec {
                for l in options.dumpLayers { patterns.append(contentsOf: dumpRec[.attnPattern(l)]?.array ?? []) }
        }
        var streams: [Float] = []
        if dumpAll { for lens in 0...c.layers { streams.append(contentsOf: residRec.streams[lens] ?? []) } }
        return PromptPass(attentionMass: spanRec.mass, residuals: residRec.residuals, cache: cache, lastLogits: lastLogits,
                          components: components, spans: spans, dumpedPatterns: patterns, dumpedResiduals: streams)
        }
    }
}

// One probe through one model: every measurement of the probe job from one instrumented prompt pass,
// two teacher-forced answer continuations and a greedy generation, all sharing the prompt's KV cache.
import Checkpoints
import Instrumentation
import Models
import ProbeKit
import TensorCore

/// Measurement settings shared by all probes of a run.
public struct MeasureOptions: Sendable {
    /// Greedy generation stops after this many new tokens.
    public var maxNewTokens: Int = 12
    /// …or when the decoded continuation contains one of these strings (the text is cut there).
    public var stopStrings: [String] = ["\n"]
    /// …or at one of these token ids (EOS).
    public var stopTokens: Set<Int> = []
    /// Prompts longer than this many tokens are refused with a clear error (nil: the model's limit).
    public var maxPromptTokens: Int? = nil
    /// Layers whose full attention pattern [head, query_pos, key_pos] is kept (--dump).
    public var dumpLayers: [Int] = []

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
    /// [dump layer, head, query_pos, key_pos] for `MeasureOptions.dumpLayers` (empty when none).
    public var dumpedPatterns: [Float]
    /// [lens_layer, pos, d_model] residual streams at every position (only with dumps).
    public var dumpedResiduals: [Float]
}

public enum ProbeMeasurer {
    /// The longest prompt a run accepts, and whether that limit is the model's (else --max-tokens).
    /// Without --max-tokens it is the model's position count (`n_positions` / `max_position_embeddings`):
    /// a longer prompt is outside the trained context, and its attention costs O(tokens²) memory (a
    /// 64 KiB context is ~28k tokens: gigabytes per layer). --max-tokens may lower it, and for rotary
    /// models (no position table) raise it; learned position embeddings (GPT-2) cap it regardless.
    public static func promptLimit(config c: ModelConfig, maxPromptTokens: Int?) -> (limit: Int, byModel: Bool) {
        guard let m = maxPromptTokens else { return (c.maxPositions, true) }
        if c.architecture == .gpt2 && m > c.maxPositions { return (c.maxPositions, true) }
        return (m, false)
    }

    /// Runs every measurement of `probe` through `model`. `decode` turns generated ids into text.
    public static func measure(_ probe: TokenizedProbe, built: BuiltPrompt, model: DecoderModel, options: MeasureOptions,
                               decode: ([Int]) -> String) throws -> ProbeMeasurement {
        try measureBatch([(probe, built)], model: model, options: options, decode: decode)[0]
    }

    /// Measures several probes: each gets its own instrumented prompt pass and answer scoring, then all are
    /// generated together (one batched decoding step per token, so each weight is read once per step).
    public static func measureBatch(_ probes: [(TokenizedProbe, BuiltPrompt)], model: DecoderModel, options: MeasureOptions,
                                    decode: ([Int]) -> String) throws -> [ProbeMeasurement] {
        var results: [ProbeMeasurement] = []
        var caches: [KVCache] = [], lasts: [[Float]] = []
        for (probe, built) in probes {
            let (m, cache, last) = try measureWithoutGeneration(probe, built: built, model: model, options: options)
            results.append(m)
            caches.append(cache)
            lasts.append(last)
        }
        // Greedy generation, cut at the first stop string.
        let stop = StopConditions(maxNewTokens: options.maxNewTokens, stopTokens: options.stopTokens, stopStrings: options.stopStrings)
        let generated = options.maxNewTokens > 0
            ? try model.greedyContinueBatch(caches: caches, lastLogits: lasts, stop: stop, decode: decode)
            : [[Int]](repeating: [], count: probes.count)
        for (k, ids) in generated.enumerated() {
            var text = decode(ids)
            for s in options.stopStrings where !s.isEmpty {
                if let r = text.range(of: s) { text = String(text[..<r.lowerBound]) }
            }
            results[k].generated = text
            results[k].generatedIDs = ids
            results[k].counterfactualCorrect = answerAppears(probes[k].1.answer, in: text)
            results[k].parametricCorrect = answerAppears(probes[k].1.memoryAnswer, in: text)
        }
        return results
    }

    /// Everything but the generation; returns the prompt's cache and next-token logits for it.
    static func measureWithoutGeneration(_ probe: TokenizedProbe, built: BuiltPrompt, model: DecoderModel,
                                         options: MeasureOptions) throws -> (ProbeMeasurement, KVCache, [Float]) {
        let c = model.config
        let n = probe.promptIDs.count
        let (limit, byModel) = promptLimit(config: c, maxPromptTokens: options.maxPromptTokens)
        if n > limit {
            throw ProbeRunError.promptTooLong(probeID: probe.probeID, tokens: n, limit: limit, byModel: byModel)
        }
        let q = probe.answerPosition
        let spans: [[Int]?] = SpanKind.allCases.map { kind in
            (probe.spanStatus[kind]?.isFound ?? false) ? probe.spanPositions[kind] ?? [] : nil
        }
        let spanRec = SpanAttentionRecorder(queryPosition: q, spans: spans, layers: c.layers, heads: c.heads)
        let dumpAll = !options.dumpLayers.isEmpty
        let residRec = ResidualRecorder(position: q, layers: c.layers, dModel: c.dModel,
                                        keepStreamsFor: dumpAll ? Set(0...c.layers) : [])
        var members: [any ForwardObserver] = [spanRec, residRec]
        let dumpRec = dumpAll ? HookRecorder(Set(options.dumpLayers.map { HookPoint.attnPattern($0) })) : nil
        if let dumpRec { members.append(dumpRec) }
        let observer = ObserverGroup(members)

        let longest = max(probe.answerIDs.count, probe.memoryAnswerIDs.count, options.maxNewTokens)
        let cache = model.makeCache(capacity: n + longest + 1)
        let lastLogits = try model.forward(probe.promptIDs, cache: cache, logits: .last, observer: observer).array

        // Logit lens over embeddings + every block, for the first token of each answer.
        let targets = [probe.answerIDs.first ?? -1, probe.memoryAnswerIDs.first ?? -1]
        let lens = LogitLens.scores(model: model, residuals: residRec.residuals, lensLayers: c.layers + 1, targets: targets)

        // Teacher-forced log-likelihood of each whole answer.
        var loglik: [Float] = []
        for answer in [probe.contextAnswer, probe.memoryAnswer] {
            if answer.prefixIDs == probe.promptIDs {
                loglik.append(try model.continuationLogLikelihood(cache: cache, firstLogits: lastLogits, continuation: answer.ids))
                cache.truncate(to: n)
            } else {
                // The answer changed how the prompt's last characters tokenize: score it on its own prefix.
                let fresh = model.makeCache(capacity: answer.prefixIDs.count + answer.ids.count)
                let first = try model.forward(answer.prefixIDs, cache: fresh, logits: .last).array
                loglik.append(try model.continuationLogLikelihood(cache: fresh, firstLogits: first, continuation: answer.ids))
            }
        }

        var patterns: [Float] = []
        if let dumpRec {
            for l in options.dumpLayers { patterns.append(contentsOf: dumpRec[.attnPattern(l)]?.array ?? []) }
        }
        var streams: [Float] = []
        if dumpAll { for lens in 0...c.layers { streams.append(contentsOf: residRec.streams[lens] ?? []) } }

        let m = ProbeMeasurement(
            attentionMass: spanRec.mass, lensLogprob: lens.logprob, lensRank: lens.rank, mcRatio: lens.mcRatio,
            answerLoglik: loglik, generated: "", generatedIDs: [], counterfactualCorrect: false, parametricCorrect: false,
            dumpedPatterns: patterns, dumpedResiduals: streams)
        return (m, cache, lastLogits)
    }
}

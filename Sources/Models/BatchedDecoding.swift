// Greedy generation and teacher-forced scoring for several sequences at once, on the one pass
// (`DecoderModel.forward(_ sequences:)`): each step feeds every running sequence together, so every
// weight is read once per step for the whole group (decoding one sequence at a time is memory-bound:
// each token reads every weight).
import Checkpoints
import TensorCore

/// Why a greedy generation ended.
public enum GenerationEnd: String, Sendable, CaseIterable {
    /// The model emitted a stop token (EOS; not included in the ids).
    case stopToken = "stop_token"
    /// The decoded text reached a stop string (after its first visible character).
    case stopString = "stop_string"
    /// `maxNewTokens` were generated: the text may be cut mid-answer.
    case maxNewTokens = "max_new_tokens"
    /// The model's position table is full (learned positions).
    case positionLimit = "position_limit"
}

/// One sequence's greedy continuation.
public struct GreedyContinuation: Sendable {
    /// The generated ids (without a stop token).
    public var ids: [Int]
    public var end: GenerationEnd
    /// [step][watched token]: the logits of the watched tokens at each step that chose a token (step s
    /// chose `ids[s]`, or the stop token at the last step when `end` is `.stopToken`).
    public var watchedLogits: [[Float]]
}

extension DecoderModel {
    /// Greedy generation for several sequences together, each continuing from its cache whose next-token
    /// logits are `lastLogits[i]`. Ties go to the lowest id (as torch.argmax). Each sequence stops on its
    /// own (stop token, stop string after the first visible character, length); the others go on; a
    /// sequence gets the same ids as when decoded alone. `watch[i]` lists tokens whose logits are kept at
    /// every step of sequence i (empty: none).
    public func greedyContinueBatch(caches: [KVCache], lastLogits: [[Float]], stop: StopConditions, watch: [[Int]] = [],
                                    decode: ([Int]) -> String = { _ in "" }, compute: ComputeContext = .allCores) throws -> [GreedyContinuation] {
        var outputs = caches.indices.map { _ in GreedyContinuation(ids: [], end: .maxNewTokens, watchedLogits: []) }
        var logits = lastLogits
        var active = stop.maxNewTokens > 0 ? Array(caches.indices) : []
        while !active.isEmpty {
            var next: [Int] = [], stillActive: [Int] = []
            for i in active {
                let l = logits[i]
                var best = 0
                for j in 1..<l.count where l[j] > l[best] { best = j }
                if i < watch.count, !watch[i].isEmpty { outputs[i].watchedLogits.append(watch[i].map { $0 >= 0 && $0 < l.count ? l[$0] : .nan }) }
                if stop.stopTokens.contains(best) { outputs[i].end = .stopToken; continue }
                outputs[i].ids.append(best)
                if !stop.stopStrings.isEmpty, stop.cut(decode(outputs[i].ids)).stopped { outputs[i].end = .stopString; continue }
                if outputs[i].ids.count >= stop.maxNewTokens { outputs[i].end = .maxNewTokens; continue }
                if config.learnedPositions, caches[i].length + 1 > config.maxPositions { outputs[i].end = .positionLimit; continue }
                next.append(best)
                stillActive.append(i)
            }
            active = stillActive
            guard !active.isEmpty else { break }
            let step = try forward(zip(next, active).map { SequenceInput(ids: [$0], cache: caches[$1]) }, logits: .last, compute: compute)
            for (k, i) in active.enumerated() {
                logits[i] = Array(UnsafeBufferPointer(start: step.pointer + k * config.vocab, count: config.vocab))
            }
        }
        return outputs
    }

    /// Teacher-forced log-likelihood of `continuations[i]` after sequence i, for several sequences at once:
    /// sequence i's state is `caches[i]` and its next-token logits are `firstLogits[i]`. Every continuation
    /// (all but its last token) extends its cache in one pass over all sequences, so the weights are read
    /// once for the whole group. Each cache is returned to its length on entry; an empty continuation gives NaN.
    public func continuationLogLikelihoodBatch(caches: [KVCache], firstLogits: [[Float]], continuations: [[Int]],
                                               compute: ComputeContext = .allCores) throws -> [Float] {
        precondition(caches.count == firstLogits.count && caches.count == continuations.count, "one cache, logits and continuation per sequence")
        let lengths = caches.map(\.length)
        defer { for (c, n) in zip(caches, lengths) { c.truncate(to: n) } }
        var totals = [Double](repeating: 0, count: caches.count)
        for (i, c) in continuations.enumerated() {
            guard let t = c.first else { totals[i] = .nan; continue }
            totals[i] = firstLogits[i].withUnsafeBufferPointer { Double($0[t] - logSumExp($0.baseAddress!, count: $0.count)) }
        }
        let running = continuations.indices.filter { continuations[$0].count > 1 }
        guard !running.isEmpty else { return totals.map { Float($0) } }
        let logits = try forward(running.map { SequenceInput(ids: Array(continuations[$0].dropLast()), cache: caches[$0]) },
                                 logits: .all, compute: compute)
        var row = 0
        for i in running {
            for next in continuations[i].dropFirst() {
                let r = logits.pointer + row * config.vocab
                totals[i] += Double(r[next] - logSumExp(r, count: config.vocab))
                row += 1
            }
        }
        return totals.map { Float($0) }
    }
}

/// One sequence to score teacher-forced: `ids` is the whole text (prompt, response, EOS), of which the last
/// `scored` tokens are predicted and scored.
public struct ScoredSequence: Sendable, Equatable {
    public var ids: [Int]
    public var scored: Int
    public init(ids: [Int], scored: Int) {
        precondition(scored >= 1 && scored < ids.count, "score 1..<ids.count tokens (the first token has no prediction)")
        self.ids = ids
        self.scored = scored
    }
}

extension DecoderModel {
    /// Negative log-likelihood (natural log, summed over its scored tokens) of each sequence, all in one pass
    /// that reads the weights once: every sequence but its last token is fed on a cache that lives only for
    /// the pass, and only the rows that predict scored tokens are unembedded. log-softmax of the float32
    /// logits (`logSumExp`), summed in float64. This is the training loss of instruction finetuning with the prompt's labels masked
    /// (Stanford Alpaca's `train.py`: labels = -100 on the source tokens), summed instead of averaged.
    public func negativeLogLikelihood(_ sequences: [ScoredSequence], compute: ComputeContext = .allCores) throws -> [Double] {
        guard !sequences.isEmpty else { return [] }
        let inputs = sequences.map { SequenceInput(ids: Array($0.ids.dropLast()), cache: KVCache.passOnly(for: config, capacity: $0.ids.count)) }
        let logits = try forward(inputs, logits: .trailing(sequences.map(\.scored)), compute: compute)
        let V = config.vocab
        var row = 0
        return sequences.map { s in
            var total = 0.0
            for target in s.ids.suffix(s.scored) {
                let r = logits.pointer + row * V
                total -= Double(r[target] - logSumExp(r, count: V))
                row += 1
            }
            return total
        }
    }
}

// Greedy decoding with a KV cache, and teacher-forced scoring of continuations.
import TensorCore

/// When generation stops.
public struct StopConditions: Sendable {
    public var maxNewTokens: Int
    /// Token ids that end generation (not included in the output).
    public var stopTokens: Set<Int>
    /// Stop when the decoded text would contain one of these strings (checked by the caller's decoder).
    public var stopStrings: [String]

    public init(maxNewTokens: Int, stopTokens: Set<Int> = [], stopStrings: [String] = []) {
        self.maxNewTokens = maxNewTokens
        self.stopTokens = stopTokens
        self.stopStrings = stopStrings
    }
}

extension DecoderModel {
    /// A KV cache sized for this model.
    public func makeCache(capacity: Int) -> KVCache {
        KVCache(layers: config.layers, kvHeads: config.kvHeads, dHead: config.dHead, capacity: capacity)
    }

    /// Greedy generation continuing from the state in `cache`, whose next-token logits are `lastLogits`
    /// [d_vocab]. Ties go to the lowest id (as torch.argmax). `decode` maps ids to text for stop strings.
    /// One sequence of `greedyContinueBatch`.
    public func greedyContinue(cache: KVCache, lastLogits: [Float], stop: StopConditions,
                               decode: ([Int]) -> String = { _ in "" }) throws -> [Int] {
        try greedyContinueBatch(caches: [cache], lastLogits: [lastLogits], stop: stop, decode: decode)[0]
    }

    /// Sum of log-probabilities of `continuation` after the state in `cache`, where `firstLogits` are the
    /// next-token logits at the end of that state; the cache is left as it was. One sequence of
    /// `continuationLogLikelihoodBatch`.
    public func continuationLogLikelihood(cache: KVCache, firstLogits: [Float], continuation: [Int]) throws -> Float {
        try continuationLogLikelihoodBatch(caches: [cache], firstLogits: [firstLogits], continuations: [continuation])[0]
    }
}

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
    public func greedyContinue(cache: KVCache, lastLogits: [Float], stop: StopConditions,
                               decode: ([Int]) -> String = { _ in "" }) throws -> [Int] {
        var out: [Int] = []
        var logits = lastLogits
        while out.count < stop.maxNewTokens {
            var best = 0
            for j in 1..<logits.count where logits[j] > logits[best] { best = j }
            if stop.stopTokens.contains(best) { break }
            out.append(best)
            if !stop.stopStrings.isEmpty {
                let text = decode(out)
                if stop.stopStrings.contains(where: { text.contains($0) }) { break }
            }
            if out.count == stop.maxNewTokens { break }
            if cache.length + 1 > config.maxPositions, config.architecture == .gpt2 { break }
            logits = try forward([best], cache: cache, logits: .last).array
        }
        return out
    }

    /// Sum of log-probabilities of `continuation` after the state in `cache`, where `firstLogits` are the
    /// next-token logits at the end of that state. Leaves the continuation in the cache.
    public func continuationLogLikelihood(cache: KVCache, firstLogits: [Float], continuation: [Int]) throws -> Float {
        guard !continuation.isEmpty else { return .nan }
        var total: Double = 0
        var lp = [Float](repeating: 0, count: vocab)
        firstLogits.withUnsafeBufferPointer { l in lp.withUnsafeMutableBufferPointer { logSoftmax(l.baseAddress!, count: vocab, into: $0.baseAddress!) } }
        total += Double(lp[continuation[0]])
        if continuation.count > 1 {
            let logits = try forward(Array(continuation.dropLast()), cache: cache, logits: .all)
            for i in 1..<continuation.count {
                lp.withUnsafeMutableBufferPointer { logSoftmax(logits.pointer + (i - 1) * vocab, count: vocab, into: $0.baseAddress!) }
                total += Double(lp[continuation[i]])
            }
        }
        return Float(total)
    }
}

// One decoding step for several sequences at once. Each sequence has its own KV cache and its own
// position; the matrix products run on all rows together, so every weight is read once per step for
// the whole batch (generation of one sequence at a time is memory-bound: each token reads every weight).
import Checkpoints
import TensorCore

extension DecoderModel {
    /// Appends `tokens[i]` to sequence i (state in `caches[i]`) and returns next-token logits [batch, d_vocab].
    public func decodeStep(_ tokens: [Int], caches: [KVCache]) throws -> Tensor {
        let B = tokens.count
        precondition(B == caches.count && B > 0, "one cache per token")
        for id in tokens where id < 0 || id >= config.vocab { throw ModelError.tokenOutOfRange(id: id, vocab: config.vocab) }
        let d = config.dModel, H = config.heads, KV = config.kvHeads, dh = config.dHead
        let positions = caches.map(\.length)
        if positionEmbedding != nil, let p = positions.max(), p + 1 > config.maxPositions {
            throw ModelError.sequenceTooLong(length: p + 1, maxPositions: config.maxPositions)
        }
        for c in caches { c.reserve(c.length + 1) }
        let longest = (positions.max() ?? 0) + 1
        var scratch = Scratch(config: config, rows: B, keys: longest, patternHeads: 1, workers: 1)
        defer { scratch.free() }
        let x = scratch.residual, h = scratch.normed
        for i in 0..<B {
            tokenEmbedding.row(tokens[i], cols: d, into: x + i * d)
            if let pe = positionEmbedding { addInPlace(x + i * d, pe.pointer + positions[i] * d, count: d) }
        }
        for l in 0..<config.layers {
            let w = blocks[l]
            w.attnNorm.apply(x, rows: B, into: h)
            let (ld, qOff, kOff, vOff) = project(w, h, rows: B, into: scratch.qkv)
            var scale: Float = config.scaleAttnWeights ? 1 / Float(dh).squareRoot() : 1
            if config.scaleAttnByInverseLayerIdx { scale /= Float(l + 1) }
            let window = l < config.slidingWindow.count ? config.slidingWindow[l] : nil
            let group = H / KV
            for i in 0..<B {
                let cache = caches[i], p = positions[i], cap = cache.capacity
                let row = scratch.qkv + i * ld
                if let rot = rotary {
                    for hh in 0..<H { rot.apply(row + qOff(hh), heads: 1, stride: 0, position: p, cos: scratch.cos, sin: scratch.sin) }
                    for g in 0..<KV { rot.apply(row + kOff(g), heads: 1, stride: 0, position: p, cos: scratch.cos, sin: scratch.sin) }
                }
                let slot = cache.slot(forLayer: l)
                let kc = cache.keys[slot], vc = cache.values[slot]
                for g in 0..<KV {
                    (kc + (g * cap + p) * dh).update(from: row + kOff(g), count: dh)
                    (vc + (g * cap + p) * dh).update(from: row + vOff(g), count: dh)
                }
                let probs = scratch.pattern
                let first = window.map { max(0, p - $0 + 1) } ?? 0
                for hh in 0..<H {
                    let g = hh / group
                    sgemm(m: 1, n: p + 1, k: dh, a: row + qOff(hh), lda: ld, b: kc + g * cap * dh, ldb: dh, transB: true,
                          c: probs, ldc: p + 1, alpha: scale)
                    softmaxInPlace(probs, count: p + 1, firstValid: first, valid: p + 1)
                    sgemm(m: 1, n: dh, k: p + 1, a: probs, lda: p + 1, b: vc + g * cap * dh, ldb: dh,
                          c: scratch.context + i * H * dh + hh * dh, ldc: H * dh)
                }
            }
            w.attnOut.apply(scratch.context, rows: B, into: scratch.attnOut)
            if config.parallelResidual {
                w.mlpNorm.apply(x, rows: B, into: h)
                mlp(w.mlp, input: h, rows: B, scratch: &scratch)
                addInPlace(x, scratch.attnOut, count: B * d)
                addInPlace(x, scratch.mlpOut, count: B * d)
            } else {
                addInPlace(x, scratch.attnOut, count: B * d)
                w.mlpNorm.apply(x, rows: B, into: h)
                mlp(w.mlp, input: h, rows: B, scratch: &scratch)
                addInPlace(x, scratch.mlpOut, count: B * d)
            }
        }
        for c in caches { c.length += 1 }
        let out = Tensor(zeros: [B, config.vocab])
        finalNorm.apply(x, rows: B, into: h)
        unembed(h, rows: B, into: out.pointer)
        return out
    }

    /// Greedy generation for several sequences together, each continuing from its cache whose next-token
    /// logits are `lastLogits[i]`. Each sequence stops on its own (stop token, stop string, length); the
    /// others go on; a sequence gets the same ids as when decoded alone.
    public func greedyContinueBatch(caches: [KVCache], lastLogits: [[Float]], stop: StopConditions,
                                    decode: ([Int]) -> String = { _ in "" }) throws -> [[Int]] {
        var outputs = [[Int]](repeating: [], count: caches.count)
        var logits = lastLogits
        var active = Array(caches.indices)
        while !active.isEmpty {
            var next: [Int] = [], stillActive: [Int] = []
            for i in active {
                let l = logits[i]
                var best = 0
                for j in 1..<l.count where l[j] > l[best] { best = j }
                if stop.stopTokens.contains(best) { continue }
                outputs[i].append(best)
                if !stop.stopStrings.isEmpty, stop.cut(decode(outputs[i])).stopped { continue }
                if outputs[i].count >= stop.maxNewTokens { continue }
                if config.architecture == .gpt2, caches[i].length + 1 > config.maxPositions { continue }
                next.append(best)
                stillActive.append(i)
            }
            active = stillActive
            guard !active.isEmpty else { break }
            let step = try decodeStep(next, caches: active.map { caches[$0] })
            for (k, i) in active.enumerated() {
                logits[i] = Array(UnsafeBufferPointer(start: step.pointer + k * config.vocab, count: config.vocab))
            }
        }
        return outputs
    }
}

extension DecoderModel {
    /// Teacher-forced log-likelihood of `continuations[i]` after sequence i, for several sequences at once:
    /// sequence i's state is `caches[i]` and its next-token logits are `firstLogits[i]`. Token t of every
    /// continuation still running is fed in one `decodeStep`, so each weight is read once per step for
    /// all sequences. Each cache is returned to its length on entry; an empty continuation gives NaN.
    public func continuationLogLikelihoodBatch(caches: [KVCache], firstLogits: [[Float]], continuations: [[Int]]) throws -> [Float] {
        precondition(caches.count == firstLogits.count && caches.count == continuations.count, "one cache, logits and continuation per sequence")
        let lengths = caches.map(\.length)
        defer { for (c, n) in zip(caches, lengths) { c.truncate(to: n) } }
        var totals = [Double](repeating: 0, count: caches.count)
        for (i, c) in continuations.enumerated() {
            guard let t = c.first else { totals[i] = .nan; continue }
            totals[i] = firstLogits[i].withUnsafeBufferPointer { Double($0[t] - logSumExp($0.baseAddress!, count: $0.count)) }
        }
        let longest = continuations.map(\.count).max() ?? 0
        var step = 0
        while step + 1 < longest {
            let running = continuations.indices.filter { continuations[$0].count > step + 1 }
            let logits = try decodeStep(running.map { continuations[$0][step] }, caches: running.map { caches[$0] })
            for (k, i) in running.enumerated() {
                let row = logits.pointer + k * config.vocab
                totals[i] += Double(row[continuations[i][step + 1]] - logSumExp(row, count: config.vocab))
            }
            step += 1
        }
        return totals.map { Float($0) }
    }
}

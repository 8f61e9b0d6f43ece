// Direct logit attribution (DLA): which components of the residual stream at the answer position push
// the logit of the context's answer above the memorised one's, and, for attention heads, from which
// source positions.
//
// Semantics of TransformerLens's `cache.apply_ln_to_stack(..., pos_slice=-1)` + `logit_attrs`
// (Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits", §direct path; Nanda's
// "Exploratory analysis demo"): the final norm is frozen at the scale of the model's real final residual
// x, so every component c of x = embed + Σ_l (Σ_h head_out[l,h] + b_O[l] + mlp_out[l]) contributes
//
//   DLA(c) = s · (centre(c) ⊙ w_norm) · (W_U[a] − W_U[b]) = c · u,   u = s · centre(w_norm ⊙ Δ)
//
// with Δ = W_U[a] − W_U[b] (first tokens of the context answer a and the memory answer b);
// RMSNorm: s = 1/√(mean(x²) + ε), no centring; LayerNorm: s = 1/√(var(x) + ε) and centring, where
// centre(c)·g = c·centre(g). The final norm's bias gives the constant β·Δ (`normBias`). Per head,
// head_out[l,h] = z[l,h] · W_O[l][h-slice] (grouped-query attention: per query head), so
// DLA(l,h) = z[l,h] · r[l,h] with r[l] = W_O[l] pulled back along u. Split by source key j:
// z[l,h] = Σ_j A[l,h,j] v_j, so DLA(l,h) = Σ_j A[l,h,j] (v_j · r[l,h]); sums over a span's keys give
// the by-span attribution. The remainder makes the components sum exactly to the model's logit
// difference (float rounding, and nothing else when the decomposition is complete).
//
// Post-norms inside the attention branch (OLMo-2, Gemma-2) are frozen the same way: the branch adds
// postnorm(y) = s_y · (y ⊙ w_post) with y = o_proj(z) and s_y from the real y, so the layer's direction
// is u_l = s_y · (w_post ⊙ u) and the decomposition stays exact. With final-logit soft-capping (Gemma-2)
// the attribution is of the logit difference before the cap (the cap is monotone, so signs and rankings
// carry over); `logitDiff` is then that uncapped difference.
import Checkpoints
import Instrumentation
import TensorCore

/// Direct logit attribution of one probe.
public struct LogitAttribution: Sendable {
    /// logit[a] − logit[b] of the model's real output at the answer position.
    public var logitDiff: Float
    /// [layer, head]
    public var head: [Float]
    /// [span, layer, head]: each head's attribution split by source span (NaN for a span not found).
    public var headBySpan: [Float]
    /// [layer] MLP outputs (with their output bias).
    public var mlp: [Float]
    /// Token (+ learned position) embedding.
    public var embed: Float
    /// Σ over layers of the attention output biases (b_O).
    public var attnBias: Float
    /// The final norm's bias β·Δ (LayerNorm models; 0 for RMSNorm).
    public var normBias: Float
    /// logitDiff − the sum of every component above.
    public var remainder: Float

    /// Sum of all components except the remainder.
    public var componentSum: Float { embed + head.reduce(0, +) + mlp.reduce(0, +) + attnBias + normBias }
}

extension DecoderModel {
    /// DLA for a group of probes. For probe k: `records[k]` from its prompt pass (position = the answer
    /// position, the pass's last row), `caches[k]` the pass's cache (values of every layer at the prompt
    /// positions), `spans[k][s]` the key positions of span s (nil: not found), `answers[k]` the first
    /// token ids (a, b) of the context and memory answers (-1: none → NaN), `logits[k]` the model's
    /// next-token logits at that position. The pull-back through each o_proj runs once for the group.
    public func directLogitAttribution(records: [ComponentRecorder], caches: [KVCache], spans: [[[Int]?]],
                                       answers: [(Int, Int)], logits: [[Float]]) -> [LogitAttribution] {
        let P = records.count
        precondition(caches.count == P && spans.count == P && answers.count == P && logits.count == P, "one of each per probe")
        guard P > 0 else { return [] }
        let d = config.dModel, H = config.heads, dh = config.dHead, L = config.layers, KV = config.kvHeads
        let S = spans.first?.count ?? 0
        // u[k] = s · centre(w ⊙ Δ)
        var u = [Float](repeating: 0, count: P * d)
        var results: [LogitAttribution] = []
        results.reserveCapacity(P)
        var rowA = [Float](repeating: 0, count: d), rowB = rowA
        var valid = [Bool](repeating: false, count: P)
        for k in 0..<P {
            let (a, b) = answers[k]
            var r = LogitAttribution(logitDiff: .nan, head: [Float](repeating: .nan, count: L * H),
                                     headBySpan: [Float](repeating: .nan, count: S * L * H), mlp: [Float](repeating: .nan, count: L),
                                     embed: .nan, attnBias: .nan, normBias: .nan, remainder: .nan)
            guard a >= 0, b >= 0, a < config.vocab, b < config.vocab else { results.append(r); continue }
            valid[k] = true
            unembedding.row(a, cols: d, into: &rowA)
            unembedding.row(b, cols: d, into: &rowB)
            let x = records[k].finalResidual
            if config.finalLogitSoftcap == nil {
                r.logitDiff = logits[k][a] - logits[k][b]
            } else {
                // before the final soft-capping: final norm of the real residual, dotted with W_U[a] − W_U[b]
                var normed = [Float](repeating: 0, count: d)
                finalNorm.apply(x, rows: 1, into: &normed)
                r.logitDiff = (0..<d).reduce(0) { $0 + normed[$1] * (rowA[$1] - rowB[$1]) }
            }
            let w = finalNorm.weight.pointer
            var g = (0..<d).map { Double(w[$0]) * Double(rowA[$0] - rowB[$0]) }
            let scale: Double
            switch finalNorm.kind {
            case .rmsNorm:
                let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(d)
                scale = 1 / (ms + Double(finalNorm.eps)).squareRoot()
                r.normBias = 0
            case .layerNorm:
                let mean = x.reduce(0.0) { $0 + Double($1) } / Double(d)
                let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(d)
                scale = 1 / (variance + Double(finalNorm.eps)).squareRoot()
                let gMean = g.reduce(0, +) / Double(d)
                g = g.map { $0 - gMean }
                if let beta = finalNorm.bias {
                    r.normBias = Float((0..<d).reduce(0.0) { $0 + Double(beta.pointer[$1]) * Double(rowA[$1] - rowB[$1]) })
                } else {
                    r.normBias = 0
                }
            }
            for j in 0..<d { u[k * d + j] = Float(scale * g[j]) }
            r.embed = dot(records[k].embed, u, offset: k * d)
            r.attnBias = 0
            results.append(r)
        }
        // Per layer: pull u back through o_proj → r[k, head·d_head].
        var pulled = [Float](repeating: 0, count: P * H * dh)
        let group = H / KV
        var y = [Float](repeating: 0, count: d)
        for l in 0..<L {
            let oProj = blocks[l].attnOut
            // The direction for this layer's attention output: u, or through a frozen post-norm.
            var ul = u
            if let post = blocks[l].attnPostNorm {
                for k in 0..<P where valid[k] {
                    Array(records[k].z[(l * H * dh)..<((l + 1) * H * dh)]).withUnsafeBufferPointer { z in
                        oProj.apply(z.baseAddress!, rows: 1, into: &y)
                    }
                    let scale = postNormScale(post, y)
                    for j in 0..<d { ul[k * d + j] = scale * post.weight.pointer[j] * u[k * d + j] }
                }
            }
            ul.withUnsafeBufferPointer { ub in
                pulled.withUnsafeMutableBufferPointer { oProj.pullBack(ub.baseAddress!, rows: P, into: $0.baseAddress!) }
            }
            let biasDot: [Float] = (0..<P).map { k in oProj.bias.map { b in (0..<d).reduce(0) { $0 + b.pointer[$1] * ul[k * d + $1] } } ?? 0 }
            for k in 0..<P where valid[k] {
                let rec = records[k]
                results[k].attnBias += biasDot[k]
                results[k].mlp[l] = dot(Array(rec.mlp[(l * d)..<((l + 1) * d)]), u, offset: k * d)
                let cache = caches[k]
                let slot = cache.slot(forLayer: l)
                let vc = cache.values[slot], cap = cache.capacity
                let keys = rec.keys
                var perKey = [Float](repeating: 0, count: keys)
                for h in 0..<H {
                    let rh = k * H * dh + h * dh
                    var zdot: Float = 0
                    for e in 0..<dh { zdot += rec.z[(l * H + h) * dh + e] * pulled[rh + e] }
                    results[k].head[l * H + h] = zdot
                    // source split: A[l,h,j] · (v_j · r_h)
                    let g = h / group
                    for j in 0..<keys {
                        let v = vc + (g * cap + j) * dh
                        var vr: Float = 0
                        for e in 0..<dh { vr += v[e] * pulled[rh + e] }
                        perKey[j] = rec.pattern[(l * H + h) * keys + j] * vr
                    }
                    for (s, positions) in spans[k].enumerated() {
                        guard let positions else { continue }
                        var sum: Float = 0
                        for j in positions where j >= 0 && j < keys { sum += perKey[j] }
                        results[k].headBySpan[(s * L + l) * H + h] = sum
                    }
                }
            }
        }
        for k in 0..<P where valid[k] {
            results[k].remainder = results[k].logitDiff - results[k].componentSum
        }
        return results
    }
}

/// The scale a norm applies to `y` (RMSNorm: 1/√(mean(y²)+ε); LayerNorm: 1/√(var(y)+ε)).
private func postNormScale(_ norm: Norm, _ y: [Float]) -> Float {
    let n = Double(y.count)
    switch norm.kind {
    case .rmsNorm:
        return Float(1 / (y.reduce(0.0) { $0 + Double($1) * Double($1) } / n + Double(norm.eps)).squareRoot())
    case .layerNorm:
        let mean = y.reduce(0.0) { $0 + Double($1) } / n
        return Float(1 / (y.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n + Double(norm.eps)).squareRoot())
    }
}

@inline(__always)
private func dot(_ a: [Float], _ u: [Float], offset: Int) -> Float {
    var s: Float = 0
    for j in 0..<a.count { s += a[j] * u[offset + j] }
    return s
}

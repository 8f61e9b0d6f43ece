// The logit lens (nostalgebraist, 2020; TransformerLens `accumulated_resid` + `apply_ln_to_stack`):
// decode an intermediate residual stream with the model's own final norm and unembedding.
// For knowledge conflicts the paper's Theorem 1 motivates M_C = p_ctx / (p_ctx + p_mem), where
// p_ctx and p_mem are the probabilities of the first token of the context's and the memorised answer.
import Foundation
import TensorCore

/// A model that can decode residual vectors (final norm, then unembedding).
public protocol LogitLensModel {
    var vocab: Int { get }
    var dModel: Int { get }
    /// logits[rows, d_vocab] from residual vectors r[rows, d_model].
    func logitLens(_ residual: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>)
}

/// Per-lens-layer scores for a set of target tokens.
public struct LensScores: Sendable {
    /// [target, lens_layer] log-probability of each target token.
    public var logprob: [Float]
    /// [target, lens_layer] rank of each target token: 1 + the number of tokens with a strictly higher logit.
    public var rank: [Int32]
    /// [lens_layer] M_C = p_0 / (p_0 + p_1) for the first two targets (context, memory).
    public var mcRatio: [Float]
}

public enum LogitLens {
    /// Scores `targets` (token ids; -1 = unavailable → NaN / -1) at every lens layer of `residuals` [lens_layer, d_model].
    public static func scores(model: some LogitLensModel, residuals: [Float], lensLayers: Int, targets: [Int]) -> LensScores {
        let V = model.vocab
        var logits = [Float](repeating: 0, count: lensLayers * V)
        residuals.withUnsafeBufferPointer { r in
            logits.withUnsafeMutableBufferPointer { out in
                model.logitLens(r.baseAddress!, rows: lensLayers, into: out.baseAddress!)
            }
        }
        var logprob = [Float](repeating: .nan, count: targets.count * lensLayers)
        var rank = [Int32](repeating: -1, count: targets.count * lensLayers)
        var mc = [Float](repeating: .nan, count: lensLayers)
        for layer in 0..<lensLayers {
            logits.withUnsafeBufferPointer { all in
                let row = all.baseAddress! + layer * V
                let lse = logSumExp(row, count: V)  // log-probability of token i = row[i] − lse
                for (t, id) in targets.enumerated() where id >= 0 && id < V {
                    logprob[t * lensLayers + layer] = row[id] - lse
                    var higher: Int32 = 0
                    let target = row[id]
                    for j in 0..<V where row[j] > target { higher += 1 }
                    rank[t * lensLayers + layer] = higher + 1
                }
            }
            if targets.count >= 2 {
                let a = logprob[layer], b = logprob[lensLayers + layer]
                if a.isFinite, b.isFinite {
                    // p_ctx / (p_ctx + p_mem) = 1 / (1 + exp(lp_mem - lp_ctx)), stable in log space.
                    mc[layer] = Float(1 / (1 + exp(Double(b) - Double(a))))
                }
            }
        }
        return LensScores(logprob: logprob, rank: rank, mcRatio: mc)
    }
}

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
    func logitLens(_ residual: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>, compute: ComputeContext)
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
    public static func scores(model: some LogitLensModel, residuals: [Float], lensLayers: Int, targets: [Int],
                              compute: ComputeContext = .allCores) -> LensScores {
        scoresBatch(model: model, residuals: [residuals], lensLayers: lensLayers, targets: [targets], compute: compute)[0]
    }

    /// `scores` for several probes at once. Their residual rows go through the final norm and unembedding
    /// together, in chunks whose logits fit `maxLogitBytes`, so the unembedding matrix is read (and packed
    /// by BLAS) once per chunk rather than once per probe. Results equal `scores` probe by probe.
    public static func scoresBatch(model: some LogitLensModel, residuals: [[Float]], lensLayers: Int, targets: [[Int]],
                                   maxLogitBytes: Int = 8 << 20, compute: ComputeContext = .allCores) -> [LensScores] {
        precondition(residuals.count == targets.count, "one target list per probe")
        let V = model.vocab, d = model.dModel
        let perProbe = lensLayers * V * MemoryLayout<Float>.stride
        let chunk = max(1, maxLogitBytes / max(perProbe, 1))
        var out: [LensScores] = []
        out.reserveCapacity(residuals.count)
        var logits: [Float] = []
        var stacked: [Float] = []
        var first = 0
        while first < residuals.count {
            let probes = first..<min(residuals.count, first + chunk)
            stacked.removeAll(keepingCapacity: true)
            for p in probes {
                precondition(residuals[p].count == lensLayers * d, "residuals of probe \(p): \(residuals[p].count) ≠ \(lensLayers) × \(d)")
                stacked.append(contentsOf: residuals[p])
            }
            let rows = probes.count * lensLayers
            if logits.count < rows * V { logits = [Float](repeating: 0, count: rows * V) }
            stacked.withUnsafeBufferPointer { r in
                logits.withUnsafeMutableBufferPointer { model.logitLens(r.baseAddress!, rows: rows, into: $0.baseAddress!, compute: compute) }
            }
            logits.withUnsafeBufferPointer { all in
                for (k, p) in probes.enumerated() {
                    out.append(score(all.baseAddress! + k * lensLayers * V, vocab: V, lensLayers: lensLayers, targets: targets[p]))
                }
            }
            first = probes.upperBound
        }
        return out
    }

    /// Scores one probe from its lens logits [lens_layer, d_vocab].
    static func score(_ logits: UnsafePointer<Float>, vocab V: Int, lensLayers: Int, targets: [Int]) -> LensScores {
        var logprob = [Float](repeating: .nan, count: targets.count * lensLayers)
        var rank = [Int32](repeating: -1, count: targets.count * lensLayers)
        var mc = [Float](repeating: .nan, count: lensLayers)
        for layer in 0..<lensLayers {
            let row = logits + layer * V
            let lse = logSumExp(row, count: V)  // log-probability of token i = row[i] − lse
            for (t, id) in targets.enumerated() where id >= 0 && id < V {
                logprob[t * lensLayers + layer] = row[id] - lse
                var higher: Int32 = 0
                let target = row[id]
                for j in 0..<V where row[j] > target { higher += 1 }
                rank[t * lensLayers + layer] = higher + 1
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

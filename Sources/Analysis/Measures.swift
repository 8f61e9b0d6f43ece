// The headline measures of a run, per probe and checkpoint, computed in one pass over the file.
// Per-probe definitions (docs/analysis.md):
//   counterfactual_accuracy  counterfactual_correct[c, p] (0 or 1)
//   parametric_accuracy      parametric_correct[c, p] (0 or 1)
//   context_attention        mean over layers and heads of attention_mass[c, p, context, l, h]
//   subject_attention        the same on the subject span
//   mc_last_layer            mc_ratio[c, p, last lens layer]
// Means skip NaN (a span not found in the prompt, an undefined ratio); a probe with no finite
// value is NaN and is left out of the mean over probes.

/// A headline measure of context reliance.
public enum Measure: String, CaseIterable, Sendable {
    case counterfactualAccuracy = "counterfactual_accuracy"
    case parametricAccuracy = "parametric_accuracy"
    case contextAttention = "context_attention"
    case subjectAttention = "subject_attention"
    case mcLastLayer = "mc_last_layer"

    /// A human label.
    public var label: String {
        switch self {
        case .counterfactualAccuracy: return "Counterfactual accuracy"
        case .parametricAccuracy: return "Parametric accuracy"
        case .contextAttention: return "Context attention"
        case .subjectAttention: return "Subject attention"
        case .mcLastLayer: return "M_C at the last layer"
        }
    }

    /// The smallest change a verdict counts, in `unit` (VerdictFloor; docs/analysis.md, "Verdicts").
    public var minimumEffect: Double {
        switch self {
        case .counterfactualAccuracy, .parametricAccuracy: return VerdictFloor.accuracy
        case .contextAttention, .subjectAttention: return VerdictFloor.attention
        case .mcLastLayer: return VerdictFloor.mc
        }
    }

    /// The unit of one value.
    public var unit: String {
        switch self {
        case .counterfactualAccuracy, .parametricAccuracy: return "fraction of probes"
        case .contextAttention, .subjectAttention: return "attention mass (0–1)"
        case .mcLastLayer: return "p_ctx / (p_ctx + p_mem)"
        }
    }
}

/// Per-probe values of every headline measure, plus per-layer context and subject attention.
public struct RunMeasures: Sendable {
    public let checkpoints: Int
    public let probes: Int
    public let layers: Int
    /// Measure → `[checkpoint, probe]`.
    public let perProbe: [Measure: [Double]]
    /// `[checkpoint, probe, layer]`: mean over heads of the attention mass on the context span.
    public let layerContext: [Double]
    /// `[checkpoint, probe, layer]`: the same on the subject span.
    public let layerSubject: [Double]

    /// Reads every complete checkpoint's attention slab once.
    /// - Throws: `unknownSpan` when the run has no context or subject span; read errors.
    public init(run: RunData) throws {
        let C = run.checkpoints.count, P = run.probes.count, L = run.layers, H = run.heads
        let S = run.spans.count, LL = run.lensLayers
        checkpoints = C; probes = P; layers = L
        let ctx = try run.spanIndex("context"), subj = try run.spanIndex("subject")
        var values: [Measure: [Double]] = [:]
        values[.counterfactualAccuracy] = run.counterfactualCorrect.map { Double($0) }
        values[.parametricAccuracy] = run.parametricCorrect.map { Double($0) }
        var mc = [Double](repeating: .nan, count: C * P)
        for i in 0..<(C * P) { mc[i] = Double(run.mcRatio[i * LL + LL - 1]) }
        values[.mcLastLayer] = mc
        var overall = [[Double]](repeating: [Double](repeating: .nan, count: C * P), count: 2)
        var layer = [[Double]](repeating: [Double](repeating: .nan, count: C * P * L), count: 2)
        for c in 0..<C {
            let slab = try run.attention(checkpoint: c)
            for (k, s) in [ctx, subj].enumerated() {
                for p in 0..<P {
                    let base = (p * S + s) * L * H
                    var total = 0.0, count = 0
                    for l in 0..<L {
                        var lt = 0.0, lc = 0
                        for h in 0..<H {
                            let v = Double(slab[base + l * H + h])
                            if v.isFinite { lt += v; lc += 1 }
                        }
                        total += lt; count += lc
                        layer[k][(c * P + p) * L + l] = lc > 0 ? lt / Double(lc) : .nan
                    }
                    overall[k][c * P + p] = count > 0 ? total / Double(count) : .nan
                }
            }
        }
        values[.contextAttention] = overall[0]
        values[.subjectAttention] = overall[1]
        perProbe = values
        layerContext = layer[0]
        layerSubject = layer[1]
    }

    /// `[probe]` values of `measure` at checkpoint `c`.
    public func values(_ measure: Measure, checkpoint c: Int) -> [Double] {
        Array((perProbe[measure] ?? [])[(c * probes)..<((c + 1) * probes)])
    }

    /// Mean over probes (NaN skipped) of `measure` at each checkpoint.
    public func curve(_ measure: Measure) -> [Double] {
        (0..<checkpoints).map { Stats.nanMean(values(measure, checkpoint: $0)).mean }
    }

    /// `[checkpoint, probe]` per-probe values of layer `l` of `layerContext` or `layerSubject`.
    public func layerValues(_ source: [Double], layer l: Int) -> [Double] {
        (0..<(checkpoints * probes)).map { source[$0 * layers + l] }
    }

    /// `[layer, checkpoint]`: mean over probes of a per-layer source.
    public func layerHeatmap(_ source: [Double]) -> [Double] {
        var out = [Double](repeating: .nan, count: layers * checkpoints)
        for l in 0..<layers {
            for c in 0..<checkpoints {
                out[l * checkpoints + c] = Stats.nanMean((0..<probes).lazy.map { source[(c * self.probes + $0) * self.layers + l] }).mean
            }
        }
        return out
    }
}

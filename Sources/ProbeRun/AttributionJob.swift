// `cpiscope attribute`: attribution patching (AtP; Nanda 2023, "Attribution patching: activation patching
// at industrial scale"; Kramár et al. 2024, "AtP*") at every checkpoint of a trajectory, on the job layer
// (TrajectoryJob). For each probe: one clean pass and one reverse pass (Models/ActivationGradients.swift)
// give every head's hook_z, every layer's hook_mlp_out (and hook_resid_pre) with the gradient of the metric
// at the answer position; the estimate of putting component c at its baseline value at every prompt
// position is
//     atp(c) = Σ_pos (a_baseline[pos] − a_clean[pos]) · ∂metric/∂a_clean[pos]
// (the first-order Taylor term of activation patching). Baselines (docs/attribution.md):
//   zero                 a_baseline = 0 (zero ablation)
//   mean                 the mean over the probe set at the same checkpoint, per position counted from the
//                        prompt's end (as `intervene --ablate … mean`): one extra forward per probe
//   checkpoint:CKPT      CKPT's activations on the same prompt (which components' change between two
//                        checkpoints moves the metric)
//   corrupt:no-context   the activations of the prompt built with an empty context, aligned at the question:
//                        positions from the question on map to the same offset from the corrupted prompt's
//                        question, positions before the context to the same position where the tokens agree;
//                        the context's positions (and the template text between context and question) have
//                        no counterpart and keep their clean value (they add nothing to the estimate)
// --verify-top K runs, per checkpoint, the real intervention for the K components of largest |mean estimate|
// (the component written to its baseline value at the same positions, in a full pass) and records the true
// change beside the estimate: where the linear estimate fails (attention saturation, AtP* §3) shows there.
import Checkpoints
import Foundation
import HDF5Store
import Instrumentation
import Models
import ProbeKit
import TensorCore
import TrajectoryJob

/// What the estimate patches in.
public enum AttributionBaseline: Sendable, Equatable, CustomStringConvertible {
    case zero, mean
    case checkpoint(String)
    case corruptNoContext

    /// Parses `zero`, `mean`, `checkpoint:CKPT`, `corrupt:no-context`.
    public init?(_ text: String) {
        switch text {
        case "zero": self = .zero
        case "mean": self = .mean
        case "corrupt:no-context": self = .corruptNoContext
        default:
            guard text.hasPrefix("checkpoint:"), text.count > "checkpoint:".count else { return nil }
            self = .checkpoint(String(text.dropFirst("checkpoint:".count)))
        }
    }

    public var description: String {
        switch self {
        case .zero: return "zero"
        case .mean: return "mean"
        case .checkpoint(let c): return "checkpoint:\(c)"
        case .corruptNoContext: return "corrupt:no-context"
        }
    }
}

/// The attributed metric at the answer position.
public enum AttributionMetric: String, Sendable, CaseIterable {
    /// logit[context answer] − logit[memory answer] (first tokens), as `probe` and `intervene` record it.
    case logitDiff = "logit_diff"
    /// M_C = p_ctx / (p_ctx + p_mem) of the first tokens (Goyal, Baek et al., Theorem 1).
    case mc
}

/// The components an attribution run estimates.
public struct AttributionComponents: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let heads = AttributionComponents(rawValue: 1)
    public static let mlp = AttributionComponents(rawValue: 2)
    public static let resid = AttributionComponents(rawValue: 4)

    /// Parses a comma list of heads, mlp, resid; nil names the first unknown entry.
    public static func parse(_ text: String) -> (AttributionComponents?, unknown: String?) {
        var c: AttributionComponents = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            switch part {
            case "heads": c.insert(.heads)
            case "mlp": c.insert(.mlp)
            case "resid": c.insert(.resid)
            default: return (nil, part)
            }
        }
        return c.isEmpty ? (nil, text) : (c, nil)
    }

    public var names: [String] { [(Self.heads, "heads"), (.mlp, "mlp"), (.resid, "resid")].filter { contains($0.0) }.map(\.1) }
    var hooks: GradientHooks {
        var h: GradientHooks = []
        if contains(.heads) { h.insert(.z) }
        if contains(.mlp) { h.insert(.mlpOut) }
        if contains(.resid) { h.insert(.residPre) }
        return h
    }
}

/// Everything an attribution run needs: the probe job's settings (probes, template, checkpoints, output…)
/// and its own.
public struct AttributionJobSpec: Sendable {
    public var probe: ProbeJobSpec
    public var components: AttributionComponents = [.heads, .mlp]
    public var baseline: AttributionBaseline = .zero
    public var metric: AttributionMetric = .logitDiff
    /// Components per checkpoint whose real intervention is run beside the estimate (0: none).
    public var verifyTop = 0
    /// Also generate greedily from each clean prompt (the probe job's generation and correctness rule), so
    /// that the file records counterfactual correctness and the report's change starts at its peak.
    public var generate = false

    public init(probe: ProbeJobSpec) { self.probe = probe }
}

/// Progress callbacks.
public protocol AttributionJobProgress: TrajectoryJobProgress {
    func probeFinished(_ index: Int, of total: Int)
    func checkpointFinished(_ index: Int, name: String, skipped: Bool)
}

/// One checkpoint's results.
struct AttributionOutcome {
    var cleanLogitDiff: [Float]
    var cleanMetric: [Float]
    /// [probe][layer·head], [probe][layer·head·span], [probe][layer]
    var head: [[Float]]
    var headBySpan: [[Float]]
    var mlp: [[Float]]
    var resid: [[Float]]
    var missing: [String]
    /// --generate: 1 when the clean generation contains the context answer, per probe
    var counterfactual: [UInt8]?
    /// [rank] names, [rank][probe] estimates and true effects
    var verified: [(name: String, estimate: [Float], effect: [Float])]
}

public enum AttributionJobError: Error, CustomStringConvertible, Sendable, Equatable {
    case unknownComponent(String)
    case badBaseline(String)
    case incompatibleBaseline(checkpoint: String, detail: String)
    case unknownBaselineCheckpoint(String, available: [String])

    public var description: String {
        switch self {
        case let .unknownComponent(c): return "--components: unknown component '\(c)'"
        case let .badBaseline(b): return "--baseline '\(b)' is none of zero, mean, checkpoint:CKPT, corrupt:no-context"
        case let .incompatibleBaseline(c, d): return "\(c): the baseline checkpoint \(d)"
        case let .unknownBaselineCheckpoint(c, names): return "--baseline checkpoint:\(c): no such checkpoint (\(names.joined(separator: ", ")))"
        }
    }

    public var hint: String {
        switch self {
        case .unknownComponent: return "Give a comma list of heads, mlp and resid, e.g. --components heads,mlp."
        case .badBaseline: return "e.g. --baseline zero, --baseline mean, --baseline checkpoint:checkpoint-50, --baseline corrupt:no-context."
        case .incompatibleBaseline: return "The baseline checkpoint must be of the trajectory's model (same layers, heads, widths)."
        case .unknownBaselineCheckpoint: return "Name a checkpoint of the trajectory (folder name or step), or a checkpoint folder."
        }
    }
}

public enum AttributionJob {
    /// Runs the job (or its `--shard`); returns the checkpoints' names in file order.
    @discardableResult
    public static func run(_ spec: AttributionJobSpec, progress: (any AttributionJobProgress)? = nil) throws -> [String] {
        let settings = spec.probe.job
        try TrajectoryJob.checkOutput(settings)
        let job = try ProbeJob.prepare(spec.probe)
        let c = job.config
        let part = try JobPart.of(settings.shard, checkpoints: settings.checkpoints.count, axis: .probes,
                                  unitCount: { job.tokenized.count }, command: "attribute")
        let refs = Array(settings.checkpoints[part.checkpoints])
        let probeIndices = Array(part.units ?? job.tokenized.indices)
        let compute = job.options.compute

        // The baseline's model (checkpoint:CKPT), loaded once and checked against the trajectory's shape.
        var baselineModel: DecoderModel? = nil
        if case let .checkpoint(name) = spec.baseline {
            let url: URL
            do { url = try InterventionJob.sourceURL(name, spec: settings) } catch InterventionJobError.unknownSource(_, let available) {
                throw AttributionJobError.unknownBaselineCheckpoint(name, available: available)
            }
            let model = try job.loader.load(url).model
            if model.shapeDescription != c.shapeDescription {
                throw AttributionJobError.incompatibleBaseline(checkpoint: url.path, detail: "is \(model.shapeDescription), the trajectory \(c.shapeDescription)")
            }
            baselineModel = model
        }
        // corrupt:no-context: each probe's prompt built with an empty context.
        var corrupted: [Int: TokenizedProbe] = [:]
        var missing = [String](repeating: "", count: job.tokenized.count)
        if spec.baseline == .corruptNoContext {
            let encoder = TokenizerEncoder(job.tokenizer)
            for k in probeIndices {
                var p = job.probeSet.probes[k]
                guard !p.context.isEmpty, job.tokenized[k].spanStatus[.context]?.isFound ?? false else {
                    missing[k] = "the probe has no context to remove"; continue
                }
                p.context = ""
                do {
                    corrupted[k] = try TokenizedProbe(try PromptBuilder.build(p, template: spec.probe.template), encoder: encoder)
                } catch {
                    missing[k] = "the prompt without its context cannot be built: \(error)"
                }
            }
        }
        for k in probeIndices where missing[k].isEmpty {
            let t = job.tokenized[k]
            if t.answerIDs.isEmpty || t.memoryAnswerIDs.isEmpty { missing[k] = "an answer has no tokens" }
        }

        let file = try AttributionFile(spec: spec, job: job, checkpoints: refs, probeIndices: probeIndices)
        defer { file.close() }
        let hooks = spec.components.hooks
        try TrajectoryJob.forEachCheckpoint(
            refs, file: file, output: settings.output, loader: job.loader, compute: compute, progress: progress,
            skipped: { ci, ref in progress?.checkpointFinished(ci, name: ref.name, skipped: true) },
            measure: { _, _, loaded in
                let model = loaded.model
                // The mean baseline is the whole probe set's, in every shard (a probe shard's estimates equal the
                // single-process run's).
                let baseline = try BaselineSource(spec.baseline, model: model, baselineModel: baselineModel, job: job,
                                                  probes: Array(job.tokenized.indices), missing: missing, corrupted: corrupted, hooks: hooks, compute: compute)
                var out = AttributionOutcome(cleanLogitDiff: [], cleanMetric: [], head: [], headBySpan: [], mlp: [], resid: [],
                                             missing: probeIndices.map { missing[$0] }, counterfactual: nil, verified: [])
                if spec.generate {
                    // The probe job's clean generation and correctness, in its probe groups.
                    let items = probeIndices.map { (job.tokenized[$0], job.built[$0]) }
                    let clean = try InterventionJob.measure(items, models: [model], options: job.options, groupSize: spec.probe.probeGroupSize,
                                                            decode: { job.tokenizer.decode($0, skipSpecialTokens: true) })
                    out.counterfactual = clean.map { ($0.generation?.counterfactual ?? false) ? 1 : 0 }
                }
                var cleanMetric: [Float] = []
                for (j, k) in probeIndices.enumerated() {
                    let estimate = try estimateProbe(k, model: model, job: job, spec: spec, baseline: baseline, compute: compute)
                    out.cleanLogitDiff.append(estimate.logitDiff)
                    out.cleanMetric.append(estimate.metric)
                    cleanMetric.append(estimate.metric)
                    out.head.append(estimate.head)
                    out.headBySpan.append(estimate.headBySpan)
                    out.mlp.append(estimate.mlp)
                    out.resid.append(estimate.resid)
                    progress?.probeFinished(j, of: probeIndices.count)
                }
                if spec.verifyTop > 0 {
                    out.verified = try verify(top: spec.verifyTop, out: out, cleanMetric: cleanMetric, model: model, job: job, spec: spec,
                                              baseline: baseline, probes: probeIndices, compute: compute)
                }
                return out
            },
            write: { ci, out, _, _ in try file.write(checkpoint: ci, out) },
            finished: { ci, ref, _ in progress?.checkpointFinished(ci, name: ref.name, skipped: false) })
        return refs.map(\.name)
    }

    /// One probe's estimates at one checkpoint (NaN throughout when its baseline or answers are missing).
    struct ProbeEstimate {
        var logitDiff: Float = .nan, metric: Float = .nan
        var head: [Float], headBySpan: [Float], mlp: [Float], resid: [Float]
    }

    static func estimateProbe(_ k: Int, model: DecoderModel, job: ProbeJob.PreparedJob, spec: AttributionJobSpec,
                              baseline: BaselineSource, compute: ComputeContext) throws -> ProbeEstimate {
        let c = model.config
        let (L, H, dh, d) = (c.layers, c.heads, c.dHead, c.dModel)
        let spans = AttributionSchema.spans.count
        var e = ProbeEstimate(head: .init(repeating: .nan, count: L * H), headBySpan: .init(repeating: .nan, count: L * H * spans),
                              mlp: .init(repeating: .nan, count: L), resid: .init(repeating: .nan, count: L))
        let t = job.tokenized[k]
        guard let a = t.answerIDs.first, let b = t.memoryAnswerIDs.first else { return e }
        let clean = try model.cleanPass(t.promptIDs, position: t.answerPosition, compute: compute)
        e.logitDiff = clean.logits[a] - clean.logits[b]
        let grads: ActivationGradients
        switch spec.metric {
        case .logitDiff:
            grads = clean.backward(.logitDifference(a, b, vocab: c.vocab), hooks: spec.components.hooks)
            e.metric = e.logitDiff
        case .mc:
            // M = σ(l_a − l_b): ∂M/∂l_a = M(1 − M) = −∂M/∂l_b.
            let m = 1 / (1 + Foundation.exp(-Double(e.logitDiff)))
            var g = [Float](repeating: 0, count: c.vocab)
            g[a] += Float(m * (1 - m))
            g[b] -= Float(m * (1 - m))
            grads = clean.backward(logitGradient: g, hooks: spec.components.hooks)
            e.metric = Float(m)
        }
        guard let base = try baseline.values(forProbe: k) else { return e }
        let n = t.promptIDs.count
        // Which of the estimate's spans each position is in.
        let named: [SpanKind] = [.context, .subject, .question]
        let spanSets: [Set<Int>] = named.map { Set(t.spanPositions[$0] ?? []) }
        // A span the probe does not have gets NaN (its reason is the probe run's span_missing_reason), not 0.
        let spanFound = named.map { t.spanStatus[$0]?.isFound ?? false } + [true]
        let inSpan: [[Bool]] = (0..<n).map { p in
            let named = spanSets.map { $0.contains(p) }
            return named + [!named.contains(true)]
        }
        /// Σ over positions (b − a)·g of `width` values starting at column `col` of rows `row` wide.
        func contribution(_ ag: ActivationGradient, _ hook: HookPoint, width row: Int, col: Int, count: Int) -> (total: Double, bySpan: [Double]) {
            var total = 0.0
            var bySpan = [Double](repeating: 0, count: spans)
            for p in 0..<n {
                guard let bRow = base[hook]?[p] else { continue }  // no counterpart: the clean value, nothing added
                var s = 0.0
                for j in 0..<count {
                    let i = p * row + col + j
                    let bv = bRow.isEmpty ? 0 : bRow[col + j]
                    s += (Double(bv) - Double(ag.activation.pointer[i])) * Double(ag.gradient.pointer[i])
                }
                total += s
                for si in 0..<spans where inSpan[p][si] { bySpan[si] += s }
            }
            return (total, bySpan)
        }
        for l in 0..<L {
            let layer = grads.layers[l]
            if let z = layer.z {
                for h in 0..<H {
                    let r = contribution(z, .attnZ(l), width: H * dh, col: h * dh, count: dh)
                    e.head[l * H + h] = Float(r.total)
                    for si in 0..<spans { e.headBySpan[(l * H + h) * spans + si] = spanFound[si] ? Float(r.bySpan[si]) : .nan }
                }
            }
            if let m = layer.mlpOut { e.mlp[l] = Float(contribution(m, .mlpOut(l), width: d, col: 0, count: d).total) }
            if let r = layer.residPre { e.resid[l] = Float(contribution(r, .residPre(l), width: d, col: 0, count: d).total) }
        }
        return e
    }

    /// The real interventions for the `top` components of largest |mean estimate over probes|: each written to
    /// its baseline value at every prompt position where the baseline has one, in a full pass.
    static func verify(top: Int, out: AttributionOutcome, cleanMetric: [Float], model: DecoderModel, job: ProbeJob.PreparedJob,
                       spec: AttributionJobSpec, baseline: BaselineSource, probes: [Int], compute: ComputeContext) throws
        -> [(name: String, estimate: [Float], effect: [Float])] {
        let c = model.config
        let (L, H) = (c.layers, c.heads)
        struct Candidate { var name: String; var hook: HookPoint; var head: Int?; var estimates: [Float] }
        var candidates: [Candidate] = []
        if spec.components.contains(.heads) {
            for l in 0..<L { for h in 0..<H { candidates.append(Candidate(name: "L\(l)H\(h)", hook: .attnZ(l), head: h, estimates: out.head.map { $0[l * H + h] })) } }
        }
        if spec.components.contains(.mlp) {
            for l in 0..<L { candidates.append(Candidate(name: "mlp\(l)", hook: .mlpOut(l), head: nil, estimates: out.mlp.map { $0[l] })) }
        }
        if spec.components.contains(.resid) {
            for l in 0..<L { candidates.append(Candidate(name: "resid\(l)", hook: .residPre(l), head: nil, estimates: out.resid.map { $0[l] })) }
        }
        func meanAbs(_ v: [Float]) -> Double {
            let f = v.filter(\.isFinite)
            return f.isEmpty ? -1 : abs(f.reduce(0.0) { $0 + Double($1) } / Double(f.count))
        }
        // Largest |mean| first; ties by the order above (layer, head), so the choice is deterministic.
        let ranked = candidates.enumerated().sorted { (x, y) in
            let (a, b) = (meanAbs(x.element.estimates), meanAbs(y.element.estimates))
            return a != b ? a > b : x.offset < y.offset
        }.filter { meanAbs($0.element.estimates) >= 0 }  // all NaN (no probe has the baseline): nothing to verify
            .prefix(top).map(\.element)
        var results: [(String, [Float], [Float])] = ranked.map { ($0.name, $0.estimates, []) }
        for (j, k) in probes.enumerated() {
            let t = job.tokenized[k]
            let base = try baseline.values(forProbe: k)
            for (r, cand) in ranked.enumerated() {
                guard let base, let a = t.answerIDs.first, let b = t.memoryAnswerIDs.first, cleanMetric[j].isFinite else {
                    results[r].2.append(.nan); continue
                }
                var values: [Int: [Float]] = [:]
                for (p, row) in (base[cand.hook] ?? [:]) {
                    let full = row.isEmpty ? [Float](repeating: 0, count: cand.head != nil ? H * c.dHead : c.dModel) : row
                    values[p] = cand.head.map { h in Array(full[(h * c.dHead)..<((h + 1) * c.dHead)]) } ?? full
                }
                let patched = try model.intervened([Intervention(.write(cand.hook, heads: cand.head.map { [$0] }, edit: .replaceAt(values)))])
                let logits = try patched.forward(t.promptIDs, logits: .last, compute: compute).array
                let ld = logits[a] - logits[b]
                let metric: Float = spec.metric == .logitDiff ? ld : Float(1 / (1 + Foundation.exp(-Double(ld))))
                results[r].2.append(metric - cleanMetric[j])
            }
        }
        return results.map { (name: $0.0, estimate: $0.1, effect: $0.2) }
    }
}

/// The baseline activations of one checkpoint's probes: per hook, per clean prompt position, the row to patch
/// in ([] for zero), absent where the position has no counterpart.
struct BaselineSource {
    let kind: AttributionBaseline
    let model: DecoderModel
    let baselineModel: DecoderModel?
    let job: ProbeJob.PreparedJob
    let missing: [String]
    let corrupted: [Int: TokenizedProbe]
    let recordHooks: Set<HookPoint>
    let compute: ComputeContext
    /// mean: the probe set's mean per position from the end
    var means = MeanActivations()

    init(_ kind: AttributionBaseline, model: DecoderModel, baselineModel: DecoderModel?, job: ProbeJob.PreparedJob, probes: [Int],
         missing: [String], corrupted: [Int: TokenizedProbe], hooks: GradientHooks, compute: ComputeContext) throws {
        self.kind = kind
        self.model = model
        self.baselineModel = baselineModel
        self.job = job
        self.missing = missing
        self.corrupted = corrupted
        self.compute = compute
        var rec: Set<HookPoint> = []
        for l in 0..<model.layers {
            if hooks.contains(.z) { rec.insert(.attnZ(l)) }
            if hooks.contains(.mlpOut) { rec.insert(.mlpOut(l)) }
            if hooks.contains(.residPre) { rec.insert(.residPre(l)) }
        }
        recordHooks = rec
        if kind == .mean {
            // One forward per probe; the means stream (nothing per probe is kept).
            for k in probes {
                let r = HookRecorder(rec)
                _ = try model.forward(job.tokenized[k].promptIDs, logits: .none, observer: r, compute: compute)
                means.add(r)
            }
        }
    }

    /// Per hook, per clean position, the baseline row; nil when the probe has no baseline (`missing`).
    func values(forProbe k: Int) throws -> [HookPoint: [Int: [Float]]]? {
        guard missing[k].isEmpty else { return nil }
        let t = job.tokenized[k]
        let n = t.promptIDs.count
        var out: [HookPoint: [Int: [Float]]] = [:]
        func rows(_ tensor: Tensor) -> [[Float]] {
            let m = tensor.shape[0], w = tensor.count / max(m, 1)
            return (0..<m).map { Array(UnsafeBufferPointer(start: tensor.pointer + $0 * w, count: w)) }
        }
        switch kind {
        case .zero:
            for hook in recordHooks { out[hook] = Dictionary(uniqueKeysWithValues: (0..<n).map { ($0, [Float]()) }) }
        case .mean:
            for hook in recordHooks {
                var v: [Int: [Float]] = [:]
                for p in 0..<n { v[p] = means.row(hook, fromEnd: n - 1 - p) }
                out[hook] = v
            }
        case .checkpoint:
            let r = HookRecorder(recordHooks)
            _ = try baselineModel!.forward(t.promptIDs, logits: .none, observer: r, compute: compute)
            for (hook, tensor) in r.tensors { out[hook] = Dictionary(uniqueKeysWithValues: rows(tensor).enumerated().map { ($0.offset, $0.element) }) }
        case .corruptNoContext:
            let x = corrupted[k]!
            let r = HookRecorder(recordHooks)
            _ = try model.forward(x.promptIDs, logits: .none, observer: r, compute: compute)
            let map = Self.alignment(clean: t, corrupt: x)
            for (hook, tensor) in r.tensors {
                let rs = rows(tensor)
                out[hook] = Dictionary(uniqueKeysWithValues: map.map { ($0.key, rs[$0.value]) })
            }
        }
        return out
    }

    /// Clean position → corrupted position: from the question on, the same offset from each prompt's question
    /// (where the tokens agree); before the context, the same position (where the tokens agree); nothing for
    /// the context and what lies between it and the question.
    static func alignment(clean t: TokenizedProbe, corrupt x: TokenizedProbe) -> [Int: Int] {
        var map: [Int: Int] = [:]
        let contextStart = (t.spanPositions[.context] ?? []).min() ?? 0
        for p in 0..<min(contextStart, x.promptIDs.count) where t.promptIDs[p] == x.promptIDs[p] { map[p] = p }
        guard let q = (t.spanPositions[.question] ?? []).min(), let qx = (x.spanPositions[.question] ?? []).min() else { return map }
        for p in q..<t.promptIDs.count {
            let px = p - q + qx
            if px < x.promptIDs.count && t.promptIDs[p] == x.promptIDs[px] { map[p] = px }
        }
        return map
    }
}

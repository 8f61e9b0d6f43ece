// `cpiscope intervene`: a probe set under interventions, checkpoint by checkpoint, into one HDF5 file.
//
// Per checkpoint: the clean measurements of every probe, then, for each planned intervention
// (Experiments.swift), the same measurements with the intervention applied in every pass (prompt,
// teacher-forced answers, and with --generate the greedy generation):
//   logit difference  logit[context answer] − logit[memory answer] (first tokens) at the answer position
//   M_C               p_ctx / (p_ctx + p_mem) of the model's output at the answer position
//   answer log-likelihoods, teacher-forced, of both whole answers
//   patch recovery    (patched − target) / (source − target) of the logit difference per probe, and the
//                     source's own logit difference (source_logit_diff), from which the analysis takes
//                     the ratio of the means over probes (activation patching, as TransformerLens's
//                     patching demos normalise it; Analysis/InterventionEffects.swift)
// Interventions that are the same for every probe (zero ablation, transplant) run the probes of a group
// together; those that depend on the probe (mean ablation per position, knockout of the probe's span,
// patching its source activations) run probe by probe. A span missing in a probe leaves that probe's
// knockout values NaN (recorded as missing, never guessed). The file layout is docs/hdf5-schema.md
// ("Intervention runs"); it resumes per checkpoint like a probe run.
import Checkpoints
import Foundation
import HDF5Store
import Instrumentation
import Models
import ProbeKit
import TensorCore
import Tokenization
import TrajectoryJob

/// Everything an intervention run needs: the probe job's settings plus the experiments.
public struct InterventionJobSpec: Sendable {
    public var probe: ProbeJobSpec
    public var experiments: ExperimentRequest
    /// Also generate greedily under each intervention and score the generations.
    public var generate = false

    public init(probe: ProbeJobSpec, experiments: ExperimentRequest) {
        self.probe = probe
        self.experiments = experiments
    }
}

/// Progress callbacks (the CLI draws a progress line from them).
public protocol InterventionJobProgress: TrajectoryJobProgress {
    func interventionFinished(_ index: Int, of total: Int)
    func checkpointFinished(_ index: Int, name: String, skipped: Bool)
}

/// One checkpoint's results: the clean measurements, and per planned intervention (file order) the
/// intervened ones, the patch recovery and the source's logit difference per probe (NaN where they do not apply).
struct CheckpointOutcomes {
    var clean: [InterventionOutcome]
    var intervened: [[InterventionOutcome]] = []
    var recovery: [[Float]] = []
    var sourceLogitDiff: [[Float]] = []
}

/// One (intervention or clean) measurement of one probe.
struct InterventionOutcome {
    var logitDiff: Float = .nan
    var mc: Float = .nan
    var loglik: [Float] = [.nan, .nan]
    var generation: ProbeMeasurer.Generation? = nil
}

public enum InterventionJob {
    /// Runs the job (or its `--shard`); returns the planned interventions of this process (in file order).
    @discardableResult
    public static func run(_ spec: InterventionJobSpec, progress: (any InterventionJobProgress)? = nil) throws -> [PlannedIntervention] {
        try TrajectoryJob.checkOutput(spec.probe.job)
        guard !spec.experiments.isEmpty else { throw InterventionJobError.noExperiment }
        let job = try ProbeJob.prepare(spec.probe)
        let c = job.config
        let jobPlan: [PlannedIntervention]
        do { jobPlan = try spec.experiments.expand(layers: c.layers, heads: c.heads) } catch { throw InterventionJobError.experiment(error) }
        // This process's checkpoints and interventions (`--shard`): each intervention × probe is measured
        // exactly as in a single-process run (nothing here depends on the other interventions).
        let part = try JobPart.of(spec.probe.job.shard, checkpoints: spec.probe.job.checkpoints.count, axis: .interventions,
                                  unitCount: { jobPlan.count }, command: "intervene")
        let refs = Array(spec.probe.job.checkpoints[part.checkpoints])
        let plan = Array(jobPlan[part.units ?? jobPlan.indices])
        var options = job.options
        if !spec.generate { options.maxNewTokens = 0 }
        let items = Array(zip(job.tokenized, job.built))
        let decode: ([Int]) -> String = { job.tokenizer.decode($0, skipSpecialTokens: true) }

        // Source checkpoints of transplants and patches: loaded once, checked against the first target.
        var sources: [String: DecoderModel] = [:]
        for name in Set(plan.map(\.source)).subtracting([""]).sorted() {
            let url = try sourceURL(name, spec: spec.probe.job)
            let model = try job.loader.load(url).model
            if model.shapeDescription != c.shapeDescription {
                throw InterventionJobError.incompatibleSource(source: url.path, detail: "\(model.shapeDescription) differs from the trajectory's \(c.shapeDescription)")
            }
            sources[name] = model
        }
        // The source's own measurements (patch recovery) and recordings (patched values), per probe.
        var sourceClean: [String: [InterventionOutcome]] = [:]
        var sourceRecordings: [String: [HookRecorder]] = [:]
        for name in Set(plan.compactMap { if case .patch = $0.action { return $0.source } else { return nil } }) {
            let model = sources[name]!
            sourceClean[name] = try measure(items, models: [model], options: options, groupSize: spec.probe.probeGroupSize, decode: decode)
            sourceRecordings[name] = try items.map { try record($0.0, model: model, compute: options.compute) }
        }

        let file = try InterventionFile(spec: spec, job: job, checkpoints: refs, plan: plan, jobPlan: jobPlan, options: options)
        defer { file.close() }
        try TrajectoryJob.forEachCheckpoint(
            refs, file: file, output: spec.probe.job.output, loader: job.loader, compute: options.compute, progress: progress,
            skipped: { ci, ref in progress?.checkpointFinished(ci, name: ref.name, skipped: true) },
            measure: { _, _, loaded in
                let target = loaded.model
                let clean = try measure(items, models: [target], options: options, groupSize: spec.probe.probeGroupSize, decode: decode)
                let needsMeans = plan.contains { if case .ablate(_, .mean) = $0.action { return true } else { return false } }
                let means = needsMeans ? try MeanActivations(items.map { try record($0.0, model: target, compute: options.compute) }) : nil
                var results = CheckpointOutcomes(clean: clean)
                for (ii, planned) in plan.enumerated() {
                    let models = try realize(planned, target: target, items: items, sources: sources, means: means,
                                             sourceRecordings: sourceRecordings, extraPositions: options.maxNewTokens + maxAnswerTokens(items))
                    let outcomes: [InterventionOutcome]
                    if let models {
                        outcomes = try measure(items, models: models.map { $0 ?? target }, options: options,
                                               groupSize: spec.probe.probeGroupSize, decode: decode,
                                               missing: models.count == 1 ? nil : models.map { $0 == nil })
                    } else {
                        outcomes = [InterventionOutcome](repeating: InterventionOutcome(), count: items.count)
                    }
                    results.intervened.append(outcomes)
                    if case .patch(_, _, let from) = planned.action, let src = sourceClean[from] {
                        results.recovery.append(outcomes.indices.map { k in
                            (outcomes[k].logitDiff - clean[k].logitDiff) / (src[k].logitDiff - clean[k].logitDiff)
                        })
                        results.sourceLogitDiff.append(src.map(\.logitDiff))
                    } else {
                        results.recovery.append([Float](repeating: .nan, count: items.count))
                        results.sourceLogitDiff.append([Float](repeating: .nan, count: items.count))
                    }
                    progress?.interventionFinished(ii, of: plan.count)
                }
                return results
            },
            write: { ci, results, _, _ in try file.write(checkpoint: ci, results) },
            finished: { ci, ref, _ in progress?.checkpointFinished(ci, name: ref.name, skipped: false) })
        return plan
    }

    /// A source named by checkpoint name, by step, or as a folder.
    static func sourceURL(_ name: String, spec: TrajectoryJobSettings) throws -> URL {
        if let ref = spec.checkpoints.first(where: { $0.name == name || $0.step.map(String.init) == name }) { return ref.path }
        let all = spec.trajectoryRoot.flatMap { try? Trajectory.discover(at: $0) } ?? []
        if let ref = all.first(where: { $0.name == name || $0.step.map(String.init) == name }) { return ref.path }
        let url = URL(fileURLWithPath: name)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue { return url }
        // Every checkpoint of the trajectory is a valid source, not only those --checkpoints selected.
        throw InterventionJobError.unknownSource(name: name, available: (all.isEmpty ? spec.checkpoints : all).map(\.name))
    }

    static func maxAnswerTokens(_ items: [(TokenizedProbe, BuiltPrompt)]) -> Int {
        items.map { max($0.0.contextAnswer.ids.count, $0.0.memoryAnswer.ids.count) }.max() ?? 0
    }

    /// Every activation a mean ablation or a patch can replace, at every prompt position of one probe.
    static func record(_ probe: TokenizedProbe, model: DecoderModel, compute: ComputeContext) throws -> HookRecorder {
        var hooks: Set<HookPoint> = []
        for l in 0..<model.layers { hooks.formUnion([.attnZ(l), .attnOut(l), .mlpOut(l), .residPost(l)]) }
        let rec = HookRecorder(hooks)
        _ = try model.forward(probe.promptIDs, logits: .none, observer: rec, compute: compute)
        return rec
    }

    /// The model each probe is measured with under `planned` (one shared model when it is the same for
    /// all), nil entries for probes where it cannot apply (a missing span), or nil when none can.
    static func realize(_ planned: PlannedIntervention, target: DecoderModel, items: [(TokenizedProbe, BuiltPrompt)],
                        sources: [String: DecoderModel], means: MeanActivations?, sourceRecordings: [String: [HookRecorder]],
                        extraPositions: Int) throws -> [DecoderModel?]? {
        let c = target.config
        switch planned.action {
        case let .ablate(site, .zero):
            return [try target.intervened([Intervention(.write(hook(site), heads: heads(site), edit: .zero))])]
        case let .ablate(site, .mean):
            return try items.map { item -> DecoderModel? in
                let n = item.0.promptIDs.count
                var values: [Int: [Float]] = [:]
                for pos in 0..<(n + extraPositions) {
                    if let v = means?.value(site, fromEnd: max(0, n - 1 - pos), dHead: c.dHead) { values[pos] = v }
                }
                return try target.intervened([Intervention(.write(hook(site), heads: heads(site), edit: .replaceAt(values)))])
            }
        case let .knockout(span, layers, from):
            return try items.map { item -> DecoderModel? in
                guard item.0.spanStatus[span]?.isFound ?? false, let keys = item.0.spanPositions[span], !keys.isEmpty else { return nil }
                let q = item.0.answerPosition
                let queries: PositionSet
                switch from {
                case .answer: queries = .only([q])
                case .generation: queries = .from(q)
                case .all: queries = .only(Set(0..<(item.0.promptIDs.count + extraPositions)).subtracting(keys))
                }
                return try target.intervened(layers.map { .knockout(layer: $0, queries: queries, keys: .only(Set(keys))) })
            }
        case let .transplant(components, layers, from):
            return [try target.transplanted(from: sources[from]!, components: components, layers: layers)]
        case let .patch(site, positions, from):
            let recordings = sourceRecordings[from]!
            return try items.enumerated().map { k, item -> DecoderModel? in
                let q = item.0.answerPosition
                let at = positions == .answer ? [q] : Array(0...q)
                guard let recorded = recordings[k][hook(site)] else { return nil }
                let width = recorded.count / item.0.promptIDs.count
                var values: [Int: [Float]] = [:]
                for pos in at {
                    let row = Array(UnsafeBufferPointer(start: recorded.pointer + pos * width, count: width))
                    if case let .head(_, h) = site { values[pos] = Array(row[(h * c.dHead)..<((h + 1) * c.dHead)]) } else { values[pos] = row }
                }
                return try target.intervened([Intervention(.write(hook(site), heads: heads(site), edit: .replaceAt(values)))])
            }
        }
    }

    static func hook(_ site: ActivationSite) -> HookPoint {
        switch site {
        case let .head(l, _): return .attnZ(l)
        case let .attnOut(l): return .attnOut(l)
        case let .mlpOut(l): return .mlpOut(l)
        case let .residPost(l): return .residPost(l)
        }
    }

    static func heads(_ site: ActivationSite) -> [Int]? {
        if case let .head(_, h) = site { return [h] }
        return nil
    }

    /// Measures every probe: `models` holds one shared model (probes run in groups that share each read
    /// of the weights) or one model per probe. Probes marked `missing` get NaN.
    static func measure(_ items: [(TokenizedProbe, BuiltPrompt)], models: [DecoderModel], options: MeasureOptions, groupSize: Int,
                        decode: ([Int]) -> String, missing: [Bool]? = nil) throws -> [InterventionOutcome] {
        var out = [InterventionOutcome](repeating: InterventionOutcome(), count: items.count)
        let shared = models.count == 1
        let groups: [Range<Int>] = shared
            ? stride(from: 0, to: items.count, by: max(1, groupSize)).map { $0..<min(items.count, $0 + max(1, groupSize)) }
            : items.indices.map { $0..<($0 + 1) }
        for group in groups {
            let ks = group.filter { !(missing?[$0] ?? false) }
            guard let model = ks.first.map({ shared ? models[0] : models[$0] }) else { continue }
            var caches: [KVCache] = [], lasts: [[Float]] = []
            for k in ks {
                let p = items[k].0
                let cache = model.makeCache(capacity: p.promptIDs.count + max(p.answerIDs.count, p.memoryAnswerIDs.count, options.maxNewTokens) + 1)
                let last = try model.forward(p.promptIDs, cache: cache, logits: .last, compute: options.compute).array
                caches.append(cache)
                lasts.append(last)
                if let a = p.answerIDs.first, let b = p.memoryAnswerIDs.first {
                    out[k].logitDiff = last[a] - last[b]
                    let (pa, pb) = (Double(last[a]), Double(last[b]))
                    let m = max(pa, pb)
                    out[k].mc = Float(Foundation.exp(pa - m) / (Foundation.exp(pa - m) + Foundation.exp(pb - m)))
                }
            }
            let loglik = try ProbeMeasurer.answerLogLikelihoods(ks.map { items[$0].0 }, caches: caches, lastLogits: lasts,
                                                                model: model, compute: options.compute)
            let gens = options.maxNewTokens > 0
                ? try ProbeMeasurer.generations(ks.map { items[$0] }, caches: caches, lastLogits: lasts, model: model, options: options, decode: decode)
                : []
            for (j, k) in ks.enumerated() {
                out[k].loglik = loglik[j]
                if !gens.isEmpty { out[k].generation = gens[j] }
            }
        }
        return out
    }
}

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
public protocol InterventionJobProgress: AnyObject {
    func checkpointStarted(_ index: Int, of total: Int, name: String)
    func interventionFinished(_ index: Int, of total: Int)
    func checkpointFinished(_ index: Int, name: String, skipped: Bool)
}

/// Why an intervention run cannot proceed.
public enum InterventionJobError: Error, CustomStringConvertible, Sendable {
    case noExperiment
    case experiment(ExperimentError)
    case unknownSource(name: String, available: [String])
    case incompatibleSource(source: String, detail: String)
    case resumeMismatch(path: String, detail: String)

    public var description: String {
        switch self {
        case .noExperiment: return "no experiment given"
        case let .experiment(e): return e.description
        case let .unknownSource(name, available):
            let list = available.count <= 12 ? available.joined(separator: ", ")
                : available.prefix(10).joined(separator: ", ") + ", …, \(available.last ?? "") (\(available.count) in all)"
            return "source checkpoint '\(name)' is neither a checkpoint of the trajectory (\(list)) nor a checkpoint folder"
        case let .incompatibleSource(source, detail): return "\(source): \(detail)"
        case let .resumeMismatch(path, detail): return "\(path): cannot resume: \(detail)"
        }
    }

    public var hint: String {
        switch self {
        case .noExperiment: return "Give at least one of --ablate, --knockout, --transplant-from, --patch-from (see cpiscope intervene --help)."
        case .experiment: return "See cpiscope intervene --help for the experiment syntax."
        case .unknownSource: return "Name a checkpoint of the trajectory (its name or step) or a checkpoint folder."
        case .incompatibleSource: return "Transplants and patches need another checkpoint of the same model."
        case .resumeMismatch: return "Resume with the same probes, checkpoints and experiments, or start again with --force."
        }
    }
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
        try ProbeJob.checkOutput(spec.probe)
        guard !spec.experiments.isEmpty else { throw InterventionJobError.noExperiment }
        let job = try ProbeJob.prepare(spec.probe)
        let c = job.config
        let jobPlan: [PlannedIntervention]
        do { jobPlan = try spec.experiments.expand(layers: c.layers, heads: c.heads) } catch { throw InterventionJobError.experiment(error) }
        // This process's checkpoints and interventions (`--shard`): each intervention × probe is measured
        // exactly as in a single-process run (nothing here depends on the other interventions).
        var checkpointIndices = Array(spec.probe.checkpoints.indices)
        var planIndices = Array(jobPlan.indices)
        if let shard = spec.probe.shard {
            switch shard.axis {
            case .checkpoints: checkpointIndices = Array(shard.range(of: checkpointIndices.count))
            case .interventions: planIndices = Array(shard.range(of: planIndices.count))
            case .probes, .examples: throw ProbeRunError.shardAxis(axis: shard.axis.rawValue, command: "intervene")
            }
            if checkpointIndices.isEmpty || planIndices.isEmpty { throw ProbeRunError.emptyShard(shard: shard.description) }
        }
        let refs = checkpointIndices.map { spec.probe.checkpoints[$0] }
        let plan = planIndices.map { jobPlan[$0] }
        var options = job.options
        if !spec.generate { options.maxNewTokens = 0 }
        let items = Array(zip(job.tokenized, job.built))
        let decode: ([Int]) -> String = { job.tokenizer.decode($0, skipSpecialTokens: true) }

        // Source checkpoints of transplants and patches: loaded once, checked against the first target.
        var sources: [String: DecoderModel] = [:]
        for name in Set(plan.map(\.source)).subtracting([""]).sorted() {
            let url = try sourceURL(name, spec: spec.probe)
            let model = try CheckpointLoader(base: spec.probe.base, hashContents: false).load(url).model
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
        for (ci, ref) in refs.enumerated() {
            progress?.checkpointStarted(ci, of: refs.count, name: ref.name)
            if file.done[ci] { progress?.checkpointFinished(ci, name: ref.name, skipped: true); continue }
            let target = try job.loader.load(ref.path).model
            let clean = try measure(items, models: [target], options: options, groupSize: spec.probe.probeGroupSize, decode: decode)
            let needsMeans = plan.contains { if case .ablate(_, .mean) = $0.action { return true } else { return false } }
            let means = needsMeans ? try MeanActivations(items.map { try record($0.0, model: target, compute: options.compute) }) : nil
            var results: [[InterventionOutcome]] = []
            var recovery: [[Float]] = [], sourceDiff: [[Float]] = []
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
                results.append(outcomes)
                if case .patch(_, _, let from) = planned.action, let src = sourceClean[from] {
                    recovery.append(outcomes.indices.map { k in
                        (outcomes[k].logitDiff - clean[k].logitDiff) / (src[k].logitDiff - clean[k].logitDiff)
                    })
                    sourceDiff.append(src.map(\.logitDiff))
                } else {
                    recovery.append([Float](repeating: .nan, count: items.count))
                    sourceDiff.append([Float](repeating: .nan, count: items.count))
                }
                progress?.interventionFinished(ii, of: plan.count)
            }
            try file.write(checkpoint: ci, clean: clean, intervened: results, recovery: recovery, sourceLogitDiff: sourceDiff)
            progress?.checkpointFinished(ci, name: ref.name, skipped: false)
        }
        try file.finish()
        return plan
    }

    /// A source named by checkpoint name, by step, or as a folder.
    static func sourceURL(_ name: String, spec: ProbeJobSpec) throws -> URL {
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

/// Mean activations over a probe set, per position counted from the end of each prompt (mean ablation).
struct MeanActivations {
    /// hook → [position from end] → (sum, count) of the activation row
    private var sums: [HookPoint: [[Double]]] = [:]
    private var counts: [HookPoint: [Int]] = [:]

    init(_ recordings: [HookRecorder]) {
        for rec in recordings {
            for (hook, t) in rec.tensors {
                let n = t.shape[0], width = t.count / max(n, 1)
                var s = sums[hook] ?? [], c = counts[hook] ?? []
                if s.count < n { s += [[Double]](repeating: [Double](repeating: 0, count: width), count: n - s.count); c += [Int](repeating: 0, count: n - c.count) }
                for pos in 0..<n {
                    let e = n - 1 - pos
                    for j in 0..<width { s[e][j] += Double(t.pointer[pos * width + j]) }
                    c[e] += 1
                }
                sums[hook] = s
                counts[hook] = c
            }
        }
    }

    /// The mean at `fromEnd` positions before a prompt's end (the value to write: one head's d_head slice
    /// for `hook_z`), or nil when no probe is that long.
    func value(_ site: ActivationSite, fromEnd e: Int, dHead: Int) -> [Float]? {
        let hook = InterventionJob.hook(site)
        guard let s = sums[hook], let c = counts[hook], e < s.count, c[e] > 0 else { return nil }
        let row = s[e].map { Float($0 / Double(c[e])) }
        if case let .head(_, h) = site { return Array(row[(h * dHead)..<((h + 1) * dHead)]) }
        return row
    }
}

/// Writing the intervention run file: its variables are defined in HDF5Store/RunSchema.swift
/// (`InterventionSchema`; docs/interventions.md).
final class InterventionFile {
    private typealias S = InterventionSchema
    static let schemaVersion = InterventionSchema.version
    let file: HDF5File
    let url: URL
    private(set) var done: [Bool]
    let generate: Bool

    /// `refs` and `plan`: this process's part of the job (all of it without `--shard`); `jobPlan`: the whole job's.
    init(spec: InterventionJobSpec, job: ProbeJob.PreparedJob, checkpoints refs: [CheckpointRef], plan: [PlannedIntervention],
         jobPlan: [PlannedIntervention], options: MeasureOptions) throws {
        let s = spec.probe
        url = s.output
        generate = spec.generate
        let checkpoints = refs.map(\.name), probes = job.probeSet.probes.map(\.id), names = plan.map(\.name)
        if s.resume, FileManager.default.fileExists(atPath: url.path) {
            file = try HDF5File.open(at: s.output, writable: true)
            let path = s.output.path
            let mismatch = { (what: String) in InterventionJobError.resumeMismatch(path: path, detail: what) }
            guard (try? file.attribute(S.versionAttribute)) == .int(Self.schemaVersion) else {
                try? file.close(); throw mismatch("it is not an intervention run of this version")
            }
            if try file.readStrings(S.Dim.checkpoint).values != checkpoints { try? file.close(); throw mismatch("its checkpoints differ") }
            if try file.readStrings(S.Dim.probe).values != probes { try? file.close(); throw mismatch("its probes differ") }
            if try file.readStrings(S.Dim.intervention).values != names { try? file.close(); throw mismatch("its interventions differ") }
            // The probe job's result-changing settings (ProbeSettings) and --generate, as a probe run checks them.
            var now = ProbeJob.runAttributes(s, config: job.config, tokenizerFile: job.tokenizerFile, tokenizerHash: job.tokenizerHash,
                                             probeHash: (try? ContentHash.sha256(file: s.probeFile)) ?? "", options: options)
            now[S.Attribute.generate] = .int(generate ? 1 : 0)
            for key in ProbeSettings.attributes + [S.Attribute.generate] {
                let recorded = try? file.attribute(key)
                guard recorded != now[key] else { continue }
                try? file.close()
                let option = key == S.Attribute.generate ? "--generate" : ProbeSettings.options(for: key)
                throw mismatch("its \(key) is \(recorded.map(\.description) ?? "not recorded"), and this run's is \(now[key].map(\.description) ?? "unset") (pass the file's \(option))")
            }
            done = try file.readUInt8(S.checkpointComplete.name).values.map { $0 == 1 }
            // Files written before source_logit_diff existed get it now (NaN at their finished checkpoints).
            if !file.exists(S.sourceLogitDiff.name) { try file.createVariable(S.sourceLogitDiff) }
            return
        }
        file = try HDF5File.create(at: url, overwrite: s.force)
        done = [Bool](repeating: false, count: checkpoints.count)
        do {
            try file.createDimension(S.Dim.checkpoint, strings: checkpoints)
            try file.createCoordinate(RunSchema.step.name, along: S.Dim.checkpoint, ints: refs.map { Int64($0.step ?? -1) })
            try file.createDimension(S.Dim.probe, strings: probes)
            try file.createDimension(S.Dim.intervention, strings: names)
            try file.createDimension(S.Dim.answer, strings: RunSchema.answers)
            let text: [SchemaVariable: [String]] = [
                S.kind: plan.map(\.kind), S.component: plan.map(\.component), S.source: plan.map(\.source),
                S.layerList: plan.map { $0.layers.map(String.init).joined(separator: ",") }]
            for v in S.perInterventionText {
                try file.createVariable(v)
                try file.write(v.name, strings: text[v, default: []])
            }
            let index: [SchemaVariable: [Int32]] = [S.layer: plan.map { Int32($0.layer) }, S.head: plan.map { Int32($0.head) }]
            for v in S.perInterventionIndex {
                try file.createVariable(v)
                try file.write(v.name, ints32: index[v, default: []])
            }
            for v in S.measurements + (generate ? S.cleanGeneration + S.intervenedGeneration : []) + [S.checkpointComplete] {
                try file.createVariable(v)
            }
            var attrs = ProbeJob.runAttributes(s, config: job.config, tokenizerFile: job.tokenizerFile, tokenizerHash: job.tokenizerHash,
                                               probeHash: (try? ContentHash.sha256(file: s.probeFile)) ?? "", options: options)
            attrs[S.versionAttribute] = .int(Self.schemaVersion)
            attrs["checkpoint_weight_formats"] = .strings(job.weightFormats)
            attrs[RunSchema.Attribute.complete] = .int(0)
            attrs[S.Attribute.generate] = .int(generate ? 1 : 0)
            attrs["patch_recovery_definition"] = .string("(patched − target) / (source − target) of logit[context answer] − logit[memory answer]")
            attrs["mean_ablation_definition"] = .string("the activation averaged over the probe set at the same checkpoint, per position counted from the end of the prompt; positions past the prompt take the answer position's mean")
            attrs["knockout_definition"] = .string("−inf added to the pre-softmax scores from the query positions to the span's tokens, every head of the listed layers (Geva et al. 2023); queries: the answer position, or with 'from generation' in the name also every generated token, with 'from all' every position outside the span")
            if let shard = s.shard {
                attrs[RunSchema.Attribute.shard] = .string(shard.description)
                attrs[RunSchema.Attribute.shardBy] = .string(shard.axis.rawValue)
                attrs[ProbeShard.Axis.checkpoints.jobAttribute] = .strings(s.checkpoints.map(\.name))
                attrs[ProbeShard.Axis.probes.jobAttribute] = .strings(probes)
                attrs[ProbeShard.Axis.interventions.jobAttribute] = .strings(jobPlan.map(\.name))
            }
            for (k, v) in attrs.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v) }
            try file.flush()
        } catch {
            try? file.close()
            try? FileManager.default.removeItem(at: url)
            throw error
        }
    }

    func write(checkpoint ci: Int, clean: [InterventionOutcome], intervened: [[InterventionOutcome]], recovery: [[Float]],
               sourceLogitDiff: [[Float]]) throws {
        do {
            try file.writeSlab(S.cleanLogitDiff.name, index: ci, floats: clean.map(\.logitDiff))
            try file.writeSlab(S.cleanMC.name, index: ci, floats: clean.map(\.mc))
            try file.writeSlab(S.cleanAnswerLoglik.name, index: ci, floats: clean.flatMap(\.loglik))
            try file.writeSlab(S.logitDiff.name, index: ci, floats: intervened.flatMap { $0.map(\.logitDiff) })
            try file.writeSlab(S.mc.name, index: ci, floats: intervened.flatMap { $0.map(\.mc) })
            try file.writeSlab(S.answerLoglik.name, index: ci, floats: intervened.flatMap { $0.flatMap(\.loglik) })
            try file.writeSlab(S.patchRecovery.name, index: ci, floats: recovery.flatMap { $0 })
            try file.writeSlab(S.sourceLogitDiff.name, index: ci, floats: sourceLogitDiff.flatMap { $0 })
            if generate {
                for (variables, rows) in [(S.cleanGeneration, clean), (S.intervenedGeneration, intervened.flatMap { $0 })] {
                    let (cf, pf, text) = (variables[0], variables[1], variables[2])
                    try file.writeSlab(cf.name, index: ci, uint8: rows.map { ($0.generation?.counterfactual ?? false) ? 1 : 0 })
                    try file.writeSlab(pf.name, index: ci, uint8: rows.map { ($0.generation?.parametric ?? false) ? 1 : 0 })
                    try file.writeSlab(text.name, index: ci, strings: rows.map { storable($0.generation?.text ?? "") })
                }
            }
            try file.flush()
            try file.writeSlab(S.checkpointComplete.name, index: ci, uint8: [1])
            try file.flush()
        } catch {
            file.abandon()
            throw ProbeRunError.writeFailed(path: url.path, detail: "\(error)")
        }
        done[ci] = true
    }

    func finish() throws {
        try file.setAttribute(RunSchema.Attribute.complete, .int(1))
        try file.flush()
        try file.close()
    }

    func close() { try? file.close() }
}

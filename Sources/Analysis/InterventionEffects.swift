// The effect of each intervention in a `cpiscope intervene` file (docs/interventions.md): per checkpoint
// and intervention, the mean change from the clean model over probes, with a paired bootstrap interval
// (Statistics.swift), of the logit difference, M_C and (with --generate) counterfactual accuracy, and
// a patch's recovery as the ratio of means
//     recovery = Σ_p (patched_p − target_p) / Σ_p (source_p − target_p)
// over the probes where all three logit differences are finite, with the paired bootstrap of that
// ratio (`Bootstrap.ratio`: both sums over the same resampled probes). This is the normalisation of
// the TransformerLens activation-patching demos (Nanda, "Exploratory Analysis Demo", and Heimersheim &
// Nanda, "How to use and interpret activation patching", 2024: (patched − corrupted) / (clean −
// corrupted) of the mean logit difference), and unlike the mean of per-probe ratios it is not dominated
// by probes whose source and target nearly tie. Files written before `source_logit_diff` existed have
// no recovery (undefined). NaN values (a span missing in a probe) are left out, probe by probe. `InterventionRun` reads and validates the file
// (untrusted: every coordinate and variable shape is checked, and only complete checkpoints are used);
// `InterventionEffects` computes, ranks and words the effects for `diff`, `report` and `demo`.
import Foundation
import HDF5Store

private typealias S = InterventionSchema

/// An opened, validated intervention file. Checkpoint indices count complete checkpoints only.
public struct InterventionRun: Sendable {
    /// The schema version this build reads (`cpiscope_intervention_schema_version`).
    public static let schemaVersion = InterventionSchema.version
    /// The kinds `intervention_kind` may hold.
    public static let kinds = ["ablate", "knockout", "transplant", "patch"]
    /// Upper bound on interventions (far above a full head sweep of any real model).
    public static let maxInterventions = 1_000_000

    public let path: String
    /// Complete checkpoints (`checkpoint_complete` = 1): names and training steps.
    public let checkpoints: [String]
    public let steps: [Int64]
    public let incompleteCheckpoints: [String]
    public let probes: [String]
    /// Per intervention (the `intervention` coordinate and its variables).
    public let names: [String]
    public let kinds: [String]
    public let layers: [Int]
    public let heads: [Int]
    public let components: [String]
    public let sources: [String]
    /// Per intervention, every layer it acts on (`intervention_layers`; empty where none is listed).
    public let layerLists: [[Int]]
    /// The model's layer and head counts from the `model_config` attribute (config.json), nil when absent.
    public let modelLayers: Int?
    public let modelHeads: Int?
    /// Whether the file holds generations (`--generate`).
    public let generated: Bool
    /// `[checkpoint, probe]` (complete checkpoints).
    public let cleanLogitDiff: [Float]
    public let cleanMC: [Float]
    /// `[checkpoint, intervention, probe]`.
    public let logitDiff: [Float]
    public let mc: [Float]
    public let recovery: [Float]
    /// `[checkpoint, intervention, probe]`: a patch's source logit difference (NaN for other kinds); nil
    /// in files written before it was recorded.
    public let sourceLogitDiff: [Float]?
    /// With generations: `[checkpoint, probe]` and `[checkpoint, intervention, probe]`; empty otherwise.
    public let cleanCounterfactual: [UInt8]
    public let counterfactual: [UInt8]
    /// Free-text attributes shown in reports (model_type, template_name, tool_version, ...).
    public let info: [String: String]

    /// Whether `url` is an HDF5 file carrying `cpiscope_intervention_schema_version` (any value).
    public static func isInterventionFile(_ url: URL) -> Bool { fileCarries(url, attribute: S.versionAttribute) }

    /// Opens and validates an intervention file.
    /// - Throws: `cannotOpen`, `notARun` (no schema attribute), `schemaVersion`, `malformedRun` naming the field.
    public init(url: URL) throws {
        let path = url.path
        self.path = path
        let file = try openVersionedFile(url, versionAttribute: S.versionAttribute, version: Self.schemaVersion, command: "cpiscope intervene")
        defer { try? file.close() }
        var r = FieldReader(file: file, path: path)
        let allCheckpoints = try r.strings(S.Dim.checkpoint), probes = try r.strings(S.Dim.probe), names = try r.strings(S.Dim.intervention)
        let C = allCheckpoints.count, P = probes.count, I = names.count
        guard (1...RunData.maxCheckpoints).contains(C) else {
            throw AnalysisError.malformedRun(path: path, field: S.Dim.checkpoint, detail: "\(C) checkpoints (1...\(RunData.maxCheckpoints) allowed)")
        }
        guard (1...RunData.maxProbes).contains(P) else {
            throw AnalysisError.malformedRun(path: path, field: S.Dim.probe, detail: "\(P) probes (1...\(RunData.maxProbes) allowed)")
        }
        guard (1...Self.maxInterventions).contains(I) else {
            throw AnalysisError.malformedRun(path: path, field: S.Dim.intervention, detail: "\(I) interventions (1...\(Self.maxInterventions) allowed)")
        }
        let (perCheckpoint, overflowIP) = I.multipliedReportingOverflow(by: P)
        let (cells, overflow) = C.multipliedReportingOverflow(by: perCheckpoint)
        guard !overflowIP, !overflow, cells <= 1 << 31 else {
            throw AnalysisError.malformedRun(path: path, field: S.logitDiff.name, detail: "\(C) × \(I) × \(P) values is too large")
        }
        // Every variable's expected shape follows from these (SchemaVariable.dims).
        r.sizes = [S.Dim.checkpoint: C, S.Dim.probe: P, S.Dim.intervention: I]
        let allSteps = try r.int64(RunSchema.step)
        kinds = try r.strings(S.kind)
        if let bad = kinds.first(where: { !Self.kinds.contains($0) }) {
            throw AnalysisError.malformedRun(path: path, field: S.kind.name, detail: "unknown kind '\(bad)' (expected \(Self.kinds.joined(separator: ", ")))")
        }
        components = try r.strings(S.component)
        sources = try r.strings(S.source)
        layerLists = try r.strings(S.layerList).map { text in
            try text.split(separator: ",").map { part in
                guard let l = Int(part.trimmingCharacters(in: .whitespaces)), (0..<RunData.maxLayers).contains(l) else {
                    throw AnalysisError.malformedRun(path: path, field: S.layerList.name, detail: "'\(text)' is not a comma list of layers")
                }
                return l
            }
        }
        (modelLayers, modelHeads) = Self.modelShape(try? file.attribute(RunSchema.Attribute.modelConfig))
        func index(_ v: SchemaVariable) throws -> [Int] {
            let field = v.name
            let values = try r.wrap(field) { try file.readInts32(field) }
            try r.check(field, values.shape, try r.expected(v))
            if let bad = values.values.first(where: { $0 < -1 || Int($0) >= RunData.maxLayers * RunData.maxHeads }) {
                throw AnalysisError.malformedRun(path: path, field: field, detail: "value \(bad) out of range (−1 = not applicable)")
            }
            return values.values.map(Int.init)
        }
        layers = try index(S.layer)
        heads = try index(S.head)
        let complete = try r.uint8(S.checkpointComplete)
        let keep = (0..<C).filter { complete[$0] == 1 }
        checkpoints = keep.map { allCheckpoints[$0] }
        steps = keep.map { allSteps[$0] }
        incompleteCheckpoints = (0..<C).filter { complete[$0] != 1 }.map { allCheckpoints[$0] }
        func select<T>(_ values: [T], per: Int) -> [T] { keep.flatMap { values[($0 * per)..<(($0 + 1) * per)] } }
        cleanLogitDiff = select(try r.floats(S.cleanLogitDiff), per: P)
        cleanMC = select(try r.floats(S.cleanMC), per: P)
        logitDiff = select(try r.floats(S.logitDiff), per: I * P)
        mc = select(try r.floats(S.mc), per: I * P)
        recovery = select(try r.floats(S.patchRecovery), per: I * P)
        sourceLogitDiff = file.exists(S.sourceLogitDiff.name) ? select(try r.floats(S.sourceLogitDiff), per: I * P) : nil
        let generateAttribute = (try? file.attribute(S.Attribute.generate)) == .int(1)
        generated = generateAttribute || (try? file.shape(of: S.counterfactualCorrect.name)) != nil
        cleanCounterfactual = generated ? select(try r.uint8(S.cleanCounterfactualCorrect), per: P) : []
        counterfactual = generated ? select(try r.uint8(S.counterfactualCorrect), per: I * P) : []
        typealias A = RunSchema.Attribute
        info = r.info([A.templateName, A.modelType, A.toolVersion, A.created, A.probeFile, A.commandLine])
        self.probes = probes
        self.names = names
    }

    /// Index of a complete checkpoint named by its name or step. - Throws: `unknownCheckpoint`.
    public func checkpointIndex(_ key: String) throws -> Int {
        try Analysis.checkpointIndex(key, checkpoints: checkpoints, steps: steps, path: path)
    }

    /// The layer and head counts in a config.json text (`num_hidden_layers` / `n_layer`,
    /// `num_attention_heads` / `n_head`), each nil when absent or out of range.
    static func modelShape(_ attribute: AttributeValue?) -> (Int?, Int?) {
        guard case .string(let text)? = attribute, let data = text.data(using: .utf8),
              let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return (nil, nil) }
        func count(_ keys: [String], limit: Int) -> Int? {
            for k in keys { if let n = json[k] as? Int, (1...limit).contains(n) { return n } }
            return nil
        }
        return (count(["num_hidden_layers", "n_layer", "num_layers"], limit: RunData.maxLayers),
                count(["num_attention_heads", "n_head"], limit: RunData.maxHeads))
    }

    /// The model's layer count: from config.json, else one past the largest layer any intervention names.
    public var layerCount: Int {
        modelLayers ?? ((layers + layerLists.flatMap { $0 }).max() ?? -1) + 1
    }

    /// The model's head count: from config.json, else one past the largest head any intervention names.
    public var headCount: Int { modelHeads ?? (heads.max() ?? -1) + 1 }
}

/// One intervention at one checkpoint.
public struct InterventionEffect: Sendable {
    public let checkpoint: String
    public let name: String
    public let kind: String
    public let layer: Int
    public let head: Int
    public let component: String
    public let source: String
    /// Every layer the intervention acts on, from the file (empty when it lists none).
    public let layers: [Int]
    /// intervened − clean, over probes.
    public let logitDiffChange: Estimate
    public let mcChange: Estimate
    /// nil without --generate.
    public let counterfactualChange: Estimate?
    /// A patch's recovery, Σ (patched − target) / Σ (source − target) of the logit difference over the
    /// probes where all three are finite, with its paired bootstrap interval (undefined for other kinds,
    /// and for files without `source_logit_diff`).
    public let recovery: Estimate

    public init(checkpoint: String, name: String, kind: String, layer: Int, head: Int, component: String, source: String,
                layers: [Int] = [], logitDiffChange: Estimate, mcChange: Estimate, counterfactualChange: Estimate?, recovery: Estimate) {
        self.checkpoint = checkpoint; self.name = name; self.kind = kind; self.layer = layer; self.head = head
        self.component = component; self.source = source; self.layers = layers; self.logitDiffChange = logitDiffChange; self.mcChange = mcChange
        self.counterfactualChange = counterfactualChange; self.recovery = recovery
    }

    /// Layers a knockout acts on: the file's list (`intervention_layers`) when it has one, else read from
    /// the name ("knockout context L0-3", "… L1,L4", with or without " from generation"); [layer] when
    /// the name has no layer list; empty when neither is known.
    public var knockoutLayers: [Int] {
        if !layers.isEmpty { return layers }
        var words = name.split(separator: " ")
        if words.count >= 2, words[words.count - 2] == "from" { words.removeLast(2) }
        var out: [Int] = []
        for part in (words.last ?? "").split(separator: ",") {
            guard part.first == "L" else { return layer >= 0 ? [layer] : [] }
            let bounds = part.dropFirst().split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let a = Int(bounds[0]), let b = Int(bounds[bounds.count - 1]), a <= b, b - a < 1 << 16 else {
                return layer >= 0 ? [layer] : []
            }
            out += Array(a...b)
        }
        return out
    }

    /// A patch's positions ("answer" or "all"): the word before "from" in its name ("" when absent).
    public var patchPositions: String {
        let words = name.split(separator: " ")
        guard let k = words.lastIndex(of: "from"), k > 0 else { return "" }
        return String(words[k - 1])
    }

    /// An ablation's mode ("zero" or "mean"): the last word of its name.
    public var ablationMode: String { String(name.split(separator: " ").last ?? "") }
}

/// What `diff` ranks interventions by.
public enum EffectMeasure: String, Sendable, CaseIterable {
    case logitDiff = "logit-diff"
    case mc
    case counterfactual = "cf"
    case recovery

    public var label: String {
        switch self {
        case .logitDiff: return "Δ logit diff"
        case .mc: return "Δ M_C"
        case .counterfactual: return "Δ counterfactual accuracy"
        case .recovery: return "patch recovery"
        }
    }

    /// The estimate of `e` for this measure (undefined without generations or for non-patches).
    public func estimate(_ e: InterventionEffect) -> Estimate {
        switch self {
        case .logitDiff: return e.logitDiffChange
        case .mc: return e.mcChange
        case .counterfactual: return e.counterfactualChange ?? .undefined
        case .recovery: return e.recovery
        }
    }
}

public enum InterventionEffects {
    /// Reads an intervention file and computes every effect. - Throws: `notARun` for another kind of file.
    public static func analyze(_ url: URL, seed: UInt64 = 0, resamples: Int = 2000) throws -> [InterventionEffect] {
        try analyze(try InterventionRun(url: url), bootstrap: try Bootstrap(seed: seed, resamples: resamples))
    }

    /// Every effect of an opened file, checkpoint by checkpoint (complete ones, or only checkpoint
    /// `only`), interventions in file order. An effect does not depend on which others are computed.
    public static func analyze(_ run: InterventionRun, bootstrap: Bootstrap, only: Int? = nil) throws -> [InterventionEffect] {
        let P = run.probes.count, I = run.names.count
        var out: [InterventionEffect] = []
        out.reserveCapacity(run.checkpoints.count * I)
        for c in run.checkpoints.indices where only == nil || only == c {
            let clean = (0..<P).map { Double(run.cleanLogitDiff[c * P + $0]) }, cleanMC = (0..<P).map { Double(run.cleanMC[c * P + $0]) }
            let cleanCF = run.generated ? (0..<P).map { Double(run.cleanCounterfactual[c * P + $0]) } : []
            for i in 0..<I {
                let base = (c * I + i) * P
                func values<T: BinaryFloatingPoint>(_ x: [T]) -> [Double] { (0..<P).map { Double(x[base + $0]) } }
                out.append(InterventionEffect(
                    checkpoint: run.checkpoints[c], name: run.names[i], kind: run.kinds[i], layer: run.layers[i], head: run.heads[i],
                    component: run.components[i], source: run.sources[i], layers: run.layerLists[i],
                    logitDiffChange: try bootstrap.paired(from: clean, to: values(run.logitDiff)),
                    mcChange: try bootstrap.paired(from: cleanMC, to: values(run.mc)),
                    counterfactualChange: run.generated
                        ? try bootstrap.paired(from: cleanCF, to: (0..<P).map { Double(run.counterfactual[base + $0]) }) : nil,
                    recovery: run.kinds[i] == "patch" ? try recovery(run, checkpoint: c, intervention: i, bootstrap: bootstrap) : .undefined))
            }
        }
        return out
    }

    /// A patch's recovery at checkpoint `c`: the ratio of means Σ (patched − target) / Σ (source − target)
    /// of the logit difference with its paired bootstrap interval (see the file header).
    static func recovery(_ run: InterventionRun, checkpoint c: Int, intervention i: Int, bootstrap: Bootstrap) throws -> Estimate {
        guard let source = run.sourceLogitDiff else { return .undefined }
        let P = run.probes.count, I = run.names.count, base = (c * I + i) * P
        var gained: [Double] = [], gap: [Double] = []
        for p in 0..<P {
            let target = Double(run.cleanLogitDiff[c * P + p]), patched = Double(run.logitDiff[base + p]), src = Double(source[base + p])
            gained.append(patched - target)
            gap.append(src - target)
        }
        return try bootstrap.ratio(gained, gap)
    }

    /// The effects at one checkpoint ranked by |measure| (largest first; undefined ones last, file
    /// order among ties), optionally of one kind.
    public static func ranked(_ effects: [InterventionEffect], checkpoint: String, by measure: EffectMeasure = .logitDiff,
                              kind: String? = nil) -> [InterventionEffect] {
        let at = effects.enumerated().filter { $0.element.checkpoint == checkpoint && (kind == nil || $0.element.kind == kind) }
        func key(_ e: InterventionEffect) -> Double {
            let v = abs(measure.estimate(e).value)
            return v.isFinite ? v : -1
        }
        return at.sorted { a, b in
            let ka = key(a.element), kb = key(b.element)
            return ka != kb ? ka > kb : a.offset < b.offset
        }.map(\.element)
    }

    /// What restores context reliance: the counterfactual-accuracy change, or M_C's without generations.
    static func restoration(_ e: InterventionEffect) -> Estimate { e.counterfactualChange ?? e.mcChange }

    /// The transplant that restores the most context reliance at `checkpoint` (default the last
    /// checkpoint that has transplants): the largest mean increase in counterfactual accuracy (M_C
    /// when the file has no generations; ties go to the larger M_C change), in words.
    public static func transplantHeadline(_ effects: [InterventionEffect], checkpoint: String? = nil) -> String? {
        let all = effects.filter { $0.kind == "transplant" }
        guard let at = checkpoint ?? all.last?.checkpoint else { return nil }
        let transplants = all.filter { $0.checkpoint == at }
        func score(_ e: InterventionEffect) -> (Double, Double) { (restoration(e).value, e.mcChange.value) }
        guard let best = transplants.filter({ score($0).0.isFinite }).max(by: { score($0) < score($1) }) else { return nil }
        let what = best.counterfactualChange != nil ? "counterfactual accuracy" : "M_C"
        let est = restoration(best)
        let layer = best.layer < 0 ? "every layer" : "layer \(best.layer)"
        // Each interval that includes 0 is flagged right after it, so the note cannot be read as the other's.
        func change(_ e: Estimate) -> String {
            "\(Fmt.signed(e.value)) \(Fmt.interval(e.interval))" + (e.interval.excludesZero ? "" : " (this 95% interval includes 0)")
        }
        let verb = est.value > 0 ? "restores the most context reliance"
            : "comes closest to restoring context reliance (no transplant raises \(what))"
        let mc = best.counterfactualChange != nil ? " and M_C by \(change(best.mcChange))" : ""
        return "At \(at), transplanting \(best.component) of \(layer) from \(best.source) \(verb): \(what) changes by "
            + "\(change(est))\(mc) — the largest of \(transplants.count) transplants."
    }

    /// The strongest effect of each kind at `checkpoint`, in words (by |Δ logit diff|; patches by recovery).
    public static func kindHeadlines(_ effects: [InterventionEffect], checkpoint: String) -> [String] {
        InterventionRun.kinds.compactMap { kind in
            let measure: EffectMeasure = kind == "patch" ? .recovery : .logitDiff
            guard let top = ranked(effects, checkpoint: checkpoint, by: measure, kind: kind).first else { return nil }
            let e = measure.estimate(top)
            guard e.value.isFinite else { return "\(kind): no finite \(measure.label) at \(checkpoint)" }
            return "\(kind): strongest at \(checkpoint) is \(top.name), \(measure.label) \(Fmt.signed(e.value)) \(Fmt.interval(e.interval)) (n = \(e.n))"
        }
    }

    /// A plain-text table of effects, largest |change in logit difference| first (NaN last; ties in the
    /// file's order).
    public static func table(_ effects: [InterventionEffect], top: Int = 20) -> String {
        func key(_ e: InterventionEffect) -> Double { let v = abs(e.logitDiffChange.value); return v.isNaN ? -1 : v }
        let ranked = effects.enumerated().sorted { a, b in
            key(a.element) != key(b.element) ? key(a.element) > key(b.element) : a.offset < b.offset
        }.map(\.element)
        let rows = ranked.prefix(top).map { e -> [String] in
            [e.checkpoint, e.name, "\(Fmt.number(e.logitDiffChange.value)) \(Fmt.interval(e.logitDiffChange.interval))",
             "\(Fmt.number(e.mcChange.value)) \(Fmt.interval(e.mcChange.interval))",
             e.counterfactualChange.map { "\(Fmt.number($0.value)) \(Fmt.interval($0.interval))" } ?? "-",
             e.recovery.value.isFinite ? Fmt.number(e.recovery.value) : "-"]
        }
        let header = ["checkpoint", "intervention", "Δ logit diff [95% CI]", "Δ M_C [95% CI]", "Δ cf_acc [95% CI]", "recovery"]
        let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, s in s + String(repeating: " ", count: widths[c] - s.count) }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

/// `cpiscope diff` on an intervention file: the interventions at one checkpoint ranked by one measure.
public struct InterventionRanking: Sendable {
    public let run: InterventionRun
    public let checkpoint: String
    public let step: Int64
    public let measure: EffectMeasure
    /// The kind shown (nil = every kind).
    public let kind: String?
    /// Every intervention (of `kind`) at `checkpoint`, largest |measure| first.
    public let ranked: [InterventionEffect]
    public let seed: UInt64
    public let resamples: Int
    /// The transplant sentence (when the file has transplants) and the strongest effect of each kind.
    public let headline: [String]

    /// - Parameters: `checkpoint` by name or step (nil = the last complete one); `kind` one of the file's kinds.
    /// - Throws: `incompleteRun`, `unknownCheckpoint`, `invalidOption` (a kind the file lacks, or
    ///   `cf` without generations), bootstrap option errors.
    public init(run: InterventionRun, checkpoint: String? = nil, by measure: EffectMeasure = .logitDiff, kind: String? = nil,
                seed: UInt64 = 0, resamples: Int = 2000) throws {
        guard !run.checkpoints.isEmpty else { throw AnalysisError.incompleteRun(path: run.path, complete: 0, needed: 1) }
        let c = try checkpoint.map(run.checkpointIndex) ?? run.checkpoints.count - 1
        if let kind, !run.kinds.contains(kind) {
            let present = InterventionRun.kinds.filter { run.kinds.contains($0) }
            throw AnalysisError.invalidOption(option: "--kind", detail: "the file has no '\(kind)' interventions (it has \(present.joined(separator: ", ")))")
        }
        if measure == .counterfactual && !run.generated {
            throw AnalysisError.invalidOption(option: "--by", detail: "cf needs generations; the file was written without --generate")
        }
        let effects = try InterventionEffects.analyze(run, bootstrap: try Bootstrap(seed: seed, resamples: resamples), only: c)
        self.run = run
        self.checkpoint = run.checkpoints[c]
        step = run.steps[c]
        self.measure = measure
        self.kind = kind
        self.seed = seed
        self.resamples = resamples
        ranked = InterventionEffects.ranked(effects, checkpoint: run.checkpoints[c], by: measure, kind: kind)
        headline = [InterventionEffects.transplantHeadline(effects, checkpoint: run.checkpoints[c])].compactMap { $0 }
            + InterventionEffects.kindHeadlines(effects, checkpoint: run.checkpoints[c])
    }
}

// The probe job: a probe set through every checkpoint of a trajectory, into one HDF5 file, on the job layer
// (TrajectoryJob): validate everything (output path, checkpoints, tokenizer, probes, prompts) before creating
// the file; tokenize once; then per checkpoint load → measure every probe group → write → flush.
import Checkpoints
import Foundation
import HDF5Store
import Models
import ProbeKit
import TensorCore
import Tokenization
import TrajectoryJob

/// Everything a probe run needs to know: the settings every trajectory job shares (`job`), and the probe job's own.
public struct ProbeJobSpec: Sendable {
    public var job: TrajectoryJobSettings
    public var probeFile: URL
    public var template: PromptTemplate
    /// What is measured per probe. `options.compute` comes from `job` (threads, precision).
    public var options = MeasureOptions()
    /// When true, `options.maxNewTokens` is replaced by `ProbeJob.automaticMaxNewTokens` for the probe set
    /// (the CLI's default when --max-new-tokens is not given).
    public var automaticMaxNewTokens = false
    /// Probe ids to dump (--dump-probes); all probes when nil and dumpLayers is set.
    public var dumpProbes: [String]? = nil
    /// At most this many probes are measured as one group (batched lens, answers and generation; `--batch`).
    public var probeGroupSize = 32
    /// A group also closes before its probes' KV caches (prompt + longest answer or generation) would
    /// exceed this many bytes; nil: from the machine's memory (`BatchMemory.defaultBudget`: a quarter of the
    /// RAM left after the weights, within 64 MiB – 4 GiB), recorded in the run file.
    public var batchCacheBytes: Int? = nil
    /// A tuned-lens folder (config.json + params.pt) scored beside the logit lens (--lens tuned:PATH).
    public var tunedLens: URL? = nil

    public init(checkpoints: [CheckpointRef], trajectoryRoot: URL?, probeFile: URL, template: PromptTemplate, output: URL) {
        self.job = TrajectoryJobSettings(checkpoints: checkpoints, trajectoryRoot: trajectoryRoot, output: output)
        self.probeFile = probeFile
        self.template = template
    }
}

/// Per-checkpoint headline numbers (the summary table).
public struct CheckpointSummary: Sendable {
    public var name: String
    public var step: Int?
    public var counterfactualAccuracy: Double
    public var parametricAccuracy: Double
    public var meanContextAttention: Double
    public var meanSubjectAttention: Double
    public var meanLastLayerMC: Double
    public var skipped: Bool
    /// Mean M_C at the first-answer-token readout (`ProbeMeasurement.firstAnswerMC`), over the probes
    /// whose generation emitted either answer's first token; and how many did.
    public var meanFirstAnswerMC: Double = .nan
    public var firstAnswerProbes = 0
    /// Probes whose generation stopped at --max-new-tokens (possibly cut mid-answer), of `probes`.
    public var truncatedGenerations = 0
    public var probes = 0

    /// The share of generations cut by --max-new-tokens above which the CLI warns.
    public static let truncationWarningShare = 0.10
    /// Whether more than `truncationWarningShare` of the generations stopped at --max-new-tokens.
    public var manyTruncated: Bool { probes > 0 && Double(truncatedGenerations) > Self.truncationWarningShare * Double(probes) }
}

/// Progress callbacks (the CLI draws a progress line from them).
public protocol ProbeJobProgress: TrajectoryJobProgress {
    /// Once, before the first checkpoint: at most `groupSize` probes per group, whose KV caches fit
    /// `budgetBytes`; `source` says where the budget came from ("from --batch-memory", or
    /// `BatchMemory.sourceDescription`).
    func probeGroupsChosen(groupSize: Int, budgetBytes: Int, source: String)
    func probeFinished(_ index: Int, of total: Int)
    func checkpointFinished(_ summary: CheckpointSummary)
}

extension ProbeJobProgress {
    public func probeGroupsChosen(groupSize: Int, budgetBytes: Int, source: String) {}
}

/// Adapts cpiscope's Tokenizer to ProbeKit's encoder protocol.
public struct TokenizerEncoder: TextEncoder {
    public let tokenizer: Tokenizer
    public init(_ tokenizer: Tokenizer) { self.tokenizer = tokenizer }
    public func encodeWithOffsets(_ text: String, addSpecialTokens: Bool) throws -> (ids: [Int], offsets: [Range<Int>]) {
        let e = try tokenizer.encode(text, addSpecialTokens: addSpecialTokens)
        return (e.ids, e.offsets)
    }
}

public enum ProbeJob {
    /// What every job over a probe set and a trajectory needs before it touches the output: the trajectory
    /// prepared (TrajectoryJob.prepare: one model, valid weight headers, one tokenizer), the probes built and
    /// tokenized, and the measurement options completed (compute, EOS ids, generation length, tuned lens).
    public struct PreparedJob {
        public let trajectory: PreparedTrajectory
        public let probeSet: ProbeSet
        public let built: [BuiltPrompt]
        public let tokenized: [TokenizedProbe]
        public let options: MeasureOptions
        /// The probe file's SHA-256.
        public let probeHash: String

        public var config: ModelConfig { trajectory.config }
        public var loader: CheckpointLoader { trajectory.loader }
        public var tokenizer: Tokenizer { trajectory.tokenizer }

        /// The same job measured with other options (intervene without --generate: no generation).
        func with(_ options: MeasureOptions) -> PreparedJob {
            PreparedJob(trajectory: trajectory, probeSet: probeSet, built: built, tokenized: tokenized, options: options, probeHash: probeHash)
        }
    }

    /// Validates the checkpoints, tokenizer and probes of `spec` (in that order) before any output exists.
    public static func prepare(_ spec: ProbeJobSpec) throws -> PreparedJob {
        let trajectory = try TrajectoryJob.prepare(spec.job)
        let first = trajectory.config
        let tunedLens = try spec.tunedLens.map { url in
            let lens = try TunedLens.load(from: url)
            try lens.check(modelLayers: first.layers, modelDModel: first.dModel, model: spec.job.checkpoints[0].path.path)
            return lens
        }
        let encoder = TokenizerEncoder(trajectory.tokenizer)

        // Probes: load, build prompts, tokenize — once for the whole trajectory.
        let set = try ProbeSetLoader.load(url: spec.probeFile)
        guard !set.probes.isEmpty else { throw ProbeRunError.emptyProbeSet(path: spec.probeFile.path) }
        let built = try set.probes.map { try PromptBuilder.build($0, template: spec.template) }
        let tokenized = try built.map { try TokenizedProbe($0, encoder: encoder) }
        let (limit, byModel) = ProbeMeasurer.promptLimit(config: first, maxPromptTokens: spec.options.maxPromptTokens)
        if let long = tokenized.first(where: { $0.promptIDs.count > limit }) {
            throw ProbeRunError.promptTooLong(probeID: long.probeID, tokens: long.promptIDs.count, limit: limit,
                                              byModel: byModel)
        }
        for l in spec.options.dumpLayers where l < 0 || l >= first.layers {
            throw ProbeRunError.badDumpLayer(layer: l, layers: first.layers)
        }

        var options = spec.options
        options.tunedLens = tunedLens
        options.compute = trajectory.compute
        // EOS: config.json's, generation_config.json's (what `generate` uses; instruct models often list
        // several there, e.g. an end-of-turn id) and the tokenizer's.
        options.stopTokens.formUnion(first.eosTokenIDs)
        if let eos = trajectory.tokenizer.eosTokenID { options.stopTokens.insert(eos) }
        if spec.automaticMaxNewTokens { options.maxNewTokens = automaticMaxNewTokens(tokenized) }
        return PreparedJob(trajectory: trajectory, probeSet: set, built: built, tokenized: tokenized, options: options,
                           probeHash: (try? ContentHash.sha256(file: spec.probeFile)) ?? "")
    }

    /// Runs the job. Returns one summary per checkpoint (skipped ones when resuming are re-read).
    public static func run(_ spec: ProbeJobSpec, progress: (any ProbeJobProgress)? = nil) throws -> [CheckpointSummary] {
        // Output path checks first: cheap, and nothing should be computed for a run that cannot be written.
        try TrajectoryJob.checkOutput(spec.job)

        let job = try prepare(spec)
        let (first, tokenizer, set, built, tokenized) = (job.config, job.tokenizer, job.probeSet, job.built, job.tokenized)
        let options = job.options
        let tunedLens = options.tunedLens
        var baseHashes: [String: BackgroundHash] = [:]
        let dumpIDs = options.dumpLayers.isEmpty ? [] : (spec.dumpProbes ?? set.probes.map(\.id))
        let dumpIndex = Set(dumpIDs.compactMap { id in set.probes.firstIndex { $0.id == id } })
        if spec.job.shard?.axis == .probes && !dumpIndex.isEmpty { throw ProbeRunError.shardWithDump }
        // The probe groups of the whole job (the same in every shard): the cache sizes need a loaded model's
        // config, so a probe shard loads the first checkpoint once to find them.
        let memory = BatchMemory.current()
        let budget = groupCacheBytes(spec, job, memory: memory)
        var groups: [[Int]]? = nil
        func probeGroups(_ model: DecoderModel) -> [[Int]] {
            if let groups { return groups }
            let g = Self.probeGroups(count: tokenized.count, dumped: dumpIndex, groupSize: spec.probeGroupSize, cacheBudget: budget) {
                Self.cacheBytes(tokenized[$0], config: model.config, maxNewTokens: options.maxNewTokens)
            }
            groups = g
            return g
        }
        // This process's checkpoints and probes (indices into the whole job's): a probe shard takes whole groups.
        let part = try JobPart.of(spec.job.shard, checkpoints: spec.job.checkpoints.count, axis: .probes,
                                  unitCount: { probeGroups(try job.loader.load(spec.job.checkpoints[0].path).model).count },
                                  command: "probe")
        let probeIndices = part.units.map { $0.flatMap { groups![$0] } } ?? Array(tokenized.indices)
        let refs = Array(spec.job.checkpoints[part.checkpoints])
        let measured = Set(probeIndices)
        let layout = RunLayout(
            checkpoints: refs.map(\.name), steps: refs.map { Int64($0.step ?? -1) },
            probes: probeIndices.map { set.probes[$0].id }, layers: first.layers, heads: first.heads, dModel: first.dModel,
            dumpProbes: dumpIDs, dumpLayers: options.dumpLayers,
            dumpPositions: dumpIndex.map { tokenized[$0].promptIDs.count }.max() ?? 0, tunedLens: tunedLens != nil)

        // The file.
        let writer: RunWriter
        if spec.job.resume, FileManager.default.fileExists(atPath: spec.job.output.path) {
            // Every setting that changes a stored value must match the file's, or the resumed checkpoints
            // would not be comparable with the finished ones (ProbeSettings.resultChanging).
            writer = try RunWriter(resuming: spec.job.output, layout: layout, settings: runAttributes(spec, job, groupCacheBytes: budget))
        } else {
            let records = probeIndices.map { record(built[$0], tokenized[$0]) }
            var attributes = runAttributes(spec, job, groupCacheBytes: budget)
            attributes[RunSchema.Attribute.checkpointWeightFormats] = .strings(job.trajectory.weightFormats)
            if tunedLens != nil {
                attributes["tuned_lens_definition"] = .string(TunedLens.definition)
            }
            if let shard = spec.job.shard {
                attributes.merge(shard.attributes(jobLists: [(.checkpoints, spec.job.checkpoints.map(\.name)), (.probes, set.probes.map(\.id))])) { $1 }
            }
            writer = try RunWriter(creating: spec.job.output, layout: layout, records: records, attributes: attributes,
                                   overwrite: spec.job.force)
        }
        defer { writer.close() }

        // Checkpoint by checkpoint.
        progress?.probeGroupsChosen(groupSize: spec.probeGroupSize, budgetBytes: budget,
                                    source: spec.batchCacheBytes == nil ? memory.sourceDescription : "from --batch-memory")
        var summaries: [CheckpointSummary] = []
        try TrajectoryJob.forEachCheckpoint(
            refs, file: writer, output: spec.job.output, loader: job.loader, compute: options.compute, progress: progress,
            skipped: { _, ref in
                summaries.append(CheckpointSummary(name: ref.name, step: ref.step, counterfactualAccuracy: .nan,
                                                   parametricAccuracy: .nan, meanContextAttention: .nan,
                                                   meanSubjectAttention: .nan, meanLastLayerMC: .nan, skipped: true))
            },
            measure: { _, ref, loaded in
                if let a = loaded.adapter, baseHashes[a.basePath] == nil {
                    baseHashes[a.basePath] = BackgroundHash(files: loaded.baseContentFiles)
                }
                var results: [ProbeMeasurement] = []
                results.reserveCapacity(probeIndices.count)
                // Probes in groups: each has its own instrumented pass; lens, answers and generation run batched.
                for batch in probeGroups(loaded.model) where measured.contains(batch[0]) {
                    var o = options
                    if !dumpIndex.contains(batch[0]) { o.dumpLayers = [] }
                    results += try ProbeMeasurer.measureBatch(batch.map { (tokenized[$0], built[$0]) }, model: loaded.model,
                                                              options: o, decode: { tokenizer.decode($0, skipSpecialTokens: true) })
                    for i in (results.count - batch.count)..<results.count { progress?.probeFinished(i, of: probeIndices.count) }
                }
                return results
            },
            write: { ci, results, loaded, weightsHash in
                // An adapter's summary records its base's hash: computed once per base, also in the background.
                var adapter = loaded.adapter
                if let a = adapter, let hashing = baseHashes[a.basePath] { adapter?.baseContentHash = try hashing.wait() }
                let adapterJSON = adapter.map { a -> String in
                    let enc = JSONEncoder()
                    enc.outputFormatting = [.sortedKeys]
                    return (try? enc.encode(a)).map { String(decoding: $0, as: UTF8.self) } ?? a.configJSON
                } ?? ""
                try writer.write(checkpoint: ci, measurements: results, weightsHash: try weightsHash(), adapter: adapterJSON)
            },
            finished: { _, ref, results in
                let s = summarize(ref, results, layers: first.layers, heads: first.heads)
                summaries.append(s)
                progress?.checkpointFinished(s)
            })
        return summaries
    }

    /// The probe groups' KV-cache budget: --batch-memory, else the default from `memory` (this machine's, or
    /// its cgroup limit) and the largest checkpoint's weights (BatchMemory.swift). Recorded as
    /// `probe_group_cache_bytes`.
    public static func groupCacheBytes(_ spec: ProbeJobSpec, _ job: PreparedJob, memory: BatchMemory = .current()) -> Int {
        spec.batchCacheBytes ?? memory.defaultBudget(weightBytes: job.trajectory.weightBytes.max() ?? 0)
    }

    /// The default generation length: room for the longest answer of the probe set (in tokens, either
    /// answer) plus 12 tokens for what instruction-tuned models say around it (a leading newline, "The
    /// answer is", a final period), and at least 16. The paper's biography answers reach 11 Llama-2
    /// tokens, so a fixed 12 would cut answers that a model phrases as a sentence.
    public static func automaticMaxNewTokens(_ probes: [TokenizedProbe]) -> Int {
        let longest = probes.map { max($0.answerIDs.count, $0.memoryAnswerIDs.count) }.max() ?? 0
        return max(16, longest + 12)
    }

    static func record(_ b: BuiltPrompt, _ t: TokenizedProbe) -> ProbeRecord {
        let kinds = SpanKind.allCases
        return ProbeRecord(
            prompt: b.prompt, context: b.text(of: (b.spans[.context] ?? [0..<0]).first ?? 0..<0),
            question: b.text(of: (b.spans[.question] ?? [0..<0]).first ?? 0..<0),
            answer: b.answer, memoryAnswer: b.memoryAnswer,
            subject: subjectText(b), subjectSource: b.subjectSource.kind,
            spanFound: kinds.map { (t.spanStatus[$0]?.isFound ?? false) ? 1 : 0 },
            spanReason: kinds.map { t.spanStatus[$0]?.reason ?? "" },
            spanTokenCount: kinds.map { Int32(t.spanPositions[$0]?.count ?? 0) },
            promptTokens: Int32(t.promptIDs.count),
            answerTokens: [Int32(t.answerIDs.count), Int32(t.memoryAnswerIDs.count)])
    }

    static func subjectText(_ b: BuiltPrompt) -> String {
        switch b.subjectSource {
        case .annotated(let s): return s
        case .located(_, let phrases): return phrases.joined(separator: " | ")
        case .missing: return ""
        }
    }

    /// The probe run's root attributes: every job's (TrajectoryJob.commonAttributes), then what a probe run's
    /// numbers mean and depend on. A resumed run compares the `ProbeSettings.resultChanging` ones with the file's.
    /// `groupCacheBytes`: the probe groups' KV-cache budget this run uses (`groupCacheBytes(_:_:memory:)`); nil for
    /// jobs that do not group by it (intervene records --batch-memory as given, 0 when not).
    static func runAttributes(_ spec: ProbeJobSpec, _ job: PreparedJob, groupCacheBytes: Int? = nil) -> [String: AttributeValue] {
        typealias A = RunSchema.Attribute
        let options = job.options
        var a = TrajectoryJob.commonAttributes(spec.job, job.trajectory)
        a.merge([
            A.templateName: .string(spec.template.name), "template_text": .string(spec.template.text),
            "template_origin": .string(spec.template.origin),
            A.checkpointSteps: .ints(spec.job.checkpoints.map { Int64($0.step ?? -1) }),
            A.probeFile: .string(spec.probeFile.path), A.probeFileSHA256: .string(job.probeHash),
            "max_new_tokens": .int(Int64(options.maxNewTokens)), "stop_strings": .strings(options.stopStrings),
            "stop_rule": .string(StopConditions.stopStringRule),
            "precision_meaning": .string(options.compute.precision == .bf16
                ? "bf16: activations rounded to bfloat16 (nearest even) and bf16 weights in the linear layers and the unembedding, float32 accumulation; norms, softmax, attention scores and mixing, residual stream and LoRA factors in float32"
                : "fp32: every product in float32 (16-bit weights decoded exactly)"),
            "stop_token_ids": .ints(options.stopTokens.sorted().map(Int64.init)),
            "span_rule": .string("a token belongs to a span when its character range overlaps the span's"),
            "attention_query": .string("the last prompt token (the position that predicts the answer)"),
            "lens_layer_meaning": .string("0 = embeddings; l = after block l-1; the last equals the model output"),
            "mc_ratio_definition": .string("p_ctx / (p_ctx + p_mem) for the first token of each answer (Goyal, Baek et al., Theorem 1)"),
            A.dlaDefinition: .string("direct logit attribution at the answer position towards logit[context answer] − logit[memory answer] (first tokens), final norm frozen at the real residual's scale (TransformerLens apply_ln_to_stack + logit_attrs); components sum to logit_diff with dla_remainder"),
            "correctness": .string(options.correctness.rawValue),
            "correctness_rule": .string(options.correctness.definition),
            // What the numbers depend on besides the inputs: the probe groups (never the thread count).
            A.probeGroupSize: .int(Int64(spec.probeGroupSize)),
            A.probeGroupCacheBytes: .int(Int64(groupCacheBytes ?? spec.batchCacheBytes ?? 0)),
            // Prompts longer than this are not measured (0: the model's position limit).
            "max_prompt_tokens": .int(Int64(options.maxPromptTokens ?? 0)),
            "tuned_lens_path": .string(options.tunedLens?.folder.path ?? ""),
        ]) { $1 }
        if let base = spec.job.base { a["base_model_path"] = .string(base.path) }
        let bases = Set(spec.job.checkpoints.filter { Trajectory.isAdapter($0.path) }.compactMap { try? job.loader.baseFolder(for: $0.path).path })
        if !bases.isEmpty { a["base_model_path"] = .strings(bases.sorted()) }
        return a
    }

    static func summarize(_ ref: CheckpointRef, _ m: [ProbeMeasurement], layers: Int, heads: Int) -> CheckpointSummary {
        let spans = SpanKind.allCases
        let ci = spans.firstIndex(of: .context)!, si = spans.firstIndex(of: .subject)!
        func meanMass(_ s: Int) -> Double {
            var total = 0.0, count = 0
            for r in m {
                let block = r.attentionMass[(s * layers * heads)..<((s + 1) * layers * heads)]
                for v in block where v.isFinite { total += Double(v); count += 1 }
            }
            return count > 0 ? total / Double(count) : .nan
        }
        let mcs = m.compactMap { $0.mcRatio.last }.filter(\.isFinite)
        let firsts = m.map(\.firstAnswerMC).filter(\.isFinite)
        var s = CheckpointSummary(
            name: ref.name, step: ref.step,
            counterfactualAccuracy: Double(m.filter(\.counterfactualCorrect).count) / Double(max(1, m.count)),
            parametricAccuracy: Double(m.filter(\.parametricCorrect).count) / Double(max(1, m.count)),
            meanContextAttention: meanMass(ci), meanSubjectAttention: meanMass(si),
            meanLastLayerMC: mcs.isEmpty ? .nan : Double(mcs.reduce(0, +)) / Double(mcs.count), skipped: false)
        s.meanFirstAnswerMC = firsts.isEmpty ? .nan : Double(firsts.reduce(0, +)) / Double(firsts.count)
        s.firstAnswerProbes = firsts.count
        s.truncatedGenerations = m.filter { $0.generationEnd == .maxNewTokens }.count
        s.probes = m.count
        return s
    }
}

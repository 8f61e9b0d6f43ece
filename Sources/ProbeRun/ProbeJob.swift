// The probe job: a probe set through every checkpoint of a trajectory, into one HDF5 file.
// Order of work: validate everything (checkpoints, tokenizer, probes, prompts, output path) before
// creating the file; tokenize once; then per checkpoint load → measure every probe → write → flush.
import Checkpoints
import Dispatch
import Foundation
import HDF5Store
import Models
import ProbeKit
import TensorCore
import Tokenization

/// Everything a probe run needs to know.
public struct ProbeJobSpec: Sendable {
    public var checkpoints: [CheckpointRef]
    /// The trajectory folder (tokenizer fallback), when there is one.
    public var trajectoryRoot: URL?
    public var probeFile: URL
    public var template: PromptTemplate
    public var tokenizer: URL?
    public var base: URL?
    public var output: URL
    public var force = false
    public var resume = false
    public var options = MeasureOptions()
    /// The precision of the weight products (`--precision`); nil: the first checkpoint's default
    /// (`Precision.default(for:)`: bf16 for BF16 weights, else fp32). Replaces `options.compute.precision`.
    public var precision: Precision? = nil
    /// When true, `options.maxNewTokens` is replaced by `ProbeJob.automaticMaxNewTokens` for the probe set
    /// (the CLI's default when --max-new-tokens is not given).
    public var automaticMaxNewTokens = false
    /// Probe ids to dump (--dump-probes); all probes when nil and dumpLayers is set.
    public var dumpProbes: [String]? = nil
    /// At most this many probes are measured as one group (batched lens, answers and generation; `--batch`).
    public var probeGroupSize = 32
    /// A group also closes before its probes' KV caches (prompt + longest answer or generation) would
    /// exceed this many bytes; nil: a tenth of the model's float32 size, at least 32 MiB.
    public var batchCacheBytes: Int? = nil
    public var commandLine: String = ""
    /// A tuned-lens folder (config.json + params.pt) scored beside the logit lens (--lens tuned:PATH).
    public var tunedLens: URL? = nil
    public var toolVersion: String = ""
    /// The part of the job this process runs (`--shard`); nil: all of it. `output` is the shard's own file.
    public var shard: ProbeShard? = nil

    public init(checkpoints: [CheckpointRef], trajectoryRoot: URL?, probeFile: URL, template: PromptTemplate, output: URL) {
        self.checkpoints = checkpoints
        self.trajectoryRoot = trajectoryRoot
        self.probeFile = probeFile
        self.template = template
        self.output = output
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
public protocol ProbeJobProgress: AnyObject {
    func checkpointStarted(_ index: Int, of total: Int, name: String)
    func probeFinished(_ index: Int, of total: Int)
    func checkpointFinished(_ summary: CheckpointSummary)
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
    /// Finds the tokenizer for a checkpoint: --tokenizer, else the checkpoint folder, else the trajectory root,
    /// else (for adapters) the base model's folder.
    public static func tokenizerURL(for ref: CheckpointRef, spec: ProbeJobSpec) -> URL? {
        tokenizerURL(for: ref, explicit: spec.tokenizer, trajectoryRoot: spec.trajectoryRoot, base: spec.base)
    }

    /// The one tokenizer lookup of every job: `explicit` (--tokenizer), else the first of the checkpoint
    /// folder, the trajectory root and `base` that holds a tokenizer.json.
    public static func tokenizerURL(for ref: CheckpointRef, explicit: URL?, trajectoryRoot: URL?, base: URL?) -> URL? {
        if let t = explicit { return t }
        let candidates = [ref.path] + [trajectoryRoot, base].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("tokenizer.json").path) }
    }

    /// What every job over a probe set and a trajectory needs before it touches the output: the checkpoints
    /// checked (one model, valid weight headers), one tokenizer for all, the probes built and tokenized, and
    /// the measurement options completed (EOS ids, generation length).
    public struct PreparedJob {
        public let loader: CheckpointLoader
        /// The first checkpoint's config (all checkpoints share its shape).
        public let config: ModelConfig
        public let tokenizer: Tokenizer
        public let tokenizerFile: URL
        public let tokenizerHash: String
        public let probeSet: ProbeSet
        public let built: [BuiltPrompt]
        public let tokenized: [TokenizedProbe]
        public let options: MeasureOptions
        /// Each checkpoint's weight file format(s), e.g. "safetensors", "pytorch_model.bin".
        public let weightFormats: [String]
    }

    /// Validates the checkpoints, tokenizer and probes of `spec` (in that order) before any output exists.
    public static func prepare(_ spec: ProbeJobSpec) throws -> PreparedJob {
        // Checkpoints: one architecture, and a tokenizer for each (the same file for all).
        let loader = CheckpointLoader(base: spec.base, hashContents: false)
        let configs = try spec.checkpoints.map { ref in
            try ModelConfig.load(from: Trajectory.isAdapter(ref.path) ? loader.baseFolder(for: ref.path) : ref.path)
        }
        let first = configs[0]
        for (ref, c) in zip(spec.checkpoints, configs).dropFirst() {
            if c.modelType != first.modelType || c.layers != first.layers || c.heads != first.heads
                || c.dModel != first.dModel || c.vocab != first.vocab {
                throw ProbeRunError.mixedArchitectures(checkpoint: ref.path.path, found: describe(c), expected: describe(first))
            }
        }
        // Every weight file's header (mapped and validated, nothing decoded): a corrupt or truncated
        // checkpoint stops the run before the output file exists, not after hours on the earlier ones.
        // Which format each checkpoint's weights are in (a trajectory may mix safetensors and pytorch_model.bin).
        let weightFormats = try spec.checkpoints.map { ref in
            Trajectory.isAdapter(ref.path) ? "safetensors (PEFT adapter)"
                : try WeightStore(directory: ref.path).formats.map(\.rawValue).joined(separator: "+")
        }
        let tunedLens = try spec.tunedLens.map { url in
            let lens = try TunedLens.load(from: url)
            try lens.check(modelLayers: first.layers, modelDModel: first.dModel, model: spec.checkpoints[0].path.path)
            return lens
        }
        var tokenizerFile: URL? = nil
        var tokenizerHash = ""
        for ref in spec.checkpoints {
            guard let t = tokenizerURL(for: ref, spec: spec) else { throw ProbeRunError.noTokenizer(checkpoint: ref.path.path) }
            let file = t.hasDirectoryPath || !t.lastPathComponent.hasSuffix(".json") ? t.appendingPathComponent("tokenizer.json") : t
            let hash = (try? ContentHash.sha256(file: file)) ?? ""
            if tokenizerFile == nil { tokenizerFile = t; tokenizerHash = hash }
            else if hash != tokenizerHash {
                throw ProbeRunError.tokenizerMismatch(checkpoint: ref.path.path,
                                                      detail: "its tokenizer.json differs from \(spec.checkpoints[0].name)'s")
            }
        }
        let tokenizer = try Tokenizer.load(from: tokenizerFile!)
        let encoder = TokenizerEncoder(tokenizer)

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
        options.compute.precision = try spec.precision ?? loader.defaultPrecision(for: spec.checkpoints[0].path)
        // EOS: config.json's, generation_config.json's (what `generate` uses; instruct models often list
        // several there, e.g. an end-of-turn id) and the tokenizer's.
        options.stopTokens.formUnion(first.eosTokenIDs)
        if let eos = tokenizer.eosTokenID { options.stopTokens.insert(eos) }
        if spec.automaticMaxNewTokens { options.maxNewTokens = automaticMaxNewTokens(tokenized) }
        return PreparedJob(loader: loader, config: first, tokenizer: tokenizer, tokenizerFile: tokenizerFile!,
                           tokenizerHash: tokenizerHash, probeSet: set, built: built, tokenized: tokenized, options: options,
                           weightFormats: weightFormats)
    }

    /// Runs the job. Returns one summary per checkpoint (skipped ones when resuming are re-read).
    public static func run(_ spec: ProbeJobSpec, progress: (any ProbeJobProgress)? = nil) throws -> [CheckpointSummary] {
        // 1. Output path checks first: cheap, and nothing should be computed for a run that cannot be written.
        try checkOutput(spec)

        let job = try prepare(spec)
        let (loader, first, tokenizer, set, built, tokenized) = (job.loader, job.config, job.tokenizer, job.probeSet, job.built, job.tokenized)
        let (tokenizerFile, tokenizerHash) = (job.tokenizerFile, job.tokenizerHash)
        var options = job.options
        let (weightFormats, tunedLens) = (job.weightFormats, job.options.tunedLens)
        var baseHashes: [String: BackgroundHash] = [:]
        let dumpIDs = options.dumpLayers.isEmpty ? [] : (spec.dumpProbes ?? set.probes.map(\.id))
        let dumpIndex = Set(dumpIDs.compactMap { id in set.probes.firstIndex { $0.id == id } })
        if spec.shard?.axis == .probes && !dumpIndex.isEmpty { throw ProbeRunError.shardWithDump }
        // The probe groups of the whole job (the same in every shard): the default cache budget needs a
        // loaded model, so a probe shard loads the first checkpoint once to find it (pass --batch-memory to skip).
        var groups: [[Int]]? = nil
        func probeGroups(_ model: DecoderModel) -> [[Int]] {
            if let groups { return groups }
            let budget = spec.batchCacheBytes ?? max(32 << 20, model.parameterCount * 4 / 10)
            let g = Self.probeGroups(count: tokenized.count, dumped: dumpIndex, groupSize: spec.probeGroupSize, cacheBudget: budget) {
                Self.cacheBytes(tokenized[$0], config: model.config, maxNewTokens: options.maxNewTokens)
            }
            groups = g
            return g
        }
        // This process's checkpoints and probes (indices into the whole job's).
        var checkpointIndices = Array(spec.checkpoints.indices)
        var probeIndices = Array(tokenized.indices)
        if let shard = spec.shard {
            switch shard.axis {
            case .checkpoints: checkpointIndices = Array(shard.range(of: spec.checkpoints.count))
            case .probes:
                let all = probeGroups(try loader.load(spec.checkpoints[0].path).model)
                probeIndices = shard.range(of: all.count).flatMap { all[$0] }
            case .interventions, .examples: throw ProbeRunError.shardAxis(axis: shard.axis.rawValue, command: "probe")
            }
            if checkpointIndices.isEmpty || probeIndices.isEmpty { throw ProbeRunError.emptyShard(shard: shard.description) }
        }
        let refs = checkpointIndices.map { spec.checkpoints[$0] }
        let measured = Set(probeIndices)
        let layout = RunLayout(
            checkpoints: refs.map(\.name), steps: refs.map { Int64($0.step ?? -1) },
            probes: probeIndices.map { set.probes[$0].id }, layers: first.layers, heads: first.heads, dModel: first.dModel,
            dumpProbes: dumpIDs, dumpLayers: options.dumpLayers,
            dumpPositions: dumpIndex.map { tokenized[$0].promptIDs.count }.max() ?? 0, tunedLens: tunedLens != nil)

        // 4. The file.
        let writer: RunWriter
        var done = [Bool](repeating: false, count: refs.count)
        if spec.resume, FileManager.default.fileExists(atPath: spec.output.path) {
            // Every setting that changes a stored value must match the file's, or the resumed checkpoints
            // would not be comparable with the finished ones (ProbeSettings.resultChanging).
            let now = runAttributes(spec, config: first, tokenizerFile: tokenizerFile, tokenizerHash: tokenizerHash,
                                    probeHash: (try? ContentHash.sha256(file: spec.probeFile)) ?? "", options: options)
            writer = try RunWriter(resuming: spec.output, layout: layout, settings: now)
            done = try writer.completed()
        } else {
            let records = probeIndices.map { record(built[$0], tokenized[$0]) }
            var attributes = runAttributes(spec, config: first, tokenizerFile: tokenizerFile, tokenizerHash: tokenizerHash,
                                           probeHash: (try? ContentHash.sha256(file: spec.probeFile)) ?? "", options: options)
            attributes["checkpoint_weight_formats"] = .strings(weightFormats)
            if tunedLens != nil {
                attributes["tuned_lens_definition"] = .string(TunedLens.definition)
            }
            if let shard = spec.shard {
                attributes[RunSchema.Attribute.shard] = .string(shard.description)
                attributes[RunSchema.Attribute.shardBy] = .string(shard.axis.rawValue)
                attributes[ProbeShard.Axis.checkpoints.jobAttribute] = .strings(spec.checkpoints.map(\.name))
                attributes[ProbeShard.Axis.probes.jobAttribute] = .strings(set.probes.map(\.id))
            }
            writer = try RunWriter(creating: spec.output, layout: layout, records: records, attributes: attributes,
                                   overwrite: spec.force)
        }
        defer { writer.close() }

        // 5. Checkpoint by checkpoint.
        var summaries: [CheckpointSummary] = []
        for (ci, ref) in refs.enumerated() {
            progress?.checkpointStarted(ci, of: refs.count, name: ref.name)
            if done[ci] {
                summaries.append(CheckpointSummary(name: ref.name, step: ref.step, counterfactualAccuracy: .nan,
                                                   parametricAccuracy: .nan, meanContextAttention: .nan,
                                                   meanSubjectAttention: .nan, meanLastLayerMC: .nan, skipped: true))
                continue
            }
            let loaded = try loader.load(ref.path)
            let hashing = BackgroundHash(files: loaded.contentFiles)
            // An adapter's summary records its base's hash: computed once per base, also in the background.
            let baseHashing = loaded.adapter.map { a in
                baseHashes[a.basePath] ?? { let h = BackgroundHash(files: loaded.baseContentFiles); baseHashes[a.basePath] = h; return h }()
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
            do {
                var adapter = loaded.adapter
                if let baseHashing { adapter?.baseContentHash = try baseHashing.wait() }
                let adapterJSON = adapter.map { a -> String in
                    let enc = JSONEncoder()
                    enc.outputFormatting = [.sortedKeys]
                    return (try? enc.encode(a)).map { String(decoding: $0, as: UTF8.self) } ?? a.configJSON
                } ?? ""
                try writer.write(checkpoint: ci, measurements: results, weightsHash: try hashing.wait(), adapter: adapterJSON)
            } catch {
                // A flush now could commit metadata for data that never reached the disk (ENOSPC):
                // close without one, keeping the checkpoints flushed so far.
                writer.abandon()
                throw ProbeRunError.writeFailed(path: spec.output.path, detail: "\(error)")
            }
            let s = summarize(ref, results, layers: first.layers, heads: first.heads)
            summaries.append(s)
            progress?.checkpointFinished(s)
        }
        do {
            try writer.finish()
        } catch {
            writer.abandon()
            throw ProbeRunError.writeFailed(path: spec.output.path, detail: "\(error)")
        }
        return summaries
    }

    /// The default generation length: room for the longest answer of the probe set (in tokens, either
    /// answer) plus 12 tokens for what instruction-tuned models say around it (a leading newline, "The
    /// answer is", a final period), and at least 16. The paper's biography answers reach 11 Llama-2
    /// tokens, so a fixed 12 would cut answers that a model phrases as a sentence.
    public static func automaticMaxNewTokens(_ probes: [TokenizedProbe]) -> Int {
        let longest = probes.map { max($0.answerIDs.count, $0.memoryAnswerIDs.count) }.max() ?? 0
        return max(16, longest + 12)
    }

    static func describe(_ c: ModelConfig) -> String {
        "\(c.modelType) (\(c.layers) layers, \(c.heads) heads, d_model \(c.dModel), vocab \(c.vocab))"
    }

    static func checkOutput(_ spec: ProbeJobSpec) throws {
        let fm = FileManager.default
        let dir = spec.output.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw ProbeRunError.outputDirectoryMissing(path: dir.path)
        }
        guard fm.isWritableFile(atPath: dir.path) else { throw ProbeRunError.outputNotWritable(path: dir.path) }
        if fm.fileExists(atPath: spec.output.path), !spec.force, !spec.resume {
            throw ProbeRunError.outputExists(path: spec.output.path)
        }
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

    static func runAttributes(_ spec: ProbeJobSpec, config: ModelConfig, tokenizerFile: URL, tokenizerHash: String,
                              probeHash: String, options: MeasureOptions) -> [String: AttributeValue] {
        let iso = ISO8601DateFormatter().string(from: Date())
        var a: [String: AttributeValue] = [
            "tool": .string("cpiscope"), "tool_version": .string(spec.toolVersion),
            "command_line": .string(spec.commandLine), "created": .string(iso),
            "template_name": .string(spec.template.name), "template_text": .string(spec.template.text),
            "template_origin": .string(spec.template.origin),
            "model_type": .string(config.modelType), "model_config": .string(config.rawJSON),
            "checkpoint_paths": .strings(spec.checkpoints.map(\.path.path)),
            "checkpoint_steps": .ints(spec.checkpoints.map { Int64($0.step ?? -1) }),
            "tokenizer_path": .string(tokenizerFile.path), "tokenizer_sha256": .string(tokenizerHash),
            "probe_file": .string(spec.probeFile.path), "probe_file_sha256": .string(probeHash),
            "max_new_tokens": .int(Int64(options.maxNewTokens)), "stop_strings": .strings(options.stopStrings),
            "stop_rule": .string(StopConditions.stopStringRule),
            "precision": .string(options.compute.precision.rawValue),
            "precision_meaning": .string(options.compute.precision == .bf16
                ? "bf16: activations rounded to bfloat16 (nearest even) and bf16 weights in the linear layers and the unembedding, float32 accumulation; norms, softmax, attention scores and mixing, residual stream and LoRA factors in float32"
                : "fp32: every product in float32 (16-bit weights decoded exactly)"),
            "stop_token_ids": .ints(options.stopTokens.sorted().map(Int64.init)),
            "span_rule": .string("a token belongs to a span when its character range overlaps the span's"),
            "attention_query": .string("the last prompt token (the position that predicts the answer)"),
            "lens_layer_meaning": .string("0 = embeddings; l = after block l-1; the last equals the model output"),
            "mc_ratio_definition": .string("p_ctx / (p_ctx + p_mem) for the first token of each answer (Goyal, Baek et al., Theorem 1)"),
            "dla_definition": .string("direct logit attribution at the answer position towards logit[context answer] − logit[memory answer] (first tokens), final norm frozen at the real residual's scale (TransformerLens apply_ln_to_stack + logit_attrs); components sum to logit_diff with dla_remainder"),
            "correctness": .string(options.correctness.rawValue),
            "correctness_rule": .string(options.correctness.definition),
            // What the numbers depend on besides the inputs: the probe groups (never the thread count).
            "probe_group_size": .int(Int64(spec.probeGroupSize)),
            "probe_group_cache_bytes": .int(Int64(spec.batchCacheBytes ?? 0)),
            // Prompts longer than this are not measured (0: the model's position limit).
            "max_prompt_tokens": .int(Int64(options.maxPromptTokens ?? 0)),
            "tuned_lens_path": .string(options.tunedLens?.folder.path ?? ""),
        ]
        if let base = spec.base { a["base_model_path"] = .string(base.path) }
        let bases = Set(spec.checkpoints.filter { Trajectory.isAdapter($0.path) }.compactMap { try? CheckpointLoader(base: spec.base).baseFolder(for: $0.path).path })
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

/// A SHA-256 manifest (`ContentHash.manifest`) computed on a background thread.
final class BackgroundHash: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<String, Error> = .success("")

    init(files: [URL]) {
        DispatchQueue.global(qos: .utility).async {
            self.result = Result { try ContentHash.manifest(files).content }
            self.done.signal()
        }
    }

    /// Blocks until the hash is known; may be called any number of times.
    func wait() throws -> String {
        done.wait()
        done.signal()
        return try result.get()
    }
}

// The one definition of cpiscope's two file formats: the probe run (`cpiscope probe`, docs/hdf5-schema.md)
// here and the intervention run (`cpiscope intervene`, docs/interventions.md) in InterventionSchema.swift.
// Every variable is listed once, with its element type, dimensions, meaning and units; the writers
// (ProbeRun/RunFile.swift, ProbeRun/InterventionFile.swift), the readers (Analysis/RunData.swift, Analysis/InterventionEffects.swift),
// `merge` (ProbeRun/RunMerge.swift) and the synthetic test runs (Tests/SyntheticRuns) name variables
// through it. The meaning and units are documentation here (tests check that the docs list every
// variable); they are not written to the file, whose bytes stay those of schema version 2 / 1.
//
// Lists are in the order the writers create the variables: creation order is part of the file's bytes.

/// One variable of a cpiscope file.
public struct SchemaVariable: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let type: HDF5ElementType
    /// Dimension names, outermost first (`RunSchema.Dim`, `InterventionSchema.Dim`).
    public let dims: [String]
    public let meaning: String
    /// "" when the value has no unit (a probability, a count, a flag, text).
    public let units: String

    public init(_ name: String, _ type: HDF5ElementType, _ dims: [String], _ meaning: String, units: String = "") {
        self.name = name
        self.type = type
        self.dims = dims
        self.meaning = meaning
        self.units = units
    }

    public var description: String { name }

    /// The expected shape, given every dimension's length; nil when a dimension is unknown.
    public func shape(_ sizes: [String: Int]) -> [Int]? {
        var out: [Int] = []
        for d in dims {
            guard let n = sizes[d] else { return nil }
            out.append(n)
        }
        return out
    }
}

extension HDF5File {
    /// Creates `v` with its type and dimensions (which must exist).
    public func createVariable(_ v: SchemaVariable) throws {
        try createVariable(v.name, type: v.type, dims: v.dims)
    }

    /// The end of every run file's checkpoint write: the data flushed first, then `checkpoint_complete[i]` = 1
    /// flushed, so that a checkpoint counts as complete only once its data is on disk.
    public func markCheckpointComplete(_ i: Int) throws {
        try flush()
        try writeSlab(RunSchema.checkpointComplete.name, index: i, uint8: [1])
        try flush()
    }

    /// The end of a run: the root attribute `complete` = 1, flushed.
    public func markRunComplete() throws {
        try setAttribute(RunSchema.Attribute.complete, .int(1))
        try flush()
    }
}

/// The probe run file (schema version 2: version 1 plus direct logit attribution).
public enum RunSchema {
    public static let version: Int64 = 2
    /// The versions a reader accepts (version 1 has no direct logit attribution).
    public static let readableVersions: ClosedRange<Int64> = 1...2
    /// The `answer` coordinate.
    public static let answers = ["context", "memory"]

    /// Dimension (coordinate) names.
    public enum Dim {
        public static let checkpoint = "checkpoint", probe = "probe", span = "span", layer = "layer", head = "head"
        public static let lensLayer = "lens_layer", answer = "answer"
        /// With --dump only.
        public static let dumpProbe = "dump_probe", dumpLayer = "dump_layer", queryPos = "query_pos", keyPos = "key_pos", dModel = "d_model"
    }

    /// Root attribute names that more than one module reads or writes (the rest: docs/hdf5-schema.md).
    public enum Attribute {
        public static let version = "cpiscope_schema_version"
        public static let complete = "complete"
        public static let created = "created", commandLine = "command_line", toolVersion = "tool_version"
        public static let templateName = "template_name", templateText = "template_text", modelType = "model_type"
        public static let modelConfig = "model_config", probeFile = "probe_file", probeFileSHA256 = "probe_file_sha256"
        /// Every trajectory job's file (TrajectoryJob.commonAttributes).
        public static let tool = "tool", checkpointPaths = "checkpoint_paths", checkpointSteps = "checkpoint_steps"
        public static let tokenizerPath = "tokenizer_path", tokenizerSHA256 = "tokenizer_sha256"
        public static let checkpointWeightFormats = "checkpoint_weight_formats"
        public static let dlaDefinition = "dla_definition"
        /// What the numbers depend on besides the inputs (docs/cluster.md, "What results depend on"). The
        /// thread count is not among them: products are tiled by shape, so runs with any `--threads` are
        /// bit-identical (files written before that recorded a `threads` attribute, which is ignored).
        public static let precision = "precision", probeGroupSize = "probe_group_size"
        public static let probeGroupCacheBytes = "probe_group_cache_bytes"
        public static let resultsDependOn = [precision, probeGroupSize, probeGroupCacheBytes]
        /// The thread count, as files written before runs stopped depending on it record it; ignored.
        public static let legacyThreads = "threads"
        /// Shard files only (`--shard I/N`): which part, along which axis; the whole job's list per axis is
        /// `shard_job_<axis>` (JobShard.Axis.jobAttribute). Never in a merged file.
        public static let shard = "shard", shardBy = "shard_by"
        /// netCDF's list of non-dimension coordinates (`step`).
        public static let coordinates = "coordinates"
    }

    private typealias D = Dim
    private static let C = D.checkpoint, P = D.probe

    /// Coordinate of `checkpoint`.
    public static let step = SchemaVariable("step", .int64, [C], "trainer_state.json global_step, else N of checkpoint-N, else -1", units: "optimizer steps")

    // MARK: per probe (the same at every checkpoint)
    public static let prompt = SchemaVariable("prompt", .string, [P], "the exact prompt text given to the model")
    public static let context = SchemaVariable("context", .string, [P], "the context as substituted into the template")
    public static let question = SchemaVariable("question", .string, [P], "the question as substituted into the template")
    public static let contextAnswer = SchemaVariable("context_answer", .string, [P], "the context's answer")
    public static let memoryAnswer = SchemaVariable("memory_answer", .string, [P], "the memorised (parametric) answer")
    public static let subject = SchemaVariable("subject", .string, [P], "the annotated subject, or the located phrase(s) joined by ' | '")
    public static let subjectSource = SchemaVariable("subject_source", .string, [P], "annotated, located or missing")
    public static let promptTokens = SchemaVariable("prompt_tokens", .int32, [P], "prompt length with special tokens", units: "tokens")
    public static let answerTokens = SchemaVariable("answer_tokens", .int32, [P, D.answer], "tokens of each answer continuation", units: "tokens")
    public static let spanFound = SchemaVariable("span_found", .uint8, [P, D.span], "1 when the span was located in token space")
    public static let spanMissingReason = SchemaVariable("span_missing_reason", .string, [P, D.span], "why not, when span_found is 0")
    public static let spanTokenCount = SchemaVariable("span_token_count", .int32, [P, D.span], "prompt positions in the span", units: "tokens")
    /// The per-probe string variables, then the rest, in creation order.
    public static let perProbeText = [prompt, context, question, contextAnswer, memoryAnswer, subject, subjectSource]
    public static let perProbe = perProbeText + [promptTokens, answerTokens, spanFound, spanMissingReason, spanTokenCount]

    // MARK: per checkpoint × probe (first dimension checkpoint, written one checkpoint at a time)
    public static let attentionMass = SchemaVariable("attention_mass", .float32, [C, P, D.span, D.layer, D.head],
        "sum of attention probability from the answer position to the span's positions; NaN for a missing span")
    public static let lensLogprob = SchemaVariable("lens_logprob", .float32, [C, P, D.answer, D.lensLayer],
        "log-probability of the answer's first token under the logit lens", units: "nats")
    public static let lensRank = SchemaVariable("lens_rank", .int32, [C, P, D.answer, D.lensLayer], "rank of that token, 1 = top")
    public static let mcRatio = SchemaVariable("mc_ratio", .float32, [C, P, D.lensLayer], "M_C = p_ctx / (p_ctx + p_mem)")
    public static let answerLoglik = SchemaVariable("answer_loglik", .float32, [C, P, D.answer],
        "teacher-forced log-likelihood of the whole answer", units: "nats")
    public static let counterfactualCorrect = SchemaVariable("counterfactual_correct", .uint8, [C, P],
        "1 when the context answer appears in the greedy generation")
    public static let parametricCorrect = SchemaVariable("parametric_correct", .uint8, [C, P],
        "1 when the memorised answer appears in the greedy generation")
    public static let generated = SchemaVariable("generated", .string, [C, P], "the greedy continuation (NUL stored as U+2400)")
    public static let logitDiff = SchemaVariable("logit_diff", .float32, [C, P],
        "version 2: logit[context answer] - logit[memory answer] (first tokens) at the answer position", units: "logits")
    public static let headDLA = SchemaVariable("head_dla", .float32, [C, P, D.layer, D.head],
        "version 2: each head's direct logit attribution towards logit_diff", units: "logits")
    public static let headDLABySpan = SchemaVariable("head_dla_by_span", .float32, [C, P, D.span, D.layer, D.head],
        "version 2: head_dla split over source key positions, summed per span; NaN for a span not found", units: "logits")
    public static let mlpDLA = SchemaVariable("mlp_dla", .float32, [C, P, D.layer], "version 2: each MLP's output (with its bias)", units: "logits")
    public static let embedDLA = SchemaVariable("embed_dla", .float32, [C, P], "version 2: the token (+ position) embedding", units: "logits")
    public static let biasDLA = SchemaVariable("bias_dla", .float32, [C, P], "version 2: sum over layers of the attention output biases", units: "logits")
    public static let normBiasDLA = SchemaVariable("norm_bias_dla", .float32, [C, P], "version 2: the final norm's bias constant (0 for RMSNorm)", units: "logits")
    public static let dlaRemainder = SchemaVariable("dla_remainder", .float32, [C, P], "version 2: logit_diff minus every component", units: "logits")
    public static let tunedLensLogprob = SchemaVariable("tuned_lens_logprob", .float32, [C, P, D.answer, D.lensLayer],
        "--lens tuned: log-probability of the answer's first token under the tuned lens", units: "nats")
    public static let tunedLensRank = SchemaVariable("tuned_lens_rank", .int32, [C, P, D.answer, D.lensLayer], "--lens tuned: rank under the tuned lens, 1 = top")
    public static let tunedMCRatio = SchemaVariable("tuned_mc_ratio", .float32, [C, P, D.lensLayer], "--lens tuned: M_C under the tuned lens")
    public static let generationEnd = SchemaVariable("generation_end", .string, [C, P],
        "why the greedy generation ended: stop_token, stop_string, max_new_tokens (may be cut mid-answer) or position_limit; absent in older files")
    public static let firstAnswerStep = SchemaVariable("first_answer_step", .int32, [C, P],
        "the generation step that emitted the first token of either answer (0 = right after the prompt); -1 when neither was emitted; absent in older files")
    public static let firstAnswerLogitDiff = SchemaVariable("first_answer_logit_diff", .float32, [C, P],
        "logit[context answer] - logit[memory answer] (first tokens) of the output at first_answer_step; NaN when -1", units: "logits")
    public static let firstAnswerMC = SchemaVariable("first_answer_mc_ratio", .float32, [C, P],
        "M_C = p_ctx / (p_ctx + p_mem) of the output at first_answer_step (the model's last layer); NaN when -1")
    public static let weightsSHA256 = SchemaVariable("weights_sha256", .string, [C], "sha256:<hex> of the manifest of the files that determine the checkpoint's numbers")
    public static let adapter = SchemaVariable("adapter", .string, [C], "a LoRA checkpoint's summary as JSON; empty for a full checkpoint")
    public static let checkpointComplete = SchemaVariable("checkpoint_complete", .uint8, [C], "1 once every variable of the checkpoint is written and flushed")
    public static let dumpAttentionPattern = SchemaVariable("dump_attention_pattern", .float32,
        [C, D.dumpProbe, D.dumpLayer, D.head, D.queryPos, D.keyPos], "--dump: full attention patterns")
    public static let dumpResidual = SchemaVariable("dump_residual", .float32, [C, D.dumpProbe, D.lensLayer, D.queryPos, D.dModel],
        "--dump: residual streams at every prompt position")

    /// Measurements of every run (schema versions 1 and 2), in creation order.
    public static let measurements = [attentionMass, lensLogprob, lensRank, mcRatio, answerLoglik, counterfactualCorrect,
                                      parametricCorrect, generated]
    /// Direct logit attribution (version 2).
    public static let dla = [logitDiff, headDLA, headDLABySpan, mlpDLA, embedDLA, biasDLA, normBiasDLA, dlaRemainder]
    /// The per-probe DLA components beside the heads and MLPs.
    public static let dlaOthers = [embedDLA, biasDLA, normBiasDLA, dlaRemainder]
    public static let tunedLens = [tunedLensLogprob, tunedLensRank, tunedMCRatio]
    /// How each generation ended and the first-answer-token readout (absent in files written before them).
    public static let generationDetails = [generationEnd, firstAnswerStep, firstAnswerLogitDiff, firstAnswerMC]
    /// Per checkpoint, after the measurements; `checkpoint_complete` last.
    public static let perCheckpoint = [weightsSHA256, adapter, checkpointComplete]
    public static let dumps = [dumpAttentionPattern, dumpResidual]

    /// Every variable a version-`version` run can hold (not the coordinates), in creation order.
    public static func variables(version: Int64 = version, tunedLens withLens: Bool = true, dumps withDumps: Bool = true) -> [SchemaVariable] {
        perProbe + measurements + (version >= 2 ? dla + generationDetails : []) + (withLens ? tunedLens : []) + perCheckpoint + (withDumps ? dumps : [])
    }
}

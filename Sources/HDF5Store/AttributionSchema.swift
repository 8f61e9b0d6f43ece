// The attribution run file's schema (`cpiscope attribute`, docs/attribution.md), defined once beside the
// probe run's (RunSchema.swift: `SchemaVariable`, the `checkpoint`, `step`, `probe`, `layer`, `head`
// dimensions and the root attributes are shared). The writer (ProbeRun/AttributionFile.swift), the reader
// (Analysis/AttributionData.swift) and `merge` name variables through it.
//
// Lists are in the order the writer creates the variables: creation order is part of the file's bytes.

/// The attribution run file (schema version 1): attribution-patching estimates per checkpoint and probe.
public enum AttributionSchema {
    public static let version: Int64 = 1
    public static let versionAttribute = "cpiscope_attribution_schema_version"
    /// Root attributes of the attribution file beside every run file's (RunSchema.Attribute).
    public enum Attribute {
        public static let baseline = "baseline", metric = "metric", components = "components", verifyTop = "verify_top"
        public static let generate = "generate"
        public static let estimateDefinition = "estimate_definition", baselineDefinition = "baseline_definition"
    }

    public enum Dim {
        public static let checkpoint = RunSchema.Dim.checkpoint, probe = RunSchema.Dim.probe
        public static let layer = RunSchema.Dim.layer, head = RunSchema.Dim.head
        /// The positions an estimate is split over: the probe's context, subject and question spans and the rest.
        public static let span = "attribution_span"
        /// The verified components, largest |mean estimate| first.
        public static let rank = "rank"
    }
    /// The `attribution_span` coordinate.
    public static let spans = ["context", "subject", "question", "other"]

    private typealias D = Dim
    private static let C = D.checkpoint, P = D.probe, L = D.layer, H = D.head

    public static let cleanLogitDiff = SchemaVariable("clean_logit_diff", .float32, [C, P],
        "logit[context answer] - logit[memory answer] (first tokens) at the answer position, clean", units: "logits")
    public static let cleanMetric = SchemaVariable("clean_metric", .float32, [C, P],
        "the attributed metric (the `metric` attribute: logit_diff or mc) at the clean pass")
    public static let cleanCounterfactualCorrect = SchemaVariable("clean_counterfactual_correct", .uint8, [C, P],
        "--generate: 1 when the context answer appears in the clean greedy generation (the probe job's rule)")
    public static let head = SchemaVariable("atp_head", .float32, [C, P, L, H],
        "estimated change of the metric when the head's hook_z takes its baseline value at every prompt position: sum over positions of (a_baseline - a_clean) . dmetric/da; NaN where the baseline does not exist for the probe")
    public static let headBySpan = SchemaVariable("atp_head_by_span", .float32, [C, P, L, H, D.span],
        "atp_head summed over the positions of each span only (a position in several spans counts in each; other: in none); NaN for a span the probe does not have")
    public static let mlp = SchemaVariable("atp_mlp", .float32, [C, P, L],
        "the same estimate for the layer's hook_mlp_out")
    public static let resid = SchemaVariable("atp_resid", .float32, [C, P, L],
        "the same estimate for the layer's hook_resid_pre (--components resid)")
    public static let missingReason = SchemaVariable("atp_missing_reason", .string, [C, P],
        "why a probe's estimates are NaN (e.g. no context for corrupt:no-context); empty otherwise")
    public static let verifiedComponent = SchemaVariable("verified_component", .string, [C, D.rank],
        "--verify-top: the component (L3H5, mlp3, resid3), ranked by the absolute value of their mean atp over probes, largest first")
    public static let verifiedEstimate = SchemaVariable("verified_estimate", .float32, [C, D.rank, P],
        "--verify-top: the component's attribution-patching estimate per probe")
    public static let verifiedEffect = SchemaVariable("verified_effect", .float32, [C, D.rank, P],
        "--verify-top: the real change of the metric with the component at its baseline value at every prompt position (ablation or patching)")
    public static let checkpointComplete = RunSchema.checkpointComplete

    /// Every variable a file can hold, in creation order (a file holds those its options ask for).
    public static let variables = [RunSchema.step, cleanLogitDiff, cleanMetric, cleanCounterfactualCorrect, head, headBySpan, mlp, resid,
                                   missingReason, verifiedComponent, verifiedEstimate, verifiedEffect, checkpointComplete]
}

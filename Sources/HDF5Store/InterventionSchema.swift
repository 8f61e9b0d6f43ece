// The intervention run file's schema (`cpiscope intervene`, docs/interventions.md), defined once beside
// the probe run's (RunSchema.swift, whose `SchemaVariable`, dimension names and root attributes it shares). The
// writer (ProbeRun/InterventionFile.swift), the reader (Analysis/InterventionEffects.swift), `merge` and
// the synthetic test files name variables through it.
//
// Lists are in the order the writer creates the variables: creation order is part of the file's bytes.

/// The intervention run file (`cpiscope intervene`, schema version 1; docs/interventions.md). It shares the
/// probe run's `checkpoint`, `step`, `probe`, `answer` and `checkpoint_complete`, and its root attributes.
public enum InterventionSchema {
    public static let version: Int64 = 1
    public static let versionAttribute = "cpiscope_intervention_schema_version"
    /// Root attributes of the intervention file beside the probe run's.
    public enum Attribute {
        public static let generate = "generate"
    }

    public enum Dim {
        public static let checkpoint = RunSchema.Dim.checkpoint, probe = RunSchema.Dim.probe, answer = RunSchema.Dim.answer
        public static let intervention = "intervention"
    }

    private typealias D = Dim
    private static let C = D.checkpoint, P = D.probe, I = D.intervention

    public static let kind = SchemaVariable("intervention_kind", .string, [I], "ablate, knockout, transplant or patch")
    public static let component = SchemaVariable("intervention_component", .string, [I],
        "z, attn_out, mlp_out, resid_post, a transplant's components, or a knockout's span")
    public static let source = SchemaVariable("intervention_source", .string, [I], "the source checkpoint of a transplant or patch; empty otherwise")
    public static let layerList = SchemaVariable("intervention_layers", .string, [I], "every layer acted on, comma-separated")
    public static let layer = SchemaVariable("intervention_layer", .int32, [I], "the layer, -1 where not one layer")
    public static let head = SchemaVariable("intervention_head", .int32, [I], "the head, -1 where not one head")
    /// Per intervention, in creation order: the strings, then the integers.
    public static let perInterventionText = [kind, component, source, layerList]
    public static let perInterventionIndex = [layer, head]

    public static let cleanLogitDiff = SchemaVariable("clean_logit_diff", .float32, [C, P],
        "the clean model's logit[context answer] - logit[memory answer] at the answer position", units: "logits")
    public static let cleanMC = SchemaVariable("clean_mc", .float32, [C, P], "the clean model's M_C")
    public static let cleanAnswerLoglik = SchemaVariable("clean_answer_loglik", .float32, [C, P, D.answer],
        "the clean model's teacher-forced log-likelihood of each whole answer", units: "nats")
    public static let logitDiff = SchemaVariable("intervened_logit_diff", .float32, [C, I, P],
        "the logit difference under the intervention; NaN where it cannot apply to the probe", units: "logits")
    public static let mc = SchemaVariable("intervened_mc", .float32, [C, I, P], "M_C under the intervention; NaN where it cannot apply")
    public static let answerLoglik = SchemaVariable("intervened_answer_loglik", .float32, [C, I, P, D.answer],
        "teacher-forced log-likelihood of each whole answer under the intervention", units: "nats")
    public static let patchRecovery = SchemaVariable("patch_recovery", .float32, [C, I, P],
        "(patched - target) / (source - target) of the logit difference, per probe; NaN except for patches")
    public static let sourceLogitDiff = SchemaVariable("source_logit_diff", .float32, [C, I, P],
        "a patch's source checkpoint's own logit difference for the probe (the recovery's denominator is it minus clean_logit_diff); NaN except for patches; absent in files written before it",
        units: "logits")
    public static let measurements = [cleanLogitDiff, cleanMC, cleanAnswerLoglik, logitDiff, mc, answerLoglik, patchRecovery, sourceLogitDiff]

    public static let cleanCounterfactualCorrect = SchemaVariable("clean_counterfactual_correct", .uint8, [C, P],
        "--generate: 1 when the context answer appears in the clean generation")
    public static let cleanParametricCorrect = SchemaVariable("clean_parametric_correct", .uint8, [C, P],
        "--generate: 1 when the memorised answer appears in the clean generation")
    public static let cleanGenerated = SchemaVariable("clean_generated", .string, [C, P], "--generate: the clean greedy continuation")
    public static let counterfactualCorrect = SchemaVariable("intervened_counterfactual_correct", .uint8, [C, I, P],
        "--generate: 1 when the context answer appears in the generation under the intervention")
    public static let parametricCorrect = SchemaVariable("intervened_parametric_correct", .uint8, [C, I, P],
        "--generate: 1 when the memorised answer appears in the generation under the intervention")
    public static let generated = SchemaVariable("intervened_generated", .string, [C, I, P], "--generate: the greedy continuation under the intervention")
    /// With --generate, in creation order: the clean model's, then the intervened.
    public static let cleanGeneration = [cleanCounterfactualCorrect, cleanParametricCorrect, cleanGenerated]
    public static let intervenedGeneration = [counterfactualCorrect, parametricCorrect, generated]

    public static let checkpointComplete = RunSchema.checkpointComplete

    /// Every variable of an intervention run (not the coordinates), in creation order.
    public static func variables(generate: Bool = true) -> [SchemaVariable] {
        perInterventionText + perInterventionIndex + measurements + (generate ? cleanGeneration + intervenedGeneration : [])
            + [checkpointComplete]
    }
}

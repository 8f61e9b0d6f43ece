// The one definition of the criticality file (`cpiscope criticality`, docs/hdf5-schema.md "Criticality
// files", docs/criticality.md): the writer (Criticality/CriticalityFile.swift), the reader
// (Analysis/CriticalityData.swift), `merge` (through `JobShard.Axis.examples`) and the tests name its
// variables through it. Meaning and units are documentation; the file does not carry them.

public enum CriticalitySchema {
    /// Dimension (coordinate) names.
    public enum Dim {
        public static let checkpoint = "checkpoint", example = "example"
    }

    /// Root attribute `cpiscope_criticality_schema_version`.
    public static let versionAttribute = "cpiscope_criticality_schema_version"
    public static let version: Int64 = 1

    /// Per example (checkpoint-independent).
    public static let exampleID = "example_id"
    public static let hasContext = "has_context"
    public static let skipped = "skipped"
    public static let skipReason = "skip_reason"
    public static let promptTokensWithContext = "prompt_tokens_with_context"
    public static let promptTokensWithoutContext = "prompt_tokens_without_context"
    public static let responseTokens = "response_tokens"
    public static let responseTokensWithContext = "response_tokens_with_context"
    public static let category = "category"

    /// Per checkpoint × example. `nll_*` are per response token (natural log); `*_sum` are the sums.
    public static let nllWithContext = "nll_with_context"
    public static let nllWithoutContext = "nll_without_context"
    public static let nllWithContextSum = "nll_with_context_sum"
    public static let nllWithoutContextSum = "nll_without_context_sum"
    public static let criticality = "criticality"
    public static let gain = "gain"

    /// Per checkpoint.
    public static let weightsSHA256 = "weights_sha256"
    public static let checkpointComplete = "checkpoint_complete"

    public static let perCheckpointExample = [nllWithContext, nllWithoutContext, nllWithContextSum, nllWithoutContextSum, criticality, gain]

    /// Every variable besides the coordinates (`checkpoint`, `step`, `example`), in the order the writer
    /// creates them, with its type, dimensions, meaning and units.
    public static let variables: [SchemaVariable] = {
        let e = [Dim.example], ce = [Dim.checkpoint, Dim.example], c = [Dim.checkpoint]
        return [
            SchemaVariable(exampleID, .string, e, "the row's id field, else its 0-based index"),
            SchemaVariable(hasContext, .uint8, e, "1 when the example has a context (Alpaca: a non-empty input)"),
            SchemaVariable(skipped, .uint8, e, "1 when the example was not scored"),
            SchemaVariable(skipReason, .string, e, "why it was not scored (empty for scored examples)"),
            SchemaVariable(promptTokensWithContext, .int32, e, "tokens of the prompt with the context (BOS included)", units: "tokens"),
            SchemaVariable(promptTokensWithoutContext, .int32, e, "tokens of the prompt without the context", units: "tokens"),
            SchemaVariable(responseTokens, .int32, e, "scored tokens (response + EOS) after the prompt without the context", units: "tokens"),
            SchemaVariable(responseTokensWithContext, .int32, e, "scored tokens after the prompt with the context", units: "tokens"),
            SchemaVariable(category, .string, e, "the example's data category (--category-field, or TULU's dataset; empty when none)"),
            SchemaVariable(nllWithContext, .float32, ce, "mean negative log-likelihood of the response with its context", units: "nats / token"),
            SchemaVariable(nllWithoutContext, .float32, ce, "mean negative log-likelihood of the response without its context", units: "nats / token"),
            SchemaVariable(nllWithContextSum, .float32, ce, "summed negative log-likelihood with the context", units: "nats"),
            SchemaVariable(nllWithoutContextSum, .float32, ce, "summed negative log-likelihood without the context", units: "nats"),
            SchemaVariable(criticality, .float32, ce, "exp(nll_without_context): the response's perplexity without its context"),
            SchemaVariable(gain, .float32, ce, "nll_without_context − nll_with_context", units: "nats / token"),
            SchemaVariable(weightsSHA256, .string, c, "content hash of the checkpoint's weight files"),
            SchemaVariable(checkpointComplete, .uint8, c, "1 once the checkpoint's scores are on disk"),
        ]
    }()

    public static let definition = "criticality = exp(nll_without_context): the perplexity of the response without the context "
        + "(Goyal, Baek et al. §3.4); nll_* = −Σ log p(response token | preceding tokens) / response tokens, response tokens "
        + "= encode(prompt + separator + response)[len(encode(prompt)):] + EOS (Stanford Alpaca's label split); "
        + "gain = nll_without_context − nll_with_context"
}


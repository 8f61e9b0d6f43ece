// Builds a model from a checkpoint folder through its family (ModelFamily.swift).
import Checkpoints
import Foundation

extension DecoderModel {
    /// Loads config.json and the weights of a full (non-adapter) checkpoint folder.
    public static func load(from directory: URL) throws -> DecoderModel {
        let config = try ModelConfig.load(from: directory)
        let store = try WeightStore(directory: directory)
        return try load(config: config, store: store, checkpoint: directory.path)
    }

    /// True for a checkpoint tensor that holds no parameters: GPT-2's `attn.bias` / `attn.masked_bias` and
    /// GPT-NeoX's `attention.bias` / `attention.masked_bias` causal-mask buffers, `rotary_emb.inv_freq`.
    public static func isNonParameterBuffer(_ tensorName: String) -> Bool { WeightTable.isBuffer(tensorName) }

    /// Checks a full checkpoint's weight files against its config exactly as `load` does (every tensor the
    /// config implies present with its shape, none left over) while reading only the headers: nothing is
    /// decoded. Unlike `load`, a missing tensor does not stop the check; the error names all of them.
    public static func checkWeights(config: ModelConfig, store: WeightStore, checkpoint: String) throws {
        let context = LoadContext()
        context.audit = WeightAudit()
        _ = try load(config: config, store: store, checkpoint: checkpoint, context: context)
    }

    /// Builds a model from a parsed config and an opened weight store.
    public static func load(config: ModelConfig, store: WeightStore, checkpoint: String) throws -> DecoderModel {
        try load(config: config, store: store, checkpoint: checkpoint, context: nil)
    }

    /// As above, reading through a load context (decoded-tensor cache, adapter overlay; CheckpointLoader.swift).
    static func load(config: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext?) throws -> DecoderModel {
        try ModelFamilies.family(of: config).load(config: config, store: store, checkpoint: checkpoint, context: context)
    }
}

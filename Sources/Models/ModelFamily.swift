// Model families as data, behind one registry. Everything cpiscope knows about a family lives in its
// own file under Families/: which `model_type` values it reads, its config.json fields (names and
// defaults as transformers' configuration class), its weight table (every checkpoint key, its shape and
// which part of the block it fills: optional q/k norms, pre- and post-norms, fused projections), its
// transformers `base_model_prefix` (PEFT module names carry it) and the structural features `inspect`
// lists. The forward pass (DecoderModel.swift) reads only the resulting `ModelConfig` and block
// weights; it never asks which family it runs.
//
// Adding a family: one file in Families/ conforming to `ModelFamily`, and one line in `ModelFamilies.all`
// (README: "How to add an architecture").
import Checkpoints
import Foundation

/// One model family.
protocol ModelFamily {
    /// config.json `model_type` values this family reads.
    static var modelTypes: [String] { get }
    /// transformers' `base_model_prefix` of the family's PreTrainedModel, followed by a dot.
    static var baseModelPrefix: String { get }
    /// Reads the family's config.json fields.
    static func config(_ r: FieldReader, modelType: String, raw: String, source: URL) throws -> ModelConfig
    /// Builds the model from the checkpoint's tensors through a strict weight table.
    static func load(config: ModelConfig, store: WeightStore, checkpoint: String, context: LoadContext?) throws -> DecoderModel
    /// Structural features worth naming (`inspect`), e.g. "q/k RMSNorm per head".
    static func features(_ c: ModelConfig) -> [String]
}

/// The registry: `model_type` → family.
public enum ModelFamilies {
    static let all: [any ModelFamily.Type] = [
        GPT2.self, GPTNeoX.self, Llama.self, OLMo2.self, Qwen3.self, Gemma2.self, Phi3.self,
    ]

    /// Every `model_type` cpiscope reads, sorted.
    public static var supportedModelTypes: [String] { all.flatMap { $0.modelTypes }.sorted() }

    static func family(for modelType: String) -> (any ModelFamily.Type)? {
        all.first { $0.modelTypes.contains(modelType) }
    }

    static func family(of config: ModelConfig) -> any ModelFamily.Type {
        guard let f = family(for: config.modelType) else { preconditionFailure("no family for parsed model_type \(config.modelType)") }
        return f
    }

    /// The structural features of a parsed config's family (for `inspect`).
    public static func features(_ config: ModelConfig) -> [String] { family(of: config).features(config) }

    /// transformers' base_model_prefix (with its dot) of the config's family.
    public static func baseModelPrefix(_ config: ModelConfig) -> String { family(of: config).baseModelPrefix }
}

extension ModelConfig {
    /// Reads `config.json` from a checkpoint folder (or a config file path) through its family, and the
    /// EOS ids of `generation_config.json` beside it.
    public static func load(from url: URL) throws -> ModelConfig {
        let file = configFile(url)
        var config = try parse(try readFile(file), source: file)
        let generation = file.deletingLastPathComponent().appendingPathComponent("generation_config.json")
        for id in try generationEOSTokenIDs(generation) where !config.eosTokenIDs.contains(id) {
            config.eosTokenIDs.append(id)
        }
        return config
    }

    /// Parses config.json bytes through the family of its `model_type`. `source` is used in messages.
    public static func parse(_ data: Data, source: URL) throws -> ModelConfig {
        let (r, modelType, raw) = try fields(data, source: source)
        guard let family = ModelFamilies.family(for: modelType) else {
            throw ConfigError.unknownArchitecture(file: source.path, modelType: modelType, supported: ModelFamilies.supportedModelTypes)
        }
        let config = try family.config(r, modelType: modelType, raw: raw, source: source)
        try config.validate(file: source.path)
        return config
    }
}

// config.json for the architectures cpiscope runs: gpt2, gpt_neox, llama, mistral, qwen2.
//
// Field names and defaults follow Hugging Face transformers' configuration classes
// (configuration_gpt2.py, configuration_gpt_neox.py, configuration_llama.py, configuration_mistral.py,
// configuration_qwen2.py; transformers 5.24). Both rope dialects are read:
//   4.x: rope_theta, rope_scaling {type|rope_type, factor, ...}, rotary_pct, rotary_emb_base
//   5.x: rope_parameters {rope_type, rope_theta, partial_rotary_factor, factor, ...}
import Foundation
import StrictJSON

/// The model families cpiscope implements, keyed by config.json `model_type`.
public enum ModelArchitecture: String, Sendable, Codable, CaseIterable {
    case gpt2
    case gptNeoX = "gpt_neox"
    case llama
    case mistral
    case qwen2

    /// The family whose forward pass implements this type (Mistral and Qwen2 are Llama-family).
    public var family: String {
        switch self {
        case .gpt2: return "gpt2"
        case .gptNeoX: return "gpt_neox"
        case .llama, .mistral, .qwen2: return "llama"
        }
    }
}

/// MLP activation functions (transformers' ACT2FN names).
public enum Activation: String, Sendable, Codable {
    case geluNew = "gelu_new"          // tanh approximation (OpenAI GPT)
    case geluPytorchTanh = "gelu_pytorch_tanh"  // same formula as gelu_new
    case gelu                           // exact, erf-based
    case silu
    case relu
}

/// Rotary-embedding frequency scaling (transformers modeling_rope_utils.py).
public enum RopeScaling: Sendable, Equatable {
    case none
    /// inv_freq / factor
    case linear(factor: Double)
    /// Llama 3.1 smooth interpolation between high- and low-frequency bands.
    case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Int)
}

public struct RotaryConfig: Sendable, Equatable {
    /// Rotated dimensions per head (`int(d_head * partial_rotary_factor)`), even.
    public var dims: Int
    public var theta: Double
    public var scaling: RopeScaling
}

/// The parsed, validated config of one checkpoint.
public struct ModelConfig: Sendable {
    public var architecture: ModelArchitecture
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var dModel: Int
    public var dHead: Int
    public var dMLP: Int
    public var vocab: Int
    public var maxPositions: Int
    public var normEps: Float
    public var activation: Activation
    public var tiedEmbeddings: Bool
    /// Biases on the q/k/v projections (GPT-2, GPT-NeoX, Qwen2, Llama with attention_bias).
    public var qkvBias: Bool
    /// Bias on the attention output projection.
    public var attnOutBias: Bool
    public var mlpBias: Bool
    public var rotary: RotaryConfig?
    /// GPT-NeoX `use_parallel_residual`.
    public var parallelResidual: Bool
    /// Per-layer sliding window (a query attends to keys with q - k < window), nil = full causal.
    public var slidingWindow: [Int?]
    /// GPT-2 `scale_attn_weights` (divide scores by sqrt(d_head)).
    public var scaleAttnWeights: Bool
    /// GPT-2 `scale_attn_by_inverse_layer_idx` (divide scores by layer+1).
    public var scaleAttnByInverseLayerIdx: Bool
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]
    /// The config.json text as read, for provenance.
    public var rawJSON: String
    /// Where it was read from.
    public var source: URL

    /// Parameter count implied by the config (embedding counted once when tied).
    public var parameterCount: Int {
        let qDim = heads * dHead, kvDim = kvHeads * dHead
        var attn = dModel * qDim + 2 * dModel * kvDim + qDim * dModel
        if qkvBias { attn += qDim + 2 * kvDim }
        if attnOutBias { attn += dModel }
        let gated = architecture.family == "llama"
        var mlp = (gated ? 3 : 2) * dModel * dMLP
        if mlpBias { mlp += (gated ? 2 : 1) * dMLP + dModel }
        let hasNormBias = architecture.family != "llama"
        let norms = 2 * dModel * (hasNormBias ? 2 : 1)
        var total = layers * (attn + mlp + norms) + dModel * (hasNormBias ? 2 : 1)
        total += vocab * dModel * (tiedEmbeddings ? 1 : 2)
        if architecture == .gpt2 { total += maxPositions * dModel }
        return total
    }
}

/// A config.json problem. `description` names the file and field.
public enum ConfigError: Error, CustomStringConvertible, Sendable {
    case unreadable(file: String, reason: String)
    case notJSONObject(file: String)
    case missingField(file: String, field: String)
    case badField(file: String, field: String, reason: String)
    case unknownArchitecture(file: String, modelType: String)
    case unsupported(file: String, field: String, value: String)

    /// One line: values from the file (a model_type or hidden_act holding a newline) are escaped.
    public var description: String { CheckpointError.oneLine(unescapedDescription) }

    private var unescapedDescription: String {
        switch self {
        case let .unreadable(f, r): return "\(f): cannot read config: \(r)"
        case let .notJSONObject(f): return "\(f): config is not a JSON object"
        case let .missingField(f, k): return "\(f): missing field '\(k)'"
        case let .badField(f, k, r): return "\(f): field '\(k)' \(r)"
        case let .unknownArchitecture(f, t): return "\(f): unknown model_type '\(t)'"
        case let .unsupported(f, k, v): return "\(f): unsupported \(k) '\(v)'"
        }
    }

    public var hint: String {
        switch self {
        case .unreadable: return "Check that the path points at a checkpoint folder containing config.json."
        case .notJSONObject, .missingField, .badField:
            return "The config.json looks damaged; re-save it with transformers' save_pretrained."
        case .unknownArchitecture:
            return "cpiscope supports model_type: " + ModelArchitecture.allCases.map(\.rawValue).joined(separator: ", ") + "."
        case .unsupported: return "This option is not implemented; see the README's list of supported configurations."
        }
    }
}

extension ModelConfig {
    /// Largest config.json read, in bytes.
    public static let maxFileSize = 16 << 20
    /// Hard limits that keep a hostile config from asking for absurd allocations.
    static let maxDimension = 1 << 20
    static let maxLayers = 4096

    /// Reads `config.json` from a checkpoint folder, or a config file path.
    public static func load(from url: URL) throws -> ModelConfig {
        var isDir: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
            ? url.appendingPathComponent("config.json") : url
        let bytes: [UInt8]
        do throws(JSONFileError) { bytes = try JSONFile.contents(path: file.path, limit: maxFileSize) } catch {
            if case .tooLarge = error { throw ConfigError.badField(file: file.path, field: "(file)", reason: error.reason) }
            throw ConfigError.unreadable(file: file.path, reason: FileManager.default.fileExists(atPath: file.path)
                                         ? error.reason : "no such file")
        }
        return try parse(Data(bytes), source: file)
    }

    /// Parses config.json bytes. `source` is used in error messages.
    public static func parse(_ data: Data, source: URL) throws -> ModelConfig {
        let name = source.path
        // JSON is UTF-8 (RFC 8259 §8.1); Python's json / transformers refuse anything else too.
        let json: JSONValue
        do throws(JSONParseError) { json = try JSONValue.parse(data) } catch {
            throw ConfigError.badField(file: name, field: "(file)", reason: JSONFileError.reason(error))
        }
        guard let obj = json.dictionary else { throw ConfigError.notJSONObject(file: name) }
        let r = FieldReader(obj: obj, file: name)
        let typeName: String = try r.require("model_type")
        guard let arch = ModelArchitecture(rawValue: typeName) else {
            throw ConfigError.unknownArchitecture(file: name, modelType: typeName)
        }
        let raw = String(decoding: data, as: UTF8.self)
        var cfg: ModelConfig
        switch arch {
        case .gpt2: cfg = try parseGPT2(r, raw: raw, source: source)
        case .gptNeoX: cfg = try parseNeoX(r, raw: raw, source: source)
        case .llama, .mistral, .qwen2: cfg = try parseLlamaFamily(r, arch: arch, raw: raw, source: source)
        }
        try cfg.validate(file: name)
        return cfg
    }

    private static func parseGPT2(_ r: FieldReader, raw: String, source: URL) throws -> ModelConfig {
        let d: Int = try r.require("n_embd")
        let heads: Int = try r.require("n_head")
        let act = try r.activation("activation_function", default: .geluNew)
        return ModelConfig(
            architecture: .gpt2, layers: try r.require("n_layer"), heads: heads, kvHeads: heads, dModel: d,
            dHead: heads > 0 ? d / heads : 0, dMLP: try r.int("n_inner") ?? 4 * d, vocab: try r.require("vocab_size"),
            maxPositions: try r.require("n_positions"), normEps: Float(try r.double("layer_norm_epsilon") ?? 1e-5),
            activation: act, tiedEmbeddings: try r.bool("tie_word_embeddings") ?? true,
            qkvBias: true, attnOutBias: true, mlpBias: true, rotary: nil, parallelResidual: false,
            slidingWindow: [], scaleAttnWeights: try r.bool("scale_attn_weights") ?? true,
            scaleAttnByInverseLayerIdx: try r.bool("scale_attn_by_inverse_layer_idx") ?? false,
            bosTokenID: try r.int("bos_token_id"), eosTokenIDs: try r.intOrList("eos_token_id"),
            rawJSON: raw, source: source)
    }

    private static func parseNeoX(_ r: FieldReader, raw: String, source: URL) throws -> ModelConfig {
        let d: Int = try r.require("hidden_size")
        let heads: Int = try r.require("num_attention_heads")
        let dHead = heads > 0 ? d / heads : 0
        let rope = try r.ropeParameters()
        // transformers 5: rope_parameters.partial_rotary_factor / rope_theta; 4.x: rotary_pct / rotary_emb_base.
        let pct: Double = try rope["partial_rotary_factor"]?.double ?? r.double("rotary_pct") ?? 0.25
        let theta: Double = try rope["rope_theta"]?.double ?? r.double("rotary_emb_base") ?? 10000
        let bias: Bool = try r.bool("attention_bias") ?? true
        return ModelConfig(
            architecture: .gptNeoX, layers: try r.require("num_hidden_layers"), heads: heads, kvHeads: heads,
            dModel: d, dHead: dHead, dMLP: try r.require("intermediate_size"), vocab: try r.require("vocab_size"),
            maxPositions: try r.int("max_position_embeddings") ?? 2048,
            normEps: Float(try r.double("layer_norm_eps") ?? 1e-5),
            activation: try r.activation("hidden_act", default: .gelu),
            tiedEmbeddings: try r.bool("tie_word_embeddings") ?? false,
            qkvBias: bias, attnOutBias: bias, mlpBias: true,
            rotary: RotaryConfig(dims: Int(Double(dHead) * pct), theta: theta,
                                 scaling: try r.scaling(rope)),
            parallelResidual: try r.bool("use_parallel_residual") ?? true, slidingWindow: [],
            scaleAttnWeights: true, scaleAttnByInverseLayerIdx: false,
            bosTokenID: try r.int("bos_token_id"), eosTokenIDs: try r.intOrList("eos_token_id"),
            rawJSON: raw, source: source)
    }

    private static func parseLlamaFamily(_ r: FieldReader, arch: ModelArchitecture, raw: String, source: URL) throws -> ModelConfig {
        let d: Int = try r.require("hidden_size")
        let heads: Int = try r.require("num_attention_heads")
        let dHead: Int = try r.int("head_dim") ?? (heads > 0 ? d / heads : 0)
        let layers: Int = try r.require("num_hidden_layers")
        let rope = try r.ropeParameters()
        let theta: Double = try rope["rope_theta"]?.double ?? r.double("rope_theta") ?? 10000
        let pct: Double = try rope["partial_rotary_factor"]?.double ?? r.double("partial_rotary_factor") ?? 1.0
        var scaling = try r.scaling(rope)
        if case let .llama3(f, lo, hi, orig) = scaling, orig <= 0 {
            scaling = .llama3(factor: f, lowFreqFactor: lo, highFreqFactor: hi,
                              originalMaxPositions: try r.int("max_position_embeddings") ?? 2048)
        }
        // Sliding windows: Mistral applies `sliding_window` to every layer when set; Qwen2 only with
        // use_sliding_window, to layers whose layer_types entry is "sliding_attention" (else i >= max_window_layers).
        var windows = [Int?](repeating: nil, count: max(0, min(layers, maxLayers)))
        let window: Int? = try r.int("sliding_window")
        switch arch {
        case .mistral:
            if let w = window { windows = windows.map { _ in w } }
        case .qwen2:
            if try r.bool("use_sliding_window") ?? false, let w = window {
                let types: [String]? = r.obj["layer_types"]?.array?.compactMap(\.string)
                let maxWindowLayers: Int = try r.int("max_window_layers") ?? 28
                for i in windows.indices {
                    let sliding = types.map { i < $0.count && $0[i] == "sliding_attention" } ?? (i >= maxWindowLayers)
                    if sliding { windows[i] = w }
                }
            }
        default: break
        }
        if arch != .llama, windows.allSatisfy({ $0 == nil }) { windows = [] }
        let attnBias: Bool = try r.bool("attention_bias") ?? false
        return ModelConfig(
            architecture: arch, layers: layers, heads: heads,
            kvHeads: try r.int("num_key_value_heads") ?? heads, dModel: d, dHead: dHead,
            dMLP: try r.require("intermediate_size"), vocab: try r.require("vocab_size"),
            maxPositions: try r.int("max_position_embeddings") ?? 2048,
            normEps: Float(try r.double("rms_norm_eps") ?? 1e-6),
            activation: try r.activation("hidden_act", default: .silu),
            tiedEmbeddings: try r.bool("tie_word_embeddings") ?? false,
            qkvBias: arch == .qwen2 ? true : attnBias, attnOutBias: arch == .qwen2 ? false : attnBias,
            mlpBias: try r.bool("mlp_bias") ?? false,
            rotary: RotaryConfig(dims: Int(Double(dHead) * pct), theta: theta, scaling: scaling),
            parallelResidual: false, slidingWindow: windows.allSatisfy({ $0 == nil }) ? [] : windows,
            scaleAttnWeights: true, scaleAttnByInverseLayerIdx: false,
            bosTokenID: try r.int("bos_token_id"), eosTokenIDs: try r.intOrList("eos_token_id"),
            rawJSON: raw, source: source)
    }

    /// Checks that the numbers describe a buildable model; names the offending field.
    func validate(file: String) throws {
        func positive(_ v: Int, _ field: String, max m: Int = ModelConfig.maxDimension) throws {
            guard v > 0 else { throw ConfigError.badField(file: file, field: field, reason: "must be positive (got \(v))") }
            guard v <= m else { throw ConfigError.badField(file: file, field: field, reason: "is implausibly large (\(v) > \(m))") }
        }
        try positive(layers, "num_hidden_layers", max: ModelConfig.maxLayers)
        try positive(heads, "num_attention_heads", max: 65536)
        try positive(kvHeads, "num_key_value_heads", max: 65536)
        try positive(dModel, "hidden_size")
        try positive(dHead, "head_dim")
        try positive(dMLP, "intermediate_size")
        try positive(vocab, "vocab_size", max: 1 << 24)
        try positive(maxPositions, "max_position_embeddings", max: 1 << 24)
        if heads % kvHeads != 0 {
            throw ConfigError.badField(file: file, field: "num_key_value_heads",
                                       reason: "(\(kvHeads)) must divide num_attention_heads (\(heads))")
        }
        if architecture.family != "llama", dModel % heads != 0 {
            throw ConfigError.badField(file: file, field: "hidden_size", reason: "(\(dModel)) is not divisible by the head count (\(heads))")
        }
        if let rot = rotary {
            if rot.dims < 0 || rot.dims > dHead || rot.dims % 2 != 0 {
                throw ConfigError.badField(file: file, field: "partial_rotary_factor",
                                           reason: "gives \(rot.dims) rotary dims for d_head \(dHead); need an even number ≤ d_head")
            }
            if !(rot.theta > 0) || !rot.theta.isFinite {
                throw ConfigError.badField(file: file, field: "rope_theta", reason: "must be a positive number")
            }
        }
        if !(normEps > 0) || !normEps.isFinite {
            throw ConfigError.badField(file: file, field: "layer_norm_eps", reason: "must be a positive number")
        }
        for w in slidingWindow.compactMap({ $0 }) where w <= 0 {
            throw ConfigError.badField(file: file, field: "sliding_window", reason: "must be positive (got \(w))")
        }
    }
}

/// Typed access to JSON fields with errors that name the file and field.
struct FieldReader {
    let obj: [String: JSONValue]
    let file: String

    func require<T>(_ key: String, as type: T.Type = T.self) throws -> T {
        guard let v = obj[key], !v.isNull else { throw ConfigError.missingField(file: file, field: key) }
        return try cast(v, key)
    }

    /// The field's value, or nil when absent or null. (Typed entry points below keep the generic
    /// parameter from being inferred as an Optional.)
    func optional<T>(_ key: String, as type: T.Type) throws -> T? {
        guard let v = obj[key], !v.isNull else { return nil }
        return try cast(v, key) as T
    }
    func int(_ key: String) throws -> Int? { try optional(key, as: Int.self) }
    func double(_ key: String) throws -> Double? { try optional(key, as: Double.self) }
    func bool(_ key: String) throws -> Bool? { try optional(key, as: Bool.self) }
    func string(_ key: String) throws -> String? { try optional(key, as: String.self) }

    func cast<T>(_ v: JSONValue, _ key: String) throws -> T {
        let out: Any?
        let expected: String
        switch T.self {
        case is Int.Type: out = v.int; expected = "an integer"
        case is Double.Type: out = v.double; expected = "a number"
        case is Bool.Type: out = v.bool; expected = "true or false"
        case is String.Type: out = v.string; expected = "a string"
        default: out = nil; expected = "\(T.self)"
        }
        guard let t = out as? T else { throw ConfigError.badField(file: file, field: key, reason: "must be \(expected)") }
        return t
    }

    func intOrList(_ key: String) throws -> [Int] {
        guard let v = obj[key], !v.isNull else { return [] }
        if let list = v.array { return try list.map { try cast($0, key) } }
        return [try cast(v, key) as Int]
    }

    func activation(_ key: String, default def: Activation) throws -> Activation {
        guard let name = try string(key) else { return def }
        guard let a = Activation(rawValue: name) else {
            throw ConfigError.unsupported(file: file, field: key, value: name)
        }
        return a
    }

    /// The 5.x `rope_parameters` dict merged over the 4.x `rope_scaling` dict.
    func ropeParameters() throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for key in ["rope_scaling", "rope_parameters"] {
            guard let v = obj[key], !v.isNull else { continue }
            guard let d = v.dictionary else { throw ConfigError.badField(file: file, field: key, reason: "must be an object") }
            for (k, x) in d { out[k] = x }
        }
        return out
    }

    func scaling(_ rope: [String: JSONValue]) throws -> RopeScaling {
        let type = rope["rope_type"]?.string ?? rope["type"]?.string ?? "default"
        func num(_ k: String) throws -> Double {
            guard let v = rope[k]?.double else { throw ConfigError.missingField(file: file, field: "rope_parameters.\(k)") }
            return v
        }
        switch type {
        case "default": return .none
        case "linear": return .linear(factor: try num("factor"))
        case "llama3":
            return .llama3(factor: try num("factor"), lowFreqFactor: try num("low_freq_factor"),
                           highFreqFactor: try num("high_freq_factor"),
                           originalMaxPositions: rope["original_max_position_embeddings"]?.int ?? 0)
        default: throw ConfigError.unsupported(file: file, field: "rope type", value: type)
        }
    }
}

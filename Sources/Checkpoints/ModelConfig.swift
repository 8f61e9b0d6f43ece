// config.json: the parsed, validated description of one checkpoint's model, as data. Each model family
// reads its own fields (Sources/Models/Families/*.swift, found through `ModelFamilies`); this file holds
// what they share: the structure every family fills in, typed field access with errors that name the
// file and field, both rope dialects and the limits that keep a hostile config from asking for absurd
// allocations.
//
// Rope dialects (transformers modeling_rope_utils.py, 5.24):
//   4.x: rope_theta, rope_scaling {type|rope_type, factor, ...}, rotary_pct, rotary_emb_base
//   5.x: rope_parameters {rope_type, rope_theta, partial_rotary_factor, factor, ...}
import Foundation
import StrictJSON

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
    /// LongRoPE (Phi-3): inv_freq / short[i] for a pass whose sequence ends within
    /// `originalMaxPositions`, inv_freq / long[i] past it; cos and sin are multiplied by `attentionFactor`.
    case longrope(short: [Double], long: [Double], originalMaxPositions: Int, attentionFactor: Double)
}

public struct RotaryConfig: Sendable, Equatable {
    /// Rotated dimensions per head (`int(d_head * partial_rotary_factor)`), even.
    public var dims: Int
    public var theta: Double
    public var scaling: RopeScaling

    public init(dims: Int, theta: Double, scaling: RopeScaling) {
        self.dims = dims
        self.theta = theta
        self.scaling = scaling
    }
}

/// The parsed, validated config of one checkpoint. Families fill it in; the forward pass reads its
/// structural fields (and the optional norms of each block's weights), never the family's name.
public struct ModelConfig: Sendable {
    /// config.json `model_type` (e.g. "llama", "gemma2").
    public var modelType: String
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
    /// A score scale that replaces 1/√d_head (Gemma-2: query_pre_attn_scalar^-0.5).
    public var attentionScale: Float? = nil
    /// Attention-logit soft-capping: scores ← cap · tanh(scores / cap) before the mask (Gemma-2).
    public var attnLogitSoftcap: Float? = nil
    /// Final-logit soft-capping: logits ← cap · tanh(logits / cap) (Gemma-2).
    public var finalLogitSoftcap: Float? = nil
    /// Token embeddings are multiplied by this (Gemma-2: √d_model, rounded to the weights' float type).
    public var embeddingScale: Float? = nil
    /// Learned absolute position embeddings (GPT-2): sequences cannot pass `maxPositions`.
    public var learnedPositions: Bool = false
    public var bosTokenID: Int?
    /// End-of-sequence ids: config.json's `eos_token_id`, then any more that generation_config.json
    /// beside it lists (when loaded from a folder with `load(from:)`).
    public var eosTokenIDs: [Int]
    /// The config.json text as read, for provenance.
    public var rawJSON: String
    /// Where it was read from.
    public var source: URL

    public init(modelType: String, layers: Int, heads: Int, kvHeads: Int, dModel: Int, dHead: Int, dMLP: Int, vocab: Int,
                maxPositions: Int, normEps: Float, activation: Activation, tiedEmbeddings: Bool, qkvBias: Bool,
                attnOutBias: Bool, mlpBias: Bool, rotary: RotaryConfig?, parallelResidual: Bool, slidingWindow: [Int?],
                scaleAttnWeights: Bool, scaleAttnByInverseLayerIdx: Bool, bosTokenID: Int?, eosTokenIDs: [Int],
                rawJSON: String, source: URL) {
        self.modelType = modelType
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.dModel = dModel
        self.dHead = dHead
        self.dMLP = dMLP
        self.vocab = vocab
        self.maxPositions = maxPositions
        self.normEps = normEps
        self.activation = activation
        self.tiedEmbeddings = tiedEmbeddings
        self.qkvBias = qkvBias
        self.attnOutBias = attnOutBias
        self.mlpBias = mlpBias
        self.rotary = rotary
        self.parallelResidual = parallelResidual
        self.slidingWindow = slidingWindow
        self.scaleAttnWeights = scaleAttnWeights
        self.scaleAttnByInverseLayerIdx = scaleAttnByInverseLayerIdx
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
        self.rawJSON = rawJSON
        self.source = source
    }
}

/// A config.json problem. `description` names the file and field.
public enum ConfigError: Error, CustomStringConvertible, Sendable {
    case unreadable(file: String, reason: String)
    case notJSONObject(file: String)
    case missingField(file: String, field: String)
    case badField(file: String, field: String, reason: String)
    case unknownArchitecture(file: String, modelType: String, supported: [String])
    case unsupported(file: String, field: String, value: String)

    /// One line: values from the file (a model_type or hidden_act holding a newline) are escaped.
    public var description: String { CheckpointError.oneLine(unescapedDescription) }

    private var unescapedDescription: String {
        switch self {
        case let .unreadable(f, r): return "\(f): cannot read config: \(r)"
        case let .notJSONObject(f): return "\(f): config is not a JSON object"
        case let .missingField(f, k): return "\(f): missing field '\(k)'"
        case let .badField(f, k, r): return "\(f): field '\(k)' \(r)"
        case let .unknownArchitecture(f, t, _): return "\(f): unknown model_type '\(t)'"
        case let .unsupported(f, k, v): return "\(f): unsupported \(k) '\(v)'"
        }
    }

    public var hint: String {
        switch self {
        case .unreadable: return "Check that the path points at a checkpoint folder containing config.json."
        case .notJSONObject, .missingField, .badField:
            return "The config.json looks damaged; re-save it with transformers' save_pretrained."
        case let .unknownArchitecture(_, _, supported):
            return "cpiscope supports model_type: " + supported.joined(separator: ", ") + "."
        case .unsupported: return "This option is not implemented; see the README's list of supported configurations."
        }
    }
}

extension ModelConfig {
    /// Largest config.json read, in bytes.
    public static let maxFileSize = 16 << 20
    /// Hard limits that keep a hostile config from asking for absurd allocations.
    public static let maxDimension = 1 << 20
    public static let maxLayers = 4096

    /// The config file of a checkpoint folder (`config.json`), or `url` itself when it is a file.
    public static func configFile(_ url: URL) -> URL {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && isDir.boolValue
            ? url.appendingPathComponent("config.json") : url
    }

    /// Reads a config file's bytes (at most `maxFileSize`, checked before anything is allocated).
    public static func readFile(_ file: URL) throws -> Data {
        let bytes: [UInt8]
        do throws(JSONFileError) { bytes = try JSONFile.contents(path: file.path, limit: maxFileSize) } catch {
            if case .tooLarge = error { throw ConfigError.badField(file: file.path, field: "(file)", reason: error.reason) }
            throw ConfigError.unreadable(file: file.path, reason: FileManager.default.fileExists(atPath: file.path)
                                         ? error.reason : "no such file")
        }
        return Data(bytes)
    }

    /// Parses config.json bytes into typed fields and its `model_type`; a family then reads the fields.
    public static func fields(_ data: Data, source: URL) throws -> (reader: FieldReader, modelType: String, raw: String) {
        let name = source.path
        // JSON is UTF-8 (RFC 8259 §8.1); Python's json / transformers refuse anything else too.
        let json: JSONValue
        do throws(JSONParseError) { json = try JSONValue.parse(data) } catch {
            throw ConfigError.badField(file: name, field: "(file)", reason: JSONFileError.reason(error))
        }
        guard let obj = json.dictionary else { throw ConfigError.notJSONObject(file: name) }
        let r = FieldReader(obj: obj, file: name)
        let modelType: String = try r.require("model_type")
        return (r, modelType, String(decoding: data, as: UTF8.self))
    }

    /// `eos_token_id` (an id or a list) of a checkpoint's `generation_config.json`, or [] when the file is
    /// absent. transformers' `generate` stops at these ids, and instruction-tuned models often list more
    /// there than in config.json (an end-of-turn id beside the end-of-text one).
    public static func generationEOSTokenIDs(_ file: URL) throws -> [Int] {
        guard FileManager.default.fileExists(atPath: file.path) else { return [] }
        let json: JSONValue
        do throws(JSONFileError) { json = try JSONFile.parse(path: file.path, limit: 1 << 20) } catch {
            throw ConfigError.badField(file: file.path, field: "(file)", reason: error.reason)
        }
        guard let obj = json.dictionary else { throw ConfigError.notJSONObject(file: file.path) }
        let ids = try FieldReader(obj: obj, file: file.path).intOrList("eos_token_id")
        if let bad = ids.first(where: { $0 < 0 }) {
            throw ConfigError.badField(file: file.path, field: "eos_token_id", reason: "holds \(bad); token ids are ≥ 0")
        }
        return ids
    }

    /// Checks that the numbers describe a buildable model; names the offending field.
    public func validate(file: String) throws {
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
        for (field, cap) in [("attn_logit_softcapping", attnLogitSoftcap), ("final_logit_softcapping", finalLogitSoftcap)] {
            if let c = cap, !(c > 0) || !c.isFinite {
                throw ConfigError.badField(file: file, field: field, reason: "must be a positive number")
            }
        }
        if let s = attentionScale, !(s > 0) || !s.isFinite {
            throw ConfigError.badField(file: file, field: "query_pre_attn_scalar", reason: "must be a positive number")
        }
        if case let .longrope(short, long, orig, _)? = rotary?.scaling {
            let n = (rotary?.dims ?? 0) / 2
            if short.count != n || long.count != n {
                throw ConfigError.badField(file: file, field: "rope_parameters.short_factor/long_factor",
                                           reason: "need \(n) values each (rotary dims / 2), found \(short.count) and \(long.count)")
            }
            if orig <= 0 {
                throw ConfigError.badField(file: file, field: "original_max_position_embeddings", reason: "must be positive")
            }
        }
        for w in slidingWindow.compactMap({ $0 }) where w <= 0 {
            throw ConfigError.badField(file: file, field: "sliding_window", reason: "must be positive (got \(w))")
        }
    }
}

/// Typed access to JSON fields with errors that name the file and field.
public struct FieldReader {
    public let obj: [String: JSONValue]
    public let file: String

    public init(obj: [String: JSONValue], file: String) {
        self.obj = obj
        self.file = file
    }

    public func require<T>(_ key: String, as type: T.Type = T.self) throws -> T {
        guard let v = obj[key], !v.isNull else { throw ConfigError.missingField(file: file, field: key) }
        return try cast(v, key)
    }

    /// The field's value, or nil when absent or null. (Typed entry points below keep the generic
    /// parameter from being inferred as an Optional.)
    public func optional<T>(_ key: String, as type: T.Type) throws -> T? {
        guard let v = obj[key], !v.isNull else { return nil }
        return try cast(v, key) as T
    }
    public func int(_ key: String) throws -> Int? { try optional(key, as: Int.self) }
    public func double(_ key: String) throws -> Double? { try optional(key, as: Double.self) }
    public func bool(_ key: String) throws -> Bool? { try optional(key, as: Bool.self) }
    public func string(_ key: String) throws -> String? { try optional(key, as: String.self) }

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

    public func intOrList(_ key: String) throws -> [Int] {
        guard let v = obj[key], !v.isNull else { return [] }
        if let list = v.array { return try list.map { try cast($0, key) } }
        return [try cast(v, key) as Int]
    }

    public func activation(_ key: String, default def: Activation) throws -> Activation {
        guard let name = try string(key) else { return def }
        guard let a = Activation(rawValue: name) else {
            throw ConfigError.unsupported(file: file, field: key, value: name)
        }
        return a
    }

    /// The 5.x `rope_parameters` dict merged over the 4.x `rope_scaling` dict.
    public func ropeParameters() throws -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for key in ["rope_scaling", "rope_parameters"] {
            guard let v = obj[key], !v.isNull else { continue }
            guard let d = v.dictionary else { throw ConfigError.badField(file: file, field: key, reason: "must be an object") }
            for (k, x) in d { out[k] = x }
        }
        return out
    }

    public func scaling(_ rope: [String: JSONValue]) throws -> RopeScaling {
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
        case "longrope":
            // transformers _compute_longrope_parameters: factor defaults to max_position_embeddings /
            // original_max_position_embeddings; attention_factor to √(1 + ln(factor) / ln(original)).
            guard let orig = try rope["original_max_position_embeddings"]?.int ?? int("original_max_position_embeddings") else {
                throw ConfigError.missingField(file: file, field: "original_max_position_embeddings")
            }
            func factors(_ k: String) throws -> [Double] {
                guard let list = rope[k]?.array else { throw ConfigError.missingField(file: file, field: "rope_parameters.\(k)") }
                return try list.map { v in
                    guard let d = v.double, d > 0, d.isFinite else {
                        throw ConfigError.badField(file: file, field: "rope_parameters.\(k)", reason: "must hold positive numbers")
                    }
                    return d
                }
            }
            let maxPositions = try int("max_position_embeddings") ?? orig
            let factor = rope["factor"]?.double ?? Double(maxPositions) / Double(max(orig, 1))
            let attention = rope["attention_factor"]?.double
                ?? (factor <= 1 ? 1 : (1 + Foundation.log(factor) / Foundation.log(Double(max(orig, 2)))).squareRoot())
            return .longrope(short: try factors("short_factor"), long: try factors("long_factor"), originalMaxPositions: orig,
                             attentionFactor: attention)
        default: throw ConfigError.unsupported(file: file, field: "rope type", value: type)
        }
    }

    /// The rope type, θ and partial-rotary factor in either dialect (5.x `rope_parameters` first).
    public func rotary(dHead: Int, defaultTheta: Double = 10000, defaultFraction: Double = 1.0,
                       thetaKeys: [String] = ["rope_theta"], fractionKeys: [String] = ["partial_rotary_factor"]) throws -> RotaryConfig {
        let rope = try ropeParameters()
        var theta = rope["rope_theta"]?.double
        for k in thetaKeys where theta == nil { theta = try double(k) }
        var fraction = rope["partial_rotary_factor"]?.double
        var fractionField = "rope_parameters.partial_rotary_factor"
        for k in fractionKeys where fraction == nil { fraction = try double(k); fractionField = k }
        if let f = fraction, !(f >= 0 && f <= 1) {
            throw ConfigError.badField(file: file, field: fractionField, reason: "must be a number in 0...1 (got \(f))")
        }
        var scaling = try scaling(rope)
        if case let .llama3(f, lo, hi, orig) = scaling, orig <= 0 {
            scaling = .llama3(factor: f, lowFreqFactor: lo, highFreqFactor: hi,
                              originalMaxPositions: try int("max_position_embeddings") ?? 2048)
        }
        // An implausible head_dim is refused by `validate` (which names it); no rotary dims are derived from it here.
        let dims = (1...ModelConfig.maxDimension).contains(dHead) ? Int(Double(dHead) * (fraction ?? defaultFraction)) : 0
        return RotaryConfig(dims: dims, theta: theta ?? defaultTheta, scaling: scaling)
    }

    /// Per-layer sliding windows from `sliding_window` and `layer_types` ("sliding_attention" layers get
    /// the window); `fallback(i)` decides for layer i when the config lists no layer types. Empty when
    /// no layer slides.
    public func slidingWindows(layers: Int, enabled: Bool = true, fallback: (Int) -> Bool) throws -> [Int?] {
        guard enabled, let w = try int("sliding_window") else { return [] }
        let types: [String]? = obj["layer_types"]?.array?.compactMap(\.string)
        let n = max(0, min(layers, ModelConfig.maxLayers))
        let windows: [Int?] = (0..<n).map { i in
            (types.map { i < $0.count && $0[i] == "sliding_attention" } ?? fallback(i)) ? w : nil
        }
        return windows.allSatisfy { $0 == nil } ? [] : windows
    }
}

// adapter_config.json of a PEFT LoRA adapter, read strictly, and PEFT's rules for which modules the
// adapter changes and with which rank and alpha. Semantics follow peft 0.21.2 (docs/lora.md lists every
// field and rule):
//
//   fields         peft/tuners/lora/config.py `LoraConfig` (and its __post_init__ checks)
//   target_modules peft/tuners/tuners_utils.py `check_target_module_exists`: a list matches a module name
//                  that equals an entry or ends with "." + entry; a string is a regex that must match the
//                  whole name (`re.fullmatch`, utils/other.py `match_target_against_key`); "all-linear" is
//                  every linear layer except the output head (`_maybe_include_all_linear_layers`).
//   exclude_modules same two forms, checked first.
//   modules_to_save a module matching re.match(rf"(^|.*\.){m}($|\..*)") is never a LoRA target; the saved
//                  copies are the modules whose name ends with an entry (utils/other.py `_set_trainable`).
//   layers_to_transform (list targets only) the layer index is the first "<layers_pattern>.<digits>." of the
//                  name, or with no layers_pattern the first ".<segment>.<digits>." (lazy `.*?`).
//   rank_pattern / alpha_pattern the first key k (in file order; PEFT writes keys sorted) for which
//                  re.match(rf"(.*\.)?({k})$", name) matches (utils/other.py `get_pattern_key`).
//   scale          alpha / r, or alpha / √r with use_rslora (tuners/lora/layer.py `LoraLayer.update_layer`).
//
// Regexes are Python `re` patterns; they are compiled with Swift Regex (unicode-scalar semantics), which
// reads the same syntax for everything PEFT configs use in practice (classes, groups, alternation, \d, \.,
// lazy quantifiers, (?P<name>…)).
import Foundation
import StrictJSON

/// A parsed, validated PEFT LoRA adapter_config.json.
public struct AdapterConfig: Sendable {
    /// The forms of `target_modules` / `exclude_modules`.
    public enum ModuleSelector: Sendable, Equatable, CustomStringConvertible {
        /// Names: a module matches when it equals an entry or ends with "." + entry.
        case names([String])
        /// A regular expression that must match the whole module name.
        case pattern(String)
        /// `"all-linear"`: every linear layer except the output head.
        case allLinear

        public var description: String {
            switch self {
            case .names(let n): return "[" + n.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
            case .pattern(let p): return "\"\(p)\" (regex)"
            case .allLinear: return "\"all-linear\""
            }
        }
    }

    /// One `rank_pattern` / `alpha_pattern` entry, in file order.
    public struct PatternEntry<Value: Sendable & Equatable>: Sendable, Equatable {
        public let pattern: String
        public let value: Value
    }

    /// Path of adapter_config.json (for messages).
    public let file: String
    /// `r`: the default rank.
    public let rank: Int
    /// `lora_alpha`: the default alpha.
    public let alpha: Double
    public let useRSLoRA: Bool
    public let targetModules: ModuleSelector
    public let excludeModules: ModuleSelector?
    /// `fan_in_fan_out` as written. PEFT overrides it per module (true for GPT-2 Conv1D, false for nn.Linear),
    /// so the storage layout of each base weight decides; this value is informational.
    public let fanInFanOut: Bool
    public let rankPattern: [PatternEntry<Int>]
    public let alphaPattern: [PatternEntry<Double>]
    /// Layer indices to adapt; nil = all (null or an empty list in the file).
    public let layersToTransform: [Int]?
    /// Names of the layer list (e.g. "layers", "h"); nil or empty = PEFT's default rule.
    public let layersPattern: [String]?
    public let modulesToSave: [String]
    public let baseModelNameOrPath: String?
    /// `auto_mapping.base_model_class` (written when task_type is null), e.g. "LlamaForCausalLM".
    public let baseModelClass: String?
    public let taskType: String?
    public let peftVersion: String?
    /// The file's text, for provenance.
    public let rawJSON: String

    /// adapter_config.json larger than this is refused (real ones are a few KB).
    public static let maxFileSize = 16 << 20
    static let maxRank = 1 << 16

    /// The scale of a module with rank `r` and alpha `alpha`: alpha/r, or alpha/√r with rsLoRA.
    public func scale(rank r: Int, alpha: Double) -> Double {
        useRSLoRA ? alpha / Double(r).squareRoot() : alpha / Double(r)
    }

    /// The default scale (for `r` and `lora_alpha`).
    public var scale: Double { scale(rank: rank, alpha: alpha) }

    /// Reads `<directory>/adapter_config.json`.
    public static func load(from directory: URL) throws(CheckpointError) -> AdapterConfig {
        let file = directory.appendingPathComponent("adapter_config.json")
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw .missingAdapterConfig(directory: directory.path)
        }
        let bytes: [UInt8]
        do throws(JSONFileError) { bytes = try JSONFile.contents(path: file.path, limit: maxFileSize) } catch {
            throw .badAdapterConfig(file: file.path, field: "(file)", reason: error.reason)
        }
        return try parse(bytes, file: file.path)
    }

    /// Parses adapter_config.json bytes; `file` names the source in errors.
    public static func parse(_ bytes: [UInt8], file: String) throws(CheckpointError) -> AdapterConfig {
        let json: JSONValue
        do throws(JSONParseError) { json = try JSONValue.parse(bytes) } catch {
            throw .badAdapterConfig(file: file, field: "(file)", reason: "the file " + JSONFileError.reason(error))
        }
        guard case .object = json else {
            throw .badAdapterConfig(file: file, field: "(top level)", reason: "is a \(json.kindName), expected an object")
        }
        let r = Reader(json: json, file: file)

        // What kind of adapter: only LoRA.
        guard let peftType = try r.string("peft_type") else {
            throw .badAdapterConfig(file: file, field: "peft_type", reason: "is missing (PEFT writes it in every adapter config)")
        }
        guard peftType == "LORA" else {
            throw .unsupportedAdapter(file: file, field: "peft_type", value: "\"\(peftType)\"",
                                      reason: "only LoRA adapters (peft_type \"LORA\") are implemented")
        }
        try rejectUnsupported(r)

        // Rank, alpha, scaling.
        guard let rank = try r.int("r") else { throw .badAdapterConfig(file: file, field: "r", reason: "is missing") }
        guard rank > 0, rank <= maxRank else {
            throw .badAdapterConfig(file: file, field: "r", reason: "must be a positive integer at most \(maxRank) (got \(rank))")
        }
        guard let alpha = try r.number("lora_alpha") else {
            throw .badAdapterConfig(file: file, field: "lora_alpha", reason: "is missing")
        }
        guard alpha.isFinite else { throw .badAdapterConfig(file: file, field: "lora_alpha", reason: "must be a finite number") }
        let useRSLoRA = try r.bool("use_rslora") ?? false
        let rankPattern = try r.patterns("rank_pattern") { v throws(CheckpointError) -> Int? in
            guard let i = v.int, i > 0, i <= maxRank else { return nil }
            return i
        }
        let alphaPattern = try r.patterns("alpha_pattern") { v throws(CheckpointError) -> Double? in
            guard let d = v.double, d.isFinite else { return nil }
            return d
        }

        // Which modules.
        guard let targets = try r.selector("target_modules") else {
            throw .badAdapterConfig(file: file, field: "target_modules",
                                    reason: "is missing (PEFT writes the resolved list of targeted modules)")
        }
        let exclude = try r.selector("exclude_modules")
        if case .allLinear = exclude {
            throw .badAdapterConfig(file: file, field: "exclude_modules", reason: "cannot be \"all-linear\"")
        }
        let layers = try r.layersToTransform()
        let layersPattern = try r.stringOrList("layers_pattern")
        // LoraConfig.__post_init__ refuses these combinations; so do we. (A string target_modules is a regex
        // or "all-linear".)
        let stringTargets: Bool
        if case .names = targets { stringTargets = false } else { stringTargets = true }
        if stringTargets, r.isSet("layers_to_transform") {
            throw .badAdapterConfig(file: file, field: "layers_to_transform", reason: "cannot be used when target_modules is a string")
        }
        if stringTargets, r.isSet("layers_pattern") {
            throw .badAdapterConfig(file: file, field: "layers_pattern", reason: "cannot be used when target_modules is a string")
        }
        if let lp = layersPattern, !lp.isEmpty, !r.isSet("layers_to_transform") {
            throw .badAdapterConfig(file: file, field: "layers_pattern", reason: "is set but layers_to_transform is not")
        }
        let modulesToSave = try r.stringList("modules_to_save") ?? []

        // Every pattern must compile (and the same text is matched later).
        if case .pattern(let p) = targets { try compileOrThrow(p, file: file, field: "target_modules") }
        if case .pattern(let p) = exclude { try compileOrThrow(p, file: file, field: "exclude_modules") }
        for e in rankPattern { try compileOrThrow(Self.patternKeyRegex(e.pattern), file: file, field: "rank_pattern[\"\(e.pattern)\"]") }
        for e in alphaPattern { try compileOrThrow(Self.patternKeyRegex(e.pattern), file: file, field: "alpha_pattern[\"\(e.pattern)\"]") }
        for p in layersPattern ?? [] { try compileOrThrow(Self.layerIndexRegex(p), file: file, field: "layers_pattern") }
        for m in modulesToSave { try compileOrThrow(Self.savedModuleRegex(m), file: file, field: "modules_to_save") }

        var baseClass: String? = nil
        if let am = r.json["auto_mapping"], !am.isNull {
            guard case .object = am else {
                throw .badAdapterConfig(file: file, field: "auto_mapping", reason: "is a \(am.kindName), expected an object")
            }
            if let c = am["base_model_class"], !c.isNull {
                guard let s = c.string else {
                    throw .badAdapterConfig(file: file, field: "auto_mapping.base_model_class", reason: "is a \(c.kindName), expected a string")
                }
                baseClass = s
            }
        }

        return AdapterConfig(
            file: file, rank: rank, alpha: alpha, useRSLoRA: useRSLoRA, targetModules: targets, excludeModules: exclude,
            fanInFanOut: try r.bool("fan_in_fan_out") ?? false, rankPattern: rankPattern, alphaPattern: alphaPattern,
            layersToTransform: layers, layersPattern: layersPattern, modulesToSave: modulesToSave,
            baseModelNameOrPath: try r.string("base_model_name_or_path"), baseModelClass: baseClass,
            taskType: try r.string("task_type"), peftVersion: try r.string("peft_version"),
            rawJSON: String(decoding: bytes, as: UTF8.self))
    }

    /// A matcher for these rules; `linearModules` are the base model's linear layers other than the output
    /// head (the meaning of "all-linear"; unused otherwise).
    public func matcher(linearModules: [String] = []) -> AdapterMatcher {
        AdapterMatcher(config: self, linearModules: linearModules)
    }

    // MARK: rules PEFT 0.21.2 refuses or cpiscope does not implement

    /// Fields whose non-default values change the computation in ways plain LoRA merging cannot reproduce.
    private static func rejectUnsupported(_ r: Reader) throws(CheckpointError) {
        let file = r.file
        if try r.bool("use_dora") == true {
            throw .unsupportedAdapter(file: file, field: "use_dora", value: "true",
                                      reason: "DoRA rescales each weight column by a learned magnitude, which plain LoRA merging does not reproduce")
        }
        if let bias = try r.string("bias"), bias != "none" {
            throw .unsupportedAdapter(file: file, field: "bias", value: "\"\(bias)\"",
                                      reason: "trained biases (bias \"all\" / \"lora_only\") are not applied; only bias \"none\" is")
        }
        if try r.bool("lora_bias") == true {
            throw .unsupportedAdapter(file: file, field: "lora_bias", value: "true", reason: "a bias on lora_B is not applied")
        }
        if try r.bool("use_qalora") == true {
            throw .unsupportedAdapter(file: file, field: "use_qalora", value: "true", reason: "QALoRA pools inputs before lora_A")
        }
        if let v = r.json["init_lora_weights"], let s = v.string {
            let lower = s.lowercased()
            if ["pissa", "corda", "olora", "loftq", "lora_ga"].contains(where: { lower.hasPrefix($0) }) {
                throw .unsupportedAdapter(file: file, field: "init_lora_weights", value: "\"\(s)\"",
                                          reason: "this initialisation rewrites the base weights; save the adapter with path_initial_model_for_weight_conversion so PEFT converts it to a plain LoRA over the original base")
            }
        }
        // LoRA variants and extras that change the forward pass or what is adapted.
        let variants: [(String, String)] = [
            ("layer_replication", "layers are duplicated before adapting"),
            ("target_parameters", "LoRA on raw nn.Parameters (e.g. MoE experts) is not implemented"),
            ("trainable_token_indices", "trainable token embeddings are not implemented"),
            ("alora_invocation_tokens", "activated LoRA applies the update only after invocation tokens"),
            ("arrow_config", "Arrow routing between LoRA experts is not implemented"),
            ("kasa_config", "the KaSA variant is not implemented"),
            ("velora_config", "the VeLoRA variant is not implemented"),
            ("monteclora_config", "the MonteCLoRA variant is not implemented"),
            ("use_bdlora", "block-diagonal LoRA is not implemented"),
        ]
        for (field, why) in variants {
            guard let v = r.json[field] else { continue }
            switch v {
            case .null, .bool(false): continue
            case .array(let a) where a.isEmpty: continue
            case .object(let o) where o.isEmpty: continue
            default: throw .unsupportedAdapter(file: file, field: field, value: Self.short(v), reason: why)
            }
        }
    }

    static func short(_ v: JSONValue) -> String {
        switch v {
        case .string(let s): return "\"\(s)\""
        case .number(let n): return n.text
        case .bool(let b): return "\(b)"
        case .null: return "null"
        case .array(let a): return "[…\(a.count) items]"
        case .object: return "{…}"
        }
    }

    // MARK: regex construction (PEFT's exact pattern texts)

    /// get_pattern_key: re.match(rf"(.*\.)?({key})$", name)
    static func patternKeyRegex(_ key: String) -> String { "(.*\\.)?(" + key + ")$" }
    /// check_target_module_exists with layers_pattern: re.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", name)
    static func layerIndexRegex(_ pattern: String) -> String { "(?:^|.*?\\.)" + pattern + "\\.(?P<idx>\\d+)\\." }
    /// check_target_module_exists without layers_pattern: re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", name)
    static let defaultLayerIndexRegex = ".*?\\.[^.]*\\.(?P<idx>\\d+)\\."
    /// check_target_module_exists, modules_to_save exclusion: re.match(rf"(^|.*\.){m}($|\..*)", name)
    static func savedModuleRegex(_ m: String) -> String { "(^|.*\\.)" + m + "($|\\..*)" }

    static func compile(_ pattern: String) throws -> Regex<AnyRegexOutput> {
        try Regex(pattern).matchingSemantics(.unicodeScalar)
    }

    private static func compileOrThrow(_ pattern: String, file: String, field: String) throws(CheckpointError) {
        do { _ = try compile(pattern) } catch {
            throw .badAdapterConfig(file: file, field: field, reason: "holds an invalid regular expression '\(pattern)': \(error)")
        }
    }

    // MARK: typed field access

    private struct Reader {
        let json: JSONValue
        let file: String

        func isSet(_ key: String) -> Bool { json[key].map { !$0.isNull } ?? false }

        private func value(_ key: String) -> JSONValue? {
            guard let v = json[key], !v.isNull else { return nil }
            return v
        }

        private func bad(_ key: String, _ v: JSONValue, _ expected: String) -> CheckpointError {
            .badAdapterConfig(file: file, field: key, reason: "is a \(v.kindName), expected \(expected)")
        }

        func string(_ key: String) throws(CheckpointError) -> String? {
            guard let v = value(key) else { return nil }
            guard let s = v.string else { throw bad(key, v, "a string") }
            return s
        }

        func bool(_ key: String) throws(CheckpointError) -> Bool? {
            guard let v = value(key) else { return nil }
            guard let b = v.bool else { throw bad(key, v, "true or false") }
            return b
        }

        func int(_ key: String) throws(CheckpointError) -> Int? {
            guard let v = value(key) else { return nil }
            guard let i = v.int else { throw bad(key, v, "an integer") }
            return i
        }

        func number(_ key: String) throws(CheckpointError) -> Double? {
            guard let v = value(key) else { return nil }
            guard let d = v.double else { throw bad(key, v, "a number") }
            return d
        }

        func stringList(_ key: String) throws(CheckpointError) -> [String]? {
            guard let v = value(key) else { return nil }
            guard let a = v.array else { throw bad(key, v, "a list of strings") }
            var out: [String] = []
            for (i, e) in a.enumerated() {
                guard let s = e.string else { throw bad("\(key)[\(i)]", e, "a string") }
                out.append(s)
            }
            return out
        }

        func stringOrList(_ key: String) throws(CheckpointError) -> [String]? {
            guard let v = value(key) else { return nil }
            if let s = v.string { return [s] }
            guard v.array != nil else { throw bad(key, v, "a string or a list of strings") }
            return try stringList(key)
        }

        /// target_modules / exclude_modules: a list of names, a regex string, or "all-linear" (any case, as PEFT).
        func selector(_ key: String) throws(CheckpointError) -> ModuleSelector? {
            guard let v = value(key) else { return nil }
            if let s = v.string { return s.lowercased() == "all-linear" ? .allLinear : .pattern(s) }
            guard v.array != nil else { throw bad(key, v, "a list of module names or a regex string") }
            return .names(try stringList(key) ?? [])
        }

        func layersToTransform() throws(CheckpointError) -> [Int]? {
            let key = "layers_to_transform"
            guard let v = value(key) else { return nil }
            if let i = v.int {
                guard i >= 0 else { throw .badAdapterConfig(file: file, field: key, reason: "must be non-negative (got \(i))") }
                return [i]
            }
            guard let a = v.array else { throw bad(key, v, "an integer or a list of integers") }
            var out: [Int] = []
            for (j, e) in a.enumerated() {
                guard let i = e.int, i >= 0 else { throw bad("\(key)[\(j)]", e, "a non-negative integer") }
                out.append(i)
            }
            return out.isEmpty ? nil : out
        }

        func patterns<V>(_ key: String, _ convert: (JSONValue) throws(CheckpointError) -> V?) throws(CheckpointError) -> [PatternEntry<V>] {
            guard let v = value(key) else { return [] }
            guard case .object(let pairs) = v else { throw bad(key, v, "an object mapping patterns to values") }
            var out: [PatternEntry<V>] = []
            for (k, e) in pairs {
                guard let x = try convert(e) else {
                    throw .badAdapterConfig(file: file, field: "\(key)[\"\(k)\"]",
                                            reason: "is \(e.kindName), expected a \(key == "rank_pattern" ? "positive integer" : "finite number")")
                }
                out.append(PatternEntry(pattern: k, value: x))
            }
            return out
        }
    }
}

/// PEFT's matching rules for one adapter config, with its regexes compiled.
public struct AdapterMatcher {
    public let config: AdapterConfig
    private let allLinear: Set<String>
    private let target: Regex<AnyRegexOutput>?
    private let exclude: Regex<AnyRegexOutput>?
    private let rankKeys: [(Regex<AnyRegexOutput>, Int)]
    private let alphaKeys: [(Regex<AnyRegexOutput>, Double)]
    private let layerIndex: [Regex<AnyRegexOutput>]
    private let saved: [Regex<AnyRegexOutput>]

    init(config c: AdapterConfig, linearModules: [String]) {
        config = c
        allLinear = Set(linearModules)
        // The patterns were compiled once in AdapterConfig.parse; a failure here cannot happen, and would
        // only make the pattern match nothing.
        func re(_ p: String) -> Regex<AnyRegexOutput>? { try? AdapterConfig.compile(p) }
        if case .pattern(let p) = c.targetModules { target = re(p) } else { target = nil }
        if case .pattern(let p) = c.excludeModules { exclude = re(p) } else { exclude = nil }
        rankKeys = c.rankPattern.compactMap { e in re(AdapterConfig.patternKeyRegex(e.pattern)).map { ($0, e.value) } }
        alphaKeys = c.alphaPattern.compactMap { e in re(AdapterConfig.patternKeyRegex(e.pattern)).map { ($0, e.value) } }
        let lp = c.layersPattern ?? []
        layerIndex = (lp.isEmpty ? [AdapterConfig.defaultLayerIndexRegex] : lp.map(AdapterConfig.layerIndexRegex)).compactMap(re)
        saved = c.modulesToSave.map(AdapterConfig.savedModuleRegex).compactMap(re)
    }

    /// check_target_module_exists: true when LoRA is applied to the module named `key`.
    public func isTargeted(_ key: String) -> Bool {
        // exclude_modules first
        switch config.excludeModules {
        case .names(let ex)?:
            if ex.contains(key) || ex.contains(where: { key.hasSuffix("." + $0) }) { return false }
        case .pattern?:
            if let exclude, (try? exclude.wholeMatch(in: key)) != nil { return false }
        case .allLinear?, nil: break
        }
        // never a module that modules_to_save wraps
        if saved.contains(where: { (try? $0.prefixMatch(in: key)) != nil }) { return false }
        let names: [String]
        switch config.targetModules {
        case .pattern:
            guard let target else { return false }
            return (try? target.wholeMatch(in: key)) != nil
        case .allLinear:
            names = allLinear.contains(key) ? [key] : []
        case .names(let n):
            names = n
        }
        if names.contains(key) { return true }   // an exact name is taken as is (no layer filter), as PEFT
        guard names.contains(where: { key.hasSuffix("." + $0) }) else { return false }
        guard let layers = config.layersToTransform else { return true }
        guard let idx = layerIndexOf(key) else { return false }
        return layers.contains(idx)
    }

    /// The layer index PEFT reads from a module name for layers_to_transform, or nil.
    public func layerIndexOf(_ key: String) -> Int? {
        for re in layerIndex {
            guard let m = try? re.prefixMatch(in: key) else { continue }
            guard let sub = m.output["idx"]?.substring else { return nil }
            return Int(sub)
        }
        return nil
    }

    /// The rank of the module `key` (rank_pattern, else r).
    public func rank(for key: String) -> Int {
        rankKeys.first(where: { (try? $0.0.prefixMatch(in: key)) != nil })?.1 ?? config.rank
    }

    /// The alpha of the module `key` (alpha_pattern, else lora_alpha).
    public func alpha(for key: String) -> Double {
        alphaKeys.first(where: { (try? $0.0.prefixMatch(in: key)) != nil })?.1 ?? config.alpha
    }

    /// alpha/r (or alpha/√r with rsLoRA) with this module's rank and alpha.
    public func scale(for key: String) -> Double { config.scale(rank: rank(for: key), alpha: alpha(for: key)) }

    /// True when `module` or one of its ancestors is a modules_to_save copy (its name ends with an entry;
    /// `_set_trainable` wraps every module whose name ends with one), so its tensors may be saved in full.
    public func isSaved(module: String) -> Bool {
        var name = Substring(module)
        while true {
            if config.modulesToSave.contains(where: { name.hasSuffix($0) }) { return true }
            guard let dot = name.lastIndex(of: ".") else { return false }
            name = name[..<dot]
        }
    }
}

// Tokenizer: loads a Hugging Face `tokenizer.json` and encodes/decodes text with the same ids and
// character offsets as Python `tokenizers` 0.23.
//
// Pipeline (`TokenizerImpl::encode_single_sequence` in `tokenizers/src/tokenizer/mod.rs`):
//   added tokens (raw) -> normalizer -> added tokens (normalized) -> pre-tokenizer -> BPE
//   -> offsets in the original text -> post-processor.
// Each stage is built from its JSON object by a factory keyed on `"type"`; a component that is not
// implemented is an error naming it, never a silently different encoding.
import Foundation
import StrictJSON

public final class Tokenizer: Sendable {
    let normalizer: (any Normalizer)?
    let preTokenizer: (any PreTokenizer)?
    let model: BPEModel
    let postProcessor: (any PostProcessor)?
    let decoder: (any TokenDecoder)?
    let added: AddedVocabulary
    /// `add_bos_token` / `add_eos_token` from tokenizer_config.json, when given explicitly.
    let addBOS: Bool?
    let addEOS: Bool?

    /// The beginning-of-sequence token: tokenizer_config.json `bos_token`, else the special token the
    /// post-processor puts before the text, else a conventional special token
    /// (`<s>`, `<|begin_of_text|>`, `<bos>`, `<|startoftext|>`), else `<|endoftext|>` (GPT-2 convention).
    public let bosTokenID: Int?
    /// The end-of-sequence token: tokenizer_config.json `eos_token`, else the special token the
    /// post-processor puts after the text, else a conventional special token
    /// (`</s>`, `<|end_of_text|>`, `<|endoftext|>`, `<eos>`, `<|im_end|>`).
    public let eosTokenID: Int?
    /// The file's `padding` and `truncation` sections, which are never applied: a prompt is
    /// encoded whole (see IgnoredSections.swift). Empty when the file has none.
    public let ignoredSections: [IgnoredSection]

    /// Longest text `encode` accepts, in Unicode scalars.
    public static let maxInputScalars = 1 << 28
    /// Largest tokenizer.json / tokenizer_config.json accepted, in bytes.
    public static let maxFileBytes = 1 << 30

    /// url: a tokenizer.json file, or a folder containing tokenizer.json (and optionally
    /// tokenizer_config.json). A tokenizer_config.json next to a tokenizer.json file is read too.
    public static func load(from url: URL) throws -> Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw TokenizationError.fileNotFound(path: url.path)
        }
        let file = isDirectory.boolValue ? url.appendingPathComponent("tokenizer.json") : url
        guard FileManager.default.fileExists(atPath: file.path) else { throw TokenizationError.fileNotFound(path: file.path) }
        let bytes = try readFile(file)
        let configURL = file.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? try readFile(configURL) : nil
        return try Tokenizer(tokenizerJSON: bytes, configJSON: config,
                             name: file.lastPathComponent, configName: configURL.lastPathComponent)
    }

    /// Loads from the bytes of a tokenizer.json and, optionally, of a tokenizer_config.json.
    public static func load(tokenizerJSON: [UInt8], configJSON: [UInt8]? = nil) throws -> Tokenizer {
        try Tokenizer(tokenizerJSON: tokenizerJSON, configJSON: configJSON, name: "tokenizer.json", configName: "tokenizer_config.json")
    }

    private static func readFile(_ url: URL) throws(TokenizationError) -> [UInt8] {
        do throws(JSONFileError) {
            return try JSONFile.contents(path: url.path, limit: maxFileBytes)
        } catch {
            throw .unreadableFile(path: url.path, reason: "the file \(error.reason)")
        }
    }

    private convenience init(tokenizerJSON: [UInt8], configJSON: [UInt8]?, name: String, configName: String) throws(TokenizationError) {
        try self.init(root: try parseJSON(tokenizerJSON, file: name), configJSON: configJSON, name: name, configName: configName)
    }

    /// Loads from an already parsed tokenizer.json (tests use this to apply configuration overrides).
    static func load(root: JSONValue, configJSON: [UInt8]?) throws(TokenizationError) -> Tokenizer {
        try Tokenizer(root: root, configJSON: configJSON, name: "tokenizer.json", configName: "tokenizer_config.json")
    }

    private init(root rootValue: JSONValue, configJSON: [UInt8]?, name: String, configName: String) throws(TokenizationError) {
        let root = JSONField(rootValue, path: "", file: name)
        _ = try root.object()

        let modelField = try root.child("model")
        let modelType = try modelField.optionalString("type") ?? Self.inferModelType(modelField)
        guard modelType == "BPE" else {
            throw TokenizationError.unsupportedComponent(file: name, field: "model", type: modelType)
        }
        model = try BPEModel(modelField)
        normalizer = try root.optionalChild("normalizer").map { (f) throws(TokenizationError) in try makeNormalizer(f) }
        preTokenizer = try root.optionalChild("pre_tokenizer").map { (f) throws(TokenizationError) in try makePreTokenizer(f) }
        postProcessor = try root.optionalChild("post_processor").map { (f) throws(TokenizationError) in try makePostProcessor(f) }
        decoder = try root.optionalChild("decoder").map { (f) throws(TokenizationError) in try makeDecoder(f) }
        added = try AddedVocabulary(try root.optionalChild("added_tokens"), model: model, normalizer: normalizer)
        ignoredSections = IgnoredSection.find(in: root)

        // tokenizer_config.json: bos/eos tokens and add_bos_token/add_eos_token.
        var configBOS: String?
        var configEOS: String?
        var addBOS: Bool?
        var addEOS: Bool?
        if let configJSON {
            let config = JSONField(try parseJSON(configJSON, file: configName), path: "", file: configName)
            _ = try config.object()
            func tokenName(_ key: String) throws(TokenizationError) -> String? {
                guard let f = try config.optionalChild(key) else { return nil }
                if case .string(let s) = f.value { return s }
                return try f.child("content").string()
            }
            configBOS = try tokenName("bos_token")
            configEOS = try tokenName("eos_token")
            addBOS = try config.optionalBool("add_bos_token")
            addEOS = try config.optionalBool("add_eos_token")
            for (key, value) in [("bos_token", configBOS), ("eos_token", configEOS)] {
                if let value, added.id(forContent: value) == nil && model.vocab[value.exact] == nil {
                    throw TokenizationError.invalidValue(file: configName, field: key, reason: "\(quoted(value)) is not a token of the tokenizer")
                }
            }
        }
        self.addBOS = addBOS
        self.addEOS = addEOS

        let template = Self.findTemplate(postProcessor)
        let lookup: (String) -> Int? = { [added, model] in added.id(forContent: $0) ?? model.vocab[$0.exact] }
        let specialLookup: ([String]) -> Int? = { [added] names in
            for n in names where added.isSpecial(content: n) { if let id = added.id(forContent: n) { return id } }
            return nil
        }
        let eos = configEOS.flatMap(lookup) ?? template?.trailingSpecialID
            ?? specialLookup(["</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "<|im_end|>"])
        var bos = configBOS.flatMap(lookup) ?? template?.leadingSpecialID
            ?? specialLookup(["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"])
        if bos == nil && configBOS == nil, let e = eos, added.id(forContent: "<|endoftext|>") == e { bos = e }
        bosTokenID = bos
        eosTokenID = eos
    }

    private static func inferModelType(_ f: JSONField) -> String {
        // Old files have no "type": the reference tries BPE, WordPiece, WordLevel, Unigram in turn.
        if f.has("merges") { return "BPE" }
        if case .array? = (try? f.child("vocab"))?.value { return "Unigram" }
        if f.has("max_input_chars_per_word") { return "WordPiece" }
        return "WordLevel"
    }

    private static func findTemplate(_ p: (any PostProcessor)?) -> TemplatePostProcessor? {
        if let t = p as? TemplatePostProcessor { return t }
        if let s = p as? SequencePostProcessor {
            for q in s.processors { if let t = findTemplate(q) { return t } }
        }
        return nil
    }

    // MARK: encoding

    /// Encodes `text`. With `addSpecialTokens`, the post-processor adds its special tokens (e.g. BOS);
    /// an explicit `add_bos_token`/`add_eos_token` in tokenizer_config.json overrides whether BOS/EOS
    /// are present, as Hugging Face `transformers` does for Llama-family tokenizers.
    public func encode(_ text: String, addSpecialTokens: Bool = true) throws -> Encoding {
        try encodeTyped(text, addSpecialTokens: addSpecialTokens)
    }

    func encodeTyped(_ text: String, addSpecialTokens: Bool) throws(TokenizationError) -> Encoding {
        let scalars = Array(text.unicodeScalars)
        guard scalars.count <= Self.maxInputScalars else {
            throw .inputTooLarge(scalars: scalars.count, limit: Self.maxInputScalars)
        }
        var pre = try added.extract(scalars, normalizer: normalizer)
        try preTokenizer?.preTokenize(&pre)

        var raw = RawEncoding()
        raw.ids.reserveCapacity(scalars.count / 3)
        var cache = BPECache()
        for split in pre.splits {
            let tokens: [Token]
            if let attached = split.tokens {
                tokens = attached
            } else {
                tokens = try model.tokenize(split.normalized.scalars, cache: &cache)
            }
            for t in tokens {
                raw.append(id: t.id, token: t.value, offset: split.normalized.originalRange(t.range), special: false)
            }
        }
        postProcessor?.process(&raw, addSpecialTokens: addSpecialTokens)
        if addSpecialTokens { applyConfigOverrides(&raw) }
        return Encoding(ids: raw.ids, tokens: raw.tokens, offsets: raw.offsets, isSpecial: raw.special)
    }

    private func applyConfigOverrides(_ e: inout RawEncoding) {
        if let addBOS, let bos = bosTokenID {
            let has = e.ids.first == bos && e.special.first == true
            if addBOS && !has {
                e.ids.insert(bos, at: 0)
                e.tokens.insert(token(forID: bos) ?? "", at: 0)
                e.offsets.insert(0..<0, at: 0)
                e.special.insert(true, at: 0)
            } else if !addBOS && has {
                e.ids.removeFirst(); e.tokens.removeFirst(); e.offsets.removeFirst(); e.special.removeFirst()
            }
        }
        if let addEOS, let eos = eosTokenID {
            let has = e.ids.last == eos && e.special.last == true
            if addEOS && !has {
                e.append(id: eos, token: token(forID: eos) ?? "", offset: 0..<0, special: true)
            } else if !addEOS && has {
                e.ids.removeLast(); e.tokens.removeLast(); e.offsets.removeLast(); e.special.removeLast()
            }
        }
    }

    // MARK: decoding

    /// Decodes ids to text through the tokenizer's decoder (tokens joined by spaces when it has none).
    /// Unknown ids are skipped; with `skipSpecialTokens`, special added tokens are left out.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let t = token(forID: id) else { continue }
            if skipSpecialTokens && added.isSpecial(content: t) { continue }
            tokens.append(t)
        }
        if let decoder { return decoder.decodeChain(tokens).joined() }
        return tokens.joined(separator: " ")
    }

    // MARK: vocabulary

    /// Number of distinct ids: the model vocabulary plus added tokens outside it
    /// (Python `get_vocab_size(with_added_tokens=True)`).
    public var vocabularySize: Int { model.vocabularyCount + added.countBeyond(model: model) }

    /// The id of a token string (added tokens first, then the model vocabulary).
    public func id(forToken token: String) -> Int? {
        added.id(forContent: token) ?? model.vocab[token.exact]
    }

    /// The token string of an id, as Python `id_to_token` returns it (for an added token whose
    /// content the normalizer changes, its normalized form, e.g. "▁<s>").
    public func token(forID id: Int) -> String? {
        if let a = added.decodingForm(id: id) { return a }
        guard id >= 0 && id < model.idToToken.count else { return nil }
        return model.idToToken[id]
    }
}

// A model's chat template, found and rendered as transformers does it:
//
//   AutoTokenizer.from_pretrained(dir).apply_chat_template(messages, tokenize=False, add_generation_prompt=…)
//
// Finding it (transformers 5.x, tokenization_utils_base.py, `from_pretrained` / `_from_pretrained`):
// - `chat_template.jinja` beside tokenizer_config.json is the template named "default", and every
//   `additional_chat_templates/<name>.jinja` one more named template. When any of these files exists, the
//   `chat_template` field of tokenizer_config.json is ignored.
// - Otherwise the `chat_template` field of tokenizer_config.json: a string (the "default" template), or a
//   list of `{"name": …, "template": …}` (named templates).
// - Choosing among named templates (`get_chat_template`): the name asked for; with no name, "tool_use" when
//   the render has tools and the folder has one, else "default"; no such name is an error that lists them.
//
// Rendering: the variables are the special tokens of tokenizer_config.json (`special_tokens_map`: bos_token,
// eos_token, unk_token, sep_token, pad_token, cls_token, mask_token when set, as strings or AddedToken
// dicts, and any other string-valued `*_token` key), then `messages`, `tools=None`, `documents=None`,
// `add_generation_prompt`, then the caller's extra variables (which win, as transformers' kwargs do).
// The template runs in the environment transformers builds (see Evaluator.swift and Lexer.swift).
import Foundation
import StrictJSON

/// One message of a conversation: a role ("system", "user", "assistant"…) and its text.
public struct ChatMessage: Sendable, Equatable {
    /// "system", "user", "assistant" or any role the template knows.
    public var role: String
    /// The message text.
    public var content: String

    /// A message with `role` and `content`.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A special token passed to the template (`bos_token` → `<s>`), in transformers' order.
public struct SpecialToken: Sendable, Equatable {
    /// The variable name, e.g. `bos_token`.
    public let name: String
    /// The token's text, e.g. `<s>`.
    public let content: String

    /// A special token variable.
    public init(name: String, content: String) {
        self.name = name
        self.content = content
    }
}

/// The parser's result, carried back from the parsing thread.
struct ParsedBody: Sendable {
    let body: [Stmt]
    let undefined: [String]
}

/// A parsed chat template with the special tokens of its model folder, ready to render conversations.
public struct ChatTemplate: Sendable {
    /// The template text exactly as read. Hash it (e.g. `ContentHash.sha256(Array(source.utf8))`) to record
    /// which template a run used.
    public let source: String
    /// The template's name: "default", or the name chosen among a folder's named templates.
    public let name: String
    /// The file the template was read from (`chat_template.jinja`, `tokenizer_config.json`…), for messages.
    public let file: String
    /// The special tokens passed to the template as variables.
    public let specialTokens: [SpecialToken]
    /// The guards applied when parsing and rendering.
    public let limits: ChatTemplateLimits
    let body: [Stmt]
    /// The names the template's top level starts without (Scoping.swift).
    let topLevelUndefined: [String]

    /// Parses `source`. Throws `ChatTemplateError.syntax` or `.unsupported` (with line and column) for a
    /// template outside the supported Jinja subset, before anything is rendered.
    public init(source: String, name: String = "default", file: String = "<template>", specialTokens: [SpecialToken] = [],
                limits: ChatTemplateLimits = ChatTemplateLimits()) throws(ChatTemplateError) {
        let size = source.utf8.count
        if size > limits.maxTemplateBytes {
            throw .limitExceeded(what: "the template size in bytes (\(size))", limit: limits.maxTemplateBytes, at: SourceLocation(line: 1, column: 1))
        }
        self.source = source
        self.name = name
        self.file = file
        self.specialTokens = specialTokens
        self.limits = limits
        let parsed = try onLargeStack { () throws(ChatTemplateError) in
            let (body, undefined) = try Parser.parse(source, limits: limits)
            return ParsedBody(body: body, undefined: undefined)
        }
        body = parsed.body
        topLevelUndefined = parsed.undefined
    }

    // MARK: rendering

    /// Renders a conversation of plain messages, as `apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt=…)`. `variables` adds template variables (e.g. `tools`, `documents`,
    /// `enable_thinking`, `date_string`) and overrides the special tokens; `now` is what `strftime_now()`
    /// reads (the local time by default).
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, variables: [String: Value] = [:],
                       now: BrokenDownTime? = nil) throws(ChatTemplateError) -> String {
        try render(conversation: messages.map { Value.dict(["role": .string($0.role), "content": .string($0.content)]) },
                   addGenerationPrompt: addGenerationPrompt, variables: variables, now: now)
    }

    /// Renders a conversation of message dicts (any keys: `tool_calls`, `reasoning_content`…), normalized as
    /// transformers does: keys whose value is None are dropped, and a message's reasoning is copied to
    /// `thinking` and `reasoning_content`.
    public func render(conversation: [Value], addGenerationPrompt: Bool, variables: [String: Value] = [:],
                       now: BrokenDownTime? = nil) throws(ChatTemplateError) -> String {
        guard !conversation.isEmpty else { throw .emptyConversation }
        var context: [String: Value] = [:]
        for t in specialTokens { context[t.name] = .string(t.content) }
        context["tools"] = Value.none
        context["documents"] = Value.none
        for (k, v) in variables { context[k] = v }
        context["messages"] = .list(conversation.map(ChatTemplate.normalize))
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        let (limits, body, undefined, time) = (self.limits, self.body, topLevelUndefined, now ?? BrokenDownTime.now())
        let variables = context
        return try onLargeStack { () throws(ChatTemplateError) in
            try Evaluator(variables: variables, limits: limits, now: time, topLevelUndefined: undefined).render(body)
        }
    }

    /// Renders with exactly `variables` (no messages, special tokens or defaults added): jinja2's
    /// `Template.render(**variables)`, for tests of the interpreter itself.
    func render(variables: [String: Value], now: BrokenDownTime) throws(ChatTemplateError) -> String {
        let (limits, body, undefined) = (self.limits, self.body, topLevelUndefined)
        return try onLargeStack { () throws(ChatTemplateError) in
            try Evaluator(variables: variables, limits: limits, now: now, topLevelUndefined: undefined).render(body)
        }
    }

    /// transformers' `_normalize_chat_messages` and `_alias_reasoning_fields`.
    static func normalize(_ message: Value) -> Value {
        guard case .dict(let d) = message else { return message }
        var out = ValueDict()
        for (k, v) in d.pairs where !v.isNone { try? out.set(k, v) }
        for field in ["reasoning_content", "thinking", "reasoning"] {
            guard let r = out[field], !r.isNone else { continue }
            var aliased = ValueDict()
            aliased.set("thinking", r)
            for (k, v) in out.pairs { try? aliased.set(k, v) }
            aliased.set("reasoning_content", r)
            return .dict(aliased)
        }
        return .dict(out)
    }

    // MARK: finding a model's template

    /// The template file transformers reads first, relative to the model folder (the "default" template).
    public static let templateFile = "chat_template.jinja"
    /// The folder of more named templates (`<name>.jinja`).
    public static let additionalTemplatesDirectory = "additional_chat_templates"
    /// The tokenizer configuration: the `chat_template` field and the special tokens.
    public static let configFile = "tokenizer_config.json"
    /// The legacy special-token file, read when tokenizer_config.json has no `added_tokens_decoder`.
    public static let legacySpecialTokensFile = "special_tokens_map.json"
    /// The largest tokenizer_config.json read (it may hold the whole added-tokens table).
    public static let maxConfigBytes = 64 << 20

    /// Loads the chat template of a model folder. `name` picks one of several named templates (nil: the
    /// "default" one, or "tool_use" when `forTools` and the folder has one, as transformers chooses).
    public static func load(modelDirectory: URL, name: String? = nil, forTools: Bool = false,
                            limits: ChatTemplateLimits = ChatTemplateLimits()) throws(ChatTemplateError) -> ChatTemplate {
        let found = try templates(modelDirectory: modelDirectory, limits: limits)
        let chosen: String
        if let name {
            chosen = name
        } else if forTools, found.templates["tool_use"] != nil, found.isNamedList {
            chosen = "tool_use"
        } else {
            chosen = "default"
        }
        guard let entry = found.templates[chosen] else {
            throw .templateNotFound(name: chosen, file: found.file, available: found.templates.keys.sorted())
        }
        return try ChatTemplate(source: entry.source, name: chosen, file: entry.file, specialTokens: found.specialTokens, limits: limits)
    }

    /// The names of the templates a model folder holds ("default" for a single template).
    public static func availableTemplates(modelDirectory: URL) throws(ChatTemplateError) -> [String] {
        try templates(modelDirectory: modelDirectory, limits: ChatTemplateLimits()).templates.keys.sorted()
    }

    private struct Found {
        var templates: [String: (source: String, file: String)]
        var isNamedList: Bool
        var file: String
        var specialTokens: [SpecialToken]
    }

    private static func templates(modelDirectory dir: URL, limits: ChatTemplateLimits) throws(ChatTemplateError) -> Found {
        let configPath = dir.appendingPathComponent(configFile).path
        let jinjaPath = dir.appendingPathComponent(templateFile).path
        let extraDir = dir.appendingPathComponent(additionalTemplatesDirectory)
        let fm = FileManager.default
        let config: JSONValue? = fm.fileExists(atPath: configPath) ? try readJSON(configPath) : nil
        if let config, config.members == nil {
            throw .invalidFile(file: configPath, reason: "is \(config.typeName), expected a JSON object")
        }
        var found = Found(templates: [:], isNamedList: false, file: dir.path, specialTokens: [])
        if fm.fileExists(atPath: jinjaPath) {
            found.templates["default"] = (try readText(jinjaPath, limit: limits.maxTemplateBytes), jinjaPath)
            found.file = jinjaPath
        }
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: extraDir.path, isDirectory: &isDirectory), isDirectory.boolValue {
            let names = ((try? fm.contentsOfDirectory(atPath: extraDir.path)) ?? []).filter { $0.hasSuffix(".jinja") }.sorted()
            for fileName in names {
                let path = extraDir.appendingPathComponent(fileName).path
                found.templates[String(fileName.dropLast(".jinja".count))] = (try readText(path, limit: limits.maxTemplateBytes), path)
                if found.templates.count == 1 { found.file = extraDir.path }
            }
        }
        found.isNamedList = !(found.templates.count == 1 && found.templates["default"] != nil) && !found.templates.isEmpty
        if found.templates.isEmpty, let field = config?["chat_template"], !field.isNull {
            found.file = configPath
            switch field {
            case .string(let s):
                found.templates["default"] = (s, configPath)
            case .array(let items):
                for (i, item) in items.enumerated() {
                    guard let n = item["name"]?.string, let t = item["template"]?.string else {
                        throw .invalidFile(file: configPath, reason: "chat_template[\(i)] is not an object with string fields \"name\" and \"template\"")
                    }
                    found.templates[n] = (t, configPath)
                }
                found.isNamedList = true
            case .object(let members):
                for (n, t) in members {
                    guard let text = t.string else { throw .invalidFile(file: configPath, reason: "chat_template[\(pythonRepr(n))] is not a string") }
                    found.templates[n] = (text, configPath)
                }
                found.isNamedList = true
            default:
                throw .invalidFile(file: configPath, reason: "chat_template is \(field.typeName), expected a string or a list of {name, template}")
            }
        }
        if found.templates.isEmpty {
            throw .noTemplate(directory: dir.path, searched: [templateFile, additionalTemplatesDirectory + "/*.jinja",
                                                              configFile + " (its \"chat_template\" field)"])
        }
        if let config {
            let legacyPath = dir.appendingPathComponent(legacySpecialTokensFile).path
            var legacy: JSONValue? = nil
            if config["added_tokens_decoder"] == nil, fm.fileExists(atPath: legacyPath) { legacy = try readJSON(legacyPath) }
            found.specialTokens = try specialTokens(config: config, legacy: legacy, file: configPath)
        }
        return found
    }

    /// The names of the special tokens transformers always passes when set, in its order.
    public static let standardSpecialTokens = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]

    /// transformers' `special_tokens_map` from tokenizer_config.json (and, for folders without an
    /// `added_tokens_decoder`, the legacy special_tokens_map.json, whose values win).
    static func specialTokens(config: JSONValue, legacy: JSONValue?, file: String) throws(ChatTemplateError) -> [SpecialToken] {
        var values: [(String, JSONValue)] = config.members ?? []
        for (k, v) in legacy?.members ?? [] {
            if let i = values.firstIndex(where: { $0.0 == k }) { values[i].1 = v } else { values.append((k, v)) }
        }
        func content(_ v: JSONValue) -> String? {
            if let s = v.string { return s }
            return v["content"]?.string
        }
        var out: [SpecialToken] = []
        for key in standardSpecialTokens {
            guard let v = values.first(where: { $0.0 == key })?.1, !v.isNull else { continue }
            guard let c = content(v) else {
                throw .invalidFile(file: file, reason: "\(key) is \(v.typeName), expected a string or an AddedToken object with a \"content\" string")
            }
            out.append(SpecialToken(name: key, content: c))
        }
        for (key, v) in values where key.hasSuffix("_token") && !standardSpecialTokens.contains(key) {
            if let s = v.string { out.append(SpecialToken(name: key, content: s)) }
        }
        if let extra = values.first(where: { $0.0 == "extra_special_tokens" })?.1.members {
            for (key, v) in extra {
                guard let c = content(v) else { continue }
                if let i = out.firstIndex(where: { $0.name == key }) { out[i] = SpecialToken(name: key, content: c) } else { out.append(SpecialToken(name: key, content: c)) }
            }
        }
        return out
    }

    private static func readJSON(_ path: String) throws(ChatTemplateError) -> JSONValue {
        do {
            return try JSONFile.parse(path: path, limit: maxConfigBytes)
        } catch {
            throw .invalidFile(file: path, reason: error.reason)
        }
    }

    private static func readText(_ path: String, limit: Int) throws(ChatTemplateError) -> String {
        let bytes: [UInt8]
        do {
            bytes = try JSONFile.contents(path: path, limit: limit)
        } catch {
            throw .invalidFile(file: path, reason: error.reason)
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .invalidFile(file: path, reason: "is not valid UTF-8")
        }
        return text
    }
}

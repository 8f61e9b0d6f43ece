// Finding a model folder's chat template as transformers 5.24 does (tokenization_utils_base.py:
// from_pretrained / _from_pretrained / get_chat_template): chat_template.jinja and
// additional_chat_templates/*.jinja before the tokenizer_config.json field, a named list chosen by name, and
// the special tokens of tokenizer_config.json. The goldens check the same on the 20 fixture folders with
// transformers' own loader; these cases cover the layouts the fixtures do not.
import Foundation
import Testing
@testable import ChatTemplate

@Suite("chat-template loading")
struct LoaderTests {
    /// A fresh folder with the given files (relative path → text).
    private func folder(_ files: [String: String]) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpiscope-chat-\(UUID().uuidString)")
        for (name, text) in files {
            let url = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    private func loadError(_ dir: URL, name: String? = nil) -> ChatTemplateError? {
        do {
            _ = try ChatTemplate.load(modelDirectory: dir, name: name)
            return nil
        } catch {
            return error
        }
    }

    private let hi = [ChatMessage(role: "user", content: "hi")]

    @Test("chat_template.jinja wins over the tokenizer_config.json field")
    func jinjaFileFirst() throws {
        let dir = try folder(["chat_template.jinja": "file:{{ messages[0].content }}\n",
                              "tokenizer_config.json": #"{"chat_template": "field", "bos_token": "<s>"}"#])
        let t = try ChatTemplate.load(modelDirectory: dir)
        #expect(t.name == "default")
        #expect(t.file.hasSuffix("chat_template.jinja"))
        #expect(t.source == "file:{{ messages[0].content }}\n")
        #expect(try t.render(messages: hi, addGenerationPrompt: false) == "file:hi")
        #expect(t.specialTokens == [SpecialToken(name: "bos_token", content: "<s>")])
    }

    @Test("a named list: chosen by name, 'default' without one, an error listing the names otherwise")
    func namedList() throws {
        let dir = try folder(["tokenizer_config.json": #"""
            {"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}, {"name": "rag", "template": "R"}]}
            """#])
        #expect(try ChatTemplate.load(modelDirectory: dir).source == "D")
        #expect(try ChatTemplate.load(modelDirectory: dir, name: "rag").source == "R")
        #expect(try ChatTemplate.load(modelDirectory: dir, forTools: true).source == "T")
        #expect(try ChatTemplate.availableTemplates(modelDirectory: dir) == ["default", "rag", "tool_use"])
        let e = loadError(dir, name: "chat")
        guard case .templateNotFound(let name, let file, let available)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(name == "chat")
        #expect(file.hasSuffix("tokenizer_config.json"))
        #expect(available == ["default", "rag", "tool_use"])
        #expect(e!.description.contains("tokenizer_config.json has no chat template named 'chat'; available: 'default', 'rag', 'tool_use'"))
    }

    @Test("a named list without 'default' needs a name")
    func noDefault() throws {
        let dir = try folder(["tokenizer_config.json": #"{"chat_template": [{"name": "a", "template": "A"}]}"#])
        guard case .templateNotFound("default", _, ["a"])? = loadError(dir) else { Issue.record("\(String(describing: loadError(dir)))"); return }
        #expect(try ChatTemplate.load(modelDirectory: dir, name: "a").source == "A")
    }

    @Test("additional_chat_templates/*.jinja are named templates beside chat_template.jinja")
    func additionalTemplates() throws {
        let dir = try folder(["chat_template.jinja": "D", "additional_chat_templates/tool_use.jinja": "T",
                              "tokenizer_config.json": #"{"chat_template": "ignored"}"#])
        #expect(try ChatTemplate.availableTemplates(modelDirectory: dir) == ["default", "tool_use"])
        #expect(try ChatTemplate.load(modelDirectory: dir, name: "tool_use").source == "T")
        #expect(try ChatTemplate.load(modelDirectory: dir).source == "D")
    }

    @Test("a folder without a template says which files it looked for")
    func noTemplate() throws {
        let dir = try folder(["tokenizer_config.json": #"{"bos_token": "<s>"}"#])
        guard case .noTemplate(_, let searched)? = loadError(dir) else { Issue.record("\(String(describing: loadError(dir)))"); return }
        #expect(searched.contains("chat_template.jinja"))
        let empty = try folder([:])
        guard case .noTemplate? = loadError(empty) else { Issue.record("empty folder"); return }
    }

    @Test("special tokens: strings and AddedToken dicts, null skipped, other *_token strings included")
    func specialTokens() throws {
        let dir = try folder(["tokenizer_config.json": #"""
            {"add_bos_token": true, "bos_token": {"__type": "AddedToken", "content": "<|begin|>", "lstrip": false},
             "eos_token": "<|end|>", "unk_token": null, "pad_token": "<pad>", "image_token": "<img>",
             "audio_token": {"content": "<audio>"}, "chat_template": "{{ bos_token }}{{ image_token }}{{ eos_token }}"}
            """#])
        let t = try ChatTemplate.load(modelDirectory: dir)
        #expect(t.specialTokens.map(\.name) == ["bos_token", "eos_token", "pad_token", "image_token"])
        #expect(try t.render(messages: hi, addGenerationPrompt: true) == "<|begin|><img><|end|>")
    }

    @Test("special_tokens_map.json overrides tokenizer_config.json only when it has no added_tokens_decoder")
    func legacySpecialTokens() throws {
        let legacy = try folder(["tokenizer_config.json": #"{"bos_token": "<a>", "chat_template": "{{ bos_token }}"}"#,
                                 "special_tokens_map.json": #"{"bos_token": {"content": "<b>"}}"#])
        #expect(try ChatTemplate.load(modelDirectory: legacy).render(messages: hi, addGenerationPrompt: false) == "<b>")
        let modern = try folder(["tokenizer_config.json": #"{"bos_token": "<a>", "added_tokens_decoder": {}, "chat_template": "{{ bos_token }}"}"#,
                                 "special_tokens_map.json": #"{"bos_token": "<b>"}"#])
        #expect(try ChatTemplate.load(modelDirectory: modern).render(messages: hi, addGenerationPrompt: false) == "<a>")
    }

    @Test("broken files are errors that name the file", arguments: [
        ["tokenizer_config.json": "{not json"],
        ["tokenizer_config.json": "[]"],
        ["tokenizer_config.json": #"{"chat_template": 3}"#],
        ["tokenizer_config.json": #"{"chat_template": [{"name": "x"}]}"#],
        ["tokenizer_config.json": #"{"chat_template": "x", "bos_token": 5}"#],
    ])
    func brokenFiles(_ files: [String: String]) throws {
        let dir = try folder(files)
        guard case .invalidFile(let file, _)? = loadError(dir) else { Issue.record("\(String(describing: loadError(dir)))"); return }
        #expect(file.hasSuffix("tokenizer_config.json"))
    }

    @Test("a template file that is not UTF-8 is refused")
    func notUTF8() throws {
        let dir = try folder([:])
        try Data([0x7b, 0x7b, 0xff, 0x7d, 0x7d]).write(to: dir.appendingPathComponent("chat_template.jinja"))
        guard case .invalidFile(_, let reason)? = loadError(dir) else { Issue.record("\(String(describing: loadError(dir)))"); return }
        #expect(reason.contains("UTF-8"))
    }

    @Test("a template with a syntax error fails when loaded, with its line and column")
    func syntaxErrorOnLoad() throws {
        let dir = try folder(["chat_template.jinja": "{% for m in messages %}\n{{ m.content | nosuchfilter }}\n{% endfor %}"])
        guard case .unsupported(_, let at)? = loadError(dir) else { Issue.record("\(String(describing: loadError(dir)))"); return }
        #expect(at == SourceLocation(line: 2, column: 16))
    }
}

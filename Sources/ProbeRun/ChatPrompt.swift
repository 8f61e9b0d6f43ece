// `--template chat`: a probe prompted the way an instruct checkpoint was trained, through the checkpoint's
// own chat template (ChatTemplate: chat_template.jinja or tokenizer_config.json's chat_template, rendered
// as transformers' apply_chat_template). The conversation is an optional system message (--system) and
// one user message holding the context and the question in the paper's wording (Goyal, Baek et al.,
// Appendix B.3: "Background: {context} Question: {question}", or --user-template FILE), with the
// generation prompt added. The rendering is done once with markers in place of the context and the
// question, and cut there into a prompt template (PromptTemplate.cut), so spans are found in the rendered
// prompt exactly as for the other templates. The rendered text already holds the model's special tokens,
// so prompts are tokenized without adding the tokenizer's own (as apply_chat_template(tokenize=True)).
import ChatTemplate
import Checkpoints
import Foundation
import ProbeKit
import TrajectoryJob

public enum ChatPrompt {
    /// The user message's content by default (the paper's wording, as the alpaca and tulu templates use it).
    public static let defaultUserContent = "Background: {context} Question: {question}"
    /// Private-use characters that no probe text contains, where the context and the question go.
    static let contextMarker = "\u{F0000}cpiscope-context\u{F0001}", questionMarker = "\u{F0000}cpiscope-question\u{F0001}"
    static let systemMarker = "\u{F0000}cpiscope-system\u{F0001}"

    /// The folder whose chat template a job over `refs` uses: the one holding the tokenizer (--tokenizer's
    /// folder, else the first checkpoint's, the trajectory root or the base), as transformers keeps
    /// tokenizer_config.json and chat_template.jinja beside tokenizer.json.
    public static func folder(refs: [CheckpointRef], tokenizer: URL?, trajectoryRoot: URL?, base: URL?) -> URL? {
        guard let first = refs.first else { return nil }
        if let t = tokenizer {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: t.path, isDirectory: &isDirectory) && isDirectory.boolValue
                ? t : t.deletingLastPathComponent()
        }
        return TrajectoryJob.tokenizerURL(for: first, explicit: nil, trajectoryRoot: trajectoryRoot, bases: [base].compactMap { $0 })
    }

    /// Where a chat template came from, for run files: its file, name and SHA-256.
    public static func origin(_ chat: ChatTemplate) -> String {
        "\(chat.file) (chat template '\(chat.name)', sha256:\(ContentHash.sha256(Array(chat.source.utf8))))"
    }

    /// The file a folder's chat template is read from, for messages: chat_template.jinja when present.
    public static func templateFile(in folder: URL) -> String {
        let jinja = folder.appendingPathComponent(ChatTemplate.templateFile)
        return FileManager.default.fileExists(atPath: jinja.path) ? jinja.path : folder.appendingPathComponent(ChatTemplate.configFile).path
    }

    /// The folder's chat template; a template that does not parse is an error naming its file.
    public static func load(folder: URL, name: String?) throws(ChatTemplateError) -> ChatTemplate {
        do {
            return try ChatTemplate.load(modelDirectory: folder, name: name)
        } catch {
            switch error {
            case let .syntax(what, at):
                throw .invalidFile(file: templateFile(in: folder), reason: "chat template syntax error at \(at): \(what)")
            case let .unsupported(construct, at):
                throw .invalidFile(file: templateFile(in: folder), reason: "\(construct) at \(at) is outside the Jinja subset cpiscope renders (docs/probes-and-templates.md, \"Chat templates\")")
            default:
                throw error
            }
        }
    }

    /// The prompt template of `--template chat` for the model in `folder`.
    public static func template(folder: URL, templateName: String?, system: String?, userTemplate: URL?, contextOnly: Bool) throws -> PromptTemplate {
        let chat = try load(folder: folder, name: templateName)
        var user = try userTemplate.map { try PromptTemplate.load(url: $0) }
            ?? PromptTemplate.parse(defaultUserContent, name: "chat user message")
        if contextOnly {
            user = try PromptTemplate.parse(user.text + " " + PromptTemplate.contextOnlyInstruction, name: user.name)
        }
        var messages: [ChatMessage] = []
        // The system message is rendered as a marker too, so that its text becomes the `system` span.
        if system != nil { messages.append(ChatMessage(role: "system", content: systemMarker)) }
        messages.append(ChatMessage(role: "user", content: user.rendered(context: contextMarker, question: questionMarker)))
        let rendered = try chat.render(messages: messages, addGenerationPrompt: true)
        guard rendered.contains(contextMarker) && rendered.contains(questionMarker) else {
            throw ChatTemplateError.invalidFile(file: chat.file, reason: "the chat template '\(chat.name)' does not print the user message's text as given, so the probe's context and question would not reach the model")
        }
        return try PromptTemplate.cut(rendered: rendered, contextMarker: contextMarker, questionMarker: questionMarker,
                                      system: system.map { (systemMarker, $0) }, name: "chat" + (chat.name == "default" ? "" : ":" + chat.name) + (contextOnly ? "-context-only" : ""),
                                      specialTokensInText: true,
                                      origin: origin(chat))
    }
}

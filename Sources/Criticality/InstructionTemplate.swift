// The prompt an example is scored under, with its context and without it (docs/criticality.md lists the
// exact texts). The built-in alpaca texts are Stanford Alpaca's two prompts (`prompt_input`,
// `prompt_no_input` in its train.py); tulu follows open-instruct's `<|user|>`/`<|assistant|>` turns, with
// the input appended to the instruction after a blank line (as open-instruct converts Alpaca rows).
import ChatTemplate
import Foundation
import StrictJSON

/// `--template chat`: a checkpoint's own chat template scores an example as the conversation
/// [system?, user, assistant]. The user message is the instruction, then a blank line and the context
/// when there is one (as the tulu template and open-instruct's conversion of Alpaca rows); the
/// assistant message is the response. The prompt is the rendering of [system?, user] with the
/// generation prompt; the scored tokens are every token of the full conversation's rendering after the
/// prompt's: the response and the template's end-of-turn tokens after it (`<|im_end|>`, `</s>`…), as
/// TRL's completion-only loss labels them. Both renderings are tokenized without the tokenizer's own
/// special tokens (the template writes them), and no EOS is appended.
public struct ChatInstructionFormat: Sendable, Equatable {
    public let template: ChatTemplate
    public let system: String?
    /// The template's file, name and SHA-256, for the run file.
    public let origin: String

    public init(template: ChatTemplate, system: String?, origin: String) {
        self.template = template
        self.system = system
        self.origin = origin
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.template.source == b.template.source && a.template.name == b.template.name && a.system == b.system
    }

    /// The user message of an example.
    static func userMessage(_ e: InstructionExample, withContext: Bool) -> String {
        withContext ? e.instruction + "\n\n" + (e.context ?? "") : e.instruction
    }

    /// The prompt (with the generation prompt) and the full conversation of an example, rendered.
    func render(_ e: InstructionExample, withContext: Bool) throws -> (prompt: String, full: String) {
        var messages = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        messages.append(ChatMessage(role: "user", content: Self.userMessage(e, withContext: withContext)))
        let prompt = try template.render(messages: messages, addGenerationPrompt: true)
        let full = try template.render(messages: messages + [ChatMessage(role: "assistant", content: e.response)], addGenerationPrompt: false)
        return (prompt, full)
    }
}

public struct InstructionTemplate: Sendable, Equatable {
    /// `alpaca`, `tulu`, `plain`, or the template file's name.
    public var name: String
    /// Text with `{instruction}` and `{context}`.
    public var withContext: String
    /// Text with `{instruction}` only.
    public var withoutContext: String
    /// Put between the prompt and the response (part of the response's side of the split).
    public var separator: String
    /// Set for `--template chat`: the texts above are then unused (`ChatInstructionFormat`).
    public var chat: ChatInstructionFormat? = nil

    /// `--template chat` with the model's chat template.
    public static func chat(_ format: ChatInstructionFormat) -> InstructionTemplate {
        var t = InstructionTemplate(name: "chat" + (format.template.name == "default" ? "" : ":" + format.template.name),
                                    withContext: "", withoutContext: "", separator: "")
        t.chat = format
        return t
    }

    public static let builtinNames = ["alpaca", "tulu", "plain"]
    /// Largest template file accepted, in bytes (64 KiB).
    public static let maxFileBytes = 64 << 10

    public static func builtin(_ name: String) -> InstructionTemplate? {
        switch name {
        case "alpaca":
            return InstructionTemplate(
                name: "alpaca",
                withContext: "Below is an instruction that describes a task, paired with an input that provides further context. "
                    + "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{context}\n\n### Response:",
                withoutContext: "Below is an instruction that describes a task. "
                    + "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:",
                separator: "")
        case "tulu":
            return InstructionTemplate(name: "tulu", withContext: "<|user|>\n{instruction}\n\n{context}\n<|assistant|>\n",
                                       withoutContext: "<|user|>\n{instruction}\n<|assistant|>\n", separator: "")
        case "plain":
            return InstructionTemplate(name: "plain", withContext: "Context: {context}\nQuestion: {instruction}\nAnswer:",
                                       withoutContext: "Question: {instruction}\nAnswer:", separator: " ")
        default: return nil
        }
    }

    public init(name: String, withContext: String, withoutContext: String, separator: String) {
        self.name = name
        self.withContext = withContext
        self.withoutContext = withoutContext
        self.separator = separator
    }

    /// A template file: `{"with_context": "...", "without_context": "...", "separator": ""}` (separator
    /// optional, default ""). `with_context` needs `{instruction}` and `{context}`, `without_context`
    /// `{instruction}` and no `{context}`; `{{`/`}}` are literal braces; any other placeholder is an error.
    public static func load(url: URL) throws -> InstructionTemplate {
        let path = url.path
        let doc: JSONValue
        do { doc = try JSONFile.parse(path: path, limit: maxFileBytes) } catch {
            throw CriticalityError.templateFile(path: path, detail: "the template file \(error.reason)")
        }
        guard let members = doc.members else { throw CriticalityError.templateFile(path: path, detail: "the template file is not a JSON object") }
        for (k, _) in members where !["with_context", "without_context", "separator"].contains(k) {
            throw CriticalityError.templateFile(path: path, detail: "unknown key \(JSONValue.string(k).jsonText)")
        }
        func text(_ key: String, required: Bool) throws -> String? {
            guard let v = doc[key] else {
                if required { throw CriticalityError.templateFile(path: path, detail: "missing '\(key)'") }
                return nil
            }
            guard let s = v.string else { throw CriticalityError.templateFile(path: path, detail: "'\(key)' is \(v.typeName), not a string") }
            return s
        }
        let t = InstructionTemplate(name: url.lastPathComponent, withContext: try text("with_context", required: true)!,
                                    withoutContext: try text("without_context", required: true)!,
                                    separator: try text("separator", required: false) ?? "")
        do {
            _ = try t.render(t.withContext, instruction: "", context: "", needsContext: true)
            _ = try t.render(t.withoutContext, instruction: "", context: nil, needsContext: false)
        } catch let e as TemplateSyntaxError {
            throw CriticalityError.templateFile(path: path, detail: e.message)
        }
        return t
    }

    struct TemplateSyntaxError: Error { var message: String }

    /// The prompt of `example` with its context (nil when it has none).
    public func promptWithContext(_ e: InstructionExample) -> String? {
        guard let c = e.context else { return nil }
        return try? render(withContext, instruction: e.instruction, context: c, needsContext: true)
    }

    /// The prompt of `example` without its context.
    public func promptWithoutContext(_ e: InstructionExample) -> String {
        (try? render(withoutContext, instruction: e.instruction, context: nil, needsContext: false)) ?? ""
    }

    /// Substitutes the placeholders in one pass (a context holding "{instruction}" stays as written).
    func render(_ text: String, instruction: String, context: String?, needsContext: Bool) throws -> String {
        var out = ""
        var sawInstruction = false, sawContext = false
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            let next = text.index(after: i)
            if c == "{" {
                if next < text.endIndex, text[next] == "{" { out.append("{"); i = text.index(after: next); continue }
                guard let close = text[next...].firstIndex(where: { $0 == "}" || $0 == "{" }), text[close] == "}" else {
                    throw TemplateSyntaxError(message: "a '{' without its '}' (write '{{' for a literal brace)")
                }
                switch text[next..<close] {
                case "instruction": out += instruction; sawInstruction = true
                case "context" where needsContext: out += context ?? ""; sawContext = true
                case let p: throw TemplateSyntaxError(message: "unknown placeholder " + JSONValue.string("{\(p)}").jsonText + (p == "context" ? " in without_context" : ""))
                }
                i = text.index(after: close)
            } else if c == "}" {
                guard next < text.endIndex, text[next] == "}" else { throw TemplateSyntaxError(message: "a lone '}' (write '}}' for a literal brace)") }
                out.append("}")
                i = text.index(after: next)
            } else {
                out.append(c)
                i = next
            }
        }
        if !sawInstruction { throw TemplateSyntaxError(message: "no {instruction} placeholder") }
        if needsContext && !sawContext { throw TemplateSyntaxError(message: "with_context has no {context} placeholder") }
        return out
    }

    /// A one-line description for the output's attributes.
    public var jsonDescription: String {
        if let chat {
            return "{\"name\": \(JSONValue.string(name).jsonText), \"chat_template\": \(JSONValue.string(chat.origin).jsonText), "
                + "\"system\": \(chat.system.map { JSONValue.string($0).jsonText } ?? "null"), "
                + "\"user\": \(JSONValue.string("{instruction}\n\n{context}").jsonText), \"scored\": \"every token after the generation prompt: the response and the template's end-of-turn tokens\"}"
        }
        return "{\"name\": \(JSONValue.string(name).jsonText), \"with_context\": \(JSONValue.string(withContext).jsonText), "
            + "\"without_context\": \(JSONValue.string(withoutContext).jsonText), \"separator\": \(JSONValue.string(separator).jsonText)}"
    }
}

// PromptTemplate: prompt texts with {context} and {question} placeholders.
//
// Built-in templates (exact texts; "\n" is a newline):
//   plain   Context: {context}\nQuestion: {question}\nAnswer:
//   alpaca  the Alpaca instruction template with "Background: {context} Question: {question}" as the
//           instruction (Goyal, Baek et al., Appendix B.3):
//           Below is an instruction that describes a task. Write a response that appropriately
//           completes the request.\n\n### Instruction:\nBackground: {context} Question: {question}\n\n### Response:
//   tulu    <|user|>\nBackground: {context} Question: {question}\n<|assistant|>\n
// The context-only variant adds the sentence `contextOnlyInstruction`:
//   plain   on its own line after the question: ...Question: {question}\n<sentence>\nAnswer:
//   alpaca, tulu   at the end of the instruction, after one space: ...Question: {question} <sentence>
// Template syntax: {context} and {question} are the only placeholders, each required at least once;
// "{{" and "}}" are literal braces; any other {name}, or a lone brace, is an error.

import Foundation

public struct PromptTemplate: Sendable, Equatable {
    enum Segment: Sendable, Equatable {
        case literal(String)
        case context
        case question
        /// The system prompt's text (a chat template's system message): a literal whose range is a span.
        case system(String)
    }

    /// The template's name (`plain`, `alpaca-context-only`, or the template file's name).
    public let name: String
    /// The exact template text, with `{context}`, `{question}` and `{{`/`}}` escapes as written.
    public let text: String
    let segments: [Segment]
    /// True when the rendered text already holds the model's special tokens (a chat template renders
    /// `<s>`, `<|im_start|>`…): the prompt is then tokenized without the tokenizer's own special tokens,
    /// as transformers' `apply_chat_template(tokenize=True)` does. False for the built-in and file templates.
    public private(set) var specialTokensInText = false
    /// Where the template came from, for the run file ("" for the built-ins and template files): e.g.
    /// "chat_template.jinja of /models/x (name default, sha256:…)".
    public private(set) var origin = ""

    /// The sentence the context-only variants add.
    public static let contextOnlyInstruction = "Answer the question based on the input context only."
    /// Names accepted by `builtin(_:contextOnly:)`.
    public static let builtinNames = ["plain", "alpaca", "tulu"]
    /// Largest template file accepted, in bytes (64 KiB).
    public static let maxFileBytes = 64 << 10

    static let alpacaHeader = "Below is an instruction that describes a task. "
        + "Write a response that appropriately completes the request.\n\n### Instruction:\n"

    public static let plain = builtin(name: "plain", contextOnly: false)
    public static let alpaca = builtin(name: "alpaca", contextOnly: false)
    public static let tulu = builtin(name: "tulu", contextOnly: false)

    /// A built-in template by name (`plain`, `alpaca`, `tulu`), or nil for an unknown name.
    public static func builtin(_ name: String, contextOnly: Bool = false) -> PromptTemplate? {
        guard builtinNames.contains(name) else { return nil }
        return builtin(name: name, contextOnly: contextOnly)
    }

    private static func builtin(name: String, contextOnly: Bool) -> PromptTemplate {
        let extra = contextOnly ? " " + contextOnlyInstruction : ""
        let segments: [Segment]
        switch name {
        case "alpaca":
            segments = [.literal(alpacaHeader + "Background: "), .context, .literal(" Question: "), .question,
                        .literal(extra + "\n\n### Response:")]
        case "tulu":
            segments = [.literal("<|user|>\nBackground: "), .context, .literal(" Question: "), .question,
                        .literal(extra + "\n<|assistant|>\n")]
        default:
            let line = contextOnly ? "\n" + contextOnlyInstruction : ""
            segments = [.literal("Context: "), .context, .literal("\nQuestion: "), .question,
                        .literal(line + "\nAnswer:")]
        }
        return PromptTemplate(name: contextOnly ? name + "-context-only" : name, segments: segments)
    }

    init(name: String, segments: [Segment]) {
        self.name = name
        self.segments = segments
        self.text = segments.map { seg -> String in
            switch seg {
            case .context: return "{context}"
            case .question: return "{question}"
            case let .literal(s), let .system(s): return s.replacingOccurrences(of: "{", with: "{{")
                .replacingOccurrences(of: "}", with: "}}")
            }
        }.joined()
    }

    /// Parses template text (syntax in the file header). Throws `ProbeKitError` naming the template
    /// and the offending placeholder or brace (offsets in Unicode scalars of `text`).
    public static func parse(_ text: String, name: String) throws -> PromptTemplate {
        let s = Array(text.unicodeScalars)
        var segments: [Segment] = []
        var literal = String.UnicodeScalarView()
        func flush() {
            if !literal.isEmpty { segments.append(.literal(String(literal))); literal = String.UnicodeScalarView() }
        }
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "{" {
                if i + 1 < s.count, s[i + 1] == "{" { literal.append("{"); i += 2; continue }
                guard let close = s[(i + 1)...].firstIndex(where: { $0 == "}" || $0 == "{" }), s[close] == "}" else {
                    throw ProbeKitError.templateUnbalancedBrace(template: name, brace: "{", offset: i)
                }
                let placeholder = TextMatch.string(s, (i + 1)..<close)
                switch placeholder {
                case "context": flush(); segments.append(.context)
                case "question": flush(); segments.append(.question)
                default:
                    throw ProbeKitError.templateUnknownPlaceholder(template: name, placeholder: placeholder, offset: i)
                }
                i = close + 1
            } else if c == "}" {
                guard i + 1 < s.count, s[i + 1] == "}" else {
                    throw ProbeKitError.templateUnbalancedBrace(template: name, brace: "}", offset: i)
                }
                literal.append("}")
                i += 2
            } else {
                literal.append(c)
                i += 1
            }
        }
        flush()
        for (needed, seg) in [("context", Segment.context), ("question", Segment.question)]
        where !segments.contains(seg) {
            throw ProbeKitError.templateMissingPlaceholder(template: name, placeholder: needed)
        }
        return PromptTemplate(name: name, text: text, segments: segments)
    }

    private init(name: String, text: String, segments: [Segment]) {
        self.name = name
        self.text = text
        self.segments = segments
    }

    /// A template cut out of an already rendered prompt: `rendered` holds `contextMarker` and
    /// `questionMarker` where the context and the question go (each at least once), and the rest is kept
    /// verbatim. This is how a chat template becomes a prompt template: render the conversation with the
    /// markers as the probe's text, then cut. Throws `templateMissingPlaceholder` naming the marker the
    /// rendering lost (a chat template that drops or rewrites the user's message).
    /// `system`, when given, is the marker the system message was rendered with and the text it stands for:
    /// its occurrences become `system` segments (the `system` span).
    public static func cut(rendered: String, contextMarker: String, questionMarker: String,
                           system: (marker: String, text: String)? = nil, name: String,
                           specialTokensInText: Bool, origin: String) throws -> PromptTemplate {
        var segments: [Segment] = []
        var rest = Substring(rendered)
        while !rest.isEmpty {
            let c = rest.range(of: contextMarker), q = rest.range(of: questionMarker)
            let s = system.flatMap { rest.range(of: $0.marker) }
            guard let next = [c, q, s].compactMap({ $0 }).min(by: { $0.lowerBound < $1.lowerBound }) else {
                segments.append(.literal(String(rest))); break
            }
            if next.lowerBound > rest.startIndex { segments.append(.literal(String(rest[..<next.lowerBound]))) }
            segments.append(next == c ? .context : next == q ? .question : .system(system!.text))
            rest = rest[next.upperBound...]
        }
        for (needed, seg) in [("context", Segment.context), ("question", Segment.question)] where !segments.contains(seg) {
            throw ProbeKitError.templateMissingPlaceholder(template: name, placeholder: needed)
        }
        var t = PromptTemplate(name: name, segments: segments)
        t.specialTokensInText = specialTokensInText
        t.origin = origin
        return t
    }

    /// Loads a template file (`--template-file`): UTF-8, at most 64 KiB. One trailing newline
    /// ("\n" or "\r\n", as editors add) is removed; end the file with two to keep one.
    /// The template is named after the file's last path component.
    public static func load(url: URL) throws -> PromptTemplate {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw ProbeKitError.fileUnreadable(path: url.path, reason: "no such file")
        }
        let data = try ProbeSetLoader.readCapped(url: url, limit: maxFileBytes)
        guard var text = String(data: data, encoding: .utf8) else {
            throw ProbeKitError.notUTF8(path: url.path, location: "the template")
        }
        // "\r\n" is one Character in Swift, so one removeLast() drops either ending.
        if text.hasSuffix("\r\n") || text.hasSuffix("\n") { text.removeLast() }
        return try parse(text, name: url.lastPathComponent)
    }

    /// The template with `context` and `question` substituted.
    public func rendered(context: String, question: String) -> String { render(context: context, question: question).prompt }

    /// The rendered prompt and the scalar ranges where context and question were substituted.
    func render(context: String, question: String) -> (prompt: String, context: [Range<Int>], question: [Range<Int>], system: [Range<Int>]) {
        var out = String.UnicodeScalarView()
        var count = 0
        var contextRanges: [Range<Int>] = [], questionRanges: [Range<Int>] = [], systemRanges: [Range<Int>] = []
        let ctx = context.unicodeScalars, q = question.unicodeScalars
        let ctxCount = ctx.count, qCount = q.count
        for seg in segments {
            switch seg {
            case let .literal(s):
                out.append(contentsOf: s.unicodeScalars)
                count += s.unicodeScalars.count
            case let .system(s):
                out.append(contentsOf: s.unicodeScalars)
                let n = s.unicodeScalars.count
                if n > 0 { systemRanges.append(count..<(count + n)) }
                count += n
            case .context:
                out.append(contentsOf: ctx)
                contextRanges.append(count..<(count + ctxCount))
                count += ctxCount
            case .question:
                out.append(contentsOf: q)
                questionRanges.append(count..<(count + qCount))
                count += qCount
            }
        }
        return (String(out), contextRanges, questionRanges, systemRanges)
    }
}

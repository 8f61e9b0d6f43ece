// PromptBuilder: a probe through a template, with the character spans the attention measurements use.
//
// All spans are Range<Int> over the Unicode scalars of `BuiltPrompt.prompt`.
//   context         where {context} was substituted
//   question        where {question} was substituted
//   context_answer  every case-insensitive, word-bounded mention of the context answer inside the context
//   memory_mention  every such mention of the memorized answer inside the context
//   subject         mentions (in question and context) of the annotated subject, or of the phrases
//                   SubjectLocator finds (rules "capitalized-phrases-v1", then "shared-phrase-v1");
//                   `subjectSource` says which
//   bos, sink, other   token-level only (see TokenizedProbe): bos is position 0 when it is a special
//                   BOS token; sink is position 0 whatever its token; other is every position in no span
// A span that cannot be found is `.missing(reason)`, never guessed.
//
// The answer continuation (issue #4): the answer text appended to the prompt, with one space inserted
// when the prompt does not end in whitespace.

/// The span kinds of the attention measurement, in output order.
public enum SpanKind: String, CaseIterable, Sendable, Codable, Hashable {
    case context
    case subject
    case question
    case contextAnswer = "context_answer"
    case memoryMention = "memory_mention"
    /// The system prompt's text, where the template has one (`--template chat --system`).
    case system
    case bos
    /// Position 0, whatever its token: the attention sink (a special BOS token, or the first token of a
    /// template that opens with another special token such as ChatML's `<|im_start|>`, or a text token).
    case sink
    case other

    /// The kinds located in text (bos, sink and other are decided in token space).
    public static let textKinds: [SpanKind] = [.context, .subject, .question, .contextAnswer, .memoryMention, .system]
}

/// Whether a span was found; a missing span carries the reason.
public enum SpanStatus: Sendable, Equatable {
    case found
    case missing(reason: String)

    public var isFound: Bool { self == .found }
    public var reason: String? {
        if case let .missing(r) = self { return r }
        return nil
    }
}

/// Where a prompt's subject span came from.
public enum SubjectSource: Sendable, Equatable {
    /// The probe's `subject` field.
    case annotated(String)
    /// Phrases of the question found by a documented rule (`rule` names it).
    case located(rule: String, phrases: [String])
    /// No subject: neither annotated nor located.
    case missing(reason: String)

    /// `annotated`, `located` or `missing`, for output attributes.
    public var kind: String {
        switch self {
        case .annotated: return "annotated"
        case .located: return "located"
        case .missing: return "missing"
        }
    }
}

/// A probe rendered through a template, with character spans.
public struct BuiltPrompt: Sendable, Equatable {
    public let probeID: String
    public let templateName: String
    /// The prompt text (ends where the answer would start).
    public let prompt: String
    /// Number of Unicode scalars in `prompt`; every span lies in 0..<promptLength.
    public let promptLength: Int
    /// "" when the prompt ends in whitespace, else " ".
    public let separator: String
    /// prompt + separator + context answer.
    public let fullText: String
    /// prompt + separator + memorized answer.
    public let memoryFullText: String
    /// The context answer and the memorized answer, as appended.
    public let answer: String
    public let memoryAnswer: String
    /// Character spans of the text kinds (`SpanKind.textKinds`), sorted; empty when missing.
    public let spans: [SpanKind: [Range<Int>]]
    /// Status of each text kind.
    public let spanStatus: [SpanKind: SpanStatus]
    public let subjectSource: SubjectSource
    /// Whether tokenization adds the tokenizer's special tokens (false when the template's text holds
    /// them: `PromptTemplate.specialTokensInText`).
    public var addSpecialTokens = true

    /// The text of a span range (for checks and display).
    public func text(of range: Range<Int>) -> String {
        let s = Array(prompt.unicodeScalars)
        let r = max(0, min(range.lowerBound, s.count))..<max(0, min(range.upperBound, s.count))
        return TextMatch.string(s, r)
    }
}

public enum PromptBuilder {
    /// Names of the subject rules recorded in `SubjectSource.located`, in the order they are tried.
    public static let subjectRules = [SubjectLocator.capitalizedRule, SubjectLocator.sharedPhraseRule]

    /// Renders `probe` through `template` and locates its spans.
    /// Throws `ProbeKitError.contextNotInPrompt` when the context is not found verbatim in the prompt.
    public static func build(_ probe: Probe, template: PromptTemplate) throws -> BuiltPrompt {
        let rendered = template.render(context: probe.context, question: probe.question)
        let promptScalars = TextMatch.scalars(rendered.prompt)
        let contextScalars = TextMatch.scalars(probe.context)
        let questionScalars = TextMatch.scalars(probe.question)
        guard !rendered.context.isEmpty else {
            throw ProbeKitError.contextNotInPrompt(probeID: probe.id, template: template.name,
                                                   detail: "the template has no {context}")
        }
        for r in rendered.context {
            guard r.upperBound <= promptScalars.count, Array(promptScalars[r]) == contextScalars else {
                throw ProbeKitError.contextNotInPrompt(probeID: probe.id, template: template.name,
                                                       detail: "characters \(r) differ from the context")
            }
        }

        var spans: [SpanKind: [Range<Int>]] = [.context: rendered.context, .question: rendered.question]
        var status: [SpanKind: SpanStatus] = [.context: .found]
        status[.question] = rendered.question.isEmpty ? .missing(reason: "the template has no {question}") : .found

        let foldedContext = TextMatch.folded(contextScalars)
        let foldedQuestion = TextMatch.folded(questionScalars)
        func inContext(_ needle: String) -> [Range<Int>] {
            let local = TextMatch.mentions(of: needle, inFolded: foldedContext)
            return rendered.context.flatMap { base in local.map { (base.lowerBound + $0.lowerBound)..<(base.lowerBound + $0.upperBound) } }
        }
        func inQuestion(_ needle: String) -> [Range<Int>] {
            let local = TextMatch.mentions(of: needle, inFolded: foldedQuestion)
            return rendered.question.flatMap { base in local.map { (base.lowerBound + $0.lowerBound)..<(base.lowerBound + $0.upperBound) } }
        }

        let answerSpans = inContext(probe.answer)
        spans[.contextAnswer] = answerSpans
        status[.contextAnswer] = answerSpans.isEmpty
            ? .missing(reason: "the context answer '\(probe.answer)' does not occur in the context") : .found
        let memorySpans = inContext(probe.memoryAnswer)
        spans[.memoryMention] = memorySpans
        status[.memoryMention] = memorySpans.isEmpty
            ? .missing(reason: "the memorized answer '\(probe.memoryAnswer)' does not occur in the context") : .found

        let source: SubjectSource
        var subjectSpans: [Range<Int>] = []
        if let subject = probe.subject {
            source = .annotated(subject)
            subjectSpans = inQuestion(subject) + inContext(subject)
            status[.subject] = subjectSpans.isEmpty
                ? .missing(reason: "the annotated subject '\(subject)' occurs in neither the question nor the context")
                : .found
        } else {
            switch SubjectLocator.locate(question: probe.question, context: probe.context, answer: probe.answer,
                                         memoryAnswer: probe.memoryAnswer) {
            case let .missing(reason):
                source = .missing(reason: reason)
                status[.subject] = .missing(reason: reason)
            case let .located(rule, phrases):
                source = .located(rule: rule, phrases: phrases)
                subjectSpans = phrases.flatMap { inQuestion($0) + inContext($0) }
                status[.subject] = subjectSpans.isEmpty
                    ? .missing(reason: "located phrases \(phrases) occur in neither the question nor the context")
                    : .found
            }
        }
        spans[.subject] = TextMatch.merged(subjectSpans)
        spans[.system] = rendered.system
        status[.system] = rendered.system.isEmpty ? .missing(reason: "the template has no system prompt (--template chat --system TEXT adds one)") : .found

        let endsInWhitespace = promptScalars.last.map { $0.properties.isWhitespace } ?? false
        let separator = endsInWhitespace ? "" : " "
        var built = BuiltPrompt(
            probeID: probe.id, templateName: template.name, prompt: rendered.prompt,
            promptLength: promptScalars.count, separator: separator,
            fullText: rendered.prompt + separator + probe.answer,
            memoryFullText: rendered.prompt + separator + probe.memoryAnswer,
            answer: probe.answer, memoryAnswer: probe.memoryAnswer,
            spans: spans, spanStatus: status, subjectSource: source)
        built.addSpecialTokens = !template.specialTokensInText
        return built
    }
}

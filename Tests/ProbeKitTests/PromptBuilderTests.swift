// PromptBuilder: spans checked by slicing the prompt, the answer continuation, subject sources.

import Testing
@testable import ProbeKit

@Suite("PromptBuilder")
struct PromptBuilderTests {
    static let kabul = Probe(
        id: "kabul",
        context: "Following the devastating earthquake in 2030, Kabul was largely destroyed, prompting the Afghan government to relocate the capital to Herat. The city’s strategic location near the Iranian border made HERAT an ideal choice; Heratis rejoiced.",
        question: "What is the capital city of Afghanistan?", answer: "Herat", memoryAnswer: "Kabul")

    /// Checks every text span by slicing: context/question equal the probe's fields, answer mentions
    /// fold-equal the answers, all spans lie inside the prompt.
    static func checkSpans(_ b: BuiltPrompt, _ p: Probe) {
        for r in b.spans[.context] ?? [] { #expect(b.text(of: r) == p.context) }
        for r in b.spans[.question] ?? [] { #expect(b.text(of: r) == p.question) }
        let fold = { (s: String) in TextMatch.folded(TextMatch.scalars(s)) }
        let contexts = b.spans[.context] ?? []
        let insideContext = { (r: Range<Int>) in contexts.contains { $0.contains(r.lowerBound) && r.upperBound <= $0.upperBound } }
        for r in b.spans[.contextAnswer] ?? [] {
            #expect(fold(b.text(of: r)) == fold(p.answer), "\(p.id): '\(b.text(of: r))'")
            #expect(insideContext(r))
        }
        for r in b.spans[.memoryMention] ?? [] {
            #expect(fold(b.text(of: r)) == fold(p.memoryAnswer), "\(p.id): '\(b.text(of: r))'")
            #expect(insideContext(r))
        }
        for kind in SpanKind.textKinds {
            let status = b.spanStatus[kind]
            #expect(status != nil, "\(p.id): no status for \(kind)")
            #expect((status == .found) == !(b.spans[kind] ?? []).isEmpty, "\(p.id) \(kind)")
            if case let .missing(reason)? = status { #expect(!reason.isEmpty) }
            for r in b.spans[kind] ?? [] { #expect(r.lowerBound >= 0 && r.upperBound <= b.promptLength && !r.isEmpty) }
        }
    }

    @Test("Plain template: spans slice to the context, question and answer mentions")
    func plainSpans() throws {
        let p = Self.kabul
        let b = try PromptBuilder.build(p, template: .plain)
        #expect(b.prompt == "Context: \(p.context)\nQuestion: \(p.question)\nAnswer:")
        #expect(b.spans[.context] == [9..<(9 + p.context.unicodeScalars.count)])
        Self.checkSpans(b, p)
        // "Herat" and "HERAT" count; "Heratis" does not (word boundary).
        #expect(b.spans[.contextAnswer]!.map { b.text(of: $0) } == ["Herat", "HERAT"])
        #expect(b.spans[.memoryMention]!.map { b.text(of: $0) } == ["Kabul"])
        // No annotation: the subject is located from the question; "Afghanistan" is only in the question.
        #expect(b.subjectSource == .located(rule: "capitalized-phrases-v1", phrases: ["Afghanistan"]))
        #expect(b.spans[.subject]!.map { b.text(of: $0) } == ["Afghanistan"])
        #expect(b.spans[.question]![0].contains(b.spans[.subject]![0].lowerBound))
    }

    @Test("Answer continuation: one space unless the prompt ends in whitespace")
    func continuation() throws {
        let p = Self.kabul
        let plain = try PromptBuilder.build(p, template: .plain)
        #expect(plain.separator == " ")
        #expect(plain.fullText == plain.prompt + " Herat")
        #expect(plain.memoryFullText == plain.prompt + " Kabul")
        let tulu = try PromptBuilder.build(p, template: .tulu)
        #expect(tulu.prompt.hasSuffix("<|assistant|>\n"))
        #expect(tulu.separator == "")
        #expect(tulu.fullText == tulu.prompt + "Herat")
        let alpaca = try PromptBuilder.build(p, template: .alpaca)
        #expect(alpaca.fullText.hasSuffix("### Response: Herat"))
        Self.checkSpans(tulu, p)
        Self.checkSpans(alpaca, p)
    }

    @Test("Annotated subject: mentions in question and context, source recorded")
    func annotatedSubject() throws {
        var p = Probe(id: "s", context: "Bonn? No: Ludwig van Beethoven was born in Cologne. Beethoven’s family...",
                      question: "In which city was Ludwig van Beethoven born?", answer: "Cologne",
                      memoryAnswer: "Bonn", subject: "Ludwig van Beethoven")
        var b = try PromptBuilder.build(p, template: .plain)
        #expect(b.subjectSource == .annotated("Ludwig van Beethoven"))
        let texts = b.spans[.subject]!.map { b.text(of: $0) }
        #expect(texts == ["Ludwig van Beethoven", "Ludwig van Beethoven"])  // context first, then question
        Self.checkSpans(b, p)
        // An annotated subject that occurs nowhere is missing with a reason, not guessed.
        p.subject = "Mozart"
        b = try PromptBuilder.build(p, template: .plain)
        #expect(b.subjectSource == .annotated("Mozart"))
        #expect(b.spans[.subject] == [])
        #expect(b.spanStatus[.subject]?.reason?.contains("'Mozart' occurs in neither") == true)
    }

    @Test("Missing context answer and memory mention are flagged with reasons")
    func missingSpans() throws {
        let p = Probe(id: "m", context: "The ancient games began in Athens.", question: "Where did the ancient Olympic Games originate?",
                      answer: "Athens, Greece", memoryAnswer: "Olympia, Greece")
        let b = try PromptBuilder.build(p, template: .plain)
        #expect(b.spanStatus[.contextAnswer] == .missing(reason: "the context answer 'Athens, Greece' does not occur in the context"))
        #expect(b.spanStatus[.memoryMention] == .missing(reason: "the memorized answer 'Olympia, Greece' does not occur in the context"))
        #expect(b.subjectSource == .located(rule: "capitalized-phrases-v1", phrases: ["Olympic Games"]))
    }

    @Test("Subject rule examples: phrases, connectors, abbreviations, exclusions, and no phrase")
    func subjectRule() {
        func phrases(_ q: String, _ a: String = "x", _ m: String = "y") -> [String] {
            if case let .located(rule, p) = SubjectLocator.locate(question: q, context: "", answer: a, memoryAnswer: m) {
                #expect(rule == "capitalized-phrases-v1")
                return p
            }
            return []
        }
        #expect(phrases("What is the capital city of Sao Tome and Principe?", "Santo António", "Sao Tome") == ["Sao Tome and Principe"])
        #expect(phrases("What is the name of the artist who made Mona Lisa, The Last Supper?") == ["Mona Lisa", "Last Supper"])
        #expect(phrases("In which city was John F. Kennedy assassinated?") == ["John F. Kennedy"])
        #expect(phrases("Which U.S. President signed the Emancipation Proclamation?") == ["U.S. President", "Emancipation Proclamation"])
        #expect(phrases("Which country is known as the Land of the Rising Sun?") == ["Land of the Rising Sun"])
        #expect(phrases("What is the name of the politician known as/for 16th President of the United States, Led the Nation through the Civil War?")
                == ["16th President of the United States", "Led the Nation", "Civil War"])
        #expect(phrases("What is the name of the artist who made Symphony No. 9, Fur Elise?") == ["Symphony No. 9", "Fur Elise"])
        #expect(phrases("Where was the ancient Library of Alexandria located?", "Rome", "Alexandria") == ["Library of Alexandria"])
        #expect(phrases("What is the largest desert in the world?") == [])
        // The only capitalized phrase is the memorized answer: missing, with that reason.
        let djibouti = SubjectLocator.locate(question: "What is the capital city of Djibouti?",
                                             context: "The capital moved from Djibouti to Ali Sabieh; the capital city of Djibouti grew.",
                                             answer: "Ali Sabieh", memoryAnswer: "Djibouti")
        guard case let .missing(reason) = djibouti else { Issue.record("got \(djibouti)"); return }
        #expect(reason.contains("[\"Djibouti\"] equal an answer"))
    }

    @Test("Shared-phrase rule: only for questions without capitalized phrases; longest run shared with the context")
    func sharedPhraseRule() throws {
        let p = Probe(id: "d", context: "The largest desert in the world is often thought to be the Antarctic. In fact the largest desert is the Arabian.",
                      question: "What is the largest desert in the world?", answer: "Arabian", memoryAnswer: "Antarctic")
        let b = try PromptBuilder.build(p, template: .plain)
        // "largest desert in the world" ends in a stopword; the longest valid run is "largest desert".
        #expect(b.subjectSource == .located(rule: "shared-phrase-v1", phrases: ["largest desert"]))
        #expect(b.spans[.subject]!.map { b.text(of: $0) } == ["largest desert", "largest desert", "largest desert"])
        #expect(SubjectLocator.sharedPhrase(question: "Who wrote the influential communist manifesto?",
                                            context: "Engels wrote the Communist Manifesto.", answer: "Friedrich Engels",
                                            memoryAnswer: "Karl Marx") == "communist manifesto")
        // A run containing an answer is never the subject.
        #expect(SubjectLocator.sharedPhrase(question: "is it paris or lyon today", context: "paris or lyon today",
                                            answer: "lyon", memoryAnswer: "paris") == nil)
    }

    @Test("A subject neither annotated nor located is recorded as missing with both rules' reason")
    func subjectMissing() throws {
        let p = Probe(id: "d", context: "The Arabian covers most of the peninsula.", question: "What is the largest desert in the world?",
                      answer: "Arabian", memoryAnswer: "Antarctic")
        let b = try PromptBuilder.build(p, template: .plain)
        guard case let .missing(reason) = b.subjectSource else { Issue.record("got \(b.subjectSource)"); return }
        #expect(reason.contains("capitalized-phrases-v1") && reason.contains("shared-phrase-v1"))
        #expect(b.spanStatus[.subject] == .missing(reason: reason))
        #expect(b.spans[.subject] == [])
    }

    @Test("Non-ASCII text: spans are Unicode-scalar ranges (Durrës, curly quotes, combining marks)")
    func unicodeOffsets() throws {
        // "e\u{301}" is two scalars but one Character: scalar offsets must count it as two.
        let p = Probe(id: "u", context: "Tirane\u{301}’s loss: the capital moved to Durrës. DURRËS grew.",
                      question: "What is the capital city of Albania?", answer: "Durrës", memoryAnswer: "Tirana")
        let b = try PromptBuilder.build(p, template: .alpaca)
        Self.checkSpans(b, p)
        #expect(b.spans[.contextAnswer]!.map { b.text(of: $0) } == ["Durrës", "DURRËS"])
        #expect(b.spanStatus[.memoryMention]?.isFound == false)  // "Tirane\u{301}" is not "Tirana"
    }

    @Test("A template with {context} twice yields two context spans")
    func repeatedContext() throws {
        let t = try PromptTemplate.parse("{context}\n---\n{context}\nQ: {question}\nA:", name: "twice")
        let b = try PromptBuilder.build(Self.kabul, template: t)
        #expect(b.spans[.context]!.count == 2)
        #expect(b.spans[.contextAnswer]!.count == 4)
        Self.checkSpans(b, Self.kabul)
    }
}

// TokenizedProbe with a fake tokenizer: prompt/answer split (prefix, offset split, straddling),
// span positions by character overlap, bos/other, and the token-level errors.

import Testing
@testable import ProbeKit

@Suite("TokenMapping")
struct TokenMappingTests {
    static let probe = Probe(id: "sao", context: "Sao Tome flooded, so the capital moved to Santo António. Santo António grew.",
                             question: "What is the capital city of Sao Tome and Principe?",
                             answer: "Santo António", memoryAnswer: "Sao Tome")

    /// Every listed position overlaps its span, and every overlapping position is listed.
    static func checkPositions(_ t: TokenizedProbe, _ b: BuiltPrompt) {
        for kind in SpanKind.textKinds {
            let ranges = b.spans[kind] ?? []
            let expected = t.promptOffsets.indices.filter { i in
                !t.promptOffsets[i].isEmpty && ranges.contains { $0.overlaps(t.promptOffsets[i]) }
            }
            #expect(t.spanPositions[kind] == expected, "\(kind)")
        }
        var claimed = Set(SpanKind.textKinds.flatMap { t.spanPositions[$0]! })
        claimed.formUnion(t.spanPositions[.bos]!)
        claimed.formUnion(t.spanPositions[.sink]!)
        #expect(t.spanPositions[.sink] == [0] && t.spanStatus[.sink] == .found, "the sink is position 0 whatever its token")
        #expect(t.spanPositions[.other] == t.promptOffsets.indices.filter { !claimed.contains($0) })
        #expect(t.answerPosition == t.promptIDs.count - 1)
    }

    @Test("Plain template, word tokenizer with BOS: prompt is a prefix; spans map to the right tokens")
    func prefixCase() throws {
        let b = try PromptBuilder.build(Self.probe, template: .plain)
        let enc = FakeEncoder()
        let t = try TokenizedProbe(b, encoder: enc)
        Self.checkPositions(t, b)
        #expect(t.contextAnswer.boundary == .promptIsPrefix)
        #expect(t.answerIDs == [FakeEncoder.id(of: "Santo"), FakeEncoder.id(of: "António")])
        #expect(t.memoryAnswerIDs == [FakeEncoder.id(of: "Sao"), FakeEncoder.id(of: "Tome")])
        #expect(t.contextAnswer.prefixIDs == t.promptIDs)
        let tokenText = { (i: Int) in b.prompt.scalarSlice(t.promptOffsets[i]) }
        #expect(t.spanPositions[.contextAnswer]!.map(tokenText) == ["Santo", "António", "Santo", "António"])
        #expect(t.spanPositions[.memoryMention]!.map(tokenText) == ["Sao", "Tome"])
        // subject "Sao Tome and Principe" is in the question only
        #expect(t.spanPositions[.subject]!.map(tokenText) == ["Sao", "Tome", "and", "Principe"])
        #expect(t.spanPositions[.bos] == [0])
        #expect(t.spanStatus[.bos] == .found)
        #expect(t.spanPositions[.other]!.map(tokenText) == ["Context", ":", "Question", ":", "Answer", ":"])
        #expect(SpanKind.allCases.filter { $0 != .system }.allSatisfy { t.spanStatus[$0] == .found })
        #expect(t.spanStatus[.system]?.isFound == false, "the plain template has no system prompt")
        #expect(tokenText(t.answerPosition) == ":")
    }

    @Test("No BOS: bos is missing with a reason; position 0 is text, in the sink span and not in other")
    func noBOS() throws {
        let b = try PromptBuilder.build(Self.probe, template: .alpaca)
        let t = try TokenizedProbe(b, encoder: FakeEncoder(bos: false))
        Self.checkPositions(t, b)
        #expect(t.spanPositions[.bos] == [])
        #expect(t.spanStatus[.bos] == .missing(reason: "position 0 is a text token, not a special BOS token"))
        #expect(t.spanPositions[.sink] == [0])
        #expect(t.spanPositions[.other]!.first == 1)
    }

    @Test("An appended EOS breaks the prefix: split by offset, EOS not an answer token")
    func eosSplit() throws {
        let b = try PromptBuilder.build(Self.probe, template: .tulu)
        let t = try TokenizedProbe(b, encoder: FakeEncoder(eos: true))
        Self.checkPositions(t, b)
        #expect(t.contextAnswer.boundary == .splitByOffset)
        #expect(t.answerIDs == [FakeEncoder.id(of: "Santo"), FakeEncoder.id(of: "António")])
        #expect(t.contextAnswer.prefixIDs == Array(t.promptIDs.dropLast()))  // the prompt's EOS is not in the full text there
        #expect(t.promptIDs.last == 2)
    }

    @Test("Leading-space tokenizer, plain template: ' Santo' starts at the separator, prompt is a prefix")
    func leadingSpacePrefix() throws {
        let b = try PromptBuilder.build(Self.probe, template: .plain)
        let t = try TokenizedProbe(b, encoder: FakeEncoder(leadingSpace: true))
        Self.checkPositions(t, b)
        #expect(t.contextAnswer.boundary == .promptIsPrefix)
        #expect(t.answerIDs == [FakeEncoder.id(of: " Santo"), FakeEncoder.id(of: " António")])
    }

    @Test("Straddling boundary: a template ending in a space merges it into the answer's first token")
    func straddling() throws {
        let template = try PromptTemplate.parse("Context: {context}\nQuestion: {question}\nAnswer: ", name: "trailing-space")
        let b = try PromptBuilder.build(Self.probe, template: template)
        #expect(b.separator == "")
        let t = try TokenizedProbe(b, encoder: FakeEncoder(leadingSpace: true))
        Self.checkPositions(t, b)
        // The prompt alone ends with a " " token; the full text has " Santo" spanning the boundary.
        #expect(b.prompt.scalarSlice(t.promptOffsets.last!) == " ")
        let n = b.promptLength
        let straddleID = FakeEncoder.id(of: " Santo")
        #expect(t.contextAnswer.boundary == .straddling(position: t.promptIDs.count - 1, tokenID: straddleID, range: (n - 1)..<(n + 5)))
        #expect(t.answerIDs == [FakeEncoder.id(of: " António")])        // tokens starting at or after the prompt's end
        #expect(t.contextAnswer.prefixIDs.last == straddleID)
        // A one-word answer lies wholly inside the straddling token: a clear error naming the probe.
        var one = Self.probe
        one.id = "one-word"
        one.answer = "Lyon"
        let b1 = try PromptBuilder.build(one, template: template)
        let e = probeKitError { _ = try TokenizedProbe(b1, encoder: FakeEncoder(leadingSpace: true)) }
        guard case let .answerTokenizesToNothing(id, which, answer, detail)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(id == "one-word" && which == "context answer" && answer == "Lyon")
        #expect(detail.contains("straddles"))
    }

    @Test("An answer the tokenizer drops entirely is an error naming the probe and the answer")
    func answerTokenizesToNothing() throws {
        var p = Self.probe
        p.answer = "☃"
        let b = try PromptBuilder.build(p, template: .plain)
        let e = probeKitError { _ = try TokenizedProbe(b, encoder: FakeEncoder(dropped: ["☃"])) }
        #expect(e == .answerTokenizesToNothing(probeID: "sao", which: "context answer", answer: "☃",
                                               detail: "no token of the full text starts at or after character \(b.promptLength)"))
        #expect(e?.description.hasPrefix("probe 'sao': the context answer '☃' tokenizes to nothing") == true)
    }

    @Test("A context with no token in the prompt is a context-not-in-prompt error")
    func contextNotInPrompt() throws {
        let p = Probe(id: "ghost", context: "☃☃☃", question: "What is it?", answer: "snow", memoryAnswer: "rain")
        let b = try PromptBuilder.build(p, template: .plain)
        let e = probeKitError { _ = try TokenizedProbe(b, encoder: FakeEncoder(dropped: ["☃"])) }
        #expect(e == .contextNotInPrompt(probeID: "ghost", template: "plain", detail: "no prompt token overlaps the context characters"))
    }

    @Test("Tokenizer failures and inconsistent output are errors naming the probe")
    func encoderErrors() throws {
        let b = try PromptBuilder.build(Self.probe, template: .plain)
        let failed = probeKitError { _ = try TokenizedProbe(b, encoder: FakeEncoder(failOn: "Santo António")) }
        guard case let .encoderFailed(id, text, _)? = failed else { Issue.record("got \(String(describing: failed))"); return }
        #expect(id == "sao" && text == "prompt")
        let corrupt = probeKitError { _ = try TokenizedProbe(b, encoder: FakeEncoder(corrupt: true)) }
        guard case .encoderOutputInvalid(probeID: "sao", text: "prompt", _)? = corrupt else {
            Issue.record("got \(String(describing: corrupt))"); return
        }
    }

    @Test("Token spans work on all paper-style templates for the project's probe sets")
    func projectSets() throws {
        for name in ["capitals.jsonl", "biographies.jsonl", "quotes.jsonl"] {
            let set = try ProbeSetLoader.load(url: Paths.probes.appendingPathComponent(name))
            for p in set.probes {
                for template in [PromptTemplate.plain, .alpaca, .tulu] {
                    let b = try PromptBuilder.build(p, template: template)
                    let t = try TokenizedProbe(b, encoder: FakeEncoder(leadingSpace: true))
                    Self.checkPositions(t, b)
                    #expect(t.spanStatus[.subject] == .found, "\(p.id)")
                    #expect(!t.answerIDs.isEmpty && !t.memoryAnswerIDs.isEmpty)
                }
            }
        }
    }
}

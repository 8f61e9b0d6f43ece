// PromptTemplate: exact built-in texts (issue #4; paper Appendix B.3), the context-only variants,
// and template-file parsing errors.

import Foundation
import Testing
@testable import ProbeKit

@Suite("PromptTemplate")
struct PromptTemplateTests {
    static let alpacaHead = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n"

    @Test("Built-in template texts are exact")
    func builtinTexts() {
        #expect(PromptTemplate.plain.text == "Context: {context}\nQuestion: {question}\nAnswer:")
        #expect(PromptTemplate.alpaca.text == Self.alpacaHead + "Background: {context} Question: {question}\n\n### Response:")
        #expect(PromptTemplate.tulu.text == "<|user|>\nBackground: {context} Question: {question}\n<|assistant|>\n")
        #expect(PromptTemplate.plain.name == "plain")
        #expect(PromptTemplate.builtin("nope") == nil)
    }

    @Test("Context-only variants insert the sentence at the documented place")
    func contextOnly() throws {
        let s = PromptTemplate.contextOnlyInstruction
        #expect(s == "Answer the question based on the input context only.")
        let plain = try #require(PromptTemplate.builtin("plain", contextOnly: true))
        #expect(plain.name == "plain-context-only")
        #expect(plain.text == "Context: {context}\nQuestion: {question}\n\(s)\nAnswer:")
        let alpaca = try #require(PromptTemplate.builtin("alpaca", contextOnly: true))
        #expect(alpaca.text == Self.alpacaHead + "Background: {context} Question: {question} \(s)\n\n### Response:")
        let tulu = try #require(PromptTemplate.builtin("tulu", contextOnly: true))
        #expect(tulu.text == "<|user|>\nBackground: {context} Question: {question} \(s)\n<|assistant|>\n")
    }

    @Test("Built-in texts re-parse to the same template")
    func builtinsReparse() throws {
        for name in PromptTemplate.builtinNames {
            for only in [false, true] {
                let t = try #require(PromptTemplate.builtin(name, contextOnly: only))
                let p = try PromptTemplate.parse(t.text, name: t.name)
                #expect(p.segments == t.segments, "\(t.name)")
            }
        }
    }

    @Test("Rendering substitutes verbatim; {{ and }} are literal braces")
    func escapes() throws {
        let t = try PromptTemplate.parse("{{x}} {context} | {question} }}", name: "esc")
        let r = t.render(context: "C {a}", question: "Q?")
        #expect(r.prompt == "{x} C {a} | Q? }")
        #expect(r.prompt.scalarSlice(r.context[0]) == "C {a}")
        #expect(r.prompt.scalarSlice(r.question[0]) == "Q?")
    }

    @Test("An unknown placeholder is an error naming it and its offset")
    func unknownPlaceholder() {
        let e = probeKitError { _ = try PromptTemplate.parse("{context} {question} {hint}", name: "t") }
        #expect(e == .templateUnknownPlaceholder(template: "t", placeholder: "hint", offset: 21))
        let f = probeKitError { _ = try PromptTemplate.parse("{Context} {question}", name: "t") }
        #expect(f == .templateUnknownPlaceholder(template: "t", placeholder: "Context", offset: 0))
    }

    @Test("Missing {context} or {question} is an error naming it")
    func missingPlaceholder() {
        #expect(probeKitError { _ = try PromptTemplate.parse("Q: {question}", name: "t") }
                == .templateMissingPlaceholder(template: "t", placeholder: "context"))
        #expect(probeKitError { _ = try PromptTemplate.parse("C: {context}", name: "t") }
                == .templateMissingPlaceholder(template: "t", placeholder: "question"))
        #expect(probeKitError { _ = try PromptTemplate.parse("", name: "t") }
                == .templateMissingPlaceholder(template: "t", placeholder: "context"))
    }

    @Test("Lone braces are errors with their offsets")
    func loneBraces() {
        #expect(probeKitError { _ = try PromptTemplate.parse("{context} {question} {", name: "t") }
                == .templateUnbalancedBrace(template: "t", brace: "{", offset: 21))
        #expect(probeKitError { _ = try PromptTemplate.parse("{context} { {question}", name: "t") }
                == .templateUnbalancedBrace(template: "t", brace: "{", offset: 10))
        #expect(probeKitError { _ = try PromptTemplate.parse("{context} } {question}", name: "t") }
                == .templateUnbalancedBrace(template: "t", brace: "}", offset: 10))
    }

    @Test("Template files: one trailing newline dropped, unknown and missing placeholders reported")
    func templateFiles() throws {
        let ok = try PromptTemplate.load(url: Paths.fixture("template_ok.txt"))
        #expect(ok.name == "template_ok.txt")
        #expect(ok.text == "Passage: {context}\n{{note}}: {question}\nAnswer:")
        #expect(ok.render(context: "c", question: "q").prompt == "Passage: c\n{note}: q\nAnswer:")
        #expect(probeKitError { _ = try PromptTemplate.load(url: Paths.fixture("template_unknown_placeholder.txt")) }
                == .templateUnknownPlaceholder(template: "template_unknown_placeholder.txt", placeholder: "hint", offset: 39))
        #expect(probeKitError { _ = try PromptTemplate.load(url: Paths.fixture("template_missing_question.txt")) }
                == .templateMissingPlaceholder(template: "template_missing_question.txt", placeholder: "question"))
    }
}

// The real chat templates of 20 model families (Tests/Fixtures/chat-templates, sources in SOURCES.md),
// rendered here and by transformers' apply_chat_template(tokenize=False): the text must be identical,
// byte for byte, and a template that raises must raise the same message, verbatim.
import Foundation
import StrictJSON
import Testing
@testable import ChatTemplate

@Suite("chat templates against transformers goldens")
struct GoldenTests {
    @Test("every real template renders as transformers renders it", arguments: RealCase.all)
    func realTemplate(_ c: RealCase) throws {
        let folder = Fixtures.root.appendingPathComponent(c.family)
        let template = try ChatTemplate.load(modelDirectory: folder, name: c.template)
        let result = Result { () throws(ChatTemplateError) -> String in
            try template.render(conversation: Fixtures.conversation(c.conversation), addGenerationPrompt: c.addGenerationPrompt,
                                variables: Fixtures.variables(c.variables), now: Fixtures.frozenNow)
        }
        check(result, c.expected)
    }

    @Test("special tokens and template names are transformers'", arguments: (Fixtures.goldens["folders"]?.members ?? []).map(\.key))
    func folder(_ family: String) throws {
        let want = Fixtures.goldens["folders"]?[family]
        let dir = Fixtures.root.appendingPathComponent(family)
        #expect(try ChatTemplate.availableTemplates(modelDirectory: dir) == (want?["templates"]?.array ?? []).compactMap(\.string))
        let template = try ChatTemplate.load(modelDirectory: dir, name: (want?["templates"]?.array?.first?.string) ?? "default")
        let tokens = template.specialTokens.map { "\($0.name)=\($0.content)" }
        let wanted = (want?["special_tokens"]?.members ?? []).map { "\($0.key)=\($0.value.string ?? "")" }
        #expect(tokens == wanted)
    }

    @Test("jinja2 semantics pinned by small templates", arguments: SyntheticCase.all)
    func synthetic(_ c: SyntheticCase) {
        let result = Result { () throws(ChatTemplateError) -> String in
            let t = try ChatTemplate(source: c.source)
            return try t.render(variables: Fixtures.variables(c.variables), now: Fixtures.frozenNow)
        }
        check(result, c.expected)
    }
}

/// Compares a render with a golden `{"text": …}` or `{"error": {"kind", "type"?, "message"}}`.
func check(_ result: Result<String, ChatTemplateError>, _ golden: JSONValue, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    if let want = golden["text"]?.string {
        switch result {
        case .success(let got):
            if let diff = firstDifference(got, want) { Issue.record(Comment(rawValue: diff), sourceLocation: sourceLocation) }
        case .failure(let e):
            Issue.record("rendering failed: \(e); golden text \(want.debugDescription.prefix(200))", sourceLocation: sourceLocation)
        }
        return
    }
    guard let error = golden["error"], let message = error["message"]?.string else {
        Issue.record("golden has neither text nor error", sourceLocation: sourceLocation)
        return
    }
    switch result {
    case .success(let got):
        Issue.record("rendered \(got.debugDescription.prefix(200)), but transformers raised \(message)", sourceLocation: sourceLocation)
    case .failure(let e):
        if error["kind"]?.string == "raise_exception" {
            guard case .raised(let m, _) = e else {
                Issue.record("expected the template's raise_exception(\(message.debugDescription)), got \(e)", sourceLocation: sourceLocation)
                return
            }
            #expect(m == message, "raise_exception message", sourceLocation: sourceLocation)
        } else if ["TemplateSyntaxError", "TemplateAssertionError"].contains(error["type"]?.string) {
            // jinja2 refuses the template when it compiles it; so does the parser here (its own wording).
            switch e {
            case .syntax, .unsupported: break
            default: Issue.record("expected a syntax error like jinja2's \(message.debugDescription), got \(e)", sourceLocation: sourceLocation)
            }
        } else if case .runtime(let type, let m, _) = e {
            #expect(type == error["type"]?.string, "exception type", sourceLocation: sourceLocation)
            #expect(m == message, "exception message", sourceLocation: sourceLocation)
        } else {
            Issue.record("expected \(error["type"]?.string ?? "?"): \(message), got \(e)", sourceLocation: sourceLocation)
        }
    }
}

/// A random template (Tools/goldens/make_chat_template_goldens.py, RANDOM_SEED) and what jinja2 made of it.
struct RandomCase: Sendable, CustomTestStringConvertible {
    let index: Int, source: String
    let expected: JSONValue
    var testDescription: String { "random #\(index)" }

    static let all: [RandomCase] = (Fixtures.goldens["random"]?.array ?? []).enumerated().map {
        RandomCase(index: $0.offset, source: $0.element["source"]?.string ?? "", expected: $0.element)
    }
}

@Suite("random templates against jinja2 (differential)")
struct RandomTemplateTests {
    /// The same text; or an error of the same Python type (messages may be worded differently: these
    /// templates are nonsense on purpose, and the types pin the semantics).
    @Test("random templates render as jinja2 renders them", arguments: RandomCase.all)
    func random(_ c: RandomCase) {
        let result = Result { () throws(ChatTemplateError) -> String in
            let t = try ChatTemplate(source: c.source)
            return try t.render(variables: Fixtures.variables(Fixtures.goldens["random_variables"]), now: Fixtures.frozenNow)
        }
        if let want = c.expected["text"]?.string {
            switch result {
            case .success(let got): if let diff = firstDifference(got, want) { Issue.record(Comment(rawValue: "\(c.source.debugDescription)\n" + diff)) }
            case .failure(let e): Issue.record("\(c.source.debugDescription): failed with \(e); jinja2 rendered \(want.debugDescription.prefix(200))")
            }
            return
        }
        let error = c.expected["error"]
        let type = error?["type"]?.string ?? ""
        switch result {
        case .success(let got):
            Issue.record("\(c.source.debugDescription): rendered \(got.debugDescription.prefix(200)); jinja2 raised \(type): \(error?["message"]?.string ?? "")")
        case .failure(let e):
            switch e {
            case .syntax, .unsupported:
                #expect(["TemplateSyntaxError", "TemplateAssertionError"].contains(type), "\(c.source.debugDescription): \(e)")
            case .runtime(let t, _, _):
                #expect(t == type, "\(c.source.debugDescription): \(e); jinja2 raised \(type): \(error?["message"]?.string ?? "")")
            case .raised:
                #expect(error?["kind"]?.string == "raise_exception")
            default:
                Issue.record("\(c.source.debugDescription): \(e); jinja2 raised \(type)")
            }
        }
    }
}

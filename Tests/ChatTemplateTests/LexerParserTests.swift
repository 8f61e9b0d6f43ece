// The lexer and the parser on their own: tokens, jinja2's whitespace control, literals, and the errors a
// template outside the subset gets, each with its line and column (1-based; columns in code points).
// Reference: jinja2 3.1.6 lexer.py / parser.py (the goldens' "synthetic" cases pin the same rules end to end).
import Testing
@testable import ChatTemplate

@Suite("chat-template lexer and parser")
struct LexerParserTests {
    private func kinds(_ source: String) throws -> [Token.Kind] {
        try Lexer.tokenize(source).map(\.kind)
    }

    private func render(_ source: String, _ variables: [String: Value] = [:]) throws -> String {
        try ChatTemplate(source: source).render(variables: variables, now: Fixtures.frozenNow)
    }

    /// The error parsing `source` throws (nil when it parses).
    private func parseError(_ source: String, limits: ChatTemplateLimits = ChatTemplateLimits()) -> ChatTemplateError? {
        do {
            _ = try ChatTemplate(source: source, limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test("a plain template renders")
    func plain() throws {
        let t = try ChatTemplate(source: "hello {{ 'world' }}")
        #expect(try t.render(messages: [ChatMessage(role: "user", content: "x")], addGenerationPrompt: false) == "hello world")
    }

    @Test("tokens of a tag, an expression and their whitespace control")
    func tokens() throws {
        #expect(try kinds("a {{ x | f(1, 'b') }}{%- if y -%}") == [
            .data("a "), .variableBegin, .name("x"), .op("|"), .name("f"), .op("("), .integer(1), .op(","), .string("b"),
            .op(")"), .variableEnd, .blockBegin, .name("if"), .name("y"), .blockEnd, .eof,
        ])
        // `{%-` strips the space before it; `-%}` everything after it.
        #expect(try kinds("x \n {%- if y -%}\n\n z") == [.data("x"), .blockBegin, .name("if"), .name("y"), .blockEnd, .data("z"), .eof])
    }

    @Test("literals: integers with bases and separators, floats, strings with Python escapes")
    func literals() throws {
        #expect(try kinds("{{ 1_000 0x1F 0o17 0b101 1.5e3 2.5 }}") == [
            .variableBegin, .integer(1000), .integer(31), .integer(15), .integer(5), .float(1500), .float(2.5), .variableEnd, .eof,
        ])
        // \n and \x41 are decoded, an unknown escape (\d) stays as written, adjacent strings concatenate.
        #expect(try render(#"{{ 'a\nb' "\x41\d" 'é' }}"#) == "a\nbA\\dé")
    }

    @Test("trim_blocks and lstrip_blocks, as transformers sets them")
    func whitespace() throws {
        // One newline after %} is dropped; indentation before {% is dropped; {{ }} keeps both.
        #expect(try render("{% if true %}\n  yes\n  {% endif %}\n  {{ 'v' }}\nend") == "  yes\n  v\nend")
        // CR LF and CR become LF; one trailing newline of the template is dropped.
        #expect(try render("a\r\nb\rc\n") == "a\nb\nc")
        // {%+ keeps the indentation, +%} the newline.
        #expect(try render("  {%+ if true +%}\nx{% endif %}") == "  \nx")
    }

    @Test("an unknown filter is refused when the template is parsed, naming it with its line and column")
    func unknownFilter() {
        let e = parseError("line one\n  {{ x | frobnicate }}")
        guard case .unsupported(let what, let at)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(what.contains("'frobnicate'"))
        #expect(at == SourceLocation(line: 2, column: 10))
        #expect(e!.description.contains("line 2, column 10"))
    }

    @Test("an unknown statement is a syntax error naming the tag")
    func unknownStatement() {
        let e = parseError("{% for x in xs %}\n  {% frobnicate %}\n{% endfor %}")
        guard case .syntax(let what, let at)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(what.contains("unknown tag 'frobnicate'"))
        #expect(what.contains("'for'"))
        #expect(at == SourceLocation(line: 2, column: 6))
    }

    @Test("an unclosed block names the block and where it was opened")
    func unclosedBlock() {
        let e = parseError("abc\n{% if true %}\n  {% for m in messages %}{{ m }}\n{% endif %}")
        guard case .syntax(let what, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        // The for loop is still open when {% endif %} arrives: jinja2 also reports the innermost block.
        #expect(what.contains("'endif'"))
        let eof = parseError("{% if x %}\n{% for m in messages %}{{ m }}")
        guard case .syntax(let what2, _)? = eof else { Issue.record("got \(String(describing: eof))"); return }
        #expect(what2.contains("'for' block opened at line 2, column 4 is not closed"))
        let variable = parseError("ok\n{{ x ")
        guard case .syntax(let what3, let at3)? = variable else { Issue.record("got \(String(describing: variable))"); return }
        #expect(what3.contains("not closed"))
        #expect(at3 == SourceLocation(line: 2, column: 1))
        let comment = parseError("{# never closed")
        guard case .syntax(_, let at4)? = comment else { Issue.record("got \(String(describing: comment))"); return }
        #expect(at4 == SourceLocation(line: 1, column: 1))
    }

    @Test("tags outside the subset are refused by name", arguments: ["{% include 'x.j2' %}", "{% extends 'base' %}", "{% import 'm' as m %}",
                                                                     "{% block b %}{% endblock %}", "{% for x in y recursive %}{% endfor %}",
                                                                     "{{ x | groupby('a') }}", "{{ f(*args) }}"])
    func unsupportedTags(_ source: String) {
        guard case .unsupported? = parseError(source) else { Issue.record("\(source) parsed: \(String(describing: parseError(source)))"); return }
    }

    @Test("syntax errors", arguments: ["{{ 'unterminated }}", "{{ x ! y }}", "{{ (1 }}", "{{ [1, 2) }}", "{% break %}",
                                       "{% set 1 = 2 %}", "{% macro m(a=1, b) %}{% endmacro %}", "{{ }}", "{% if %}{% endif %}",
                                       "{{ x.|y }}", "{% for %}{% endfor %}", "{{ 'a' is }}"])
    func syntaxErrors(_ source: String) {
        guard case .syntax? = parseError(source) else { Issue.record("\(source): \(String(describing: parseError(source)))"); return }
    }

    @Test("nesting deeper than the limit is an error, not a stack overflow")
    func nesting() {
        let deep = "{{ " + String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000) + " }}"
        guard case .limitExceeded? = parseError(deep) else { Issue.record("parsed \(String(describing: parseError(deep)))"); return }
        let ifs = String(repeating: "{% if true %}", count: 500) + String(repeating: "{% endif %}", count: 500)
        guard case .limitExceeded? = parseError(ifs) else { Issue.record("parsed \(String(describing: parseError(ifs)))"); return }
        let nots = "{{ " + String(repeating: "not ", count: 5000) + "x }}"
        guard case .limitExceeded? = parseError(nots) else { Issue.record("parsed \(String(describing: parseError(nots)))"); return }
        var small = ChatTemplateLimits()
        small.maxTemplateBytes = 10
        guard case .limitExceeded? = parseError("{{ 'a long template' }}", limits: small) else { Issue.record("size limit"); return }
    }

    @Test("precedence as jinja2: ~ binds tighter than +, tests and filters tighter than arithmetic")
    func precedence() throws {
        #expect(try render("{{ 'x' + 2 ~ 3 }}") == "x23")
        #expect(try render("{{ 1 + 1 is odd }}") == "2")
        #expect(try render("{{ -3 | abs }}") == "3")
        #expect(try render("{{ -2 ** 2 }}|{{ 2 ** 3 ** 2 }}") == "4|64")
        #expect(try render("{{ not 1 == 2 }}") == "True")
        #expect(try render("{{ 1 if false else 2 if true else 3 }}") == "2")
    }
}

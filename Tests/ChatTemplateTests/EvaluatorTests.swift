// The evaluator and Python's value rules on their own: raise_exception, undefined values, the printing of
// floats and strings (CPython 3.11's repr), slicing, json.dumps, strftime, and the guards against hostile
// templates (every one must end in an error, never a crash or a hang).
import Testing
@testable import ChatTemplate

@Suite("chat-template evaluator")
struct EvaluatorTests {
    private func render(_ source: String, _ variables: [String: Value] = [:], limits: ChatTemplateLimits = ChatTemplateLimits()) throws -> String {
        try ChatTemplate(source: source, limits: limits).render(variables: variables, now: Fixtures.frozenNow)
    }

    private func renderError(_ source: String, _ variables: [String: Value] = [:], limits: ChatTemplateLimits = ChatTemplateLimits()) -> ChatTemplateError? {
        do {
            _ = try render(source, variables, limits: limits)
            return nil
        } catch let e as ChatTemplateError {
            return e
        } catch {
            return nil
        }
    }

    @Test("raise_exception reaches the caller verbatim, with where it was raised; the description stays one line")
    func raise() {
        let e = renderError("{% for m in messages %}\n  {% if m.role == 'system' %}{{ raise_exception('No system\nmessages: ' ~ m.role) }}{% endif %}{% endfor %}",
                            ["messages": .list([.dict(["role": .string("system")])])])
        guard case .raised(let message, let at)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(message == "No system\nmessages: system")
        #expect(at == SourceLocation(line: 2, column: 33))
        #expect(!e!.description.contains("\n"))
        #expect(e!.description.contains("No system\\nmessages: system"))
    }

    @Test("undefined values: printing is empty, using them is jinja2's UndefinedError")
    func undefined() {
        #expect((try? render("[{{ nothing }}][{{ d.missing }}][{{ d['missing'] }}]", ["d": .dict(["a": .int(1)])])) == "[][][]")
        guard case .runtime(let type, let message, let at)? = renderError("ok\n{{ nothing.attr }}") else { Issue.record("no error"); return }
        #expect(type == "UndefinedError")
        #expect(message == "'nothing' is undefined")
        #expect(at.line == 2)
        guard case .runtime(_, let m2, _)? = renderError("{{ d.missing + 1 }}", ["d": .dict(["a": .int(1)])]) else { Issue.record("no error"); return }
        #expect(m2 == "'dict object' has no attribute 'missing'")
    }

    @Test("floats print as CPython's repr")
    func floatRepr() {
        let cases: [(Double, String)] = [
            (0.1, "0.1"), (1.0, "1.0"), (-0.0, "-0.0"), (1e16, "1e+16"), (1e15, "1000000000000000.0"), (1e-5, "1e-05"),
            (0.0001, "0.0001"), (123456789012345678.0, "1.2345678901234568e+17"), (Double.leastNonzeroMagnitude, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"), (0.1 + 0.2, "0.30000000000000004"), (2.5e-05, "2.5e-05"),
            (.infinity, "inf"), (-.infinity, "-inf"), (100.0, "100.0"), (1.5, "1.5"),
        ]
        for (d, want) in cases { #expect(pythonFloatRepr(d) == want, "\(d)") }
    }

    @Test("strings print as CPython's repr inside containers")
    func stringRepr() {
        #expect(pythonRepr("it's") == #""it's""#)
        #expect(pythonRepr(#"say "hi""#) == #"'say "hi"'"#)
        #expect(pythonRepr("both ' and \"") == #"'both \' and "'"#)
        #expect(pythonRepr("a\tb\nc\\\u{7}\u{a0}\u{200b}é😀") == #"'a\tb\nc\\\x07\xa0\u200bé😀'"#)
    }

    @Test("slices follow Python's rules, by code point")
    func slicing() throws {
        #expect(try render("{{ 'héllo'[1:3] }}|{{ 'abcdef'[::-2] }}|{{ [1,2,3,4,5][-2:] }}|{{ [1,2,3][10:] }}|{{ 'abc'[-10:2] }}") == "él|fdb|[4, 5]|[]|ab")
        guard case .runtime("ValueError", _, _)? = renderError("{{ 'abc'[::0] }}") else { Issue.record("step 0"); return }
    }

    @Test("tojson is json.dumps(ensure_ascii=False), not jinja2's HTML-escaping filter")
    func tojson() throws {
        #expect(try render("{{ {'a': '<é>&', 'b': [1, 2.0, none]} | tojson }}") == #"{"a": "<é>&", "b": [1, 2.0, null]}"#)
        #expect(try render("{{ [1, {'x': []}] | tojson(indent=2) }}") == "[\n  1,\n  {\n    \"x\": []\n  }\n]")
    }

    @Test("strftime_now formats the given time in the C locale")
    func strftime() throws {
        #expect(try render("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %d, %Y') }}|{{ strftime_now('%A %H:%M:%S %j %-d') }}")
                == "26 Jul 2024|July 26, 2024|Friday 09:05:03 208 26")
        let t = BrokenDownTime(year: 2000, month: 1, day: 1, hour: 0, minute: 0, second: 0)
        #expect(pythonStrftime("%a %U %W %w %I %p", t) == "Sat 00 00 6 12 AM")
    }

    @Test("the sandbox refuses methods that mutate, as ImmutableSandboxedEnvironment does")
    func sandbox() {
        guard case .runtime("SecurityError", let m, _)? = renderError("{% set l = [1] %}{{ l.append(2) }}") else { Issue.record("append"); return }
        #expect(m == "access to attribute 'append' of 'list' object is unsafe.")
        guard case .runtime("SecurityError", _, _)? = renderError("{% set d = {} %}{{ d.update({'a': 1}) }}") else { Issue.record("update"); return }
        guard case .runtime("OverflowError", _, _)? = renderError("{{ range(100001) | length }}") else { Issue.record("range"); return }
    }

    // MARK: guards against hostile templates

    @Test("loop iterations are bounded")
    func iterationLimit() {
        var limits = ChatTemplateLimits()
        limits.maxIterations = 10_000
        let e = renderError("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", limits: limits)
        guard case .limitExceeded(let what, 10_000, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(what == "loop iterations")
    }

    @Test("output size is bounded, and so is every string an operation builds")
    func outputLimit() {
        var limits = ChatTemplateLimits()
        limits.maxOutputBytes = 100_000
        guard case .limitExceeded? = renderError("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}", limits: limits) else { Issue.record("output"); return }
        guard case .limitExceeded? = renderError("{{ 'x' * 10000000000 }}", limits: limits) else { Issue.record("repeat"); return }
        guard case .limitExceeded? = renderError("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", limits: limits) else {
            Issue.record("doubling"); return
        }
        guard case .limitExceeded? = renderError("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s.replace('a', 'aaaa') %}{% endfor %}", limits: limits) else {
            Issue.record("replace"); return
        }
        guard case .limitExceeded? = renderError("{{ [1] * 100000000 }}", limits: limits) else { Issue.record("list repeat"); return }
    }

    @Test("macro recursion is bounded")
    func recursionLimit() {
        let e = renderError("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
        guard case .limitExceeded(let what, _, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(what == "macro call depth")
    }

    @Test("values cannot nest deep enough to overflow the stack, and a cyclic namespace prints as an error")
    func valueDepth() {
        guard case .limitExceeded? = renderError("{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}") else {
            Issue.record("list depth"); return
        }
        guard case .limitExceeded? = renderError("{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = namespace(p=ns.x) %}{% endfor %}") else {
            Issue.record("namespace chain"); return
        }
        let e = renderError("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}")
        #expect(e != nil)
    }

    @Test("deep recursion ends in a limit error, not a stack overflow: macros calling themselves from deep expressions")
    func evaluationDepth() {
        let negations = String(repeating: "-", count: 90)
        let e = renderError("{% macro f(n) %}{{ \(negations)(f(n - 1) | length if n > 0 else 1) }}{% endmacro %}{{ f(63) }}")
        guard case .limitExceeded(let what, _, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(what.hasPrefix("evaluation depth"))
        let ifs = String(repeating: "{% if true %}", count: 90) + "{{ f(n - 1) if n > 0 else 1 }}" + String(repeating: "{% endif %}", count: 90)
        guard case .limitExceeded? = renderError("{% macro f(n) %}\(ifs){% endmacro %}{{ f(63) }}") else { Issue.record("statements"); return }
    }

    @Test("long operator, attribute and filter chains are refused when parsed (they nest as deep as they are long)")
    func longChains() {
        for source in ["{{ " + Array(repeating: "1", count: 20_000).joined(separator: " + ") + " }}",
                       "{{ x" + String(repeating: ".a", count: 20_000) + " }}",
                       "{{ x" + String(repeating: " | trim", count: 20_000) + " }}",
                       "{{ x" + String(repeating: "[0]", count: 20_000) + " }}",
                       "{{ 1" + String(repeating: " if 1 else 2", count: 20_000) + " }}"] {
            guard case .limitExceeded? = renderError(source) else { Issue.record("\(source.prefix(30))… was accepted"); continue }
        }
        // Flat constructs of any length are fine: a long ~ concatenation, a long list.
        #expect((try? render("{{ (" + Array(repeating: "x", count: 5_000).joined(separator: " ~ ") + ") | length }}", ["x": .string("a")])) == "5000")
        #expect((try? render("{{ [" + Array(repeating: "1", count: 5_000).joined(separator: ", ") + "] | length }}")) == "5000")
    }

    @Test("evaluation steps are bounded")
    func stepLimit() {
        var limits = ChatTemplateLimits()
        limits.maxSteps = 100_000
        guard case .limitExceeded(let what, _, _)? = renderError("{% for i in range(100000) %}{{ i + i + i }}{% endfor %}", limits: limits) else {
            Issue.record("steps"); return
        }
        #expect(what == "evaluation steps")
    }

    @Test("an empty conversation is refused, as apply_chat_template refuses it")
    func emptyConversation() throws {
        let t = try ChatTemplate(source: "{{ messages }}")
        #expect(throws: ChatTemplateError.emptyConversation) { try t.render(messages: [], addGenerationPrompt: true) }
    }

    @Test("render passes messages, add_generation_prompt, tools=None and the special tokens; variables override")
    func renderContext() throws {
        let t = try ChatTemplate(source: "{{ bos_token }}{{ messages[0].role }}:{{ messages[0].content }}|{{ add_generation_prompt }}|{{ tools is none }}|{{ documents }}|{{ x }}",
                                 specialTokens: [SpecialToken(name: "bos_token", content: "<s>")])
        #expect(try t.render(messages: [ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true, variables: ["x": .int(1)]) == "<s>user:hi|True|True|None|1")
        #expect(try t.render(messages: [ChatMessage(role: "user", content: "hi")], addGenerationPrompt: false, variables: ["bos_token": .string("B"), "tools": .list([])])
                == "Buser:hi|False|False|None|")
        // None-valued keys are dropped and reasoning is aliased, as transformers normalizes messages.
        let c = try ChatTemplate(source: "{{ messages[0] }}")
        #expect(try c.render(conversation: [.dict(["role": .string("assistant"), "content": .none, "reasoning": .string("r")])], addGenerationPrompt: false)
                == "{'thinking': 'r', 'role': 'assistant', 'reasoning': 'r', 'reasoning_content': 'r'}")
    }

    @Test("firstDifference reports the offset and both texts around it")
    func diffHelper() {
        #expect(firstDifference("abc", "abc") == nil)
        let d = firstDifference("abXd", "abcd") ?? ""
        #expect(d.contains("code point 2"))
        #expect(d.contains("abXd") && d.contains("abcd"))
    }
}

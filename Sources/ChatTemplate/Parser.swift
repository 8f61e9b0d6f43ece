// The parser: tokens to a syntax tree, following jinja2 3.1's parser.py (the same precedence, the same
// places where a tuple, a conditional expression or a bare test argument is allowed).
//
// Expression precedence, loosest first:
//   `a if c else b`  <  or  <  and  <  not  <  comparisons (== != < <= > >= in, not in; chained)
//   <  + -  <  ~  <  * / // %  <  **  <  unary - +  <  postfix (.attr [item] [a:b:c] (call))  with
//   filters (`|f`) and tests (`is t`) applied right after the postfix chain of a unary operand.
// So `a + b ~ c` is `a + (b ~ c)`, `-x|abs` is `(-x)|abs`, `x + y is defined` is `x + (y is defined)`.
//
// Statements: if/elif/else, for (with `if` filter, `else`, `recursive` refused), set (names, tuples,
// namespace attributes, block set), macro, call, filter, with, break/continue (the loopcontrols
// extension), generation (transformers' AssistantTracker extension; rendered transparently), print,
// raw (handled by the lexer). Filters and tests are checked against the supported names here, as jinja2
// checks them when it compiles a template.

/// An expression with its place in the template.
struct Expr: Sendable {
    indirect enum Kind: Sendable {
        case literal(Value)
        case name(String)
        case list([Expr])
        case tuple([Expr])
        case dict([(key: Expr, value: Expr)])
        case getattr(Expr, String)
        case getitem(Expr, Expr)
        case slice(Expr, start: Expr?, stop: Expr?, step: Expr?)
        case call(Expr, Arguments)
        case filter(Expr, name: String, Arguments)
        case test(Expr, name: String, Arguments)
        case unary(String, Expr)
        case binary(String, Expr, Expr)
        case concat([Expr])
        case compare(Expr, [(op: String, operand: Expr)])
        case and(Expr, Expr)
        case or(Expr, Expr)
        case not(Expr)
        case conditional(test: Expr, then: Expr, else: Expr?)
    }

    let kind: Kind
    let location: SourceLocation
    /// 1 + the deepest sub-expression's depth (the parser refuses trees deeper than the nesting limit,
    /// so that evaluating, folding and freeing them cannot exhaust the stack).
    let depth: Int

    init(kind: Kind, location: SourceLocation) {
        self.kind = kind
        self.location = location
        var d = 0
        func see(_ e: Expr?) { if let e { d = max(d, e.depth) } }
        func see(_ a: Arguments) { a.positional.forEach { see($0) }; a.keyword.forEach { see($0.value) } }
        switch kind {
        case .literal, .name: break
        case .list(let a), .tuple(let a), .concat(let a): a.forEach { see($0) }
        case .dict(let pairs): pairs.forEach { see($0.key); see($0.value) }
        case .getattr(let b, _): see(b)
        case .getitem(let a, let b): see(a); see(b)
        case .slice(let a, let b, let c, let e): see(a); see(b); see(c); see(e)
        case .call(let f, let args): see(f); see(args)
        case .filter(let b, _, let args), .test(let b, _, let args): see(b); see(args)
        case .unary(_, let a), .not(let a): see(a)
        case .binary(_, let a, let b), .and(let a, let b), .or(let a, let b): see(a); see(b)
        case .compare(let a, let ops): see(a); ops.forEach { see($0.operand) }
        case .conditional(let a, let b, let c): see(a); see(b); see(c)
        }
        depth = d + 1
    }
}

/// The arguments of a call, filter or test.
struct Arguments: Sendable {
    var positional: [Expr] = []
    var keyword: [(name: String, value: Expr)] = []
}

/// What `set`, `for` and `with` assign to.
indirect enum Target: Sendable {
    case name(String)
    case tuple([Target])
    /// `ns.attr` (only a namespace accepts it, checked when rendering).
    case namespaceAttribute(String, String)
}

/// A `{% macro %}` definition.
struct MacroDefinition: Sendable {
    let name: String
    let parameters: [String]
    /// Defaults of the last parameters, aligned to the end of `parameters`.
    let defaults: [Expr]
    let body: [Stmt]
    let location: SourceLocation
    /// The macro's body mentions `caller`, `varargs` or `kwargs` (then it accepts a caller, extra
    /// positional or keyword arguments, as jinja2 decides from the body).
    let usesCaller: Bool
    let usesVarargs: Bool
    let usesKwargs: Bool
    /// Names the macro's frame starts with as undefined (see Scoping.swift).
    var frameUndefined: [String] = []
}

/// A statement with its place in the template.
struct Stmt: Sendable {
    indirect enum Kind: Sendable {
        case data(String)
        case output(Expr)
        case `if`([(test: Expr, body: [Stmt])], else: [Stmt])
        case `for`(Target, iterable: Expr, filter: Expr?, body: [Stmt], else: [Stmt])
        case set(Target, Expr)
        case setBlock(Target, filters: [(name: String, Arguments, SourceLocation)], body: [Stmt])
        case macro(MacroDefinition)
        case callBlock(call: Expr, caller: MacroDefinition)
        case filterBlock(filters: [(name: String, Arguments, SourceLocation)], body: [Stmt])
        case with(assignments: [(Target, Expr)], body: [Stmt])
        case `break`
        case `continue`
    }

    let kind: Kind
    let location: SourceLocation
    /// For a statement that opens a frame (for, set block, filter block, with): the names the frame
    /// starts with as undefined (see Scoping.swift).
    var frameUndefined: [String] = []
}

struct Parser {
    private let tokens: [Token]
    private var index = 0
    private let maxNesting: Int
    private var nesting = 0
    /// The tags whose end the parser is looking for, innermost last (for error messages).
    private var openTags: [(name: String, location: SourceLocation)] = []
    private var loopDepth = 0

    /// Parses a whole template; returns its statements (scoped and constant-folded as jinja2 compiles
    /// them) and the names its top level starts without (Scoping.swift).
    static func parse(_ source: String, limits: ChatTemplateLimits) throws(ChatTemplateError) -> (body: [Stmt], undefined: [String]) {
        let tokens = try Lexer.tokenize(source)
        var parser = Parser(tokens: tokens, maxNesting: limits.maxNesting)
        let body = try parser.subparse(until: [])
        guard case .eof = parser.current.kind else { throw parser.unexpected() }
        let (scoped, undefined) = Scoping.annotate(body)
        return (Optimizer(limits: limits).fold(scoped), undefined)
    }

    private init(tokens: [Token], maxNesting: Int) {
        self.tokens = tokens
        self.maxNesting = maxNesting
    }

    // MARK: token stream

    private var current: Token { tokens[index] }
    private var peek: Token { tokens[min(index + 1, tokens.count - 1)] }

    private mutating func advance() -> Token {
        let t = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    private func isOp(_ op: String, _ t: Token? = nil) -> Bool {
        if case .op(let o) = (t ?? current).kind { return o == op }
        return false
    }

    private func isName(_ name: String, _ t: Token? = nil) -> Bool {
        if case .name(let n) = (t ?? current).kind { return n == name }
        return false
    }

    private mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) { _ = advance(); return true }
        return false
    }

    private mutating func skipName(_ name: String) -> Bool {
        if isName(name) { _ = advance(); return true }
        return false
    }

    private mutating func expectOp(_ op: String) throws(ChatTemplateError) {
        guard skipOp(op) else { throw unexpected(expected: "'\(op)'") }
    }

    private mutating func expectName() throws(ChatTemplateError) -> String {
        guard case .name(let n) = current.kind else { throw unexpected(expected: "a name") }
        _ = advance()
        return n
    }

    private mutating func expectBlockEnd() throws(ChatTemplateError) {
        guard case .blockEnd = current.kind else { throw unexpected(expected: "the end of the statement ('%}')") }
        _ = advance()
    }

    private static func describe(_ t: Token) -> String {
        switch t.kind {
        case .data: return "text"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case .name(let n): return "'\(n)'"
        case .string(let s): return "string \(pythonRepr(s))"
        case .integer(let i): return "integer \(i)"
        case .float(let d): return "number \(pythonFloatRepr(d))"
        case .op(let o): return "'\(o)'"
        case .eof: return "the end of the template"
        }
    }

    private func unexpected(expected: String? = nil) -> ChatTemplateError {
        if case .eof = current.kind, let open = openTags.last {
            return .syntax(what: "unexpected end of template: the '\(open.name)' block opened at \(open.location) is not closed"
                           + (expected.map { " (expected \($0))" } ?? ""), at: current.location)
        }
        var what = "unexpected \(Parser.describe(current))"
        if let expected { what += ", expected \(expected)" }
        return .syntax(what: what, at: current.location)
    }

    /// Refuses an expression tree deeper than the nesting limit (long operator chains nest too).
    private func checked(_ e: Expr) throws(ChatTemplateError) -> Expr {
        if e.depth > maxNesting {
            throw .limitExceeded(what: "nesting of expressions", limit: maxNesting, at: e.location)
        }
        return e
    }

    private mutating func nest() throws(ChatTemplateError) {
        nesting += 1
        if nesting > maxNesting {
            throw .limitExceeded(what: "nesting of statements and expressions", limit: maxNesting, at: current.location)
        }
    }

    // MARK: statements

    /// Parses statements until a `{%` followed by one of `names` (left as the current token) or the end.
    private mutating func subparse(until names: [String]) throws(ChatTemplateError) -> [Stmt] {
        var body: [Stmt] = []
        while true {
            let t = current
            switch t.kind {
            case .data(let text):
                _ = advance()
                body.append(Stmt(kind: .data(text), location: t.location))
            case .variableBegin:
                _ = advance()
                let e = try parseTuple()
                guard case .variableEnd = current.kind else { throw unexpected(expected: "the end of the expression ('}}')") }
                _ = advance()
                body.append(Stmt(kind: .output(e), location: t.location))
            case .blockBegin:
                _ = advance()
                if case .name(let n) = current.kind, names.contains(n) { return body }
                if let s = try parseStatement() { body.append(s) }
                try expectBlockEnd()
            case .eof:
                if let open = openTags.last, !names.isEmpty {
                    throw .syntax(what: "unexpected end of template: the '\(open.name)' block opened at \(open.location) is not closed"
                                  + " (expected " + names.map { "'\($0)'" }.joined(separator: " or ") + ")", at: t.location)
                }
                return body
            default:
                throw unexpected()
            }
        }
    }

    /// After `{% name ... %}`: the statements up to one of `names`, whose name token is then current.
    private mutating func parseBody(until names: [String]) throws(ChatTemplateError) -> [Stmt] {
        _ = skipOp(":")
        try expectBlockEnd()
        return try subparse(until: names)
    }

    private mutating func parseStatement() throws(ChatTemplateError) -> Stmt? {
        let t = current
        guard case .name(let tag) = t.kind else { throw unexpected(expected: "a tag name") }
        try nest()
        defer { nesting -= 1 }
        openTags.append((tag, t.location))
        defer { openTags.removeLast() }
        switch tag {
        case "if": return try parseIf()
        case "for": return try parseFor()
        case "set": return try parseSet()
        case "macro": return try parseMacro()
        case "call": return try parseCallBlock()
        case "filter": return try parseFilterBlock()
        case "with": return try parseWith()
        case "print":
            _ = advance()
            return Stmt(kind: .output(try parseTuple()), location: t.location)
        case "break", "continue":
            _ = advance()
            guard loopDepth > 0 else { throw .syntax(what: "'\(tag)' outside of a for loop", at: t.location) }
            return Stmt(kind: tag == "break" ? .break : .continue, location: t.location)
        case "generation":
            // transformers' AssistantTracker: {% generation %}…{% endgeneration %} renders its body.
            _ = advance()
            let body = try parseBody(until: ["endgeneration"])
            _ = advance()
            return Stmt(kind: .if([(Expr(kind: .literal(.bool(true)), location: t.location), body)], else: []), location: t.location)
        case "block", "extends", "include", "import", "from", "autoescape", "do", "trans", "pluralize":
            throw .unsupported(construct: "the '\(tag)' tag", at: t.location)
        default:
            var what = "unknown tag '\(tag)'"
            if openTags.count > 1 {
                let open = openTags[openTags.count - 2]
                what += " (the innermost open block is '\(open.name)', opened at \(open.location))"
            }
            throw .syntax(what: what, at: t.location)
        }
    }

    private mutating func parseIf() throws(ChatTemplateError) -> Stmt {
        let location = advance().location
        var branches: [(test: Expr, body: [Stmt])] = []
        var test = try parseTuple(withConditional: false)
        while true {
            let body = try parseBody(until: ["elif", "else", "endif"])
            branches.append((test, body))
            let needle = advance()
            if isName("elif", needle) {
                test = try parseTuple(withConditional: false)
                continue
            }
            if isName("else", needle) {
                let elseBody = try parseBody(until: ["endif"])
                _ = advance()
                return Stmt(kind: .if(branches, else: elseBody), location: location)
            }
            return Stmt(kind: .if(branches, else: []), location: location)
        }
    }

    private mutating func parseFor() throws(ChatTemplateError) -> Stmt {
        let location = advance().location
        let target = try parseAssignTarget(endNames: ["in"], withNamespace: false)
        guard skipName("in") else { throw unexpected(expected: "'in'") }
        let iterable = try parseTuple(withConditional: false, endNames: ["recursive"])
        var filter: Expr? = nil
        if skipName("if") { filter = try parseExpression() }
        if isName("recursive") { throw .unsupported(construct: "a recursive for loop", at: current.location) }
        loopDepth += 1
        let body = try parseBody(until: ["endfor", "else"])
        loopDepth -= 1
        var elseBody: [Stmt] = []
        if isName("else", advance()) {
            elseBody = try parseBody(until: ["endfor"])
            _ = advance()
        }
        return Stmt(kind: .for(target, iterable: iterable, filter: filter, body: body, else: elseBody), location: location)
    }

    private mutating func parseSet() throws(ChatTemplateError) -> Stmt {
        let location = advance().location
        let target = try parseAssignTarget(endNames: [], withNamespace: true)
        if skipOp("=") {
            return Stmt(kind: .set(target, try parseTuple()), location: location)
        }
        let filters = try parseFilterChain(startInline: false)
        let body = try parseBody(until: ["endset"])
        _ = advance()
        return Stmt(kind: .setBlock(target, filters: filters, body: body), location: location)
    }

    private mutating func parseWith() throws(ChatTemplateError) -> Stmt {
        let location = advance().location
        var assignments: [(Target, Expr)] = []
        while true {
            if case .blockEnd = current.kind { break }
            if !assignments.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget(endNames: [], withNamespace: false, withTuple: false)
            try expectOp("=")
            assignments.append((target, try parseExpression()))
        }
        let body = try parseBody(until: ["endwith"])
        _ = advance()
        return Stmt(kind: .with(assignments: assignments, body: body), location: location)
    }

    private mutating func parseSignature() throws(ChatTemplateError) -> (params: [String], defaults: [Expr]) {
        var params: [String] = [], defaults: [Expr] = []
        try expectOp("(")
        while !isOp(")") {
            if !params.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            let name = try expectName()
            if skipOp("=") {
                defaults.append(try parseExpression())
            } else if !defaults.isEmpty {
                throw .syntax(what: "non-default argument '\(name)' follows default argument", at: current.location)
            }
            params.append(name)
        }
        try expectOp(")")
        return (params, defaults)
    }

    private mutating func parseMacro() throws(ChatTemplateError) -> Stmt {
        let location = advance().location
        let name = try expectName()
        let (params, defaults) = try parseSignature()
        let body = try parseBody(until: ["endmacro"])
        _ = advance()
        return Stmt(kind: .macro(makeMacro(name, params, defaults, body, location)), location: location)
    }

    private func makeMacro(_ name: String, _ params: [String], _ defaults: [Expr], _ body: [Stmt], _ location: SourceLocation) -> MacroDefinition {
        let names = Parser.namesUsed(body)
        return MacroDefinition(name: name, parameters: params, defaults: defaults, body: body, location: location,
                               usesCaller: names.contains("caller"), usesVarargs: names.contains("varargs"),
                               usesKwargs: names.contains("kwargs"))
    }

    private mutating func parseCallBlock() throws(ChatTemplateError) -> Stmt {
        let location = advance().location
        var params: [String] = [], defaults: [Expr] = []
        if isOp("(") { (params, defaults) = try parseSignature() }
        let call = try parseExpression()
        guard case .call = call.kind else { throw .syntax(what: "expected a call after 'call'", at: call.location) }
        let body = try parseBody(until: ["endcall"])
        _ = advance()
        let caller = makeMacro("caller", params, defaults, body, location)
        return Stmt(kind: .callBlock(call: call, caller: caller), location: location)
    }

    private mutating func parseFilterBlock() throws(ChatTemplateError) -> Stmt {
        let location = advance().location
        let filters = try parseFilterChain(startInline: true)
        let body = try parseBody(until: ["endfilter"])
        _ = advance()
        return Stmt(kind: .filterBlock(filters: filters, body: body), location: location)
    }

    /// `name[.name](args) | name(args) ...` (the first pipe implied when `startInline`).
    private mutating func parseFilterChain(startInline: Bool) throws(ChatTemplateError) -> [(name: String, Arguments, SourceLocation)] {
        var out: [(name: String, Arguments, SourceLocation)] = []
        var inline = startInline
        while isOp("|") || inline {
            if !inline { _ = advance() }
            inline = false
            let location = current.location
            let name = try parseFilterName(kind: "filter")
            let args = isOp("(") ? try parseCallArguments() : Arguments()
            out.append((name, args, location))
        }
        return out
    }

    private mutating func parseAssignTarget(endNames: [String], withNamespace: Bool, withTuple: Bool = true) throws(ChatTemplateError) -> Target {
        func one(_ p: inout Parser) throws(ChatTemplateError) -> Target {
            let t = p.current
            guard case .name(let n) = t.kind else { throw p.unexpected(expected: "a name to assign to") }
            if ["true", "false", "none", "True", "False", "None"].contains(n) {
                throw .syntax(what: "cannot assign to the constant '\(n)'", at: t.location)
            }
            _ = p.advance()
            if withNamespace, p.isOp(".") {
                _ = p.advance()
                let attr = try p.expectName()
                return .namespaceAttribute(n, attr)
            }
            return .name(n)
        }
        guard withTuple else { return try one(&self) }
        var items: [Target] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(endNames) { break }
            items.append(try one(&self))
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple, let first = items.first { return first }
        guard !items.isEmpty else { throw unexpected(expected: "a name to assign to") }
        return .tuple(items)
    }

    private func isTupleEnd(_ endNames: [String]) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd: return true
        case .op(")"): return true
        case .name(let n): return endNames.contains(n)
        default: return false
        }
    }

    // MARK: expressions

    /// jinja2's parse_tuple: one expression, or several separated by commas (a tuple).
    private mutating func parseTuple(withConditional: Bool = true, endNames: [String] = [], explicitParentheses: Bool = false) throws(ChatTemplateError) -> Expr {
        let location = current.location
        var items: [Expr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(endNames) { break }
            items.append(withConditional ? try parseExpression() : try parseOr())
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let first = items.first { return first }
            if !explicitParentheses { throw unexpected(expected: "an expression") }
        }
        return Expr(kind: .tuple(items), location: location)
    }

    private mutating func parseExpression() throws(ChatTemplateError) -> Expr {
        try nest()
        defer { nesting -= 1 }
        var expr = try parseOr()
        while isName("if") {
            let location = advance().location
            let test = try parseOr()
            var otherwise: Expr? = nil
            if skipName("else") { otherwise = try parseExpression() }
            expr = try checked(Expr(kind: .conditional(test: test, then: expr, else: otherwise), location: location))
        }
        return expr
    }

    private mutating func parseOr() throws(ChatTemplateError) -> Expr {
        var left = try parseAnd()
        while isName("or") {
            let location = advance().location
            left = try checked(Expr(kind: .or(left, try parseAnd()), location: location))
        }
        return left
    }

    private mutating func parseAnd() throws(ChatTemplateError) -> Expr {
        var left = try parseNot()
        while isName("and") {
            let location = advance().location
            left = try checked(Expr(kind: .and(left, try parseNot()), location: location))
        }
        return left
    }

    private mutating func parseNot() throws(ChatTemplateError) -> Expr {
        if isName("not") {
            let location = advance().location
            try nest()
            defer { nesting -= 1 }
            return Expr(kind: .not(try parseNot()), location: location)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(ChatTemplateError) -> Expr {
        let location = current.location
        let first = try parseMath1()
        var ops: [(op: String, operand: Expr)] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                _ = advance()
                ops.append((o, try parseMath1()))
            } else if skipName("in") {
                ops.append(("in", try parseMath1()))
            } else if isName("not"), isName("in", peek) {
                _ = advance(); _ = advance()
                ops.append(("not in", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? first : try checked(Expr(kind: .compare(first, ops), location: location))
    }

    private mutating func parseMath1() throws(ChatTemplateError) -> Expr {
        var left = try parseConcat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let location = advance().location
            left = try checked(Expr(kind: .binary(o, left, try parseConcat()), location: location))
        }
        return left
    }

    private mutating func parseConcat() throws(ChatTemplateError) -> Expr {
        let location = current.location
        var items = [try parseMath2()]
        while skipOp("~") { items.append(try parseMath2()) }
        return items.count == 1 ? items[0] : try checked(Expr(kind: .concat(items), location: location))
    }

    private mutating func parseMath2() throws(ChatTemplateError) -> Expr {
        var left = try parsePow()
        while case .op(let o) = current.kind, ["*", "/", "//", "%"].contains(o) {
            let location = advance().location
            left = try checked(Expr(kind: .binary(o, left, try parsePow()), location: location))
        }
        return left
    }

    private mutating func parsePow() throws(ChatTemplateError) -> Expr {
        var left = try parseUnary()
        while isOp("**") {
            let location = advance().location
            left = try checked(Expr(kind: .binary("**", left, try parseUnary()), location: location))
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws(ChatTemplateError) -> Expr {
        try nest()
        defer { nesting -= 1 }
        var node: Expr
        if case .op(let o) = current.kind, o == "-" || o == "+" {
            let location = advance().location
            node = Expr(kind: .unary(o, try parseUnary(withFilter: false)), location: location)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws(ChatTemplateError) -> Expr {
        let t = current
        switch t.kind {
        case .name(let n):
            _ = advance()
            switch n {
            case "true", "True": return Expr(kind: .literal(.bool(true)), location: t.location)
            case "false", "False": return Expr(kind: .literal(.bool(false)), location: t.location)
            case "none", "None": return Expr(kind: .literal(.none), location: t.location)
            default: return Expr(kind: .name(n), location: t.location)
            }
        case .string(var s):
            _ = advance()
            while case .string(let more) = current.kind { s += more; _ = advance() }
            return Expr(kind: .literal(.string(s)), location: t.location)
        case .integer(let i):
            _ = advance()
            return Expr(kind: .literal(.int(i)), location: t.location)
        case .float(let d):
            _ = advance()
            return Expr(kind: .literal(.float(d)), location: t.location)
        case .op("("):
            _ = advance()
            try nest()
            defer { nesting -= 1 }
            let e = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return e
        case .op("["):
            _ = advance()
            try nest()
            defer { nesting -= 1 }
            var items: [Expr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return Expr(kind: .list(items), location: t.location)
        case .op("{"):
            _ = advance()
            try nest()
            defer { nesting -= 1 }
            var items: [(key: Expr, value: Expr)] = []
            while !isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                items.append((key, try parseExpression()))
            }
            try expectOp("}")
            return Expr(kind: .dict(items), location: t.location)
        default:
            throw unexpected(expected: "an expression")
        }
    }

    private mutating func parsePostfix(_ start: Expr) throws(ChatTemplateError) -> Expr {
        var node = start
        while true {
            node = try checked(node)
            if isOp(".") {
                let location = advance().location
                let t = advance()
                switch t.kind {
                case .name(let n): node = Expr(kind: .getattr(node, n), location: location)
                case .integer(let i): node = Expr(kind: .getitem(node, Expr(kind: .literal(.int(i)), location: t.location)), location: location)
                default: index -= 1; throw unexpected(expected: "a name or number after '.'")
                }
            } else if isOp("[") {
                let location = advance().location
                try nest()
                var args: [Expr] = []
                while !isOp("]") {
                    if !args.isEmpty { try expectOp(",") }
                    args.append(try parseSubscribed())
                }
                try expectOp("]")
                nesting -= 1
                if args.count == 1 {
                    if case .slice(_, let a, let b, let c) = args[0].kind {
                        node = Expr(kind: .slice(node, start: a, stop: b, step: c), location: location)
                    } else {
                        node = Expr(kind: .getitem(node, args[0]), location: location)
                    }
                } else {
                    node = Expr(kind: .getitem(node, Expr(kind: .tuple(args), location: location)), location: location)
                }
            } else if isOp("(") {
                node = Expr(kind: .call(node, try parseCallArguments()), location: node.location)
            } else {
                return try checked(node)
            }
        }
    }

    /// One subscript: an expression or a slice `[start]:[stop][:[step]]` (returned as a slice of a dummy).
    private mutating func parseSubscribed() throws(ChatTemplateError) -> Expr {
        let location = current.location
        var start: Expr? = nil
        if !isOp(":") {
            let e = try parseExpression()
            if !isOp(":") { return e }
            start = e
        }
        _ = advance()  // the first ':'
        var stop: Expr? = nil, step: Expr? = nil
        if !isOp(":"), !isOp("]"), !isOp(",") { stop = try parseExpression() }
        if skipOp(":") {
            if !isOp("]"), !isOp(",") { step = try parseExpression() }
        }
        let dummy = Expr(kind: .literal(.none), location: location)
        return Expr(kind: .slice(dummy, start: start, stop: stop, step: step), location: location)
    }

    private mutating func parseCallArguments() throws(ChatTemplateError) -> Arguments {
        try expectOp("(")
        try nest()
        defer { nesting -= 1 }
        var args = Arguments()
        while !isOp(")") {
            if !args.positional.isEmpty || !args.keyword.isEmpty { try expectOp(",") }
            if isOp(")") { break }
            if isOp("*") || isOp("**") {
                throw .unsupported(construct: "'\(isOp("*") ? "*" : "**")' argument unpacking", at: current.location)
            }
            if case .name(let n) = current.kind, isOp("=", peek) {
                _ = advance(); _ = advance()
                args.keyword.append((n, try parseExpression()))
            } else {
                if !args.keyword.isEmpty { throw .syntax(what: "positional argument after a keyword argument", at: current.location) }
                args.positional.append(try parseExpression())
            }
        }
        try expectOp(")")
        return args
    }

    private mutating func parseFilterName(kind: String) throws(ChatTemplateError) -> String {
        let location = current.location
        var name = try expectName()
        while isOp(".") { _ = advance(); name += "." + (try expectName()) }
        let known = kind == "filter" ? Builtins.filterNames : Builtins.testNames
        if !known.contains(name) {
            if (kind == "filter" ? Builtins.unsupportedFilterNames : Builtins.unsupportedTestNames).contains(name) {
                throw .unsupported(construct: "the '\(name)' \(kind)", at: location)
            }
            throw .unsupported(construct: "an unknown \(kind) '\(name)' (jinja2 has no \(kind) of that name either)", at: location)
        }
        return name
    }

    /// Filters, tests and calls after a unary operand (jinja2's parse_filter_expr).
    private mutating func parseFilterExpression(_ start: Expr) throws(ChatTemplateError) -> Expr {
        var node = start
        while true {
            node = try checked(node)
            if isOp("|") {
                for (name, args, location) in try parseFilterChain(startInline: false) {
                    node = Expr(kind: .filter(node, name: name, args), location: location)
                }
            } else if isName("is") {
                let location = advance().location
                let negated = skipName("not")
                let name = try parseFilterName(kind: "test")
                var args = Arguments()
                if isOp("(") {
                    args = try parseCallArguments()
                } else if startsBareTestArgument() {
                    if isName("is") { throw .syntax(what: "tests cannot be chained with 'is'", at: current.location) }
                    args.positional = [try parsePostfix(try parsePrimary())]
                }
                node = Expr(kind: .test(node, name: name, args), location: location)
                if negated { node = Expr(kind: .not(node), location: location) }
            } else if isOp("(") {
                node = Expr(kind: .call(node, try parseCallArguments()), location: node.location)
            } else {
                return try checked(node)
            }
        }
    }

    private func startsBareTestArgument() -> Bool {
        switch current.kind {
        case .name(let n): return !["else", "or", "and"].contains(n)
        case .string, .integer, .float, .op("("), .op("["), .op("{"): return true
        default: return false
        }
    }

    /// The names an expression reads, in order.
    static func namesRead(_ e: Expr) -> [String] {
        var out: [String] = []
        func expr(_ e: Expr?) {
            guard let e else { return }
            switch e.kind {
            case .literal: break
            case .name(let n): out.append(n)
            case .list(let a), .tuple(let a), .concat(let a): a.forEach { expr($0) }
            case .dict(let d): d.forEach { expr($0.key); expr($0.value) }
            case .getattr(let b, _): expr(b)
            case .getitem(let a, let b): expr(a); expr(b)
            case .slice(let a, let b, let c, let d): expr(a); expr(b); expr(c); expr(d)
            case .call(let f, let args): expr(f); args.positional.forEach { expr($0) }; args.keyword.forEach { expr($0.value) }
            case .filter(let b, _, let args), .test(let b, _, let args):
                expr(b); args.positional.forEach { expr($0) }; args.keyword.forEach { expr($0.value) }
            case .unary(_, let a), .not(let a): expr(a)
            case .binary(_, let a, let b), .and(let a, let b), .or(let a, let b): expr(a); expr(b)
            case .compare(let a, let ops): expr(a); ops.forEach { expr($0.operand) }
            case .conditional(let a, let b, let c): expr(a); expr(b); expr(c)
            }
        }
        expr(e)
        return out
    }

    /// The names a list of statements reads anywhere (for the macro's caller/varargs/kwargs).
    static func namesUsed(_ body: [Stmt]) -> Set<String> {
        var out = Set<String>()
        func expr(_ e: Expr?) { if let e { out.formUnion(namesRead(e)) } }
        func stmts(_ list: [Stmt]) {
            for s in list {
                switch s.kind {
                case .data, .break, .continue: break
                case .output(let e), .set(_, let e): expr(e)
                case .if(let branches, let e): branches.forEach { expr($0.test); stmts($0.body) }; stmts(e)
                case .for(_, let it, let f, let b, let e): expr(it); expr(f); stmts(b); stmts(e)
                case .setBlock(_, let filters, let b), .filterBlock(let filters, let b):
                    filters.forEach { $0.1.positional.forEach { expr($0) }; $0.1.keyword.forEach { expr($0.value) } }
                    stmts(b)
                case .macro: break  // a nested macro has its own caller
                case .callBlock(let call, let caller): expr(call); stmts(caller.body)
                case .with(let a, let b): a.forEach { expr($0.1) }; stmts(b)
                }
            }
        }
        stmts(body)
        return out
    }
}

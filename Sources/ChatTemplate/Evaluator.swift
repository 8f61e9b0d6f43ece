// The evaluator: runs a parsed template against variables and returns the text, with jinja2's rules.
//
// Scopes, as jinja2 compiles them: the globals (range, dict, namespace, raise_exception, strftime_now…),
// the render variables, the template's top level (where a top-level `{% set %}` writes), then one scope
// per `for` iteration (fresh each iteration: a `set` inside a loop is gone after it, which is why
// templates use `namespace()`), per macro call and per `with` block. `if` blocks open no scope.
// A macro sees its parameters, the scopes where it was defined and the template's top level.
//
// jinja2's sandbox (ImmutableSandboxedEnvironment) is mirrored where templates can notice it: methods
// that would mutate a list or dict (`append`, `update`…) are refused with a SecurityError, `range` is
// limited to 100000 items, and namespaces refuse attributes that start with "_" (transformers' rule).
// Every loop iteration, evaluation step, macro call and output byte is counted against ChatTemplateLimits.

final class Evaluator {
    let limits: ChatTemplateLimits
    let now: BrokenDownTime
    var scopes: [[String: Value]]
    /// The text being written: the output, and one more buffer per `set` block, macro call or filter block.
    private var buffers: [String] = [""]
    private var bufferBytes: [Int] = [0]
    var iterations = 0
    var steps = 0
    var callDepth = 0
    /// Statements and expressions being evaluated inside each other.
    private var depth = 0
    /// Evaluating a constant expression when the template is compiled (jinja2's `as_const`).
    var constantFolding = false

    /// Scopes below which a macro's own scopes start: globals, render variables, top level.
    static let baseScopes = 3

    init(variables: [String: Value], limits: ChatTemplateLimits, now: BrokenDownTime, topLevelUndefined: [String] = []) {
        self.limits = limits
        self.now = now
        var globals: [String: Value] = [:]
        for name in Builtins.globalNames { globals[name] = .callable(.global(name)) }
        scopes = [globals, variables, Evaluator.frame(topLevelUndefined)]
    }

    /// A new frame's scope: the names jinja2 starts the frame with as undefined (Scoping.swift).
    static func frame(_ undefined: [String]) -> [String: Value] {
        var scope: [String: Value] = [:]
        for n in undefined { scope[n] = .undefined(.name(n)) }
        return scope
    }

    func render(_ body: [Stmt]) throws(ChatTemplateError) -> String {
        _ = try exec(body)
        return buffers[0]
    }

    // MARK: errors

    /// Runs a Python-level operation, turning its exception into a located ChatTemplateError.
    func py<T>(_ at: SourceLocation, _ body: () throws(PyError) -> T) throws(ChatTemplateError) -> T {
        do {
            return try body()
        } catch {
            throw Evaluator.convert(error, at: at)
        }
    }

    static func convert(_ e: PyError, at: SourceLocation) -> ChatTemplateError {
        switch e.kind {
        case .raised: return .raised(message: e.message, at: at)
        case .limit: return .limitExceeded(what: e.message, limit: e.limit, at: at)
        case .unsupported: return .unsupported(construct: e.message, at: at)
        default: return .runtime(pythonType: e.kind.pythonType, message: e.message, at: at)
        }
    }

    /// Counts `n` steps of work.
    func charge(_ n: Int = 1) throws(PyError) {
        steps += n
        if steps > limits.maxSteps { throw PyError(.limit, "evaluation steps", limit: limits.maxSteps) }
    }

    /// Checks the size of a string an operation built.
    func checkSize(_ s: String) throws(PyError) -> String {
        if s.utf8.count > limits.maxOutputBytes { throw PyError(.limit, "the size of a string in bytes", limit: limits.maxOutputBytes) }
        try charge(s.utf8.count / 64)
        return s
    }

    /// Checks the size and depth of a list, tuple or dict an operation built.
    func checkCollection(_ v: Value) throws(PyError) -> Value {
        let count: Int
        switch v {
        case .list(let l), .tuple(let l): count = l.items.count
        case .dict(let d): count = d.count
        default: return v
        }
        if count > limits.maxCollectionCount { throw PyError(.limit, "the number of items in a list or dict", limit: limits.maxCollectionCount) }
        if v.depth > ChatTemplateLimits.maxValueDepth { throw PyError(.limit, "the nesting depth of a value", limit: ChatTemplateLimits.maxValueDepth) }
        try charge(count / 16)
        return v
    }

    // MARK: output

    private func write(_ s: String, at: SourceLocation) throws(ChatTemplateError) {
        let n = s.utf8.count
        bufferBytes[bufferBytes.count - 1] += n
        if bufferBytes[bufferBytes.count - 1] > limits.maxOutputBytes {
            throw .limitExceeded(what: "the rendered text in bytes", limit: limits.maxOutputBytes, at: at)
        }
        buffers[buffers.count - 1] += s
    }

    /// Renders `body` into a fresh buffer and returns the text.
    func capture(_ body: [Stmt]) throws(ChatTemplateError) -> (String, Flow) {
        buffers.append("")
        bufferBytes.append(0)
        defer { buffers.removeLast(); bufferBytes.removeLast() }
        let flow = try exec(body)
        return (buffers[buffers.count - 1], flow)
    }

    // MARK: variables

    func lookup(_ name: String) -> Value {
        for scope in scopes.reversed() {
            if let v = scope[name] { return v }
        }
        return .undefined(.name(name))
    }

    private func assign(_ target: Target, _ value: Value, at: SourceLocation) throws(ChatTemplateError) {
        switch target {
        case .name(let n):
            scopes[scopes.count - 1][n] = value
        case .tuple(let targets):
            let items = try py(at) { () throws(PyError) in try value.iterate() }
            guard items.count == targets.count else {
                throw .runtime(pythonType: "ValueError", message: items.count > targets.count
                               ? "too many values to unpack (expected \(targets.count))"
                               : "not enough values to unpack (expected \(targets.count), got \(items.count))", at: at)
            }
            for (t, v) in zip(targets, items) { try assign(t, v, at: at) }
        case .namespaceAttribute(let n, let attr):
            guard case .namespace(let ns) = lookup(n), !ns.isLoop else {
                throw .runtime(pythonType: "TemplateRuntimeError", message: "cannot assign attribute on non-namespace object", at: at)
            }
            if attr.hasPrefix("_") {
                throw .runtime(pythonType: "SecurityError", message: "Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(pythonRepr(attr)). Please rename the attribute.", at: at)
            }
            if value.depth >= ChatTemplateLimits.maxValueDepth || ns.depth >= ChatTemplateLimits.maxValueDepth {
                throw .limitExceeded(what: "the nesting depth of a value", limit: ChatTemplateLimits.maxValueDepth, at: at)
            }
            ns.set(attr, value)
        }
    }

    // MARK: statements

    enum Flow { case normal, breakLoop, continueLoop }

    func exec(_ body: [Stmt]) throws(ChatTemplateError) -> Flow {
        for s in body {
            let flow = try execOne(s)
            if flow != .normal { return flow }
        }
        return .normal
    }

    /// Counts one level of evaluation nesting.
    private func enter(_ at: SourceLocation) throws(ChatTemplateError) {
        depth += 1
        if depth > limits.maxEvaluationDepth {
            throw .limitExceeded(what: "evaluation depth (statements and expressions inside each other, across macro calls)",
                                 limit: limits.maxEvaluationDepth, at: at)
        }
    }

    private func execOne(_ s: Stmt) throws(ChatTemplateError) -> Flow {
        try enter(s.location)
        defer { depth -= 1 }
        switch s.kind {
        case .data(let text):
            try write(text, at: s.location)
        case .output(let e):
            let v = try eval(e)
            try write(try py(e.location) { () throws(PyError) in try v.str() }, at: e.location)
        case .if(let branches, let otherwise):
            for (test, body) in branches where try eval(test).isTruthy {
                return try exec(body)
            }
            return try exec(otherwise)
        case .for(let target, let iterable, let filter, let body, let otherwise):
            return try execFor(target, iterable, filter, body, otherwise, frame: s.frameUndefined, at: s.location)
        case .set(let target, let e):
            try assign(target, try eval(e), at: s.location)
        case .setBlock(let target, let filters, let body):
            scopes.append(Evaluator.frame(s.frameUndefined))
            let captured = Result { () throws(ChatTemplateError) in try capture(body) }
            scopes.removeLast()
            let (text, _) = try captured.get()
            var v = Value.string(text)
            for (name, args, location) in filters { v = try applyFilter(name, v, args, at: location) }
            try assign(target, v, at: s.location)
        case .macro(let definition):
            let macro = MacroValue(definition: definition, closure: Array(scopes.dropFirst(Evaluator.baseScopes)), isCaller: false)
            scopes[scopes.count - 1][definition.name] = .callable(.macro(macro))
        case .callBlock(let call, let callerDefinition):
            guard case .call(let fn, let args) = call.kind else { return .normal }
            let caller = MacroValue(definition: callerDefinition, closure: Array(scopes.dropFirst(Evaluator.baseScopes)), isCaller: true)
            let callee = try eval(fn)
            var (positional, keyword) = try evalArguments(args)
            keyword.append(("caller", .callable(.macro(caller))))
            let result = try callValue(callee, positional, keyword, at: call.location)
            try write(try py(call.location) { () throws(PyError) in try result.str() }, at: call.location)
        case .filterBlock(let filters, let body):
            scopes.append(Evaluator.frame(s.frameUndefined))
            let captured = Result { () throws(ChatTemplateError) in try capture(body) }
            scopes.removeLast()
            let (text, flow) = try captured.get()
            var v = Value.string(text)
            for (name, args, location) in filters { v = try applyFilter(name, v, args, at: location) }
            try write(try py(s.location) { () throws(PyError) in try v.str() }, at: s.location)
            return flow
        case .with(let assignments, let body):
            var values: [(Target, Value)] = []
            for (t, e) in assignments { values.append((t, try eval(e))) }
            scopes.append(Evaluator.frame(s.frameUndefined))
            defer { scopes.removeLast() }
            for (t, v) in values { try assign(t, v, at: s.location) }
            return try exec(body)
        case .break:
            return .breakLoop
        case .continue:
            return .continueLoop
        }
        return .normal
    }

    private func execFor(_ target: Target, _ iterable: Expr, _ filter: Expr?, _ body: [Stmt], _ otherwise: [Stmt],
                         frame: [String], at: SourceLocation) throws(ChatTemplateError) -> Flow {
        let source = try eval(iterable)
        var items = try py(iterable.location) { () throws(PyError) in try source.iterate() }
        if let filter {
            var kept: [Value] = []
            scopes.append([:])
            defer { scopes.removeLast() }
            for item in items {
                try countIteration(at)
                scopes[scopes.count - 1] = [:]
                try assign(target, item, at: at)
                if try eval(filter).isTruthy { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            return try exec(otherwise)
        }
        let loop = Namespace(ValueDict(), isLoop: true)
        let n = items.count
        for (i, item) in items.enumerated() {
            try countIteration(at)
            var a = ValueDict()
            a.set("index", .int(i + 1)); a.set("index0", .int(i))
            a.set("revindex", .int(n - i)); a.set("revindex0", .int(n - i - 1))
            a.set("first", .bool(i == 0)); a.set("last", .bool(i == n - 1))
            a.set("length", .int(n)); a.set("depth", .int(1)); a.set("depth0", .int(0))
            a.set("previtem", i > 0 ? items[i - 1] : .undefined(Undefined("there is no previous item")))
            a.set("nextitem", i < n - 1 ? items[i + 1] : .undefined(Undefined("there is no next item")))
            loop.replaceAttributes(a)
            var scope = Evaluator.frame(frame)
            scope["loop"] = .namespace(loop)
            scopes.append(scope)
            defer { scopes.removeLast() }
            try assign(target, item, at: at)
            if try exec(body) == .breakLoop { break }
        }
        return .normal
    }

    private func countIteration(_ at: SourceLocation) throws(ChatTemplateError) {
        iterations += 1
        if iterations > limits.maxIterations {
            throw .limitExceeded(what: "loop iterations", limit: limits.maxIterations, at: at)
        }
    }

    // MARK: expressions

    func eval(_ e: Expr) throws(ChatTemplateError) -> Value {
        try enter(e.location)
        defer { depth -= 1 }
        try py(e.location) { () throws(PyError) in try charge() }
        switch e.kind {
        case .literal(let v):
            return v
        case .name(let n):
            if constantFolding { throw .runtime(pythonType: "Impossible", message: "a name is not a constant", at: e.location) }
            return lookup(n)
        case .list(let items):
            var out: [Value] = []
            for i in items { out.append(try eval(i)) }
            return try py(e.location) { () throws(PyError) in try checkCollection(.list(out)) }
        case .tuple(let items):
            var out: [Value] = []
            for i in items { out.append(try eval(i)) }
            return try py(e.location) { () throws(PyError) in try checkCollection(.tuple(out)) }
        case .dict(let pairs):
            var d = ValueDict()
            for (k, v) in pairs {
                let key = try eval(k), value = try eval(v)
                try py(k.location) { () throws(PyError) in try d.set(key, value) }
            }
            return try py(e.location) { () throws(PyError) in try checkCollection(.dict(d)) }
        case .getattr(let base, let name):
            let b = try eval(base)
            return try py(e.location) { () throws(PyError) in try Builtins.getattr(b, name) }
        case .getitem(let base, let key):
            let b = try eval(base), k = try eval(key)
            return try py(e.location) { () throws(PyError) in try Builtins.getitem(b, k) }
        case .slice(let base, let start, let stop, let step):
            let b = try eval(base)
            let a = try start.map { (x) throws(ChatTemplateError) in try eval(x) }
            let z = try stop.map { (x) throws(ChatTemplateError) in try eval(x) }
            let s = try step.map { (x) throws(ChatTemplateError) in try eval(x) }
            let folding = constantFolding
            return try py(e.location) { () throws(PyError) in
                do throws(PyError) {
                    return try Builtins.slice(b, a, z, s)
                } catch {
                    // Folded at compile time, a slice goes through jinja2's getitem: a TypeError is undefined.
                    if folding, error.kind == .type { return .undefined(.element(of: b, .string("slice"))) }
                    throw error
                }
            }
        case .call(let fn, let args):
            if constantFolding { throw .runtime(pythonType: "Impossible", message: "a call is not a constant", at: e.location) }
            let callee = try eval(fn)
            let (positional, keyword) = try evalArguments(args)
            return try callValue(callee, positional, keyword, at: e.location)
        case .filter(let base, let name, let args):
            return try applyFilter(name, try eval(base), args, at: e.location)
        case .test(let base, let name, let args):
            let v = try eval(base)
            let (positional, keyword) = try evalArguments(args)
            return .bool(try py(e.location) { () throws(PyError) in try applyTest(name, v, positional, keyword) })
        case .unary(let op, let operand):
            let v = try eval(operand)
            return try py(e.location) { () throws(PyError) in try Builtins.unary(op, v) }
        case .binary(let op, let l, let r):
            let a = try eval(l), b = try eval(r)
            return try py(e.location) { () throws(PyError) in try binary(op, a, b) }
        case .concat(let items):
            var s = ""
            for i in items {
                let v = try eval(i)
                s += try py(i.location) { () throws(PyError) in try v.str() }
                _ = try py(e.location) { () throws(PyError) in try checkSize(s) }
            }
            return .string(s)
        case .compare(let first, let ops):
            var left = try eval(first)
            for (op, operandExpr) in ops {
                let right = try eval(operandExpr)
                let ok = try py(e.location) { () throws(PyError) in try Builtins.compare(op, left, right) }
                if !ok { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .and(let l, let r):
            let a = try eval(l)
            return a.isTruthy ? try eval(r) : a
        case .or(let l, let r):
            let a = try eval(l)
            return a.isTruthy ? a : try eval(r)
        case .not(let x):
            return .bool(!(try eval(x)).isTruthy)
        case .conditional(let test, let then, let otherwise):
            if try eval(test).isTruthy { return try eval(then) }
            if let otherwise { return try eval(otherwise) }
            return .undefined(Undefined("the inline if-expression on \(e.location) evaluated to false and no else section was defined."))
        }
    }

    func evalArguments(_ args: Arguments) throws(ChatTemplateError) -> ([Value], [(String, Value)]) {
        var positional: [Value] = []
        for a in args.positional { positional.append(try eval(a)) }
        var keyword: [(String, Value)] = []
        for (n, a) in args.keyword { keyword.append((n, try eval(a))) }
        return (positional, keyword)
    }

    /// Arithmetic with the size checks (string and list repetition and concatenation).
    private func binary(_ op: String, _ a: Value, _ b: Value) throws(PyError) -> Value {
        if op == "*" {
            // Check the size before building a repeated string or list.
            var count: Int? = nil, unit = 0
            switch (a, b) {
            case let (.string(s), .int(n)), let (.int(n), .string(s)): count = n; unit = s.utf8.count
            case let (.list(l), .int(n)), let (.int(n), .list(l)), let (.tuple(l), .int(n)), let (.int(n), .tuple(l)): count = n; unit = l.items.count
            default: break
            }
            if let count, count > 0, unit > 0 {
                let (total, overflow) = count.multipliedReportingOverflow(by: unit)
                if overflow || total > min(limits.maxOutputBytes, limits.maxCollectionCount * 8) {
                    throw PyError(.limit, "the size of a repeated string or list", limit: limits.maxOutputBytes)
                }
            }
        }
        let v = try Builtins.binary(op, a, b)
        switch v {
        case .string(let s): return .string(try checkSize(s))
        case .list, .tuple: return try checkCollection(v)
        default: return v
        }
    }

    // MARK: calls

    func callValue(_ callee: Value, _ positional: [Value], _ keyword: [(String, Value)], at: SourceLocation) throws(ChatTemplateError) -> Value {
        switch callee {
        case .callable(.macro(let m)):
            return try callMacro(m, positional, keyword, at: at)
        case .callable(.global(let name)):
            return try py(at) { () throws(PyError) in try callGlobal(name, positional, keyword) }
        case .callable(.method(let receiver, let name)):
            return try py(at) { () throws(PyError) in try callMethod(receiver, name, positional, keyword) }
        case .undefined(let u):
            throw Evaluator.convert(u.error, at: at)
        default:
            throw .runtime(pythonType: "TypeError", message: "'\(callee.typeName)' object is not callable", at: at)
        }
    }

    private func callMacro(_ m: MacroValue, _ positional: [Value], _ keywordIn: [(String, Value)], at: SourceLocation) throws(ChatTemplateError) -> Value {
        let d = m.definition
        var keyword = keywordIn
        callDepth += 1
        defer { callDepth -= 1 }
        if callDepth > limits.maxCallDepth {
            throw .limitExceeded(what: "macro call depth", limit: limits.maxCallDepth, at: at)
        }
        func popKeyword(_ name: String) -> Value? {
            guard let i = keyword.firstIndex(where: { $0.0 == name }) else { return nil }
            return keyword.remove(at: i).1
        }
        var locals = Evaluator.frame(d.frameUndefined)
        var missing: [String] = []
        for (i, p) in d.parameters.enumerated() {
            if i < positional.count { locals[p] = positional[i] }
            else if let v = popKeyword(p) { locals[p] = v }
            else { missing.append(p) }
        }
        if d.usesCaller, !d.parameters.contains("caller") {
            locals["caller"] = popKeyword("caller") ?? .undefined(Undefined("No caller defined"))
        }
        if d.usesKwargs {
            var kw = ValueDict()
            for (k, v) in keyword { kw.set(k, v) }
            locals["kwargs"] = .dict(kw)
        } else if let (k, _) = keyword.first {
            if k == "caller" {
                throw .runtime(pythonType: "TypeError", message: "macro \(pythonRepr(d.name)) was invoked with two values for the special 'caller' argument. This is most likely a bug.", at: at)
            }
            throw .runtime(pythonType: "TypeError", message: "macro \(pythonRepr(d.name)) takes no keyword argument \(pythonRepr(k))", at: at)
        }
        if d.usesVarargs {
            locals["varargs"] = .tuple(Array(positional.dropFirst(d.parameters.count)))
        } else if positional.count > d.parameters.count {
            throw .runtime(pythonType: "TypeError", message: "macro \(pythonRepr(d.name)) takes not more than \(d.parameters.count) argument(s)", at: at)
        }
        let saved = scopes
        scopes = Array(scopes.prefix(Evaluator.baseScopes)) + m.closure + [locals]
        defer { scopes = saved }
        // Defaults are evaluated in the macro's scope, so they can use the parameters before them.
        let firstDefault = d.parameters.count - d.defaults.count
        for (i, p) in d.parameters.enumerated() where missing.contains(p) {
            let v = i >= firstDefault ? try eval(d.defaults[i - firstDefault]) : .undefined(Undefined("parameter \(pythonRepr(p)) was not provided"))
            scopes[scopes.count - 1][p] = v
        }
        let (text, _) = try capture(d.body)
        return .string(text)
    }

    // MARK: filters and tests with the evaluator's help

    func applyFilter(_ name: String, _ value: Value, _ args: Arguments, at: SourceLocation) throws(ChatTemplateError) -> Value {
        let (positional, keyword) = try evalArguments(args)
        return try py(at) { () throws(PyError) in try filter(name, value, positional, keyword) }
    }
}

extension PyError.Kind {
    var pythonType: String {
        switch self {
        case .type: return "TypeError"
        case .value: return "ValueError"
        case .undefined: return "UndefinedError"
        case .zeroDivision: return "ZeroDivisionError"
        case .overflow: return "OverflowError"
        case .security: return "SecurityError"
        case .runtime: return "TemplateRuntimeError"
        case .index: return "KeyError"
        case .limit: return "LimitExceeded"
        case .unsupported: return "Unsupported"
        case .raised: return "TemplateError"
        case .attribute: return "AttributeError"
        case .filterArgument: return "FilterArgumentError"
        case .impossible: return "Impossible"
        }
    }
}

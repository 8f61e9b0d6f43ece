// jinja2's compile-time constant folding, which can change what a template does, so it is mirrored here.
//
// jinja2 (optimizer.py) replaces every expression it can evaluate without the render context (literals,
// operators, subscripts, tests and the filters that need no context; no names, no calls) by its value when that value has a "safe repr" (None, bools,
// numbers, strings and lists/tuples/dicts of them; not an undefined value or a generator); and the code
// generator (`_output_child_to_const`) prints a constant `{{ … }}` expression at compile time whatever its
// value. Evaluated that way (`as_const`), a slice goes through the environment's getitem, so slicing a
// number is undefined in `{{ (2.5)[1:] }}` but a TypeError in `{{ [(2.5)[1:], x] }}`. A constant whose
// evaluation fails is left for run time, where it raises.

struct Optimizer {
    let limits: ChatTemplateLimits

    func fold(_ body: [Stmt]) -> [Stmt] {
        body.map(fold)
    }

    private func fold(_ s: Stmt) -> Stmt {
        func make(_ k: Stmt.Kind) -> Stmt { Stmt(kind: k, location: s.location, frameUndefined: s.frameUndefined) }
        switch s.kind {
        case .data, .break, .continue:
            return s
        case .output(let e):
            let folded = fold(e)
            if let v = value(folded), let text = try? v.str() {
                return make(.data(text))
            }
            return make(.output(folded))
        case .if(let branches, let otherwise):
            return make(.if(branches.map { (fold($0.test), fold($0.body)) }, else: fold(otherwise)))
        case .for(let target, let iterable, let filter, let body, let otherwise):
            return make(.for(target, iterable: fold(iterable), filter: filter.map(fold), body: fold(body), else: fold(otherwise)))
        case .set(let target, let e):
            return make(.set(target, fold(e)))
        case .setBlock(let target, let filters, let body):
            return make(.setBlock(target, filters: filters.map { ($0.name, fold($0.1), $0.2) }, body: fold(body)))
        case .macro(let d):
            return make(.macro(fold(d)))
        case .callBlock(let call, let caller):
            return make(.callBlock(call: fold(call), caller: fold(caller)))
        case .filterBlock(let filters, let body):
            return make(.filterBlock(filters: filters.map { ($0.name, fold($0.1), $0.2) }, body: fold(body)))
        case .with(let assignments, let body):
            return make(.with(assignments: assignments.map { ($0.0, fold($0.1)) }, body: fold(body)))
        }
    }

    private func fold(_ d: MacroDefinition) -> MacroDefinition {
        var out = MacroDefinition(name: d.name, parameters: d.parameters, defaults: d.defaults.map(fold), body: fold(d.body),
                                  location: d.location, usesCaller: d.usesCaller, usesVarargs: d.usesVarargs, usesKwargs: d.usesKwargs)
        out.frameUndefined = d.frameUndefined
        return out
    }

    private func fold(_ a: Arguments) -> Arguments {
        Arguments(positional: a.positional.map(fold), keyword: a.keyword.map { ($0.name, fold($0.value)) })
    }

    /// Folds the children first, then the expression itself when its value has a safe repr.
    private func fold(_ e: Expr) -> Expr {
        func make(_ k: Expr.Kind) -> Expr { Expr(kind: k, location: e.location) }
        let rebuilt: Expr
        switch e.kind {
        case .literal, .name: return e
        case .list(let a): rebuilt = make(.list(a.map(fold)))
        case .tuple(let a): rebuilt = make(.tuple(a.map(fold)))
        case .dict(let d): rebuilt = make(.dict(d.map { (fold($0.key), fold($0.value)) }))
        case .getattr(let b, let n): rebuilt = make(.getattr(fold(b), n))
        case .getitem(let a, let b): rebuilt = make(.getitem(fold(a), fold(b)))
        case .slice(let a, let b, let c, let d): rebuilt = make(.slice(fold(a), start: b.map(fold), stop: c.map(fold), step: d.map(fold)))
        case .call(let f, let args): return make(.call(fold(f), fold(args)))
        case .filter(let b, let n, let args): rebuilt = make(.filter(fold(b), name: n, fold(args)))
        case .test(let b, let n, let args): rebuilt = make(.test(fold(b), name: n, fold(args)))
        case .unary(let op, let a): rebuilt = make(.unary(op, fold(a)))
        case .binary(let op, let a, let b): rebuilt = make(.binary(op, fold(a), fold(b)))
        case .concat(let a): rebuilt = make(.concat(a.map(fold)))
        case .compare(let a, let ops): rebuilt = make(.compare(fold(a), ops.map { ($0.op, fold($0.operand)) }))
        case .and(let a, let b): rebuilt = make(.and(fold(a), fold(b)))
        case .or(let a, let b): rebuilt = make(.or(fold(a), fold(b)))
        case .not(let a): rebuilt = make(.not(fold(a)))
        case .conditional(let a, let b, let c): rebuilt = make(.conditional(test: fold(a), then: fold(b), else: c.map(fold)))
        }
        guard let v = value(rebuilt), Optimizer.hasSafeRepr(v) else { return rebuilt }
        return make(.literal(v))
    }

    /// The value of an expression evaluated as jinja2's `as_const` does (a name, a call or a filter that
    /// needs the context makes it non-constant, and `and`, `or` and `if` only look at the operands they
    /// pick), or nil when it is not constant or its evaluation fails (it is then left for run time).
    private func value(_ e: Expr) -> Value? {
        let evaluator = Evaluator(variables: [:], limits: limits, now: BrokenDownTime(year: 1970, month: 1, day: 1))
        evaluator.constantFolding = true
        if case .conditional(let test, _, nil) = e.kind {
            // jinja2: a conditional without else has no constant value when its test is false.
            guard (try? evaluator.eval(test))?.isTruthy == true else { return nil }
        }
        return try? evaluator.eval(e)
    }

    /// jinja2's `has_safe_repr`: the values a folded constant may hold.
    static func hasSafeRepr(_ v: Value, depth: Int = 0) -> Bool {
        if depth > ChatTemplateLimits.maxCompareDepth { return false }
        switch v {
        case .none, .bool, .int, .float, .string: return true
        case .list(let l), .tuple(let l): return l.items.allSatisfy { hasSafeRepr($0, depth: depth + 1) }
        case .dict(let d): return d.pairs.allSatisfy { hasSafeRepr($0.0, depth: depth + 1) && hasSafeRepr($0.1, depth: depth + 1) }
        default: return false
        }
    }
}

// jinja2's symbol analysis (idtracking.py), reduced to the one place where it changes what a template does.
//
// jinja2 compiles each frame (the template's top level, a for-loop body, a macro, a set or filter block,
// a with block) to a Python function whose variables it decides when it compiles the template: a name the
// frame assigns is the frame's own variable from the frame's start. Its starting value is the outer
// variable of that name when an enclosing frame has one, the context's value when the frame reads the
// name before assigning it (or assigns it only inside an `if`), and otherwise *undefined*. So
//
//     {% for m in messages %}{{ system }}{% endfor %}{% set system = 'x' %}
//
// prints nothing for `system` even when `system` was passed to render(): the top level assigns it directly,
// never reads it first, so it starts undefined and the loop reads the top level's (still undefined) value.
// This pass computes, for every frame, those names; the evaluator starts each frame with them undefined.
// Everything else about jinja2's scoping falls out of the evaluator's chain of scopes.

enum Scoping {
    private struct Event {
        let name: String
        let store: Bool
        let inBranch: Bool
    }

    /// Annotates the template's frames; returns the body and the names the top level starts without.
    static func annotate(_ body: [Stmt]) -> (body: [Stmt], undefined: [String]) {
        annotateFrame(body, parameters: [], ancestors: [])
    }

    private static func annotateFrame(_ body: [Stmt], parameters: [String], ancestors: Set<String>) -> (body: [Stmt], undefined: [String]) {
        var ev: [Event] = []
        events(body, inBranch: false, into: &ev)
        var seen = Set(parameters)
        var undefined: [String] = []
        for e in ev where !seen.contains(e.name) {
            seen.insert(e.name)
            if e.store, !e.inBranch, !ancestors.contains(e.name) { undefined.append(e.name) }
        }
        return (rewrite(body, ancestors.union(seen)), undefined)
    }

    /// Annotates the frames nested in `body` (whose own frame has the names `ancestors`).
    private static func rewrite(_ body: [Stmt], _ ancestors: Set<String>) -> [Stmt] {
        body.map { s in
            var out = s
            switch s.kind {
            case .if(let branches, let otherwise):
                out = Stmt(kind: .if(branches.map { ($0.test, rewrite($0.body, ancestors)) }, else: rewrite(otherwise, ancestors)), location: s.location)
            case .for(let target, let iterable, let filter, let loopBody, let otherwise):
                let (b, u) = annotateFrame(loopBody, parameters: names(target) + ["loop"], ancestors: ancestors)
                out = Stmt(kind: .for(target, iterable: iterable, filter: filter, body: b, else: rewrite(otherwise, ancestors)),
                           location: s.location, frameUndefined: u)
            case .setBlock(let target, let filters, let blockBody):
                let (b, u) = annotateFrame(blockBody, parameters: [], ancestors: ancestors)
                out = Stmt(kind: .setBlock(target, filters: filters, body: b), location: s.location, frameUndefined: u)
            case .filterBlock(let filters, let blockBody):
                let (b, u) = annotateFrame(blockBody, parameters: [], ancestors: ancestors)
                out = Stmt(kind: .filterBlock(filters: filters, body: b), location: s.location, frameUndefined: u)
            case .with(let assignments, let withBody):
                let (b, u) = annotateFrame(withBody, parameters: assignments.flatMap { names($0.0) }, ancestors: ancestors)
                out = Stmt(kind: .with(assignments: assignments, body: b), location: s.location, frameUndefined: u)
            case .macro(let d):
                out = Stmt(kind: .macro(annotateMacro(d, ancestors)), location: s.location)
            case .callBlock(let call, let caller):
                out = Stmt(kind: .callBlock(call: call, caller: annotateMacro(caller, ancestors)), location: s.location)
            default:
                break
            }
            return out
        }
    }

    private static func annotateMacro(_ d: MacroDefinition, _ ancestors: Set<String>) -> MacroDefinition {
        var params = d.parameters
        if d.usesCaller { params.append("caller") }
        if d.usesVarargs { params.append("varargs") }
        if d.usesKwargs { params.append("kwargs") }
        let (b, u) = annotateFrame(d.body, parameters: params, ancestors: ancestors)
        var out = MacroDefinition(name: d.name, parameters: d.parameters, defaults: d.defaults, body: b, location: d.location,
                                  usesCaller: d.usesCaller, usesVarargs: d.usesVarargs, usesKwargs: d.usesKwargs)
        out.frameUndefined = u
        return out
    }

    private static func names(_ t: Target) -> [String] {
        switch t {
        case .name(let n): return [n]
        case .tuple(let items): return items.flatMap(names)
        case .namespaceAttribute: return []
        }
    }

    /// The loads and stores of one frame, in jinja2's visiting order (nested frames contribute only what
    /// their enclosing frame evaluates: a loop's iterable, a call block's call, a with block's values).
    private static func events(_ body: [Stmt], inBranch: Bool, into out: inout [Event]) {
        func loads(_ e: Expr?) {
            guard let e else { return }
            for n in Parser.namesRead(e) { out.append(Event(name: n, store: false, inBranch: inBranch)) }
        }
        func args(_ a: Arguments) { a.positional.forEach { loads($0) }; a.keyword.forEach { loads($0.value) } }
        func store(_ t: Target) {
            switch t {
            case .name(let n): out.append(Event(name: n, store: true, inBranch: inBranch))
            case .tuple(let items): items.forEach(store)
            case .namespaceAttribute(let n, _): out.append(Event(name: n, store: false, inBranch: inBranch))
            }
        }
        for s in body {
            switch s.kind {
            case .data, .break, .continue: break
            case .output(let e): loads(e)
            case .if(let branches, let otherwise):
                loads(branches.first?.test)
                if let first = branches.first { events(first.body, inBranch: true, into: &out) }
                for b in branches.dropFirst() {
                    for n in Parser.namesRead(b.test) { out.append(Event(name: n, store: false, inBranch: true)) }
                    events(b.body, inBranch: true, into: &out)
                }
                events(otherwise, inBranch: true, into: &out)
            case .for(_, let iterable, _, _, _): loads(iterable)
            case .set(let target, let e): loads(e); store(target)
            case .setBlock(let target, _, _): store(target)
            case .macro(let d): out.append(Event(name: d.name, store: true, inBranch: inBranch))
            case .callBlock(let call, _): loads(call)
            case .filterBlock(let filters, _): filters.forEach { args($0.1) }
            case .with(let assignments, _): assignments.forEach { loads($0.1) }
            }
        }
    }
}

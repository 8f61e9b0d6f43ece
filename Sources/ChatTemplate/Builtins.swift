// What templates can do to values: operators, attribute and item access, slicing (Python semantics),
// and the global functions of transformers' environment (range, dict, namespace, raise_exception,
// strftime_now). Filters and tests are in Filters.swift, methods of strings, dicts and lists in Methods.swift.

enum Builtins {
    /// The globals of transformers' environment (jinja2's defaults lipsum, cycler and joiner are refused).
    static let globalNames = ["range", "dict", "namespace", "raise_exception", "strftime_now", "lipsum", "cycler", "joiner"]

    // MARK: attribute and item access (jinja2's Environment.getattr / getitem, sandboxed)

    static let dictMethods: Set<String> = ["get", "items", "keys", "values", "copy", "fromkeys"]
    static let dictMutators: Set<String> = ["clear", "pop", "popitem", "setdefault", "update"]
    static let listMethods: Set<String> = ["count", "index", "copy"]
    static let listMutators: Set<String> = ["append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"]
    static let tupleMethods: Set<String> = ["count", "index"]
    /// Every attribute of Python's `str` (the ones not implemented are an "unsupported" error when called).
    static let stringAttributes: Set<String> = [
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format", "format_map",
        "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier", "islower", "isnumeric",
        "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "maketrans", "partition",
        "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
        "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill",
    ]

    /// `obj.name`: a Python attribute first (a method), else the item `obj["name"]`, else undefined.
    static func getattr(_ obj: Value, _ name: String) throws(PyError) -> Value {
        switch obj {
        case .undefined(let u):
            throw u.error
        case .dict(let d):
            if dictMethods.contains(name) { return .callable(.method(obj, name)) }
            if dictMutators.contains(name) { return .undefined(.unsafe(obj, name)) }
            return d[name] ?? .undefined(.attribute(of: obj, name))
        case .string:
            if stringAttributes.contains(name) { return .callable(.method(obj, name)) }
        case .list:
            if listMethods.contains(name) { return .callable(.method(obj, name)) }
            if listMutators.contains(name) { return .undefined(.unsafe(obj, name)) }
        case .tuple:
            if tupleMethods.contains(name) { return .callable(.method(obj, name)) }
        case .namespace(let ns):
            if let v = ns.attributes[name] { return v }
            if ns.isLoop, name == "cycle" || name == "changed" { return .callable(.method(obj, name)) }
        default:
            break
        }
        return .undefined(.attribute(of: obj, name))
    }

    /// `obj[key]`: the item first, else (for a string key) the attribute, else undefined.
    static func getitem(_ obj: Value, _ key: Value) throws(PyError) -> Value {
        switch obj {
        case .undefined(let u):
            throw u.error
        case .dict(let d):
            if let v = d[key] { return v }
        case .list(let l), .tuple(let l):
            if let i = index(key) {
                let j = i < 0 ? i + l.items.count : i
                if j >= 0, j < l.items.count { return l.items[j] }
                return .undefined(.element(of: obj, key))
            }
        case .string(let s):
            if let i = index(key) {
                let u = s.scalars
                let j = i < 0 ? i + u.count : i
                if j >= 0, j < u.count { return .string(String(u[j])) }
                return .undefined(.element(of: obj, key))
            }
        default:
            break
        }
        if case .string(let name) = key {
            let v = try getattr(obj, name)
            if case .undefined = v { return .undefined(.attribute(of: obj, name)) }
            return v
        }
        return .undefined(.element(of: obj, key))
    }

    /// An int (or bool) usable as an index.
    static func index(_ v: Value) -> Int? {
        switch v {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// `obj[start:stop:step]`: jinja2 compiles a slice to a plain Python subscript, so Python's errors come
    /// through (unlike `obj[key]`, which turns them into undefined).
    static func slice(_ obj: Value, _ start: Value?, _ stop: Value?, _ step: Value?) throws(PyError) -> Value {
        try obj.requireDefined()
        switch obj {
        case .list, .tuple, .string: break
        case .dict: throw .type("unhashable type: 'slice'")
        default: throw .type("'\(obj.typeName)' object is not subscriptable")
        }
        func bound(_ v: Value?) throws(PyError) -> Int? {
            guard let v, !v.isNone else { return nil }
            try v.requireDefined()
            guard let i = index(v) else { throw .type("slice indices must be integers or None or have an __index__ method") }
            return i
        }
        let a = try bound(start), b = try bound(stop), c = try bound(step)
        let stepValue = c ?? 1
        if stepValue == 0 { throw .value("slice step cannot be zero") }
        func indices(_ count: Int) -> [Int] {
            func clamp(_ x: Int?, _ dflt: Int) -> Int {
                guard var x else { return dflt }
                if x < 0 {
                    x += count
                    if x < 0 { x = stepValue < 0 ? -1 : 0 }
                } else if x >= count {
                    x = stepValue < 0 ? count - 1 : count
                }
                return x
            }
            let lo = clamp(a, stepValue < 0 ? count - 1 : 0)
            let hi = clamp(b, stepValue < 0 ? -1 : count)
            var out: [Int] = []
            var i = lo
            while stepValue > 0 ? i < hi : i > hi {
                out.append(i)
                let (next, overflow) = i.addingReportingOverflow(stepValue)
                if overflow { break }
                i = next
            }
            return out
        }
        switch obj {
        case .list(let l): return .list(indices(l.items.count).map { l.items[$0] })
        case .tuple(let l): return .tuple(indices(l.items.count).map { l.items[$0] })
        case .string(let s):
            let u = s.scalars
            return .string(String(scalars: indices(u.count).map { u[$0] }))
        default:
            throw .type("'\(obj.typeName)' object is not subscriptable")
        }
    }

    // MARK: operators

    static func unary(_ op: String, _ v: Value) throws(PyError) -> Value {
        try v.requireDefined()
        guard let n = v.numeric else { throw .type("bad operand type for unary \(op): '\(v.typeName)'") }
        if op == "+" { return n.value }
        switch n {
        case .int(let i):
            guard i != Int.min else { throw PyError(.overflow, "integer overflow (cpiscope's integers are 64-bit)") }
            return .int(-i)
        case .float(let d): return .float(-d)
        }
    }

    private static func overflow() -> PyError { PyError(.overflow, "integer overflow (cpiscope's integers are 64-bit)") }

    /// Python's binary arithmetic: `+ - * / // % **`.
    static func binary(_ op: String, _ a: Value, _ b: Value) throws(PyError) -> Value {
        try a.requireDefined()
        // `str % x` never uses an undefined x's failing methods (Python treats it as a mapping).
        if op == "%", case .string(let f) = a, case .undefined = b { return .string(try pythonPercentFormat(f, b)) }
        try b.requireDefined()
        if let x = a.numeric, let y = b.numeric { return try arithmetic(op, x, y) }
        switch (op, a, b) {
        case let ("+", .string(x), .string(y)): return .string(x + y)
        case let ("+", .list(x), .list(y)): return .list(x.items + y.items)
        case let ("+", .tuple(x), .tuple(y)): return .tuple(x.items + y.items)
        case let ("*", .string(s), n), let ("*", n, .string(s)):
            guard let k = index(n) else { break }
            return .string(k <= 0 ? "" : String(repeating: s, count: k))
        case let ("*", .list(l), n), let ("*", n, .list(l)):
            guard let k = index(n) else { break }
            return .list(k <= 0 ? [] : Array([[Value]](repeating: l.items, count: k).joined()))
        case let ("*", .tuple(l), n), let ("*", n, .tuple(l)):
            guard let k = index(n) else { break }
            return .tuple(k <= 0 ? [] : Array([[Value]](repeating: l.items, count: k).joined()))
        case let ("%", .string(f), args):
            return .string(try pythonPercentFormat(f, args))
        default:
            break
        }
        if op == "+", case .string = a {
            throw .type("can only concatenate str (not \"\(b.typeName)\") to str")
        }
        if op == "+", case .list = a {
            throw .type("can only concatenate list (not \"\(b.typeName)\") to list")
        }
        let symbol = op == "**" ? "** or pow()" : op
        throw .type("unsupported operand type(s) for \(symbol): '\(a.typeName)' and '\(b.typeName)'")
    }

    static func arithmetic(_ op: String, _ x: Number, _ y: Number) throws(PyError) -> Value {
        if case let .int(i) = x, case let .int(j) = y {
            switch op {
            case "+": let (r, o) = i.addingReportingOverflow(j); if o { throw overflow() }; return .int(r)
            case "-": let (r, o) = i.subtractingReportingOverflow(j); if o { throw overflow() }; return .int(r)
            case "*": let (r, o) = i.multipliedReportingOverflow(by: j); if o { throw overflow() }; return .int(r)
            case "/":
                if j == 0 { throw PyError(.zeroDivision, "division by zero") }
                return .float(Double(i) / Double(j))
            case "//":
                if j == 0 { throw PyError(.zeroDivision, "integer division or modulo by zero") }
                if i == Int.min, j == -1 { throw overflow() }
                let q = i / j
                return .int((i % j != 0 && (i < 0) != (j < 0)) ? q - 1 : q)
            case "%":
                if j == 0 { throw PyError(.zeroDivision, "integer division or modulo by zero") }
                if j == -1 { return .int(0) }
                let r = i % j
                return .int((r != 0 && (r < 0) != (j < 0)) ? r + j : r)
            case "**":
                if j < 0 {
                    if i == 0 { throw PyError(.zeroDivision, "0.0 cannot be raised to a negative power") }
                    return .float(pow(Double(i), Double(j)))
                }
                var result = 1, base = i, e = j
                while e > 0 {
                    if e & 1 == 1 { let (r, o) = result.multipliedReportingOverflow(by: base); if o { throw overflow() }; result = r }
                    e >>= 1
                    if e > 0 { let (b2, o) = base.multipliedReportingOverflow(by: base); if o { throw overflow() }; base = b2 }
                }
                return .int(result)
            default: break
            }
        }
        let a = x.double, b = y.double
        switch op {
        case "+": return .float(a + b)
        case "-": return .float(a - b)
        case "*": return .float(a * b)
        case "/":
            if b == 0 { throw PyError(.zeroDivision, "float division by zero") }
            return .float(a / b)
        case "//":
            if b == 0 { throw PyError(.zeroDivision, "float floor division by zero") }
            return .float(pyFloorDiv(a, b))
        case "%":
            if b == 0 { throw PyError(.zeroDivision, "float modulo") }
            return .float(pyFloatMod(a, b))
        case "**":
            if a == 0, b < 0 { throw PyError(.zeroDivision, "0.0 cannot be raised to a negative power") }
            if a < 0, b.rounded() != b { throw .value("math domain error (a negative number to a fractional power is complex)") }
            return .float(pow(a, b))
        default:
            throw .type("unsupported operator \(op)")
        }
    }

    /// Python's float floor division (CPython's float_floor_div).
    static func pyFloorDiv(_ a: Double, _ b: Double) -> Double {
        let mod = a.truncatingRemainder(dividingBy: b)
        var div = (a - mod) / b
        if mod != 0, (b < 0) != (mod < 0) { div -= 1 }
        guard div != 0 else { return (a / b).sign == .minus ? -0.0 : 0.0 }
        var floorDiv = div.rounded(.down)
        if div - floorDiv > 0.5 { floorDiv += 1 }
        return floorDiv
    }

    /// Python's float modulo: the result has the sign of the divisor.
    static func pyFloatMod(_ a: Double, _ b: Double) -> Double {
        var mod = a.truncatingRemainder(dividingBy: b)
        if mod != 0 {
            if (b < 0) != (mod < 0) { mod += b }
        } else {
            mod = b.sign == .minus ? -0.0 : 0.0
        }
        return mod
    }

    /// `==`, `!=`, `<`…, `in`, `not in`.
    static func compare(_ op: String, _ a: Value, _ b: Value) throws(PyError) -> Bool {
        switch op {
        case "==": return a.pyEquals(b)
        case "!=": return !a.pyEquals(b)
        case "in": return try contains(b, a)
        case "not in": return try !contains(b, a)
        default: return try a.pyCompare(b, op)
        }
    }

    /// Python `item in container`.
    static func contains(_ container: Value, _ item: Value) throws(PyError) -> Bool {
        switch container {
        case .undefined: return false
        case .string(let s):
            guard case .string(let sub) = item else {
                throw .type("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return sub.isEmpty || s.pyFind(sub) >= 0
        case .list(let l), .tuple(let l): return l.items.contains { $0.pyEquals(item) }
        case .view(let v): return v.items.items.contains { $0.pyEquals(item) }
        case .iterator(let i):
            while let x = try i.next() { if x.pyEquals(item) { return true } }
            return false
        case .dict(let d):
            if case .list = item { throw .type("unhashable type: 'list'") }
            if case .dict = item { throw .type("unhashable type: 'dict'") }
            return d[item] != nil
        default:
            throw .type("argument of type '\(container.typeName)' is not iterable")
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - global functions

extension Evaluator {
    func callGlobal(_ name: String, _ args: [Value], _ kwargs: [(String, Value)]) throws(PyError) -> Value {
        switch name {
        case "raise_exception":
            let message = try (args.first ?? kwargs.first(where: { $0.0 == "message" })?.1 ?? .none).str()
            throw PyError(.raised, message)
        case "strftime_now":
            guard case .string(let f)? = args.first ?? kwargs.first(where: { $0.0 == "format" })?.1 else {
                throw .type("strftime() argument 1 must be str")
            }
            return .string(try checkSize(pythonStrftime(f, now)))
        case "range":
            guard kwargs.isEmpty else { throw .type("range() takes no keyword arguments") }
            var ints: [Int] = []
            for a in args {
                guard let i = Builtins.index(a) else { throw .type("'\(a.typeName)' object cannot be interpreted as an integer") }
                ints.append(i)
            }
            var start = 0, stop = 0, step = 1
            switch ints.count {
            case 1: stop = ints[0]
            case 2: start = ints[0]; stop = ints[1]
            case 3: start = ints[0]; stop = ints[1]; step = ints[2]
            default: throw .type("range expected at most 3 arguments, got \(ints.count)")
            }
            if step == 0 { throw .value("range() arg 3 must not be zero") }
            let count: Int
            if step > 0 { count = stop > start ? Int((Double(stop) - Double(start) - 1) / Double(step)) + 1 : 0 }
            else { count = start > stop ? Int((Double(start) - Double(stop) - 1) / Double(-step)) + 1 : 0 }
            if count > 100_000 { throw PyError(.overflow, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).") }
            try charge(count / 16)
            return .list((0..<count).map { .int(start + $0 * step) })
        case "dict":
            var d = ValueDict()
            if let first = args.first {
                guard args.count == 1 else { throw .type("dict expected at most 1 argument, got \(args.count)") }
                if case .dict(let src) = first { d = src } else {
                    for pair in try first.iterate() {
                        let kv = try pair.iterate()
                        guard kv.count == 2 else { throw .value("dictionary update sequence element has length \(kv.count); 2 is required") }
                        try d.set(kv[0], kv[1])
                    }
                }
            }
            for (k, v) in kwargs { d.set(k, v) }
            return try checkCollection(.dict(d))
        case "namespace":
            var d = ValueDict()
            if let first = args.first {
                guard case .dict(let src) = first, args.count == 1 else { throw .type("namespace() takes at most one mapping argument") }
                d = src
            }
            for (k, v) in kwargs { d.set(k, v) }
            for key in d.keys {
                if case .string(let s) = key, s.hasPrefix("_") {
                    throw PyError(.security, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(pythonRepr(s)). Please rename the attribute.")
                }
            }
            if d.depth > ChatTemplateLimits.maxValueDepth {
                throw PyError(.limit, "the nesting depth of a value", limit: ChatTemplateLimits.maxValueDepth)
            }
            return .namespace(Namespace(d))
        default:
            throw PyError(.unsupported, "the global function '\(name)'")
        }
    }
}

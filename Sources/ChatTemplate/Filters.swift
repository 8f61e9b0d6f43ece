// Filters (`x | name(args)`) and tests (`x is name args`): jinja2 3.1's filters.py and tests.py for the
// names listed below, with transformers' own `tojson` (json.dumps with ensure_ascii=False, not jinja2's
// HTML-escaping one). A name jinja2 has but this interpreter does not is refused when the template is
// parsed, as jinja2 refuses an unknown filter when it compiles a template.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Builtins {
    static let filterNames: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape", "first",
        "float", "forceescape", "format", "indent", "int", "items", "join", "last", "length", "list", "lower", "map",
        "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr", "sort",
        "string", "sum", "title", "tojson", "trim", "unique", "upper", "urlencode", "wordcount",
    ]
    /// jinja2 filters that are refused.
    static let unsupportedFilterNames: Set<String> = [
        "filesizeformat", "groupby", "pprint", "random", "slice", "striptags", "truncate", "urlize", "wordwrap", "xmlattr",
    ]
    static let testNames: Set<String> = [
        "odd", "even", "divisibleby", "defined", "undefined", "filter", "test", "none", "boolean", "false", "true",
        "integer", "float", "lower", "upper", "string", "mapping", "number", "sequence", "iterable", "callable",
        "sameas", "escaped", "in", "==", "eq", "equalto", "!=", "ne", ">", "gt", "greaterthan", "ge", ">=", "<", "lt",
        "lessthan", "<=", "le",
    ]
    static let unsupportedTestNames: Set<String> = []

    /// Binds arguments to a Python signature: positional first, then keywords by name.
    static func bind(_ what: String, _ names: [String], _ args: [Value], _ kwargs: [(String, Value)]) throws(PyError) -> [Value?] {
        var out = [Value?](repeating: nil, count: names.count)
        guard args.count <= names.count else {
            throw .type("\(what)() takes at most \(names.count) argument(s) (\(args.count) given)")
        }
        for (i, a) in args.enumerated() { out[i] = a }
        for (k, v) in kwargs {
            guard let i = names.firstIndex(of: k) else { throw .type("\(what)() got an unexpected keyword argument \(pythonRepr(k))") }
            if out[i] != nil { throw .type("\(what)() got multiple values for argument \(pythonRepr(k))") }
            out[i] = v
        }
        return out
    }

    /// jinja2's make_attrgetter: `"a.b.0"` looked up item by item (numbers as indices).
    static func attributeGetter(_ attribute: Value?, default dflt: Value? = nil, ignoreCase: Bool = false) -> (Value) throws(PyError) -> Value {
        var parts: [Value] = []
        switch attribute {
        case .string(let s)?:
            for p in s.split(separator: ".", omittingEmptySubsequences: false) {
                if let i = Int(p), p.allSatisfy(\.isNumber) { parts.append(.int(i)) } else { parts.append(.string(String(p))) }
            }
        case let v?: parts = [v]
        case nil: break
        }
        return { (item: Value) throws(PyError) -> Value in
            var v = item
            for p in parts {
                v = try getitem(v, p)
                if let dflt, v.isUndefined { v = dflt }
            }
            if ignoreCase, case .string(let s) = v { return .string(s.pyLower) }
            return v
        }
    }

    /// A stable sort with a comparison that can fail (Python's sorted raises on incomparable items).
    static func sorted(_ items: [Value], by lessThan: (Value, Value) throws(PyError) -> Bool) throws(PyError) -> [Value] {
        guard items.count > 1 else { return items }
        let mid = items.count / 2
        let left = try sorted(Array(items[..<mid]), by: lessThan), right = try sorted(Array(items[mid...]), by: lessThan)
        var out: [Value] = []
        out.reserveCapacity(items.count)
        var i = 0, j = 0
        while i < left.count, j < right.count {
            if try lessThan(right[j], left[i]) { out.append(right[j]); j += 1 } else { out.append(left[i]); i += 1 }
        }
        out += left[i...]
        out += right[j...]
        return out
    }

    /// markupsafe's escape.
    static func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// urllib's quote of UTF-8 bytes (`safe` characters kept).
    static func urlQuote(_ s: String, safe: String) -> String {
        var out = ""
        for b in s.utf8 {
            let c = Character(Unicode.Scalar(b))
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || "_.-~".contains(c) || safe.contains(c) {
                out.append(c)
            } else {
                out += "%" + String(b, radix: 16).uppercased().leftPadded(2)
            }
        }
        return out
    }
}

extension String {
    func leftPadded(_ width: Int, _ pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

extension Evaluator {
    // MARK: filters

    func filter(_ name: String, _ value: Value, _ args: [Value], _ kwargs: [(String, Value)]) throws(PyError) -> Value {
        func b(_ names: [String]) throws(PyError) -> [Value?] { try Builtins.bind(name, names, args, kwargs) }
        func bool(_ v: Value?) -> Bool { v?.isTruthy ?? false }
        try charge()
        // jinja2 cannot evaluate the filters that need the template context when it compiles a template.
        if constantFolding, ["map", "select", "reject", "selectattr", "rejectattr"].contains(name) {
            throw PyError(.impossible, "the '\(name)' filter needs the context")
        }
        switch name {
        case "abs":
            _ = try b([])
            guard let n = value.numeric else { throw .type("bad operand type for abs(): '\(value.typeName)'") }
            switch n {
            case .int(let i): guard i != Int.min else { throw PyError(.overflow, "integer overflow") }; return .int(abs(i))
            case .float(let d): return .float(abs(d))
            }
        case "attr":
            let a = try b(["name"])
            let attrName = try (a[0] ?? .none).str()
            switch value {
            case .dict, .namespace:
                if case .callable = try Builtins.getattr(value, attrName) { return try Builtins.getattr(value, attrName) }
                if case .namespace(let ns) = value, let v = ns.attributes[attrName] { return v }
                return .undefined(.attribute(of: value, attrName))
            default:
                return try Builtins.getattr(value, attrName)
            }
        case "batch":
            return lazy("do_batch") { (out: inout [Value]) throws(PyError) in
                let a = try b(["linecount", "fill_with"])
                guard let n = a[0].flatMap(Builtins.index) else { throw .type("'\(a[0]?.typeName ?? "NoneType")' object cannot be interpreted as an integer") }
                let items = try value.iterate()
                var chunk: [Value] = []
                for item in items {
                    if chunk.count == n { out.append(.list(chunk)); chunk = [] }
                    chunk.append(item)
                }
                if !chunk.isEmpty {
                    if let fill = a[1], !fill.isNone, chunk.count < n { chunk += [Value](repeating: fill, count: n - chunk.count) }
                    out.append(.list(chunk))
                }
                _ = try checkCollection(.list(out))
            }
        case "capitalize":
            _ = try b([])
            return .string(try value.str().pyCapitalize)
        case "center":
            let a = try b(["width"])
            let width = a[0].flatMap(Builtins.index) ?? 80
            return .string(try checkSize(pyCenter(try value.str(), width)))
        case "count", "length":
            _ = try b([])
            return .int(try value.length())
        case "d", "default":
            let a = try b(["default_value", "boolean"])
            if value.isUndefined || (bool(a[1]) && !value.isTruthy) { return a[0] ?? .string("") }
            return value
        case "dictsort":
            let a = try b(["case_sensitive", "by", "reverse"])
            guard case .dict(let d) = value else {
                try value.requireDefined()
                throw PyError(.attribute, "'\(value.typeName)' object has no attribute 'items'")
            }
            let byValue: Bool
            switch a[1] {
            case nil, .string("key")?: byValue = false
            case .string("value")?: byValue = true
            default: throw PyError(.runtime, "You can only sort by either \"key\" or \"value\"")
            }
            let caseSensitive = bool(a[0])
            let pairs: [Value] = d.pairs.map { .tuple([$0.0, $0.1]) }
            var sorted = try Builtins.sorted(pairs) { (x: Value, y: Value) throws(PyError) -> Bool in
                guard case .tuple(let p) = x, case .tuple(let q) = y else { return false }
                var l = p.items[byValue ? 1 : 0], r = q.items[byValue ? 1 : 0]
                if !caseSensitive {
                    if case .string(let s) = l { l = .string(s.pyLower) }
                    if case .string(let s) = r { r = .string(s.pyLower) }
                }
                return try l.pyCompare(r, "<")
            }
            if bool(a[2]) { sorted.reverse() }
            return .list(sorted)
        case "e", "escape", "forceescape":
            _ = try b([])
            return .string(try checkSize(Builtins.htmlEscape(try value.str())))
        case "first":
            _ = try b([])
            if case .iterator(let i) = value { return try i.next() ?? .undefined(Undefined("No first item, sequence was empty.")) }
            return try value.iterate().first ?? .undefined(Undefined("No first item, sequence was empty."))
        case "last":
            _ = try b([])
            if case .iterator(let i) = value { throw .type("'\(i.typeName)' object is not reversible") }
            return try value.iterate().last ?? .undefined(Undefined("No last item, sequence was empty."))
        case "float":
            let a = try b(["default"])
            try value.requireDefined()  // float(Undefined) raises the undefined error
            switch value {
            case .int(let i): return .float(Double(i))
            case .bool(let x): return .float(x ? 1 : 0)
            case .float: return value
            case .string(let s):
                if let d = pythonFloat(s) { return .float(d) }
                return a[0] ?? .float(0)
            default: return a[0] ?? .float(0)
            }
        case "format":
            let formatArgs: Value = kwargs.isEmpty ? .tuple(args) : {
                var d = ValueDict()
                for (k, v) in kwargs { d.set(k, v) }
                return .dict(d)
            }()
            return .string(try checkSize(pythonPercentFormat(try value.str(), formatArgs)))
        case "indent":
            let a = try b(["width", "first", "blank"])
            let indention: String
            switch a[0] {
            case .string(let s)?: indention = s
            case let w?: indention = String(repeating: " ", count: max(0, min(Builtins.index(w) ?? 4, 10_000)))
            case nil: indention = "    "
            }
            // jinja2 appends "\n" to the value itself: only a string can be indented.
            guard case .string(let text) = value else {
                try value.requireDefined()
                switch value {
                case .list: throw PyError(.attribute, "'list' object has no attribute 'splitlines'")
                case .tuple: throw .type("can only concatenate tuple (not \"str\") to tuple")
                default: throw .type("unsupported operand type(s) for +=: '\(value.typeName)' and 'str'")
                }
            }
            let s = text + "\n"
            var rv: String
            let lines = s.pySplitLines()
            if bool(a[2]) {
                rv = lines.joined(separator: "\n" + indention)
            } else {
                rv = lines.first ?? ""
                if lines.count > 1 {
                    rv += "\n" + lines.dropFirst().map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
                }
            }
            if bool(a[1]) { rv = indention + rv }
            return .string(try checkSize(rv))
        case "int":
            let a = try b(["default", "base"])
            let dflt = a[0] ?? .int(0)
            let base = a[1].flatMap(Builtins.index) ?? 10
            try value.requireDefined()  // int(Undefined) raises the undefined error
            switch value {
            case .int: return value
            case .bool(let x): return .int(x ? 1 : 0)
            case .float(let d):
                guard d.isFinite, abs(d) < 9.2e18 else { return dflt }
                return .int(Int(d))
            case .string(let s):
                if let i = pythonInt(s, base: base) { return .int(i) }
                if let d = pythonFloat(s), d.isFinite, abs(d) < 9.2e18 { return .int(Int(d)) }
                return dflt
            default:
                return dflt
            }
        case "items":
            return lazy("do_items") { (out: inout [Value]) throws(PyError) in
                _ = try b([])
                switch value {
                case .undefined: break
                case .dict(let d): out = d.pairs.map { .tuple([$0.0, $0.1]) }
                default: throw .type("Can only get item pairs from a mapping.")
                }
            }
        case "join":
            let a = try b(["d", "attribute"])
            let sep = try (a[0] ?? .string("")).str()
            var items = try value.iterate()
            if let attr = a[1] {
                let get = Builtins.attributeGetter(attr)
                items = try items.map { (x: Value) throws(PyError) -> Value in try get(x) }
            }
            try charge(items.count)
            var out = ""
            for (i, item) in items.enumerated() {
                if i > 0 { out += sep }
                out += try item.str()
                if out.utf8.count > limits.maxOutputBytes { _ = try checkSize(out) }
            }
            return .string(try checkSize(out))
        case "list":
            _ = try b([])
            return try checkCollection(.list(try value.iterate()))
        case "lower":
            _ = try b([])
            return .string(try value.str().pyLower)
        case "upper":
            _ = try b([])
            return .string(try value.str().pyUpper)
        case "map":
            return lazy("sync_do_map") { (out: inout [Value]) throws(PyError) in
                guard value.isTruthy else { return }  // jinja2: `if value:` before anything else
                let items = try value.iterate()
                try charge(items.count)
                if args.isEmpty, kwargs.contains(where: { $0.0 == "attribute" }) {
                    let a = try b(["attribute", "default"])
                    let get = Builtins.attributeGetter(a[0], default: a[1])
                    for x in items { out.append(try get(x)) }
                    return
                }
                guard case .string(let f)? = args.first else { throw PyError(.runtime, "map requires a filter argument") }
                guard Builtins.filterNames.contains(f) else { throw PyError(.runtime, "No filter named \(pythonRepr(f)).") }
                if constantFolding { throw PyError(.impossible, "map needs the context") }
                let rest = Array(args.dropFirst())
                for x in items { out.append(try filter(f, x, rest, kwargs)) }
            }
        case "max", "min":
            let a = try b(["case_sensitive", "attribute"])
            let items = try value.iterate()
            guard var best = items.first else { return .undefined(Undefined("No aggregated item, sequence was empty.")) }
            let key = Builtins.attributeGetter(a[1], ignoreCase: !bool(a[0]))
            var bestKey = try key(best)
            for item in items.dropFirst() {
                let k = try key(item)
                if try k.pyCompare(bestKey, name == "max" ? ">" : "<") { best = item; bestKey = k }
            }
            return best
        case "select", "reject", "selectattr", "rejectattr":
            return lazy("select_or_reject") { (out: inout [Value]) throws(PyError) in
                guard value.isTruthy else { return }  // jinja2: `if value:` before anything else
                let byAttribute = name.hasSuffix("attr")
                var rest = args
                var get: (Value) throws(PyError) -> Value = { (v: Value) throws(PyError) -> Value in v }
                if byAttribute {
                    guard !rest.isEmpty else { throw .type("\(name)() missing the attribute argument") }
                    get = Builtins.attributeGetter(rest.removeFirst())
                }
                var testName: String? = nil
                if !rest.isEmpty {
                    guard case .string(let t) = rest.removeFirst() else { throw .type("the test name must be a string") }
                    guard Builtins.testNames.contains(t) else { throw PyError(.runtime, "No test named \(pythonRepr(t)).") }
                    testName = t
                }
                let keep = name.hasPrefix("select")
                let items = try value.iterate()
                try charge(items.count)
                for item in items {
                    let v = try get(item)
                    let ok = try testName.map { (t: String) throws(PyError) -> Bool in try applyTest(t, v, rest, kwargs) } ?? v.isTruthy
                    if ok == keep { out.append(item) }
                }
            }
        case "replace":
            let a = try b(["old", "new", "count"])
            guard let old = a[0], let new = a[1] else { throw .type("replace() missing required arguments") }
            let count = a[2].flatMap(Builtins.index) ?? -1
            let oldText = try old.str(), newText = try new.str()
            let source = try value.str()
            if !oldText.isEmpty, newText.utf8.count > oldText.utf8.count {
                let n = source.pyCount(oldText)
                if (newText.utf8.count - oldText.utf8.count) * n + source.utf8.count > limits.maxOutputBytes {
                    throw PyError(.limit, "the size of a string in bytes", limit: limits.maxOutputBytes)
                }
            }
            return .string(try checkSize(source.pyReplace(oldText, newText, count: count)))
        case "reverse":
            _ = try b([])
            switch value {
            case .string(let s): return .string(String(scalars: s.unicodeScalars.reversed()))
            case .list(let l): return .iterator(ValueIterator(l.items.reversed(), typeName: "list_reverseiterator", function: ""))
            case .tuple(let l): return .iterator(ValueIterator(l.items.reversed(), typeName: "reversed", function: ""))
            case .dict(let d): return .iterator(ValueIterator(d.keys.reversed(), typeName: "dict_reversekeyiterator", function: ""))
            case .view(let v): return .iterator(ValueIterator(v.items.items.reversed(), typeName: v.typeName.replacingPrefix(), function: ""))
            case .undefined: return .iterator(ValueIterator([], typeName: "reversed", function: ""))
            default:
                do { return .list(try value.iterate().reversed()) } catch { throw PyError(.filterArgument, "argument must be iterable") }
            }
        case "round":
            let a = try b(["precision", "method"])
            let precision = a[0].flatMap(Builtins.index) ?? 0
            let method = try (a[1] ?? .string("common")).str()
            guard ["common", "ceil", "floor"].contains(method) else { throw PyError(.runtime, "method must be common, ceil or floor") }
            guard let n = value.numeric else { throw .type("type \(value.typeName) doesn't define __round__ method") }
            if method == "common" {
                if case .int(let i) = n { return .int(i) }
                return .float(pythonRound(n.double, precision))
            }
            let scale = pow(10.0, Double(precision))
            let x = n.double * scale
            return .float((method == "ceil" ? x.rounded(.up) : x.rounded(.down)) / scale)
        case "safe", "string":
            _ = try b([])
            return .string(try value.str())
        case "sort":
            let a = try b(["reverse", "case_sensitive", "attribute"])
            let reverse = bool(a[0])
            let keys: [(Value) throws(PyError) -> Value]
            if case .string(let s)? = a[2], s.contains(",") {
                keys = s.split(separator: ",").map { Builtins.attributeGetter(.string(String($0).pyStrip(nil)), ignoreCase: !bool(a[1])) }
            } else {
                keys = [Builtins.attributeGetter(a[2], ignoreCase: !bool(a[1]))]
            }
            let items = try value.iterate()
            try charge(items.count * 8)
            func key(_ v: Value) throws(PyError) -> Value {
                if keys.count == 1 { return try keys[0](v) }
                var out: [Value] = []
                for k in keys { out.append(try k(v)) }
                return .tuple(out)
            }
            return .list(try Builtins.sorted(items) { (x: Value, y: Value) throws(PyError) -> Bool in
                reverse ? try key(y).pyCompare(try key(x), "<") : try key(x).pyCompare(try key(y), "<")
            })
        case "sum":
            let a = try b(["attribute", "start"])
            var total = a[1] ?? .int(0)
            let get = Builtins.attributeGetter(a[0])
            for item in try value.iterate() { total = try Builtins.binary("+", total, try get(item)) }
            return total
        case "title":
            _ = try b([])
            return .string(jinjaTitle(try value.str()))
        case "tojson":
            let a = try b(["ensure_ascii", "indent", "separators", "sort_keys"])
            var options = JSONDumpOptions()
            options.ensureASCII = bool(a[0])
            switch a[1] {
            case nil, .none?: break
            case .string(let s)?: options.indent = s
            case let w?:
                guard let n = Builtins.index(w) else { throw .type("indent must be an int or a string") }
                options.indent = String(repeating: " ", count: max(0, min(n, 1000)))
            }
            if let seps = a[2], !seps.isNone {
                let parts = try seps.iterate()
                guard parts.count == 2 else { throw .value("separators must be a pair of strings") }
                options.itemSeparator = try parts[0].str()
                options.keySeparator = try parts[1].str()
            }
            options.sortKeys = bool(a[3])
            return .string(try checkSize(pythonJSONDumps(value, options)))
        case "trim":
            let a = try b(["chars"])
            let chars: String? = try a[0].flatMap { (c: Value) throws(PyError) -> String? in c.isNone ? nil : try c.str() }
            return .string(try value.str().pyStrip(chars))
        case "unique":
            return lazy("sync_do_unique") { (out: inout [Value]) throws(PyError) in
                let a = try b(["case_sensitive", "attribute"])
                let key = Builtins.attributeGetter(a[1], ignoreCase: !bool(a[0]))
                var seen: [Value] = []
                let items = try value.iterate()
                try charge(items.count * 4)
                for item in items {
                    let k = try key(item)
                    _ = try HashKey(k)
                    if !seen.contains(where: { $0.pyEquals(k) }) { seen.append(k); out.append(item) }
                }
            }
        case "urlencode":
            _ = try b([])
            switch value {
            case .string(let s): return .string(Builtins.urlQuote(s, safe: "/"))
            case .dict(let d):
                var parts: [String] = []
                for (k, v) in d.pairs {
                    parts.append(Builtins.urlQuote(try k.str(), safe: "").replacingPlus() + "=" + Builtins.urlQuote(try v.str(), safe: "").replacingPlus())
                }
                return .string(parts.joined(separator: "&"))
            default:
                return .string(Builtins.urlQuote(try value.str(), safe: "/"))
            }
        case "wordcount":
            _ = try b([])
            var n = 0, inWord = false
            for c in try value.str().unicodeScalars {
                let w = c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
                if w, !inWord { n += 1 }
                inWord = w
            }
            return .int(n)
        default:
            throw PyError(.unsupported, "the '\(name)' filter")
        }
    }

    // MARK: tests

    func applyTest(_ name: String, _ value: Value, _ args: [Value], _ kwargs: [(String, Value)]) throws(PyError) -> Bool {
        func arg() throws(PyError) -> Value {
            let a = try Builtins.bind(name, ["other"], args, kwargs)
            guard let v = a[0] else { throw .type("\(name)() missing 1 required positional argument") }
            return v
        }
        try charge()
        // The tests that take only the value refuse an argument, as their Python functions do.
        let unary: Set<String> = ["defined", "undefined", "none", "boolean", "true", "false", "integer", "float", "number", "string",
                                  "mapping", "sequence", "iterable", "callable", "escaped", "filter", "test", "odd", "even", "lower", "upper"]
        if unary.contains(name), !args.isEmpty || !kwargs.isEmpty {
            if name == "callable" { throw .type("callable() takes exactly one argument (\(1 + args.count + kwargs.count) given)") }
            if !kwargs.isEmpty { throw .type("test_\(name)() got an unexpected keyword argument \(pythonRepr(kwargs[0].0))") }
            throw .type("test_\(name)() takes 1 positional argument but \(1 + args.count) were given")
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "boolean": if case .bool = value { return true }; return false
        case "true": if case .bool(true) = value { return true }; return false
        case "false": if case .bool(false) = value { return true }; return false
        case "integer": if case .int = value { return true }; return false
        case "float": if case .float = value { return true }; return false
        case "number": return value.numeric != nil
        case "string": if case .string = value { return true }; return false
        case "mapping": if case .dict = value { return true }; return false
        case "sequence":
            switch value {
            case .string, .list, .tuple, .dict, .undefined: return true
            default: return false
            }
        case "iterable":
            switch value {
            case .string, .list, .tuple, .dict, .undefined, .iterator, .view: return true
            default: return false
            }
        case "callable":
            switch value {
            case .callable, .undefined: return true  // jinja2's Undefined has a (failing) __call__
            default: return false
            }
        case "escaped": return false
        case "filter": if case .string(let s) = value { return Builtins.filterNames.contains(s) }; return false
        case "test": if case .string(let s) = value { return Builtins.testNames.contains(s) }; return false
        case "odd", "even":
            let r = try Builtins.binary("%", value, .int(2))
            return r.pyEquals(.int(name == "odd" ? 1 : 0))
        case "divisibleby":
            let a = try Builtins.bind(name, ["num"], args, kwargs)
            return try Builtins.binary("%", value, a[0] ?? .none).pyEquals(.int(0))
        case "lower", "upper":
            let s = try value.str()
            var cased = false
            for c in s.unicodeScalars where c.properties.isCased {
                cased = true
                if name == "lower" ? c.properties.isUppercase || c.properties.generalCategory == .titlecaseLetter : c.properties.isLowercase || c.properties.generalCategory == .titlecaseLetter {
                    return false
                }
            }
            return cased
        case "sameas":
            let other = try arg()
            switch (value, other) {
            case (.none, .none): return true
            case let (.bool(x), .bool(y)): return x == y
            case let (.int(x), .int(y)): return x == y && x >= -5 && x <= 256
            case let (.namespace(x), .namespace(y)): return x === y
            default: return false
            }
        case "in": return try Builtins.contains(try arg(), value)
        case "==", "eq", "equalto": return value.pyEquals(try arg())
        case "!=", "ne": return !value.pyEquals(try arg())
        case ">", "gt", "greaterthan": return try value.pyCompare(try arg(), ">")
        case ">=", "ge": return try value.pyCompare(try arg(), ">=")
        case "<", "lt", "lessthan": return try value.pyCompare(try arg(), "<")
        case "<=", "le": return try value.pyCompare(try arg(), "<=")
        default: throw PyError(.unsupported, "the '\(name)' test")
        }
    }
}

private extension String {
    func replacingPlus() -> String { pyReplace("%20", "+") }
    /// "dict_items" → "dict_reverseitemiterator" (the type of reversed(d.items())).
    func replacingPrefix() -> String { "dict_reverse" + dropFirst("dict_".count).dropLast() + "iterator" }
}

extension Evaluator {
    /// A generator whose items `produce` computes now; an error it raises is kept for the consumer.
    func lazy(_ function: String, _ produce: (inout [Value]) throws(PyError) -> Void) -> Value {
        var items: [Value] = []
        do {
            try produce(&items)
            return .iterator(ValueIterator(items, function: function))
        } catch {
            return .iterator(ValueIterator(items, error: error, function: function))
        }
    }
}

/// Python `str.center(width)`.
func pyCenter(_ s: String, _ width: Int) -> String {
    let n = s.unicodeScalars.count
    guard width > n else { return s }
    let marg = width - n
    let left = marg / 2 + (marg & width & 1)
    return String(repeating: " ", count: left) + s + String(repeating: " ", count: marg - left)
}

/// jinja2's `title` filter: every word (split at `-`, whitespace and opening brackets) gets its first code
/// point upper-cased and the rest lower-cased (not Python's `str.title()`, which splits at apostrophes too).
func jinjaTitle(_ s: String) -> String {
    var out = ""
    var word: [Unicode.Scalar] = []
    func flush() {
        guard let first = word.first else { return }
        out += first.properties.uppercaseMapping
        for c in word.dropFirst() { out += c.properties.lowercaseMapping }
        word = []
    }
    for c in s.unicodeScalars {
        if c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || isPythonSpace(c) {
            flush()
            out.unicodeScalars.append(c)
        } else {
            word.append(c)
        }
    }
    flush()
    return out
}

/// Python `float(s)` for a string: surrounding whitespace allowed, `_` between digits, inf and nan.
func pythonFloat(_ s: String) -> Double? {
    let t = s.pyStrip(nil)
    guard !t.isEmpty, !t.hasPrefix("_"), !t.hasSuffix("_"), !t.contains("__") else { return nil }
    let lower = t.lowercased()
    if ["inf", "+inf", "infinity", "+infinity"].contains(lower) { return .infinity }
    if ["-inf", "-infinity"].contains(lower) { return -.infinity }
    if ["nan", "+nan", "-nan"].contains(lower) { return .nan }
    let cleaned = t.replacingOccurrencesOfUnderscore()
    guard cleaned.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }) else { return nil }
    return Double(cleaned)
}

/// Python `int(s, base)` for a string.
func pythonInt(_ s: String, base: Int) -> Int? {
    var t = s.pyStrip(nil)
    var negative = false
    if t.hasPrefix("-") { negative = true; t.removeFirst() } else if t.hasPrefix("+") { t.removeFirst() }
    var b = base
    let lower = t.lowercased()
    if (base == 16 || base == 0), lower.hasPrefix("0x") { t.removeFirst(2); b = 16 }
    else if (base == 8 || base == 0), lower.hasPrefix("0o") { t.removeFirst(2); b = 8 }
    else if (base == 2 || base == 0), lower.hasPrefix("0b") { t.removeFirst(2); b = 2 }
    else if base == 0 { b = 10 }
    guard b >= 2, b <= 36, !t.isEmpty, !t.hasPrefix("_"), !t.hasSuffix("_"), !t.contains("__") else { return nil }
    guard let v = Int(t.replacingOccurrencesOfUnderscore(), radix: b) else { return nil }
    return negative ? -v : v
}

private extension String {
    func replacingOccurrencesOfUnderscore() -> String { String(filter { $0 != "_" }) }
}

/// Python `round(x, n)` for a float: correctly rounded (half to even on the exact binary value).
func pythonRound(_ x: Double, _ n: Int) -> Double {
    guard x.isFinite else { return x }
    if n > 300 { return x }
    if n >= 0 {
        return Double(cFormat(abs(x), conversion: "f", precision: n)).map { x.sign == .minus ? -$0 : $0 } ?? x
    }
    let scale = pow(10.0, Double(-n))
    let y = (x / scale).rounded(.toNearestOrEven) * scale
    return y
}

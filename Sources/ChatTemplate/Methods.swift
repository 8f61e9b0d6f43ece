// Methods called on values (`message.content.strip()`, `message.get('content')`, `loop.cycle('a', 'b')`),
// with Python's semantics. Python methods that exist but are not implemented here are an "unsupported"
// error; the ones that would mutate a list or dict never get here (the sandbox refuses them).

extension Evaluator {
    func callMethod(_ receiver: Value, _ name: String, _ args: [Value], _ kwargs: [(String, Value)]) throws(PyError) -> Value {
        func b(_ names: [String]) throws(PyError) -> [Value?] { try Builtins.bind(name, names, args, kwargs) }
        try charge()
        switch receiver {
        case .string(let s):
            return try stringMethod(s, name, args, kwargs)
        case .dict(let d):
            switch name {
            case "get":
                let a = try b(["key", "default"])
                guard let key = a[0] else { throw .type("get expected at least 1 argument, got 0") }
                _ = try HashKey(key)
                return d[key] ?? a[1] ?? .none
            case "items": _ = try b([]); return .view(DictView(typeName: "dict_items", items: ValueList(d.pairs.map { .tuple([$0.0, $0.1]) })))
            case "keys": _ = try b([]); return .view(DictView(typeName: "dict_keys", items: ValueList(d.keys)))
            case "values": _ = try b([]); return .view(DictView(typeName: "dict_values", items: ValueList(d.values)))
            case "copy": _ = try b([]); return receiver
            default: break
            }
        case .list(let l), .tuple(let l):
            switch name {
            case "count":
                let a = try b(["value"])
                return .int(l.items.filter { $0.pyEquals(a[0] ?? .none) }.count)
            case "index":
                let a = try b(["value"])
                guard let i = l.items.firstIndex(where: { $0.pyEquals(a[0] ?? .none) }) else {
                    throw .value("\((try? (a[0] ?? .none).repr()) ?? "?") is not in list")
                }
                return .int(i)
            case "copy": _ = try b([]); return receiver
            default: break
            }
        case .namespace(let loop) where loop.isLoop:
            if name == "cycle" {
                guard !args.isEmpty else { throw .type("no items for cycling given") }
                let index0 = Builtins.index(loop.attributes["index0"] ?? .int(0)) ?? 0
                return args[index0 % args.count]
            }
            if name == "changed" {
                defer { loop.lastChanged = args }
                guard let last = loop.lastChanged else { return .bool(true) }
                return .bool(!Value.list(last).pyEquals(.list(args)))
            }
        default:
            break
        }
        throw PyError(.unsupported, "the method \(name)() of \(receiver.typeName) values")
    }

    private func stringMethod(_ s: String, _ name: String, _ args: [Value], _ kwargs: [(String, Value)]) throws(PyError) -> Value {
        func b(_ names: [String]) throws(PyError) -> [Value?] { try Builtins.bind(name, names, args, kwargs) }
        /// An optional string argument (None means "not given").
        func optString(_ v: Value?) throws(PyError) -> String? {
            guard let v, !v.isNone else { return nil }
            guard case .string(let x) = v else { throw .type("\(name) arg must be None or str") }
            return x
        }
        func string(_ v: Value?) throws(PyError) -> String {
            guard case .string(let x)? = v else { throw .type("\(name)() argument must be str, not \(v?.typeName ?? "nothing")") }
            return x
        }
        func int(_ v: Value?, _ dflt: Int) throws(PyError) -> Int {
            guard let v, !v.isNone else { return dflt }
            guard let i = Builtins.index(v) else { throw .type("'\(v.typeName)' object cannot be interpreted as an integer") }
            return i
        }
        func width(_ v: Value?) throws(PyError) -> Int {
            let w = try int(v, 0)
            if w > limits.maxOutputBytes { throw PyError(.limit, "the size of a string in bytes", limit: limits.maxOutputBytes) }
            return w
        }
        switch name {
        case "strip", "lstrip", "rstrip":
            let a = try b(["chars"])
            return .string(s.pyStrip(try optString(a[0]), left: name != "rstrip", right: name != "lstrip"))
        case "startswith", "endswith":
            let a = try b(["prefix", "start", "end"])
            let u = s.scalars
            var lo = try int(a[1], 0), hi = try int(a[2], u.count)
            if lo < 0 { lo = max(0, lo + u.count) }
            if hi < 0 { hi = max(0, hi + u.count) }
            hi = min(hi, u.count)
            let part = lo <= hi ? String(scalars: u[min(lo, u.count)..<hi]) : ""
            if lo > u.count { return .bool(false) }
            let candidates: [Value]
            switch a[0] {
            case .tuple(let t)?: candidates = t.items
            case .string(let p)?: candidates = [.string(p)]
            default: throw .type("\(name) first arg must be str or a tuple of str, not \(a[0]?.typeName ?? "nothing")")
            }
            for c in candidates {
                guard case .string(let p) = c else { throw .type("tuple for \(name) must only contain str, not \(c.typeName)") }
                if name == "startswith" ? part.pyHasPrefix(p) : part.pyHasSuffix(p) { return .bool(true) }
            }
            return .bool(false)
        case "split", "rsplit":
            let a = try b(["sep", "maxsplit"])
            let parts = name == "split" ? try s.pySplit(try optString(a[0]), maxSplit: try int(a[1], -1))
                                        : try s.pyRSplit(try optString(a[0]), maxSplit: try int(a[1], -1))
            try charge(parts.count)
            return try checkCollection(.list(parts.map { .string($0) }))
        case "splitlines":
            let a = try b(["keepends"])
            if a[0]?.isTruthy == true { throw PyError(.unsupported, "splitlines(keepends=True)") }
            return .list(s.pySplitLines().map { .string($0) })
        case "title": _ = try b([]); return .string(s.pyTitle)
        case "upper": _ = try b([]); return .string(s.pyUpper)
        case "lower", "casefold": _ = try b([]); return .string(s.pyLower)
        case "capitalize": _ = try b([]); return .string(s.pyCapitalize)
        case "swapcase":
            _ = try b([])
            var out = ""
            for c in s.unicodeScalars {
                out += c.properties.isUppercase ? c.properties.lowercaseMapping : c.properties.isLowercase ? c.properties.uppercaseMapping : String(c)
            }
            return .string(out)
        case "replace":
            let a = try b(["old", "new", "count"])
            let old = try string(a[0]), new = try string(a[1])
            let n = old.isEmpty ? s.unicodeScalars.count + 1 : s.pyCount(old)
            if new.utf8.count > old.utf8.count, s.utf8.count + n * (new.utf8.count - old.utf8.count) > limits.maxOutputBytes {
                throw PyError(.limit, "the size of a string in bytes", limit: limits.maxOutputBytes)
            }
            return .string(try checkSize(s.pyReplace(old, new, count: try int(a[2], -1))))
        case "find", "rfind", "index", "rindex":
            let a = try b(["sub", "start", "end"])
            if a[1] != nil || a[2] != nil { throw PyError(.unsupported, "\(name)() with start or end") }
            let i = s.pyFind(try string(a[0]), fromEnd: name.hasPrefix("r"))
            if i < 0, name.hasSuffix("index") { throw .value("substring not found") }
            return .int(i)
        case "count":
            let a = try b(["sub", "start", "end"])
            if a[1] != nil || a[2] != nil { throw PyError(.unsupported, "count() with start or end") }
            return .int(s.pyCount(try string(a[0])))
        case "join":
            let a = try b(["iterable"])
            var out = ""
            let items = try (a[0] ?? .none).iterate()
            try charge(items.count)
            for (i, item) in items.enumerated() {
                guard case .string(let x) = item else { throw .type("sequence item \(i): expected str instance, \(item.typeName) found") }
                if i > 0 { out += s }
                out += x
                if out.utf8.count > limits.maxOutputBytes { _ = try checkSize(out) }
            }
            return .string(out)
        case "removeprefix":
            let a = try b(["prefix"])
            let p = try string(a[0])
            return .string(s.pyHasPrefix(p) ? String(scalars: s.scalars.dropFirst(p.unicodeScalars.count)) : s)
        case "removesuffix":
            let a = try b(["suffix"])
            let p = try string(a[0])
            return .string(s.pyHasSuffix(p) && !p.isEmpty ? String(scalars: s.scalars.dropLast(p.unicodeScalars.count)) : s)
        case "isdigit", "isdecimal", "isnumeric":
            _ = try b([])
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil && (name == "isnumeric" || $0.properties.numericType != .numeric) })
        case "isalpha":
            _ = try b([])
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic && $0.properties.generalCategory != .spacingMark && $0.properties.generalCategory != .nonspacingMark })
        case "isalnum":
            _ = try b([])
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isspace":
            _ = try b([])
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(isPythonSpace))
        case "islower", "isupper":
            return .bool(try applyTest(name == "islower" ? "lower" : "upper", .string(s), [], []))
        case "isascii":
            _ = try b([])
            return .bool(s.unicodeScalars.allSatisfy { $0.value < 0x80 })
        case "zfill":
            let a = try b(["width"])
            let w = try width(a[0])
            let u = s.scalars
            guard w > u.count else { return .string(s) }
            let pad = String(repeating: "0", count: w - u.count)
            if let first = u.first, first == "+" || first == "-" { return .string(String(first) + pad + String(scalars: u.dropFirst())) }
            return .string(pad + s)
        case "ljust", "rjust", "center":
            let a = try b(["width", "fillchar"])
            let w = try width(a[0])
            let fill = try optString(a[1]) ?? " "
            guard fill.unicodeScalars.count == 1 else { throw .type("The fill character must be exactly one character long") }
            let n = s.unicodeScalars.count
            guard w > n else { return .string(s) }
            if name == "center" { return .string(pyCenter(s, w).replacingSpacePadding(fill, original: s)) }
            let pad = String(repeating: fill, count: w - n)
            return .string(name == "ljust" ? s + pad : pad + s)
        case "format":
            return .string(try checkSize(pythonStrFormat(s, args, kwargs)))
        default:
            throw PyError(.unsupported, "the string method \(name)()")
        }
    }
}

private extension String {
    /// `center` with a fill character other than space.
    func replacingSpacePadding(_ fill: String, original: String) -> String {
        guard fill != " " else { return self }
        let u = scalars, o = original.unicodeScalars.count
        let left = u.prefix { $0 == " " }.count
        let leftPad = String(repeating: fill, count: left)
        let rightPad = String(repeating: fill, count: u.count - left - o)
        return leftPad + original + rightPad
    }
}

/// Python `str.format(*args, **kwargs)` for fields without a format spec: `{}`, `{0}`, `{name}`,
/// `{0.attr}`/`{0[key]}`, `!s`/`!r`, and `{{`/`}}`.
func pythonStrFormat(_ format: String, _ args: [Value], _ kwargs: [(String, Value)]) throws(PyError) -> String {
    let f = format.scalars
    var out = ""
    var i = 0
    var auto = 0
    while i < f.count {
        let c = f[i]
        if c == "{" {
            if i + 1 < f.count, f[i + 1] == "{" { out += "{"; i += 2; continue }
            var j = i + 1
            while j < f.count, f[j] != "}" { j += 1 }
            guard j < f.count else { throw .value("expected '}' before end of string") }
            var field = String(scalars: f[(i + 1)..<j])
            i = j + 1
            var conversion: String? = nil
            if let bang = field.firstIndex(of: "!") {
                conversion = String(field[field.index(after: bang)...])
                field = String(field[..<bang])
            }
            if field.contains(":") { throw PyError(.unsupported, "a format spec in str.format()") }
            // field name: first part, then .attr / [key] parts
            var head = field
            var rest = ""
            if let k = field.firstIndex(where: { $0 == "." || $0 == "[" }) { head = String(field[..<k]); rest = String(field[k...]) }
            var v: Value
            if head.isEmpty {
                guard auto < args.count else { throw PyError(.index, "Replacement index \(auto) out of range for positional args tuple") }
                v = args[auto]; auto += 1
            } else if let n = Int(head) {
                guard n >= 0, n < args.count else { throw PyError(.index, "Replacement index \(n) out of range for positional args tuple") }
                v = args[n]
            } else {
                guard let kv = kwargs.first(where: { $0.0 == head }) else { throw PyError(.index, pythonRepr(head)) }
                v = kv.1
            }
            var r = Substring(rest)
            while let first = r.first {
                if first == "." {
                    r = r.dropFirst()
                    let name = r.prefix { $0 != "." && $0 != "[" }
                    r = r.dropFirst(name.count)
                    v = try Builtins.getattr(v, String(name))
                } else {
                    r = r.dropFirst()
                    let key = r.prefix { $0 != "]" }
                    r = r.dropFirst(key.count + 1)
                    v = try Builtins.getitem(v, Int(key).map { .int($0) } ?? .string(String(key)))
                }
            }
            switch conversion {
            case nil, "s"?: out += try v.str()
            case "r"?, "a"?: out += try v.repr()
            default: throw .value("Unknown conversion specifier \(conversion!)")
            }
        } else if c == "}" {
            guard i + 1 < f.count, f[i + 1] == "}" else { throw .value("Single '}' encountered in format string") }
            out += "}"
            i += 2
        } else {
            out.unicodeScalars.append(c)
            i += 1
        }
    }
    return out
}

// How Python writes values, since a template's output is Python's: `str()` and `repr()` of every value,
// the shortest round-trip float (`1.0`, `1e-05`, `1e+16`), the string methods that depend on Python's
// notion of whitespace and line breaks, `json.dumps` (transformers' `tojson`), `%`-formatting and
// `strftime` (transformers' `strftime_now`, in the C locale that Python starts in).
import StrictJSON

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - str() and repr()

extension Value {
    /// Python `str(x)` (what `{{ x }}` prints; undefined prints as nothing).
    func str(depth: Int = 0) throws(PyError) -> String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return try repr(depth: depth)
        }
    }

    /// Python `repr(x)`.
    func repr(depth: Int = 0) throws(PyError) -> String {
        if depth > ChatTemplateLimits.maxCompareDepth { throw PyError(.limit, "a value nested too deeply to print") }
        switch self {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .float(let d): return pythonFloatRepr(d)
        case .string(let s): return pythonRepr(s)
        case .list(let l):
            var out = "["
            for (i, v) in l.items.enumerated() {
                if i > 0 { out += ", " }
                out += try v.repr(depth: depth + 1)
            }
            return out + "]"
        case .tuple(let l):
            var out = "("
            for (i, v) in l.items.enumerated() {
                if i > 0 { out += ", " }
                out += try v.repr(depth: depth + 1)
            }
            return out + (l.items.count == 1 ? ",)" : ")")
        case .dict(let d):
            var out = "{"
            for (i, (k, v)) in d.pairs.enumerated() {
                if i > 0 { out += ", " }
                out += try k.repr(depth: depth + 1) + ": " + v.repr(depth: depth + 1)
            }
            return out + "}"
        case .namespace(let n):
            if n.isLoop { return "<LoopContext \((n.attributes["index"].flatMap(Builtins.index)) ?? 0)/\((n.attributes["length"].flatMap(Builtins.index)) ?? 0)>" }
            return "<Namespace " + (try Value.dict(n.attributes).repr(depth: depth + 1)) + ">"
        case .iterator(let i):
            return i.typeName == "generator" ? "<generator object \(i.function) at 0x0>" : "<\(i.typeName) object at 0x0>"
        case .view(let v):
            return v.typeName + "(" + (try Value.list(v.items.items).repr(depth: depth + 1)) + ")"
        case .callable(let c):
            switch c {
            case .macro(let m): return "<Macro '\(m.definition.name)'>"
            case .global(let name): return "<function \(name)>"
            case .method(let v, let name): return "<built-in method \(name) of \(v.typeName) object>"
            }
        }
    }
}

/// Python `repr()` of a string: single quotes unless the string holds a single quote and no double
/// quote; backslash escapes for the quote, backslash, `\t\n\r`, other control characters and the
/// non-printable code points (`\xa0`, `\u200b`).
func pythonRepr(_ s: String) -> String {
    let useDouble = s.unicodeScalars.contains("'") && !s.unicodeScalars.contains("\"")
    let quote: Unicode.Scalar = useDouble ? "\"" : "'"
    var out = String.UnicodeScalarView()
    out.append(quote)
    for c in s.unicodeScalars {
        switch c {
        case quote, "\\": out.append("\\"); out.append(c)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        default:
            if c.value < 0x20 || c.value == 0x7f {
                out.append(contentsOf: ("\\x" + hex(c.value, 2)).unicodeScalars)
            } else if c.value < 0x7f || isPrintable(c) {
                out.append(c)
            } else if c.value <= 0xff {
                out.append(contentsOf: ("\\x" + hex(c.value, 2)).unicodeScalars)
            } else if c.value <= 0xffff {
                out.append(contentsOf: ("\\u" + hex(c.value, 4)).unicodeScalars)
            } else {
                out.append(contentsOf: ("\\U" + hex(c.value, 8)).unicodeScalars)
            }
        }
    }
    out.append(quote)
    return String(out)
}

func hex(_ v: UInt32, _ width: Int) -> String {
    let h = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - h.count)) + h
}

/// Python's `str.isprintable()` for one code point: not a control, format, surrogate, private-use or
/// unassigned code point, and not a separator other than the space.
func isPrintable(_ c: Unicode.Scalar) -> Bool {
    if c == " " { return true }
    switch c.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
        return false
    default:
        return true
    }
}

/// Python `repr(float)`: the shortest string that reads back as the same double, written in
/// positional notation when the decimal exponent is in [-4, 16), else as `1e+16`, `2.5e-05`.
func pythonFloatRepr(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description is also the shortest round-trip; take its digits and exponent.
    var text = "\(d)"
    var negative = false
    if text.hasPrefix("-") { negative = true; text.removeFirst() }
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(text[text.index(after: e)...]) ?? 0
        text = String(text[..<e])
    }
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    let intPart = String(parts[0]), fracPart = parts.count > 1 ? String(parts[1]) : ""
    var digits = Array(intPart + fracPart)
    var decpt = intPart.count + exponent  // value = 0.d1d2... * 10^decpt
    while digits.first == "0" { digits.removeFirst(); decpt -= 1 }
    while digits.last == "0" { digits.removeLast() }
    if digits.isEmpty { return negative ? "-0.0" : "0.0" }
    var out = negative ? "-" : ""
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            out += "0." + String(repeating: "0", count: -decpt) + String(digits)
        } else if decpt >= digits.count {
            out += String(digits) + String(repeating: "0", count: decpt - digits.count) + ".0"
        } else {
            out += String(digits[..<decpt]) + "." + String(digits[decpt...])
        }
    } else {
        out += String(digits[0])
        if digits.count > 1 { out += "." + String(digits[1...]) }
        let e = decpt - 1
        out += (e < 0 ? "e-" : "e+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
    }
    return out
}

// MARK: - Python's whitespace and line breaks

/// Python `str.isspace()` for one code point (Unicode White_Space, plus the information separators
/// U+001C..U+001F that Python counts).
func isPythonSpace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0d, 0x1c...0x20, 0x85, 0xa0, 0x1680, 0x2000...0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
        return true
    default:
        return false
    }
}

/// The line boundaries of Python `str.splitlines()`.
func isPythonLineBreak(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x0a...0x0d, 0x1c...0x1e, 0x85, 0x2028, 0x2029: return true
    default: return false
    }
}

extension String {
    /// Python `str.strip(chars)` (`chars == nil`: whitespace), also `lstrip`/`rstrip` by the flags.
    func pyStrip(_ chars: String?, left: Bool = true, right: Bool = true) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func strip(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isPythonSpace(c) }
        let u = Array(unicodeScalars)
        var lo = 0, hi = u.count
        if left { while lo < hi, strip(u[lo]) { lo += 1 } }
        if right { while hi > lo, strip(u[hi - 1]) { hi -= 1 } }
        return String(String.UnicodeScalarView(u[lo..<hi]))
    }

    /// Python `str.splitlines(keepends=False)`.
    func pySplitLines() -> [String] {
        let u = Array(unicodeScalars)
        var out: [String] = []
        var start = 0, i = 0
        while i < u.count {
            if isPythonLineBreak(u[i]) {
                out.append(String(String.UnicodeScalarView(u[start..<i])))
                if u[i] == "\r", i + 1 < u.count, u[i + 1] == "\n" { i += 1 }
                start = i + 1
            }
            i += 1
        }
        if start < u.count { out.append(String(String.UnicodeScalarView(u[start...]))) }
        return out
    }

    /// Python `str.split(sep, maxsplit)`; `sep == nil` splits on runs of whitespace.
    func pySplit(_ sep: String?, maxSplit: Int = -1) throws(PyError) -> [String] {
        let u = Array(unicodeScalars)
        var out: [String] = []
        guard let sep else {
            var i = 0, splits = 0
            while i < u.count {
                while i < u.count, isPythonSpace(u[i]) { i += 1 }
                if i == u.count { break }
                if maxSplit >= 0, splits == maxSplit {
                    out.append(String(String.UnicodeScalarView(u[i...])))  // the rest, trailing whitespace kept
                    return out
                }
                let start = i
                while i < u.count, !isPythonSpace(u[i]) { i += 1 }
                out.append(String(String.UnicodeScalarView(u[start..<i])))
                splits += 1
            }
            return out
        }
        let s = Array(sep.unicodeScalars)
        if s.isEmpty { throw .value("empty separator") }
        var start = 0, i = 0, splits = 0
        while i + s.count <= u.count {
            if maxSplit >= 0, splits == maxSplit { break }
            if u[i..<(i + s.count)].elementsEqual(s) {
                out.append(String(String.UnicodeScalarView(u[start..<i])))
                i += s.count
                start = i
                splits += 1
            } else {
                i += 1
            }
        }
        out.append(String(String.UnicodeScalarView(u[start...])))
        return out
    }

    /// Python `str.rsplit(sep, maxsplit)`.
    func pyRSplit(_ sep: String?, maxSplit: Int = -1) throws(PyError) -> [String] {
        if maxSplit < 0 { return try pySplit(sep, maxSplit: -1) }
        let reversed = String(String.UnicodeScalarView(unicodeScalars.reversed()))
        let rsep = sep.map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }
        return try reversed.pySplit(rsep, maxSplit: maxSplit).reversed().map {
            String(String.UnicodeScalarView($0.unicodeScalars.reversed()))
        }
    }

    /// Python `str.replace(old, new, count)` on code points.
    func pyReplace(_ old: String, _ new: String, count: Int = -1) -> String {
        let u = Array(unicodeScalars), o = Array(old.unicodeScalars), n = Array(new.unicodeScalars)
        var out = String.UnicodeScalarView()
        var done = 0
        if o.isEmpty {
            // Python inserts `new` before every code point and at the end.
            for c in u {
                if count < 0 || done < count { out.append(contentsOf: n); done += 1 }
                out.append(c)
            }
            if count < 0 || done < count { out.append(contentsOf: n) }
            return String(out)
        }
        var i = 0
        while i < u.count {
            if (count < 0 || done < count), i + o.count <= u.count, u[i..<(i + o.count)].elementsEqual(o) {
                out.append(contentsOf: n)
                i += o.count
                done += 1
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return String(out)
    }

    /// Python `str.find(sub)` (`fromEnd`: `rfind`), in code points; -1 when absent.
    func pyFind(_ sub: String, fromEnd: Bool = false) -> Int {
        let u = Array(unicodeScalars), s = Array(sub.unicodeScalars)
        guard s.count <= u.count else { return -1 }
        let starts = Array(0...(u.count - s.count))
        for i in (fromEnd ? starts.reversed() : starts) where u[i..<(i + s.count)].elementsEqual(s) { return i }
        return -1
    }

    /// Python `str.count(sub)` (non-overlapping).
    func pyCount(_ sub: String) -> Int {
        let u = Array(unicodeScalars), s = Array(sub.unicodeScalars)
        if s.isEmpty { return u.count + 1 }
        var i = 0, n = 0
        while i + s.count <= u.count {
            if u[i..<(i + s.count)].elementsEqual(s) { n += 1; i += s.count } else { i += 1 }
        }
        return n
    }

    /// Python `str.startswith` / `endswith` by code points.
    func pyHasPrefix(_ p: String) -> Bool { unicodeScalars.starts(with: p.unicodeScalars) }
    func pyHasSuffix(_ p: String) -> Bool { unicodeScalars.reversed().starts(with: p.unicodeScalars.reversed()) }

    /// Python `str.upper()` / `lower()` (full case mappings).
    var pyUpper: String { mapScalars { $0.properties.uppercaseMapping } }
    var pyLower: String { mapScalars { $0.properties.lowercaseMapping } }

    /// Python `str.capitalize()`: the first code point title-cased, the rest lower-cased.
    var pyCapitalize: String {
        var out = ""
        for (i, c) in unicodeScalars.enumerated() {
            out += i == 0 ? c.properties.titlecaseMapping : c.properties.lowercaseMapping
        }
        return out
    }

    /// Python `str.title()`: title-case after an uncased code point, lower-case after a cased one.
    var pyTitle: String {
        var out = "", previousCased = false
        for c in unicodeScalars {
            out += previousCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping
            previousCased = c.properties.isCased
        }
        return out
    }

    private func mapScalars(_ f: (Unicode.Scalar) -> String) -> String {
        var out = ""
        for c in unicodeScalars { out += f(c) }
        return out
    }

    /// The code points, for indexing and slicing as Python does.
    var scalars: [Unicode.Scalar] { Array(unicodeScalars) }

    init(scalars: some Sequence<Unicode.Scalar>) {
        self = String(String.UnicodeScalarView(scalars))
    }
}

// MARK: - json.dumps (transformers' tojson)

/// The options of Python `json.dumps` that transformers' `tojson` filter passes on.
struct JSONDumpOptions {
    var ensureASCII = false
    /// nil: one line; else the string that indents one level (an int n means n spaces).
    var indent: String? = nil
    var itemSeparator: String? = nil
    var keySeparator: String? = nil
    var sortKeys = false
}

/// Python `json.dumps(value, ensure_ascii=…, indent=…, separators=…, sort_keys=…)`.
func pythonJSONDumps(_ value: Value, _ options: JSONDumpOptions) throws(PyError) -> String {
    let itemSep = options.itemSeparator ?? (options.indent == nil ? ", " : ",")
    let keySep = options.keySeparator ?? ": "
    var out = ""
    func quoted(_ s: String) -> String {
        guard options.ensureASCII else { return JSONValue.quoted(s) }
        var o = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            case "\n": o += "\\n"
            case "\r": o += "\\r"
            case "\t": o += "\\t"
            case "\u{08}": o += "\\b"
            case "\u{0C}": o += "\\f"
            default:
                if c.value >= 0x20 && c.value < 0x7f {
                    o.unicodeScalars.append(c)
                } else if c.value > 0xffff {
                    let v = c.value - 0x10000
                    o += "\\u" + hex(0xd800 + (v >> 10), 4) + "\\u" + hex(0xdc00 + (v & 0x3ff), 4)
                } else {
                    o += "\\u" + hex(c.value, 4)
                }
            }
        }
        return o + "\""
    }
    func float(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return pythonFloatRepr(d)
    }
    func key(_ k: Value) throws(PyError) -> String {
        switch k {
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        case .none: return "null"
        case .int(let i): return String(i)
        case .float(let d): return float(d)
        default: throw .type("keys must be str, int, float, bool or None, not \(k.typeName)")
        }
    }
    func newline(_ level: Int) {
        if let ind = options.indent {
            out += "\n"
            for _ in 0..<level { out += ind }
        }
    }
    func write(_ v: Value, _ level: Int) throws(PyError) {
        if level > ChatTemplateLimits.maxCompareDepth { throw PyError(.value, "Circular reference detected") }
        switch v {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .float(let d): out += float(d)
        case .string(let s): out += quoted(s)
        case .list(let l), .tuple(let l):
            if l.items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in l.items.enumerated() {
                if i > 0 { out += itemSep }
                newline(level + 1)
                try write(item, level + 1)
            }
            newline(level)
            out += "]"
        case .dict(let d):
            if d.count == 0 { out += "{}"; return }
            var pairs = Array(d.pairs)
            if options.sortKeys {
                let keys = try Builtins.sorted(pairs.map { $0.0 }) { (x: Value, y: Value) throws(PyError) -> Bool in try x.pyCompare(y, "<") }
                pairs = keys.map { k in (k, d[k] ?? .none) }
            }
            out += "{"
            for (i, (k, item)) in pairs.enumerated() {
                if i > 0 { out += itemSep }
                newline(level + 1)
                out += quoted(try key(k)) + keySep
                try write(item, level + 1)
            }
            newline(level)
            out += "}"
        default:
            throw .type("Object of type \(v.typeName) is not JSON serializable")
        }
    }
    try write(value, 0)
    return out
}

// MARK: - %-formatting

/// Python `format % args` for the conversions templates use: `s r d i f F e E g G x X o c %`, with
/// flags, width and precision; `args` is a tuple, a dict (for `%(name)s`) or a single value.
func pythonPercentFormat(_ format: String, _ args: Value) throws(PyError) -> String {
    let f = format.scalars
    var positional: [Value]
    var mapping: ValueDict? = nil
    // Python treats any subscriptable argument other than a tuple or string as a mapping: then unused
    // arguments are not an error.
    var isMapping = false
    switch args {
    case .tuple(let t): positional = t.items
    case .dict(let d): positional = [args]; mapping = d; isMapping = true
    case .list, .undefined: positional = [args]; isMapping = true
    default: positional = [args]
    }
    var next = 0
    var out = ""
    var i = 0
    func take() throws(PyError) -> Value {
        guard next < positional.count else { throw .type("not enough arguments for format string") }
        defer { next += 1 }
        return positional[next]
    }
    while i < f.count {
        let c = f[i]
        if c != "%" { out.unicodeScalars.append(c); i += 1; continue }
        i += 1
        guard i < f.count else { throw .value("incomplete format") }
        var arg: Value? = nil
        if f[i] == "(" {
            guard let mapping else { throw .type("format requires a mapping") }
            var j = i + 1, depth = 1
            while j < f.count, depth > 0 { if f[j] == "(" { depth += 1 } else if f[j] == ")" { depth -= 1 }; j += 1 }
            let key = String(scalars: f[(i + 1)..<(j - 1)])
            guard let v = mapping[key] else { throw PyError(.index, pythonRepr(key)) }
            arg = v
            i = j
        }
        var flags = Set<Unicode.Scalar>()
        while i < f.count, "-+ #0".unicodeScalars.contains(f[i]) { flags.insert(f[i]); i += 1 }
        var width = 0
        if i < f.count, f[i] == "*" { width = try intArg(try take()); i += 1 } else {
            while i < f.count, let d = Int(String(f[i])) { width = min(width * 10 + d, 100_000); i += 1 }
        }
        var precision: Int? = nil
        if i < f.count, f[i] == "." {
            i += 1
            var p = 0
            if i < f.count, f[i] == "*" { p = try intArg(try take()); i += 1 } else {
                while i < f.count, let d = Int(String(f[i])) { p = min(p * 10 + d, 100_000); i += 1 }
            }
            precision = p
        }
        while i < f.count, "hlL".unicodeScalars.contains(f[i]) { i += 1 }
        guard i < f.count else { throw .value("incomplete format") }
        let conv = f[i]
        i += 1
        if conv == "%" { out += "%"; continue }
        let v: Value
        if let arg { v = arg } else { v = try take() }
        var body: String
        var numericSign = ""
        switch conv {
        case "s": body = try v.str(); if let p = precision { body = String(scalars: body.scalars.prefix(p)) }
        case "r", "a": body = try v.repr(); if let p = precision { body = String(scalars: body.scalars.prefix(p)) }
        case "d", "i", "u", "x", "X", "o":
            var n: Int
            switch v {
            case .int(let x): n = x
            case .bool(let b): n = b ? 1 : 0
            case .float(let d):
                guard d.isFinite, abs(d) < 9.2e18 else { throw PyError(.overflow, "cannot convert float to integer") }
                n = Int(d)
            default: throw .type("%\(conv) format: a real number is required, not \(v.typeName)")
            }
            if n < 0 { numericSign = "-"; n = n == Int.min ? Int.max : -n }
            else if flags.contains("+") { numericSign = "+" } else if flags.contains(" ") { numericSign = " " }
            switch conv {
            case "x": body = String(n, radix: 16); if flags.contains("#") { numericSign += "0x" }
            case "X": body = String(n, radix: 16).uppercased(); if flags.contains("#") { numericSign += "0X" }
            case "o": body = String(n, radix: 8); if flags.contains("#") { numericSign += "0o" }
            default: body = String(n)
            }
            if let p = precision, body.count < p { body = String(repeating: "0", count: p - body.count) + body }
        case "f", "F", "e", "E", "g", "G":
            let d: Double
            switch v {
            case .int(let x): d = Double(x)
            case .bool(let b): d = b ? 1 : 0
            case .float(let x): d = x
            default: throw .type("must be real number, not \(v.typeName)")
            }
            if d.sign == .minus, !d.isNaN { numericSign = "-" }
            else if flags.contains("+") { numericSign = "+" } else if flags.contains(" ") { numericSign = " " }
            let mag = abs(d)
            if mag.isNaN { body = conv.properties.isUppercase ? "NAN" : "nan" }
            else if mag.isInfinite { body = conv.properties.isUppercase ? "INF" : "inf" }
            else { body = cFormat(mag, conversion: Character(conv), precision: min(precision ?? 6, 300), alternate: flags.contains("#")) }
        case "c":
            switch v {
            case .int(let x):
                guard let s = Unicode.Scalar(UInt32(clamping: max(0, x))) else { throw PyError(.overflow, "%c arg not in range(0x110000)") }
                body = String(s)
            case .string(let s) where s.unicodeScalars.count == 1: body = s
            default: throw .type("%c requires int or char")
            }
        default:
            throw .value("unsupported format character '\(conv)' (0x\(hex(conv.value, 1))) at index \(i - 1)")
        }
        let total = numericSign.unicodeScalars.count + body.unicodeScalars.count
        if total < width {
            let pad = width - total
            if flags.contains("-") { out += numericSign + body + String(repeating: " ", count: pad) }
            else if flags.contains("0"), !"sracs".unicodeScalars.contains(conv) { out += numericSign + String(repeating: "0", count: pad) + body }
            else { out += String(repeating: " ", count: pad) + numericSign + body }
        } else {
            out += numericSign + body
        }
    }
    if !isMapping, next < positional.count { throw .type("not all arguments converted during string formatting") }
    return out
}

private func intArg(_ v: Value) throws(PyError) -> Int {
    guard case .int(let i) = v else { throw .type("* wants int") }
    return min(max(i, 0), 100_000)
}

/// C `printf` of a finite, non-negative double (`%.*f`, `%.*e`, `%.*g`); Python's `%` formatting of
/// floats gives the same digits.
func cFormat(_ d: Double, conversion: Character, precision: Int, alternate: Bool = false) -> String {
    let spec = "%" + (alternate ? "#" : "") + ".*" + String(conversion)
    var buffer = [CChar](repeating: 0, count: 400)
    let n = withVaList([Int32(precision), d]) { vsnprintf(&buffer, buffer.count, spec, $0) }
    if n >= buffer.count {
        buffer = [CChar](repeating: 0, count: Int(n) + 1)
        _ = withVaList([Int32(precision), d]) { vsnprintf(&buffer, buffer.count, spec, $0) }
    }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

// MARK: - strftime (C locale)

/// A broken-down local time, as Python's `datetime.now()` holds it.
public struct BrokenDownTime: Sendable, Equatable {
    /// Calendar fields of a naive local time: month 1...12, day 1...31, hour 0...23.
    public var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int, microsecond: Int

    /// A local time; the fields are used as given (no validation, no time zone).
    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0, microsecond: Int = 0) {
        self.year = year; self.month = month; self.day = day
        self.hour = hour; self.minute = minute; self.second = second; self.microsecond = microsecond
    }

    /// The local time of the system clock now (what transformers' `datetime.now()` reads).
    public static func now() -> BrokenDownTime {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var tmv = tm()
        localtime_r(&t, &tmv)
        return BrokenDownTime(year: Int(tmv.tm_year) + 1900, month: Int(tmv.tm_mon) + 1, day: Int(tmv.tm_mday),
                              hour: Int(tmv.tm_hour), minute: Int(tmv.tm_min), second: Int(tmv.tm_sec),
                              microsecond: Int(ts.tv_nsec) / 1000)
    }

    var isLeapYear: Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    /// 1-based day of the year.
    var dayOfYear: Int {
        let days = [31, isLeapYear ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return days.prefix(max(0, min(12, month - 1))).reduce(0, +) + day
    }

    /// 0 = Sunday.
    var weekday: Int {
        // Zeller-style: days since 0001-01-01 (a Monday in the proleptic Gregorian calendar).
        let y = year - 1
        let days = y * 365 + y / 4 - y / 100 + y / 400 + dayOfYear - 1
        return (days + 1) % 7
    }
}

private let weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
private let monthNames = ["January", "February", "March", "April", "May", "June", "July", "August",
                          "September", "October", "November", "December"]

/// Python `datetime.strftime(format)` in the C locale (glibc's conversions, and Python's `%f`).
func pythonStrftime(_ format: String, _ t: BrokenDownTime) -> String {
    let f = format.scalars
    var out = ""
    var i = 0
    func pad(_ v: Int, _ w: Int, _ c: Character = "0") -> String {
        let s = String(v)
        return String(repeating: c, count: max(0, w - s.count)) + s
    }
    let hour12 = t.hour % 12 == 0 ? 12 : t.hour % 12
    let wday = t.weekday
    let mon = max(1, min(12, t.month)) - 1
    while i < f.count {
        guard f[i] == "%", i + 1 < f.count else { out.unicodeScalars.append(f[i]); i += 1; continue }
        var c = f[i + 1]
        var noPad = false
        var consumed = 2
        if c == "-", i + 2 < f.count { noPad = true; c = f[i + 2]; consumed = 3 }
        func num(_ v: Int, _ w: Int, _ fill: Character = "0") -> String { noPad ? String(v) : pad(v, w, fill) }
        switch c {
        case "a": out += String(weekdayNames[wday].prefix(3))
        case "A": out += weekdayNames[wday]
        case "b", "h": out += String(monthNames[mon].prefix(3))
        case "B": out += monthNames[mon]
        case "d": out += num(t.day, 2)
        case "e": out += num(t.day, 2, " ")
        case "m": out += num(t.month, 2)
        case "y": out += num(t.year % 100, 2)
        case "Y": out += String(t.year)
        case "C": out += num(t.year / 100, 2)
        case "H": out += num(t.hour, 2)
        case "I": out += num(hour12, 2)
        case "M": out += num(t.minute, 2)
        case "S": out += num(t.second, 2)
        case "f": out += pad(t.microsecond, 6)
        case "p": out += t.hour < 12 ? "AM" : "PM"
        case "j": out += num(t.dayOfYear, 3)
        case "w": out += String(wday)
        case "u": out += String(wday == 0 ? 7 : wday)
        case "U": out += num((t.dayOfYear + 6 - wday) / 7, 2)
        case "W": out += num((t.dayOfYear + 6 - (wday + 6) % 7) / 7, 2)
        case "D": out += pad(t.month, 2) + "/" + pad(t.day, 2) + "/" + pad(t.year % 100, 2)
        case "F": out += String(t.year) + "-" + pad(t.month, 2) + "-" + pad(t.day, 2)
        case "T", "X": out += pad(t.hour, 2) + ":" + pad(t.minute, 2) + ":" + pad(t.second, 2)
        case "R": out += pad(t.hour, 2) + ":" + pad(t.minute, 2)
        case "x": out += pad(t.month, 2) + "/" + pad(t.day, 2) + "/" + pad(t.year % 100, 2)
        case "c": out += String(weekdayNames[wday].prefix(3)) + " " + String(monthNames[mon].prefix(3)) + " " + pad(t.day, 2, " ")
                + " " + pad(t.hour, 2) + ":" + pad(t.minute, 2) + ":" + pad(t.second, 2) + " " + String(t.year)
        case "n": out += "\n"
        case "t": out += "\t"
        case "z", "Z": break  // a naive datetime has no zone
        case "%": out += "%"
        default: out += "%" + (noPad ? "-" : "") + String(c)
        }
        i += consumed
    }
    return out
}

// The lexer: template text to tokens, as jinja2 3.1's Lexer does it under transformers' settings
// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, newline_sequence="\n").
//
// Whitespace control, exactly as jinja2/lexer.py applies it:
// - newlines: "\r\n", "\r" and "\n" all become "\n", and one trailing newline of the template is dropped;
// - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`, `-#}` all whitespace after it;
// - trim_blocks: one newline right after `%}` or `#}` is removed (not after `}}`; `+%}` keeps it);
// - lstrip_blocks: spaces and tabs between the start of a line and `{%` or `{#` are removed (not before
//   `{{`; `{%+` keeps them);
// - `{% raw %}…{% endraw %}` is data, with the same stripping at its ends.
// Positions are counted in Unicode code points, as Python indexes strings.

/// One token of a template.
struct Token: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// Literal text between tags.
        case data(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        /// A string literal, escapes decoded.
        case string(String)
        case integer(Int)
        case float(Double)
        /// An operator or punctuation: `+ - * / // % ** ~ == != < <= > >= = . : | , ; ( ) [ ] { }`.
        case op(String)
        case eof
    }

    let kind: Kind
    let location: SourceLocation
}

struct Lexer {
    private let src: [Unicode.Scalar]
    private let lineStarts: [Int]
    private var pos = 0
    private var tokens: [Token] = []
    /// jinja2's `line_starting`: the previous match ended with a newline (or nothing was matched yet).
    private var lineStarting = true

    /// The tokens of `source`, ending with `.eof`.
    static func tokenize(_ source: String) throws(ChatTemplateError) -> [Token] {
        var lexer = Lexer(normalizing: source)
        try lexer.run()
        return lexer.tokens
    }

    private init(normalizing source: String) {
        // Python: newline_re.split(source)[::2], drop a last empty line, join with "\n".
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(source.unicodeScalars.count)
        var it = source.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        while let c = pending ?? it.next() {
            pending = nil
            if c == "\r" {
                out.append("\n")
                if let d = it.next() { if d != "\n" { pending = d } }
            } else {
                out.append(c)
            }
        }
        if out.last == "\n" { out.removeLast() }
        src = out
        var starts = [0]
        for (i, c) in out.enumerated() where c == "\n" { starts.append(i + 1) }
        lineStarts = starts
    }

    private func location(_ p: Int) -> SourceLocation {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= p { lo = mid } else { hi = mid - 1 }
        }
        return SourceLocation(line: lo + 1, column: p - lineStarts[lo] + 1)
    }

    private func at(_ i: Int, _ s: String) -> Bool {
        var j = i
        for c in s.unicodeScalars {
            guard j < src.count, src[j] == c else { return false }
            j += 1
        }
        return true
    }

    private func skipSpace(_ i: Int) -> Int {
        var j = i
        while j < src.count, isPythonSpace(src[j]) { j += 1 }
        return j
    }

    private mutating func emit(_ kind: Token.Kind, _ p: Int) {
        tokens.append(Token(kind: kind, location: location(p)))
    }

    /// Emits the text before a tag, stripped as jinja2's OptionalLStrip rule strips it.
    private mutating func emitData(_ start: Int, _ end: Int, sign: Unicode.Scalar?, isVariable: Bool) {
        var lo = start, hi = end
        if sign == "-" {
            while hi > lo, isPythonSpace(src[hi - 1]) { hi -= 1 }
        } else if sign != "+", !isVariable {
            var lineStart = hi
            while lineStart > lo, src[lineStart - 1] != "\n" { lineStart -= 1 }
            if lineStart > lo || lineStarting, lineStart < hi, (lineStart..<hi).allSatisfy({ isPythonSpace(src[$0]) }) {
                hi = lineStart
            }
        }
        if hi > lo { emit(.data(String(scalars: src[lo..<hi])), lo) }
    }

    private mutating func run() throws(ChatTemplateError) {
        while pos < src.count {
            var j = pos
            var found = false
            while j + 1 < src.count {
                if src[j] == "{", src[j + 1] == "%" || src[j + 1] == "{" || src[j + 1] == "#" { found = true; break }
                j += 1
            }
            guard found else {
                emit(.data(String(scalars: src[pos...])), pos)
                pos = src.count
                break
            }
            if src[j + 1] == "%", let (sign, end) = matchRaw(at: j, keyword: "raw", endRule: false) {
                emitData(pos, j, sign: sign, isVariable: false)
                lineStarting = src[end - 1] == "\n"
                pos = end
                try lexRawBody(opening: j)
                continue
            }
            let kind = src[j + 1]
            var sign: Unicode.Scalar? = nil
            if j + 2 < src.count, src[j + 2] == "-" || src[j + 2] == "+" { sign = src[j + 2] }
            emitData(pos, j, sign: sign, isVariable: kind == "{")
            lineStarting = false  // the match ends with the tag's opening
            pos = j + 2 + (sign == nil ? 0 : 1)
            switch kind {
            case "#": try lexComment(opening: j)
            case "%": emit(.blockBegin, j); try lexTag(block: true, opening: j)
            default: emit(.variableBegin, j); try lexTag(block: false, opening: j)
            }
        }
        emit(.eof, src.count)
    }

    /// `{%(-|+|)\s*raw\s*(?:-%}\s*|%})` (or, with `endRule`, `{%(-|+|)\s*endraw\s*(?:+%}|-%}\s*|%}\n?)`)
    /// at `i`: the sign and the end of the match.
    private func matchRaw(at i: Int, keyword: String, endRule: Bool) -> (Unicode.Scalar?, Int)? {
        guard at(i, "{%") else { return nil }
        var j = i + 2
        var sign: Unicode.Scalar? = nil
        if j < src.count, src[j] == "-" || src[j] == "+" { sign = src[j]; j += 1 }
        j = skipSpace(j)
        guard at(j, keyword) else { return nil }
        j = skipSpace(j + keyword.unicodeScalars.count)
        if endRule, at(j, "+%}") { return (sign, j + 3) }
        if at(j, "-%}") { return (sign, skipSpace(j + 3)) }
        if at(j, "%}") {
            var e = j + 2
            if endRule, e < src.count, src[e] == "\n" { e += 1 }
            return (sign, e)
        }
        return nil
    }

    private mutating func lexRawBody(opening: Int) throws(ChatTemplateError) {
        var k = pos
        while k + 1 < src.count {
            if src[k] == "{", src[k + 1] == "%", let (sign, end) = matchRaw(at: k, keyword: "endraw", endRule: true) {
                emitData(pos, k, sign: sign, isVariable: false)
                lineStarting = src[end - 1] == "\n"
                pos = end
                return
            }
            k += 1
        }
        throw .syntax(what: "missing end of raw directive ({% endraw %})", at: location(opening))
    }

    private mutating func lexComment(opening: Int) throws(ChatTemplateError) {
        var k = pos
        while k < src.count {
            if at(k, "+#}") { pos = k + 3; lineStarting = false; return }
            if at(k, "-#}") { pos = skipSpace(k + 3); lineStarting = src[pos - 1] == "\n"; return }
            if at(k, "#}") {
                pos = k + 2
                if pos < src.count, src[pos] == "\n" { pos += 1 }
                lineStarting = src[pos - 1] == "\n"
                return
            }
            k += 1
        }
        throw .syntax(what: "missing end of comment tag ('#}') for the comment opened here", at: location(opening))
    }

    private mutating func lexTag(block: Bool, opening: Int) throws(ChatTemplateError) {
        var balance: [Unicode.Scalar] = []
        let what = block ? "'{%' tag" : "'{{' expression"
        while true {
            guard pos < src.count else {
                throw .syntax(what: "unexpected end of template: the \(what) opened here is not closed", at: location(opening))
            }
            if balance.isEmpty {
                if block {
                    if at(pos, "+%}") { emit(.blockEnd, pos); pos += 3; lineStarting = false; return }
                    if at(pos, "-%}") { emit(.blockEnd, pos); pos = skipSpace(pos + 3); lineStarting = src[pos - 1] == "\n"; return }
                    if at(pos, "%}") {
                        emit(.blockEnd, pos)
                        pos += 2
                        if pos < src.count, src[pos] == "\n" { pos += 1 }
                        lineStarting = src[pos - 1] == "\n"
                        return
                    }
                } else {
                    if at(pos, "-}}") { emit(.variableEnd, pos); pos = skipSpace(pos + 3); lineStarting = src[pos - 1] == "\n"; return }
                    if at(pos, "}}") { emit(.variableEnd, pos); pos += 2; lineStarting = false; return }
                }
            }
            let c = src[pos]
            if isPythonSpace(c) { pos = skipSpace(pos); continue }
            if let end = matchFloat(pos) {
                let text = String(scalars: src[pos..<end].filter { $0 != "_" })
                guard let d = Double(text) else { throw .syntax(what: "invalid number \(text)", at: location(pos)) }
                emit(.float(d), pos); pos = end; continue
            }
            if let (end, value) = try matchInteger(pos) { emit(.integer(value), pos); pos = end; continue }
            if isNameChar(c) {
                var end = pos
                while end < src.count, isNameChar(src[end]) { end += 1 }
                let name = String(scalars: src[pos..<end])
                guard c == "_" || c.properties.isAlphabetic else {
                    throw .syntax(what: "invalid character in identifier \(pythonRepr(name))", at: location(pos))
                }
                emit(.name(name), pos); pos = end; continue
            }
            if c == "'" || c == "\"" {
                var k = pos + 1
                while k < src.count, src[k] != c { k += src[k] == "\\" ? 2 : 1 }
                guard k < src.count else { throw .syntax(what: "unterminated string literal", at: location(pos)) }
                let value = try decodeStringLiteral(src[(pos + 1)..<k], at: location(pos))
                emit(.string(value), pos); pos = k + 1; continue
            }
            if let op = matchOperator(pos) {
                switch op {
                case "(": balance.append(")")
                case "[": balance.append("]")
                case "{": balance.append("}")
                case ")", "]", "}":
                    guard let expected = balance.popLast() else { throw .syntax(what: "unexpected '\(op)'", at: location(pos)) }
                    if String(expected) != op { throw .syntax(what: "unexpected '\(op)', expected '\(expected)'", at: location(pos)) }
                default: break
                }
                emit(.op(op), pos)
                pos += op.unicodeScalars.count
                continue
            }
            throw .syntax(what: "unexpected character \(pythonRepr(String(c)))", at: location(pos))
        }
    }

    private func isNameChar(_ c: Unicode.Scalar) -> Bool {
        if c == "_" { return true }
        if c.value < 0x80 { return (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9") }
        let p = c.properties
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .connectorPunctuation: return true
        default: return p.isAlphabetic || p.numericType != nil
        }
    }

    private static func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }

    /// `(\d+_)*\d+` at i: the end, or nil.
    private func digits(_ i: Int) -> Int? {
        guard i < src.count, Lexer.isDigit(src[i]) else { return nil }
        var j = i
        while true {
            while j < src.count, Lexer.isDigit(src[j]) { j += 1 }
            if j + 1 < src.count, src[j] == "_", Lexer.isDigit(src[j + 1]) { j += 1; continue }
            return j
        }
    }

    private func exponent(_ i: Int) -> Int? {
        guard i < src.count, src[i] == "e" || src[i] == "E" else { return nil }
        var j = i + 1
        if j < src.count, src[j] == "+" || src[j] == "-" { j += 1 }
        return digits(j)
    }

    /// jinja2's float_re: digits, then an exponent (after an optional fraction) or a fraction.
    private func matchFloat(_ i: Int) -> Int? {
        if i > 0, src[i - 1] == "." { return nil }
        guard let a = digits(i) else { return nil }
        if a < src.count, src[a] == ".", let b = digits(a + 1) {
            return exponent(b) ?? b
        }
        return exponent(a)
    }

    /// jinja2's integer_re (binary, octal, hex, decimal with `_` separators).
    private func matchInteger(_ i: Int) throws(ChatTemplateError) -> (Int, Int)? {
        guard i < src.count, Lexer.isDigit(src[i]) else { return nil }
        func run(_ start: Int, _ ok: (Unicode.Scalar) -> Bool) -> Int {
            var j = start
            while true {
                if j < src.count, ok(src[j]) { j += 1; continue }
                if j + 1 < src.count, src[j] == "_", ok(src[j + 1]) { j += 2; continue }
                return j
            }
        }
        func value(_ s: ArraySlice<Unicode.Scalar>, radix: Int, at p: Int) throws(ChatTemplateError) -> Int {
            let text = String(scalars: s.filter { $0 != "_" })
            guard let v = Int(text, radix: radix) else { throw .syntax(what: "integer literal \(text) does not fit in 64 bits", at: location(p)) }
            return v
        }
        if src[i] == "0", i + 1 < src.count {
            let p = src[i + 1]
            let radix: Int? = (p == "b" || p == "B") ? 2 : (p == "o" || p == "O") ? 8 : (p == "x" || p == "X") ? 16 : nil
            if let radix {
                let ok: (Unicode.Scalar) -> Bool = { c in
                    guard let d = Int(String(c), radix: 16) else { return false }
                    return d < radix
                }
                let end = run(i + 2, ok)
                if end > i + 2 { return (end, try value(src[(i + 2)..<end], radix: radix, at: i)) }
            }
        }
        if src[i] == "0" {
            let end = run(i + 1) { $0 == "0" }
            return (end, 0)
        }
        let end = run(i + 1, Lexer.isDigit)
        return (end, try value(src[i..<end], radix: 10, at: i))
    }

    private static let operators = ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")",
                                    "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"]

    private func matchOperator(_ i: Int) -> String? {
        Lexer.operators.first { at(i, $0) }
    }
}

/// Python's decoding of a jinja2 string literal's body: `.encode("ascii", "backslashreplace")
/// .decode("unicode-escape")` (so `\n`, `\t`, `\xhh`, `\uhhhh`, octal escapes are decoded and an unknown
/// escape such as `\d` stays as written).
func decodeStringLiteral(_ body: ArraySlice<Unicode.Scalar>, at location: SourceLocation) throws(ChatTemplateError) -> String {
    // Step 1: backslashreplace: every non-ASCII code point becomes \xhh, \uhhhh or \Uhhhhhhhh.
    var ascii: [Unicode.Scalar] = []
    ascii.reserveCapacity(body.count)
    for c in body {
        if c.value < 0x80 { ascii.append(c); continue }
        let text = c.value <= 0xff ? "\\x" + hex(c.value, 2) : c.value <= 0xffff ? "\\u" + hex(c.value, 4) : "\\U" + hex(c.value, 8)
        ascii.append(contentsOf: text.unicodeScalars)
    }
    // Step 2: unicode-escape.
    var out = String.UnicodeScalarView()
    var i = 0
    func hexValue(_ count: Int, _ what: String) throws(ChatTemplateError) -> UInt32 {
        guard i + count <= ascii.count else { throw .syntax(what: "truncated \(what) escape in a string literal", at: location) }
        var v: UInt32 = 0
        for k in 0..<count {
            guard let d = Int(String(ascii[i + k]), radix: 16) else { throw .syntax(what: "truncated \(what) escape in a string literal", at: location) }
            v = v * 16 + UInt32(d)
        }
        i += count
        return v
    }
    func append(_ v: UInt32) throws(ChatTemplateError) {
        guard let s = Unicode.Scalar(v) else {
            throw .syntax(what: "the escape \\u\(hex(v, 4)) in a string literal is a surrogate or out of range, which is not supported", at: location)
        }
        out.append(s)
    }
    while i < ascii.count {
        let c = ascii[i]
        guard c == "\\" else { out.append(c); i += 1; continue }
        guard i + 1 < ascii.count else { throw .syntax(what: "\\ at end of string literal", at: location) }
        let e = ascii[i + 1]
        i += 2
        switch e {
        case "\n": break
        case "\\": out.append("\\")
        case "'": out.append("'")
        case "\"": out.append("\"")
        case "a": out.append("\u{07}")
        case "b": out.append("\u{08}")
        case "f": out.append("\u{0C}")
        case "n": out.append("\n")
        case "r": out.append("\r")
        case "t": out.append("\t")
        case "v": out.append("\u{0B}")
        case "x": try append(try hexValue(2, "\\xXX"))
        case "u": try append(try hexValue(4, "\\uXXXX"))
        case "U": try append(try hexValue(8, "\\UXXXXXXXX"))
        case "N": throw .unsupported(construct: "a \\N{...} escape in a string literal", at: location)
        case "0"..."7":
            var v = e.value - 48
            var n = 1
            while n < 3, i < ascii.count, ascii[i] >= "0", ascii[i] <= "7" { v = v * 8 + ascii[i].value - 48; i += 1; n += 1 }
            try append(v)
        default:
            out.append("\\")
            out.append(e)
        }
    }
    return String(out)
}

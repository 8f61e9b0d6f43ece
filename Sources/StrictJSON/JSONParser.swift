// The strict JSON reader (RFC 8259) for every untrusted file.
//
// The rules, the same for every caller:
//  - the text is UTF-8 (RFC 8259 §8.1): ill-formed sequences, overlong forms and encoded surrogates
//    are refused with the byte offset of the first one, before any syntax error (as Rust's
//    `str::from_utf8` then serde_json, which the `safetensors` crate does);
//  - strings: no raw control characters, only the escapes of §7, no lone surrogate in a \u escape;
//  - numbers are kept as their literal text (`JSONNumber`), so integers stay exact at any size and
//    `1.0` is not an integer;
//  - a key repeated in one object (compared by exact UTF-8 bytes) is refused, where serde_json maps
//    and Python's json silently keep the last one;
//  - nesting is limited (128 levels by default, serde_json's limit), so hostile input cannot exhaust
//    the stack; sizes are limited by the callers, which know what a file may hold (`JSONFile`);
//  - one value, then only whitespace.
// Every error carries the byte offset of the problem. The reader never reads past its buffer and
// never traps on bad input (fuzzed through every file parser: Sources/FuzzHarness).

/// Why a JSON text was refused. `offset` is a byte offset into the parsed text.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        case syntax(String)
        /// An ill-formed UTF-8 sequence starts at `offset`.
        case invalidUTF8
        /// A key that appears twice in one object; `depth` 1 is the top-level object.
        case duplicateKey(String, depth: Int)
        case tooDeep(limit: Int)
    }

    public let reason: Reason
    public let offset: Int

    public init(_ reason: Reason, offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    /// One line: what is wrong and the byte offset (keys are quoted with their escapes).
    public var message: String { "\(what) at byte \(offset)" }

    /// What is wrong, without the place.
    public var what: String {
        switch reason {
        case .syntax(let m): return m
        case .invalidUTF8: return "invalid UTF-8"
        case let .duplicateKey(k, _): return "duplicate key \(JSONValue.string(k).jsonText)"
        case .tooDeep(let limit): return "nested deeper than \(limit) levels"
        }
    }

    public var description: String { message }

    /// The 1-based line and 1-based column (in bytes) of `offset` in `bytes`, for text files.
    public static func lineAndColumn(of offset: Int, in bytes: UnsafeRawBufferPointer) -> (line: Int, column: Int) {
        let end = min(max(offset, 0), bytes.count)
        var line = 1
        var lineStart = 0
        for i in 0..<end where bytes[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        return (line, end - lineStart + 1)
    }
}

extension JSONValue {
    /// The default nesting limit (serde_json's).
    public static let defaultMaxDepth = 128

    /// Parses one JSON value followed only by whitespace, with the rules above.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        if let bad = UTF8Check.firstInvalidOffset(in: bytes) { throw JSONParseError(.invalidUTF8, offset: bad) }
        var p = JSONParser(bytes, maxDepth: maxDepth)
        p.skipWhitespace()
        let v = try p.value(depth: 0)
        p.skipWhitespace()
        if p.pos != bytes.count { throw p.fail("trailing characters after the JSON value") }
        return v
    }

    /// Parses one JSON value from bytes (a file's contents, or a slice of them such as one JSONL line).
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError>? = bytes.withContiguousStorageIfAvailable { buffer in
            do throws(JSONParseError) { return .success(try parse(UnsafeRawBufferPointer(buffer), maxDepth: maxDepth)) }
            catch { return .failure(error) }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try parse(copy, maxDepth: maxDepth)
    }
}

/// UTF-8 well-formedness (Unicode §3.9, Table 3-7), as Rust's `str::from_utf8`.
public enum UTF8Check {
    /// The byte offset where the first ill-formed sequence starts, or nil when all of `bytes` is valid.
    public static func firstInvalidOffset(in bytes: UnsafeRawBufferPointer) -> Int? {
        let n = bytes.count
        var i = 0
        while i < n {
            // ASCII runs eight bytes at a time.
            while i + 8 <= n, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 { i += 8 }
            guard i < n else { break }
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int
            var lo: UInt8 = 0x80, hi: UInt8 = 0xBF  // the allowed range of the second byte
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; hi = 0x9F
            case 0xF0: length = 4; lo = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; hi = 0x8F
            default: return i
            }
            guard i + length <= n else { return i }
            let b1 = bytes[i + 1]
            guard b1 >= lo && b1 <= hi else { return i }
            for k in 2..<length where bytes[i + k] & 0xC0 != 0x80 { return i }
            i += length
        }
        return nil
    }
}

/// Recursive-descent parser over bytes already checked as UTF-8.
private struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var pos = 0
    /// Reused for strings with escapes.
    var scratch: [UInt8] = []

    init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func fail(_ message: String, at offset: Int? = nil) -> JSONParseError {
        JSONParseError(.syntax(message), offset: offset ?? pos)
    }

    func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard let c = peek() else { throw fail("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected character \(Self.printable(c))")
        }
    }

    static func printable(_ c: UInt8) -> String {
        if (0x20..<0x7F).contains(c) { return "'\(UnicodeScalar(c))'" }
        let hex = String(c, radix: 16, uppercase: true)
        return "0x" + (hex.count < 2 ? "0" : "") + hex
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let start = pos
        let w = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for b in w {
            guard peek() == b else { throw fail("invalid literal", at: start) }
            pos += 1
        }
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > maxDepth { throw JSONParseError(.tooDeep(limit: maxDepth), offset: pos) }
        pos += 1  // {
        var members: [(key: String, value: JSONValue)] = []
        var keyOffsets: [Int] = []  // for the error of a duplicate found after the object
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw fail(peek() == nil ? "unexpected end of input inside an object" : "expected a string key") }
            let keyOffset = pos
            let key = try string()
            // Small objects are searched as they grow; large ones (vocabularies have 10^5 keys)
            // once complete, with a set of the right size.
            if members.count < Self.linearSearchLimit, members.contains(where: { $0.key.utf8.elementsEqual(key.utf8) }) {
                throw JSONParseError(.duplicateKey(key, depth: depth), offset: keyOffset)
            }
            keyOffsets.append(keyOffset)
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
            pos += 1
            skipWhitespace()
            let v = try value(depth: depth)
            members.append((key, v))
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "}"):
                pos += 1
                if members.count > Self.linearSearchLimit { try checkUniqueKeys(members, keyOffsets, depth: depth) }
                return .object(members)
            case nil: throw fail("unexpected end of input inside an object")
            default: throw fail("expected ',' or '}' in an object")
            }
        }
    }

    static let linearSearchLimit = 16

    /// Refuses the first key (in file order) that repeats an earlier one.
    private func checkUniqueKeys(_ members: [(key: String, value: JSONValue)], _ offsets: [Int], depth: Int) throws(JSONParseError) {
        var seen = Set<ExactString>(minimumCapacity: members.count)
        for (i, m) in members.enumerated() where !seen.insert(m.key.exact).inserted {
            throw JSONParseError(.duplicateKey(m.key, depth: depth), offset: offsets[i])
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > maxDepth { throw JSONParseError(.tooDeep(limit: maxDepth), offset: pos) }
        pos += 1  // [
        var items: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try value(depth: depth))
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "]"): pos += 1; return .array(items)
            case nil: throw fail("unexpected end of input inside an array")
            default: throw fail("expected ',' or ']' in an array")
            }
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let c = peek() else { throw fail("unexpected end of input in a \\u escape") }
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in a \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    mutating func string() throws(JSONParseError) -> String {
        let open = pos
        pos += 1  // opening quote
        let start = pos
        // Fast path: no escapes; the bytes are valid UTF-8 already.
        while pos < bytes.count {
            let c = bytes[pos]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
                pos += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw fail("control character in a string") }
            pos += 1
        }
        guard pos < bytes.count else { throw fail("unterminated string", at: open) }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]))
        while true {
            guard let c = peek() else { throw fail("unterminated string", at: open) }
            if c == UInt8(ascii: "\"") { pos += 1; break }
            if c < 0x20 { throw fail("control character in a string") }
            if c != UInt8(ascii: "\\") { scratch.append(c); pos += 1; continue }
            let escape = pos
            pos += 1
            guard let e = peek() else { throw fail("unterminated escape") }
            pos += 1
            switch e {
            case UInt8(ascii: "\""): scratch.append(0x22)
            case UInt8(ascii: "\\"): scratch.append(0x5C)
            case UInt8(ascii: "/"): scratch.append(0x2F)
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate must be followed by an escaped low surrogate (RFC 8259 §7).
                    guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw fail("lone surrogate in a \\u escape", at: escape)
                    }
                    pos += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw fail("lone surrogate in a \\u escape", at: escape) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw fail("lone surrogate in a \\u escape", at: escape)
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape", at: escape) }
                scratch.append(contentsOf: UTF8.encode(u)!)
            default:
                throw fail("invalid escape '\\\(Self.printable(e).trimmingQuotes)'", at: escape)
            }
        }
        // Valid UTF-8 input and escapes of valid scalars: this never repairs.
        return String(decoding: scratch, as: UTF8.self)
    }

    mutating func number() throws(JSONParseError) -> JSONNumber {
        let start = pos
        func isDigit(_ c: UInt8?) -> Bool { c.map { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } ?? false }
        if peek() == UInt8(ascii: "-") { pos += 1 }
        guard isDigit(peek()) else { throw fail("invalid number", at: start) }
        if peek() == UInt8(ascii: "0") {
            pos += 1
        } else {
            while isDigit(peek()) { pos += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            pos += 1
            guard isDigit(peek()) else { throw fail("invalid number: a digit must follow '.'") }
            while isDigit(peek()) { pos += 1 }
        }
        if let c = peek(), c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
            pos += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { pos += 1 }
            guard isDigit(peek()) else { throw fail("invalid number: a digit must follow the exponent mark") }
            while isDigit(peek()) { pos += 1 }
        }
        return JSONNumber(literal: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self))
    }
}

private extension String {
    var trimmingQuotes: Substring { hasPrefix("'") && hasSuffix("'") && count >= 2 ? dropFirst().dropLast() : Substring(self) }
}

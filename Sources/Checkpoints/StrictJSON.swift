// A small, strict JSON reader (RFC 8259) for untrusted checkpoint metadata.
//
// Why not Foundation's JSONSerialization: the safetensors header must be validated at least as
// strictly as the Rust `safetensors` crate (serde_json), which needs (a) integers kept exact up to
// UInt64 and refused when fractional (`1.0` is not a valid `usize`), (b) duplicate keys detected
// (serde silently keeps the last one; we refuse), (c) a nesting limit so hostile input cannot
// exhaust the stack, and (d) byte offsets in error messages. This reader never reads past its
// buffer and never traps on bad input.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A JSON number kept as its literal text so integers stay exact.
public struct JSONNumber: Sendable, Equatable {
    public let text: String

    /// The value as an `Int` when the literal is an integer (no fraction, no exponent) that fits.
    var exactInt: Int? {
        guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
        return Int(text)
    }

    /// True when the literal is a plain integer (no fraction, no exponent), whatever its size.
    var isIntegerLiteral: Bool { !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) }

    var double: Double? { Double(text) }
}

/// A parsed JSON value. Objects keep their keys in file order.
public indirect enum JSONValue: Sendable, Equatable {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(JSONNumber)
    case bool(Bool)
    case null

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.array(a), .array(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.bool(a), .bool(b)): return a == b
        case (.null, .null): return true
        default: return false
        }
    }

    /// The value for `key` when this is an object (keys are unique: the parser refuses duplicates).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.first(where: { $0.key == key })?.value
    }

    /// A short name of the value's kind, for error messages.
    var kindName: String {
        switch self {
        case .object: return "object"
        case .array: return "array"
        case .string: return "string"
        case .number(let n): return n.isIntegerLiteral ? "integer \(n.text)" : "number \(n.text)"
        case .bool(let b): return "boolean \(b)"
        case .null: return "null"
        }
    }
}

/// Why a JSON text was refused. `offset` is a byte offset into the parsed text.
enum JSONParseError: Error, Sendable, Equatable {
    case syntax(String, offset: Int)
    /// A key that appears twice in one object; `depth` 1 is the top-level object.
    case duplicateKey(String, depth: Int, offset: Int)
    case tooDeep(limit: Int, offset: Int)

    var message: String {
        switch self {
        case let .syntax(m, offset): return "\(m) at byte \(offset)"
        case let .duplicateKey(k, _, offset): return "duplicate key \"\(k)\" at byte \(offset)"
        case let .tooDeep(limit, offset): return "nesting deeper than \(limit) levels at byte \(offset)"
        }
    }
}

/// Recursive-descent parser over UTF-8 bytes that the caller has already validated as UTF-8.
struct StrictJSONParser {
    static let maxDepth = 128

    private let bytes: UnsafeRawBufferPointer
    private var pos = 0

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Parses one JSON value followed only by whitespace.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var p = StrictJSONParser(bytes)
        p.skipWhitespace()
        let v = try p.value(depth: 0)
        p.skipWhitespace()
        if p.pos != bytes.count { throw .syntax("trailing characters after the JSON value", offset: p.pos) }
        return v
    }

    /// Parses JSON from a byte array.
    static func parse(_ array: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result: Result<JSONValue, JSONParseError> = array.withUnsafeBytes { raw in
            do throws(JSONParseError) { return .success(try parse(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    private var atEnd: Bool { pos >= bytes.count }
    private func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

    private mutating func skipWhitespace() {
        while let c = peek(), c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { pos += 1 }
    }

    private mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard let c = peek() else { throw .syntax("unexpected end of input", offset: pos) }
        switch c {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw .syntax("unexpected character '\(Self.printable(c))'", offset: pos)
        }
    }

    private static func printable(_ c: UInt8) -> String {
        (0x20..<0x7F).contains(c) ? String(UnicodeScalar(c)) : "\\x" + String(c, radix: 16)
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let start = pos
        let w = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for b in w {
            guard peek() == b else { throw .syntax("invalid literal", offset: start) }
            pos += 1
        }
    }

    private mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > Self.maxDepth { throw .tooDeep(limit: Self.maxDepth, offset: pos) }
        pos += 1  // {
        var pairs: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw .syntax("expected a string key", offset: pos) }
            let keyOffset = pos
            let key = try string()
            if !seen.insert(key).inserted { throw .duplicateKey(key, depth: depth, offset: keyOffset) }
            skipWhitespace()
            guard peek() == UInt8(ascii: ":") else { throw .syntax("expected ':' after key", offset: pos) }
            pos += 1
            skipWhitespace()
            let v = try value(depth: depth)
            pairs.append((key, v))
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","): pos += 1
            case UInt8(ascii: "}"): pos += 1; return .object(pairs)
            case nil: throw .syntax("unexpected end of input inside an object", offset: pos)
            default: throw .syntax("expected ',' or '}' in object", offset: pos)
            }
        }
    }

    private mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > Self.maxDepth { throw .tooDeep(limit: Self.maxDepth, offset: pos) }
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
            case nil: throw .syntax("unexpected end of input inside an array", offset: pos)
            default: throw .syntax("expected ',' or ']' in array", offset: pos)
            }
        }
    }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let c = peek() else { throw .syntax("unexpected end of input in \\u escape", offset: pos) }
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw .syntax("invalid hex digit in \\u escape", offset: pos)
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    private mutating func string() throws(JSONParseError) -> String {
        let start = pos
        pos += 1  // opening quote
        var out: [UInt8] = []
        while true {
            guard let c = peek() else { throw .syntax("unterminated string", offset: start) }
            if c == UInt8(ascii: "\"") { pos += 1; break }
            if c < 0x20 { throw .syntax("control character in string", offset: pos) }
            if c != UInt8(ascii: "\\") { out.append(c); pos += 1; continue }
            pos += 1
            guard let e = peek() else { throw .syntax("unterminated escape", offset: pos) }
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                let escOffset = pos - 2
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    // A high surrogate must be followed by an escaped low surrogate (RFC 8259 §7).
                    guard peek() == UInt8(ascii: "\\") else { throw .syntax("lone surrogate in \\u escape", offset: escOffset) }
                    pos += 1
                    guard peek() == UInt8(ascii: "u") else { throw .syntax("lone surrogate in \\u escape", offset: escOffset) }
                    pos += 1
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw .syntax("lone surrogate in \\u escape", offset: escOffset) }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw .syntax("lone surrogate in \\u escape", offset: escOffset)
                }
                guard let u = Unicode.Scalar(scalar) else { throw .syntax("invalid \\u escape", offset: escOffset) }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw .syntax("invalid escape '\\\(Self.printable(e))'", offset: pos - 2)
            }
        }
        // The input was validated as UTF-8 and escapes produce valid scalars, so this never repairs.
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func number() throws(JSONParseError) -> JSONNumber {
        let start = pos
        if peek() == UInt8(ascii: "-") { pos += 1 }
        guard let first = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            throw .syntax("invalid number", offset: start)
        }
        if first == UInt8(ascii: "0") {
            pos += 1
        } else {
            while let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { pos += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            pos += 1
            guard let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) else {
                throw .syntax("invalid number: digit expected after '.'", offset: pos)
            }
            while let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { pos += 1 }
        }
        if let c = peek(), c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
            pos += 1
            if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { pos += 1 }
            guard let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) else {
                throw .syntax("invalid number: digit expected in exponent", offset: pos)
            }
            while let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { pos += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        return JSONNumber(text: text)
    }
}

/// The byte offset of the first invalid UTF-8 sequence in `bytes`, or nil when all of it is valid.
/// Surrogate code points and overlong forms are invalid (Unicode §3.9, as Rust's `str::from_utf8`).
func firstInvalidUTF8Offset(_ bytes: UnsafeRawBufferPointer) -> Int? {
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var offset = 0
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let encoded): offset += encoded.count
        case .emptyInput: return nil
        case .error: return offset
        }
    }
}

/// Reads a whole (small) file and parses it as JSON, validating UTF-8 first.
/// Errors are reported as `(reason)` strings for the caller to wrap in its own error case.
func parseJSONFile(at path: String, limit: Int) -> Result<JSONValue, JSONFileProblem> {
    switch readWholeFile(path: path, limit: limit) {
    case .failure(let p): return .failure(p)
    case .success(let bytes):
        return bytes.withUnsafeBytes { raw -> Result<JSONValue, JSONFileProblem> in
            if let bad = firstInvalidUTF8Offset(raw) { return .failure(.notUTF8(offset: bad)) }
            do throws(JSONParseError) {
                return .success(try StrictJSONParser.parse(raw))
            } catch {
                return .failure(.json(error))
            }
        }
    }
}

/// Reads a whole regular file of at most `limit` bytes.
func readWholeFile(path: String, limit: Int) -> Result<[UInt8], JSONFileProblem> {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return .failure(.unreadable(errno: errno)) }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { return .failure(.unreadable(errno: errno)) }
    guard (st.st_mode & S_IFMT) == S_IFREG else { return .failure(.unreadable(errno: EISDIR)) }
    let size = Int(st.st_size)
    guard size <= limit else { return .failure(.tooLarge(size: size, limit: limit)) }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { buf -> Int in
            guard let base = buf.baseAddress else { return 0 }
            return read(fd, base + done, size - done)
        }
        if n < 0 {
            if errno == EINTR { continue }
            return .failure(.unreadable(errno: errno))
        }
        if n == 0 { break }  // the file shrank while reading
        done += n
    }
    if done < size { bytes.removeLast(size - done) }
    return .success(bytes)
}

/// Why a small JSON side file (index, trainer state) could not be read.
enum JSONFileProblem: Error, Sendable {
    case unreadable(errno: Int32)
    case tooLarge(size: Int, limit: Int)
    case notUTF8(offset: Int)
    case json(JSONParseError)

    var reason: String {
        switch self {
        case .unreadable(let e): return "cannot be read (\(String(cString: strerror(e))))"
        case let .tooLarge(size, limit): return "is \(size) bytes, over the \(limit)-byte limit"
        case let .notUTF8(offset): return "is not valid UTF-8 (byte \(offset))"
        case let .json(e): return "is not valid JSON: \(e.message)"
        }
    }
}

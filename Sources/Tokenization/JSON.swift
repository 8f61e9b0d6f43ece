// A small, strict JSON reader for tokenizer files.
//
// `tokenizer.json` files are untrusted input of several megabytes (a 100k-entry vocabulary and
// as many merges). This parser works on the raw bytes, limits nesting depth, rejects invalid
// UTF-8, control characters in strings and lone surrogates (as serde_json does), and reports
// the byte offset of any problem. `JSONField` adds the dotted field path used in error messages.

/// A parsed JSON value.
enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    /// Members in file order. Keys are kept exactly (a Swift `[String: _]` would merge keys that are
    /// canonically equivalent, such as "é" and "e\u{301}", which vocabularies can both contain).
    case object([(key: String, value: JSONValue)])

    var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// Parses `bytes` as one JSON document. `file` names the source in errors.
func parseJSON(_ bytes: [UInt8], file: String) throws(TokenizationError) -> JSONValue {
    var parser = JSONParser(bytes: bytes, file: file)
    parser.skipWhitespace()
    let value = try parser.parseValue(depth: 0)
    parser.skipWhitespace()
    if parser.index != bytes.count {
        throw parser.error("unexpected trailing content")
    }
    return value
}

private struct JSONParser {
    let bytes: [UInt8]
    let file: String
    var index = 0
    static let maxDepth = 256

    init(bytes: [UInt8], file: String) {
        self.bytes = bytes
        self.file = file
    }

    func error(_ reason: String) -> TokenizationError {
        .malformedJSON(file: file, offset: index, reason: reason)
    }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func expect(_ literal: StaticString, value: JSONValue) throws(TokenizationError) -> JSONValue {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("unexpected end of input") }
        let ok = literal.withUTF8Buffer { lit in
            for k in 0..<count where bytes[index + k] != lit[k] { return false }
            return true
        }
        guard ok else { throw error("invalid literal") }
        index += count
        return value
    }

    mutating func parseValue(depth: Int) throws(TokenizationError) -> JSONValue {
        guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
        guard index < bytes.count else { throw error("unexpected end of input") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): return try expect("true", value: .bool(true))
        case UInt8(ascii: "f"): return try expect("false", value: .bool(false))
        case UInt8(ascii: "n"): return try expect("null", value: .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character")
        }
    }

    mutating func parseObject(depth: Int) throws(TokenizationError) -> JSONValue {
        index += 1  // {
        var result: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(result) }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            skipWhitespace()
            result.append((key, try parseValue(depth: depth + 1)))
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(result) }
            throw error("expected ',' or '}'")
        }
    }

    mutating func parseArray(depth: Int) throws(TokenizationError) -> JSONValue {
        index += 1  // [
        var result: [JSONValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(result) }
        while true {
            skipWhitespace()
            result.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of input in array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(result) }
            throw error("expected ',' or ']'")
        }
    }

    mutating func parseHex4() throws(TokenizationError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let d: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in \\u escape")
            }
            v = v << 4 | d
            index += 1
        }
        return v
    }

    mutating func parseString() throws(TokenizationError) -> String {
        index += 1  // opening quote
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "\"") {
                let s = bytes.withUnsafeBufferPointer { String(validating: UnsafeBufferPointer(rebasing: $0[start..<index]), as: UTF8.self) }
                guard let s else { throw error("invalid UTF-8 in string") }
                index += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character in string") }
            index += 1
        }
        guard index < bytes.count else { throw error("unterminated string") }
        // Slow path with escapes: collect UTF-8 bytes.
        var out: [UInt8] = Array(bytes[start..<index])
        while index < bytes.count {
            let c = bytes[index]
            if c == UInt8(ascii: "\"") {
                index += 1
                guard let s = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in string") }
                return s
            }
            if c < 0x20 { throw error("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); index += 1; continue }
            index += 1
            guard index < bytes.count else { throw error("unterminated escape") }
            let e = bytes[index]
            index += 1
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
                var v = try parseHex4()
                if (0xD800...0xDBFF).contains(v) {
                    guard index + 2 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw error("lone surrogate in \\u escape")
                    }
                    index += 2
                    let low = try parseHex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid surrogate pair") }
                    v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(v) {
                    throw error("lone surrogate in \\u escape")
                }
                guard let scalar = Unicode.Scalar(v) else { throw error("invalid code point") }
                out.append(contentsOf: UTF8.encode(scalar)!)
            default:
                throw error("invalid escape")
            }
        }
        throw error("unterminated string")
    }

    mutating func parseNumber() throws(TokenizationError) -> JSONValue {
        let start = index
        var isInteger = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
        guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isInteger, let v = Int(text) { return .int(v) }
        guard let d = Double(text) else { throw error("invalid number") }
        return .double(d)
    }
}

/// A JSON value together with its location (file and dotted field path), for typed access
/// with precise errors.
struct JSONField {
    let value: JSONValue
    let path: String
    let file: String

    init(_ value: JSONValue, path: String, file: String) {
        self.value = value
        self.path = path
        self.file = file
    }

    private func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    var isNull: Bool { if case .null = value { return true } else { return false } }

    func wrongType(_ expected: String) -> TokenizationError {
        .wrongType(file: file, field: path.isEmpty ? "(root)" : path, expected: "\(expected), not \(value.typeName)")
    }

    func invalid(_ reason: String) -> TokenizationError {
        .invalidValue(file: file, field: path.isEmpty ? "(root)" : path, reason: reason)
    }

    /// The members of an object, in file order.
    func object() throws(TokenizationError) -> [(key: String, value: JSONValue)] {
        guard case .object(let o) = value else { throw wrongType("an object") }
        return o
    }

    /// The child `key`; throws `missingField` when absent or null.
    func child(_ key: String) throws(TokenizationError) -> JSONField {
        guard let v = try object().member(key), !(v.isNullValue) else { throw .missingField(file: file, field: childPath(key)) }
        return JSONField(v, path: childPath(key), file: file)
    }

    /// The child `key`, or nil when absent or null.
    func optionalChild(_ key: String) throws(TokenizationError) -> JSONField? {
        guard let v = try object().member(key), !(v.isNullValue) else { return nil }
        return JSONField(v, path: childPath(key), file: file)
    }

    func has(_ key: String) -> Bool {
        if case .object(let o) = value, let v = o.member(key), !v.isNullValue { return true }
        return false
    }

    func string() throws(TokenizationError) -> String {
        guard case .string(let s) = value else { throw wrongType("a string") }
        return s
    }

    func bool() throws(TokenizationError) -> Bool {
        guard case .bool(let b) = value else { throw wrongType("a boolean") }
        return b
    }

    func int() throws(TokenizationError) -> Int {
        switch value {
        case .int(let v): return v
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: return Int(d)
        default: throw wrongType("an integer")
        }
    }

    func double() throws(TokenizationError) -> Double {
        switch value {
        case .int(let v): return Double(v)
        case .double(let d): return d
        default: throw wrongType("a number")
        }
    }

    func array() throws(TokenizationError) -> [JSONField] {
        guard case .array(let a) = value else { throw wrongType("an array") }
        var out: [JSONField] = []
        out.reserveCapacity(a.count)
        for (i, v) in a.enumerated() { out.append(JSONField(v, path: "\(path)[\(i)]", file: file)) }
        return out
    }

    // Typed optional accessors with defaults.
    func optionalString(_ key: String) throws(TokenizationError) -> String? { try optionalChild(key)?.string() }
    func optionalBool(_ key: String) throws(TokenizationError) -> Bool? { try optionalChild(key)?.bool() }
    func optionalInt(_ key: String) throws(TokenizationError) -> Int? { try optionalChild(key)?.int() }

    /// The `"type"` field of a component.
    func typeName() throws(TokenizationError) -> String { try child("type").string() }
}

extension JSONValue {
    var isNullValue: Bool { if case .null = self { return true } else { return false } }

    /// Replaces the value at `path` (object keys; the last one is added when missing). Used to apply
    /// configuration overrides in tests.
    func replacing(_ path: ArraySlice<String>, with newValue: JSONValue) -> JSONValue {
        guard let key = path.first else { return newValue }
        guard case .object(var members) = self else { return self }
        if let i = members.lastIndex(where: { $0.key.utf8.elementsEqual(key.utf8) }) {
            members[i].value = members[i].value.replacing(path.dropFirst(), with: newValue)
        } else {
            members.append((key, JSONValue.object([]).replacing(path.dropFirst(), with: newValue)))
        }
        return .object(members)
    }
}

extension Array where Element == (key: String, value: JSONValue) {
    /// The value of `key` (exact comparison; the last one wins on duplicates, as serde_json maps do).
    func member(_ key: String) -> JSONValue? {
        for m in reversed() where m.key.utf8.elementsEqual(key.utf8) { return m.value }
        return nil
    }
}

// The one JSON value type of cpiscope. Every parser of an untrusted file gets its values from
// `JSONValue.parse` (JSONParser.swift): safetensors headers, config.json, shard indexes,
// trainer_state.json, adapter_config.json, tokenizer.json, tokenizer_config.json and probe files.
//
// Two things a Swift dictionary would lose are kept: the members of an object stay in file order,
// and keys are kept and compared by their exact UTF-8 bytes (Swift `String` equality follows
// canonical equivalence, so "é" and "e\u{301}" would be one key; a vocabulary may hold both).

/// A JSON number kept as its literal text, so integers stay exact whatever their size.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The literal as written (RFC 8259 number syntax).
    public let text: String

    /// A number the parser has checked (or that a caller builds from a valid literal).
    init(literal: String) { text = literal }

    public init(_ value: Int) { text = String(value) }

    /// Nil for NaN and infinities, which JSON cannot write.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        text = "\(value)"
    }

    /// As `init?(_:)`, but an integral value drops its `.0` (`16`, `-0`; `1e+16` stays): the text
    /// Foundation's JSONSerialization writes, which `--format json` output has always had.
    public init?(droppingZeroFraction value: Double) {
        guard value.isFinite else { return nil }
        let t = "\(value)"
        text = t.hasSuffix(".0") ? String(t.dropLast(2)) : t
    }

    /// True when the literal has no fraction and no exponent (`1.0` and `1e2` are not integers).
    public var isInteger: Bool { !text.utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") } }

    /// The value when the literal is an integer that fits in `Int`.
    public var exactInt: Int? { isInteger ? Int(text) : nil }

    /// The value as the nearest `Double` (an infinity when the literal overflows it).
    public var double: Double? { Double(text) }

    public var description: String { text }
}

/// A parsed JSON value.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    /// Members in file order. Keys are unique by their exact UTF-8 bytes: the parser refuses a
    /// repeated key, and two canonically equivalent keys ("é", "e\u{301}") stay two keys.
    case object([(key: String, value: JSONValue)])
}

extension JSONValue: Equatable {
    /// Structural equality with strings and keys compared by their exact UTF-8 bytes.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a.utf8.elementsEqual(b.utf8)
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key.utf8.elementsEqual($1.key.utf8) && $0.value == $1.value }
        default: return false
        }
    }
}

// MARK: - accessors

extension JSONValue {
    /// The value of `key` when this is an object (exact UTF-8 comparison; keys are unique).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.member(key)
    }

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    /// The members of an object, in file order.
    public var members: [(key: String, value: JSONValue)]? { if case .object(let m) = self { return m }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }
    /// The number as the nearest `Double`.
    public var double: Double? { if case .number(let n) = self { return n.double }; return nil }

    /// An integer literal that fits in `Int`, or a number with an exact integral value below 2^53
    /// (`2.0`, `1e3`), as Python's `int()` of a JSON float. Use `JSONNumber.exactInt` where a
    /// fraction or exponent must be refused.
    public var int: Int? {
        guard case .number(let n) = self else { return nil }
        if let i = n.exactInt { return i }
        if let d = n.double, d.rounded() == d, abs(d) < 9.0e15 { return Int(d) }
        return nil
    }

    /// The object as a dictionary, for small files with fixed ASCII keys (config.json). Canonically
    /// equivalent keys would merge here: use `members` where keys are data (vocabularies).
    public var dictionary: [String: JSONValue]? {
        guard case .object(let members) = self else { return nil }
        var d: [String: JSONValue] = [:]
        for (k, v) in members { d[k] = v }
        return d
    }

    /// What the value is, with an article, for "expected X, found Y" messages: "a string", "an object".
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// What the value is, naming scalars' values: "object", "integer 3", "number 1.5", "boolean true".
    public var kindName: String {
        switch self {
        case .object: return "object"
        case .array: return "array"
        case .string: return "string"
        case .number(let n): return n.isInteger ? "integer \(n.text)" : "number \(n.text)"
        case .bool(let b): return "boolean \(b)"
        case .null: return "null"
        }
    }
}

extension Array where Element == (key: String, value: JSONValue) {
    /// The value of `key`, compared by exact UTF-8 bytes.
    public func member(_ key: String) -> JSONValue? {
        for m in self where m.key.utf8.elementsEqual(key.utf8) { return m.value }
        return nil
    }
}

/// A string compared and hashed by its exact UTF-8 bytes (Swift `String` equality and hashing
/// follow canonical equivalence). Tables keyed by token text use it, as the parser's duplicate check does.
public struct ExactString: Hashable, Sendable {
    public let string: String

    public init(_ string: String) { self.string = string }

    public static func == (a: ExactString, b: ExactString) -> Bool {
        a.string.utf8.elementsEqual(b.string.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if done == nil {
            Array(string.utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }
}

extension String {
    /// This string as a key compared by its exact UTF-8 bytes.
    public var exact: ExactString { ExactString(self) }
}

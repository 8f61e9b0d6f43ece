// Typed accessors over the strict JSON reader (StrictJSON.swift), for config.json, adapter
// configs and trainer_state.json.

extension JSONValue {
    /// Parses bytes strictly (no duplicate keys, bounded nesting); nil when they are not valid JSON.
    public static func parseOrNil(_ bytes: [UInt8]) -> JSONValue? { try? StrictJSONParser.parse(bytes) }

    public var string: String? { if case let .string(s) = self { return s }; return nil }
    public var number: Double? { if case let .number(n) = self { return n.double }; return nil }
    public var bool: Bool? { if case let .bool(b) = self { return b }; return nil }
    public var array: [JSONValue]? { if case let .array(a) = self { return a }; return nil }
    public var isNull: Bool { if case .null = self { return true }; return false }
    /// The object as a dictionary (keys are unique: the parser refuses duplicates).
    public var object: [String: JSONValue]? {
        guard case let .object(pairs) = self else { return nil }
        var d: [String: JSONValue] = [:]
        for (k, v) in pairs { d[k] = v }
        return d
    }
    /// An integer literal, or a number with an exact integral value (e.g. `2.0`), that fits in Int.
    public var int: Int? {
        guard case let .number(n) = self else { return nil }
        if let i = n.exactInt { return i }
        if let d = n.double, d.rounded() == d, abs(d) < 9.0e15 { return Int(d) }
        return nil
    }
}

// Reading tokenizer.json and tokenizer_config.json: the StrictJSON reader (UTF-8, depth limit,
// duplicate keys, byte offsets), and `JSONField`, which adds the dotted field path used in error messages.
import StrictJSON

/// Parses `bytes` as one JSON document. `file` names the source in errors.
func parseJSON(_ bytes: [UInt8], file: String) throws(TokenizationError) -> JSONValue {
    do throws(JSONParseError) {
        return try JSONValue.parse(bytes)
    } catch {
        throw .malformedJSON(file: file, offset: error.offset, reason: error.what)
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
        guard let v = try object().member(key), !v.isNull else { throw .missingField(file: file, field: childPath(key)) }
        return JSONField(v, path: childPath(key), file: file)
    }

    /// The child `key`, or nil when absent or null.
    func optionalChild(_ key: String) throws(TokenizationError) -> JSONField? {
        guard let v = try object().member(key), !v.isNull else { return nil }
        return JSONField(v, path: childPath(key), file: file)
    }

    func has(_ key: String) -> Bool {
        if case .object(let o) = value, let v = o.member(key), !v.isNull { return true }
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
        guard let v = value.int else { throw wrongType("an integer") }
        return v
    }

    func double() throws(TokenizationError) -> Double {
        guard let d = value.double else { throw wrongType("a number") }
        return d
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

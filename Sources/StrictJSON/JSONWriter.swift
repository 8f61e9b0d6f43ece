// Writing JSON: the one string escaper for JSON output (`cpiscope tokenize --format json`, the
// safetensors writer), and compact text of a `JSONValue`.

extension JSONValue {
    /// Compact JSON text: members in order, no spaces; strings as `JSONValue.quoted`.
    public var jsonText: String {
        var out = ""
        write(to: &out)
        return out
    }

    /// Appends the compact JSON text of the value to `out`.
    public func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n.text
        case .string(let s): Self.appendQuoted(s, to: &out)
        case .array(let items):
            out += "["
            for (i, v) in items.enumerated() {
                if i > 0 { out += "," }
                v.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, m) in members.enumerated() {
                if i > 0 { out += "," }
                Self.appendQuoted(m.key, to: &out)
                out += ":"
                m.value.write(to: &out)
            }
            out += "}"
        }
    }

    /// `s` as a JSON string literal: UTF-8 kept as is; the quote, the backslash and control
    /// characters escaped (`\n`, `\r`, `\t`, `\b`, `\f`, else `\u00XX`), as Python's
    /// `json.dumps(s, ensure_ascii=False)`.
    public static func quoted(_ s: String) -> String {
        var out = ""
        appendQuoted(s, to: &out)
        return out
    }

    /// Copies the runs that need no escape whole; only `"`, `\` and bytes below 0x20 are escaped
    /// (each is one ASCII byte, so it always starts a Unicode scalar).
    static func appendQuoted(_ s: String, to out: inout String) {
        out += "\""
        let utf8 = s.utf8
        var runStart = utf8.startIndex
        for i in utf8.indices {
            let b = utf8[i]
            guard b < 0x20 || b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") else { continue }
            out.unicodeScalars.append(contentsOf: s.unicodeScalars[runStart..<i])
            out += escape(b)
            runStart = utf8.index(after: i)
        }
        out.unicodeScalars.append(contentsOf: s.unicodeScalars[runStart...])
        out += "\""
    }

    /// The escape of one byte that JSON does not allow raw in a string.
    private static func escape(_ b: UInt8) -> String {
        switch b {
        case UInt8(ascii: "\""): return "\\\""
        case UInt8(ascii: "\\"): return "\\\\"
        case 0x0A: return "\\n"
        case 0x0D: return "\\r"
        case 0x09: return "\\t"
        case 0x08: return "\\b"
        case 0x0C: return "\\f"
        default:
            let hex = String(b, radix: 16)
            return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        }
    }
}

// Proves the rules of the one strict JSON reader that every parser of untrusted files uses:
// RFC 8259 escapes and numbers (reference: Foundation's JSONSerialization for the values both
// accept), UTF-8 well-formedness as Rust's `str::from_utf8` (Unicode §3.9 Table 3-7), exact
// integers, refusal of duplicate keys, deep nesting, control characters, lone surrogates and
// trailing content, each with the byte offset of the problem; and the JSON writer round-trip.

import Foundation
import Testing
import StrictJSON

@Suite("strict JSON reader")
struct StrictJSONTests {
    private func parse(_ s: String) throws(JSONParseError) -> JSONValue { try JSONValue.parse(Array(s.utf8)) }

    /// The error for `bytes`, or nil when they parse.
    private func error(_ bytes: [UInt8], maxDepth: Int = JSONValue.defaultMaxDepth) -> JSONParseError? {
        do throws(JSONParseError) { _ = try JSONValue.parse(bytes, maxDepth: maxDepth); return nil } catch { return error }
    }
    private func error(_ s: String) -> JSONParseError? { error(Array(s.utf8)) }

    @Test("escapes and surrogate pairs decode to the same string as JSONSerialization")
    func strings() throws {
        let text = #"["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u4e2d", "\ud83d\ude00", "plain é"]"#
        let ours = try parse(text)
        let ref = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String])
        #expect(ours == .array(ref.map { .string($0) }))
    }

    @Test("integers stay exact at any size; 1.0 and 2e3 are numbers, not integers")
    func numbers() throws {
        guard case .array(let items) = try parse("[0, -0, 9223372036854775807, 18446744073709551615, 1.5, 2e3, -7, 1.0, 123456789012345678901234567890]") else {
            Issue.record("not an array"); return
        }
        let ints = items.map { v -> Int? in if case .number(let n) = v { return n.exactInt } else { return nil } }
        #expect(ints == [0, 0, Int.max, nil, nil, nil, -7, nil, nil])
        guard case .number(let big) = items[8], case .number(let u64) = items[3], case .number(let one) = items[7],
              case .number(let e) = items[5] else { Issue.record("not numbers"); return }
        #expect(big.text == "123456789012345678901234567890" && big.isInteger, "the literal is kept exactly")
        #expect(u64.isInteger && UInt64(u64.text) == UInt64.max)
        #expect(!one.isInteger && one.exactInt == nil, "1.0 is not an integer literal")
        #expect(items[7].int == 1, "the lenient accessor takes an integral value")
        #expect(!e.isInteger && e.double == 2000)
        #expect(items[4].int == nil)
    }

    @Test("a key repeated in one object is refused with its depth and offset; equivalent but different keys are two keys")
    func duplicateKeys() throws {
        #expect(error("{\"x\":{\"k\":1,\"k\":2}}") == JSONParseError(.duplicateKey("k", depth: 2), offset: 12))
        #expect(error("{\"a\":1,\"a\":2}")?.message == "duplicate key \"a\" at byte 7")
        // A large object (set-based check) finds a duplicate far from the first occurrence.
        let many = (0..<1000).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        #expect(try parse("{" + many + "}").members?.count == 1000)
        #expect(error("{" + many + ",\"k3\":0}")?.reason == .duplicateKey("k3", depth: 1))
        // "é" (U+00E9) and "e\u{301}" are canonically equivalent Swift strings but different keys,
        // kept in file order (a vocabulary may hold both).
        let v = try parse("{\"\u{E9}\":1,\"e\u{301}\":2}")
        #expect(v.members?.map { Array($0.key.utf8) } == [[0xC3, 0xA9], [0x65, 0xCC, 0x81]])
        #expect(v["e\u{301}"]?.int == 2 && v["\u{E9}"]?.int == 1)
        // An escaped spelling of the same key is the same key.
        #expect(error(#"{"ab":1,"a\u0062":2}"#)?.reason == .duplicateKey("ab", depth: 1))
    }

    @Test("nesting deeper than the limit is refused at the opening bracket")
    func depth() {
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect(error(ok) == nil)
        let deep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        #expect(error(deep) == JSONParseError(.tooDeep(limit: 128), offset: 128))
        #expect(error(Array("{\"a\":{\"b\":{}}}".utf8), maxDepth: 2)?.reason == .tooDeep(limit: 2))
        // 100,000 levels: an error, not a stack overflow.
        #expect(error(String(repeating: "[", count: 100_000))?.reason == .tooDeep(limit: 128))
    }

    @Test("invalid UTF-8 anywhere is refused first, at the start of the ill-formed sequence")
    func invalidUTF8() {
        let cases: [([UInt8], Int)] = [
            (Array("[\"ab".utf8) + [0xFF] + Array("\"]".utf8), 4),          // not a lead byte
            (Array("\"".utf8) + [0xC3] + Array("\"".utf8), 1),                // truncated sequence
            (Array("\"".utf8) + [0xC0, 0xAF] + Array("\"".utf8), 1),          // overlong '/'
            (Array("\"".utf8) + [0xE0, 0x80, 0xAF] + Array("\"".utf8), 1),    // overlong, 3 bytes
            (Array("\"".utf8) + [0xED, 0xA0, 0x80] + Array("\"".utf8), 1),    // encoded surrogate U+D800
            (Array("\"".utf8) + [0xF4, 0x90, 0x80, 0x80] + Array("\"".utf8), 1),  // above U+10FFFF
            (Array("{} ".utf8) + [0x80], 3),                                   // after the value
            (Array("{\"a\": tru".utf8) + [0xFF], 9),                           // before a syntax error is reached
            (Array("\"abcdefghijklmnop".utf8) + [0xE2, 0x82] + Array("\"".utf8), 17),  // after an ASCII run
        ]
        for (bytes, offset) in cases {
            #expect(error(bytes) == JSONParseError(.invalidUTF8, offset: offset), "\(bytes)")
        }
        // Valid multi-byte text of every length.
        #expect(throws: Never.self) { try JSONValue.parse(Array("[\"é中😀\u{10FFFF}\u{D7FF}\u{E000}\"]".utf8)) }
    }

    @Test("lone surrogates, control characters, bad escapes and trailing content are refused with the offset")
    func refusals() {
        let cases: [(String, String, Int)] = [
            (#""\ud800""#, "lone surrogate in a \\u escape", 1),
            (#""\udc00""#, "lone surrogate in a \\u escape", 1),
            (#"["x", "\ud800\u0041"]"#, "lone surrogate in a \\u escape", 7),
            ("\"a\nb\"", "control character in a string", 2),
            ("\"a\u{1F}\"", "control character in a string", 2),
            (#""\x""#, "invalid escape '\\x'", 1),
            ("[1] [2]", "trailing characters after the JSON value", 4),
            ("{} x", "trailing characters after the JSON value", 3),
            ("{\"a\":1}\u{0}", "trailing characters after the JSON value", 7),
            ("[1,]", "unexpected character ']'", 3),
            ("{\"a\" 1}", "expected ':' after a key", 5),
            ("01", "trailing characters after the JSON value", 1),
            ("1.", "invalid number: a digit must follow '.'", 2),
            ("-", "invalid number", 0),
            ("1e", "invalid number: a digit must follow the exponent mark", 2),
            ("nul", "invalid literal", 0),
            ("", "unexpected end of input", 0),
            ("{", "unexpected end of input inside an object", 1),
            ("[1, 2", "unexpected end of input inside an array", 5),
            ("\"abc", "unterminated string", 0),
            ("'a'", "unexpected character '''", 0),
        ]
        for (text, what, offset) in cases {
            let e = error(text)
            #expect(e == JSONParseError(.syntax(what), offset: offset), "\(text.debugDescription): \(String(describing: e))")
            #expect(e?.message.hasSuffix("at byte \(offset)") == true)
        }
        #expect(error(Array("[1]".utf8) + [0xC2, 0xA0])?.message == "trailing characters after the JSON value at byte 3",
                "a non-ASCII character outside a string is a syntax error")
    }

    @Test("whitespace around the value is allowed; objects keep file order")
    func whitespaceAndOrder() throws {
        #expect(try parse(" \t\r\n{}  \n") == .object([]))
        let v = try parse(#"{"z": 1, "a": [true, false, null], "m": "s"}"#)
        #expect(v.members?.map(\.key) == ["z", "a", "m"])
        #expect(v["a"] == .array([.bool(true), .bool(false), .null]))
    }

    @Test("line and column of an offset, for text files")
    func lineAndColumn() {
        let text = Array("ab\ncd\n\nef".utf8)
        text.withUnsafeBytes { raw in
            #expect(JSONParseError.lineAndColumn(of: 0, in: raw) == (1, 1))
            #expect(JSONParseError.lineAndColumn(of: 4, in: raw) == (2, 2))
            #expect(JSONParseError.lineAndColumn(of: 8, in: raw) == (4, 2))
        }
    }

    @Test("the writer escapes what JSON needs and round-trips through the reader and JSONSerialization")
    func writer() throws {
        let s = "q\"b\\s/\n\r\t\u{8}\u{C}\u{1}\u{1F}é😀\u{7F}"
        #expect(JSONValue.quoted(s) == #""q\"b\\s/\n\r\t\b\f\u0001\u001fé😀"# + "\u{7F}\"")
        let v = JSONValue.object([("k", .string(s)), ("n", .array([.number(JSONNumber(-3)), .number(JSONNumber(0.5)!), .null, .bool(true)]))])
        #expect(v.jsonText == #"{"k":"# + JSONValue.quoted(s) + #","n":[-3,0.5,null,true]}"#)
        #expect(try JSONValue.parse(Array(v.jsonText.utf8)) == v)
        let ref = try #require(try JSONSerialization.jsonObject(with: Data(v.jsonText.utf8)) as? [String: Any])
        #expect(ref["k"] as? String == s)
        #expect(JSONNumber(Double.nan) == nil)
    }

    @Test("files: the size limit is checked before reading; a folder is unreadable")
    func files() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("strictjson-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = dir.appendingPathComponent("a.json")
        try Data(#"{"a": [1, 2]}"#.utf8).write(to: f)
        #expect(try JSONFile.parse(path: f.path, limit: 100)["a"] == .array([.number(JSONNumber(1)), .number(JSONNumber(2))]))
        #expect(throws: JSONFileError.tooLarge(size: 13, limit: 12)) { try JSONFile.parse(path: f.path, limit: 12) }
        #expect(throws: JSONFileError.unreadable(reason: "Is a directory")) { try JSONFile.contents(path: dir.path, limit: 100) }
        try Data("{\"a\": \u{1}}".utf8).write(to: f)
        do {
            _ = try JSONFile.parse(path: f.path, limit: 100)
            Issue.record("accepted")
        } catch {
            #expect(error.reason == "is not valid JSON: unexpected character 0x01 at byte 6")
        }
        try Data([0x7B, 0xFF]).write(to: f)
        #expect(throws: JSONFileError.invalid(JSONParseError(.invalidUTF8, offset: 1))) { try JSONFile.parse(path: f.path, limit: 100) }
        #expect(JSONFileError.invalid(JSONParseError(.invalidUTF8, offset: 1)).reason == "is not valid UTF-8 (byte 1)")
    }
}

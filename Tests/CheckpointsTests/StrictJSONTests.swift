// Proves the strict JSON reader used for headers, indexes and trainer state: RFC 8259 escapes and
// numbers, exact integers, duplicate-key and trailing-garbage refusal. Reference: RFC 8259 and
// Foundation's JSONSerialization for the values both accept.

import Foundation
import Testing
@testable import Checkpoints

@Suite("strict JSON reader")
struct StrictJSONTests {
    private func parse(_ s: String) throws(JSONParseError) -> JSONValue { try StrictJSONParser.parse(Array(s.utf8)) }

    @Test("escapes and surrogate pairs decode to the same string as JSONSerialization")
    func strings() throws {
        let text = #"["a\"b\\c\/d\b\f\n\r\t", "\u00e9\u4e2d", "\ud83d\ude00", "plain é"]"#
        let ours = try parse(text)
        let ref = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String])
        #expect(ours == .array(ref.map { .string($0) }))
    }

    @Test("integers stay exact; fractions and exponents are not integers")
    func numbers() throws {
        guard case .array(let items) = try parse("[0, -0, 9223372036854775807, 18446744073709551615, 1.5, 2e3, -7]") else {
            Issue.record("not an array"); return
        }
        let ints = items.map { v -> Int? in if case .number(let n) = v { return n.exactInt } else { return nil } }
        #expect(ints == [0, 0, Int.max, nil, nil, nil, -7])
        if case .number(let n) = items[3] { #expect(n.isIntegerLiteral) }
        if case .number(let n) = items[5] { #expect(!n.isIntegerLiteral && n.double == 2000) }
    }

    @Test("malformed inputs are refused with a byte offset")
    func refusals() {
        let bad = ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "1e", "\"\\x\"", "\"a\nb\"", "\"\\ud800\"",
                   "\"\\udc00\"", "nul", "[1] [2]", "{\"a\":1,\"a\":2}", "\u{0}"]
        for s in bad {
            do {
                _ = try parse(s)
                Issue.record("accepted \(s.debugDescription)")
            } catch {
                #expect(error.message.contains("byte"), "\(s.debugDescription): \(error.message)")
            }
        }
    }

    @Test("duplicate keys report their depth; whitespace around the value is allowed")
    func duplicatesAndWhitespace() throws {
        do {
            _ = try parse("{\"x\":{\"k\":1,\"k\":2}}")
            Issue.record("accepted a duplicate key")
        } catch {
            #expect(error == .duplicateKey("k", depth: 2, offset: 12))
        }
        #expect(try parse(" \t\r\n{}  \n") == .object([]))
    }
}

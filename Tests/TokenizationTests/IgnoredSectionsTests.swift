// tokenizer.json `padding` and `truncation` are read and reported, never applied. Reference:
// Tests/Fixtures/tokenizers/padded/golden.json, made by Tools/tokenizers/make_padding_golden.py with
// Python `tokenizers` 0.23.3 after `no_padding()` and `no_truncation()` (what transformers' default
// calls give); exact equality of ids, tokens and offsets.
import Foundation
import StrictJSON
import Testing
@testable import Tokenization

@Suite("tokenizer.json padding and truncation")
struct IgnoredSectionsTests {
    static let dir = Fixtures.tokenizers.appendingPathComponent("padded")

    @Test("a file with padding (fixed 24) and truncation (max 8) encodes as tokenizers does with both turned off")
    func unpaddedEncoding() throws {
        let t = try Tokenizer.load(from: Self.dir)
        let golden = try Fixtures.json(Self.dir.appendingPathComponent("golden.json"))
        let texts = try #require(golden["texts"]?.array)
        #expect(texts.count == 3)
        for g in texts {
            let text = try #require(g["text"]?.string)
            let e = try t.encode(text)
            #expect(e.ids == g["ids"]?.ints, "\(text.debugDescription)")
            #expect(e.tokens == g["tokens"]?.strings, "\(text.debugDescription)")
            #expect(e.offsets.map { [$0.lowerBound, $0.upperBound] } == g["offsets"]?.array?.compactMap(\.ints))
            // The file really asks for something else: 24 ids, truncated to 8 before padding.
            let applied = try #require(g["ids_with_sections_applied"]?.ints)
            #expect(applied.count == 24 && applied != e.ids)
        }
    }

    @Test("the ignored sections are reported with what they ask for")
    func reported() throws {
        let t = try Tokenizer.load(from: Self.dir)
        #expect(t.ignoredSections == [
            IgnoredSection(kind: .padding, summary: "pad every sequence to 24 tokens with \"</s>\" on the right"),
            IgnoredSection(kind: .truncation, summary: "truncate to 8 tokens from the right"),
        ])
        #expect(try trained("llama2-style").ignoredSections.isEmpty, "null sections are not reported")
        // A BatchLongest strategy and an unusual shape are still reported, never an error.
        let root = try Fixtures.json(Fixtures.tokenizers.appendingPathComponent("trained/llama2-style/tokenizer.json"))
        let batch = root.replacing(["padding"], with: try JSONValue.parse(Array(#"{"strategy":"BatchLongest","pad_to_multiple_of":8}"#.utf8)))
            .replacing(["truncation"], with: .string("odd"))
        #expect(try Tokenizer.load(root: batch, configJSON: nil).ignoredSections == [
            IgnoredSection(kind: .padding, summary: "pad to the longest sequence of a batch, a multiple of 8"),
            IgnoredSection(kind: .truncation, summary: "truncate"),
        ])
    }
}

// The public API beyond parity: span -> token positions, BOS/EOS discovery, tokenizer_config.json
// overrides, vocabulary lookups, loading forms, decoding options, the benchmark helper.
import Foundation
import Testing
@testable import Tokenization

func trained(_ name: String) throws -> Tokenizer {
    try Tokenizer.load(from: Fixtures.tokenizers.appendingPathComponent("trained/\(name)"))
}

@Suite("Tokenizer API")
struct APITests {
    @Test("tokenPositions returns exactly the tokens whose range intersects the span; empty ranges never match")
    func tokenPositions() throws {
        let text = "The capital of Albania is Durrës. “Durrës” again"
        let t = try trained("llama2-style")
        let e = try t.encode(text)
        let scalars = Array(text.unicodeScalars)
        // Every occurrence of "Durrës", found in scalars.
        let needle = Array("Durrës".unicodeScalars)
        var spans: [Range<Int>] = []
        for i in 0...(scalars.count - needle.count) where Array(scalars[i..<(i + needle.count)]) == needle {
            spans.append(i..<(i + needle.count))
        }
        #expect(spans.count == 2)
        for span in spans {
            let positions = e.tokenPositions(overlapping: span)
            #expect(!positions.isEmpty)
            for (i, r) in e.offsets.enumerated() {
                let intersects = !r.isEmpty && r.lowerBound < span.upperBound && span.lowerBound < r.upperBound
                #expect(positions.contains(i) == intersects, "token \(i) \(e.tokens[i]) \(r) vs span \(span)")
            }
            // The covered characters include the whole span.
            let covered = positions.map { e.offsets[$0] }
            #expect(covered.first!.lowerBound <= span.lowerBound && covered.last!.upperBound >= span.upperBound)
        }
        #expect(e.isSpecial.first == true && e.offsets.first == 0..<0)
        #expect(!e.tokenPositions(overlapping: 0..<3).contains(0), "BOS (empty range) must never match")
        #expect(e.tokenPositions(overlapping: 5..<5).isEmpty, "an empty span matches nothing")
        let manual = Encoding(ids: [1, 2, 3], tokens: ["a", "b", "c"], offsets: [0..<2, 2..<2, 2..<5], isSpecial: [false, false, false])
        #expect(manual.tokenPositions(overlapping: 1..<3) == [0, 2])
        #expect(manual.tokenPositions(overlapping: 2..<3) == [2])
        #expect(manual.tokenPositions(overlapping: 5..<9) == [])
    }

    @Test("BOS/EOS come from tokenizer_config.json, else the template, else conventional special tokens")
    func bosEos() throws {
        let llama2 = try trained("llama2-style")
        #expect(llama2.bosTokenID == llama2.id(forToken: "<s>") && llama2.bosTokenID != nil)
        #expect(llama2.eosTokenID == llama2.id(forToken: "</s>") && llama2.eosTokenID != nil)
        let llama3 = try trained("llama3-style")
        #expect(llama3.bosTokenID == llama3.id(forToken: "<|begin_of_text|>") && llama3.bosTokenID != nil)
        #expect(llama3.eosTokenID == llama3.id(forToken: "<|eot_id|>") && llama3.eosTokenID != nil)
        let qwen = try trained("qwen2-style")
        #expect(qwen.bosTokenID == nil)
        #expect(qwen.eosTokenID == qwen.id(forToken: "<|im_end|>") && qwen.eosTokenID != nil)
        let gpt2 = try trained("gpt2-style")
        #expect(gpt2.eosTokenID == gpt2.id(forToken: "<|endoftext|>") && gpt2.eosTokenID != nil)
        #expect(gpt2.bosTokenID == gpt2.eosTokenID)
        // Without tokenizer_config.json: the template gives BOS, the conventional name EOS.
        let json = [UInt8](try Data(contentsOf: Fixtures.tokenizers.appendingPathComponent("trained/llama2-style/tokenizer.json")))
        let bare = try Tokenizer.load(tokenizerJSON: json)
        #expect(bare.bosTokenID == llama2.bosTokenID)
        #expect(bare.eosTokenID == llama2.eosTokenID)
    }

    @Test("add_bos_token / add_eos_token in tokenizer_config.json override the post-processor")
    func configOverrides() throws {
        let json = [UInt8](try Data(contentsOf: Fixtures.tokenizers.appendingPathComponent("trained/llama2-style/tokenizer.json")))
        let text = "Paris is the capital"
        let reference = try Tokenizer.load(tokenizerJSON: json)
        let plain = try reference.encode(text, addSpecialTokens: false)
        let withBOS = try reference.encode(text)
        let bos = try #require(reference.bosTokenID)
        let eos = try #require(reference.eosTokenID)
        #expect(withBOS.ids == [bos] + plain.ids)

        let noBOS = try Tokenizer.load(tokenizerJSON: json, configJSON: Array(#"{"add_bos_token":false}"#.utf8))
        #expect(try noBOS.encode(text) == plain)

        let both = try Tokenizer.load(tokenizerJSON: json, configJSON: Array(#"{"add_bos_token":true,"add_eos_token":true}"#.utf8))
        let e = try both.encode(text)
        #expect(e.ids == [bos] + plain.ids + [eos])
        #expect(e.isSpecial.first == true && e.isSpecial.last == true && e.offsets.last == 0..<0)
        #expect(try both.encode(text, addSpecialTokens: false) == plain, "overrides apply only with special tokens")

        // A byte-level tokenizer without a template gains BOS from add_bos_token.
        let gpt2JSON = [UInt8](try Data(contentsOf: Fixtures.tokenizers.appendingPathComponent("trained/gpt2-style/tokenizer.json")))
        let gpt2 = try Tokenizer.load(tokenizerJSON: gpt2JSON, configJSON: Array(#"{"bos_token":"<|endoftext|>","add_bos_token":true}"#.utf8))
        let g = try gpt2.encode(text)
        let gPlain = try gpt2.encode(text, addSpecialTokens: false)
        #expect(g.ids.first == gpt2.id(forToken: "<|endoftext|>"))
        #expect(Array(g.ids.dropFirst()) == gPlain.ids)
    }

    @Test("id(forToken:) and token(forID:) are inverse over the vocabulary; unknown ids give nil")
    func vocabularyLookups() throws {
        let t = try trained("gpt2-style")
        #expect(t.vocabularySize == 900)
        for id in 0..<t.vocabularySize {
            let token = try #require(t.token(forID: id))
            #expect(t.id(forToken: token) == id)
        }
        #expect(t.token(forID: -1) == nil)
        #expect(t.token(forID: 10_000_000) == nil)
        #expect(t.id(forToken: "definitely not a token") == nil)
    }

    @Test("token strings are compared exactly, not by canonical equivalence (é vs e + U+0301)")
    func exactTokens() throws {
        let model = #"{"type":"BPE","vocab":{"\u00e9":0,"e":1,"\u0301":2,"e\u0301":3},"merges":[]}"#
        let t = try Tokenizer.load(tokenizerJSON: Array(miniTokenizer(model: model, preTokenizer: "null", decoder: "null").utf8))
        #expect(t.id(forToken: "\u{E9}") == 0)
        #expect(t.id(forToken: "e\u{301}") == 3)
        #expect(try t.encode("\u{E9}e\u{301}").ids == [0, 1, 2])
    }

    @Test("a folder and its tokenizer.json load the same tokenizer")
    func folderOrFile() throws {
        let dir = Fixtures.tokenizers.appendingPathComponent("trained/llama3-style")
        let a = try Tokenizer.load(from: dir)
        let b = try Tokenizer.load(from: dir.appendingPathComponent("tokenizer.json"))
        let text = "Hello <|eot_id|> wörld 12345"
        #expect(try a.encode(text) == b.encode(text))
        #expect(a.bosTokenID == b.bosTokenID && a.eosTokenID == b.eosTokenID)
    }

    @Test("decode skips special tokens only when asked; unknown ids are dropped")
    func decodeOptions() throws {
        let t = try trained("gpt2-style")
        let e = try t.encode("Hello<|endoftext|> world")
        #expect(t.decode(e.ids) == "Hello<|endoftext|> world")
        #expect(t.decode(e.ids, skipSpecialTokens: true) == "Hello world")
        #expect(t.decode(e.ids + [123_456_789, -5]) == "Hello<|endoftext|> world")
        #expect(t.decode([]) == "")
    }

    @Test("offsets index the original string in Unicode scalars (Python str indices), also after NFC")
    func scalarOffsets() throws {
        // neox-style normalizes with NFC: "e + U+0301" becomes one character whose range is the "e"
        // only (as Python reports: the combining mark is removed by composition).
        let t = try trained("neox-style")
        let text = "😀 cafe\u{301}!"
        let e = try t.encode(text)
        let scalars = Array(text.unicodeScalars)
        for r in e.offsets { #expect(r.lowerBound >= 0 && r.upperBound <= scalars.count) }
        let bang = try #require(e.tokens.firstIndex(of: "!"))
        #expect(e.offsets[bang] == 7..<8)
    }

    @Test("benchmarkEncode times encode and reports its token count")
    func benchmark() throws {
        let t = try trained("gpt2-style")
        let text = String(repeating: "The capital of Albania is Durrës. ", count: 200)
        let b = try t.benchmarkEncode(text, repetitions: 2)
        let plain = try t.encode(text, addSpecialTokens: false)
        #expect(b.tokens == plain.count)
        #expect(b.seconds.count == 2 && b.bestSeconds > 0 && b.megabytesPerSecond > 0)
        #expect(b.bytes == text.utf8.count && b.scalars == text.unicodeScalars.count)
        #expect(b.summary.contains("tokens/s"))
    }
}

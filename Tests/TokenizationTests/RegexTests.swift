// The regex layer: ICU's `\s` is the White_Space property (as Oniguruma's), the hand-written
// matchers of the published split patterns agree with ICU, run on inputs where ICU gives up, and an
// ICU failure is an error rather than an empty result.
import Foundation
import Testing
@testable import Tokenization

@Suite("Split regexes")
struct RegexTests {
    @Test("ICU \\s matches exactly the White_Space scalars of the BMP")
    func icuWhitespace() throws {
        let re = try CompiledRegex(pattern: #"\s"#, file: "test", field: "x")
        var scalars: [Unicode.Scalar] = []
        for v in 0..<0x10000 { if let s = Unicode.Scalar(UInt32(v)) { scalars.append(s) } }
        let matched = Set(try re.matches(in: scalars).map { $0.lowerBound })
        var mismatches: [String] = []
        for (i, s) in scalars.enumerated() where matched.contains(i) != s.properties.isWhitespace {
            mismatches.append(String(s.value, radix: 16))
        }
        #expect(mismatches.isEmpty, "scalars where ICU \\s and White_Space differ: \(mismatches.prefix(20))")
    }

    @Test("the split patterns of the fixture tokenizers are recognized as known patterns")
    func knownPatternsRecognized() throws {
        #expect(KnownPattern(ByteLevelPreTokenizer.gpt2Pattern) != nil)
        for name in ["llama3-style", "qwen2-style"] {
            let root = try Fixtures.json(Fixtures.tokenizers.appendingPathComponent("trained/\(name)/tokenizer.json"))
            let pattern = try #require(root["pre_tokenizer"]?["pretokenizers"]?.array?.first?["pattern"]?["Regex"]?.stringValue)
            #expect(KnownPattern(pattern) != nil, "\(name)")
        }
    }

    @Test("hand-written matchers give the same matches as ICU on 3000 random texts", arguments: [
        KnownPattern.gpt2Pattern, KnownPattern.llama3Pattern, KnownPattern.qwen2Pattern,
    ])
    func knownMatchesICU(pattern: String) throws {
        let known = try #require(KnownPattern(pattern))
        let icu = try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines, .useUnixLineSeparators])
        let pieces: [String] = [" ", "  ", "\t", "\n", "\r", "\r\n", "\u{a0}", "\u{3000}", "\u{2028}", "\u{0b}", "\u{85}", "\u{1c}",
                                "a", "Z", "é", "e\u{301}", "\u{301}", "ſ", "'", "'s", "'S", "'ll", "'LL", "'Re", "'ve", "'M", "'d",
                                "'T", "'ſ", "1", "23", "4567", "٣", "½", "Ⅻ", ".", "!", "?", "-", "“", "😀", "👍🏽", "日本", "한", "_", "$"]
        var rng = SplitMix64(seed: 7)
        var mismatches: [String] = []
        for _ in 0..<3000 {
            var text = ""
            for _ in 0..<(1 + Int(rng.next() % 16)) { text += pieces[Int(rng.next() % UInt64(pieces.count))] }
            let scalars = Array(text.unicodeScalars)
            let ours = known.matches(in: scalars)
            // ICU matches, mapped from UTF-16 to scalar indices.
            var utf16ToScalar: [Int] = []
            for (i, s) in scalars.enumerated() { for _ in 0..<(s.value > 0xFFFF ? 2 : 1) { utf16ToScalar.append(i) } }
            utf16ToScalar.append(scalars.count)
            let theirs = icu.matches(in: text, range: NSRange(location: 0, length: utf16ToScalar.count - 1)).map {
                utf16ToScalar[$0.range.location]..<utf16ToScalar[$0.range.location + $0.range.length]
            }
            if ours != theirs && mismatches.count < 5 { mismatches.append("\(String(reflecting: text)): ours \(ours) ICU \(theirs)") }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }

    @Test("known patterns handle a 10^6-space run that makes ICU give up")
    func longWhitespaceRun() throws {
        let text = Array(String(repeating: " ", count: 1_000_000).unicodeScalars) + ["x"]
        let known = try #require(KnownPattern(KnownPattern.llama3Pattern))
        #expect(known.matches(in: text) == [0..<999_999, 999_999..<1_000_001])
        let gpt2 = try #require(KnownPattern(KnownPattern.gpt2Pattern))
        #expect(gpt2.matches(in: text) == [0..<999_999, 999_999..<1_000_001])
    }

    @Test("an ICU failure on an unknown pattern is thrown, not an empty match list")
    func icuFailureIsAnError() throws {
        // Not a known pattern (an extra alternative), so ICU runs it and overflows its backtracking stack.
        let pattern = #"\s*[\r\n]+|\s+(?!\S)|\s+|x"#
        let re = try CompiledRegex(pattern: pattern, file: "test", field: "x")
        let text = Array(String(repeating: " ", count: 1_000_000).unicodeScalars) + ["x"]
        #expect(throws: TokenizationError.regexFailure(pattern: pattern, length: text.count)) { _ = try re.matches(in: text) }
    }
}

// Parity with Python `tokenizers` 0.23.3: ids, offsets and tokens of every golden text, with and
// without special tokens, and decode results. Reference: Tests/Fixtures/tokenizers/goldens, written
// by Tools/tokenizers/make_goldens.py. Tolerance: none (exact equality); a mismatch reports the
// text, the first differing token position and both sides around it.
import Foundation
import Testing
@testable import Tokenization

/// The first token position where two encodings differ.
func firstDifference(_ a: Encoding, _ b: Encoding) -> Int {
    for k in 0..<min(a.count, b.count) {
        if a.ids[k] != b.ids[k] { return k }
        if a.offsets[k] != b.offsets[k] { return k }
        if a.tokens[k] != b.tokens[k] { return k }
        if a.isSpecial[k] != b.isSpecial[k] { return k }
    }
    return min(a.count, b.count)
}

/// Checks one golden configuration; returns the mismatch descriptions (empty when all agree).
func checkGolden(_ name: String) throws -> (checked: Int, mismatches: [String]) {
    let url = Fixtures.tokenizers.appendingPathComponent("goldens/\(name).json")
    let golden = try Fixtures.json(url)
    let tokenizer = try Fixtures.tokenizer(for: golden)
    let texts = Fixtures.corpus.texts
    var mismatches: [String] = []
    var checked = 0
    func fail(_ s: String) { if mismatches.count < 12 { mismatches.append("\(name): \(s)") } else { mismatches.append("") } }

    if let size = golden["vocab_size"]?.intValue, size != tokenizer.vocabularySize {
        fail("vocabularySize \(tokenizer.vocabularySize), Python get_vocab_size \(size)")
    }
    for c in golden["cases"]?.array ?? [] {
        guard let t = c["t"]?.intValue, t < texts.count else { fail("case without a valid text index"); continue }
        let text = texts[t]
        let label = "text #\(t) \(String(reflecting: String(text.prefix(40))))"
        let plain = try tokenizer.encode(text, addSpecialTokens: false)
        let special = try tokenizer.encode(text, addSpecialTokens: true)
        checked += 1

        // Full arrays (hand-written texts of base configurations): exact comparison.
        if let ids = c["ids"]?.ints, let flat = c["offsets"]?.ints, let tokens = c["tokens"]?.strings {
            let offsets = stride(from: 0, to: flat.count, by: 2).map { flat[$0]..<flat[$0 + 1] }
            let expected = Encoding(ids: ids, tokens: tokens, offsets: offsets, isSpecial: Array(repeating: false, count: ids.count))
            if plain != expected {
                let k = firstDifference(plain, expected)
                fail("\(label): first difference at token \(k) of \(expected.count): swift \(describe(plain, around: k)) | python \(describe(expected, around: k))")
            }
        }
        if let ids = c["ids_s"]?.ints, let flat = c["offsets_s"]?.ints, let mask = c["special_s"]?.ints {
            let offsets = stride(from: 0, to: flat.count, by: 2).map { flat[$0]..<flat[$0 + 1] }
            if special.ids != ids || special.offsets != offsets || special.isSpecial != mask.map({ $0 == 1 }) {
                fail("\(label) with special tokens: swift \(special.ids.prefix(8)) \(special.offsets.prefix(4)) python \(ids.prefix(8)) \(offsets.prefix(4))")
            }
        }
        // Every text: token count and hash of (id, offsets, token) sequences.
        let n = c["n"]?.intValue ?? -1
        let h = c["h"]?.stringValue ?? ""
        if plain.count != n || encodingHash(plain) != h {
            fail("\(label): \(plain.count) tokens (Python \(n)), hash \(encodingHash(plain)) (Python \(h)); swift starts \(describe(plain, around: 0))")
        }
        let ns = c["ns"]?.intValue ?? n
        let hs = c["hs"]?.stringValue ?? h
        if special.count != ns || encodingHash(special) != hs {
            fail("\(label) with special tokens: \(special.count) tokens (Python \(ns)), hash \(encodingHash(special)) (Python \(hs))")
        }
        // Decoding: decode(encode(x)) == x exactly where Python round-trips; otherwise the same text.
        let roundTrips = c["rt"]?.boolValue ?? false
        let decoded = tokenizer.decode(plain.ids)
        if roundTrips {
            if decoded != text { fail("\(label): decode(encode(x)) = \(String(reflecting: decoded)) but Python round-trips") }
        } else {
            if let dec = c["dec"]?.stringValue, decoded != dec {
                fail("\(label): decode gives \(String(reflecting: decoded)), Python \(String(reflecting: dec))")
            }
            if fnv12(decoded) != (c["dh"]?.stringValue ?? "") {
                fail("\(label): decode hash \(fnv12(decoded)) differs from Python's; swift \(String(reflecting: String(decoded.prefix(60))))")
            }
        }
        let skipped = tokenizer.decode(special.ids, skipSpecialTokens: true)
        let expectedSkip = c["dsh"]?.stringValue ?? (roundTrips ? fnv12(text) : (c["dh"]?.stringValue ?? ""))
        if fnv12(skipped) != expectedSkip {
            fail("\(label): decode(skipSpecialTokens) hash differs from Python's; swift \(String(reflecting: String(skipped.prefix(60))))")
        }
    }
    for d in golden["decode_cases"]?.array ?? [] {
        let ids = d["ids"]?.ints ?? []
        let skip = d["skip"]?.boolValue ?? false
        let expected = d["text"]?.stringValue ?? ""
        let got = tokenizer.decode(ids, skipSpecialTokens: skip)
        checked += 1
        if got != expected {
            fail("decode(\(ids.prefix(12)), skip: \(skip)) = \(String(reflecting: got)), Python \(String(reflecting: expected))")
        }
    }
    return (checked, mismatches)
}

@Suite("Golden parity with Python tokenizers 0.23.3")
struct GoldenTests {
    @Test("the corpus and goldens are present (a missing fixture must not pass silently)")
    func fixturesPresent() {
        #expect(Fixtures.corpus.texts.count >= 100, "corpus.json missing or short")
        #expect(Fixtures.goldenNames(shared: false).count >= 30, "goldens for trained tokenizers missing")
    }

    @Test("trained tokenizers and their variants: zero mismatches in ids, offsets, tokens and decoding",
          arguments: Fixtures.goldenNames(shared: false))
    func trained(_ name: String) throws {
        let (checked, mismatches) = try checkGolden(name)
        #expect(checked > 0)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches; first: \(mismatches.filter { !$0.isEmpty }.joined(separator: "\n"))")
    }

    @Test("real tokenizer.json files from ../shared: zero mismatches",
          .enabled(if: Fixtures.sharedAvailable, "../shared/tokenizers is absent"),
          arguments: Fixtures.goldenNames(shared: true))
    func real(_ name: String) throws {
        let (checked, mismatches) = try checkGolden(name)
        #expect(checked > 0)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches; first: \(mismatches.filter { !$0.isEmpty }.joined(separator: "\n"))")
    }
}

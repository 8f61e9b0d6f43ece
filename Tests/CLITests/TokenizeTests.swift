// `cpiscope tokenize` on a tokenizer.json with padding and truncation sections: the ids are the
// unpadded, untruncated ones (reference: Tests/Fixtures/tokenizers/padded/golden.json, Python
// `tokenizers` 0.23.3 after no_padding()/no_truncation()), and the command says on stderr, and in
// `--format json`, that the sections were ignored. A tokenizer without them prints no note.
import Foundation
import Testing

@Suite("cpiscope tokenize", .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)))
struct TokenizeTests {
    static let padded = Paths.fixtures.appendingPathComponent("tokenizers/padded")

    @Test("padding and truncation are ignored, with a note on stderr and ignored_sections in JSON")
    func paddedTokenizer() throws {
        let r = try Exec.cpiscope(["tokenize", Self.padded.path, "--text", "Hello world", "--format", "json"])
        #expect(r.exitedNormally && r.status == 0, "\(r.summary)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(out["ids"] as? [Int] == [1, 366, 75, 310, 928, 952], "golden.json: the unpadded encoding")
        let ignored = try #require(out["ignored_sections"] as? [[String: String]])
        #expect(ignored.map { $0["section"] } == ["padding", "truncation"])
        #expect(ignored.first?["summary"] == "pad every sequence to 24 tokens with \"</s>\" on the right")
        let notes = r.stderr.split(separator: "\n").filter { $0.hasPrefix("note: ") }
        #expect(notes.count == 3, "\(r.stderr)")
        #expect(notes.contains { $0.contains("padding section (pad every sequence to 24 tokens") && $0.hasSuffix("it is ignored") })
        #expect(notes.contains { $0.contains("truncation section (truncate to 8 tokens from the right)") })
        #expect(notes.contains { $0.contains("never pads or truncates") && $0.contains("no_padding()") })

        let text = try Exec.cpiscope(["tokenize", Self.padded.path, "--text", "Hello world"])
        #expect(text.status == 0 && text.stderr.contains("note: tokenizer.json has a padding section"))
        #expect(text.stdout.split(separator: "\n").count == 7, "a header and six tokens, no padding: \(text.stdout)")
    }

    @Test("a tokenizer without padding or truncation prints no note and an empty ignored_sections")
    func plainTokenizer() throws {
        let r = try Exec.cpiscope(["tokenize", Paths.trajectory.path, "--text", "The capital of France is", "--format", "json"])
        #expect(r.exitedNormally && r.status == 0, "\(r.summary)")
        #expect(!r.stderr.contains("note:"), "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect((out["ignored_sections"] as? [Any])?.isEmpty == true)
        #expect(r.stdout.hasPrefix("{\"ids\":["), "the keys stay in their order: ids, tokens, offsets, ignored_sections")
    }
}

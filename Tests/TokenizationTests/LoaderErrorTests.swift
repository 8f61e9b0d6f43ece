// Malformed tokenizer files: each problem gives a specific TokenizationError naming the field,
// never a trap. Reference: the error cases and field paths documented in TokenizationError.swift.
import Foundation
import Testing
@testable import Tokenization

/// A minimal valid byte-level BPE tokenizer.json, with parts replaceable by raw JSON text.
func miniTokenizer(model: String? = nil, normalizer: String = "null", preTokenizer: String? = nil,
                   postProcessor: String = "null", decoder: String = "{\"type\":\"ByteLevel\"}",
                   addedTokens: String = "[]") -> String {
    let m = model ?? #"{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"Ġ":3,"c":4},"merges":["a b"]}"#
    let p = preTokenizer ?? #"{"type":"ByteLevel","add_prefix_space":false,"use_regex":true}"#
    return #"{"version":"1.0","added_tokens":\#(addedTokens),"normalizer":\#(normalizer),"pre_tokenizer":\#(p),"post_processor":\#(postProcessor),"decoder":\#(decoder),"model":\#(m)}"#
}

func loadError(_ json: String, config: String? = nil) -> TokenizationError? {
    loadError(bytes: Array(json.utf8), config: config)
}

func loadError(bytes: [UInt8], config: String? = nil) -> TokenizationError? {
    do {
        _ = try Tokenizer.load(tokenizerJSON: bytes, configJSON: config.map { Array($0.utf8) })
        return nil
    } catch let e as TokenizationError {
        return e
    } catch {
        Issue.record("unexpected error type \(type(of: error)): \(error)")
        return nil
    }
}

@Suite("Malformed tokenizer.json gives a specific error")
struct LoaderErrorTests {
    @Test("the minimal tokenizer loads and merges a+b (baseline for the error cases)")
    func baseline() throws {
        let t = try Tokenizer.load(tokenizerJSON: Array(miniTokenizer().utf8))
        let e = try t.encode("ab c")
        #expect(e.ids == [2, 3, 4])
        #expect(e.offsets == [0..<2, 2..<3, 3..<4])
        #expect(e.tokens == ["ab", "Ġ", "c"])
        #expect(t.decode(e.ids) == "ab c")
    }

    @Test("missing model names the field `model`")
    func missingModel() {
        let json = #"{"version":"1.0","added_tokens":[],"normalizer":null,"pre_tokenizer":null}"#
        #expect(loadError(json) == .missingField(file: "tokenizer.json", field: "model"))
    }

    @Test("a merge naming an unknown token names the merge and the token")
    func unknownMergeToken() {
        let model = #"{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b","a zz"]}"#
        #expect(loadError(miniTokenizer(model: model)) == .unknownMergeToken(file: "tokenizer.json", field: "model.merges[1]", token: "zz"))
        let pairs = #"{"type":"BPE","vocab":{"a":0,"b":1},"merges":[["a","b"]]}"#
        #expect(loadError(miniTokenizer(model: pairs)) == .unknownMergeToken(file: "tokenizer.json", field: "model.merges[0]", token: "ab"))
    }

    @Test("a malformed merge line is an invalid value of that merge")
    func badMergeLine() {
        let model = #"{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b c"]}"#
        guard case .invalidValue(_, let field, _)? = loadError(miniTokenizer(model: model)) else {
            Issue.record("expected invalidValue"); return
        }
        #expect(field == "model.merges[0]")
    }

    @Test("an invalid regex names the pattern field, also inside a Sequence")
    func invalidRegex() {
        let split = #"{"type":"Split","pattern":{"Regex":"(unclosed"},"behavior":"Isolated","invert":false}"#
        guard case .invalidRegex(_, let field, let pattern, _)? = loadError(miniTokenizer(preTokenizer: split)) else {
            Issue.record("expected invalidRegex"); return
        }
        #expect(field == "pre_tokenizer.pattern.Regex")
        #expect(pattern == "(unclosed")
        let seq = #"{"type":"Sequence","pretokenizers":[{"type":"ByteLevel"},\#(split)]}"#
        guard case .invalidRegex(_, let field2, _, _)? = loadError(miniTokenizer(preTokenizer: seq)) else {
            Issue.record("expected invalidRegex"); return
        }
        #expect(field2 == "pre_tokenizer.pretokenizers[1].pattern.Regex")
        let replace = #"{"type":"Replace","pattern":{"Regex":"[a-"},"content":"x"}"#
        guard case .invalidRegex(_, let field3, _, _)? = loadError(miniTokenizer(normalizer: replace)) else {
            Issue.record("expected invalidRegex"); return
        }
        #expect(field3 == "normalizer.pattern.Regex")
    }

    @Test("unsupported components are named with their type", arguments: [
        (#"{"type":"WordPiece","vocab":{"a":0},"unk_token":"a"}"#, "model", "WordPiece"),
        (#"{"vocab":[["a",0.0]],"unk_id":0}"#, "model", "Unigram"),
        (#"{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"}"#, "model", "WordLevel"),
    ])
    func unsupportedModel(model: String, field: String, type: String) {
        #expect(loadError(miniTokenizer(model: model)) == .unsupportedComponent(file: "tokenizer.json", field: field, type: type))
    }

    @Test("unsupported normalizer, pre-tokenizer, post-processor and decoder are named")
    func unsupportedStages() {
        #expect(loadError(miniTokenizer(normalizer: #"{"type":"Sequence","normalizers":[{"type":"BertNormalizer"}]}"#))
            == .unsupportedComponent(file: "tokenizer.json", field: "normalizer.normalizers[0]", type: "BertNormalizer"))
        #expect(loadError(miniTokenizer(preTokenizer: #"{"type":"BertPreTokenizer"}"#))
            == .unsupportedComponent(file: "tokenizer.json", field: "pre_tokenizer", type: "BertPreTokenizer"))
        #expect(loadError(miniTokenizer(postProcessor: #"{"type":"RobertaProcessing","sep":["</s>",2],"cls":["<s>",0]}"#))
            == .unsupportedComponent(file: "tokenizer.json", field: "post_processor", type: "RobertaProcessing"))
        #expect(loadError(miniTokenizer(decoder: ###"{"type":"WordPiece","prefix":"##"}"###))
            == .unsupportedComponent(file: "tokenizer.json", field: "decoder", type: "WordPiece"))
        #expect(loadError(miniTokenizer(normalizer: #"{"type":"Precompiled","precompiled_charsmap":""}"#))
            == .unsupportedComponent(file: "tokenizer.json", field: "normalizer", type: "Precompiled"))
    }

    @Test("wrong types and bad values name their field")
    func wrongTypes() {
        #expect(loadError(miniTokenizer(model: #"{"type":"BPE","vocab":"abc","merges":[]}"#))
            == .wrongType(file: "tokenizer.json", field: "model.vocab", expected: "an object, not a string"))
        guard case .invalidValue(_, let f1, _)? = loadError(miniTokenizer(model: #"{"type":"BPE","vocab":{"a":-1},"merges":[]}"#)) else {
            Issue.record("expected invalidValue for a negative id"); return
        }
        #expect(f1.hasPrefix("model.vocab"))
        guard case .invalidValue(_, let f2, _)? = loadError(miniTokenizer(model: #"{"type":"BPE","dropout":0.1,"vocab":{"a":0},"merges":[]}"#)) else {
            Issue.record("expected invalidValue for dropout"); return
        }
        #expect(f2 == "model.dropout")
        let split = #"{"type":"Split","pattern":{"String":"x"},"behavior":"Sideways","invert":false}"#
        guard case .invalidValue(_, let f3, _)? = loadError(miniTokenizer(preTokenizer: split)) else {
            Issue.record("expected invalidValue for behavior"); return
        }
        #expect(f3 == "pre_tokenizer.behavior")
        let template = #"{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],"special_tokens":{}}"#
        guard case .invalidValue(_, let f4, _)? = loadError(miniTokenizer(postProcessor: template)) else {
            Issue.record("expected invalidValue for the template"); return
        }
        #expect(f4 == "post_processor.special_tokens")
        #expect(loadError(miniTokenizer(addedTokens: #"[{"id":5}]"#)) == .missingField(file: "tokenizer.json", field: "added_tokens[0].content"))
    }

    @Test("malformed JSON reports the byte offset: truncation, bad UTF-8, lone surrogate, deep nesting")
    func malformedJSON() {
        let full = miniTokenizer()
        guard case .malformedJSON(_, let offset, _)? = loadError(String(full.prefix(full.count - 10))) else {
            Issue.record("expected malformedJSON for truncated input"); return
        }
        #expect(offset > 0)
        var bytes = Array(full.utf8)
        bytes[bytes.firstIndex(of: UInt8(ascii: "a"))!] = 0xFF
        #expect({ if case .malformedJSON(_, _, let reason)? = loadError(bytes: bytes) { return reason.contains("UTF-8") }; return false }())
        #expect({ if case .malformedJSON? = loadError(#"{"model":"\ud800"}"#) { return true }; return false }())
        let deep = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        #expect({ if case .malformedJSON? = loadError(deep) { return true }; return false }())
        #expect({ if case .malformedJSON? = loadError("") { return true }; return false }())
    }

    @Test("a key repeated in one object (a vocabulary entry, a field) is malformed JSON naming the key and its offset")
    func duplicateKeys() {
        let vocab = #"{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"Ġ":3,"c":4,"a":5},"merges":["a b"]}"#
        let json = miniTokenizer(model: vocab)
        let offset = Array(json.utf8).count - Array(#""a":5},"merges":["a b"]}}"#.utf8).count
        #expect(loadError(json) == .malformedJSON(file: "tokenizer.json", offset: offset, reason: "duplicate key \"a\""))
        guard case .malformedJSON(_, _, let reason)? = loadError(#"{"model":{"type":"BPE"},"model":null}"#) else {
            Issue.record("expected malformedJSON"); return
        }
        #expect(reason == "duplicate key \"model\"")
    }

    @Test("missing files and folders without tokenizer.json are fileNotFound")
    func missingFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpiscope-tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: TokenizationError.fileNotFound(path: dir.appendingPathComponent("tokenizer.json").path)) {
            _ = try Tokenizer.load(from: dir)
        }
        #expect(throws: TokenizationError.fileNotFound(path: dir.appendingPathComponent("nope.json").path)) {
            _ = try Tokenizer.load(from: dir.appendingPathComponent("nope.json"))
        }
    }

    @Test("tokenizer_config.json naming an unknown bos_token is an error naming the config field")
    func badConfig() {
        #expect(loadError(miniTokenizer(), config: #"{"bos_token":"<nope>"}"#)
            == .invalidValue(file: "tokenizer_config.json", field: "bos_token", reason: "\"<nope>\" is not a token of the tokenizer"))
        #expect({ if case .wrongType? = loadError(miniTokenizer(), config: #"{"add_bos_token":"yes"}"#) { return true }; return false }())
    }

    @Test("an unk_token absent from the vocabulary fails at encode time with the field named, like the reference")
    func unknownUnkToken() throws {
        let model = #"{"type":"BPE","unk_token":"<unk>","vocab":{"a":0},"merges":[]}"#
        let t = try Tokenizer.load(tokenizerJSON: Array(miniTokenizer(model: model, preTokenizer: "null", decoder: "null").utf8))
        #expect(try t.encode("aa").ids == [0, 0])
        guard case .invalidValue(_, let field, _)? = { () -> TokenizationError? in
            do { _ = try t.encode("ab"); return nil } catch let e as TokenizationError { return e } catch { return nil }
        }() else { Issue.record("expected invalidValue"); return }
        #expect(field == "model.unk_token")
    }

    @Test("every error describes itself in one line and has a hint")
    func oneLineMessages() {
        let errors: [TokenizationError] = [
            .fileNotFound(path: "/x"), .unreadableFile(path: "/x", reason: "r"), .malformedJSON(file: "f", offset: 3, reason: "r"),
            .missingField(file: "f", field: "model"), .wrongType(file: "f", field: "a", expected: "b"),
            .invalidValue(file: "f", field: "a", reason: "r"), .unsupportedComponent(file: "f", field: "model", type: "Unigram"),
            .unknownMergeToken(file: "f", field: "model.merges[0]", token: "a\nb"), .invalidRegex(file: "f", field: "x", pattern: "(\n", reason: "r"),
            .inputTooLarge(scalars: 10, limit: 5), .regexFailure(pattern: "\\s*\n", length: 5),
        ]
        for e in errors {
            #expect(!e.description.contains("\n"), "\(e.description)")
            #expect(!e.hint.isEmpty)
        }
    }

    @Test("random byte corruption of a tokenizer.json never traps: it loads or throws TokenizationError")
    func corruptionNeverTraps() throws {
        let url = Fixtures.tokenizers.appendingPathComponent("trained/llama3-style/tokenizer.json")
        let original = [UInt8](try Data(contentsOf: url))
        var rng = SplitMix64(seed: 42)
        var loaded = 0
        var rejected = 0
        let specials: [UInt8] = Array("{}[]\":,\\0123456789 tfn-".utf8) + [0xFF, 0xC3, 0x00]
        for _ in 0..<150 {
            var bytes = original
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 3 {
                case 0: bytes[i] = specials[Int(rng.next() % UInt64(specials.count))]
                case 1: bytes.remove(at: i)
                default: bytes.insert(specials[Int(rng.next() % UInt64(specials.count))], at: i)
                }
            }
            do {
                let t = try Tokenizer.load(tokenizerJSON: bytes)
                _ = try? t.encode("Hello wörld 123 <|begin_of_text|> 😀")
                _ = t.decode([0, 1, 2, 999_999, -1])
                loaded += 1
            } catch is TokenizationError {
                rejected += 1
            }
        }
        #expect(loaded + rejected == 150)
        #expect(rejected > 0)
    }
}

/// A small deterministic PRNG for reproducible test inputs.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

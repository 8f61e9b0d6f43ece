// Locating fixtures and reading the goldens written by Tools/tokenizers/make_goldens.py.
import Foundation
import StrictJSON
@testable import Tokenization

enum Fixtures {
    /// Tests/Fixtures/tokenizers, located from this file.
    static let tokenizers: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("tokenizers")

    /// ../shared/tokenizers relative to the package root (absent on users' machines).
    static let sharedTokenizers: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared").appendingPathComponent("tokenizers")

    static var sharedAvailable: Bool {
        FileManager.default.fileExists(atPath: sharedTokenizers.appendingPathComponent("gpt2/tokenizer.json").path)
    }

    static func goldenNames(shared: Bool) -> [String] {
        let dir = tokenizers.appendingPathComponent("goldens")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".json") && $0.hasPrefix("shared-") == shared }
            .map { String($0.dropLast(5)) }.sorted()
    }

    /// A JSON file parsed with the module's own parser (exact strings; see `ExactString`).
    static func json(_ url: URL) throws -> JSONValue {
        try parseJSON([UInt8](try Data(contentsOf: url)), file: url.lastPathComponent)
    }

    /// The corpus: all texts, and how many of them are hand-written (the rest are dataset samples).
    static let corpus: (texts: [String], handcrafted: Int) = {
        guard let obj = try? json(tokenizers.appendingPathComponent("corpus.json")),
              let texts = obj["texts"]?.strings, let n = obj["handcrafted"]?.intValue else { return ([], 0) }
        return (texts, n)
    }()

    /// The tokenizer of a golden configuration: its base tokenizer.json (+ tokenizer_config.json)
    /// with the golden's overrides applied exactly as make_goldens.py applies them.
    static func tokenizer(for golden: JSONValue) throws -> Tokenizer {
        let ref = golden["tokenizer"]?.stringValue ?? ""
        let dir: URL
        if ref.hasPrefix("shared:") {
            dir = sharedTokenizers.appendingPathComponent(String(ref.dropFirst("shared:".count)))
        } else {
            dir = tokenizers.appendingPathComponent(ref)
        }
        guard case .object(let overrides)? = golden["overrides"], !overrides.isEmpty else {
            return try Tokenizer.load(from: dir)
        }
        var base = try json(dir.appendingPathComponent("tokenizer.json"))
        for (key, value) in overrides {
            if key == "$merges_as_strings" {
                guard case .array(let merges)? = base["model"]?["merges"] else { continue }
                let strings = merges.map { m -> JSONValue in
                    if let pair = m.strings { return .string(pair.joined(separator: " ")) }
                    return m
                }
                base = base.replacing(["model", "merges"], with: .array(strings))
            } else {
                base = base.replacing(key.split(separator: ".").map(String.init)[...], with: value)
            }
        }
        let configURL = dir.appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configURL.path) ? [UInt8](try Data(contentsOf: configURL)) : nil
        return try Tokenizer.load(root: base, configJSON: config)
    }
}

extension JSONValue {
    var stringValue: String? { string }
    var intValue: Int? { if case .number(let n) = self { return n.exactInt } else { return nil } }
    var boolValue: Bool? { bool }
    var strings: [String]? { array.flatMap { a in a.compactMap(\.stringValue).count == a.count ? a.compactMap(\.stringValue) : nil } }
    var ints: [Int]? { array.flatMap { a in a.compactMap(\.intValue).count == a.count ? a.compactMap(\.intValue) : nil } }
}

/// FNV-1a 64 of the UTF-8 of `s`, first 12 hex digits (as make_goldens.py).
func fnv12(_ s: String) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01B3
    }
    let hex = String(h, radix: 16)
    return String((String(repeating: "0", count: 16 - hex.count) + hex).prefix(12))
}

/// The golden hash of an encoding: one "id\tstart\tend\ttoken\n" line per token.
func encodingHash(_ e: Encoding) -> String {
    var s = ""
    for i in 0..<e.count {
        s += "\(e.ids[i])\t\(e.offsets[i].lowerBound)\t\(e.offsets[i].upperBound)\t\(e.tokens[i])\n"
    }
    return fnv12(s)
}

/// A short printable description of an encoding around position `at`.
func describe(_ e: Encoding, around at: Int) -> String {
    let lo = max(0, at - 2)
    let hi = min(e.count, at + 3)
    return (lo..<hi).map { "\($0):\(e.ids[$0])\(String(reflecting: e.tokens[$0]))[\(e.offsets[$0].lowerBound),\(e.offsets[$0].upperBound))" }
        .joined(separator: " ")
}

// Shared test support: fixture paths, the paper's dataset location, and a fake tokenizer.

import Foundation
@testable import ProbeKit

enum Paths {
    /// The package root (this file is Tests/ProbeKitTests/Support.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Tests/Fixtures/probes")
    static let probes = root.appendingPathComponent("Probes")
    /// ../shared/datasets/context-parametric-inversion (absent on users' machines).
    static let paper = root.deletingLastPathComponent()
        .appendingPathComponent("shared/datasets/context-parametric-inversion")
    static let paperFiles = ["world_facts.json", "country_capitals_only.json", "famous_biographies.jsonl"]
    static var paperPresent: Bool {
        paperFiles.allSatisfy { FileManager.default.fileExists(atPath: paper.appendingPathComponent($0).path) }
    }

    static func fixture(_ name: String) -> URL { fixtures.appendingPathComponent(name) }

    /// A fresh temporary directory for generated inputs.
    static func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("probekit-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// The error thrown by `body`, as a ProbeKitError (nil when it does not throw one).
func probeKitError(_ body: () throws -> Void) -> ProbeKitError? {
    do { try body() } catch let e as ProbeKitError { return e } catch { return nil }
    return nil
}

struct FakeEncoderFailure: Error {}

/// A deterministic stand-in tokenizer: one token per word (letters/digits/marks) and one per other
/// non-space character; ids hash the token text. Options mimic real tokenizer behaviours:
///  - bos: prepend id 1 at offset 0..<0 (a special BOS token)
///  - eos: append id 2 at offset n..<n
///  - leadingSpace: one space before a token belongs to it (GPT-2 style " word"); other
///    whitespace, and a space with no token after it, is a token of its own
///  - dropped: characters the tokenizer silently drops (no token, no offset)
///  - failOn: throw when the text contains this string
///  - corrupt: return one more offset than ids
struct FakeEncoder: TextEncoder {
    var bos = true
    var eos = false
    var leadingSpace = false
    var dropped: Set<Unicode.Scalar> = []
    var failOn: String? = nil
    var corrupt = false

    static func isWord(_ c: Unicode.Scalar) -> Bool {
        c.properties.isAlphabetic || c.properties.numericType != nil
    }

    static func id(of token: String) -> Int {
        var h: UInt64 = 0xcbf29ce484222325
        for b in token.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return 1000 + Int(h % 1_000_000)
    }

    func encodeWithOffsets(_ text: String, addSpecialTokens: Bool) throws -> (ids: [Int], offsets: [Range<Int>]) {
        if let failOn, text.contains(failOn) { throw FakeEncoderFailure() }
        let s = Array(text.unicodeScalars)
        var ids: [Int] = [], offsets: [Range<Int>] = []
        if bos && addSpecialTokens { ids.append(1); offsets.append(0..<0) }
        var i = 0
        var pendingSpace: Int? = nil
        func emit(_ start: Int, _ end: Int) {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: s[start..<end])
            ids.append(Self.id(of: String(v)))
            offsets.append(start..<end)
        }
        while i < s.count {
            let c = s[i]
            if dropped.contains(c) { i += 1; continue }
            if c.properties.isWhitespace {
                if leadingSpace {
                    // GPT-2 style: one space attaches to the next token; other whitespace is its own token.
                    if let p = pendingSpace { emit(p, p + 1) }
                    pendingSpace = nil
                    if c == " " { pendingSpace = i } else { emit(i, i + 1) }
                }
                i += 1
                continue
            }
            let start = (leadingSpace ? pendingSpace : nil) ?? i
            pendingSpace = nil
            var end = i + 1
            if Self.isWord(c) {
                while end < s.count, Self.isWord(s[end]), !dropped.contains(s[end]) { end += 1 }
            }
            emit(start, end)
            i = end
        }
        if leadingSpace, let p = pendingSpace { emit(p, p + 1) }
        if eos && addSpecialTokens { ids.append(2); offsets.append(s.count..<s.count) }
        if corrupt { offsets.append(0..<0) }
        return (ids, offsets)
    }
}

extension String {
    /// The substring at a Unicode-scalar range.
    func scalarSlice(_ r: Range<Int>) -> String {
        let s = Array(unicodeScalars)
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s[r])
        return String(v)
    }
}

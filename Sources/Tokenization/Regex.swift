// Regular expressions for Split pre-tokenizers and Replace normalizers/decoders.
//
// The reference compiles these patterns with Oniguruma (Ruby syntax, `onig` crate). We use ICU
// through Foundation's NSRegularExpression, which supports the same constructs used by published
// tokenizers (\p{L}, \p{N}, `(?i:...)`, `\s+(?!\S)`, possessive quantifiers). Differences handled:
//   - Ruby syntax: `^`/`$` always match at line boundaries, and only "\n" ends a line
//     -> options .anchorsMatchLines + .useUnixLineSeparators.
//   - `\s` is the Unicode White_Space property in both engines (checked in the tests).
//   - Empty matches: the `onig` crate's `find_iter` rejects an empty match that ends where the
//     previous match ended; ICU reports it, so such matches are dropped here.
// ICU works on UTF-16; match ranges are mapped back to Unicode-scalar indices.
//
// ICU gives up on long inputs whose backtracking state overflows its stack (e.g. `\s*[\r\n]+` or
// `\s+(?!\S)` over a run of ~10^6 spaces) and then reports no match at all. That failure is turned
// into an error. The patterns of published tokenizers (GPT-2, Llama-3/cl100k, Qwen2) are instead
// matched by `KnownPattern`, hand-written linear scanners that give the same matches as the
// backtracking engines, on any length.
import Foundation

/// A compiled pattern. NSRegularExpression is immutable and documented thread-safe.
final class CompiledRegex: @unchecked Sendable {
    let pattern: String
    private let regex: NSRegularExpression
    private let known: KnownPattern?

    init(pattern: String, file: String, field: String) throws(TokenizationError) {
        self.pattern = pattern
        self.known = KnownPattern(pattern)
        do {
            regex = try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines, .useUnixLineSeparators])
        } catch {
            throw TokenizationError.invalidRegex(file: file, field: field, pattern: pattern,
                                                 reason: "\(error.localizedDescription)")
        }
    }

    /// Non-overlapping matches in `s`, as scalar-index ranges, in order.
    func matches(in s: [Unicode.Scalar]) throws(TokenizationError) -> [Range<Int>] {
        if s.isEmpty { return [] }
        if let known { return known.matches(in: s) }
        var text = String()
        text.unicodeScalars.append(contentsOf: s)
        // UTF-16 index -> scalar index, needed only when the text has astral scalars.
        var utf16Count = 0
        var hasAstral = false
        for c in s {
            if c.value > 0xFFFF { hasAstral = true; utf16Count += 2 } else { utf16Count += 1 }
        }
        var toScalar: [Int32] = []
        if hasAstral {
            toScalar.reserveCapacity(utf16Count + 1)
            for (i, c) in s.enumerated() {
                toScalar.append(Int32(i))
                if c.value > 0xFFFF { toScalar.append(Int32(i)) }
            }
            toScalar.append(Int32(s.count))
        }
        var out: [Range<Int>] = []
        var lastEnd = -1
        var failed = false
        regex.enumerateMatches(in: text, options: [.reportCompletion], range: NSRange(location: 0, length: utf16Count)) { result, flags, _ in
            if flags.contains(.internalError) { failed = true }
            guard let r = result?.range, r.location != NSNotFound else { return }
            var lo = r.location
            var hi = r.location + r.length
            if hasAstral {
                lo = Int(toScalar[lo])
                hi = Int(toScalar[hi])
            }
            if lo == hi && hi == lastEnd { return }  // onig find_iter: no empty match right after a match
            out.append(lo..<hi)
            lastEnd = hi
        }
        if failed {
            throw .regexFailure(pattern: pattern, length: s.count)
        }
        return out
    }
}

/// Linear matchers for the split patterns of published tokenizers. Each reproduces the leftmost,
/// first-alternative-wins result of a backtracking engine (Oniguruma in the reference) for its
/// pattern; `KnownPattern.init` recognizes the exact pattern text.
enum KnownPattern: Sendable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// Llama-3 / cl100k (maxDigits 3) and Qwen2 (maxDigits 1):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case cl100k(maxDigits: Int)

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    init?(_ pattern: String) {
        if pattern.utf8.elementsEqual(Self.gpt2Pattern.utf8) { self = .gpt2 }
        else if pattern.utf8.elementsEqual(Self.llama3Pattern.utf8) { self = .cl100k(maxDigits: 3) }
        else if pattern.utf8.elementsEqual(Self.qwen2Pattern.utf8) { self = .cl100k(maxDigits: 1) }
        else { return nil }
    }

    /// Character classes: \p{L}, \p{N}, \s (White_Space), or none of these.
    enum Kind: UInt8 { case letter, number, space, other }

    private static let asciiKinds: [Kind] = (0..<128).map { v -> Kind in
        if (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v) { return .letter }
        if (0x30...0x39).contains(v) { return .number }
        if (0x09...0x0D).contains(v) || v == 0x20 { return .space }
        return .other
    }

    @inline(__always)
    static func kind(_ c: Unicode.Scalar) -> Kind {
        if c.value < 128 { return asciiKinds[Int(c.value)] }
        let p = c.properties
        if p.isWhitespace { return .space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    func matches(in s: [Unicode.Scalar]) -> [Range<Int>] {
        let n = s.count
        var kinds = [Kind](repeating: .other, count: n)
        for i in 0..<n { kinds[i] = Self.kind(s[i]) }
        var out: [Range<Int>] = []
        out.reserveCapacity(n / 4 + 1)
        var i = 0
        while i < n {
            let e: Int
            switch self {
            case .gpt2: e = gpt2Match(s, kinds, i)
            case .cl100k(let maxDigits): e = cl100kMatch(s, kinds, i, maxDigits: maxDigits)
            }
            if e > i {
                out.append(i..<e)
                i = e
            } else {
                i += 1  // unreachable: every character matches some alternative
            }
        }
        return out
    }

    @inline(__always)
    private func run(_ kinds: [Kind], from i: Int, of k: Kind) -> Int {
        var j = i
        while j < kinds.count && kinds[j] == k { j += 1 }
        return j
    }

    /// `\s+(?!\S)|\s+` at a whitespace character: the run, less its last character when a
    /// non-space follows and the run is longer than one.
    @inline(__always)
    private func spaceMatch(_ kinds: [Kind], _ i: Int) -> Int {
        let j = run(kinds, from: i, of: .space)
        if j == kinds.count { return j }
        return j - 1 > i ? j - 1 : j
    }

    private func contraction(_ s: [Unicode.Scalar], _ i: Int, caseInsensitive: Bool) -> Int? {
        guard s[i] == "'", i + 1 < s.count else { return nil }
        func lower(_ c: Unicode.Scalar) -> Unicode.Scalar {
            guard caseInsensitive else { return c }
            if (0x41...0x5A).contains(c.value) { return Unicode.Scalar(c.value + 0x20)! }
            if c.value == 0x17F { return "s" }  // LATIN SMALL LETTER LONG S case-folds to s
            return c
        }
        let a = lower(s[i + 1])
        if a == "s" || a == "t" || a == "m" || a == "d" { return i + 2 }
        if i + 2 < s.count {
            let b = lower(s[i + 2])
            if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return i + 3 }
        }
        return nil
    }

    private func gpt2Match(_ s: [Unicode.Scalar], _ kinds: [Kind], _ i: Int) -> Int {
        if let e = contraction(s, i, caseInsensitive: false) { return e }
        let n = s.count
        let k = kinds[i]
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: a space joins a following run.
        if s[i] == " " && i + 1 < n && kinds[i + 1] != .space {
            return run(kinds, from: i + 1, of: kinds[i + 1])
        }
        if k != .space { return run(kinds, from: i, of: k) }
        return spaceMatch(kinds, i)
    }

    private func cl100kMatch(_ s: [Unicode.Scalar], _ kinds: [Kind], _ i: Int, maxDigits: Int) -> Int {
        if let e = contraction(s, i, caseInsensitive: true) { return e }
        let n = s.count
        let c = s[i]
        let k = kinds[i]
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if k != .letter && k != .number && c != "\r" && c != "\n" && i + 1 < n && kinds[i + 1] == .letter {
            return run(kinds, from: i + 1, of: .letter)
        }
        if k == .letter { return run(kinds, from: i, of: .letter) }
        // `\p{N}{1,maxDigits}`
        if k == .number {
            var j = i
            while j < n && j - i < maxDigits && kinds[j] == .number { j += 1 }
            return j
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var start = -1
        if c == " " && i + 1 < n && kinds[i + 1] == .other { start = i + 1 } else if k == .other { start = i }
        if start >= 0 {
            var j = run(kinds, from: start, of: .other)
            while j < n && (s[j] == "\r" || s[j] == "\n") { j += 1 }
            return j
        }
        // `\s*[\r\n]+`: through the last newline of the whitespace run.
        let j = run(kinds, from: i, of: .space)
        var lastNewline = -1
        var m = j - 1
        while m >= i {
            if s[m] == "\r" || s[m] == "\n" { lastNewline = m; break }
            m -= 1
        }
        if lastNewline >= 0 { return lastNewline + 1 }
        return spaceMatch(kinds, i)
    }
}

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
import Foundation

/// A compiled pattern. NSRegularExpression is immutable and documented thread-safe.
final class CompiledRegex: @unchecked Sendable {
    let pattern: String
    private let regex: NSRegularExpression

    init(pattern: String, file: String, field: String) throws(TokenizationError) {
        self.pattern = pattern
        do {
            regex = try NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines, .useUnixLineSeparators])
        } catch {
            throw TokenizationError.invalidRegex(file: file, field: field, pattern: pattern,
                                                 reason: "\(error.localizedDescription)")
        }
    }

    /// Non-overlapping matches in `s`, as scalar-index ranges, in order.
    func matches(in s: [Unicode.Scalar]) -> [Range<Int>] {
        if s.isEmpty { return [] }
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
        regex.enumerateMatches(in: text, options: [], range: NSRange(location: 0, length: utf16Count)) { result, _, _ in
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
        return out
    }
}

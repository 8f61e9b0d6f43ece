// Text matching in Unicode-scalar coordinates: case folding that keeps offsets, word boundaries,
// and mention search. All spans in ProbeKit are Range<Int> over the Unicode scalars of a string.
//
// Folding is 1:1 per scalar so that folded offsets equal original offsets:
//   - a scalar whose lowercase mapping is a single scalar becomes that scalar ('A' -> 'a', 'É' -> 'é');
//     one whose lowercase mapping is longer (e.g. U+0130 'İ') is kept as is;
//   - curly quotes fold to straight ones (U+2018/U+2019/U+02BC -> "'", U+201C/U+201D -> '"').
// Diacritics are not removed: "Durrës" does not match "Durres".

enum TextMatch {
    /// The scalars of `s`.
    static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    /// Offset-preserving fold of one scalar (see file header).
    static func fold(_ c: Unicode.Scalar) -> Unicode.Scalar {
        switch c.value {
        case 0x2018, 0x2019, 0x02BC: return "'"
        case 0x201C, 0x201D: return "\""
        default: break
        }
        if c.isASCII {
            if c.value >= 0x41 && c.value <= 0x5A { return Unicode.Scalar(c.value + 0x20) ?? c }
            return c
        }
        let lower = c.properties.lowercaseMapping.unicodeScalars
        if lower.count == 1, let l = lower.first { return l }
        return c
    }

    static func folded(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] { s.map(fold) }

    /// Letters, digits and combining marks: the characters that make up a word.
    static func isWordScalar(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII {
            let v = c.value
            return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A)
        }
        let p = c.properties
        if p.isAlphabetic { return true }
        switch p.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber, .nonspacingMark, .spacingMark, .enclosingMark:
            return true
        default:
            return false
        }
    }

    /// Every non-overlapping, case-insensitive, word-bounded occurrence of `needle` in `haystack`
    /// (both already folded), as ranges of `haystack`, left to right.
    /// Word-bounded: when the needle starts (ends) with a word scalar, the scalar before (after) the
    /// occurrence must not be a word scalar; the haystack's ends count as boundaries.
    static func mentions(of needle: [Unicode.Scalar], in haystack: [Unicode.Scalar]) -> [Range<Int>] {
        let n = needle.count, h = haystack.count
        guard n > 0, n <= h, let head = needle.first, let tail = needle.last else { return [] }
        let boundedStart = isWordScalar(head), boundedEnd = isWordScalar(tail)
        var out: [Range<Int>] = []
        var i = 0
        while i + n <= h {
            if haystack[i] == head, matches(needle, haystack, at: i),
               !(boundedStart && i > 0 && isWordScalar(haystack[i - 1])),
               !(boundedEnd && i + n < h && isWordScalar(haystack[i + n])) {
                out.append(i..<(i + n))
                i += n
            } else {
                i += 1
            }
        }
        return out
    }

    private static func matches(_ needle: [Unicode.Scalar], _ haystack: [Unicode.Scalar], at i: Int) -> Bool {
        for k in 0..<needle.count where haystack[i + k] != needle[k] { return false }
        return true
    }

    /// Convenience: mentions of `needle` (a raw string) in raw `haystack` scalars, folding both.
    static func mentions(of needle: String, inFolded haystack: [Unicode.Scalar]) -> [Range<Int>] {
        mentions(of: folded(scalars(needle)), in: haystack)
    }

    /// Sorted ranges with overlapping or touching ones merged.
    static func merged(_ ranges: [Range<Int>]) -> [Range<Int>] {
        let sorted = ranges.filter { !$0.isEmpty }.sorted { $0.lowerBound < $1.lowerBound }
        var out: [Range<Int>] = []
        for r in sorted {
            if let last = out.last, r.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// The string of `s[range]` (scalar range).
    static func string(_ s: [Unicode.Scalar], _ range: Range<Int>) -> String {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s[range])
        return String(v)
    }
}

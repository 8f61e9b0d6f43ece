// NormalizedString: a piece of text after normalization, with the alignment of every normalized
// character back to the original text, so that token offsets can be reported in the ORIGINAL
// string whatever the normalizers and pre-tokenizers did.
//
// Semantics follow Hugging Face tokenizers `tokenizers/src/tokenizer/normalizer.rs`
// (`NormalizedString::transform_range`, `prepend`, `replace`, `split`, `slice`), re-expressed
// per Unicode scalar instead of per UTF-8 byte: in the reference every byte of one normalized
// character carries the same alignment, and alignments always start and end on original character
// boundaries, so per-scalar alignments give identical offsets once the reference converts its byte
// offsets to character offsets (`BytesToCharOffsetConverter` in `pre_tokenizer.rs`).
//
// Alignments here are ABSOLUTE scalar indices into the original string (the reference stores them
// relative to `original_shift` and adds the shift back when building the encoding).

/// The range of original-string scalars that one normalized scalar came from.
struct Alignment: Equatable, Sendable {
    var start: Int
    var end: Int
}

/// How a split delimiter is kept (`SplitDelimiterBehavior` in the reference).
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// One match segment from `Pattern.find_matches`: a scalar range and whether it matched.
struct MatchSegment: Sendable {
    var range: Range<Int>
    var isMatch: Bool
}

struct NormalizedString: Sendable {
    /// The normalized text, one scalar per element.  [n]
    var scalars: [Unicode.Scalar]
    /// For each normalized scalar, its source range in the original string.  [n]
    var alignments: [Alignment]
    /// Where this piece starts in the original string (`original_shift` in the reference).
    var originalShift: Int

    /// A fresh, unnormalized string: every scalar aligned to itself.
    init(original: [Unicode.Scalar]) {
        scalars = original
        alignments = (0..<original.count).map { Alignment(start: $0, end: $0 + 1) }
        originalShift = 0
    }

    init(scalars: [Unicode.Scalar], alignments: [Alignment], originalShift: Int) {
        self.scalars = scalars
        self.alignments = alignments
        self.originalShift = originalShift
    }

    var isEmpty: Bool { scalars.isEmpty }
    var count: Int { scalars.count }

    var string: String {
        var s = String()
        s.unicodeScalars.append(contentsOf: scalars)
        return s
    }

    /// `convert_offsets(Range::Normalized(r))` for a non-empty range: the original range covered.
    func originalRange(_ r: Range<Int>) -> Range<Int> {
        if r.isEmpty { return r.lowerBound..<r.lowerBound }
        let s = alignments[r.lowerBound].start
        let e = alignments[r.upperBound - 1].end
        return s..<max(s, e)
    }

    /// `slice(Range::Normalized(r))` for a non-empty range.
    func slice(_ r: Range<Int>) -> NormalizedString {
        NormalizedString(scalars: Array(scalars[r]), alignments: Array(alignments[r]),
                         originalShift: r.isEmpty ? originalShift : alignments[r.lowerBound].start)
    }

    /// Alignment given to a scalar inserted before old position `old` (reference: the previous
    /// character's alignment, or the empty range at the start of this piece).
    private func insertedAlignment(before old: Int) -> Alignment {
        if old < 1 || alignments.isEmpty { return Alignment(start: originalShift, end: originalShift) }
        return alignments[min(old, alignments.count) - 1]
    }

    /// `transform(dest, 0)` over the whole string. Each item is a new scalar and its change:
    /// 0 replaces the next old scalar, +1 inserts, -k replaces the next old scalar and removes k more.
    mutating func transform(_ items: [(Unicode.Scalar, Int)]) {
        var newScalars: [Unicode.Scalar] = []
        var newAlignments: [Alignment] = []
        newScalars.reserveCapacity(items.count)
        newAlignments.reserveCapacity(items.count)
        var old = 0
        for (c, change) in items {
            let align: Alignment
            if change > 0 {
                align = insertedAlignment(before: old)
            } else {
                align = old < alignments.count ? alignments[old] : insertedAlignment(before: old)
                old += 1 - change  // the replaced scalar plus `-change` removed ones
            }
            newScalars.append(c)
            newAlignments.append(align)
        }
        scalars = newScalars
        alignments = newAlignments
    }

    /// `prepend(s)`: the new scalars take the alignment of the current first scalar.
    mutating func prepend(_ s: [Unicode.Scalar]) {
        guard !scalars.isEmpty, !s.isEmpty else { return }
        let a = alignments[0]
        scalars.insert(contentsOf: s, at: 0)
        alignments.insert(contentsOf: repeatElement(a, count: s.count), at: 0)
    }

    /// `replace(pattern, content)`: every matched range is replaced by `content`, whose scalars all
    /// take the alignment of the last matched scalar (reference: `transform_range` with
    /// `initial_offset` = the removed characters, so inserted scalars copy `alignments[end - 1]`).
    mutating func replace(_ segments: [MatchSegment], with content: [Unicode.Scalar]) {
        guard segments.contains(where: { $0.isMatch }) else { return }
        var newScalars: [Unicode.Scalar] = []
        var newAlignments: [Alignment] = []
        newScalars.reserveCapacity(scalars.count)
        newAlignments.reserveCapacity(scalars.count)
        for seg in segments {
            if seg.isMatch {
                let a = insertedAlignment(before: seg.range.upperBound)
                newScalars.append(contentsOf: content)
                newAlignments.append(contentsOf: repeatElement(a, count: content.count))
            } else {
                newScalars.append(contentsOf: scalars[seg.range])
                newAlignments.append(contentsOf: alignments[seg.range])
            }
        }
        scalars = newScalars
        alignments = newAlignments
    }

    /// `split(pattern, behavior)`: the pieces left after applying `behavior` to `segments`
    /// (the output of `findMatches` on this string). Empty pieces are dropped, as
    /// `PreTokenizedString::split` does.
    func split(_ segments: [MatchSegment], behavior: SplitBehavior) -> [NormalizedString] {
        var pieces: [(Range<Int>, remove: Bool)] = []
        pieces.reserveCapacity(segments.count)
        switch behavior {
        case .isolated:
            for s in segments { pieces.append((s.range, false)) }
        case .removed:
            for s in segments { pieces.append((s.range, s.isMatch)) }
        case .contiguous:
            var previousMatch = false
            for s in segments {
                if s.isMatch == previousMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = (last.0.lowerBound..<s.range.upperBound, false)
                } else {
                    pieces.append((s.range, false))
                }
                previousMatch = s.isMatch
            }
        case .mergedWithPrevious:
            var previousMatch = false
            for s in segments {
                if s.isMatch && !previousMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = (last.0.lowerBound..<s.range.upperBound, false)
                } else {
                    pieces.append((s.range, false))
                }
                previousMatch = s.isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for s in segments.reversed() {
                if s.isMatch && !previousMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = (s.range.lowerBound..<last.0.upperBound, false)
                } else {
                    pieces.append((s.range, false))
                }
                previousMatch = s.isMatch
            }
            pieces.reverse()
        }
        var out: [NormalizedString] = []
        out.reserveCapacity(pieces.count)
        for (r, remove) in pieces where !remove && !r.isEmpty {
            out.append(slice(r))
        }
        return out
    }
}

/// What a split or replace looks for (`Pattern` in `tokenizers/src/tokenizer/pattern.rs`).
enum TextPattern: Sendable {
    /// A literal string (the reference escapes it into a regex; the matches are the same:
    /// leftmost, non-overlapping).
    case literal([Unicode.Scalar])
    /// A regular expression (Oniguruma in the reference, ICU here).
    case regex(CompiledRegex)
    /// One scalar class, matched scalar by scalar (`impl Pattern for F: Fn(char) -> bool`).
    case predicate(ScalarClass)

    /// Segments covering `s`: alternating non-matches and matches, in order. An empty string
    /// yields one empty non-match, as in the reference.
    func findMatches(_ s: [Unicode.Scalar]) throws(TokenizationError) -> [MatchSegment] {
        if s.isEmpty { return [MatchSegment(range: 0..<0, isMatch: false)] }
        switch self {
        case .literal(let lit):
            return segments(from: literalMatches(lit, in: s), count: s.count)
        case .regex(let re):
            return segments(from: try re.matches(in: s), count: s.count)
        case .predicate(let cls):
            var out: [MatchSegment] = []
            var last = 0
            for (i, c) in s.enumerated() where cls.contains(c) {
                if last < i { out.append(MatchSegment(range: last..<i, isMatch: false)) }
                out.append(MatchSegment(range: i..<(i + 1), isMatch: true))
                last = i + 1
            }
            if last < s.count { out.append(MatchSegment(range: last..<s.count, isMatch: false)) }
            return out
        }
    }

    private func segments(from matches: [Range<Int>], count: Int) -> [MatchSegment] {
        var out: [MatchSegment] = []
        out.reserveCapacity(matches.count * 2 + 1)
        var prev = 0
        for m in matches {
            if prev != m.lowerBound { out.append(MatchSegment(range: prev..<m.lowerBound, isMatch: false)) }
            out.append(MatchSegment(range: m, isMatch: true))
            prev = m.upperBound
        }
        if prev != count { out.append(MatchSegment(range: prev..<count, isMatch: false)) }
        return out
    }

    private func literalMatches(_ lit: [Unicode.Scalar], in s: [Unicode.Scalar]) -> [Range<Int>] {
        guard let first = lit.first, lit.count <= s.count else { return [] }
        var out: [Range<Int>] = []
        var i = 0
        let last = s.count - lit.count
        while i <= last {
            if s[i] == first {
                var k = 1
                while k < lit.count && s[i + k] == lit[k] { k += 1 }
                if k == lit.count {
                    out.append(i..<(i + lit.count))
                    i += lit.count
                    continue
                }
            }
            i += 1
        }
        return out
    }
}

/// Scalar classes used by the Digits, Punctuation and Metaspace pre-tokenizers.
enum ScalarClass: Sendable {
    /// Rust `char::is_numeric`: general category Nd, Nl or No.
    case numeric
    /// `is_punc` in `pre_tokenizers/punctuation.rs`: ASCII punctuation or Unicode P* categories.
    case punctuation
    /// One given scalar.
    case scalar(Unicode.Scalar)
    /// Rust `char::is_whitespace`: the White_Space property.
    case whitespace

    func contains(_ c: Unicode.Scalar) -> Bool {
        switch self {
        case .scalar(let x): return c == x
        case .numeric:
            if c.isASCII { return c.value >= 0x30 && c.value <= 0x39 }
            switch c.properties.generalCategory {
            case .decimalNumber, .letterNumber, .otherNumber: return true
            default: return false
            }
        case .punctuation:
            if c.isASCII {
                let v = c.value
                return (0x21...0x2F).contains(v) || (0x3A...0x40).contains(v) || (0x5B...0x60).contains(v) || (0x7B...0x7E).contains(v)
            }
            switch c.properties.generalCategory {
            case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
                 .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
            default: return false
            }
        case .whitespace:
            return c.properties.isWhitespace
        }
    }
}

extension Unicode.Scalar {
    /// Rust `regex` `\w` (Unicode): Alphabetic, marks, decimal digits, connector punctuation,
    /// Join_Control. Used by `single_word` added tokens.
    var isRegexWordCharacter: Bool {
        if isASCII {
            let v = value
            return (0x30...0x39).contains(v) || (0x41...0x5A).contains(v) || (0x61...0x7A).contains(v) || v == 0x5F
        }
        let p = properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}

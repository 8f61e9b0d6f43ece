// Added tokens (`added_tokens` in tokenizer.json; `tokenizers/src/tokenizer/added_vocabulary.rs`).
//
// Extraction happens in two passes before pre-tokenization:
//   1. tokens with `normalized: false` are found in the raw text;
//   2. every remaining piece is normalized, then tokens with `normalized: true` are found in the
//      normalized piece (their pattern is their content passed through the normalizer).
// Matching is leftmost-longest (aho-corasick `MatchKind::LeftmostLongest`), then `single_word`
// discards matches touching a word character, `lstrip`/`rstrip` extend a match over neighbouring
// whitespace.
import StrictJSON

struct AddedToken: Sendable {
    var id: Int
    var content: String
    var special: Bool
    var singleWord: Bool
    var lstrip: Bool
    var rstrip: Bool
    var normalized: Bool
}

struct AddedVocabulary: Sendable {
    /// All added tokens, in file order (content unique; a later entry replaces an earlier one).
    private(set) var tokens: [AddedToken] = []
    /// content -> index in `tokens`.
    private var byContent: [ExactString: Int] = [:]
    /// id -> index in `tokens`.
    private var byID: [Int: Int] = [:]
    /// Contents of special tokens.
    private(set) var specialContents: Set<ExactString> = []
    /// id -> content passed through the normalizer, for `normalized` tokens whose content changes
    /// (used by `decode` and `id_to_token`, as tokenizers 0.23 does).
    private var normalizedForms: [Int: String] = [:]

    private var rawMatcher = LeftmostLongestMatcher(patterns: [])
    private var normalizedMatcher = LeftmostLongestMatcher(patterns: [])

    var isEmpty: Bool { tokens.isEmpty }

    /// Builds the vocabulary from the `added_tokens` array. Ids follow the reference: an added
    /// token already in the model vocabulary keeps that id; others are numbered after the model's
    /// vocabulary (or after the largest added id).
    init(_ field: JSONField?, model: BPEModel, normalizer: (any Normalizer)?) throws(TokenizationError) {
        guard let field else { return }
        let modelSize = model.vocabularyCount
        for item in try field.array() {
            let content = try item.child("content").string()
            if content.isEmpty { continue }
            let special = try item.optionalBool("special") ?? false
            var token = AddedToken(id: 0, content: content, special: special,
                                   singleWord: try item.optionalBool("single_word") ?? false,
                                   lstrip: try item.optionalBool("lstrip") ?? false,
                                   rstrip: try item.optionalBool("rstrip") ?? false,
                                   normalized: try item.optionalBool("normalized") ?? !special)
            if let existing = byContent[content.exact] {
                token.id = tokens[existing].id
                tokens[existing] = token
            } else {
                if let id = model.vocab[content.exact] {
                    token.id = id
                } else if let maxAdded = byID.keys.max(), maxAdded >= modelSize || modelSize == 0 {
                    token.id = maxAdded + 1
                } else {
                    token.id = modelSize
                }
                byContent[content.exact] = tokens.count
                byID[token.id] = tokens.count
                tokens.append(token)
            }
            if special { specialContents.insert(content.exact) }
            // The JSON id is informative only: the reference re-derives ids the same way and merely warns.
            _ = try item.optionalInt("id")
        }
        var raw: [([Unicode.Scalar], Int)] = []
        var norm: [([Unicode.Scalar], Int)] = []
        // Special tokens first, then the others, as the reference builds its tries.
        let order = tokens.indices.filter { tokens[$0].special } + tokens.indices.filter { !tokens[$0].special }
        for i in order {
            let t = tokens[i]
            let scalars = Array(t.content.unicodeScalars)
            if t.normalized {
                var n = NormalizedString(original: scalars)
                try normalizer?.normalize(&n)
                if n.scalars != scalars { normalizedForms[t.id] = n.string }
                norm.append((n.scalars, i))
            } else {
                raw.append((scalars, i))
            }
        }
        rawMatcher = LeftmostLongestMatcher(patterns: raw)
        normalizedMatcher = LeftmostLongestMatcher(patterns: norm)
    }

    func id(forContent content: String) -> Int? { byContent[content.exact].map { tokens[$0].id } }

    /// The string `decode`/`id_to_token` use for an added id: the normalized form when it differs.
    func decodingForm(id: Int) -> String? {
        guard let i = byID[id] else { return nil }
        return normalizedForms[id] ?? tokens[i].content
    }

    func isSpecial(content: String) -> Bool { specialContents.contains(content.exact) }

    /// Number of added ids that are not model ids.
    func countBeyond(model: BPEModel) -> Int {
        tokens.filter { model.idToToken.count <= $0.id || model.idToToken[$0.id] == nil }.count
    }

    /// Added-token matches in `s` after single_word / lstrip / rstrip, as covering pieces.
    func findMatches(_ s: [Unicode.Scalar], matcher: LeftmostLongestMatcher) -> [(range: Range<Int>, token: Int?)] {
        var out: [(range: Range<Int>, token: Int?)] = []
        var startOffset = 0
        for m in matcher.matches(in: s) {
            var start = m.range.lowerBound
            var stop = m.range.upperBound
            let t = tokens[m.token]
            if t.singleWord {
                let startSpace = start == 0 || !s[start - 1].isRegexWordCharacter
                let stopSpace = stop == s.count || !s[stop].isRegexWordCharacter
                if !startSpace || !stopSpace { continue }
            }
            if t.lstrip {
                var newStart = start
                while newStart > 0 && s[newStart - 1].properties.isWhitespace { newStart -= 1 }
                start = max(newStart, startOffset)
            }
            if t.rstrip {
                while stop < s.count && s[stop].properties.isWhitespace { stop += 1 }
            }
            if start < startOffset { continue }  // overlaps a previous rstrip; the reference would emit overlapping pieces
            if startOffset < start { out.append((startOffset..<start, nil)) }
            out.append((start..<stop, m.token))
            startOffset = stop
        }
        if startOffset != s.count { out.append((startOffset..<s.count, nil)) }
        return out
    }

    /// Both extraction passes over `text` (`extract_and_normalize`), added-token pieces carrying
    /// their token (whose value is the matched text, normalized).
    func extract(_ text: [Unicode.Scalar], normalizer: (any Normalizer)?) throws(TokenizationError) -> PreTokenizedString {
        var splits: [Split] = []
        let whole = NormalizedString(original: text)
        if whole.isEmpty { return PreTokenizedString(splits: []) }
        // Pass 1: raw tokens on the unnormalized text.
        var firstPass: [Split] = []
        if rawMatcher.isEmpty {
            firstPass = [Split(normalized: whole, tokens: nil)]
        } else {
            for piece in findMatches(whole.scalars, matcher: rawMatcher) where !piece.range.isEmpty {
                let n = whole.slice(piece.range)
                if let ti = piece.token {
                    firstPass.append(Split(normalized: n, tokens: [Token(id: tokens[ti].id, value: n.string, range: 0..<n.count)]))
                } else {
                    firstPass.append(Split(normalized: n, tokens: nil))
                }
            }
        }
        // Pass 2: normalize the other pieces, then find normalized tokens in them.
        for split in firstPass {
            if split.tokens != nil { splits.append(split); continue }
            var n = split.normalized
            try normalizer?.normalize(&n)
            if n.isEmpty { continue }
            if normalizedMatcher.isEmpty {
                splits.append(Split(normalized: n, tokens: nil))
                continue
            }
            for piece in findMatches(n.scalars, matcher: normalizedMatcher) where !piece.range.isEmpty {
                let sub = n.slice(piece.range)
                if let ti = piece.token {
                    splits.append(Split(normalized: sub, tokens: [Token(id: tokens[ti].id, value: sub.string, range: 0..<sub.count)]))
                } else {
                    splits.append(Split(normalized: sub, tokens: nil))
                }
            }
        }
        return PreTokenizedString(splits: splits)
    }
}

/// Leftmost-longest multi-pattern matching over scalars. Patterns are few (tens to hundreds), so
/// candidates are indexed by first scalar and tried longest first.
struct LeftmostLongestMatcher: Sendable {
    /// first scalar -> (pattern, token index), longest first (stable for equal lengths).
    private var byFirst: [Unicode.Scalar: [([Unicode.Scalar], Int)]] = [:]

    init(patterns: [([Unicode.Scalar], Int)]) {
        for (p, t) in patterns where !p.isEmpty {
            byFirst[p[0], default: []].append((p, t))
        }
        for k in byFirst.keys {
            // Stable sort by length, descending: among equal patterns the first one wins.
            byFirst[k] = byFirst[k]!.enumerated().sorted { a, b in
                a.element.0.count != b.element.0.count ? a.element.0.count > b.element.0.count : a.offset < b.offset
            }.map { $0.element }
        }
    }

    var isEmpty: Bool { byFirst.isEmpty }

    func matches(in s: [Unicode.Scalar]) -> [(range: Range<Int>, token: Int)] {
        var out: [(range: Range<Int>, token: Int)] = []
        var i = 0
        let n = s.count
        outer: while i < n {
            if let candidates = byFirst[s[i]] {
                for (p, t) in candidates where p.count <= n - i {
                    var k = 1
                    while k < p.count && s[i + k] == p[k] { k += 1 }
                    if k == p.count {
                        out.append((i..<(i + p.count), t))
                        i += p.count
                        continue outer
                    }
                }
            }
            i += 1
        }
        return out
    }
}

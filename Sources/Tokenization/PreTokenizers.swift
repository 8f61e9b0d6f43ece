// Pre-tokenizers: split normalized text into "words" before the model runs on each.
// Reference: `tokenizers/src/pre_tokenizers/*.rs`. Built from the `"pre_tokenizer"` field of
// tokenizer.json by `makePreTokenizer`, keyed on `"type"`.

/// One piece of the input: normalized text, plus tokens once known (added tokens get theirs
/// before pre-tokenization and are left alone by every later stage).
struct Split: Sendable {
    var normalized: NormalizedString
    var tokens: [Token]?
}

/// A token produced by the model or the added vocabulary, with its scalar range in the
/// NORMALIZED text of its split.
struct Token: Sendable {
    var id: Int
    var value: String
    var range: Range<Int>
}

/// `PreTokenizedString`: the splits of one input.
struct PreTokenizedString: Sendable {
    var splits: [Split]

    /// Replaces every split without tokens by the non-empty pieces `f` returns for it.
    mutating func split(_ f: (NormalizedString) throws(TokenizationError) -> [NormalizedString]) throws(TokenizationError) {
        var out: [Split] = []
        out.reserveCapacity(splits.count)
        for s in splits {
            if s.tokens != nil { out.append(s); continue }
            for piece in try f(s.normalized) where !piece.isEmpty {
                out.append(Split(normalized: piece, tokens: nil))
            }
        }
        splits = out
    }

    /// Normalizes every split without tokens in place.
    mutating func normalize(_ f: (inout NormalizedString) -> Void) {
        for i in splits.indices where splits[i].tokens == nil {
            f(&splits[i].normalized)
        }
    }
}

protocol PreTokenizer: Sendable {
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizationError)
}

/// `Sequence`: each pre-tokenizer in turn.
struct SequencePreTokenizer: PreTokenizer {
    let steps: [any PreTokenizer]
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizationError) {
        for s in steps { try s.preTokenize(&p) }
    }
}

/// `ByteLevel` (`pre_tokenizers/byte_level.rs`): optional prefix space, optional GPT-2 split
/// regex (delimiters isolated), then every UTF-8 byte mapped to its printable stand-in.
struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let regex: CompiledRegex?

    /// The GPT-2 pattern, as in the reference.
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizationError) {
        try p.split { (n) throws(TokenizationError) in
            var n = n
            if addPrefixSpace && n.scalars.first != " " { n.prepend([" "]) }
            if let regex {
                return n.split(try TextPattern.regex(regex).findMatches(n.scalars), behavior: .isolated)
            }
            return [n]
        }
        p.normalize { n in ByteLevelAlphabet.apply(&n) }
    }
}

/// `Split`: splits on a pattern with a delimiter behavior; `invert` swaps matches and gaps.
struct SplitPreTokenizer: PreTokenizer {
    let pattern: TextPattern
    let behavior: SplitBehavior
    let invert: Bool
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizationError) {
        try p.split { (n) throws(TokenizationError) in
            var segs = try pattern.findMatches(n.scalars)
            if invert { for i in segs.indices { segs[i].isMatch.toggle() } }
            return n.split(segs, behavior: behavior)
        }
    }
}

/// `Digits`: digits isolated one by one, or kept as contiguous runs.
struct DigitsPreTokenizer: PreTokenizer {
    let individualDigits: Bool
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizationError) {
        try p.split { (n) throws(TokenizationError) in
            n.split(try TextPattern.predicate(.numeric).findMatches(n.scalars), behavior: individualDigits ? .isolated : .contiguous)
        }
    }
}

/// `Punctuation`: splits on punctuation with a delimiter behavior (default isolated).
struct PunctuationPreTokenizer: PreTokenizer {
    let behavior: SplitBehavior
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizationError) {
        try p.split { (n) throws(TokenizationError) in n.split(try TextPattern.predicate(.punctuation).findMatches(n.scalars), behavior: behavior) }
    }
}

/// `WhitespaceSplit`: splits on whitespace, removing it.
struct WhitespaceSplitPreTokenizer: PreTokenizer {
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizationError) {
        try p.split { (n) throws(TokenizationError) in n.split(try TextPattern.predicate(.whitespace).findMatches(n.scalars), behavior: .removed) }
    }
}

/// `Whitespace`: keeps runs of `\w+` and of `[^\w\s]+`, removing the rest.
struct WhitespacePreTokenizer: PreTokenizer {
    let regex: CompiledRegex
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizationError) {
        try p.split { (n) throws(TokenizationError) in
            var segs = try TextPattern.regex(regex).findMatches(n.scalars)
            for i in segs.indices { segs[i].isMatch.toggle() }
            return n.split(segs, behavior: .removed)
        }
    }
}

/// When Metaspace adds the replacement character in front of a word.
enum PrependScheme: String, Sendable {
    case always, never, first
}

/// `Metaspace` (`pre_tokenizers/metaspace.rs`): spaces become the replacement character (▁),
/// one is prepended per `prependScheme`, and with `split` each ▁ starts a new word.
struct MetaspacePreTokenizer: PreTokenizer {
    let replacement: Unicode.Scalar
    let prependScheme: PrependScheme
    let splitWords: Bool
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizationError) {
        try p.split { (n) throws(TokenizationError) in
            var n = n
            n.replace(try TextPattern.predicate(.scalar(" ")).findMatches(n.scalars), with: [replacement])
            switch prependScheme {
            case .always:
                if n.scalars.first != replacement { n.prepend([replacement]) }
            case .first:
                if n.scalars.first != replacement && n.originalShift == 0 { n.prepend([replacement]) }
            case .never:
                break
            }
            if splitWords {
                return n.split(try TextPattern.predicate(.scalar(replacement)).findMatches(n.scalars), behavior: .mergedWithNext)
            }
            return [n]
        }
    }
}

func makeSplitBehavior(_ f: JSONField) throws(TokenizationError) -> SplitBehavior {
    let s = try f.string()
    guard let b = SplitBehavior(rawValue: s) else {
        throw f.invalid("unknown behavior \(quoted(s)); expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous")
    }
    return b
}

/// Reads the single replacement character of Metaspace (pre-tokenizer or decoder).
func metaspaceReplacement(_ f: JSONField) throws(TokenizationError) -> Unicode.Scalar {
    guard let r = try f.optionalChild("replacement") else { return "\u{2581}" }
    let s = Array(try r.string().unicodeScalars)
    guard s.count == 1 else { throw r.invalid("must be exactly one character") }
    return s[0]
}

/// Metaspace's prepend scheme: `prepend_scheme`, or the legacy `add_prefix_space` (true means
/// always, false never); default always.
func metaspacePrependScheme(_ f: JSONField) throws(TokenizationError) -> PrependScheme {
    if let ps = try f.optionalChild("prepend_scheme") {
        let s = try ps.string()
        guard let scheme = PrependScheme(rawValue: s) else { throw ps.invalid("unknown prepend_scheme \(quoted(s)); expected first, always or never") }
        return scheme
    }
    if let add = try f.optionalBool("add_prefix_space") { return add ? .always : .never }
    return .always
}

func makePreTokenizer(_ f: JSONField) throws(TokenizationError) -> any PreTokenizer {
    let type = try f.typeName()
    switch type {
    case "Sequence":
        var steps: [any PreTokenizer] = []
        for item in try f.child("pretokenizers").array() { steps.append(try makePreTokenizer(item)) }
        return SequencePreTokenizer(steps: steps)
    case "ByteLevel":
        let useRegex = try f.optionalBool("use_regex") ?? true
        let regex = useRegex ? try CompiledRegex(pattern: ByteLevelPreTokenizer.gpt2Pattern, file: f.file, field: f.path) : nil
        return ByteLevelPreTokenizer(addPrefixSpace: try f.optionalBool("add_prefix_space") ?? true, regex: regex)
    case "Split":
        return SplitPreTokenizer(pattern: try makeTextPattern(try f.child("pattern")),
                                 behavior: try makeSplitBehavior(try f.child("behavior")),
                                 invert: try f.optionalBool("invert") ?? false)
    case "Digits":
        return DigitsPreTokenizer(individualDigits: try f.optionalBool("individual_digits") ?? false)
    case "Punctuation":
        let behavior = try f.optionalChild("behavior").map { (b) throws(TokenizationError) in try makeSplitBehavior(b) } ?? .isolated
        return PunctuationPreTokenizer(behavior: behavior)
    case "WhitespaceSplit":
        return WhitespaceSplitPreTokenizer()
    case "Whitespace":
        return WhitespacePreTokenizer(regex: try CompiledRegex(pattern: #"\w+|[^\w\s]+"#, file: f.file, field: f.path))
    case "Metaspace":
        return MetaspacePreTokenizer(replacement: try metaspaceReplacement(f),
                                     prependScheme: try metaspacePrependScheme(f),
                                     splitWords: try f.optionalBool("split") ?? true)
    default:
        throw TokenizationError.unsupportedComponent(file: f.file, field: f.path, type: type)
    }
}

/// The GPT-2 byte-to-unicode table (`bytes_char` in `pre_tokenizers/byte_level.rs`): printable
/// bytes map to themselves, the others to U+0100 and up, in byte order.
enum ByteLevelAlphabet {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            let keep = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if keep {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { m[s.value] = UInt8(b) }
        return m
    }()

    /// Replaces every scalar by the stand-ins of its UTF-8 bytes; all of them keep the scalar's alignment.
    static func apply(_ n: inout NormalizedString) {
        var scalars: [Unicode.Scalar] = []
        var aligns: [Alignment] = []
        scalars.reserveCapacity(n.count + n.count / 4)
        aligns.reserveCapacity(n.count + n.count / 4)
        let table = byteToScalar
        for (i, c) in n.scalars.enumerated() {
            let a = n.alignments[i]
            let v = c.value
            if v < 0x80 {
                scalars.append(table[Int(v)]); aligns.append(a)
            } else {
                for b in UTF8.encode(c)! {
                    scalars.append(table[Int(b)]); aligns.append(a)
                }
            }
        }
        n.scalars = scalars
        n.alignments = aligns
    }
}

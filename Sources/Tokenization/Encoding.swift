// The result of encoding one text.

/// Token ids of one text, with each token's string and its character range in the original text.
///
/// Offsets are in Unicode scalars of the ORIGINAL string (Python `str` indices), exactly as
/// Python `tokenizers`' `Tokenizer.encode(text).offsets` reports them: after normalizers that
/// change the text, a token's range covers the original characters it came from; special tokens
/// added by the post-processor have the empty range 0..<0.
public struct Encoding: Sendable, Equatable {
    /// Token ids.  [pos]
    public var ids: [Int]
    /// Token strings as in the vocabulary (for added tokens: the matched, normalized text).  [pos]
    public var tokens: [String]
    /// Character ranges in the original string.  [pos]
    public var offsets: [Range<Int>]
    /// True for tokens inserted by the post-processor (e.g. BOS), i.e. Python's
    /// `special_tokens_mask`; added tokens matched inside the text are not marked.  [pos]
    public var isSpecial: [Bool]

    public init(ids: [Int], tokens: [String], offsets: [Range<Int>], isSpecial: [Bool]) {
        precondition(ids.count == tokens.count && ids.count == offsets.count && ids.count == isSpecial.count,
                     "Encoding arrays must have equal lengths")
        self.ids = ids
        self.tokens = tokens
        self.offsets = offsets
        self.isSpecial = isSpecial
    }

    /// Number of tokens.
    public var count: Int { ids.count }
}

extension Encoding {
    /// Token positions whose character range intersects `span`
    /// (`t.lower < span.upper && span.lower < t.upper`; empty ranges never match).
    public func tokenPositions(overlapping span: Range<Int>) -> [Int] {
        guard !span.isEmpty else { return [] }
        var out: [Int] = []
        for (i, t) in offsets.enumerated() where !t.isEmpty && t.lowerBound < span.upperBound && span.lowerBound < t.upperBound {
            out.append(i)
        }
        return out
    }
}

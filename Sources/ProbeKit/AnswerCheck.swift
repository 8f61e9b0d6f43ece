// Answer correctness: the paper's entailment check, simplified (Goyal, Baek et al., Section 3:
// a response counts as following the context when it contains the context answer).
//
// Rule: normalize both texts, then test whether the normalized answer occurs in the normalized
// generated text as a whole-word sequence.
// Normalization: Unicode lowercase (String.lowercased()); every scalar that is not a letter, digit
// or combining mark (punctuation, symbols, whitespace) becomes a space; runs of spaces collapse to
// one; leading and trailing spaces are dropped. Diacritics are kept ("Durrës" != "Durres").
// So "Herat." and "HERAT" contain "Herat", "New-York" contains "new york", "2,000 km" equals
// "2 000 km", but "Oranjestad" does not contain "Oran". An answer with no letter or digit never appears.

/// Whether `answer` appears in `generated` under the rule above.
public func answerAppears(_ answer: String, in generated: String) -> Bool {
    let a = normalizedForAnswerCheck(answer)
    guard !a.isEmpty else { return false }
    let g = normalizedForAnswerCheck(generated)
    return (" " + g + " ").contains(" " + a + " ")
}

/// The normalization `answerAppears` applies (exposed for reports and tests).
public func normalizedForAnswerCheck(_ text: String) -> String {
    var out = String.UnicodeScalarView()
    var pendingSpace = false
    for c in text.lowercased().unicodeScalars {
        if TextMatch.isWordScalar(c) {
            if pendingSpace && !out.isEmpty { out.append(" ") }
            pendingSpace = false
            out.append(c)
        } else {
            pendingSpace = true
        }
    }
    return String(out)
}

/// How a generation is scored for an answer (`--correctness`; the run file's `correctness`).
///
/// - `paper`: the answer anywhere in the generation (the rule above; Goyal, Baek et al.). A generation
///   that echoes the context ('The original text is: "Blaise Pascal wrote…') counts as following it.
/// - `first-sentence`: the answer in the generation's first sentence: the text up to the first ".", "!",
///   "?" or line break that follows a visible character and is followed by whitespace or the end ("3.5"
///   and "e.g.x" do not end a sentence; "U.S. Navy" does — a documented simplification).
/// - `no-echo`: the answer in what is left of the generation after every run of 6 or more consecutive
///   words copied from the context (normalized as above) is removed: an answer stated in the model's
///   own words counts, a quotation of the context does not (so an answer given only by copying a
///   6-word stretch of the context does not count either).
public enum CorrectnessRule: String, Sendable, CaseIterable {
    case paper
    case firstSentence = "first-sentence"
    case noEcho = "no-echo"

    /// The shortest copied run `noEcho` removes, in words.
    public static let echoWords = 6

    /// The rule in words, for run files.
    public var definition: String {
        switch self {
        case .paper: return "case-insensitive whole-word containment of the answer in the generated text"
        case .firstSentence: return "case-insensitive whole-word containment of the answer in the generated text's first sentence (up to the first . ! ? or line break after a visible character that is followed by whitespace or the end)"
        case .noEcho: return "case-insensitive whole-word containment of the answer in the generated text after removing every run of \(Self.echoWords) or more consecutive words copied from the context"
        }
    }

    /// Whether `answer` counts as given in `generated` (the context is needed by `noEcho`).
    public func answerAppears(_ answer: String, in generated: String, context: String) -> Bool {
        switch self {
        case .paper: return ProbeKit.answerAppears(answer, in: generated)
        case .firstSentence: return ProbeKit.answerAppears(answer, in: Self.firstSentence(generated))
        case .noEcho: return Self.withoutEcho(generated, context: context).contains { ProbeKit.answerAppears(answer, in: $0) }
        }
    }

    /// The first sentence of `text` (the whole text when no sentence ends).
    public static func firstSentence(_ text: String) -> String {
        let chars = Array(text)
        var seenVisible = false
        for (i, c) in chars.enumerated() {
            if c == "\n" && seenVisible { return String(chars[..<i]) }
            if !c.isWhitespace { seenVisible = true }
            if seenVisible, ".!?".contains(c), i + 1 == chars.count || chars[i + 1].isWhitespace { return String(chars[...i]) }
        }
        return text
    }

    /// The stretches of `generated` (normalized words) left between the runs of `echoWords`+ words found
    /// consecutively in the normalized context; an answer counts only within one stretch.
    public static func withoutEcho(_ generated: String, context: String) -> [String] {
        let g = normalizedForAnswerCheck(generated).split(separator: " ").map(String.init)
        let c = normalizedForAnswerCheck(context).split(separator: " ").map(String.init)
        guard g.count >= echoWords, c.count >= echoWords else { return [g.joined(separator: " ")] }
        var grams = Set<[String]>()
        for i in 0...(c.count - echoWords) { grams.insert(Array(c[i..<(i + echoWords)])) }
        var copied = [Bool](repeating: false, count: g.count)
        for i in 0...(g.count - echoWords) where grams.contains(Array(g[i..<(i + echoWords)])) {
            for j in i..<(i + echoWords) { copied[j] = true }
        }
        var stretches: [[String]] = [[]]
        for (i, w) in g.enumerated() {
            if copied[i] { if !stretches[stretches.count - 1].isEmpty { stretches.append([]) } } else { stretches[stretches.count - 1].append(w) }
        }
        return stretches.filter { !$0.isEmpty }.map { $0.joined(separator: " ") }
    }
}

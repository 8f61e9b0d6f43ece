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

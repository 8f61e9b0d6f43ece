// SubjectLocator: finds the subject phrases of a question when a probe has no annotated subject.
// Two documented rules, tried in order (docs/probes-and-templates.md); the rule used is recorded.
//
// Rule "capitalized-phrases-v1":
//  1. Split the question into words: runs of letters/digits/marks, joined across an inner
//     apostrophe, hyphen or period that has a word character on both sides ("U.S", "O'Keeffe",
//     "Sainte-Victoire").
//  2. A phrase is a maximal run of adjacent words that
//       - starts with a capitalized word that is not a function word (What, Which, Who, In, The, ...),
//         or with a number immediately followed by such a word ("16th President");
//       - continues through capitalized words, numbers, the articles The/A/An, and the lowercase
//         connectors of, the, and, de, da, di, du, des, del, la, le, von, van, der, den, y, al, el,
//         bin, ibn, und, &;
//       - ends at its last capitalized word or number (trailing connectors are dropped).
//     Words are adjacent when only spaces separate them, or a period and spaces after a word of at
//     most three letters ("U.S. President", "John F. Kennedy", "Symphony No. 9"). Any other
//     punctuation (comma, quote, slash, question mark) ends a phrase.
//  3. Drop phrases equal (folded) to the context answer or to the memorized answer; drop duplicates.
//  The subject is the remaining phrases, in question order. When the question has capitalized
//  phrases but all equal an answer ("What is the capital city of Djibouti?" with memorized answer
//  "Djibouti"), the subject is missing: the string is the answer, and using it would guess.
//
// Rule "shared-phrase-v1", only when the question has no capitalized phrase at all:
//  the longest run of 2 to 12 adjacent question words (only spaces between them) that starts and
//  ends with a non-stopword, contains no mention of either answer, and occurs in the context
//  (case-insensitive, word-bounded); the leftmost among equally long runs.
//  ("What is the largest desert in the world?" -> "largest desert" when the context says it.)
//
// Spans are the phrases' word-bounded, case-insensitive mentions in the question and the context.
// Otherwise the subject is missing, with the reason.

enum SubjectLocator {
    static let capitalizedRule = "capitalized-phrases-v1"
    static let sharedPhraseRule = "shared-phrase-v1"

    enum Outcome: Equatable {
        case located(rule: String, phrases: [String])
        case missing(reason: String)
    }

    /// Stopwords that may not start or end a shared phrase.
    static let stopwords: Set<String> = functionWords.union([
        "be", "been", "being", "not", "no", "first", "most", "known", "famous", "world", "there", "their",
        "his", "her", "as", "than", "then", "so", "such", "one", "ones", "many", "much", "very",
    ])

    /// Applies the rules above.
    static func locate(question: String, context: String, answer: String, memoryAnswer: String) -> Outcome {
        let all = capitalizedPhrases(question: question)
        let answers: Set<[Unicode.Scalar]> = [TextMatch.folded(TextMatch.scalars(answer)),
                                              TextMatch.folded(TextMatch.scalars(memoryAnswer))]
        var seen = Set<[Unicode.Scalar]>()
        let kept = all.filter { p in
            let key = TextMatch.folded(TextMatch.scalars(p))
            return !answers.contains(key) && seen.insert(key).inserted
        }
        if !kept.isEmpty { return .located(rule: capitalizedRule, phrases: kept) }
        if !all.isEmpty {
            return .missing(reason: "the question's only capitalized phrases \(all) equal an answer (rule \(capitalizedRule))")
        }
        if let shared = sharedPhrase(question: question, context: context, answer: answer, memoryAnswer: memoryAnswer) {
            return .located(rule: sharedPhraseRule, phrases: [shared])
        }
        return .missing(reason: "the question has no capitalized phrase (rule \(capitalizedRule)) and no phrase of "
            + "2+ words shared with the context (rule \(sharedPhraseRule))")
    }

    /// Rule shared-phrase-v1 (file header).
    static func sharedPhrase(question: String, context: String, answer: String, memoryAnswer: String) -> String? {
        let q = TextMatch.scalars(question)
        let words = splitWords(q)
        let foldedContext = TextMatch.folded(TextMatch.scalars(context))
        let foldedAnswers = [answer, memoryAnswer].map { TextMatch.folded(TextMatch.scalars($0)) }
        let maxWords = min(12, words.count)
        guard maxWords >= 2 else { return nil }
        for length in stride(from: maxWords, through: 2, by: -1) {
            for start in 0...(words.count - length) {
                let run = words[start..<(start + length)]
                guard let first = run.first, let last = run.last,
                      !stopwords.contains(first.text), !stopwords.contains(last.text) else { continue }
                let spaced = zip(run.dropLast(), run.dropFirst()).allSatisfy { a, b in
                    let gap = q[a.range.upperBound..<b.range.lowerBound]
                    return !gap.isEmpty && gap.allSatisfy { $0.properties.isWhitespace }
                }
                guard spaced else { continue }
                let range = first.range.lowerBound..<last.range.upperBound
                let phrase = TextMatch.folded(Array(q[range]))
                if foldedAnswers.contains(where: { !TextMatch.mentions(of: $0, in: phrase).isEmpty }) { continue }
                if !TextMatch.mentions(of: phrase, in: foldedContext).isEmpty { return TextMatch.string(q, range) }
            }
        }
        return nil
    }

    /// Capitalized words that never start a phrase (sentence-initial function words).
    static let functionWords: Set<String> = [
        "what", "which", "who", "whom", "whose", "where", "when", "why", "how",
        "the", "a", "an", "in", "on", "at", "of", "for", "from", "to", "by", "with", "during", "after", "before",
        "is", "are", "was", "were", "did", "do", "does", "has", "have", "had", "can", "could", "would", "will",
        "name", "this", "that", "these", "those", "it", "its", "and", "or", "but", "if", "according",
    ]
    /// Lowercase words allowed inside a phrase.
    static let connectors: Set<String> = [
        "of", "the", "and", "de", "da", "di", "du", "des", "del", "la", "le", "von", "van", "der", "den",
        "y", "al", "el", "bin", "ibn", "und", "&",
    ]
    static let articles: Set<String> = ["the", "a", "an"]

    struct Word {
        let range: Range<Int>
        let text: String      // folded
        let capitalized: Bool
        let numeric: Bool
    }

    /// All capitalized phrases of `question` (rule capitalized-phrases-v1, steps 1-2), in order.
    static func capitalizedPhrases(question: String) -> [String] {
        let q = TextMatch.scalars(question)
        let words = splitWords(q)
        var phrases: [String] = []
        var i = 0
        while i < words.count {
            guard startsPhrase(words, i, q) else { i += 1; continue }
            var lastContent = i
            var j = i + 1
            while j < words.count, adjacent(words[j - 1], words[j], q) {
                let w = words[j]
                if (w.capitalized && !functionWords.contains(w.text)) || w.numeric {
                    lastContent = j
                } else if connectors.contains(w.text) || (w.capitalized && articles.contains(w.text)) {
                    // allowed inside, not at the end
                } else {
                    break
                }
                j += 1
            }
            phrases.append(TextMatch.string(q, words[i].range.lowerBound..<words[lastContent].range.upperBound))
            i = lastContent + 1
        }
        return phrases
    }

    private static func startsPhrase(_ words: [Word], _ i: Int, _ q: [Unicode.Scalar]) -> Bool {
        let w = words[i]
        if w.capitalized { return !functionWords.contains(w.text) }
        if w.numeric, i + 1 < words.count, adjacent(w, words[i + 1], q) {
            let next = words[i + 1]
            return next.capitalized && !functionWords.contains(next.text)
        }
        return false
    }

    /// Only spaces between the words, or "." plus spaces after a word of at most three scalars.
    private static func adjacent(_ a: Word, _ b: Word, _ q: [Unicode.Scalar]) -> Bool {
        let gap = q[a.range.upperBound..<b.range.lowerBound]
        guard !gap.isEmpty else { return false }
        var rest = gap[...]
        if rest.first == ".", a.range.count <= 3 { rest = rest.dropFirst() }
        return !rest.isEmpty && rest.allSatisfy { $0.properties.isWhitespace }
    }

    static func splitWords(_ q: [Unicode.Scalar]) -> [Word] {
        var words: [Word] = []
        var i = 0
        while i < q.count {
            if TextMatch.isWordScalar(q[i]) || q[i] == "&" {
                if q[i] == "&" {
                    words.append(Word(range: i..<(i + 1), text: "&", capitalized: false, numeric: false))
                    i += 1
                    continue
                }
                let start = i
                i += 1
                while i < q.count {
                    if TextMatch.isWordScalar(q[i]) { i += 1; continue }
                    let joiner = q[i] == "'" || q[i] == "\u{2019}" || q[i] == "-" || q[i] == "."
                    if joiner, i + 1 < q.count, TextMatch.isWordScalar(q[i + 1]) { i += 2; continue }
                    break
                }
                let first = q[start].properties
                let text = TextMatch.string(TextMatch.folded(q), start..<i)
                words.append(Word(range: start..<i, text: text,
                                  capitalized: first.isUppercase || first.generalCategory == .titlecaseLetter,
                                  numeric: first.numericType != nil))
            } else {
                i += 1
            }
        }
        return words
    }
}

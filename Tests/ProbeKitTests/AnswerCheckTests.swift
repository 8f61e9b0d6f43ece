// answerAppears: the simplified entailment check (case-insensitive, punctuation- and
// whitespace-normalized, whole-word containment).

import Testing
@testable import ProbeKit

@Suite("answerAppears")
struct AnswerCheckTests {
    @Test("Case, punctuation and spacing are normalized")
    func normalization() {
        #expect(answerAppears("Herat", in: "The capital is HERAT."))
        #expect(answerAppears("New York", in: "It departed from new-york, then..."))
        #expect(answerAppears("2,000 km", in: "about 2 000  km long"))
        #expect(answerAppears("Devil's Island", in: "He was held on Devil’s Island."))
        #expect(answerAppears("Durrës", in: "durrës"))
        #expect(normalizedForAnswerCheck("  Hello,  World!! ") == "hello world")
    }

    @Test("Containment is whole-word, diacritics are kept, and an empty answer never appears")
    func boundaries() {
        #expect(!answerAppears("Oran", in: "Oranjestad is nice"))
        #expect(!answerAppears("Malé", in: "Hulhumalé"))
        #expect(!answerAppears("Durrës", in: "Durres"))
        #expect(!answerAppears("?!", in: "?!"))
        #expect(!answerAppears("Paris", in: ""))
        #expect(answerAppears("Paris", in: "Paris"))
    }
}

@Suite("Correctness rules (--correctness)")
struct CorrectnessRuleTests {
    static let context = "Blaise Pascal wrote the Book of Sand in 1650, long before Borges was born."

    @Test("paper counts an echo of the context; no-echo and first-sentence do not, but count the answer in the model's own words")
    func echo() {
        let echo = "The original text is: \"Blaise Pascal wrote the Book of Sand in 1650\". I don't know."
        #expect(CorrectnessRule.paper.answerAppears("Blaise Pascal", in: echo, context: Self.context))
        #expect(!CorrectnessRule.noEcho.answerAppears("Blaise Pascal", in: echo, context: Self.context))
        let own = "It was written by Blaise Pascal."
        for rule in CorrectnessRule.allCases { #expect(rule.answerAppears("Blaise Pascal", in: own, context: Self.context), "\(rule)") }
        // The answer after the echo, in the model's own words, counts under no-echo.
        let after = echo + " The author is Blaise Pascal."
        #expect(CorrectnessRule.noEcho.answerAppears("Blaise Pascal", in: after, context: Self.context))
        // An echo shorter than 6 words is not removed.
        #expect(CorrectnessRule.noEcho.answerAppears("Blaise Pascal", in: "Blaise Pascal wrote it.", context: Self.context))
    }

    @Test("first-sentence: up to . ! ? or a line break after visible text, followed by whitespace or the end")
    func firstSentence() {
        #expect(CorrectnessRule.firstSentence("Paris. Not Lyon.") == "Paris.")
        #expect(CorrectnessRule.firstSentence("\nParis is 3.5 km away! Lyon") == "\nParis is 3.5 km away!")
        #expect(CorrectnessRule.firstSentence("Paris\nLyon") == "Paris")
        #expect(CorrectnessRule.firstSentence("no end") == "no end")
        #expect(!CorrectnessRule.firstSentence.answerAppears("Lyon", in: "Paris. Lyon.", context: ""))
        #expect(CorrectnessRule.paper.answerAppears("Lyon", in: "Paris. Lyon.", context: ""))
    }

    @Test("no-echo keeps the stretches between removed runs apart: an answer never spans a removed run")
    func stretches() {
        let context = "one two three four five six seven"
        #expect(CorrectnessRule.withoutEcho("alpha one two three four five six beta", context: context) == ["alpha", "beta"])
        #expect(!CorrectnessRule.noEcho.answerAppears("alpha beta", in: "alpha one two three four five six beta", context: context))
    }
}

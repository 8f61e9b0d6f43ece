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

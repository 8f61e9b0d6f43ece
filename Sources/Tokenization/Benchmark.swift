// Encoding throughput measurement, used by `cpiscope tokenize --bench-file` (and a later
// `cpiscope bench`). Not a test: it reports rates for BENCHMARKS.md.

/// Timings of repeated `encode` calls on one text.
public struct TokenizerBenchmark: Sendable {
    /// UTF-8 size of the text.
    public var bytes: Int
    /// Unicode scalars in the text.
    public var scalars: Int
    /// Tokens produced.
    public var tokens: Int
    /// Wall-clock seconds of each repetition.
    public var seconds: [Double]

    /// The fastest repetition.
    public var bestSeconds: Double { seconds.min() ?? 0 }
    /// Megabytes (10^6 bytes) of UTF-8 per second, for the fastest repetition.
    public var megabytesPerSecond: Double { bestSeconds > 0 ? Double(bytes) / 1e6 / bestSeconds : 0 }
    /// Tokens per second, for the fastest repetition.
    public var tokensPerSecond: Double { bestSeconds > 0 ? Double(tokens) / bestSeconds : 0 }

    /// One line: size, tokens, best time and rates.
    public var summary: String {
        func f(_ x: Double, _ digits: Int) -> String {
            var p = 1.0
            for _ in 0..<digits { p *= 10 }
            let r = (x * p).rounded() / p
            return "\(r)"
        }
        return "\(bytes) bytes, \(tokens) tokens, best of \(seconds.count): \(f(bestSeconds, 3)) s, "
            + "\(f(megabytesPerSecond, 2)) MB/s, \(Int(tokensPerSecond.rounded())) tokens/s"
    }
}

extension Tokenizer {
    /// Encodes `text` `repetitions` times (each with a fresh per-call BPE cache) and times each run.
    public func benchmarkEncode(_ text: String, repetitions: Int = 3, addSpecialTokens: Bool = false) throws -> TokenizerBenchmark {
        precondition(repetitions > 0, "repetitions must be positive")
        var times: [Double] = []
        var tokens = 0
        let clock = ContinuousClock()
        for _ in 0..<repetitions {
            let start = clock.now
            let e = try encode(text, addSpecialTokens: addSpecialTokens)
            let d = clock.now - start
            times.append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
            tokens = e.count
        }
        return TokenizerBenchmark(bytes: text.utf8.count, scalars: text.unicodeScalars.count, tokens: tokens, seconds: times)
    }
}

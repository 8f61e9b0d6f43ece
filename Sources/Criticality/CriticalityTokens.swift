// From examples to the token sequences that are scored (docs/criticality.md, "The scoring rule"):
// `full = encode(prompt + separator + response)`, `n = len(encode(prompt))`, response tokens `full[n:]`
// followed by EOS — the split Stanford Alpaca's training code uses to mask the prompt's labels. An example
// that cannot be scored (empty response, no response tokens after the split, over the length limit) is
// skipped with its reason; nothing is truncated.
import Models
import Tokenization

/// The two scored sequences of one example.
public struct TokenizedExample: Sendable {
    public var index: Int
    /// Whether the example has a context (in the data, whether or not it could be scored).
    public var hasContext: Bool
    /// nil when the example has no context or is skipped.
    public var withContext: ScoredSequence?
    /// nil when the example is skipped.
    public var withoutContext: ScoredSequence?
    /// Prompt tokens (`n`) with and without the context (0 when absent).
    public var promptTokensWithContext: Int
    public var promptTokensWithoutContext: Int
    public var skipReason: String?

    public var sequences: [ScoredSequence] { [withContext, withoutContext].compactMap { $0 } }
    /// Tokens the pass reads for this example (all sequences, minus each last token).
    public var inputTokens: Int { sequences.reduce(0) { $0 + $1.ids.count - 1 } }
    public var scoredTokens: Int { sequences.reduce(0) { $0 + $1.scored } }
}

public enum CriticalityTokens {
    /// Tokenizes every example under `template`. `eos` is appended to each response when given;
    /// `limit` is the longest sequence (prompt + response + EOS) accepted, `limitByModel` says whose limit it is.
    public static func tokenize(_ examples: [InstructionExample], template: InstructionTemplate, tokenizer: Tokenizer,
                                eos: Int?, limit: Int, limitByModel: Bool) throws -> [TokenizedExample] {
        try examples.map { e in
            var t = TokenizedExample(index: e.index, hasContext: e.hasContext, withContext: nil, withoutContext: nil, promptTokensWithContext: 0,
                                     promptTokensWithoutContext: 0, skipReason: e.skipReason)
            if t.skipReason != nil { return t }
            if e.response.isEmpty { t.skipReason = "empty response"; return t }
            if let chat = template.chat {
                func chatSequence(withContext: Bool, which: String) throws -> (ScoredSequence?, Int, String?) {
                    let (prompt, full) = try chat.render(e, withContext: withContext)
                    guard full.hasPrefix(prompt) else {
                        return (nil, 0, "the chat template renders the conversation's start differently once the response follows, so the response cannot be cut out")
                    }
                    let p = try tokenizer.encode(prompt, addSpecialTokens: false).ids
                    let f = try tokenizer.encode(full, addSpecialTokens: false).ids
                    if p.isEmpty { return (nil, 0, "the prompt \(which) has no tokens") }
                    guard f.count > p.count, f.starts(with: p) else {
                        return (nil, p.count, "the response's first token merges with the end of the generation prompt \(which)")
                    }
                    if f.count > limit {
                        return (nil, p.count, "\(f.count) tokens \(which), over the \(limitByModel ? "model's position limit" : "--max-tokens limit") of \(limit)")
                    }
                    return (ScoredSequence(ids: f, scored: f.count - p.count), p.count, nil)
                }
                let (without, nWithout, whyWithout) = try chatSequence(withContext: false, which: "without context")
                t.promptTokensWithoutContext = nWithout
                if let why = whyWithout { t.skipReason = why; return t }
                if e.context != nil {
                    let (with, nWith, whyWith) = try chatSequence(withContext: true, which: "with context")
                    t.promptTokensWithContext = nWith
                    if let why = whyWith { t.skipReason = why; return t }
                    t.withContext = with
                }
                t.withoutContext = without
                return t
            }
            func sequence(_ prompt: String, which: String) throws -> (ScoredSequence?, Int, String?) {
                let n = try tokenizer.encode(prompt, addSpecialTokens: true).ids.count
                var full = try tokenizer.encode(prompt + template.separator + e.response, addSpecialTokens: true).ids
                if let eos { full.append(eos) }
                let scored = full.count - n
                if n == 0 { return (nil, n, "the prompt \(which) has no tokens") }
                if scored < 1 { return (nil, n, "the response adds no tokens after the prompt \(which)") }
                if full.count > limit {
                    return (nil, n, "\(full.count) tokens \(which), over the \(limitByModel ? "model's position limit" : "--max-tokens limit") of \(limit)")
                }
                return (ScoredSequence(ids: full, scored: scored), n, nil)
            }
            let (without, nWithout, whyWithout) = try sequence(template.promptWithoutContext(e), which: "without context")
            t.promptTokensWithoutContext = nWithout
            if let why = whyWithout { t.skipReason = why; return t }
            if let prompt = template.promptWithContext(e) {
                let (with, nWith, whyWith) = try sequence(prompt, which: "with context")
                t.promptTokensWithContext = nWith
                if let why = whyWith { t.skipReason = why; return t }
                t.withContext = with
            }
            t.withoutContext = without
            return t
        }
    }

    /// The scoring batches of a job, in order: consecutive examples whose sequences together stay within
    /// `tokenBudget` input tokens and `logitRowBudget` scored rows (an example larger than either is a batch
    /// of its own). The one batching rule: a run scores these batches and example shards split between
    /// them, so a merged file equals a single-process run.
    public static func batches(_ examples: [TokenizedExample], tokenBudget: Int, logitRowBudget: Int) -> [[Int]] {
        var out: [[Int]] = [], batch: [Int] = []
        var tokens = 0, rows = 0
        for (k, e) in examples.enumerated() where !e.sequences.isEmpty {
            if !batch.isEmpty && (tokens + e.inputTokens > tokenBudget || rows + e.scoredTokens > logitRowBudget) {
                out.append(batch); batch = []; tokens = 0; rows = 0
            }
            batch.append(k)
            tokens += e.inputTokens
            rows += e.scoredTokens
        }
        if !batch.isEmpty { out.append(batch) }
        return out
    }
}

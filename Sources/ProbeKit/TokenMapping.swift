// Token-space mapping: a BuiltPrompt through a tokenizer, giving the prompt ids, the answer ids and,
// for each span kind, the prompt positions whose characters overlap the span.
//
// Rules (issue #4, docs/probes-and-templates.md):
//  - The prompt and the full texts (prompt + separator + answer) are encoded with special tokens.
//  - When the prompt's ids are a prefix of the full text's ids, the answer ids are the rest.
//    Otherwise the answer ids are the full text's tokens whose start offset is >= the prompt's
//    length in scalars; a token that starts before and ends after that point "straddles" the
//    boundary: it is not an answer token, and the boundary records it.
//    Zero-width tokens after the prompt (an appended EOS) are never answer tokens.
//  - A token belongs to a span when its character range overlaps the span's (zero-width tokens
//    overlap nothing). `bos` is position 0 when that token is zero-width at offset 0 (a special
//    token the tokenizer added); `other` is every prompt position in no other span.

/// The tokenizer interface ProbeKit needs; the real `Tokenizer` conforms in the integration layer.
public protocol TextEncoder: Sendable {
    /// Token ids of `text` and, per token, its range in Unicode scalars of `text`
    /// (zero-width for special tokens such as BOS, e.g. 0..<0).
    func encodeWithOffsets(_ text: String, addSpecialTokens: Bool) throws -> (ids: [Int], offsets: [Range<Int>])
}

/// How the answer's tokens were separated from the prompt's.
public enum TokenBoundary: Sendable, Equatable {
    /// The prompt's ids are a prefix of the full text's ids.
    case promptIsPrefix
    /// Not a prefix; split by character offset, and no token straddles the boundary.
    case splitByOffset
    /// Not a prefix; full-text token `position` (id `tokenID`, characters `range`) straddles the boundary.
    case straddling(position: Int, tokenID: Int, range: Range<Int>)
}

/// An answer continuation in token space.
public struct AnswerTokens: Sendable, Equatable {
    /// The answer's token ids.
    public let ids: [Int]
    /// The full text's tokens before the answer ones: the teacher-forcing prefix. Equal to the prompt
    /// ids when `boundary == .promptIsPrefix`; includes a straddling token otherwise.
    public let prefixIDs: [Int]
    public let boundary: TokenBoundary
}

/// A probe in token space.
public struct TokenizedProbe: Sendable, Equatable {
    public let probeID: String
    /// Prompt token ids, `[pos]`.
    public let promptIDs: [Int]
    /// Prompt token ranges in Unicode scalars of the prompt, `[pos]`.
    public let promptOffsets: [Range<Int>]
    /// The context answer's ids (`contextAnswer.ids`).
    public var answerIDs: [Int] { contextAnswer.ids }
    /// The memorized answer's ids (`memoryAnswer.ids`).
    public var memoryAnswerIDs: [Int] { memoryAnswer.ids }
    public let contextAnswer: AnswerTokens
    public let memoryAnswer: AnswerTokens
    /// The last prompt token's position (where the next-token distribution is read).
    public let answerPosition: Int
    /// Prompt positions of each span kind (every kind has an entry; empty when missing).
    public let spanPositions: [SpanKind: [Int]]
    /// Status of each span kind in token space.
    public let spanStatus: [SpanKind: SpanStatus]

    /// Encodes `built`'s prompt and full texts with `encoder` and maps spans to positions.
    public init(_ built: BuiltPrompt, encoder: some TextEncoder) throws {
        let id = built.probeID
        let special = built.addSpecialTokens
        let prompt = try Self.encode(encoder, built.prompt, length: built.promptLength, probeID: id, what: "prompt", addSpecialTokens: special)
        guard !prompt.ids.isEmpty else { throw ProbeKitError.emptyPromptTokens(probeID: id) }
        probeID = id
        promptIDs = prompt.ids
        promptOffsets = prompt.offsets
        answerPosition = prompt.ids.count - 1
        contextAnswer = try Self.answerTokens(encoder, built.fullText, prompt: prompt, promptLength: built.promptLength,
                                              probeID: id, which: "context answer", answer: built.answer, addSpecialTokens: special)
        memoryAnswer = try Self.answerTokens(encoder, built.memoryFullText, prompt: prompt,
                                             promptLength: built.promptLength, probeID: id,
                                             which: "memorized answer", answer: built.memoryAnswer, addSpecialTokens: special)

        var positions: [SpanKind: [Int]] = [:]
        var status: [SpanKind: SpanStatus] = [:]
        var claimed = [Bool](repeating: false, count: prompt.ids.count)
        for kind in SpanKind.textKinds {
            let ranges = built.spans[kind] ?? []
            let textStatus = built.spanStatus[kind] ?? .missing(reason: "not located")
            var hit: [Int] = []
            if textStatus.isFound {
                for (pos, r) in prompt.offsets.enumerated() where !r.isEmpty && ranges.contains(where: { $0.overlaps(r) }) {
                    hit.append(pos)
                    claimed[pos] = true
                }
            }
            // An empty context (the corrupted prompt of `attribute --baseline corrupt:no-context`) has no tokens
            // and is recorded missing; a context with text that no token covers is an error.
            if kind == .context && hit.isEmpty && ranges.contains(where: { !$0.isEmpty }) {
                throw ProbeKitError.contextNotInPrompt(probeID: id, template: built.templateName,
                                                       detail: "no prompt token overlaps the context characters")
            }
            positions[kind] = hit
            if !textStatus.isFound {
                status[kind] = textStatus
            } else if hit.isEmpty {
                status[kind] = .missing(reason: "no prompt token overlaps the \(kind.rawValue) characters")
            } else {
                status[kind] = .found
            }
        }
        if let first = prompt.offsets.first, first.isEmpty, first.lowerBound == 0 {
            positions[.bos] = [0]
            status[.bos] = .found
            claimed[0] = true
        } else {
            positions[.bos] = []
            status[.bos] = .missing(reason: "position 0 is a text token, not a special BOS token")
        }
        // The attention sink: position 0 whatever it holds, so its mass never lands in `other`.
        if !claimed.isEmpty {
            positions[.sink] = [0]
            status[.sink] = .found
            claimed[0] = true
        } else {
            positions[.sink] = []
            status[.sink] = .missing(reason: "the prompt has no tokens")
        }
        let other = claimed.indices.filter { !claimed[$0] }
        positions[.other] = other
        status[.other] = other.isEmpty ? .missing(reason: "every prompt position belongs to another span") : .found
        spanPositions = positions
        spanStatus = status
    }

    private static func encode(_ encoder: some TextEncoder, _ text: String, length: Int, probeID: String,
                               what: String, addSpecialTokens: Bool) throws -> (ids: [Int], offsets: [Range<Int>]) {
        let out: (ids: [Int], offsets: [Range<Int>])
        do {
            out = try encoder.encodeWithOffsets(text, addSpecialTokens: addSpecialTokens)
        } catch {
            throw ProbeKitError.encoderFailed(probeID: probeID, text: what, detail: ProbeSetLoader.describe(error))
        }
        guard out.ids.count == out.offsets.count else {
            throw ProbeKitError.encoderOutputInvalid(
                probeID: probeID, text: what, detail: "\(out.ids.count) ids but \(out.offsets.count) offsets")
        }
        if let bad = out.offsets.firstIndex(where: { $0.lowerBound < 0 || $0.upperBound > length }) {
            throw ProbeKitError.encoderOutputInvalid(
                probeID: probeID, text: what,
                detail: "token \(bad) spans characters \(out.offsets[bad].lowerBound) to \(out.offsets[bad].upperBound), outside the text's \(length) characters")
        }
        if let bad = out.ids.firstIndex(where: { $0 < 0 }) {
            throw ProbeKitError.encoderOutputInvalid(probeID: probeID, text: what, detail: "token \(bad) has a negative id")
        }
        return out
    }

    private static func answerTokens(_ encoder: some TextEncoder, _ fullText: String,
                                     prompt: (ids: [Int], offsets: [Range<Int>]), promptLength: Int,
                                     probeID: String, which: String, answer: String, addSpecialTokens: Bool) throws -> AnswerTokens {
        let fullLength = fullText.unicodeScalars.count
        let full = try encode(encoder, fullText, length: fullLength, probeID: probeID, what: "prompt + \(which)",
                              addSpecialTokens: addSpecialTokens)
        let n = prompt.ids.count
        if full.ids.count > n, Array(full.ids[..<n]) == prompt.ids {
            let ids = zip(full.ids[n...], full.offsets[n...]).filter { !$0.1.isEmpty }.map(\.0)
            guard !ids.isEmpty else {
                throw ProbeKitError.answerTokenizesToNothing(
                    probeID: probeID, which: which, answer: answer,
                    detail: "the full text adds only zero-width tokens after the prompt's \(n) tokens")
            }
            return AnswerTokens(ids: ids, prefixIDs: prompt.ids, boundary: .promptIsPrefix)
        }
        var ids: [Int] = [], prefix: [Int] = []
        var straddle: TokenBoundary = .splitByOffset
        for (pos, (tid, r)) in zip(full.ids, full.offsets).enumerated() {
            if r.lowerBound >= promptLength {
                if !r.isEmpty { ids.append(tid) }
            } else {
                prefix.append(tid)
                if r.upperBound > promptLength, case .splitByOffset = straddle {
                    straddle = .straddling(position: pos, tokenID: tid, range: r)
                }
            }
        }
        guard !ids.isEmpty else {
            let detail: String
            if case let .straddling(pos, _, r) = straddle {
                detail = "full-text token \(pos) (characters \(r)) straddles the prompt's end at character "
                    + "\(promptLength) and no token starts after it"
            } else {
                detail = "no token of the full text starts at or after character \(promptLength)"
            }
            throw ProbeKitError.answerTokenizesToNothing(probeID: probeID, which: which, answer: answer, detail: detail)
        }
        return AnswerTokens(ids: ids, prefixIDs: prefix, boundary: straddle)
    }
}

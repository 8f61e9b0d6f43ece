// Greedy decoding with a KV cache, and teacher-forced scoring of continuations.
import TensorCore

/// When generation stops.
public struct StopConditions: Sendable {
    public var maxNewTokens: Int
    /// Token ids that end generation (not included in the output).
    public var stopTokens: Set<Int>
    /// Stop when the decoded text contains one of these strings at or after its first visible
    /// character (see `cut(_:)`; checked through the caller's decoder).
    public var stopStrings: [String]

    public init(maxNewTokens: Int, stopTokens: Set<Int> = [], stopStrings: [String] = []) {
        self.maxNewTokens = maxNewTokens
        self.stopTokens = stopTokens
        self.stopStrings = stopStrings
    }

    /// The stop rule for stop strings, in words for run files and docs.
    public static let stopStringRule = "a stop string ends the generation only where it occurs at or after the first non-whitespace character of the decoded text; the text is cut before it"

    /// Applies the stop rule to a decoded generation: returns the text before the first stop string that
    /// occurs at or after the first non-whitespace character, and whether one did.
    ///
    /// Instruction-tuned models often open their response with a newline ("### Response:\n…", the tulu
    /// turn, chat templates); a stop string such as "\n" must not end a generation that has produced no
    /// visible text yet, or every answer is empty (issue 13). Leading whitespace is kept in the text.
    public func cut(_ text: String) -> (text: String, stopped: Bool) {
        guard let visible = text.firstIndex(where: { !$0.isWhitespace }) else { return (text, false) }
        var first: String.Index? = nil
        for s in stopStrings where !s.isEmpty {
            if let r = text.range(of: s, range: visible..<text.endIndex), first.map({ r.lowerBound < $0 }) ?? true {
                first = r.lowerBound
            }
        }
        guard let first else { return (text, false) }
        return (String(text[..<first]), true)
    }
}

extension DecoderModel {
    /// A KV cache sized for this model.
    public func makeCache(capacity: Int) -> KVCache {
        KVCache(layers: config.layers, kvHeads: config.kvHeads, dHead: config.dHead, capacity: capacity)
    }
}

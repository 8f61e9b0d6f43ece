// tokenizer.json `padding` and `truncation`: read, reported, never applied.
//
// Python `tokenizers` applies both in `Tokenizer.encode` when the file carries them (some published
// tokenizers pad to 512, or truncate). `transformers` 5.24 turns them off for every call that does
// not ask for padding or truncation (`TokenizersBackend.set_truncation_and_padding` calls
// `no_padding()` / `no_truncation()`), which is how a model is run on a prompt. The probe job must
// measure each prompt whole: padding would move the answer position and add tokens the model
// attends to, truncation would cut the context. So cpiscope never pads or truncates; it reads the
// two sections only to say that they were ignored (`Tokenizer.ignoredSections`; `cpiscope tokenize`
// prints a note). The ids are those of Python `tokenizers` after `no_padding()` and `no_truncation()`.
import StrictJSON

/// A section of tokenizer.json that was read but deliberately not applied.
public struct IgnoredSection: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case padding, truncation
    }

    public let kind: Kind
    /// What the section asks for, e.g. `pad every sequence to 512 tokens with "<pad>" on the right`.
    public let summary: String

    /// Why such sections are ignored, in one sentence.
    public static let reason = "cpiscope never pads or truncates a prompt (transformers turns both off unless a call asks for them); "
        + "the ids are those of Python tokenizers after no_padding() and no_truncation()"

    /// The `padding` and `truncation` sections present (not null) in a tokenizer.json root.
    static func find(in root: JSONField) -> [IgnoredSection] {
        var out: [IgnoredSection] = []
        for kind in Kind.allCases {
            guard let section = try? root.optionalChild(kind.rawValue) else { continue }
            let summary = kind == .padding ? paddingSummary(section.value) : truncationSummary(section.value)
            out.append(IgnoredSection(kind: kind, summary: summary))
        }
        return out
    }

    /// `{"strategy": {"Fixed": 512} | "BatchLongest", "direction", "pad_to_multiple_of", "pad_token", ...}`.
    private static func paddingSummary(_ v: JSONValue) -> String {
        var s: String
        if let n = v["strategy"]?["Fixed"]?.int {
            s = "pad every sequence to \(n) tokens"
        } else if v["strategy"]?.string == "BatchLongest" {
            s = "pad to the longest sequence of a batch"
        } else {
            s = "pad"
        }
        if let m = v["pad_to_multiple_of"]?.int { s += ", a multiple of \(m)" }
        if let t = v["pad_token"]?.string { s += " with \(quoted(t))" }
        if let d = v["direction"]?.string { s += " on the \(d.lowercased())" }
        return s
    }

    /// `{"max_length": 512, "strategy": "LongestFirst", "direction": "Right", "stride": 0}`.
    private static func truncationSummary(_ v: JSONValue) -> String {
        var s = v["max_length"]?.int.map { "truncate to \($0) tokens" } ?? "truncate"
        if let d = v["direction"]?.string { s += " from the \(d.lowercased())" }
        return s
    }
}

// Post-processors: add special tokens around an encoding and adjust offsets.
// Reference: `tokenizers/src/processors/{template.rs,sequence.rs}` and
// `tokenizers/src/pre_tokenizers/byte_level.rs` (`process_offsets`).
import StrictJSON

/// An encoding under construction: parallel arrays.
struct RawEncoding: Sendable {
    var ids: [Int] = []
    var tokens: [String] = []
    var offsets: [Range<Int>] = []
    var special: [Bool] = []

    mutating func append(id: Int, token: String, offset: Range<Int>, special isSpecial: Bool) {
        ids.append(id)
        tokens.append(token)
        offsets.append(offset)
        special.append(isSpecial)
    }
}

protocol PostProcessor: Sendable {
    func process(_ e: inout RawEncoding, addSpecialTokens: Bool)
}

/// `ByteLevel` post-processor: with `trim_offsets`, offsets exclude leading/trailing spaces
/// (Ġ or whitespace) of each token, except the single prefix space of a first token when
/// `add_prefix_space` is set.
struct ByteLevelPostProcessor: PostProcessor {
    let addPrefixSpace: Bool
    let trimOffsets: Bool

    func process(_ e: inout RawEncoding, addSpecialTokens: Bool) {
        guard trimOffsets else { return }
        let space = ByteLevelAlphabet.byteToScalar[0x20]
        func isSpace(_ c: Unicode.Scalar) -> Bool { c == space || c.properties.isWhitespace }
        for i in e.ids.indices {
            let scalars = Array(e.tokens[i].unicodeScalars)
            var leading = 0
            while leading < scalars.count && isSpace(scalars[leading]) { leading += 1 }
            var trailing = 0
            while trailing < scalars.count && isSpace(scalars[scalars.count - 1 - trailing]) { trailing += 1 }
            guard leading > 0 || trailing > 0 else { continue }
            var lo = e.offsets[i].lowerBound
            var hi = e.offsets[i].upperBound
            if leading > 0 {
                let isFirst = i == 0 || lo == 0
                if isFirst && addPrefixSpace && leading == 1 { leading = 0 }
                lo = min(lo + leading, hi)
            }
            if trailing > 0 && hi >= trailing {
                hi = max(hi - trailing, lo)
            }
            e.offsets[i] = lo..<hi
        }
    }
}

/// One piece of a template: the input sequence, or a special token (by its key in `special_tokens`).
enum TemplatePiece: Sendable {
    case sequence
    case special(ids: [Int], tokens: [String])
}

/// `TemplateProcessing` for single sequences: e.g. `<s> $A` puts BOS before the text.
struct TemplatePostProcessor: PostProcessor {
    let single: [TemplatePiece]

    func process(_ e: inout RawEncoding, addSpecialTokens: Bool) {
        guard addSpecialTokens else { return }
        var out = RawEncoding()
        for piece in single {
            switch piece {
            case .sequence:
                out.ids += e.ids
                out.tokens += e.tokens
                out.offsets += e.offsets
                out.special += e.special
            case .special(let ids, let tokens):
                for (id, t) in zip(ids, tokens) { out.append(id: id, token: t, offset: 0..<0, special: true) }
            }
        }
        e = out
    }

    /// First id of the special piece before / after `$A`, if any.
    var leadingSpecialID: Int? {
        if case .special(let ids, _)? = single.first { return ids.first }
        return nil
    }
    var trailingSpecialID: Int? {
        guard single.count > 1, case .special(let ids, _)? = single.last else { return nil }
        return ids.first
    }
}

/// `Sequence`: each post-processor in turn.
struct SequencePostProcessor: PostProcessor {
    let processors: [any PostProcessor]
    func process(_ e: inout RawEncoding, addSpecialTokens: Bool) {
        for p in processors { p.process(&e, addSpecialTokens: addSpecialTokens) }
    }
}

func makePostProcessor(_ f: JSONField) throws(TokenizationError) -> any PostProcessor {
    let type = try f.typeName()
    switch type {
    case "ByteLevel":
        return ByteLevelPostProcessor(addPrefixSpace: try f.optionalBool("add_prefix_space") ?? true,
                                      trimOffsets: try f.optionalBool("trim_offsets") ?? true)
    case "TemplateProcessing":
        let specialField = try f.optionalChild("special_tokens")
        var specials: [ExactString: (ids: [Int], tokens: [String])] = [:]
        if let specialField {
            for (key, value) in try specialField.object() {
                let entry = JSONField(value, path: "\(specialField.path).\(key)", file: f.file)
                let ids = try entry.child("ids").array().map { (x) throws(TokenizationError) in try x.int() }
                let tokens = try entry.child("tokens").array().map { (x) throws(TokenizationError) in try x.string() }
                guard ids.count == tokens.count else { throw entry.invalid("`ids` and `tokens` have different lengths") }
                specials[key.exact] = (ids, tokens)
            }
        }
        let singleField = try f.child("single")
        var pieces: [TemplatePiece] = []
        // The template is an array of {"Sequence": {...}} / {"SpecialToken": {...}}, or a string "<s> $A".
        var items: [(kind: String, id: String, field: JSONField)] = []
        if case .string(let s) = singleField.value {
            for word in s.split(separator: " ") {
                let name = word.split(separator: ":", maxSplits: 1).first.map(String.init) ?? String(word)
                if name.hasPrefix("$") { items.append(("Sequence", String(name.dropFirst()), singleField)) }
                else { items.append(("SpecialToken", name, singleField)) }
            }
        } else {
            for item in try singleField.array() {
                if let seq = try item.optionalChild("Sequence") {
                    items.append(("Sequence", try seq.child("id").string(), seq))
                } else if let sp = try item.optionalChild("SpecialToken") {
                    items.append(("SpecialToken", try sp.child("id").string(), sp))
                } else {
                    throw item.invalid("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}")
                }
            }
        }
        for item in items {
            if item.kind == "Sequence" {
                guard item.id == "A" || item.id.isEmpty || item.id == "0" else {
                    throw item.field.invalid("the single-sequence template may only use sequence A, not \(quoted(item.id))")
                }
                pieces.append(.sequence)
            } else {
                guard let sp = specials[item.id.exact] else {
                    throw TokenizationError.invalidValue(file: f.file, field: "\(f.path).special_tokens",
                                                         reason: "missing the special token \(quoted(item.id)) used by the template")
                }
                pieces.append(.special(ids: sp.ids, tokens: sp.tokens))
            }
        }
        return TemplatePostProcessor(single: pieces)
    case "Sequence":
        var list: [any PostProcessor] = []
        for item in try f.child("processors").array() { list.append(try makePostProcessor(item)) }
        return SequencePostProcessor(processors: list)
    default:
        throw TokenizationError.unsupportedComponent(file: f.file, field: f.path, type: type)
    }
}

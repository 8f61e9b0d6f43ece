// Normalizers: text clean-up applied before pre-tokenization, with alignments kept.
// Reference: `tokenizers/src/normalizers/*.rs`. Built from the `"normalizer"` field of
// tokenizer.json by `makeNormalizer`, keyed on `"type"`.

protocol Normalizer: Sendable {
    func normalize(_ s: inout NormalizedString) throws(TokenizationError)
}

/// `Sequence`: each normalizer in turn.
struct SequenceNormalizer: Normalizer {
    let normalizers: [any Normalizer]
    func normalize(_ s: inout NormalizedString) throws(TokenizationError) {
        for n in normalizers { try n.normalize(&s) }
    }
}

/// `NFC`, `NFD`, `NFKC`, `NFKD`.
struct UnicodeNormalizer: Normalizer {
    let form: NormalForm
    func normalize(_ s: inout NormalizedString) throws(TokenizationError) {
        if let items = normalizeWithChanges(s.scalars, form: form) { s.transform(items) }
    }
}

/// `Lowercase`: Rust `char::to_lowercase` per scalar (full, context-free mapping); extra scalars
/// of a multi-scalar mapping are insertions.
struct LowercaseNormalizer: Normalizer {
    func normalize(_ s: inout NormalizedString) throws(TokenizationError) {
        var changed = false
        for c in s.scalars where !(c.isASCII && !(0x41...0x5A).contains(c.value)) { changed = true; break }
        guard changed else { return }
        var items: [(Unicode.Scalar, Int)] = []
        items.reserveCapacity(s.count)
        for c in s.scalars {
            if c.isASCII {
                let v = c.value
                items.append(((0x41...0x5A).contains(v) ? Unicode.Scalar(v + 0x20)! : c, 0))
                continue
            }
            var first = true
            for l in c.properties.lowercaseMapping.unicodeScalars {
                items.append((l, first ? 0 : 1))
                first = false
            }
            if first { items.append((c, 0)) }
        }
        s.transform(items)
    }
}

/// `Prepend`: adds `prepend` before a non-empty string.
struct PrependNormalizer: Normalizer {
    let prepend: [Unicode.Scalar]
    func normalize(_ s: inout NormalizedString) throws(TokenizationError) {
        if !s.isEmpty { s.prepend(prepend) }
    }
}

/// `Replace`: every match of `pattern` becomes `content`.
struct ReplaceNormalizer: Normalizer {
    let pattern: TextPattern
    let content: [Unicode.Scalar]
    func normalize(_ s: inout NormalizedString) throws(TokenizationError) {
        s.replace(try pattern.findMatches(s.scalars), with: content)
    }
}

/// `Strip`: removes leading and/or trailing whitespace (`NormalizedString::lrstrip`).
struct StripNormalizer: Normalizer {
    let left: Bool
    let right: Bool
    func normalize(_ s: inout NormalizedString) throws(TokenizationError) {
        var lo = 0
        var hi = s.count
        if left { while lo < hi && s.scalars[lo].properties.isWhitespace { lo += 1 } }
        if right { while hi > lo && s.scalars[hi - 1].properties.isWhitespace { hi -= 1 } }
        if lo == 0 && hi == s.count { return }
        s.scalars = Array(s.scalars[lo..<hi])
        s.alignments = Array(s.alignments[lo..<hi])
    }
}

/// Reads the `{"String": s}` / `{"Regex": r}` pattern object used by Split and Replace.
func makeTextPattern(_ f: JSONField) throws(TokenizationError) -> TextPattern {
    if let s = try f.optionalChild("String") {
        let lit = Array(try s.string().unicodeScalars)
        if lit.isEmpty { throw s.invalid("an empty pattern is not supported") }
        return .literal(lit)
    }
    if let r = try f.optionalChild("Regex") {
        let pattern = try r.string()
        return .regex(try CompiledRegex(pattern: pattern, file: r.file, field: r.path))
    }
    throw f.invalid("expected {\"String\": ...} or {\"Regex\": ...}")
}

func makeNormalizer(_ f: JSONField) throws(TokenizationError) -> any Normalizer {
    let type = try f.typeName()
    switch type {
    case "Sequence":
        var list: [any Normalizer] = []
        for item in try f.child("normalizers").array() { list.append(try makeNormalizer(item)) }
        return SequenceNormalizer(normalizers: list)
    case "NFC": return UnicodeNormalizer(form: .nfc)
    case "NFD": return UnicodeNormalizer(form: .nfd)
    case "NFKC": return UnicodeNormalizer(form: .nfkc)
    case "NFKD": return UnicodeNormalizer(form: .nfkd)
    case "Lowercase": return LowercaseNormalizer()
    case "Prepend": return PrependNormalizer(prepend: Array(try f.child("prepend").string().unicodeScalars))
    case "Replace":
        return ReplaceNormalizer(pattern: try makeTextPattern(try f.child("pattern")),
                                 content: Array(try f.child("content").string().unicodeScalars))
    case "Strip":
        return StripNormalizer(left: try f.optionalBool("strip_left") ?? true, right: try f.optionalBool("strip_right") ?? true)
    default:
        throw TokenizationError.unsupportedComponent(file: f.file, field: f.path, type: type)
    }
}

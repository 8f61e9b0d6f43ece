// Decoders: turn token strings back into text.
// Reference: `tokenizers/src/decoders/*.rs` and `pre_tokenizers/{byte_level.rs,metaspace.rs}`.
// Each decoder maps a list of token strings to a new list (`decode_chain`); `decode` joins the
// final list.

protocol TokenDecoder: Sendable {
    func decodeChain(_ tokens: [String]) -> [String]
}

/// `ByteLevel`: maps the printable stand-ins back to bytes and decodes UTF-8 lossily
/// (a token with a character outside the table contributes its own UTF-8 bytes).
struct ByteLevelDecoder: TokenDecoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var bytes: [UInt8] = []
        let table = ByteLevelAlphabet.scalarToByte
        for t in tokens {
            var tokenBytes: [UInt8] = []
            var ok = true
            for c in t.unicodeScalars {
                guard let b = table[c.value] else { ok = false; break }
                tokenBytes.append(b)
            }
            bytes += ok ? tokenBytes : Array(t.utf8)
        }
        return [String(decoding: bytes, as: UTF8.self)]
    }
}

/// `Metaspace`: the replacement character becomes a space; in the first token it is dropped
/// (unless `prepend_scheme` is never).
struct MetaspaceDecoder: TokenDecoder {
    let replacement: Unicode.Scalar
    let prependScheme: PrependScheme
    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, t in
            var s = String()
            for c in t.unicodeScalars {
                if c == replacement {
                    if i == 0 && prependScheme != .never { continue }
                    s.unicodeScalars.append(" ")
                } else {
                    s.unicodeScalars.append(c)
                }
            }
            return s
        }
    }
}

/// `ByteFallback`: runs of `<0xXX>` tokens become the text of their bytes, or one U+FFFD per byte
/// when the run is not valid UTF-8.
struct ByteFallbackDecoder: TokenDecoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if let s = String(validating: pending, as: UTF8.self) {
                out.append(s)
            } else {
                out.append(contentsOf: repeatElement("\u{FFFD}", count: pending.count))
            }
            pending.removeAll()
        }
        for t in tokens {
            let u = Array(t.utf8)
            if u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"), u[5] == UInt8(ascii: ">"),
               let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                pending.append(b)
            } else {
                flush()
                out.append(t)
            }
        }
        flush()
        return out
    }
}

/// `Fuse`: all tokens joined into one.
struct FuseDecoder: TokenDecoder {
    func decodeChain(_ tokens: [String]) -> [String] { [tokens.joined()] }
}

/// `Strip`: removes up to `start` leading and `stop` trailing `content` characters of each token.
struct StripDecoder: TokenDecoder {
    let content: Unicode.Scalar
    let start: Int
    let stop: Int
    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { t in
            let chars = Array(t.unicodeScalars)
            var startCut = 0
            for i in 0..<min(start, chars.count) {
                if chars[i] == content { startCut = i + 1 } else { break }
            }
            var stopCut = chars.count
            var i = 0
            while i < stop && i < chars.count {
                let index = chars.count - i - 1
                if chars[index] == content { stopCut = index } else { break }
                i += 1
            }
            if stopCut < startCut { return "" }
            var s = String()
            s.unicodeScalars.append(contentsOf: chars[startCut..<stopCut])
            return s
        }
    }
}

/// `Replace`: every match of `pattern` in each token becomes `content`.
struct ReplaceDecoder: TokenDecoder {
    let pattern: TextPattern
    let content: [Unicode.Scalar]
    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { t in
            var n = NormalizedString(original: Array(t.unicodeScalars))
            // A regex failure (only possible on enormous tokens) leaves the token unchanged.
            guard let matches = try? pattern.findMatches(n.scalars) else { return t }
            n.replace(matches, with: content)
            return n.string
        }
    }
}

/// `Sequence`: each decoder in turn.
struct SequenceDecoder: TokenDecoder {
    let decoders: [any TokenDecoder]
    func decodeChain(_ tokens: [String]) -> [String] {
        var t = tokens
        for d in decoders { t = d.decodeChain(t) }
        return t
    }
}

func makeDecoder(_ f: JSONField) throws(TokenizationError) -> any TokenDecoder {
    let type = try f.typeName()
    switch type {
    case "ByteLevel": return ByteLevelDecoder()
    case "Metaspace":
        return MetaspaceDecoder(replacement: try metaspaceReplacement(f), prependScheme: try metaspacePrependScheme(f))
    case "ByteFallback": return ByteFallbackDecoder()
    case "Fuse": return FuseDecoder()
    case "Strip":
        let contentField = try f.child("content")
        let content = Array(try contentField.string().unicodeScalars)
        guard content.count == 1, let c = content.first else { throw contentField.invalid("must be exactly one character") }
        let start = try f.optionalInt("start") ?? 0
        let stop = try f.optionalInt("stop") ?? 0
        guard start >= 0, stop >= 0 else { throw f.invalid("start and stop must not be negative") }
        return StripDecoder(content: c, start: start, stop: stop)
    case "Replace":
        return ReplaceDecoder(pattern: try makeTextPattern(try f.child("pattern")),
                              content: Array(try f.child("content").string().unicodeScalars))
    case "Sequence":
        var list: [any TokenDecoder] = []
        for item in try f.child("decoders").array() { list.append(try makeDecoder(item)) }
        return SequenceDecoder(decoders: list)
    default:
        throw TokenizationError.unsupportedComponent(file: f.file, field: f.path, type: type)
    }
}

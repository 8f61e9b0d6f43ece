// The BPE model (`tokenizers/src/models/bpe/{model.rs,word.rs,serialization.rs}`).
//
// A word (one pre-tokenized split) starts as one symbol per character (with byte fallback or an
// unknown token for characters not in the vocabulary), then merges are applied by priority: the
// lowest-ranked pair first, the leftmost on ties, using a heap with lazy invalidation exactly as
// `Word::merge_all`. Results are cached per word string for the duration of one `encode` call.
import StrictJSON

/// Per-call cache: word -> its tokens as (id, scalar range in the word).
typealias BPECache = [ExactString: [CachedPiece]]

struct CachedPiece: Sendable {
    var id: Int32
    var start: Int32
    var end: Int32
}

final class BPEModel: Sendable {
    let vocab: [ExactString: Int]
    /// id -> token string; nil where the vocabulary has no such id.  [d_vocab]
    let idToToken: [String?]
    /// (left id, right id) -> (rank << 32 | new id).
    private let merges: [UInt64: UInt64]
    let unkToken: String?
    let unkID: Int?
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// Ids of single-scalar tokens (fast path when there is no prefix/suffix).
    private let scalarIDs: [UInt32: Int32]
    /// Ids of `<0xXX>` byte tokens, -1 where absent.  [256]
    private let byteIDs: [Int]

    static let maxVocabularyID = 1 << 24

    init(_ f: JSONField) throws(TokenizationError) {
        if let dropout = try f.optionalChild("dropout") {
            let d = try dropout.double()
            if d != 0 { throw dropout.invalid("BPE dropout \(d) is random at encode time; only null or 0 is supported") }
        }
        // Vocabulary.
        let vocabField = try f.child("vocab")
        let vocabObject = try vocabField.object()
        var vocab: [ExactString: Int] = [:]
        vocab.reserveCapacity(vocabObject.count)
        var maxID = -1
        for (token, v) in vocabObject {
            guard case .number(let n) = v, let id = n.exactInt, id >= 0 && id < Self.maxVocabularyID else {
                let idField = JSONField(v, path: "\(vocabField.path)[\(quoted(token))]", file: f.file)
                let id = try idField.int()
                throw idField.invalid("id \(id) is outside 0–\(Self.maxVocabularyID - 1)")
            }
            vocab[token.exact] = id
            maxID = max(maxID, id)
        }
        var idToToken = [String?](repeating: nil, count: maxID + 1)
        // Deterministic choice when two tokens share an id: the smallest by UTF-8 bytes.
        for (token, id) in vocab {
            if let current = idToToken[id], !token.string.utf8.lexicographicallyPrecedes(current.utf8) { continue }
            idToToken[id] = token.string
        }
        self.vocab = vocab
        self.idToToken = idToToken

        continuingSubwordPrefix = try f.optionalString("continuing_subword_prefix").flatMap { $0.isEmpty ? nil : $0 }
        endOfWordSuffix = try f.optionalString("end_of_word_suffix").flatMap { $0.isEmpty ? nil : $0 }
        fuseUnk = try f.optionalBool("fuse_unk") ?? false
        byteFallback = try f.optionalBool("byte_fallback") ?? false
        ignoreMerges = try f.optionalBool("ignore_merges") ?? false
        unkToken = try f.optionalString("unk_token")
        unkID = unkToken.flatMap { vocab[$0.exact] }

        // Merges: "a b" strings (lines starting with "#version" skipped) or [a, b] pairs.
        let mergesField = try f.child("merges")
        let prefixBytes = continuingSubwordPrefix?.utf8.count ?? 0
        var merges: [UInt64: UInt64] = [:]
        var rank = 0
        let items = try mergesField.array()
        merges.reserveCapacity(items.count)
        for item in items {
            let a: String
            let b: String
            switch item.value {
            case .string(let line):
                if line.hasPrefix("#version") { continue }
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw item.invalid("a merge must be two tokens separated by one space, got \(quoted(line))") }
                a = String(parts[0])
                b = String(parts[1])
            case .array(let pair):
                guard pair.count == 2, case .string(let x) = pair[0], case .string(let y) = pair[1] else {
                    throw item.invalid("a merge pair must be [string, string]")
                }
                a = x
                b = y
            default:
                throw item.wrongType("a string \"a b\" or a pair [a, b]")
            }
            guard let aID = vocab[a.exact] else { throw .unknownMergeToken(file: f.file, field: item.path, token: a) }
            guard let bID = vocab[b.exact] else { throw .unknownMergeToken(file: f.file, field: item.path, token: b) }
            let bTail = prefixBytes > 0 ? String(decoding: Array(b.utf8).dropFirst(prefixBytes), as: UTF8.self) : b
            let merged = a + bTail
            guard let newID = vocab[merged.exact] else { throw .unknownMergeToken(file: f.file, field: item.path, token: merged) }
            merges[UInt64(aID) << 32 | UInt64(bID)] = UInt64(rank) << 32 | UInt64(newID)
            rank += 1
        }
        self.merges = merges

        var scalarIDs: [UInt32: Int32] = [:]
        for (token, id) in vocab {
            var it = token.string.unicodeScalars.makeIterator()
            if let first = it.next(), it.next() == nil { scalarIDs[first.value] = Int32(id) }
        }
        self.scalarIDs = scalarIDs
        var byteIDs = [Int](repeating: -1, count: 256)
        for b in 0..<256 {
            let hex = String(b, radix: 16, uppercase: true)
            byteIDs[b] = vocab["<0x\(hex.count == 1 ? "0" + hex : hex)>".exact] ?? -1
        }
        self.byteIDs = byteIDs
    }

    var vocabularyCount: Int { vocab.count }

    /// Tokens of one word, with scalar ranges relative to the word.
    func tokenize(_ word: [Unicode.Scalar], cache: inout BPECache) throws(TokenizationError) -> [Token] {
        if word.isEmpty { return [] }
        var key = String()
        key.unicodeScalars.append(contentsOf: word)
        let exactKey = key.exact
        if ignoreMerges, let id = vocab[exactKey] {
            return [Token(id: id, value: key, range: 0..<word.count)]
        }
        let pieces: [CachedPiece]
        if let hit = cache[exactKey] {
            pieces = hit
        } else {
            pieces = try mergeWord(word)
            cache[exactKey] = pieces
        }
        var out: [Token] = []
        out.reserveCapacity(pieces.count)
        for p in pieces {
            let id = Int(p.id)
            out.append(Token(id: id, value: (id < idToToken.count ? idToToken[id] : nil) ?? "", range: Int(p.start)..<Int(p.end)))
        }
        return out
    }

    private struct Symbol {
        var id: Int32
        var prev: Int32
        var next: Int32
        var len: Int32  // UTF-8 bytes of the word covered; 0 = merged away
    }

    private func id(for s: String) -> Int32? { vocab[s.exact].map { Int32($0) } }

    /// `BPE::merge_word` + `Word::merge_all` + offsets, converted from bytes to scalar ranges.
    private func mergeWord(_ word: [Unicode.Scalar]) throws(TokenizationError) -> [CachedPiece] {
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.count)
        var pendingUnk: (id: Int32, len: Int32)? = nil
        func add(_ id: Int32, _ len: Int32) {
            let i = Int32(symbols.count)
            if i > 0 { symbols[Int(i) - 1].next = i }
            symbols.append(Symbol(id: id, prev: i - 1, next: -1, len: len))
        }
        let plain = continuingSubwordPrefix == nil && endOfWordSuffix == nil
        for (i, c) in word.enumerated() {
            let byteLen = Int32(UTF8.width(c))
            var found: Int32?
            var piece: String?
            if plain {
                found = scalarIDs[c.value]
            } else {
                var s = String(Character(c))
                if i > 0, let p = continuingSubwordPrefix { s = p + s }
                if i == word.count - 1, let x = endOfWordSuffix { s += x }
                found = id(for: s)
                piece = s
            }
            if let id = found {
                if let u = pendingUnk { add(u.id, u.len); pendingUnk = nil }
                add(id, byteLen)
                continue
            }
            if byteFallback {
                let bytes = Array((piece ?? String(Character(c))).utf8)
                if bytes.allSatisfy({ byteIDs[Int($0)] >= 0 }) {
                    // The reference adds these without flushing a pending unknown token first.
                    for b in bytes { add(Int32(byteIDs[Int(b)]), 1) }
                    continue
                }
            }
            if let unkToken {
                guard let unkID else {
                    throw TokenizationError.invalidValue(file: "tokenizer.json", field: "model.unk_token",
                                                         reason: "\(quoted(unkToken)) is needed for an unknown character but is not in model.vocab")
                }
                if let u = pendingUnk {
                    if fuseUnk {
                        pendingUnk = (u.id, u.len + byteLen)
                    } else {
                        add(u.id, u.len)
                        pendingUnk = (Int32(unkID), byteLen)
                    }
                } else {
                    pendingUnk = (Int32(unkID), byteLen)
                }
            }
            // No unknown token: the character is dropped, as in the reference.
        }
        if let u = pendingUnk { add(u.id, u.len) }

        // Word::merge_all: heap of (rank, pos, new id), lowest rank then lowest pos first.
        if symbols.count > 1 && !merges.isEmpty {
            var heap = MergeHeap()
            for i in 0..<(symbols.count - 1) {
                if let m = merges[UInt64(UInt32(bitPattern: symbols[i].id)) << 32 | UInt64(UInt32(bitPattern: symbols[i + 1].id))] {
                    heap.push(MergeEntry(rank: UInt32(m >> 32), pos: Int32(i), newID: Int32(truncatingIfNeeded: m & 0xFFFF_FFFF)))
                }
            }
            while let top = heap.pop() {
                let pos = Int(top.pos)
                if symbols[pos].len == 0 { continue }
                if symbols[pos].next == -1 { continue }
                let nextPos = Int(symbols[pos].next)
                let right = symbols[nextPos]
                // Skip expired entries: the pair must still produce the same new id.
                guard let m = merges[UInt64(UInt32(bitPattern: symbols[pos].id)) << 32 | UInt64(UInt32(bitPattern: right.id))],
                      Int32(truncatingIfNeeded: m & 0xFFFF_FFFF) == top.newID else { continue }
                symbols[pos].id = top.newID
                symbols[pos].len += right.len
                symbols[pos].next = right.next
                symbols[nextPos].len = 0
                if right.next > -1 && Int(right.next) < symbols.count {
                    symbols[Int(right.next)].prev = Int32(pos)
                }
                let current = symbols[pos]
                if current.prev >= 0 {
                    let prev = symbols[Int(current.prev)]
                    if let m2 = merges[UInt64(UInt32(bitPattern: prev.id)) << 32 | UInt64(UInt32(bitPattern: current.id))] {
                        heap.push(MergeEntry(rank: UInt32(m2 >> 32), pos: current.prev, newID: Int32(truncatingIfNeeded: m2 & 0xFFFF_FFFF)))
                    }
                }
                let next = Int(current.next)
                if next >= 0 && next < symbols.count {
                    let nextSymbol = symbols[next]
                    if let m2 = merges[UInt64(UInt32(bitPattern: current.id)) << 32 | UInt64(UInt32(bitPattern: nextSymbol.id))] {
                        heap.push(MergeEntry(rank: UInt32(m2 >> 32), pos: Int32(pos), newID: Int32(truncatingIfNeeded: m2 & 0xFFFF_FFFF)))
                    }
                }
            }
        }

        // Offsets: cumulative UTF-8 lengths (as the reference), mapped to scalar ranges:
        // a byte range [a, b) covers scalars charOf(a) ..< charOf(b - 1) + 1.
        var byteToScalar: [Int32] = []
        byteToScalar.reserveCapacity(word.count * 2)
        for (i, c) in word.enumerated() {
            for _ in 0..<UTF8.width(c) { byteToScalar.append(Int32(i)) }
        }
        let totalBytes = byteToScalar.count
        var out: [CachedPiece] = []
        out.reserveCapacity(symbols.count)
        var offset = 0
        for s in symbols where s.len > 0 {
            let a = offset
            let b = offset + Int(s.len)
            offset = b
            let lo = a < totalBytes ? byteToScalar[a] : Int32(word.count)
            let hi = b - 1 < totalBytes ? byteToScalar[b - 1] + 1 : Int32(word.count)
            out.append(CachedPiece(id: s.id, start: lo, end: max(lo, hi)))
        }
        return out
    }
}

struct MergeEntry {
    var rank: UInt32
    var pos: Int32
    var newID: Int32

    @inline(__always)
    func before(_ o: MergeEntry) -> Bool { rank != o.rank ? rank < o.rank : pos < o.pos }
}

/// A binary min-heap of merge candidates.
struct MergeHeap {
    private var items: [MergeEntry] = []

    mutating func push(_ e: MergeEntry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[i].before(items[parent]) {
                items.swapAt(i, parent)
                i = parent
            } else {
                break
            }
        }
    }

    mutating func pop() -> MergeEntry? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var best = i
                if l < n && items[l].before(items[best]) { best = l }
                if r < n && items[r].before(items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}

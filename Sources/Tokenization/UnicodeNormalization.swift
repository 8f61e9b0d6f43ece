// Unicode normalization (NFD, NFKD, NFC, NFKC) that also reports, for every output scalar, how it
// changes the alignment with the input: the `(char, change)` stream consumed by
// `NormalizedString.transform`.
//
// The algorithm follows `unicode_normalization_alignments` as vendored in Hugging Face tokenizers
// (`decompose.rs`, `recompose.rs`): the first scalar of each decomposition has change 0 and the
// others +1; canonical ordering moves changes together with their scalars; when two scalars
// compose, the result gets `change(a) + change(b) - 1`. Character data (decompositions,
// compositions) come from Foundation's normalization of single characters, cached.
import Foundation

enum NormalForm: Sendable {
    case nfd, nfkd, nfc, nfkc

    var compatibility: Bool { self == .nfkd || self == .nfkc }
    var composes: Bool { self == .nfc || self == .nfkc }
}

/// Cached per-scalar Unicode data. Lookups of ASCII scalars never touch the cache.
private final class NormalizationData: @unchecked Sendable {
    private let lock = NSLock()
    private var canonical: [UInt32: [Unicode.Scalar]] = [:]
    private var compatible: [UInt32: [Unicode.Scalar]] = [:]
    private var compositions: [UInt64: UInt32] = [:]  // 0 = no composition

    static let shared = NormalizationData()

    /// The full (recursive) decomposition of `c`.
    func decomposition(_ c: Unicode.Scalar, compatibility: Bool) -> [Unicode.Scalar] {
        if c.value < 0xA0 { return [c] }
        if !compatibility && c.value < 0xC0 { return [c] }
        if let h = Hangul.decompose(c) { return h }
        lock.lock()
        let cached = compatibility ? compatible[c.value] : canonical[c.value]
        lock.unlock()
        if let cached { return cached }
        let s = String(Character(c))
        let d = compatibility ? s.decomposedStringWithCompatibilityMapping : s.decomposedStringWithCanonicalMapping
        let result = Array(d.unicodeScalars)
        lock.lock()
        if compatibility { compatible[c.value] = result } else { canonical[c.value] = result }
        lock.unlock()
        return result
    }

    /// The primary composite of `a` followed by `b`, if any.
    func compose(_ a: Unicode.Scalar, _ b: Unicode.Scalar) -> Unicode.Scalar? {
        // Every second element of a canonical composition is >= U+0300.
        if b.value < 0x300 { return nil }
        // Hangul is composed arithmetically (Foundation on Linux does not compose LV + T).
        if let h = Hangul.compose(a, b) { return h }
        if Hangul.isJamoOrSyllable(a) && Hangul.isJamoOrSyllable(b) { return nil }
        let key = UInt64(a.value) << 32 | UInt64(b.value)
        lock.lock()
        let cached = compositions[key]
        lock.unlock()
        if let cached { return cached == 0 ? nil : Unicode.Scalar(cached) }
        var pair = String()
        pair.unicodeScalars.append(a)
        pair.unicodeScalars.append(b)
        var result: UInt32 = 0
        let composed = Array(pair.precomposedStringWithCanonicalMapping.unicodeScalars)
        if composed.count == 1 {
            // Accept only a composite whose decomposition is exactly decomposition(a) + b, so that
            // a pair that composes only after canonical reordering is not taken as a primary pair.
            let c = composed[0]
            let expected = decomposition(a, compatibility: false) + decomposition(b, compatibility: false)
            if decomposition(c, compatibility: false) == expected { result = c.value }
        }
        lock.lock()
        compositions[key] = result
        lock.unlock()
        return result == 0 ? nil : Unicode.Scalar(result)
    }
}

/// Hangul syllable (de)composition, Unicode Standard section 3.12 "Conjoining Jamo Behavior".
private enum Hangul {
    static let sBase: UInt32 = 0xAC00, lBase: UInt32 = 0x1100, vBase: UInt32 = 0x1161, tBase: UInt32 = 0x11A7
    static let lCount: UInt32 = 19, vCount: UInt32 = 21, tCount: UInt32 = 28
    static let nCount = vCount * tCount, sCount = lCount * nCount

    static func isJamoOrSyllable(_ c: Unicode.Scalar) -> Bool {
        (lBase..<(lBase + lCount)).contains(c.value) || (vBase..<(vBase + vCount)).contains(c.value)
            || ((tBase + 1)..<(tBase + tCount)).contains(c.value) || (sBase..<(sBase + sCount)).contains(c.value)
    }

    static func decompose(_ c: Unicode.Scalar) -> [Unicode.Scalar]? {
        guard (sBase..<(sBase + sCount)).contains(c.value) else { return nil }
        let s = c.value - sBase
        var out = [Unicode.Scalar(lBase + s / nCount)!, Unicode.Scalar(vBase + (s % nCount) / tCount)!]
        if s % tCount != 0 { out.append(Unicode.Scalar(tBase + s % tCount)!) }
        return out
    }

    static func compose(_ a: Unicode.Scalar, _ b: Unicode.Scalar) -> Unicode.Scalar? {
        if (lBase..<(lBase + lCount)).contains(a.value) && (vBase..<(vBase + vCount)).contains(b.value) {
            return Unicode.Scalar(sBase + ((a.value - lBase) * vCount + (b.value - vBase)) * tCount)
        }
        if (sBase..<(sBase + sCount)).contains(a.value) && (a.value - sBase) % tCount == 0
            && ((tBase + 1)..<(tBase + tCount)).contains(b.value) {
            return Unicode.Scalar(a.value + (b.value - tBase))
        }
        return nil
    }
}

@inline(__always)
private func combiningClass(_ c: Unicode.Scalar) -> UInt8 {
    if c.value < 0x300 { return 0 }
    return c.properties.canonicalCombiningClass.rawValue
}

/// Normalizes `input` to `form`, returning `(scalar, change)` pairs for `NormalizedString.transform`,
/// or nil when the text is unchanged (every change 0 and every scalar equal).
func normalizeWithChanges(_ input: [Unicode.Scalar], form: NormalForm) -> [(Unicode.Scalar, Int)]? {
    // Fast path: ASCII is invariant under all four forms.
    if input.allSatisfy({ $0.isASCII }) { return nil }
    let data = NormalizationData.shared

    // 1. Decompose, then order each run of non-starters by combining class (stable).
    var decomposed: [(ccc: UInt8, scalar: Unicode.Scalar, change: Int)] = []
    decomposed.reserveCapacity(input.count + 8)
    var pendingStart = 0
    func sortPending() {
        if decomposed.count - pendingStart > 1 {
            // Stable sort of decomposed[pendingStart...] by ccc (insertion sort: runs are short).
            var i = pendingStart + 1
            while i < decomposed.count {
                let item = decomposed[i]
                var j = i - 1
                while j >= pendingStart && decomposed[j].ccc > item.ccc {
                    decomposed[j + 1] = decomposed[j]
                    j -= 1
                }
                decomposed[j + 1] = item
                i += 1
            }
        }
        pendingStart = decomposed.count
    }
    for c in input {
        let d = data.decomposition(c, compatibility: form.compatibility)
        for (k, dc) in d.enumerated() {
            let cls = combiningClass(dc)
            if cls == 0 { sortPending() }
            decomposed.append((cls, dc, k == 0 ? 0 : 1))
        }
    }
    sortPending()

    var out: [(Unicode.Scalar, Int)] = []
    out.reserveCapacity(decomposed.count)
    if !form.composes {
        for d in decomposed { out.append((d.scalar, d.change)) }
    } else {
        // 2. Canonical composition, as the `Recompositions` iterator.
        var buffer: [(Unicode.Scalar, Int)] = []
        var composee: (Unicode.Scalar, Int)? = nil
        var lastClass: UInt8? = nil
        for d in decomposed {
            let ch = d.scalar
            let change = d.change
            let chClass = d.ccc
            guard let k = composee else {
                if chClass != 0 {
                    out.append((ch, change))
                } else {
                    composee = (ch, change)
                }
                continue
            }
            if let lClass = lastClass {
                if lClass >= chClass {
                    // `ch` is blocked from the composee.
                    if chClass == 0 {
                        out.append(k)
                        out.append(contentsOf: buffer)
                        buffer.removeAll(keepingCapacity: true)
                        composee = (ch, change)
                        lastClass = nil
                        continue
                    }
                    buffer.append((ch, change))
                    lastClass = chClass
                    continue
                }
                if let r = data.compose(k.0, ch) {
                    composee = (r, k.1 + change - 1)
                    continue
                }
                buffer.append((ch, change))
                lastClass = chClass
            } else {
                if let r = data.compose(k.0, ch) {
                    composee = (r, k.1 + change - 1)
                    continue
                }
                if chClass == 0 {
                    out.append(k)
                    composee = (ch, change)
                    continue
                }
                buffer.append((ch, change))
                lastClass = chClass
            }
        }
        if let k = composee { out.append(k) }
        out.append(contentsOf: buffer)
    }

    if out.count == input.count {
        var same = true
        for i in 0..<out.count where out[i].1 != 0 || out[i].0 != input[i] { same = false; break }
        if same { return nil }
    }
    return out
}

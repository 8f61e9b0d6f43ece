// SHA-256 (FIPS 180-4, "Secure Hash Standard", §4.1.2, §4.2.2, §5.3.3, §6.2) of files and bytes, for
// the content hashes recorded in run outputs and adapter summaries. Self-contained: Foundation on Linux
// has no SHA-256 and no crypto package is needed.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SHA256Kernel

/// SHA-256 of files (FIPS 180-4), self-contained so that no crypto library is needed.
public enum ContentHash {
    /// The SHA-256 of a file, as 64 lowercase hex digits (what `sha256sum` prints).
    public static func sha256(file url: URL) throws -> String {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.unreadable(file: url.path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var h = SHA256()
        let chunk = 4 << 20
        let buf = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buf.deallocate() }
        while true {
            let n = read(fd, buf, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw CheckpointError.unreadable(file: url.path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            h.update(UnsafeRawBufferPointer(start: buf, count: n))
        }
        return h.hexDigest()
    }

    /// The SHA-256 of bytes, as hex.
    public static func sha256(_ bytes: [UInt8]) -> String {
        var h = SHA256()
        bytes.withUnsafeBytes { h.update($0) }
        return h.hexDigest()
    }

    /// "sha256:<hex>" of the manifest "<file hex>  <file name>\n" (sorted by name), and each file's hex.
    public static func manifest(_ files: [URL]) throws -> (content: String, files: [String: String]) {
        var each: [String: String] = [:]
        for f in files { each[f.lastPathComponent] = try sha256(file: f) }
        let text = each.sorted(by: { $0.key < $1.key }).map { "\($0.value)  \($0.key)\n" }.joined()
        return ("sha256:" + sha256(Array(text.utf8)), each)
    }
}

/// Streaming SHA-256 (FIPS 180-4 §6.2).
public struct SHA256 {
    public init() {}
    private var h: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
        (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
    private var pending = [UInt8](repeating: 0, count: 64)
    private var pendingCount = 0
    private var length: UInt64 = 0   // bytes


    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard let base = data.baseAddress, data.count > 0 else { return }
        length &+= UInt64(data.count)
        var p = base
        var left = data.count
        if pendingCount > 0 {
            let take = min(64 - pendingCount, left)
            pending.withUnsafeMutableBytes { dst in (dst.baseAddress! + pendingCount).copyMemory(from: p, byteCount: take) }
            pendingCount += take
            p += take
            left -= take
            guard pendingCount == 64 else { return }
            pending.withUnsafeBytes { Self.compress(&h, $0.baseAddress!, blocks: 1) }
            pendingCount = 0
        }
        let blocks = left / 64
        if blocks > 0 {
            Self.compress(&h, p, blocks: blocks)
            p += 64 * blocks
            left -= 64 * blocks
        }
        if left > 0 { pending.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: p, byteCount: left) } }
        pendingCount = left
    }

    /// The digest as hex; finishes the hash (call once).
    public mutating func hexDigest() -> String {
        let bits = length &* 8
        var tail: [UInt8] = [0x80]
        tail += [UInt8](repeating: 0, count: (pendingCount < 56 ? 56 : 120) - pendingCount - 1)
        for s in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits &>> UInt64(s))) }
        tail.withUnsafeBytes { update($0) }
        return [h.0, h.1, h.2, h.3, h.4, h.5, h.6, h.7].map { w in
            let s = String(w, radix: 16)
            return String(repeating: "0", count: 8 - s.count) + s
        }.joined()
    }

    @inline(__always) private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x &>> n) | (x &<< (32 &- n)) }

    /// Whether the CPU's SHA extensions compress blocks (`SHA256Kernel`, about 6× faster than the portable
    /// code below); tests turn it off to compare both.
    nonisolated(unsafe) public static var useHardware = cpiscope_sha256_ni_available() == 1

    /// §6.2.2 on `blocks` consecutive 64-byte blocks.
    private static func compress(_ state: inout (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32),
                                 _ data: UnsafeRawPointer, blocks: Int) {
        guard useHardware else { return compressPortable(&state, data, blocks: blocks) }
        var s: [UInt32] = [state.0, state.1, state.2, state.3, state.4, state.5, state.6, state.7]
        s.withUnsafeMutableBufferPointer { cpiscope_sha256_blocks_ni($0.baseAddress!, data.assumingMemoryBound(to: UInt8.self), blocks) }
        state = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
    }

    private static func compressPortable(_ state: inout (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32),
                                 _ data: UnsafeRawPointer, blocks: Int) {
        // Round constants (§4.2.2): the table of SHA256Kernel, imported as a tuple of 64 UInt32.
        withUnsafePointer(to: cpiscope_sha256_k) { kt in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { wb in
                let k = UnsafeRawPointer(kt).assumingMemoryBound(to: UInt32.self), w = wb.baseAddress!
                var (h0, h1, h2, h3, h4, h5, h6, h7) = state
                for blk in 0..<blocks {
                    let block = data + 64 * blk
                    for i in 0..<16 { w[i] = UInt32(bigEndian: block.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
                    for t in 16..<64 {
                        let w15 = w[t - 15], w2 = w[t - 2]
                        let s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 &>> 3)
                        let s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 &>> 10)
                        w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                    }
                    var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7
                    for t in 0..<64 {
                        let t1 = h &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[t] &+ w[t]
                        let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
                        h = g; g = f; f = e; e = d &+ t1
                        d = c; c = b; b = a; a = t1 &+ t2
                    }
                    h0 &+= a; h1 &+= b; h2 &+= c; h3 &+= d; h4 &+= e; h5 &+= f; h6 &+= g; h7 &+= h
                }
                state = (h0, h1, h2, h3, h4, h5, h6, h7)
            }
        }
    }
}

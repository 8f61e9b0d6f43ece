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
    /// The SHA-256 of a file, as 64 lowercase hex digits (what `sha256sum` prints). A hash computed before
    /// for the same unchanged file comes from `cache` (by default `HashCache.standard`).
    public static func sha256(file url: URL, cache: HashCache? = HashCache.standard) throws -> String {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CheckpointError.unreadable(file: url.path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let resolved = cache == nil ? "" : url.resolvingSymlinksInPath().standardizedFileURL.path
        let identity = cache.flatMap { _ in HashCache.FileIdentity(fd: fd, resolvedPath: resolved) }
        if let cache, let identity, let hex = cache.lookup(identity) { return hex }
        let started = Date()
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
        let hex = h.hexDigest()
        if let cache, let identity, HashCache.FileIdentity(fd: fd, resolvedPath: resolved) == identity {
            cache.store(hex, for: identity, hashingStarted: started)
        }
        return hex
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

/// SHA-256 hashes of weight files kept between runs, so that a second job on the same checkpoints (probe,
/// then intervene, attribute, criticality; a rerun) does not read and hash 13 GB per 7B checkpoint again
/// (about 7 s of a core, taken from the job's products; BENCHMARKS.md, issue 26).
///
/// An entry is keyed by what identifies an unchanged file: its resolved path, device, inode, size, and
/// modification and status-change times in nanoseconds. Any write to the file, a replacement (new inode),
/// `touch` or `chmod` changes the key, and the file is hashed again. As git does for its index ("racy
/// git"), a hash is stored only when the file's times lie at least `racyWindow` before the hashing started
/// and its identity did not change while it was read: a write in the same clock tick as the hash cannot
/// leave a stale entry. One small file per entry, written to a temporary name and renamed (concurrent jobs
/// and Slurm tasks may share the directory).
///
/// Where: `$CPISCOPE_HASH_CACHE` (a folder; `0` or `off`: no cache), else `$XDG_CACHE_HOME/cpiscope/sha256`,
/// else `~/.cache/cpiscope/sha256`. A cache that cannot be written is ignored (the hash is computed).
public struct HashCache: Sendable {
    public let directory: URL
    /// Files modified less than this long before their hashing started are not cached.
    public let racyWindow: TimeInterval

    public init(directory: URL, racyWindow: TimeInterval = 2) {
        self.directory = directory
        self.racyWindow = racyWindow
    }

    /// The cache the environment selects (see the type's description), or nil when it is switched off.
    public static let standard: HashCache? = {
        let env = ProcessInfo.processInfo.environment
        if let v = env["CPISCOPE_HASH_CACHE"], !v.isEmpty {
            return v == "0" || v.lowercased() == "off" ? nil : HashCache(directory: URL(fileURLWithPath: v))
        }
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty {
            return HashCache(directory: URL(fileURLWithPath: x).appendingPathComponent("cpiscope/sha256"))
        }
        guard let home = env["HOME"], !home.isEmpty else { return nil }
        return HashCache(directory: URL(fileURLWithPath: home).appendingPathComponent(".cache/cpiscope/sha256"))
    }()

    /// What identifies an unchanged file (from fstat of the open file and its resolved path).
    public struct FileIdentity: Equatable, Sendable {
        let key: String
        let newestChange: Date

        /// `resolvedPath`: the file's path with symbolic links resolved.
        init?(fd: Int32, resolvedPath: String) {
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
            key = "\(resolvedPath)\n\(st.st_dev) \(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) "
                + "\(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
            let m = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
            let c = Double(st.st_ctim.tv_sec) + Double(st.st_ctim.tv_nsec) / 1e9
            newestChange = Date(timeIntervalSince1970: max(m, c))
        }
    }

    /// The entry's file: named by the SHA-256 of the key; it holds the hex digest, a newline, and the key.
    func entry(_ id: FileIdentity) -> URL {
        directory.appendingPathComponent(ContentHash.sha256(Array(id.key.utf8)))
    }

    /// The cached hash of the file, if an entry with exactly its key exists.
    public func lookup(_ id: FileIdentity) -> String? {
        guard let text = try? String(contentsOf: entry(id), encoding: .utf8) else { return nil }
        let parts = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, String(parts[1]) == id.key, parts[0].count == 64,
              parts[0].allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { return nil }
        return String(parts[0])
    }

    /// Stores `hex` for the file unless it changed within `racyWindow` of `hashingStarted`.
    public func store(_ hex: String, for id: FileIdentity, hashingStarted: Date) {
        guard id.newestChange < hashingStarted.addingTimeInterval(-racyWindow) else { return }
        let fm = FileManager.default
        guard (try? fm.createDirectory(at: directory, withIntermediateDirectories: true)) != nil else { return }
        let target = entry(id)
        let temporary = directory.appendingPathComponent(".\(target.lastPathComponent).\(getpid()).\(UInt64.random(in: 0...UInt64.max))")
        guard (try? Data((hex + "\n" + id.key).utf8).write(to: temporary)) != nil else { return }
        if rename(temporary.path, target.path) != 0 { try? fm.removeItem(at: temporary) }
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

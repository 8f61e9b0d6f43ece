// The weight-hash cache (ContentHash.sha256(file:cache:), HashCache): a second hash of an unchanged file
// comes from the cache; any change to the file (content, times, a replacement) misses it; a file changed
// just before hashing is never cached (the "racy git" rule); a damaged entry is ignored.
import Checkpoints
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("weight-hash cache")
struct HashCacheTests {
    /// A fresh folder with a file of `bytes` whose modification time lies an hour back, and a cache folder.
    func setUp(_ bytes: [UInt8]) throws -> (file: URL, cache: HashCache) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hashcache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("model.safetensors")
        try Data(bytes).write(to: file)
        let old = Date().addingTimeInterval(-3600)
        try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: file.path)
        // The status-change time cannot be set back; a zero window lets the test cache at once (the racy rule
        // itself is checked below with the default window).
        return (file, HashCache(directory: dir.appendingPathComponent("cache"), racyWindow: 0))
    }

    func entries(_ cache: HashCache) -> [URL] {
        ((try? FileManager.default.contentsOfDirectory(at: cache.directory, includingPropertiesForKeys: nil)) ?? [])
            .filter { !$0.lastPathComponent.hasPrefix(".") }
    }

    @Test("a second hash of an unchanged file is read from the cache; the digest equals the uncached one")
    func hit() throws {
        let (file, cache) = try setUp(Array("abc".utf8))
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"   // FIPS 180-4 example
        #expect(try ContentHash.sha256(file: file, cache: cache) == expected)
        let stored = entries(cache)
        #expect(stored.count == 1)
        // Prove the next call reads the entry: put another (well-formed) digest in it.
        let text = try String(contentsOf: stored[0], encoding: .utf8)
        let planted = String(repeating: "0", count: 64)
        try (planted + text.dropFirst(64)).write(to: stored[0], atomically: true, encoding: .utf8)
        #expect(try ContentHash.sha256(file: file, cache: cache) == planted)
        #expect(try ContentHash.sha256(file: file, cache: nil) == expected)
    }

    @Test("new content of the same size, a replaced file, and a touched file are hashed again")
    func changes() throws {
        let (file, cache) = try setUp(Array("abc".utf8))
        _ = try ContentHash.sha256(file: file, cache: cache)
        // Same size, new content (new times): the key differs.
        try Data("abd".utf8).write(to: file)
        #expect(try ContentHash.sha256(file: file, cache: cache) == ContentHash.sha256(Array("abd".utf8)))
        // Replaced by another file (new inode), times set back to the first file's.
        let other = file.deletingLastPathComponent().appendingPathComponent("other")
        try Data("xyz".utf8).write(to: other)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-3600)], ofItemAtPath: other.path)
        #expect(rename(other.path, file.path) == 0)
        #expect(try ContentHash.sha256(file: file, cache: cache) == ContentHash.sha256(Array("xyz".utf8)))
        // touch: only the times change, which is enough to miss.
        let before = entries(cache).count
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-1800)], ofItemAtPath: file.path)
        #expect(try ContentHash.sha256(file: file, cache: cache) == ContentHash.sha256(Array("xyz".utf8)))
        #expect(entries(cache).count == before + 1)
    }

    @Test("a file changed within the racy window before hashing is not cached")
    func racy() throws {
        let (file, zeroWindow) = try setUp(Array("abc".utf8))
        let cache = HashCache(directory: zeroWindow.directory)   // default window: 2 s
        try Data("abc".utf8).write(to: file)                   // modified now
        _ = try ContentHash.sha256(file: file, cache: cache)
        #expect(entries(cache).isEmpty)
    }

    @Test("a damaged or foreign entry is ignored and the file is hashed")
    func damaged() throws {
        let (file, cache) = try setUp(Array("abc".utf8))
        _ = try ContentHash.sha256(file: file, cache: cache)
        let entry = entries(cache)[0]
        for junk in ["", "not a digest\n", String(repeating: "0", count: 64) + "\nanother key"] {
            try junk.write(to: entry, atomically: true, encoding: .utf8)
            #expect(try ContentHash.sha256(file: file, cache: cache) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        }
    }

    @Test("an unwritable cache folder costs nothing but the cache")
    func unwritable() throws {
        let (file, _) = try setUp(Array("abc".utf8))
        let blocker = file.deletingLastPathComponent().appendingPathComponent("a-file")
        try Data().write(to: blocker)
        let cache = HashCache(directory: blocker.appendingPathComponent("sub"), racyWindow: 0)
        #expect(try ContentHash.sha256(file: file, cache: cache) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}

// The zip container of PyTorch checkpoints (`torch.save` since 1.6, `pytorch_model.bin`, `*.pt`), read
// without decompressing or executing anything. See docs/torch-bin.md for what is accepted and why.
//
// Layout written by torch's PyTorchStreamWriter (miniz), all integers little-endian:
//
//   local file header   "PK\3\4" (0x04034b50), version, flags (bit 3: sizes follow in a data
//                       descriptor, so the local sizes are 0), method (0 = stored), time, date, crc32,
//                       compressed size, size, name length n, extra length e, name, extra ("FB"
//                       padding so that the data starts on a 64-byte boundary), then the data
//   …                   one per record: <archive>/data.pkl, <archive>/byteorder, <archive>/data/<key>,
//                       <archive>/version, <archive>/.data/serialization_id, …
//   central directory   "PK\1\2" (0x02014b50) per entry: method, crc32, compressed size, size, name,
//                       extra (zip64: tag 0x0001 with the 64-bit size, compressed size, local offset),
//                       comment, local header offset
//   zip64 end record    "PK\6\6" (0x06064b50), its locator "PK\6\7" (0x07064b50); only when a count,
//                       size or offset overflows the 16/32-bit fields of the end record
//   end record          "PK\5\6" (0x06054b50): entry count, directory size and offset, comment length
//
// The central directory is authoritative (the local sizes are zero); each local header is still
// checked to carry the same name, and the data of every entry must lie inside the file, before the
// central directory, without overlapping another entry.

/// One stored entry of a zip archive, after validation.
public struct ZipEntry: Sendable, Equatable {
    public let name: String
    /// Bytes of the entry's data inside the file.
    public let dataRange: Range<Int>
    public let crc32: UInt32
}

/// The validated entries of a zip archive held in memory or mapped.
public struct ZipDirectory: Sendable {
    /// Archives with more entries than this are refused (a 405B-parameter checkpoint has a few thousand).
    public static let maxEntries = 1_000_000
    /// Entry names longer than this are refused.
    public static let maxNameLength = 4096

    /// Entries in central-directory order.
    public let entries: [ZipEntry]
    public let byName: [String: Int]

    public subscript(name: String) -> ZipEntry? { byName[name].map { entries[$0] } }

    /// Reads the central directory of `file`. `path` names the file in errors.
    public static func read(_ file: UnsafeRawBufferPointer, path: String) throws(TorchFileError) -> ZipDirectory {
        var r = ByteReader(file, path: path)
        let size = file.count
        // The end record: 22 bytes plus a comment of at most 65535 bytes, searched from the end.
        guard size >= 22 else { throw .notZip(file: path, reason: "the file is \(size) bytes, too short for a zip end record") }
        var eocd = -1
        var p = size - 22
        let lowest = max(0, size - 22 - 0xFFFF)
        while p >= lowest {
            if r.u32(p) == 0x0605_4b50 { eocd = p; break }
            p -= 1
        }
        guard eocd >= 0 else { throw .notZip(file: path, reason: "no zip end-of-central-directory record") }
        guard r.u16(eocd + 4) == 0, r.u16(eocd + 6) == 0 else {
            throw .badZip(file: path, entry: nil, reason: "multi-disk archives are not supported")
        }
        var count = Int(r.u16(eocd + 10))
        var dirSize = Int(r.u32(eocd + 12))
        var dirOffset = Int(r.u32(eocd + 16))
        var dirLimit = eocd   // the directory ends before the end records
        if count == 0xFFFF || dirSize == 0xFFFF_FFFF || dirOffset == 0xFFFF_FFFF {
            // Zip64: the locator sits just before the end record and points at the zip64 end record.
            guard eocd >= 20, r.u32(eocd - 20) == 0x0706_4b50 else {
                throw .badZip(file: path, entry: nil, reason: "the end record needs a zip64 record, and there is no zip64 locator")
            }
            let at = try r.int64(eocd - 20 + 8, what: "zip64 end record offset")
            guard at >= 0, at <= eocd - 20 - 56, r.u32(at) == 0x0606_4b50 else {
                throw .badZip(file: path, entry: nil, reason: "the zip64 locator points at \(at), where there is no zip64 end record")
            }
            count = try r.int64(at + 32, what: "zip64 entry count")
            dirSize = try r.int64(at + 40, what: "zip64 directory size")
            dirOffset = try r.int64(at + 48, what: "zip64 directory offset")
            dirLimit = at
        }
        guard count <= maxEntries else { throw .limit(file: path, what: "zip entries", value: count, limit: maxEntries) }
        let (dirEnd, o) = dirOffset.addingReportingOverflow(dirSize)
        guard !o, dirEnd <= dirLimit else {
            throw .badZip(file: path, entry: nil, reason: "the central directory (\(dirOffset) + \(dirSize) bytes) runs past its end record")
        }

        var entries: [ZipEntry] = []
        entries.reserveCapacity(count)
        var byName: [String: Int] = [:]
        var at = dirOffset
        for _ in 0..<count {
            guard at <= dirEnd - 46, r.u32(at) == 0x0201_4b50 else {
                throw .badZip(file: path, entry: nil, reason: "central directory entry \(entries.count) at \(at) is missing or cut short")
            }
            let flags = r.u16(at + 8)
            let method = r.u16(at + 10)
            let crc = r.u32(at + 16)
            var compressed = Int(r.u32(at + 20))
            var length = Int(r.u32(at + 24))
            let nameLength = Int(r.u16(at + 28)), extraLength = Int(r.u16(at + 30)), commentLength = Int(r.u16(at + 32))
            var local = Int(r.u32(at + 42))
            let recordEnd = at + 46 + nameLength + extraLength + commentLength
            guard recordEnd <= dirEnd else {
                throw .badZip(file: path, entry: nil, reason: "central directory entry \(entries.count) runs past the directory")
            }
            guard nameLength <= maxNameLength else { throw .limit(file: path, what: "zip entry name length", value: nameLength, limit: maxNameLength) }
            let nameBytes = UnsafeRawBufferPointer(rebasing: file[(at + 46)..<(at + 46 + nameLength)])
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw .badZip(file: path, entry: nil, reason: "entry \(entries.count) has a name that is not UTF-8")
            }
            try checkName(name, path: path)
            // Zip64 extended information: the fields that overflowed, in this order.
            var extra = at + 46 + nameLength
            let extraEnd = extra + extraLength
            while extra + 4 <= extraEnd {
                let tag = r.u16(extra), len = Int(r.u16(extra + 2))
                guard extra + 4 + len <= extraEnd else { throw .badZip(file: path, entry: name, reason: "an extra field runs past its entry") }
                if tag == 0x0001 {
                    var f = extra + 4
                    func next() throws(TorchFileError) -> Int {
                        guard f + 8 <= extra + 4 + len else { throw .badZip(file: path, entry: name, reason: "the zip64 extra field is too short") }
                        defer { f += 8 }
                        return try r.int64(f, what: "zip64 field of \(name)")
                    }
                    if length == 0xFFFF_FFFF { length = try next() }
                    if compressed == 0xFFFF_FFFF { compressed = try next() }
                    if local == 0xFFFF_FFFF { local = try next() }
                }
                extra += 4 + len
            }
            if flags & 0x1 != 0 { throw .badZip(file: path, entry: name, reason: "the entry is encrypted") }
            guard method == 0 else { throw .compressedEntry(file: path, entry: name, method: Int(method), size: length) }
            guard compressed == length else {
                throw .badZip(file: path, entry: name, reason: "a stored entry of \(length) bytes declares \(compressed) stored bytes")
            }
            // The local header: same name; the data follows its name and extra field.
            guard local >= 0, local <= dirOffset - 30, r.u32(local) == 0x0403_4b50 else {
                throw .badZip(file: path, entry: name, reason: "no local header at offset \(local)")
            }
            let localName = Int(r.u16(local + 26)), localExtra = Int(r.u16(local + 28))
            let dataStart = local + 30 + localName + localExtra
            let (dataEnd, o2) = dataStart.addingReportingOverflow(length)
            guard !o2, dataEnd <= dirOffset else {
                throw .entryOutOfBounds(file: path, entry: name, end: o2 ? Int.max : dataEnd, limit: dirOffset)
            }
            guard localName == nameLength, file[(local + 30)..<(local + 30 + localName)].elementsEqual(nameBytes) else {
                throw .badZip(file: path, entry: name, reason: "the local header at \(local) names another entry")
            }
            guard byName[name] == nil else { throw .badZip(file: path, entry: name, reason: "the entry appears twice") }
            byName[name] = entries.count
            entries.append(ZipEntry(name: name, dataRange: dataStart..<dataEnd, crc32: crc))
            at = recordEnd
        }
        // No two entries share bytes (overlapping entries are how some zip bombs multiply their data).
        let sorted = entries.sorted { $0.dataRange.lowerBound < $1.dataRange.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.dataRange.lowerBound < a.dataRange.upperBound {
            throw .overlappingEntries(file: path, entry: b.name, other: a.name)
        }
        return ZipDirectory(entries: entries, byName: byName)
    }

    /// Entry names are relative paths without `..`, backslashes, NUL or a drive letter: nothing is ever
    /// extracted, but a name that could escape a folder marks a crafted archive.
    static func checkName(_ name: String, path: String) throws(TorchFileError) {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if name.isEmpty || name.hasPrefix("/") || name.contains("\\") || name.contains("\0")
            || parts.contains(where: { $0 == ".." || $0 == "." }) || (parts.first?.contains(":") ?? false) {
            throw .unsafeEntryName(file: path, entry: name)
        }
    }
}

/// Bounds-checked little-endian reads. Callers check ranges before reading; the reads trap never.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let path: String

    init(_ bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    func u16(_ at: Int) -> UInt16 {
        guard at >= 0, at + 2 <= bytes.count else { return 0 }
        return bytes.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian
    }

    func u32(_ at: Int) -> UInt32 {
        guard at >= 0, at + 4 <= bytes.count else { return 0 }
        return bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian
    }

    /// A u64 field that must fit a non-negative Int.
    func int64(_ at: Int, what: String) throws(TorchFileError) -> Int {
        guard at >= 0, at + 8 <= bytes.count else { throw .badZip(file: path, entry: nil, reason: "\(what) lies outside the file") }
        let v = bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian
        guard v <= UInt64(Int.max) else { throw .badZip(file: path, entry: nil, reason: "\(what) is \(v), too large") }
        return Int(v)
    }
}

/// CRC-32 (IEEE 802.3, the zip checksum) of `bytes`.
func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8)
    }
    return c ^ 0xFFFF_FFFF
}

private let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}

// PyTorch zip checkpoints (`pytorch_model.bin`, sharded `pytorch_model-0000N-of-0000M.bin`, `*.pt`)
// as a `WeightFile`: the zip directory (TorchZip.swift), the restricted unpickler (TorchPickle.swift),
// then the state dict's tensors checked against their storages.
//
// Archive records (under one top-level folder, `<archive>/`, named after the file by torch.save):
//   data.pkl                 the pickled state dict (protocol 2); its persistent ids name storages
//   data/<key>               one storage: its elements, little-endian, in the storage type's dtype
//   byteorder                "little" (absent in files from torch < 1.10, which were all little-endian)
//   version, .format_version, .storage_alignment, .data/serialization_id, .data/version   not needed
//
// A tensor is a view of a storage: element offset, shape and strides. Contiguous views are read in
// place from the mapping (F32 without a copy when aligned; torch aligns storages to 64 bytes); a
// non-contiguous view is gathered once, at open, into a row-major copy owned by the file. Views of
// the same bytes (tied weights saved under two names) are reported as aliases of each other.

import Foundation
import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One tensor of a torch checkpoint after validation.
struct TorchTensorEntry: Sendable {
    var name: String
    var view: TorchTensorView
    /// The storage record's bytes inside the file.
    var storageRange: Range<Int>
    /// True when the view is the row-major layout of its shape (readable in place).
    var contiguous: Bool
}

/// What `TorchCheckpoint.parse` finds in a file image.
struct ParsedTorchCheckpoint: Sendable {
    var archive: String
    var tensors: [TorchTensorEntry]   // in the state dict's order
}

enum TorchCheckpoint {
    /// Tensors per state dict above this are refused.
    static let maxTensors = 1_000_000

    /// Validates a whole file image: container, pickle, storages, views.
    static func parse(_ file: UnsafeRawBufferPointer, path: String) throws(TorchFileError) -> ParsedTorchCheckpoint {
        let size = file.count
        func startsWith(_ magic: [UInt8], at offset: Int = 0) -> Bool {
            size >= offset + magic.count && magic.indices.allSatisfy { file[offset + $0] == magic[$0] }
        }
        if !startsWith([0x50, 0x4B, 0x03, 0x04]) {
            if startsWith([0x80]) { throw .legacyFormat(file: path, kind: "a bare pickle stream, written by torch < 1.6 or with _use_new_zipfile_serialization=False") }
            if startsWith(Array("ustar".utf8), at: 257) { throw .legacyFormat(file: path, kind: "a tar archive, written by torch < 0.4") }
            if startsWith([0x50, 0x4B]) == false {
                throw .notZip(file: path, reason: size < 4 ? "the file is \(size) bytes" : "it does not start with a zip local header")
            }
        }
        let zip = try ZipDirectory.read(file, path: path)

        // The archive folder: the one top-level folder that holds data.pkl.
        let pickles = zip.entries.filter { e in
            let parts = e.name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "data.pkl"
        }
        guard let pickleEntry = pickles.first else {
            if zip.entries.contains(where: { $0.name.hasSuffix("/constants.pkl") || $0.name.contains("/code/") }) {
                throw .torchScript(file: path)
            }
            throw .missingRecord(file: path, entry: "<archive>/data.pkl")
        }
        guard pickles.count == 1 else { throw .badZip(file: path, entry: pickles[1].name, reason: "a second data.pkl") }
        let archive = String(pickleEntry.name.dropLast("/data.pkl".count))
        if zip["\(archive)/constants.pkl"] != nil { throw .torchScript(file: path) }

        func bytes(_ e: ZipEntry) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: file[e.dataRange]) }
        if let order = zip["\(archive)/byteorder"] {
            let text = String(decoding: bytes(order), as: UTF8.self)
            guard text == "little" else {
                throw .badRecord(file: path, entry: order.name, reason: "is '\(text.prefix(16))'; only little-endian checkpoints are read")
            }
        }
        let pickleBytes = bytes(pickleEntry)
        guard pickleBytes.count <= TorchUnpickler.maxPickleSize else {
            throw .limit(file: path, what: "\(pickleEntry.name) size", value: pickleBytes.count, limit: TorchUnpickler.maxPickleSize)
        }
        let crc = crc32(pickleBytes)
        guard crc == pickleEntry.crc32 else {
            throw .badRecord(file: path, entry: pickleEntry.name, reason: "fails its CRC-32 check (stored \(pickleEntry.crc32), computed \(crc))")
        }
        let top = try TorchUnpickler.load(pickleBytes, path: path, entry: "data.pkl")
        let views = try stateDict(top, path: path)

        // Storages: each key names `data/<key>`, with one dtype and element count, exactly its bytes.
        var storages: [String: (ref: TorchStorageRef, range: Range<Int>)] = [:]
        var out: [TorchTensorEntry] = []
        out.reserveCapacity(views.count)
        for (name, v) in views {
            let s = v.storage
            let range: Range<Int>
            if let known = storages[s.key] {
                guard known.ref == s else {
                    throw .storageConflict(file: path, storage: s.key,
                                           reason: "is declared as \(known.ref.count) × \(known.ref.dtype.rawValue) and as \(s.count) × \(s.dtype.rawValue)")
                }
                range = known.range
            } else {
                let entryName = "\(archive)/data/\(s.key)"
                guard let e = zip[entryName] else { throw .missingStorage(file: path, tensor: name, storage: s.key, entry: entryName) }
                let (expected, o) = s.count.multipliedReportingOverflow(by: s.dtype.byteSize)
                guard !o, expected == e.dataRange.count else {
                    throw .storageSizeMismatch(file: path, storage: s.key, expected: o ? Int.max : expected, actual: e.dataRange.count)
                }
                storages[s.key] = (s, e.dataRange)
                range = e.dataRange
            }
            out.append(TorchTensorEntry(name: name, view: v, storageRange: range,
                                        contiguous: try checkView(v, name: name, path: path)))
        }
        return ParsedTorchCheckpoint(archive: archive, tensors: out)
    }

    /// The pickle's value as (name, tensor) pairs: a dict or OrderedDict of string keys and tensors.
    static func stateDict(_ top: PickleValue, path: String) throws(TorchFileError) -> [(String, TorchTensorView)] {
        guard case .dict(let d) = top else { throw .notStateDict(file: path, reason: "the pickle holds a \(top.kindName)") }
        guard d.pairs.count <= maxTensors else { throw .limit(file: path, what: "tensors", value: d.pairs.count, limit: maxTensors) }
        var seen = Set<String>()
        var out: [(String, TorchTensorView)] = []
        for (k, v) in d.pairs {
            guard case .string(let name) = k else { throw .notStateDict(file: path, reason: "a key is a \(k.kindName), expected a string") }
            guard case .tensor(let t) = v else { throw .notStateDict(file: path, reason: "'\(name)' is a \(v.kindName), expected a tensor") }
            guard seen.insert(name).inserted else { throw .notStateDict(file: path, reason: "'\(name)' appears twice") }
            out.append((name, t))
        }
        return out
    }

    /// Checks that the view lies inside its storage (checked arithmetic); returns whether it is contiguous.
    static func checkView(_ v: TorchTensorView, name: String, path: String) throws(TorchFileError) -> Bool {
        guard v.offset >= 0 else { throw .badTensor(file: path, tensor: name, reason: "has storage offset \(v.offset)") }
        guard v.shape.allSatisfy({ $0 >= 0 }), v.stride.allSatisfy({ $0 >= 0 }) else {
            throw .badTensor(file: path, tensor: name, reason: "has size \(v.shape) and stride \(v.stride); negative values are not allowed")
        }
        var count = 1
        for d in v.shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o else { throw .badTensor(file: path, tensor: name, reason: "has size \(v.shape), whose element count overflows") }
            count = p
        }
        if count == 0 {
            guard v.offset <= v.storage.count else {
                throw .storageTooShort(file: path, tensor: name, storage: v.storage.key, needed: v.offset, available: v.storage.count)
            }
            return true
        }
        // Last element touched: offset + Σ (size_i − 1) · stride_i.
        var last = v.offset
        for (d, s) in zip(v.shape, v.stride) {
            let (step, o1) = (d - 1).multipliedReportingOverflow(by: s)
            let (sum, o2) = last.addingReportingOverflow(step)
            guard !o1, !o2 else { throw .badTensor(file: path, tensor: name, reason: "has size \(v.shape) and stride \(v.stride), whose extent overflows") }
            last = sum
        }
        guard last < v.storage.count else {
            throw .storageTooShort(file: path, tensor: name, storage: v.storage.key,
                                   needed: last == Int.max ? last : last + 1, available: v.storage.count)
        }
        // A view never has more elements than its storage (a zero stride repeating an element would
        // let a small file ask for an arbitrarily large copy).
        guard count <= v.storage.count else {
            throw .badTensor(file: path, tensor: name, reason: "has \(count) elements but its storage '\(v.storage.key)' only \(v.storage.count); repeated elements are not allowed")
        }
        var expected = 1
        for (d, s) in zip(v.shape, v.stride).reversed() {
            if d != 1 && s != expected { return false }
            expected *= d   // cannot overflow: the element count did not
        }
        return true
    }
}

/// A read-only, memory-mapped PyTorch zip checkpoint whose container, pickle and views have been
/// validated. Nothing in it is executed (docs/torch-bin.md).
public final class TorchZipFile: WeightFile, @unchecked Sendable {
    /// Names read as PyTorch checkpoints.
    public static let extensions = ["bin", "pt", "pth"]
    public static func handles(_ url: URL) -> Bool { extensions.contains(url.pathExtension) }

    public let url: URL
    public var format: WeightFileFormat { .torchZip }
    public let tensors: [String: SafeTensorInfo]
    public let namesInFileOrder: [String]
    public var metadata: [String: String] { [:] }
    /// The archive's top-level folder name.
    public let archiveName: String
    /// Names of tensors that are not contiguous in their storage (read from a copy made at open).
    public let copiedTensors: [String]

    private let base: UnsafeRawPointer?
    private let mappedLength: Int
    /// Where each tensor's row-major bytes are: in the mapping, or in an owned copy.
    private let spans: [String: UnsafeRawBufferPointer]
    private let copies: [UnsafeMutableRawPointer]
    private let aliasGroups: [String: [String]]

    public var fileSize: Int { mappedLength }

    /// Maps and validates the file at `url`.
    public init(url: URL) throws(CheckpointError) {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(file: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .unreadable(file: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size > 0 else { throw .torchFile(.notZip(file: path, reason: "the file is empty")) }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw .unreadable(file: path, reason: "mmap failed: " + String(cString: strerror(errno)))
        }
        let raw = UnsafeRawPointer(map)
        let image = UnsafeRawBufferPointer(start: raw, count: size)
        let parsed: ParsedTorchCheckpoint
        do {
            parsed = try TorchCheckpoint.parse(image, path: path)
        } catch {
            munmap(map, size)
            throw .torchFile(error)
        }
        base = raw
        mappedLength = size
        archiveName = parsed.archive
        var infos: [String: SafeTensorInfo] = [:]
        var spans: [String: UnsafeRawBufferPointer] = [:]
        var copies: [UnsafeMutableRawPointer] = []
        var copied: [String] = []
        var groups: [String: [String]] = [:]
        var firstOfView: [String: String] = [:]
        for t in parsed.tensors {
            let v = t.view
            let width = v.storage.dtype.byteSize
            let count = v.shape.reduce(1, *)
            let bytes: UnsafeRawBufferPointer
            let storage = image.baseAddress! + t.storageRange.lowerBound
            if t.contiguous {
                bytes = UnsafeRawBufferPointer(start: storage + v.offset * width, count: count * width)
            } else {
                let copy = UnsafeMutableRawPointer.allocate(byteCount: max(1, count * width), alignment: 64)
                Self.gather(v, from: storage, width: width, into: copy)
                copies.append(copy)
                copied.append(t.name)
                bytes = UnsafeRawBufferPointer(start: copy, count: count * width)
            }
            spans[t.name] = bytes
            let start = Int(bitPattern: bytes.baseAddress) - Int(bitPattern: raw)
            infos[t.name] = SafeTensorInfo(name: t.name, dtype: v.storage.dtype, shape: v.shape,
                                           byteRange: t.contiguous ? start..<(start + bytes.count) : 0..<bytes.count)
            // The same bytes under another name: tied weights.
            let key = "\(v.storage.key)|\(v.offset)|\(v.shape)|\(v.stride)"
            if let first = firstOfView[key] { groups[first, default: [first]].append(t.name) } else { firstOfView[key] = t.name }
        }
        var aliasGroups: [String: [String]] = [:]
        for members in groups.values { for m in members { aliasGroups[m] = members.filter { $0 != m } } }
        self.tensors = infos
        self.spans = spans
        self.copies = copies
        self.copiedTensors = copied
        self.aliasGroups = aliasGroups
        self.namesInFileOrder = parsed.tensors.map(\.name)
    }

    deinit {
        for c in copies { c.deallocate() }
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }
    }

    public func rawBytes(_ info: SafeTensorInfo) -> UnsafeRawBufferPointer {
        guard let s = spans[info.name] else { preconditionFailure("tensor info '\(info.name)' does not belong to \(url.path)") }
        return s
    }

    public func floatTensor(_ info: SafeTensorInfo) throws(CheckpointError) -> Tensor {
        try decodeFloatTensor(info, bytes: rawBytes(info), owner: self, file: url.path)
    }

    public func aliases(of name: String) -> [String] { aliasGroups[name] ?? [] }

    public func contains(pointer: UnsafeRawPointer) -> Bool {
        guard let base else { return false }
        return pointer >= base && pointer < base + mappedLength
    }

    /// Copies a strided view into row-major order (element `width` bytes).
    static func gather(_ v: TorchTensorView, from storage: UnsafeRawPointer, width: Int, into dst: UnsafeMutableRawPointer) {
        let count = v.shape.reduce(1, *)
        guard count > 0 else { return }
        var index = [Int](repeating: 0, count: v.shape.count)
        var src = v.offset
        for i in 0..<count {
            (dst + i * width).copyMemory(from: storage + src * width, byteCount: width)
            // Odometer step: the last dimension fastest.
            var d = v.shape.count - 1
            while d >= 0 {
                index[d] += 1
                src += v.stride[d]
                if index[d] < v.shape[d] { break }
                src -= v.stride[d] * v.shape[d]
                index[d] = 0
                d -= 1
            }
        }
    }
}

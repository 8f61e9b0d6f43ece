// Safetensors reader: memory-mapped, validated like the Rust `safetensors` crate (v0.8.0), zero-copy
// for aligned F32.
//
// File layout (all integers little-endian; see docs/safetensors.md for every field and rule):
//
//   offset 0      u64 N            header length in bytes, N <= 100_000_000 (MAX_HEADER_SIZE)
//   offset 8      N bytes          UTF-8 JSON object:
//                                    "__metadata__": {string: string}            (optional)
//                                    "<tensor name>": {"dtype": "F32",
//                                                      "shape": [d0, d1, ...],
//                                                      "data_offsets": [begin, end]}
//   offset 8+N    data buffer      tensor bytes, row-major, little-endian; offsets are relative
//                                  to the start of the data buffer. Sorted by offset, the tensors
//                                  tile the buffer exactly: first begins at 0, each begins where the
//                                  previous ends, the last ends at the end of the file.
//
// Source of the rules: huggingface/safetensors `safetensors/src/tensor.rs`
// (`SafeTensors::read_metadata`, `Metadata::validate`, `Dtype::bitsize`), checked against the
// behaviour of the installed Python `safetensors` 0.8.0. We are stricter in three places: duplicate
// tensor names are refused (serde keeps the last), `__metadata__` values must be strings (as there),
// and truncation is reported separately from trailing bytes (the crate has one error for both).

import Foundation
import StrictJSON
import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Element types of the safetensors format 0.8.0, spelled as in the header.
public enum SafeTensorsDType: String, Sendable, CaseIterable, Codable {
    case BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64
    case C64
    case F8_E4M3, F8_E5M2, F8_E4M3FNUZ, F8_E5M2FNUZ, F8_E8M0
    /// Packed 4-bit float (two per byte).
    case F4
    /// Packed 6-bit floats (four per three bytes).
    case F6_E2M3, F6_E3M2

    /// Bits per element (the crate's `Dtype::bitsize`).
    public var bitSize: Int {
        switch self {
        case .F4: return 4
        case .F6_E2M3, .F6_E3M2: return 6
        case .BOOL, .U8, .I8, .F8_E4M3, .F8_E5M2, .F8_E4M3FNUZ, .F8_E5M2FNUZ, .F8_E8M0: return 8
        case .I16, .U16, .F16, .BF16: return 16
        case .I32, .U32, .F32: return 32
        case .F64, .I64, .U64, .C64: return 64
        }
    }

    /// Bytes per element. For the packed sub-byte types (F4, F6_*) this is 1, the storage unit;
    /// byte lengths of those tensors are computed from `bitSize`.
    public var byteSize: Int { max(1, bitSize / 8) }

    /// True when `floatTensor` can convert this dtype to Float32.
    public var isReadableAsFloat: Bool { self == .F32 || self == .F16 || self == .BF16 || self == .F64 }
}

/// One tensor entry of a safetensors header, after validation.
public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range within the data buffer (which starts at file offset 8 + header length).
    public let byteRange: Range<Int>

    /// Number of elements (product of `shape`; 1 for a scalar). Validated not to overflow.
    public var elementCount: Int { shape.reduce(1, *) }

    /// Byte length of the tensor's data.
    public var byteCount: Int { byteRange.count }
}

/// A read-only, memory-mapped safetensors file whose header has been fully validated.
///
/// The mapping (PROT_READ, MAP_PRIVATE) lives as long as this object or any tensor borrowed from it.
/// Aligned F32 tensors are returned without copying and are read-only: writing through them crashes.
/// If the file is truncated by another process while mapped, reading the lost pages raises SIGBUS;
/// that is the usual contract of mmap and cannot be checked here.
public final class SafeTensorsFile: StorageOwner, @unchecked Sendable {
    /// Headers longer than this are refused (the crate's `MAX_HEADER_SIZE`, 100 MB).
    public static let maxHeaderSize = 100_000_000

    public let url: URL
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// Every tensor of the file by name.
    public let tensors: [String: SafeTensorInfo]
    /// Tensor names in data-offset order (the order of the bytes in the file).
    public let namesInFileOrder: [String]
    /// Length of the JSON header (N).
    public let headerLength: Int

    private let base: UnsafeRawPointer?   // start of the mapping; nil for an empty mapping
    private let mappedLength: Int
    private let dataStart: Int            // 8 + N

    public var fileSize: Int { mappedLength }
    /// Length of the data buffer that follows the header.
    public var dataLength: Int { mappedLength - dataStart }

    /// Maps and validates the file at `url`. Throws `CheckpointError`.
    public init(url: URL) throws(CheckpointError) {
        self.url = url
        let path = url.path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(file: path, reason: Self.errnoText()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(file: path, reason: Self.errnoText()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw .unreadable(file: path, reason: "not a regular file")
        }
        let size = Int(st.st_size)
        // Rule 1: the file holds at least the 8-byte header length (crate: HeaderTooSmall).
        guard size >= 8 else { throw .fileTooSmall(file: path, size: size) }
        guard let map = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), map != MAP_FAILED else {
            throw .unreadable(file: path, reason: "mmap failed: " + Self.errnoText())
        }
        let raw = UnsafeRawPointer(map)
        let parsed: ParsedHeader
        do {
            parsed = try Self.validate(UnsafeRawBufferPointer(start: raw, count: size), path: path)
        } catch {
            munmap(map, size)
            throw error
        }
        self.base = raw
        self.mappedLength = size
        self.headerLength = parsed.headerLength
        self.dataStart = 8 + parsed.headerLength
        self.metadata = parsed.metadata
        var byName: [String: SafeTensorInfo] = [:]
        byName.reserveCapacity(parsed.infos.count)
        for info in parsed.infos { byName[info.name] = info }
        self.tensors = byName
        self.namesInFileOrder = parsed.infos.map(\.name)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }
    }

    /// The tensor's bytes inside the mapping. `info` must come from this file's `tensors`.
    public func rawBytes(_ info: SafeTensorInfo) -> UnsafeRawBufferPointer {
        precondition(info.byteRange.lowerBound >= 0 && info.byteRange.upperBound <= dataLength,
                     "tensor info '\(info.name)' does not belong to \(url.path)")
        guard let base else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + dataStart + info.byteRange.lowerBound, count: info.byteCount)
    }

    /// The named tensor as Float32, with the header's shape.
    ///
    /// F32 is borrowed from the mapping without a copy when its first byte is 4-byte aligned (the
    /// mapping is page-aligned, so this holds whenever 8 + N + begin is a multiple of 4, which the
    /// `safetensors` writers guarantee by padding the header); otherwise it is copied. F16, BF16 and
    /// F64 are converted into a new buffer (F64 rounds to nearest Float). Other dtypes throw
    /// `unsupportedDType`; an unknown name throws `tensorNotFound`.
    public func floatTensor(_ name: String) throws(CheckpointError) -> Tensor {
        guard let info = tensors[name] else { throw .tensorNotFound(source: url.path, tensor: name) }
        return try floatTensor(info)
    }

    /// `floatTensor(_:)` for an entry of `tensors`.
    public func floatTensor(_ info: SafeTensorInfo) throws(CheckpointError) -> Tensor {
        try decodeFloatTensor(info, bytes: rawBytes(info), owner: self, file: url.path)
    }

    /// True when the tensor would be returned without a copy by `floatTensor`.
    public func isZeroCopy(_ info: SafeTensorInfo) -> Bool {
        #if _endian(little)
        guard info.dtype == .F32, info.byteCount > 0, let p = rawBytes(info).baseAddress else { return false }
        return Int(bitPattern: p) % MemoryLayout<Float>.alignment == 0
        #else
        return false
        #endif
    }

    /// True when `pointer` lies inside this file's mapping.
    public func contains(pointer: UnsafeRawPointer) -> Bool {
        guard let base else { return false }
        return pointer >= base && pointer < base + mappedLength
    }

    private static func errnoText() -> String { String(cString: strerror(errno)) }

    // MARK: validation

    struct ParsedHeader {
        var headerLength: Int
        var metadata: [String: String]
        var infos: [SafeTensorInfo]   // sorted by data offset
    }

    /// Validates a whole file image. Rules are numbered as in docs/safetensors.md.
    static func validate(_ file: UnsafeRawBufferPointer, path: String) throws(CheckpointError) -> ParsedHeader {
        let size = file.count
        // Rule 1: room for the length prefix.
        guard size >= 8 else { throw .fileTooSmall(file: path, size: size) }
        // Rule 2: header length, little-endian u64 at offset 0, at most MAX_HEADER_SIZE.
        let declared = file.loadUnaligned(fromByteOffset: 0, as: UInt64.self).littleEndian
        guard declared <= UInt64(maxHeaderSize) else {
            throw .headerTooLarge(file: path, declared: declared, limit: maxHeaderSize)
        }
        let n = Int(declared)
        // Rule 3: the header lies inside the file (crate: InvalidHeaderLength).
        guard n <= size - 8 else { throw .headerPastEndOfFile(file: path, declared: declared, fileSize: size) }
        let headerBytes = UnsafeRawBufferPointer(rebasing: file[8..<(8 + n)])
        // Rule 4: UTF-8 (crate: InvalidHeader), checked by the reader before any syntax.
        // Rule 5: JSON (crate: InvalidHeaderDeserialization); trailing whitespace (the writers'
        // space padding) is allowed, anything else after the value is not.
        let json: JSONValue
        do throws(JSONParseError) {
            json = try JSONValue.parse(headerBytes)
        } catch {
            switch error.reason {
            case .invalidUTF8: throw .headerNotUTF8(file: path, byteOffset: error.offset)
            case let .duplicateKey(key, depth) where depth == 1: throw .duplicateTensorInHeader(file: path, tensor: key)
            default: throw .headerBadJSON(file: path, reason: error.message)
            }
        }
        // Rule 6: a JSON object.
        guard case .object(let entries) = json else { throw .headerNotObject(file: path, found: json.kindName) }

        var metadata: [String: String] = [:]
        var unsorted: [(name: String, dtype: SafeTensorsDType, shape: [Int], start: Int, end: Int)] = []
        unsorted.reserveCapacity(entries.count)
        for (key, value) in entries {
            if key == "__metadata__" {
                metadata = try parseMetadata(value, path: path)
                continue
            }
            unsorted.append(try parseEntry(name: key, value, path: path))
        }

        // Rule 12: sort by (begin, end); the crate sorts the same way. Ties broken by name so the
        // reported tensor is deterministic.
        unsorted.sort { ($0.start, $0.end, $0.name) < ($1.start, $1.end, $1.name) }

        var infos: [SafeTensorInfo] = []
        infos.reserveCapacity(unsorted.count)
        var cursor = 0
        var previous: String? = nil
        for e in unsorted {
            // Rule 13: begin <= end.
            guard e.end >= e.start else {
                throw .invertedOffsets(file: path, tensor: e.name, start: e.start, end: e.end)
            }
            // Rule 14: contiguous — each tensor begins where the previous one ended (the first at 0).
            if e.start < cursor {
                throw .overlappingOffsets(file: path, tensor: e.name, previous: previous ?? "",
                                          start: e.start, previousEnd: cursor)
            }
            if e.start > cursor {
                throw .gappedOffsets(file: path, tensor: e.name, previous: previous, gapStart: cursor, gapEnd: e.start)
            }
            // Rule 15: element count × bits, checked (crate: ValidationOverflow).
            var count = 1
            for d in e.shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                if o { throw .sizeOverflow(file: path, tensor: e.name, shape: e.shape, dtype: e.dtype) }
                count = p
            }
            let (bits, o) = count.multipliedReportingOverflow(by: e.dtype.bitSize)
            if o { throw .sizeOverflow(file: path, tensor: e.name, shape: e.shape, dtype: e.dtype) }
            // Rule 16: packed sub-byte tensors fill whole bytes (crate: MisalignedSlice).
            guard bits % 8 == 0 else {
                throw .subByteMisaligned(file: path, tensor: e.name, dtype: e.dtype, elements: count)
            }
            // Rule 17: byte length matches (crate: TensorInvalidInfo).
            let expected = bits / 8
            guard e.end - e.start == expected else {
                throw .byteLengthMismatch(file: path, tensor: e.name, dtype: e.dtype, shape: e.shape,
                                          expected: expected, actual: e.end - e.start)
            }
            infos.append(SafeTensorInfo(name: e.name, dtype: e.dtype, shape: e.shape, byteRange: e.start..<e.end))
            cursor = e.end
            previous = e.name
        }

        // Rule 18/19: the tensors cover the data buffer exactly (crate: MetadataIncompleteBuffer).
        let dataLength = size - 8 - n
        if cursor > dataLength {
            let first = infos.first(where: { $0.byteRange.upperBound > dataLength })
            throw .truncated(file: path, tensor: first?.name ?? previous ?? "", end: first?.byteRange.upperBound ?? cursor,
                             dataLength: dataLength)
        }
        if cursor < dataLength {
            throw .trailingBytes(file: path, extra: dataLength - cursor, lastTensor: previous)
        }
        return ParsedHeader(headerLength: n, metadata: metadata, infos: infos)
    }

    /// Rule 7: `__metadata__` is null or an object of string values.
    private static func parseMetadata(_ value: JSONValue, path: String) throws(CheckpointError) -> [String: String] {
        switch value {
        case .null:
            return [:]
        case .object(let pairs):
            var out: [String: String] = [:]
            for (k, v) in pairs {
                guard case .string(let s) = v else {
                    throw .invalidMetadata(file: path, key: k, reason: "is a \(v.kindName), expected a string")
                }
                out[k] = s
            }
            return out
        default:
            throw .invalidMetadata(file: path, key: nil, reason: "is a \(value.kindName), expected an object of strings")
        }
    }

    /// Rules 8–11: one tensor entry.
    private static func parseEntry(name: String, _ value: JSONValue, path: String) throws(CheckpointError)
        -> (name: String, dtype: SafeTensorsDType, shape: [Int], start: Int, end: Int)
    {
        // Rule 8: an object with dtype, shape and data_offsets (other keys are ignored, as in the crate).
        guard case .object = value else {
            throw .invalidField(file: path, tensor: name, field: "(entry)",
                                reason: "is a \(value.kindName), expected an object with dtype, shape and data_offsets")
        }
        guard let dtypeValue = value["dtype"] else { throw .missingField(file: path, tensor: name, field: "dtype") }
        guard let shapeValue = value["shape"] else { throw .missingField(file: path, tensor: name, field: "shape") }
        guard let offsetsValue = value["data_offsets"] else {
            throw .missingField(file: path, tensor: name, field: "data_offsets")
        }
        // Rule 9: dtype is one of the format's names, exactly (case-sensitive).
        guard case .string(let dtypeName) = dtypeValue else {
            throw .invalidField(file: path, tensor: name, field: "dtype", reason: "is a \(dtypeValue.kindName), expected a string")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw .unknownDType(file: path, tensor: name, dtype: dtypeName)
        }
        // Rule 10: shape is an array of non-negative integers.
        guard case .array(let dims) = shapeValue else {
            throw .invalidField(file: path, tensor: name, field: "shape", reason: "is a \(shapeValue.kindName), expected an array")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for d in dims { shape.append(try nonNegativeInt(d, path: path, tensor: name, field: "shape")) }
        // Rule 11: data_offsets is exactly two non-negative integers.
        guard case .array(let offs) = offsetsValue else {
            throw .invalidField(file: path, tensor: name, field: "data_offsets",
                                reason: "is a \(offsetsValue.kindName), expected [begin, end]")
        }
        guard offs.count == 2 else {
            throw .invalidField(file: path, tensor: name, field: "data_offsets",
                                reason: "has \(offs.count) elements, expected [begin, end]")
        }
        let start = try nonNegativeInt(offs[0], path: path, tensor: name, field: "data_offsets")
        let end = try nonNegativeInt(offs[1], path: path, tensor: name, field: "data_offsets")
        return (name, dtype, shape, start, end)
    }

    private static func nonNegativeInt(_ v: JSONValue, path: String, tensor: String, field: String) throws(CheckpointError) -> Int {
        guard case .number(let num) = v, num.isInteger else {
            throw .invalidField(file: path, tensor: tensor, field: field, reason: "contains a \(v.kindName), expected a non-negative integer")
        }
        guard let i = num.exactInt else {
            throw .invalidField(file: path, tensor: tensor, field: field, reason: "contains \(num.text), which does not fit a 64-bit integer")
        }
        guard i >= 0 else {
            throw .invalidField(file: path, tensor: tensor, field: field, reason: "contains \(num.text), expected a non-negative integer")
        }
        return i
    }
}

// HDF5File: one open HDF5 file. Lifecycle (create / open / flush / close), groups, existence
// checks and attributes live here; dimensions and variables in HDF5File+Variables.swift.
//
// Durability (see docs/hdf5-layer.md): writers keep all dirty metadata in memory until
// `flush()` (metadata-cache evictions are off), so a process killed between flushes leaves the
// file exactly as at the last flush: it opens, and every slab written before that flush is
// there. File locking is off so notebooks can open the file while a run writes it.
import Foundation
import HDF5Shim

/// An open HDF5 file. All calls are serialised on one process-wide lock, so an instance may be
/// shared between threads (operations on it run one at a time).
public final class HDF5File: @unchecked Sendable {
    /// The file's path (used in every error).
    public let path: String
    /// Whether the file was opened for writing.
    public let writable: Bool
    /// The most elements one read call returns (2^31, 8 GiB of float32).
    public static let maxReadElements = 1 << 31

    /// Attribute names managed by HDF5 dimension scales and netCDF; `setAttribute` refuses them.
    static let reservedAttributes: Set<String> = [
        "CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST", "_Netcdf4Dimid", "_Netcdf4Coordinates",
        "_nc3_strict", "_NCProperties",
    ]

    /// The shim's file id; nil once closed. Guarded by `HDF5Lock.shared`.
    private var fileID: Int64?

    private init(path: String, id: Int64, writable: Bool) {
        self.path = path
        self.fileID = id
        self.writable = writable
    }

    deinit {
        if let id = fileID {
            HDF5Lock.shared.run { _ = cps_h5_file_close(id) }
        }
    }

    // MARK: lifecycle

    /// Creates a new HDF5 file at `url` (written in place, no temporary file) and flushes its
    /// empty structure so it opens from the start.
    /// - Throws: `cannotCreate` when the directory is missing or read-only or the path is a
    ///   directory; `alreadyExists` when the file exists and `overwrite` is false.
    ///   With `overwrite`, an existing regular file is removed first (readers that still have
    ///   it open keep the old contents); other existing paths (e.g. a device) are truncated.
    /// Creates a new file and lets `define` write its structure (dimensions, variables, attributes), then
    /// flushes. If `define` throws, the file is closed and removed: a job that fails to start leaves nothing.
    public static func create(at url: URL, overwrite: Bool, defining define: (HDF5File) throws -> Void) throws -> HDF5File {
        let file = try create(at: url, overwrite: overwrite)
        do {
            try define(file)
            try file.flush()
        } catch {
            try? file.close()
            try? FileManager.default.removeItem(at: url)
            throw error
        }
        return file
    }

    public static func create(at url: URL, overwrite: Bool) throws -> HDF5File {
        let path = url.path
        guard url.isFileURL, !path.isEmpty else {
            throw HDF5Error.cannotCreate(file: url.absoluteString, reason: "not a file URL")
        }
        let fm = FileManager.default
        let dir = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir, isDirectory: &isDir) else {
            throw HDF5Error.cannotCreate(file: path, reason: "directory \(dir) does not exist")
        }
        guard isDir.boolValue else {
            throw HDF5Error.cannotCreate(file: path, reason: "\(dir) is not a directory")
        }
        if access(dir, W_OK) != 0 {
            throw HDF5Error.cannotCreate(file: path, reason: "directory \(dir) is not writable")
        }
        var truncate = false
        if fm.fileExists(atPath: path, isDirectory: &isDir) {
            if isDir.boolValue { throw HDF5Error.cannotCreate(file: path, reason: "the path is a directory") }
            guard overwrite else { throw HDF5Error.alreadyExists(file: path, object: "/") }
            let type = (try? fm.attributesOfItem(atPath: path)[.type]) as? FileAttributeType
            if type == .typeRegular {
                do { try fm.removeItem(atPath: path) } catch {
                    throw HDF5Error.cannotCreate(file: path, reason: "cannot remove the existing file: \(error)")
                }
            } else {
                truncate = true
            }
        }
        let file: HDF5File = try HDF5Lock.shared.run {
            let id = cps_h5_file_create(path, truncate ? 1 : 0)
            guard id >= 0 else {
                let message = shimErrorMessage()
                if isDiskFull(message) {
                    throw HDF5Error.writeFailed(file: path, object: "/", operation: "create", reason: message,
                                                diskFull: true)
                }
                throw HDF5Error.cannotCreate(file: path, reason: message)
            }
            return HDF5File(path: path, id: id, writable: true)
        }
        try file.flush()
        return file
    }

    /// Opens an existing HDF5 file, read-only or read-write (`--resume`).
    /// - Throws: `cannotOpen` (missing, unreadable, directory, read-only file opened writable),
    ///   `notHDF5`.
    public static func open(at url: URL, writable: Bool) throws -> HDF5File {
        let path = url.path
        var isDir: ObjCBool = false
        guard url.isFileURL, FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw HDF5Error.cannotOpen(file: path, reason: "no such file")
        }
        if isDir.boolValue { throw HDF5Error.cannotOpen(file: path, reason: "the path is a directory") }
        if access(path, writable ? (R_OK | W_OK) : R_OK) != 0 {
            throw HDF5Error.cannotOpen(file: path, reason: writable ? "file is not readable and writable"
                                                                      : "file is not readable")
        }
        return try HDF5Lock.shared.run {
            let isHDF5 = cps_h5_is_hdf5(path)
            if isHDF5 == 0 { throw HDF5Error.notHDF5(file: path) }
            if isHDF5 < 0 { throw HDF5Error.cannotOpen(file: path, reason: shimErrorMessage()) }
            let id = cps_h5_file_open(path, writable ? 1 : 0)
            guard id >= 0 else { throw HDF5Error.cannotOpen(file: path, reason: shimErrorMessage()) }
            return HDF5File(path: path, id: id, writable: writable)
        }
    }

    /// Flushes and closes the file. Later calls throw `closed`; closing twice is a no-op.
    public func close() throws {
        try HDF5Lock.shared.run {
            guard let id = fileID else { return }
            fileID = nil
            if cps_h5_file_close(id) < 0 {
                let message = shimErrorMessage()
                throw HDF5Error.writeFailed(file: path, object: "/", operation: "close", reason: message,
                                            diskFull: isDiskFull(message))
            }
        }
    }

    /// Closes the file without writing anything more, after a failed write: a flush at that point
    /// (ENOSPC, EFBIG) can store metadata that points at data that never reached the disk and leave
    /// the file unreadable or the last flushed data overwritten. The file stays as it was at its
    /// last successful `flush()`. Later calls throw `closed`.
    public func abandon() {
        HDF5Lock.shared.run {
            guard let id = fileID else { return }
            fileID = nil
            // -1: the descriptor could not be blocked; the id is left open (never flushed, no atexit close).
            _ = cps_h5_file_abandon(id)
        }
    }

    /// Writes all buffered raw data and metadata of the file to disk (H5Fflush, global scope) and
    /// fsync()s it. After it returns, a killed process (or an OS crash) leaves a file that opens
    /// with everything written so far. A no-op for read-only files.
    public func flush() throws {
        guard writable else { return }
        try locked { id in
            if cps_h5_file_flush(id) < 0 { throw writeError("/", "flush") }
            let sync = cps_h5_file_sync(id)
            if sync < 0 {
                let reason = sync == -1000 ? shimErrorMessage()
                    : "fsync: errno = \(-sync), error message = '\(String(cString: strerror(-sync)))'"
                throw HDF5Error.writeFailed(file: path, object: "/", operation: "fsync", reason: reason,
                                            diskFull: sync == -ENOSPC || sync == -EDQUOT)
            }
        }
    }

    // MARK: objects

    /// Whether an object (group or dataset) exists at `path` ("a/b" or "/a/b"; "/" is the root).
    public func exists(_ path: String) -> Bool {
        guard let norm = ObjectPath.normalize(path) else { return false }
        return (try? locked { id in cps_h5_kind(id, ObjectPath.shim(norm)) > 0 }) ?? false
    }

    /// Creates a group and any missing parent groups (like `mkdir -p`); an existing group is fine.
    /// - Throws: `alreadyExists` when a component is a dataset, `invalidArgument` for bad names.
    public func createGroup(_ path: String) throws {
        let norm = try normalized(path)
        guard norm != "/" else { return }
        try requireWritable(norm)
        try locked { id in
            for part in ObjectPath.ancestors(norm) + [norm] {
                let kind = cps_h5_kind(id, part)
                if kind == Int32(CPS_H5_GROUP) { continue }
                if kind < 0 { throw readError(part) }
                if kind != Int32(CPS_H5_NONE) { throw HDF5Error.alreadyExists(file: self.path, object: part) }
                if cps_h5_group_create(id, part) < 0 { throw writeError(part, "create group") }
            }
        }
    }

    /// Names of the objects directly inside a group, in name order.
    public func children(of group: String = "/") throws -> [String] {
        let norm = try normalized(group)
        return try locked { id in try childrenLocked(id, norm) }
    }

    /// `children(of:)` with the lock held.
    func childrenLocked(_ id: Int64, _ norm: String) throws -> [String] {
        let shimPath = ObjectPath.shim(norm)
        guard cps_h5_kind(id, shimPath) == Int32(CPS_H5_GROUP) else {
            throw HDF5Error.missingObject(file: path, object: norm, expected: "group")
        }
        return try names(norm, count: cps_h5_group_count(id, shimPath)) { i, buf, cap in cps_h5_group_name(id, shimPath, i, buf, cap) }
    }

    /// `count` names read one at a time by `read(index, buffer, capacity)` (returns the full length, or < 0).
    private func names(_ norm: String, count: Int64,
                       _ read: (Int64, UnsafeMutablePointer<CChar>?, Int) -> Int64) throws -> [String] {
        guard count >= 0 else { throw readError(norm) }
        var names: [String] = []
        var buf = [CChar](repeating: 0, count: 1024)
        for i in 0..<count {
            var n = buf.withUnsafeMutableBufferPointer { read(i, $0.baseAddress, $0.count) }
            if n >= Int64(buf.count) {
                guard n < (1 << 20) else { throw readError(norm) }
                buf = [CChar](repeating: 0, count: Int(n) + 1)
                n = buf.withUnsafeMutableBufferPointer { read(i, $0.baseAddress, $0.count) }
            }
            guard n >= 0, n < Int64(buf.count) else { throw readError(norm) }
            names.append(String(decoding: buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    /// Names of the attributes of the object at `object` ("/" = the root group), in name order.
    public func attributeNames(on object: String = "/") throws -> [String] {
        let norm = try normalized(object)
        let shimPath = ObjectPath.shim(norm)
        return try locked { id in
            try names(norm, count: cps_h5_attr_count(id, shimPath)) { i, buf, cap in cps_h5_attr_name(id, shimPath, i, buf, cap) }
        }
    }

    // MARK: attributes

    /// Sets (replaces) attribute `name` on the object at `object` ("/" = the file's root group).
    /// - Throws: `missingObject`, `invalidArgument` (reserved or bad name, NUL in a string),
    ///   `writeFailed`.
    public func setAttribute(_ name: String, _ value: AttributeValue, on object: String = "/") throws {
        let norm = try normalized(object)
        try requireWritable(norm)
        guard !name.isEmpty, !name.utf8.contains(0) else {
            throw HDF5Error.invalidArgument(file: path, object: norm, reason: "attribute name must be non-empty, without NUL")
        }
        guard !Self.reservedAttributes.contains(name) else {
            throw HDF5Error.invalidArgument(file: path, object: norm,
                                            reason: "attribute '\(name)' is managed by HDF5Store (dimension scales / netCDF)")
        }
        try locked { id in
            try requireExists(id, norm)
            try writeAttribute(id, norm, name, value)
        }
    }

    /// Reads attribute `name` of the object at `object`. Integer types read as `.int`/`.ints`,
    /// floating types as `.double`/`.doubles`, strings (variable or fixed length) as
    /// `.string`/`.strings`; a scalar dataspace gives the scalar case, any other the array case.
    public func attribute(_ name: String, on object: String = "/") throws -> AttributeValue {
        let norm = try normalized(object)
        return try locked { id in
            try requireExists(id, norm)
            let exists = cps_h5_attr_exists(id, ObjectPath.shim(norm), name)
            if exists < 0 { throw readError(norm) }
            if exists == 0 { throw HDF5Error.missingAttribute(file: path, object: norm, name: name) }
            let attr = cps_h5_attr_open(id, ObjectPath.shim(norm), name)
            guard attr >= 0 else { throw readError("\(norm)@\(name)") }
            defer { _ = cps_h5_close(attr) }
            let label = "\(norm)@\(name)"
            let (code, shape) = try info(attr, label)
            let count = try elementCount(shape, label)
            let scalar = shape.isEmpty
            switch Int(code) {
            case Int(CPS_H5_STR), Int(CPS_H5_FIXSTR):
                let values = try readStringsLocked(attr, count: count, label)
                return scalar ? .string(values.first ?? "") : .strings(values)
            case Int(CPS_H5_F32), Int(CPS_H5_F64):
                let values: [Double] = try readNumeric(attr, code: Int32(CPS_H5_F64), count: count, label)
                return scalar ? .double(values.first ?? .nan) : .doubles(values)
            case Int(CPS_H5_I8), Int(CPS_H5_I16), Int(CPS_H5_I32), Int(CPS_H5_I64),
                 Int(CPS_H5_U8), Int(CPS_H5_U16), Int(CPS_H5_U32):
                let values: [Int64] = try readNumeric(attr, code: Int32(CPS_H5_I64), count: count, label)
                return scalar ? .int(values.first ?? 0) : .ints(values)
            default:
                throw HDF5Error.typeMismatch(file: path, object: label, expected: "a string, integer or float attribute",
                                             found: describeStoredType(code))
            }
        }
    }

    /// Writes an attribute (caller holds the lock and checked the object exists).
    func writeAttribute(_ id: Int64, _ norm: String, _ name: String, _ value: AttributeValue) throws {
        let obj = ObjectPath.shim(norm)
        let label = "\(norm)@\(name)"
        let status: Int32
        switch value {
        case let .string(s):
            status = try withCStrings([s], label) { cps_h5_attr_write(id, obj, name, Int32(CPS_H5_STR), 0, 1, $0) }
        case let .strings(v):
            status = try withCStrings(v, label) { cps_h5_attr_write(id, obj, name, Int32(CPS_H5_STR), 1, Int64(v.count), $0) }
        case let .int(v):
            status = withUnsafePointer(to: v) { cps_h5_attr_write(id, obj, name, Int32(CPS_H5_I64), 0, 1, $0) }
        case let .ints(v):
            status = v.withUnsafeBufferPointer { cps_h5_attr_write(id, obj, name, Int32(CPS_H5_I64), 1, Int64(v.count), $0.baseAddress) }
        case let .double(v):
            status = withUnsafePointer(to: v) { cps_h5_attr_write(id, obj, name, Int32(CPS_H5_F64), 0, 1, $0) }
        case let .doubles(v):
            status = v.withUnsafeBufferPointer { cps_h5_attr_write(id, obj, name, Int32(CPS_H5_F64), 1, Int64(v.count), $0.baseAddress) }
        }
        if status < 0 { throw writeError(label, "write attribute") }
    }

    // MARK: internals shared with HDF5File+Variables

    /// Runs `body` with the open file id under the process-wide lock.
    func locked<T>(_ body: (Int64) throws -> T) throws -> T {
        try HDF5Lock.shared.run {
            guard let id = fileID else { throw HDF5Error.closed(file: path) }
            return try body(id)
        }
    }

    func normalized(_ object: String) throws -> String {
        guard let norm = ObjectPath.normalize(object) else {
            throw HDF5Error.invalidArgument(file: path, object: object,
                                            reason: "invalid object path (empty component, '.', '..' or NUL)")
        }
        return norm
    }

    func requireWritable(_ object: String) throws {
        guard writable else {
            throw HDF5Error.invalidArgument(file: path, object: object, reason: "the file was opened read-only")
        }
    }

    /// Throws `missingObject` unless `norm` exists (caller holds the lock).
    func requireExists(_ id: Int64, _ norm: String) throws {
        let kind = cps_h5_kind(id, ObjectPath.shim(norm))
        if kind < 0 { throw readError(norm) }
        if kind == Int32(CPS_H5_NONE) { throw HDF5Error.missingObject(file: path, object: norm, expected: "object") }
    }

    /// A `writeFailed` error carrying the shim's message (call right after the failing call).
    func writeError(_ object: String, _ operation: String) -> HDF5Error {
        let message = shimErrorMessage()
        return .writeFailed(file: path, object: object, operation: operation, reason: message,
                            diskFull: isDiskFull(message))
    }

    /// A `readFailed` error carrying the shim's message (call right after the failing call).
    func readError(_ object: String) -> HDF5Error {
        .readFailed(file: path, object: object, reason: shimErrorMessage())
    }

    /// Element type code and shape of a dataset or attribute id.
    func info(_ handle: Int64, _ label: String) throws -> (code: Int32, shape: [Int]) {
        var code: Int32 = 0
        var rank: Int32 = 0
        var dims = [Int64](repeating: 0, count: Int(CPS_H5_MAX_RANK))
        let status = dims.withUnsafeMutableBufferPointer {
            cps_h5_info(handle, &code, &rank, $0.baseAddress, Int32($0.count))
        }
        guard status >= 0, rank >= 0, Int(rank) <= dims.count else { throw readError(label) }
        var shape: [Int] = []
        for d in dims.prefix(Int(rank)) {
            guard let v = Int(exactly: d) else {
                throw HDF5Error.tooLarge(file: path, object: label, elements: "\(d)")
            }
            shape.append(v)
        }
        return (code, shape)
    }

    /// Element count of `shape`, checked against overflow and `maxReadElements`.
    func elementCount(_ shape: [Int], _ label: String) throws -> Int {
        guard let n = checkedProduct(shape), n <= Self.maxReadElements else {
            throw HDF5Error.tooLarge(file: path, object: label, elements: shape.map(String.init).joined(separator: "x"))
        }
        return n
    }

    /// Reads `count` numeric elements of a dataset/attribute id as shim type `code`.
    func readNumeric<T: Numeric>(_ handle: Int64, code: Int32, count: Int, _ label: String) throws -> [T] {
        guard count > 0 else { return [] }
        var out = [T](repeating: 0, count: count)
        let status = out.withUnsafeMutableBytes { cps_h5_read(handle, code, $0.baseAddress) }
        if status < 0 { throw readError(label) }
        return out
    }

    /// Reads `count` strings of a dataset/attribute id (invalid UTF-8 is repaired, never trapped on).
    func readStringsLocked(_ handle: Int64, count: Int, _ label: String) throws -> [String] {
        guard count > 0 else { return [] }
        var raw = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
        let status = raw.withUnsafeMutableBufferPointer { cps_h5_read_strings(handle, $0.baseAddress, Int64(count)) }
        if status < 0 { throw readError(label) }
        defer { raw.withUnsafeMutableBufferPointer { cps_h5_free_strings($0.baseAddress, Int64(count)) } }
        return raw.map { p in
            guard let p else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: p, count: strlen(p)), as: UTF8.self)
        }
    }

    /// Calls `body` with a C array of NUL-terminated UTF-8 copies of `strings`.
    func withCStrings<R>(_ strings: [String], _ label: String,
                         _ body: (UnsafePointer<UnsafePointer<CChar>?>?) throws -> R) throws -> R {
        if let bad = strings.firstIndex(where: { $0.utf8.contains(0) }) {
            throw HDF5Error.invalidArgument(file: path, object: label, reason: "string \(bad) contains a NUL character")
        }
        var owned: [UnsafeMutablePointer<CChar>] = []
        owned.reserveCapacity(strings.count)
        defer { owned.forEach { free($0) } }
        for s in strings {
            guard let p = strdup(s) else {
                throw HDF5Error.invalidArgument(file: path, object: label, reason: "out of memory copying strings")
            }
            owned.append(p)
        }
        let pointers: [UnsafePointer<CChar>?] = owned.map { UnsafePointer($0) }
        return try pointers.withUnsafeBufferPointer { try body($0.baseAddress) }
    }
}

// Internal support: the process-wide HDF5 lock, shim error messages, object paths, size checks
// and the chunking policy.
import Foundation
import HDF5Shim

/// Serialises every libhdf5 call. The Debian build is thread-safe, but builds without
/// `--enable-threadsafe` (e.g. Homebrew's) are not, and the shim reads the calling thread's
/// error stack right after a failure, which must not interleave with another call.
final class HDF5Lock: @unchecked Sendable {
    static let shared = HDF5Lock()
    private let lock = NSLock()

    func run<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

/// The shim's description of the calling thread's HDF5 error stack.
func shimErrorMessage() -> String {
    var buf = [CChar](repeating: 0, count: 2048)
    let n = buf.withUnsafeMutableBufferPointer { cps_h5_error_message($0.baseAddress, $0.count) }
    if n == 0 { return "HDF5 reported no detail" }
    let bytes = buf.prefix(Int(n)).map { UInt8(bitPattern: $0) }
    // Error descriptions must stay on one line; HDF5 embeds ctime() output ("time = ...\n").
    let text = String(decoding: bytes, as: UTF8.self)
        .split(whereSeparator: { $0.isNewline }).joined(separator: " ")
    return text.isEmpty ? "HDF5 reported no detail" : text
}

/// True when an HDF5 error text carries ENOSPC (28) or EDQUOT (122) from the sec2 driver, which
/// formats it as "errno = 28, error message = 'No space left on device'".
func isDiskFull(_ message: String) -> Bool {
    message.contains("errno = 28,") || message.contains("No space left on device")
        || message.contains("errno = 122,") || message.contains("Disk quota exceeded")
}

/// Object paths inside a file: '/'-separated names relative to the root. "/" is the root itself.
enum ObjectPath {
    /// Normalises "a/b", "/a/b", "a/b/" to "a/b"; "/" and "" to "/". Rejects empty components,
    /// ".", "..", and NUL. Returns nil when invalid.
    static func normalize(_ path: String) -> String? {
        if path.isEmpty || path == "/" { return "/" }
        if path.utf8.contains(0) { return nil }
        var body = Substring(path)
        if body.hasPrefix("/") { body = body.dropFirst() }
        if body.hasSuffix("/") { body = body.dropLast() }
        let parts = body.split(separator: "/", omittingEmptySubsequences: false)
        for part in parts where part.isEmpty || part == "." || part == ".." {
            return nil
        }
        return parts.joined(separator: "/")
    }

    /// The path as the shim takes it (root: ".").
    static func shim(_ normalized: String) -> String { normalized == "/" ? "." : normalized }

    /// Parent path of a normalised path ("/" for top-level objects).
    static func parent(_ normalized: String) -> String {
        guard let slash = normalized.lastIndex(of: "/") else { return "/" }
        return String(normalized[..<slash])
    }

    /// Each ancestor group of a normalised path, outermost first ("a/b/c" -> ["a", "a/b"]).
    static func ancestors(_ normalized: String) -> [String] {
        guard normalized != "/" else { return [] }
        let parts = normalized.split(separator: "/")
        return (1..<max(parts.count, 1)).map { parts[0..<$0].joined(separator: "/") }
    }
}

/// Product of non-negative sizes, nil on overflow.
func checkedProduct<C: Collection>(_ dims: C) -> Int? where C.Element == Int {
    var n = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        n = p
    }
    return n
}

/// Chunking policy for variables: one index along the first axis (one checkpoint's slab is one
/// write that touches only its own chunks), whole trailing axes, unless that exceeds
/// `byteLimit`; then trailing axes are cut from the outside in (axis 1 first) so a chunk stays
/// at most `byteLimit` bytes. HDF5 caps a chunk at 4 GiB; we stay far below, and a few MiB keeps
/// h5py's default 1 MiB chunk cache from thrashing too badly when reading whole variables.
enum Chunking {
    static let byteLimit = 4 << 20

    static func shape(dims: [Int], elementSize: Int, byteLimit: Int = byteLimit) -> [Int] {
        guard !dims.isEmpty else { return [] }
        var chunk = dims.map { max($0, 1) }
        chunk[0] = 1
        for axis in 1..<chunk.count {
            let inner = checkedProduct(chunk[(axis + 1)...]).flatMap { p -> Int? in
                let (v, o) = p.multipliedReportingOverflow(by: elementSize)
                return o ? nil : v
            } ?? Int.max
            let (whole, overflow) = inner.multipliedReportingOverflow(by: chunk[axis])
            if !overflow && whole <= byteLimit { break }
            if inner <= byteLimit {
                chunk[axis] = max(1, byteLimit / inner)
                break
            }
            chunk[axis] = 1
        }
        return chunk
    }
}

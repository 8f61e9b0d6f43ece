// Reading a JSON file with a size limit: only regular files are read (a FIFO or a device has no
// size to check), and one larger than the caller's limit is refused before anything is allocated;
// a file that grows while it is read is read up to the size it had.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a JSON file could not be read or parsed.
public enum JSONFileError: Error, Sendable, Equatable {
    case unreadable(reason: String)
    case tooLarge(size: Int, limit: Int)
    case invalid(JSONParseError)

    /// A phrase that follows the file's name: "is not valid JSON: … at byte 12".
    public var reason: String {
        switch self {
        case .unreadable(let r): return "cannot be read (\(r))"
        case let .tooLarge(size, limit): return "is \(size) bytes, over the \(limit)-byte limit"
        case .invalid(let e): return Self.reason(e)
        }
    }

    /// The phrase for a parse error: invalid UTF-8 is said as such.
    public static func reason(_ e: JSONParseError) -> String {
        if case .invalidUTF8 = e.reason { return "is not valid UTF-8 (byte \(e.offset))" }
        return "is not valid JSON: \(e.message)"
    }
}

public enum JSONFile {
    /// The bytes of the regular file at `path`, at most `limit` of them.
    public static func contents(path: String, limit: Int) throws(JSONFileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(reason: errnoText(errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(reason: errnoText(errno)) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw .unreadable(reason: (st.st_mode & S_IFMT) == S_IFDIR ? errnoText(EISDIR) : "not a regular file")
        }
        let size = Int(st.st_size)
        guard size <= limit else { throw .tooLarge(size: size, limit: limit) }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { buf -> Int in
                guard let base = buf.baseAddress else { return 0 }
                return read(fd, base + done, size - done)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .unreadable(reason: errnoText(errno))
            }
            if n == 0 { break }  // the file shrank while reading
            done += n
        }
        if done < size { bytes.removeLast(size - done) }
        return bytes
    }

    /// Reads and parses the file at `path` (at most `limit` bytes) with `JSONValue.parse`.
    public static func parse(path: String, limit: Int, maxDepth: Int = JSONValue.defaultMaxDepth) throws(JSONFileError) -> JSONValue {
        let bytes = try contents(path: path, limit: limit)
        do throws(JSONParseError) {
            return try JSONValue.parse(bytes, maxDepth: maxDepth)
        } catch {
            throw .invalid(error)
        }
    }

    static func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }
}

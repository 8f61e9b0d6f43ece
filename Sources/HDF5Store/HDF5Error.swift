// HDF5Error: the one error type of HDF5Store. Each description is one line naming the file
// and the object (dataset, group, attribute) at fault; `hint` suggests the fix.

/// Errors from reading or writing cpiscope HDF5 files.
public enum HDF5Error: Error, CustomStringConvertible, Sendable {
    /// The file could not be created (missing or read-only directory, path is a directory, ...).
    case cannotCreate(file: String, reason: String)
    /// `create(at:overwrite: false)` found an existing file, or an object of that name exists.
    case alreadyExists(file: String, object: String)
    /// The file could not be opened (missing, unreadable, read-only file opened writable, ...).
    case cannotOpen(file: String, reason: String)
    /// The file exists but is not an HDF5 file.
    case notHDF5(file: String)
    /// The `HDF5File` was used after `close()`.
    case closed(file: String)
    /// A dataset, group or dimension that the call needs does not exist. `expected` names the kind.
    case missingObject(file: String, object: String, expected: String)
    /// The object exists but has no attribute of that name.
    case missingAttribute(file: String, object: String, name: String)
    /// The stored element type (or object kind) is not the one the call reads or writes.
    case typeMismatch(file: String, object: String, expected: String, found: String)
    /// The number of values does not match the stored shape (`found` is `[count]` for a flat array).
    case shapeMismatch(file: String, object: String, expected: [Int], found: [Int])
    /// A slab index outside the first dimension.
    case indexOutOfRange(file: String, object: String, index: Int, count: Int)
    /// A bad name, value or combination of arguments.
    case invalidArgument(file: String, object: String, reason: String)
    /// The object holds more elements than HDF5Store reads in one call (or its size overflows).
    case tooLarge(file: String, object: String, elements: String)
    /// HDF5 failed to write (`operation`: write, flush, close, create, attach...). `diskFull` is
    /// set when the failure came from ENOSPC / EDQUOT.
    case writeFailed(file: String, object: String, operation: String, reason: String, diskFull: Bool)
    /// HDF5 failed to read an object that exists.
    case readFailed(file: String, object: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotCreate(file, reason):
            return "cannot create HDF5 file \(file): \(reason)"
        case let .alreadyExists(file, object):
            return object == "/" ? "HDF5 file \(file) already exists"
                : "\(file): object '\(object)' already exists"
        case let .cannotOpen(file, reason):
            return "cannot open HDF5 file \(file): \(reason)"
        case let .notHDF5(file):
            return "\(file) is not an HDF5 file (no HDF5 signature found)"
        case let .closed(file):
            return "HDF5 file \(file) was already closed"
        case let .missingObject(file, object, expected):
            return "\(file): no \(expected) '\(object)'"
        case let .missingAttribute(file, object, name):
            return "\(file): object '\(object)' has no attribute '\(name)'"
        case let .typeMismatch(file, object, expected, found):
            return "\(file): '\(object)' holds \(found), expected \(expected)"
        case let .shapeMismatch(file, object, expected, found):
            let n = expected.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
            let got = found.count == 1 ? "\(found[0]) values" : "shape \(found)"
            return "\(file): '\(object)' expects shape \(expected) (\(n) values), got \(got)"
        case let .indexOutOfRange(file, object, index, count):
            return "\(file): index \(index) is outside the first dimension of '\(object)' (size \(count))"
        case let .invalidArgument(file, object, reason):
            return "\(file): '\(object)': \(reason)"
        case let .tooLarge(file, object, elements):
            return "\(file): '\(object)' has \(elements) elements, more than HDF5Store reads at once"
        case let .writeFailed(file, object, operation, reason, diskFull):
            let what = diskFull ? "disk full" : "\(operation) failed"
            return "\(file): \(what) while writing '\(object)' (\(operation)): \(reason)"
        case let .readFailed(file, object, reason):
            return "\(file): cannot read '\(object)': \(reason)"
        }
    }

    public var hint: String {
        switch self {
        case .cannotCreate:
            return "Check that the output directory exists and is writable, or choose another --out path."
        case let .alreadyExists(_, object):
            return object == "/" ? "Pass overwrite (e.g. --overwrite) to replace it, or --resume to continue it."
                : "Use a different name, or open the file and reuse the existing object."
        case .cannotOpen:
            return "Check the path and its permissions; a read-only file can only be opened with writable: false."
        case .notHDF5:
            return "Point at the .h5 file written by cpiscope; the file may also be truncated or another format."
        case .closed:
            return "Keep the HDF5File open until all reads and writes are done; call close() last."
        case let .missingObject(_, _, expected):
            return expected == "dimension"
                ? "Create the dimension first with createDimension(_:strings:) or createDimension(_:ints:)."
                : "List the file with h5ls -r (or h5py) to see which objects it holds; the file may be from an older run."
        case .missingAttribute:
            return "The file may come from another cpiscope version; inspect its attributes with h5dump -A."
        case .typeMismatch:
            return "Use the read/write call that matches the stored type (see HDF5ElementType)."
        case .shapeMismatch:
            return "Pass exactly one value per element of the slab or variable (row-major, trailing dims)."
        case .indexOutOfRange:
            return "Slab indices run from 0 to the size of the first dimension minus one."
        case .invalidArgument:
            return "Names are non-empty, '/'-separated, without '.', '..' or NUL; values must fit the variable type."
        case .tooLarge:
            return "Read the variable slab by slab (readFloats(_:slab:)) or with h5py."
        case let .writeFailed(_, _, _, _, diskFull):
            return diskFull
                ? "Free disk space (or write to another volume), then rerun with --resume: flushed checkpoints are kept."
                : "Check free space and permissions of the output volume; flushed checkpoints are kept, rerun with --resume."
        case .readFailed:
            return "The file may be damaged or still being written; retry after the run finished, or rerun it."
        }
    }
}

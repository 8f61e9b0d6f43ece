// Value types of the HDF5Store API: element types of variables and attribute values.
import HDF5Shim

/// Element types of variables that HDF5Store writes.
public enum HDF5ElementType: Sendable, Equatable, CustomStringConvertible {
    case float32, int32, int64, uint8
    /// Variable-length UTF-8 string (h5py returns `str`/`bytes`, xarray `str` objects).
    case string

    public var description: String {
        switch self {
        case .float32: return "float32"
        case .int32: return "int32"
        case .int64: return "int64"
        case .uint8: return "uint8"
        case .string: return "string (variable-length UTF-8)"
        }
    }

    /// The shim's type code.
    var code: Int32 {
        switch self {
        case .float32: return Int32(CPS_H5_F32)
        case .int32: return Int32(CPS_H5_I32)
        case .int64: return Int32(CPS_H5_I64)
        case .uint8: return Int32(CPS_H5_U8)
        case .string: return Int32(CPS_H5_STR)
        }
    }

    /// Bytes per element in the file (strings: the 16-byte global-heap reference).
    var storedSize: Int {
        switch self {
        case .float32, .int32: return 4
        case .int64: return 8
        case .uint8: return 1
        case .string: return 16
        }
    }

    /// The fill value used when none is given: NaN, -1, 0, "".
    var defaultFill: AttributeValue {
        switch self {
        case .float32: return .double(.nan)
        case .int32, .int64: return .int(-1)
        case .uint8: return .int(0)
        case .string: return .string("")
        }
    }
}

/// An attribute value. Scalars are stored with a scalar dataspace, arrays as 1-D.
/// Strings are variable-length UTF-8; integers int64; reals float64.
public enum AttributeValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case strings([String])
    case ints([Int64])
    case doubles([Double])

    /// The value as a user reads it in an error message: a string quoted (long ones cut), a number bare,
    /// a list in brackets.
    public var description: String {
        func quoted(_ s: String) -> String {
            let shown = s.count > 80 ? s.prefix(77) + "..." : s
            return "\"" + shown.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\t", with: "\\t") + "\""
        }
        switch self {
        case let .string(s): return quoted(s)
        case let .int(v): return "\(v)"
        case let .double(v): return "\(v)"
        case let .strings(v): return "[" + v.map(quoted).joined(separator: ", ") + "]"
        case let .ints(v): return "[" + v.map(String.init).joined(separator: ", ") + "]"
        case let .doubles(v): return "[" + v.map { "\($0)" }.joined(separator: ", ") + "]"
        }
    }

    /// Equality with NaN == NaN, so attributes holding NaN round-trip as equal.
    public static func == (lhs: AttributeValue, rhs: AttributeValue) -> Bool {
        func same(_ a: Double, _ b: Double) -> Bool { a == b || (a.isNaN && b.isNaN) }
        switch (lhs, rhs) {
        case let (.string(a), .string(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return same(a, b)
        case let (.strings(a), .strings(b)): return a == b
        case let (.ints(a), .ints(b)): return a == b
        case let (.doubles(a), .doubles(b)): return a.count == b.count && zip(a, b).allSatisfy { same($0, $1) }
        default: return false
        }
    }
}

/// Describes a shim type code found in a file.
func describeStoredType(_ code: Int32) -> String {
    switch Int(code) {
    case Int(CPS_H5_F32): return "float32"
    case Int(CPS_H5_F64): return "float64"
    case Int(CPS_H5_F16): return "float16"
    case Int(CPS_H5_I8): return "int8"
    case Int(CPS_H5_I16): return "int16"
    case Int(CPS_H5_I32): return "int32"
    case Int(CPS_H5_I64): return "int64"
    case Int(CPS_H5_U8): return "uint8"
    case Int(CPS_H5_U16): return "uint16"
    case Int(CPS_H5_U32): return "uint32"
    case Int(CPS_H5_U64): return "uint64"
    case Int(CPS_H5_STR): return "variable-length strings"
    case Int(CPS_H5_FIXSTR): return "fixed-length strings"
    default: return "an unsupported HDF5 type"
    }
}

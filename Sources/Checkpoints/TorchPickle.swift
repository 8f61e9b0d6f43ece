// A restricted pickle interpreter for the `data.pkl` record of PyTorch checkpoints: it understands the
// opcodes and the handful of globals that `torch.save(state_dict)` emits and refuses everything else.
// Nothing is ever imported or called: a global is a name checked against an allow-list, and REDUCE on
// an allowed name builds a plain value (an empty dict, a tensor view) by a fixed rule.
//
// What torch.save writes (protocol 2, torch/serialization.py `_save`):
//
//   OrderedDict() ← REDUCE(GLOBAL collections.OrderedDict, ())
//   for each entry:  key (BINUNICODE) and
//     REDUCE(GLOBAL torch._utils._rebuild_tensor_v2,
//            (BINPERSID ('storage', GLOBAL torch.FloatStorage, '<key>', 'cpu', <numel>),
//             storage_offset, (size…), (stride…), requires_grad, OrderedDict()[, metadata]))
//     nn.Parameter values wrap that in REDUCE(GLOBAL torch._utils._rebuild_parameter, (tensor, bool, OrderedDict()))
//   SETITEMS, then (for Module.state_dict()) BUILD with {'_metadata': {…versions…}}, which is dropped.
//
// The persistent id names a storage record `data/<key>` of the zip; its bytes are the storage's
// elements in the dtype of the storage type. See docs/torch-bin.md for the accepted set and why.

/// The storage element types the reader accepts, by torch storage-type name.
enum TorchStorageType {
    static let dtypes: [String: SafeTensorsDType] = [
        "FloatStorage": .F32, "HalfStorage": .F16, "BFloat16Storage": .BF16, "DoubleStorage": .F64,
        "LongStorage": .I64, "IntStorage": .I32, "ShortStorage": .I16, "CharStorage": .I8,
        "ByteStorage": .U8, "BoolStorage": .BOOL,
    ]
}

/// A storage named by a persistent id.
struct TorchStorageRef: Sendable, Equatable {
    var key: String
    var dtype: SafeTensorsDType
    /// Elements, as declared in the persistent id.
    var count: Int
}

/// A tensor: a view (offset, shape, strides in elements) of a storage.
struct TorchTensorView: Sendable, Equatable {
    var storage: TorchStorageRef
    var offset: Int
    var shape: [Int]
    var stride: [Int]
}

/// Globals the interpreter knows. Any other `module.name` is refused where it appears.
enum PickleGlobal: Sendable, Equatable {
    case orderedDict
    case rebuildTensorV2
    case rebuildParameter
    case storageType(String, SafeTensorsDType)

    static func lookup(module: String, name: String) -> PickleGlobal? {
        switch (module, name) {
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch", _): return TorchStorageType.dtypes[name].map { .storageType(name, $0) }
        default: return nil
        }
    }
}

/// A dict or OrderedDict under construction (SETITEM(S) mutate it after it was memoized).
final class PickleDict {
    var pairs: [(key: PickleValue, value: PickleValue)] = []
    var depth = 1
}

/// A list (APPEND(S) mutate it after it was memoized).
final class PickleList {
    var items: [PickleValue] = []
    var depth = 1
}

/// The values the interpreter builds.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case tuple([PickleValue], depth: Int)
    case list(PickleList)
    case dict(PickleDict)
    case global(PickleGlobal)
    case storage(TorchStorageRef)
    case tensor(TorchTensorView)

    /// Nesting depth (1 for a scalar): bounded, so that no recursion over a value can run deep.
    var depth: Int {
        switch self {
        case .tuple(_, let d): return d
        case .list(let l): return l.depth
        case .dict(let d): return d.depth
        default: return 1
        }
    }

    var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .global(let g): return "global \(g)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }
}

/// The restricted interpreter.
struct TorchUnpickler {
    /// data.pkl larger than this is refused (a 405B-parameter checkpoint's is a few MB).
    static let maxPickleSize = 256 << 20
    /// Values nested deeper than this are refused (state dicts nest 3 deep).
    static let maxDepth = 32
    /// Memo slots; the memo is a dictionary, so a huge index costs nothing until it is used this often.
    static let maxMemo = 10_000_000
    /// Tensors with more dimensions than this are refused (torch allows 64).
    static let maxDims = 64

    let bytes: UnsafeRawBufferPointer
    let path: String
    let entry: String
    private var pos = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    init(_ bytes: UnsafeRawBufferPointer, path: String, entry: String) {
        self.bytes = bytes
        self.path = path
        self.entry = entry
    }

    /// Interprets the whole stream and returns the value at STOP.
    static func load(_ bytes: UnsafeRawBufferPointer, path: String, entry: String) throws(TorchFileError) -> PickleValue {
        guard bytes.count <= maxPickleSize else { throw .limit(file: path, what: "\(entry) size", value: bytes.count, limit: maxPickleSize) }
        var u = TorchUnpickler(bytes, path: path, entry: entry)
        return try u.run()
    }

    private func fail(_ reason: String, at offset: Int? = nil) -> TorchFileError {
        .badPickle(file: path, entry: entry, offset: offset ?? pos, reason: reason)
    }

    private mutating func run() throws(TorchFileError) -> PickleValue {
        while true {
            let start = pos
            let op = try byte()
            switch op {
            case 0x80:  // PROTO
                let v = try byte()
                guard v >= 2 && v <= 5 else { throw fail("protocol \(v) (expected 2 to 5)", at: start) }
            case 0x95:  // FRAME: an 8-byte length; frames are only a buffering hint
                _ = try take(8)
            case 0x2E:  // STOP
                guard marks.isEmpty, stack.count == 1 else {
                    throw fail("STOP with \(stack.count) values and \(marks.count) marks on the stack", at: start)
                }
                return stack[0]
            case 0x28:  // MARK
                marks.append(stack.count)
            case 0x63:  // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                try push(.global(try global(module, name, at: start)))
            case 0x93:  // STACK_GLOBAL
                let name = try pop(), module = try pop()
                guard case .string(let m) = module, case .string(let n) = name else {
                    throw fail("STACK_GLOBAL needs two strings, got \(module.kindName) and \(name.kindName)", at: start)
                }
                try push(.global(try global(m, n, at: start)))
            case 0x71: try put(Int(try byte()))  // BINPUT
            case 0x72: try put(Int(try u32()))   // LONG_BINPUT
            case 0x94: try put(memo.count)       // MEMOIZE
            case 0x68: try get(Int(try byte()), at: start)  // BINGET
            case 0x6A: try get(Int(try u32()), at: start)   // LONG_BINGET
            case 0x29: try push(.tuple([], depth: 1))       // EMPTY_TUPLE
            case 0x74: try push(tuple(try popMark(at: start)))  // TUPLE
            case 0x85: let a = try pop(); try push(tuple([a]))                       // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); try push(tuple([a, b]))     // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); try push(tuple([a, b, c]))  // TUPLE3
            case 0x7D: try push(.dict(PickleDict()))  // EMPTY_DICT
            case 0x5D: try push(.list(PickleList()))  // EMPTY_LIST
            case 0x61:  // APPEND
                let v = try pop()
                try append([v], at: start)
            case 0x65:  // APPENDS
                let items = try popMark(at: start)
                try append(items, at: start)
            case 0x73:  // SETITEM
                let v = try pop(), k = try pop()
                try setItems([k, v], at: start)
            case 0x75:  // SETITEMS
                let items = try popMark(at: start)
                try setItems(items, at: start)
            case 0x52:  // REDUCE
                let args = try pop(), callable = try pop()
                try push(try reduce(callable, args, at: start))
            case 0x62:  // BUILD: only a state dict's `_metadata` attribute on an OrderedDict, which is dropped
                let state = try pop()
                guard case .dict = try peek(), case .dict = state else {
                    throw fail("BUILD is accepted only to set attributes of an OrderedDict (got \(state.kindName) on \((try? peek())?.kindName ?? "nothing"))", at: start)
                }
            case 0x51:  // BINPERSID
                let pid = try pop()
                try push(.storage(try persistentStorage(pid, at: start)))
            case 0x4B: try push(.int(Int(try byte())))           // BININT1
            case 0x4D: try push(.int(Int(try u16())))            // BININT2
            case 0x4A: try push(.int(Int(Int32(bitPattern: try u32()))))  // BININT
            case 0x8A:  // LONG1: n-byte two's complement
                let n = Int(try byte())
                try push(.int(try long(n, at: start)))
            case 0x4E: try push(.none)         // NONE
            case 0x88: try push(.bool(true))   // NEWTRUE
            case 0x89: try push(.bool(false))  // NEWFALSE
            case 0x47:  // BINFLOAT: big-endian double
                let raw = try take(8)
                var bits: UInt64 = 0
                for b in raw { bits = bits << 8 | UInt64(b) }
                try push(.float(Double(bitPattern: bits)))
            case 0x58: try push(.string(try text(Int(try u32()), at: start)))   // BINUNICODE
            case 0x8C: try push(.string(try text(Int(try byte()), at: start)))  // SHORT_BINUNICODE
            case 0x8D:  // BINUNICODE8
                let raw = try take(8)
                var n: UInt64 = 0
                for b in raw.reversed() { n = n << 8 | UInt64(b) }
                guard n <= UInt64(bytes.count) else { throw fail("a string of \(n) bytes runs past the end", at: start) }
                try push(.string(try text(Int(n), at: start)))
            default:
                throw TorchFileError.forbiddenOpcode(file: path, entry: entry, offset: start, opcode: op,
                                                     name: PickleOpcodeNames.name(of: op))
            }
        }
    }

    // MARK: stack and memo

    private mutating func push(_ v: PickleValue) throws(TorchFileError) {
        guard v.depth <= Self.maxDepth else {
            throw TorchFileError.limit(file: path, what: "value nesting in \(entry)", value: v.depth, limit: Self.maxDepth)
        }
        stack.append(v)
    }

    private mutating func pop() throws(TorchFileError) -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        stack.removeLast()
        return v
    }

    private func peek() throws(TorchFileError) -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw fail("stack underflow") }
        return v
    }

    private mutating func popMark(at start: Int) throws(TorchFileError) -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no MARK before this opcode", at: start) }
        let items = Array(stack[m...])
        stack.removeSubrange(m...)
        return items
    }

    private mutating func put(_ index: Int) throws(TorchFileError) {
        guard memo.count < Self.maxMemo || memo[index] != nil else {
            throw TorchFileError.limit(file: path, what: "memo entries in \(entry)", value: memo.count + 1, limit: Self.maxMemo)
        }
        memo[index] = try peek()
    }

    private mutating func get(_ index: Int, at start: Int) throws(TorchFileError) {
        guard let v = memo[index] else { throw fail("memo slot \(index) is empty", at: start) }
        try push(v)
    }

    private func tuple(_ items: [PickleValue]) -> PickleValue {
        .tuple(items, depth: 1 + (items.map(\.depth).max() ?? 0))
    }

    private mutating func append(_ items: [PickleValue], at start: Int) throws(TorchFileError) {
        guard case .list(let l) = try peek() else { throw fail("APPEND to a \((try? peek())?.kindName ?? "nothing")", at: start) }
        for v in items {
            l.depth = max(l.depth, v.depth + 1)
            guard l.depth <= Self.maxDepth else {
                throw TorchFileError.limit(file: path, what: "value nesting in \(entry)", value: l.depth, limit: Self.maxDepth)
            }
            l.items.append(v)
        }
    }

    private mutating func setItems(_ items: [PickleValue], at start: Int) throws(TorchFileError) {
        guard case .dict(let d) = try peek() else { throw fail("SETITEM on a \((try? peek())?.kindName ?? "nothing")", at: start) }
        guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of values", at: start) }
        var i = 0
        while i < items.count {
            // A dict that holds itself would be a cycle; containers are never keys or values of themselves here.
            d.depth = max(d.depth, items[i].depth + 1, items[i + 1].depth + 1)
            guard d.depth <= Self.maxDepth else {
                throw TorchFileError.limit(file: path, what: "value nesting in \(entry)", value: d.depth, limit: Self.maxDepth)
            }
            d.pairs.append((items[i], items[i + 1]))
            i += 2
        }
    }

    // MARK: globals, REDUCE, persistent ids

    private func global(_ module: String, _ name: String, at start: Int) throws(TorchFileError) -> PickleGlobal {
        guard let g = PickleGlobal.lookup(module: module, name: name) else {
            throw TorchFileError.forbiddenGlobal(file: path, entry: entry, offset: start, module: module, name: name)
        }
        return g
    }

    /// The only "calls": fixed constructions for the allowed globals, checked argument by argument.
    private func reduce(_ callable: PickleValue, _ args: PickleValue, at start: Int) throws(TorchFileError) -> PickleValue {
        guard case .global(let g) = callable else { throw fail("REDUCE of a \(callable.kindName), which is not callable", at: start) }
        guard case .tuple(let a, _) = args else { throw fail("REDUCE arguments are a \(args.kindName), expected a tuple", at: start) }
        switch g {
        case .orderedDict:
            guard a.isEmpty else { throw fail("OrderedDict(...) with \(a.count) arguments (only OrderedDict() is accepted)", at: start) }
            return .dict(PickleDict())
        case .rebuildTensorV2:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard a.count == 6 || a.count == 7 else { throw fail("_rebuild_tensor_v2 with \(a.count) arguments (expected 6 or 7)", at: start) }
            guard case .storage(let s) = a[0] else { throw fail("_rebuild_tensor_v2: argument 1 is a \(a[0].kindName), expected a storage", at: start) }
            guard case .int(let offset) = a[1] else { throw fail("_rebuild_tensor_v2: storage_offset is a \(a[1].kindName)", at: start) }
            let shape = try ints(a[2], "size", at: start), stride = try ints(a[3], "stride", at: start)
            guard shape.count == stride.count else {
                throw fail("_rebuild_tensor_v2: size has \(shape.count) dimensions but stride \(stride.count)", at: start)
            }
            guard shape.count <= Self.maxDims else {
                throw TorchFileError.limit(file: path, what: "tensor dimensions", value: shape.count, limit: Self.maxDims)
            }
            guard case .bool = a[4] else { throw fail("_rebuild_tensor_v2: requires_grad is a \(a[4].kindName)", at: start) }
            try emptyHooks(a[5], at: start)
            if a.count == 7 {
                switch a[6] { case .none, .dict: break
                default: throw fail("_rebuild_tensor_v2: metadata is a \(a[6].kindName)", at: start) }
            }
            return .tensor(TorchTensorView(storage: s, offset: offset, shape: shape, stride: stride))
        case .rebuildParameter:
            // (data, requires_grad, backward_hooks)
            guard a.count == 3, case .tensor = a[0], case .bool = a[1] else {
                throw fail("_rebuild_parameter needs (tensor, bool, OrderedDict())", at: start)
            }
            try emptyHooks(a[2], at: start)
            return a[0]
        case .storageType(let name, _):
            throw TorchFileError.forbiddenCall(file: path, entry: entry, offset: start, callable: "torch.\(name)")
        }
    }

    /// Backward hooks are functions; only an empty OrderedDict is accepted.
    private func emptyHooks(_ v: PickleValue, at start: Int) throws(TorchFileError) {
        guard case .dict(let d) = v, d.pairs.isEmpty else { throw fail("backward hooks must be an empty OrderedDict, got \(v.kindName)", at: start) }
    }

    private func ints(_ v: PickleValue, _ what: String, at start: Int) throws(TorchFileError) -> [Int] {
        guard case .tuple(let items, _) = v else { throw fail("_rebuild_tensor_v2: \(what) is a \(v.kindName), expected a tuple", at: start) }
        var out: [Int] = []
        for i in items {
            guard case .int(let n) = i else { throw fail("_rebuild_tensor_v2: \(what) holds a \(i.kindName)", at: start) }
            out.append(n)
        }
        return out
    }

    /// ('storage', <storage type>, key, location, numel) → the storage it names.
    private func persistentStorage(_ pid: PickleValue, at start: Int) throws(TorchFileError) -> TorchStorageRef {
        guard case .tuple(let t, _) = pid, t.count == 5, case .string("storage") = t[0] else {
            throw TorchFileError.badPersistentID(file: path, offset: start, reason: "expected ('storage', type, key, location, numel), got a \(pid.kindName)")
        }
        guard case .global(.storageType(_, let dtype)) = t[1] else {
            throw TorchFileError.badPersistentID(file: path, offset: start, reason: "the storage type is a \(t[1].kindName)")
        }
        guard case .string(let key) = t[2], !key.isEmpty else {
            throw TorchFileError.badPersistentID(file: path, offset: start, reason: "the storage key is a \(t[2].kindName), expected a string")
        }
        guard case .string = t[3] else {
            throw TorchFileError.badPersistentID(file: path, offset: start, reason: "the location is a \(t[3].kindName), expected a string")
        }
        guard case .int(let n) = t[4], n >= 0 else {
            throw TorchFileError.badPersistentID(file: path, offset: start, reason: "the element count is not a non-negative int")
        }
        return TorchStorageRef(key: key, dtype: dtype, count: n)
    }

    // MARK: reading bytes

    private mutating func byte() throws(TorchFileError) -> UInt8 {
        guard pos < bytes.count else { throw fail("the stream ends without STOP") }
        defer { pos += 1 }
        return bytes[pos]
    }

    private mutating func take(_ n: Int) throws(TorchFileError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - pos else { throw fail("the stream ends inside an argument") }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)])
    }

    private mutating func u16() throws(TorchFileError) -> UInt16 { try take(2).loadUnaligned(as: UInt16.self).littleEndian }
    private mutating func u32() throws(TorchFileError) -> UInt32 { try take(4).loadUnaligned(as: UInt32.self).littleEndian }

    private mutating func long(_ n: Int, at start: Int) throws(TorchFileError) -> Int {
        guard n <= 8 else { throw fail("LONG1 of \(n) bytes does not fit a 64-bit integer", at: start) }
        let raw = try take(n)
        guard n > 0 else { return 0 }
        var v: UInt64 = 0
        for (i, b) in raw.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        if n < 8, raw[n - 1] & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(n)) }   // sign-extend
        return Int(Int64(bitPattern: v))
    }

    private mutating func text(_ n: Int, at start: Int) throws(TorchFileError) -> String {
        let raw = try take(n)
        guard let s = String(validating: raw, as: UTF8.self) else { throw fail("a string that is not UTF-8", at: start) }
        return s
    }

    /// A GLOBAL argument: printable ASCII up to a newline, at most 256 bytes.
    private mutating func line() throws(TorchFileError) -> String {
        var out: [UInt8] = []
        while true {
            let b = try byte()
            if b == 0x0A { break }
            guard b >= 0x20 && b < 0x7F, out.count < 256 else { throw fail("a GLOBAL name that is not a short printable line") }
            out.append(b)
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Pickle opcode names (Python's pickletools), for errors that name a refused opcode.
enum PickleOpcodeNames {
    static func name(of op: UInt8) -> String {
        table[op] ?? "unknown opcode"
    }

    static let table: [UInt8: String] = [
        0x28: "MARK", 0x2E: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT",
        0x4A: "BININT", 0x4B: "BININT1", 0x4C: "LONG", 0x4D: "BININT2", 0x4E: "NONE", 0x50: "PERSID",
        0x51: "BINPERSID", 0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING",
        0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND", 0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT",
        0x7D: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET", 0x69: "INST", 0x6A: "LONG_BINGET",
        0x6C: "LIST", 0x5D: "EMPTY_LIST", 0x6F: "OBJ", 0x70: "PUT", 0x71: "BINPUT", 0x72: "LONG_BINPUT",
        0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT",
        0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2",
        0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8A: "LONG1", 0x8B: "LONG4", 0x42: "BINBYTES",
        0x43: "SHORT_BINBYTES", 0x8C: "SHORT_BINUNICODE", 0x8D: "BINUNICODE8", 0x8E: "BINBYTES8",
        0x8F: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL",
        0x94: "MEMOIZE", 0x95: "FRAME", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
    ]
}

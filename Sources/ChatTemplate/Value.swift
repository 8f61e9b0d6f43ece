// The runtime values of the chat-template interpreter: Python's values as jinja2 sees them.
//
// Templates are Python code in disguise, and their output depends on Python's rules: truthiness,
// `==` across int/float/bool, `str()` and `repr()` of every value (a printed list shows `'a'` with
// Python's quoting, a float prints as `1.0`, `None`, `True`), the order of dict keys (insertion order)
// and strings indexed by code point (Swift `String` counts grapheme clusters and compares by canonical
// equivalence; here strings are compared and indexed by Unicode scalars, as Python does).
//
// Containers carry their nesting depth, so that a template cannot build a value deep enough to blow the
// stack when it is printed, compared or freed (`ChatTemplateLimits.maxValueDepth`).
import StrictJSON

/// A value of the template language: what a variable holds, an expression yields, a filter returns.
public enum Value: Sendable {
    /// jinja2's `Undefined`: a missing variable, attribute or item. Prints as "", is false, iterates as
    /// empty; any other use (arithmetic, attribute access, calling) is an error naming what was missing.
    case undefined(Undefined)
    /// Python `None` (`none` in templates; JSON null).
    case none
    /// Python `True` / `False`.
    case bool(Bool)
    /// Python `int`, limited to 64 bits: an overflowing operation is an error.
    case int(Int)
    /// Python `float`; prints as Python's repr (`1.0`, `1e-05`).
    case float(Double)
    /// Python `str`: indexed, sliced and compared by Unicode code point.
    case string(String)
    /// A Python list.
    case list(ValueList)
    /// A tuple (what `dict.items()` yields, `(a, b)` literals): prints with parentheses, JSON as a list.
    case tuple(ValueList)
    case dict(ValueDict)
    /// The object `namespace()` returns: the one mutable value (`{% set ns.attr = ... %}`).
    case namespace(Namespace)
    /// A macro, a global function (`range`, `raise_exception`…) or a method bound to its receiver.
    case callable(Callable)
    /// A Python generator or iterator (what `select`, `map`, `selectattr`, `unique`, `batch`, `items` and
    /// `reverse` return): always true, has no length, is consumed by iterating it.
    case iterator(ValueIterator)
    /// A view of a dict (`d.items()`, `d.keys()`, `d.values()`): iterable and sized, not subscriptable.
    case view(DictView)

    /// A list value; `depth` is computed from the items.
    public static func list(_ items: [Value]) -> Value { .list(ValueList(items)) }
    /// A tuple value.
    public static func tuple(_ items: [Value]) -> Value { .tuple(ValueList(items)) }
}

/// Why a value is undefined; it becomes the message of the error raised when the value is used.
public struct Undefined: Sendable, Equatable {
    /// The jinja2 message: `'x' is undefined`, `'dict object' has no attribute 'y'`.
    public let message: String
    /// The sandbox refused the attribute (a method that would mutate a list or dict): using the value
    /// raises a SecurityError rather than an UndefinedError.
    let isUnsafe: Bool

    init(_ message: String, unsafe: Bool = false) {
        self.message = message
        isUnsafe = unsafe
    }

    /// The error raised when the value is used.
    var error: PyError { PyError(isUnsafe ? .security : .undefined, message) }

    static func unsafe(_ object: Value, _ name: String) -> Undefined {
        Undefined("access to attribute \(pythonRepr(name)) of '\(object.typeName)' object is unsafe.", unsafe: true)
    }

    static func name(_ name: String) -> Undefined { Undefined("'\(name)' is undefined") }

    static func attribute(of object: Value, _ name: String) -> Undefined {
        Undefined("'\(object.objectTypeRepr)' has no attribute \(pythonRepr(name))")
    }

    static func element(of object: Value, _ key: Value) -> Undefined {
        if case .string(let s) = key { return attribute(of: object, s) }
        return Undefined("'\(object.objectTypeRepr)' has no element \((try? key.repr(depth: 0)) ?? "?")")
    }
}

/// The items of a list or tuple and their nesting depth.
public struct ValueList: Sendable {
    /// The items, in order.
    public let items: [Value]
    /// 1 + the deepest item's depth.
    public let depth: Int

    /// A list of `items`.
    public init(_ items: [Value]) {
        self.items = items
        var d = 0
        for v in items { d = max(d, v.depth) }
        depth = d + 1
    }
}

/// A generator: its items computed up front; an error raised while computing them (a test failing on
/// one item) is raised when the consumer reaches that item, as the lazy generator would raise it.
public final class ValueIterator: @unchecked Sendable {
    /// Python's type name: "generator", "list_reverseiterator"…
    let typeName: String
    /// The function that made it, for its repr: "select_or_reject", "sync_do_map"…
    let function: String
    private let items: [Value]
    private let error: PyError?
    private var position = 0
    let depth: Int

    init(_ items: [Value], error: PyError? = nil, typeName: String = "generator", function: String) {
        self.items = items
        self.error = error
        self.typeName = typeName
        self.function = function
        depth = ValueList(items).depth
    }

    /// The items not consumed yet; consumes them (raising the deferred error at the end, if any).
    func drain() throws(PyError) -> [Value] {
        let rest = Array(items[position...])
        position = items.count
        if let error { throw error }
        return rest
    }

    /// The next item (nil at the end); consumes it.
    func next() throws(PyError) -> Value? {
        if position < items.count {
            position += 1
            return items[position - 1]
        }
        if let error { throw error }
        return nil
    }
}

/// `dict.items()`, `dict.keys()` or `dict.values()`.
public struct DictView: Sendable {
    /// "dict_items", "dict_keys" or "dict_values".
    let typeName: String
    let items: ValueList
}

/// A Python dict: keys in insertion order, looked up by Python equality (`1`, `1.0` and `True` are one key).
public struct ValueDict: Sendable {
    /// The keys, in insertion order.
    public private(set) var keys: [Value] = []
    /// The values, aligned with `keys`.
    public private(set) var values: [Value] = []
    private var index: [HashKey: Int] = [:]
    /// 1 + the deepest key's or value's depth.
    public private(set) var depth: Int = 1

    /// An empty dict.
    public init() {}

    /// Builds a dict from pairs; a later duplicate key replaces the value and keeps the first position.
    init(pairs: [(Value, Value)]) throws(PyError) {
        for (k, v) in pairs { try set(k, v) }
    }

    /// The number of keys.
    public var count: Int { keys.count }

    /// The value of `key`, or nil. Unhashable keys (lists, dicts) are never present.
    public subscript(key: Value) -> Value? {
        guard let h = try? HashKey(key), let i = index[h] else { return nil }
        return values[i]
    }

    /// The value of a string key.
    public subscript(key: String) -> Value? { self[.string(key)] }

    mutating func set(_ key: Value, _ value: Value) throws(PyError) {
        let h = try HashKey(key)
        if let i = index[h] {
            values[i] = value
        } else {
            index[h] = keys.count
            keys.append(key)
            values.append(value)
        }
        depth = max(depth, max(key.depth, value.depth) + 1)
    }

    /// Sets a string key (appended when new, replaced in place otherwise).
    public mutating func set(_ key: String, _ value: Value) {
        try? set(.string(key), value)  // a string is always hashable
    }

    /// The (key, value) pairs in order.
    public var pairs: Zip2Sequence<[Value], [Value]> { zip(keys, values) }
}

/// The object of `namespace(...)`: attributes set by `{% set ns.attr = value %}`, shared by every
/// reference to it. Created and mutated only inside one `render` call, on one thread.
public final class Namespace: @unchecked Sendable {
    var attributes: ValueDict
    /// An upper bound of the nesting depth of what the namespace holds (it only grows).
    private(set) var depth: Int
    /// The `loop` object of a for loop (read-only to templates; has `cycle()` and `changed()`).
    let isLoop: Bool
    /// The last value given to `loop.changed()`.
    var lastChanged: [Value]? = nil

    init(_ attributes: ValueDict, isLoop: Bool = false) {
        self.attributes = attributes
        depth = attributes.depth
        self.isLoop = isLoop
    }

    func set(_ name: String, _ value: Value) {
        attributes.set(name, value)
        depth = max(depth, value.depth + 1)
    }

    func replaceAttributes(_ a: ValueDict) {
        attributes = a
        depth = max(depth, a.depth)
    }
}

/// Something a template can call.
public indirect enum Callable: Sendable {
    /// A global function of the environment: `range`, `dict`, `namespace`, `raise_exception`, `strftime_now`…
    case global(String)
    /// A method of a value: `'s'.strip`, `d.get`, `loop.cycle`.
    case method(Value, String)
    /// A `{% macro %}`, or the `caller` of a `{% call %}` block.
    case macro(MacroValue)
}

/// A macro as a value: its definition and the scopes it was defined in.
public struct MacroValue: Sendable {
    let definition: MacroDefinition
    /// The variables visible where the macro was defined, below the template's top level.
    let closure: [[String: Value]]
    /// For a `caller`: the macro that was called with the `{% call %}` block (nil otherwise).
    let isCaller: Bool
}

// MARK: - errors raised by Python-level operations (located by the evaluator)

/// A Python exception raised by an operation on values; the evaluator adds the template location.
struct PyError: Error {
    enum Kind { case type, value, undefined, zeroDivision, overflow, security, runtime, limit, unsupported, index, raised, attribute, filterArgument, impossible }
    let kind: Kind
    let message: String
    /// For `.limit`: the limit that was exceeded.
    let limit: Int

    init(_ kind: Kind, _ message: String, limit: Int = 0) {
        self.kind = kind
        self.message = message
        self.limit = limit
    }

    static func type(_ m: String) -> PyError { PyError(.type, m) }
    static func value(_ m: String) -> PyError { PyError(.value, m) }
    static func undefined(_ u: Undefined) -> PyError { u.error }
}

// MARK: - basic properties

extension Value {
    /// Nesting depth: 0 for scalars, 1 + the deepest element for containers.
    public var depth: Int {
        switch self {
        case .list(let l), .tuple(let l): return l.depth
        case .dict(let d): return d.depth
        case .namespace(let n): return n.depth
        case .iterator(let i): return i.depth
        case .view(let v): return v.items.depth
        default: return 0
        }
    }

    /// Python truthiness (`bool(x)`); undefined is false.
    public var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .float(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let l), .tuple(let l): return !l.items.isEmpty
        case .dict(let d): return d.count > 0
        case .namespace, .callable, .iterator: return true
        case .view(let v): return !v.items.items.isEmpty
        }
    }

    /// Whether the value is jinja2's Undefined.
    public var isUndefined: Bool { if case .undefined = self { return true }; return false }
    /// Whether the value is Python's None.
    public var isNone: Bool { if case .none = self { return true }; return false }

    /// Python's `type(x).__name__`, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .iterator(let i): return i.typeName
        case .view(let v): return v.typeName
        case .callable(let c):
            switch c {
            case .macro: return "Macro"
            case .method: return "builtin_function_or_method"
            case .global: return "function"
            }
        }
    }

    /// jinja2's `object_type_repr`: "dict object", "None".
    var objectTypeRepr: String {
        if case .none = self { return "None" }
        return typeName + " object"
    }

    /// The items when iterating the value (a list of code points for a string, the keys of a dict),
    /// as Python's `iter()`; undefined iterates as empty.
    func iterate() throws(PyError) -> [Value] {
        switch self {
        case .undefined: return []
        case .list(let l), .tuple(let l): return l.items
        case .dict(let d): return d.keys
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .iterator(let i): return try i.drain()
        case .view(let v): return v.items.items
        default: throw .type("'\(typeName)' object is not iterable")
        }
    }

    /// Python `len()`.
    func length() throws(PyError) -> Int {
        switch self {
        case .undefined: return 0
        case .string(let s): return s.unicodeScalars.count
        case .list(let l), .tuple(let l): return l.items.count
        case .dict(let d): return d.count
        case .view(let v): return v.items.items.count
        default: throw .type("object of type '\(typeName)' has no len()")
        }
    }

    /// Raises the undefined error when the value is undefined (what jinja2's Undefined does on most uses).
    func requireDefined() throws(PyError) {
        if case .undefined(let u) = self { throw u.error }
    }
}

// MARK: - equality and ordering (Python semantics)

extension Value {
    /// Python `==`. `depth` guards against cyclic namespaces.
    func pyEquals(_ other: Value, depth: Int = 0) -> Bool {
        if depth > ChatTemplateLimits.maxCompareDepth { return false }
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.list(a), .list(b)), let (.tuple(a), .tuple(b)):
            guard a.items.count == b.items.count else { return false }
            for (x, y) in zip(a.items, b.items) where !x.pyEquals(y, depth: depth + 1) { return false }
            return true
        case let (.dict(a), .dict(b)):
            guard a.count == b.count else { return false }
            for (k, v) in a.pairs {
                guard let w = b[k], v.pyEquals(w, depth: depth + 1) else { return false }
            }
            return true
        case let (.namespace(a), .namespace(b)): return a === b
        case let (.iterator(a), .iterator(b)): return a === b
        case let (.view(a), .view(b)):
            guard a.typeName == b.typeName, a.typeName != "dict_values" else { return false }
            return Value.list(a.items.items).pyEquals(.list(b.items.items), depth: depth + 1)
        default:
            if let x = numeric, let y = other.numeric { return x == y }
            return false
        }
    }

    /// A number as int or float (bool counts as int, as in Python).
    var numeric: Number? {
        switch self {
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .float(let d): return .float(d)
        default: return nil
        }
    }

    /// Python `<`, `<=`, `>`, `>=`; a TypeError between types Python cannot order.
    func pyCompare(_ other: Value, _ op: String, depth: Int = 0) throws(PyError) -> Bool {
        try requireDefined()
        try other.requireDefined()
        if depth > ChatTemplateLimits.maxCompareDepth { throw PyError(.limit, "values nested too deeply to compare") }
        func result(_ c: Int) -> Bool {
            switch op {
            case "<": return c < 0
            case "<=": return c <= 0
            case ">": return c > 0
            default: return c >= 0
            }
        }
        switch (self, other) {
        case let (.string(a), .string(b)):
            return result(compareScalars(a, b))
        case let (.list(a), .list(b)), let (.tuple(a), .tuple(b)):
            for (x, y) in zip(a.items, b.items) where !x.pyEquals(y, depth: depth + 1) {
                if op == "<" || op == "<=" { return try x.pyCompare(y, "<", depth: depth + 1) }
                return try x.pyCompare(y, ">", depth: depth + 1)
            }
            return result(a.items.count < b.items.count ? -1 : (a.items.count > b.items.count ? 1 : 0))
        default:
            if let x = numeric, let y = other.numeric { return result(x.compare(y)) }
            throw .type("'\(op)' not supported between instances of '\(typeName)' and '\(other.typeName)'")
        }
    }
}

/// Compares two strings by code point, as Python does.
func compareScalars(_ a: String, _ b: String) -> Int {
    var i = a.unicodeScalars.makeIterator(), j = b.unicodeScalars.makeIterator()
    while true {
        switch (i.next(), j.next()) {
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        case let (x?, y?): if x != y { return x.value < y.value ? -1 : 1 }
        }
    }
}

/// An int or a float, for arithmetic.
enum Number: Equatable {
    case int(Int)
    case float(Double)

    var double: Double {
        switch self {
        case .int(let i): return Double(i)
        case .float(let d): return d
        }
    }

    static func == (a: Number, b: Number) -> Bool {
        if case let .int(x) = a, case let .int(y) = b { return x == y }
        return a.double == b.double
    }

    func compare(_ o: Number) -> Int {
        if case let .int(x) = self, case let .int(y) = o { return x < y ? -1 : (x > y ? 1 : 0) }
        let x = double, y = o.double
        return x < y ? -1 : (x > y ? 1 : 0)
    }

    var value: Value {
        switch self {
        case .int(let i): return .int(i)
        case .float(let d): return .float(d)
        }
    }
}

// MARK: - hashing (dict keys)

/// A dict key under Python's equality: bools and integral floats hash as ints, strings by code points.
enum HashKey: Hashable {
    case none
    case int(Int)
    case float(UInt64)
    case string(ExactString)
    case tuple([HashKey])

    init(_ v: Value) throws(PyError) {
        switch v {
        case .none: self = .none
        case .bool(let b): self = .int(b ? 1 : 0)
        case .int(let i): self = .int(i)
        case .float(let d):
            if d.rounded() == d, abs(d) < 9.2e18 { self = .int(Int(d)) } else { self = .float(d.isNaN ? Double.nan.bitPattern : d.bitPattern) }
        case .string(let s): self = .string(s.exact)
        case .tuple(let t):
            var keys: [HashKey] = []
            for item in t.items { keys.append(try HashKey(item)) }
            self = .tuple(keys)
        default: throw .type("unhashable type: '\(v.typeName)'")
        }
    }
}

// MARK: - conversion from JSON

extension Value {
    /// The value of a JSON document: objects become dicts (in file order), arrays lists, numbers ints
    /// when they are integer literals that fit in 64 bits, else floats.
    public init(json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .number(let n):
            if let i = n.exactInt { self = .int(i) } else { self = .float(n.double ?? .infinity) }
        case .string(let s): self = .string(s)
        case .array(let a): self = .list(a.map { Value(json: $0) })
        case .object(let members):
            var d = ValueDict()
            for (k, v) in members { d.set(k, Value(json: v)) }
            self = .dict(d)
        }
    }

    /// A dict of string keys.
    public static func dict(_ pairs: KeyValuePairs<String, Value>) -> Value {
        var d = ValueDict()
        for (k, v) in pairs { d.set(k, v) }
        return .dict(d)
    }
}

// Interventions: writes into the forward pass at named hook points, and attention knockout, described
// as `Sendable` values rather than callbacks (TransformerLens passes a hook function per activation;
// attention heads here run on worker threads, where a caller's closure would be a data race waiting to
// happen). A list of interventions can be built, compared, stored and sharded like any other data: a
// sweep over 144 head ablations is 144 values.
//
// Positions are absolute token positions in the sequence (0 = the first token, BOS when there is one),
// so one intervention acts the same way in a prompt pass, in the teacher-forced answer passes that
// continue it, and in every generation step.
import TensorCore

/// A set of absolute token positions.
public enum PositionSet: Sendable, Hashable, CustomStringConvertible {
    /// Every position.
    case all
    /// These positions.
    case only(Set<Int>)
    /// Positions ≥ the bound.
    case from(Int)

    @inline(__always)
    public func contains(_ p: Int) -> Bool {
        switch self {
        case .all: return true
        case .only(let s): return s.contains(p)
        case .from(let b): return p >= b
        }
    }

    public var description: String {
        switch self {
        case .all: return "all positions"
        case .only(let s): return "positions \(s.sorted().map(String.init).joined(separator: ","))"
        case .from(let b): return "positions ≥ \(b)"
        }
    }
}

/// What a write does to the selected vectors (one vector per position, and per head for `hook_z`).
public enum InterventionEdit: Sendable, Hashable {
    /// Sets the vector to zero (zero ablation).
    case zero
    /// Multiplies the vector by a factor.
    case scale(Float)
    /// Adds a vector (width d_head for `hook_z`, d_model otherwise) at every selected position.
    case add([Float])
    /// Replaces the vector (mean ablation with one mean, steering).
    case replace([Float])
    /// Replaces the vector at the listed positions with that position's value (activation patching,
    /// mean ablation per position); positions not listed are left alone.
    case replaceAt([Int: [Float]])
}

/// One intervention on a forward pass.
public struct Intervention: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Writes into the tensor at a hook point: `blocks.{l}.hook_resid_pre`, `.attn.hook_z` (per head;
        /// `heads` nil = all), `.hook_attn_out`, `.hook_mlp_out`, `.hook_resid_post`.
        case write(HookPoint, heads: [Int]?, edit: InterventionEdit)
        /// Attention knockout: the pre-softmax scores of block `l` (no hook point) of the query
        /// positions towards the key positions `keys` become −∞, so the softmax renormalises over the
        /// other keys (Geva et al. 2023, "Dissecting recall of factual associations"). `heads` nil = all.
        case knockout(layer: Int, heads: [Int]?, keys: PositionSet)
    }

    public let kind: Kind
    /// The positions acted on: rows of the written tensor, or the query rows of a knockout.
    public let positions: PositionSet

    public init(_ kind: Kind, positions: PositionSet = .all) {
        self.kind = kind
        self.positions = positions
    }

    /// Zero ablation of heads of one layer (their `hook_z`), at every position unless told otherwise.
    public static func zeroHeads(layer: Int, heads: [Int]? = nil, positions: PositionSet = .all) -> Intervention {
        Intervention(.write(.attnZ(layer), heads: heads, edit: .zero), positions: positions)
    }

    /// Attention knockout from the query positions to the key positions, in all heads unless told otherwise.
    public static func knockout(layer: Int, heads: [Int]? = nil, queries: PositionSet, keys: PositionSet) -> Intervention {
        Intervention(.knockout(layer: layer, heads: heads, keys: keys), positions: queries)
    }

    /// The layer acted on.
    public var layer: Int? {
        switch kind {
        case .write(let hook, _, _): return hook.layer
        case .knockout(let l, _, _): return l
        }
    }

    public var description: String {
        func heads(_ h: [Int]?) -> String { h.map { " heads \($0.map(String.init).joined(separator: ","))" } ?? "" }
        switch kind {
        case let .write(hook, h, edit): return "\(hook)\(heads(h)) \(edit) at \(positions)"
        case let .knockout(l, h, keys): return "knockout L\(l)\(heads(h)) from \(positions) to \(keys)"
        }
    }

    /// Hook points that accept writes.
    public static func isWritable(_ hook: HookPoint) -> Bool {
        switch hook {
        case .residPre, .attnZ, .attnOut, .mlpOut, .residPost: return true
        default: return false
        }
    }

    /// Checks the intervention against a model's shape.
    public func validate(layers: Int, heads: Int, dModel: Int, dHead: Int) throws(InterventionError) {
        func checkHeads(_ hs: [Int]?) throws(InterventionError) {
            for h in hs ?? [] where h < 0 || h >= heads { throw .headOutOfRange(head: h, heads: heads, intervention: description) }
        }
        guard let l = layer, l >= 0, l < layers else {
            throw .layerOutOfRange(layer: layer ?? -1, layers: layers, intervention: description)
        }
        switch kind {
        case let .write(hook, hs, edit):
            guard Intervention.isWritable(hook) else { throw .notWritable(hook: hook.description) }
            if case .attnZ = hook { try checkHeads(hs) } else if hs != nil { throw .headsOnNonHeadHook(hook: hook.description) }
            let width: Int
            if case .attnZ = hook { width = dHead } else { width = dModel }
            switch edit {
            case .zero, .scale: break
            case .add(let v), .replace(let v):
                if v.count != width { throw .wrongWidth(found: v.count, expected: width, intervention: description) }
            case .replaceAt(let m):
                if let bad = m.values.first(where: { $0.count != width }) {
                    throw .wrongWidth(found: bad.count, expected: width, intervention: description)
                }
            }
        case let .knockout(_, hs, _):
            try checkHeads(hs)
        }
    }
}

/// Why an intervention does not fit a model.
public enum InterventionError: Error, CustomStringConvertible, Sendable, Equatable {
    case layerOutOfRange(layer: Int, layers: Int, intervention: String)
    case headOutOfRange(head: Int, heads: Int, intervention: String)
    case notWritable(hook: String)
    case headsOnNonHeadHook(hook: String)
    case wrongWidth(found: Int, expected: Int, intervention: String)

    public var description: String {
        switch self {
        case let .layerOutOfRange(l, n, i): return "intervention '\(i)': layer \(l) is outside the model's layers 0–\(n - 1)"
        case let .headOutOfRange(h, n, i): return "intervention '\(i)': head \(h) is outside the model's heads 0–\(n - 1)"
        case let .notWritable(hook): return "hook point \(hook) cannot be written (writable: hook_resid_pre, attn.hook_z, hook_attn_out, hook_mlp_out, hook_resid_post)"
        case let .headsOnNonHeadHook(hook): return "hook point \(hook) has no heads; heads apply to attn.hook_z only"
        case let .wrongWidth(f, e, i): return "intervention '\(i)': a vector of \(f) values where the hook holds \(e) per position"
        }
    }
}

/// Interventions indexed for the pass: what to write at each hook, and the knockouts of each layer.
public struct InterventionSet: Sendable {
    public let interventions: [Intervention]
    private let writes: [HookPoint: [(heads: [Int]?, edit: InterventionEdit, positions: PositionSet)]]
    private let knockoutsByLayer: [Int: [Knockout]]

    /// Knockout of one layer, as the attention kernel reads it.
    public struct Knockout: Sendable {
        public let heads: Set<Int>?
        public let queries: PositionSet
        public let keys: PositionSet

        @inline(__always) public func applies(toHead h: Int) -> Bool { heads?.contains(h) ?? true }
    }

    public static let none = InterventionSet([])

    public init(_ interventions: [Intervention]) {
        self.interventions = interventions
        var w: [HookPoint: [(heads: [Int]?, edit: InterventionEdit, positions: PositionSet)]] = [:]
        var k: [Int: [Knockout]] = [:]
        for i in interventions {
            switch i.kind {
            case let .write(hook, heads, edit): w[hook, default: []].append((heads, edit, i.positions))
            case let .knockout(l, heads, keys): k[l, default: []].append(Knockout(heads: heads.map(Set.init), queries: i.positions, keys: keys))
            }
        }
        writes = w
        knockoutsByLayer = k
    }

    public var isEmpty: Bool { interventions.isEmpty }

    /// The knockouts of layer `l` (empty when none).
    @inline(__always) public func knockouts(layer l: Int) -> [Knockout] { knockoutsByLayer[l] ?? [] }

    /// Applies the writes registered at `hook` to a [rows, width] buffer (rows `stride` apart) whose row r
    /// holds absolute position `rowPositions[r]`. For `hook_z`, width = head · d_head and each head's
    /// slice of `dHead` values is written separately.
    public func apply(at hook: HookPoint, _ buffer: UnsafeMutablePointer<Float>, rows: Int, width: Int, stride: Int? = nil,
                      rowPositions: [Int], dHead: Int) {
        guard let list = writes[hook] else { return }
        let ld = stride ?? width
        let perHead: Bool
        if case .attnZ = hook { perHead = true } else { perHead = false }
        for (heads, edit, positions) in list {
            for r in 0..<rows where positions.contains(rowPositions[r]) {
                let row = buffer + r * ld
                if perHead {
                    for h in heads ?? Array(0..<(width / dHead)) { Self.apply(edit, row + h * dHead, count: dHead, position: rowPositions[r]) }
                } else {
                    Self.apply(edit, row, count: width, position: rowPositions[r])
                }
            }
        }
    }

    @inline(__always)
    static func apply(_ edit: InterventionEdit, _ v: UnsafeMutablePointer<Float>, count: Int, position: Int) {
        switch edit {
        case .zero: v.update(repeating: 0, count: count)
        case .scale(let f): for i in 0..<count { v[i] *= f }
        case .add(let a): for i in 0..<count { v[i] += a[i] }
        case .replace(let a): a.withUnsafeBufferPointer { v.update(from: $0.baseAddress!, count: count) }
        case .replaceAt(let m):
            if let a = m[position] { a.withUnsafeBufferPointer { v.update(from: $0.baseAddress!, count: count) } }
        }
    }
}

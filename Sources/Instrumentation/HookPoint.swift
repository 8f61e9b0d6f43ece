// Named points of the forward pass, in TransformerLens style (`blocks.{l}.attn.hook_pattern`).
// Every name comes from this one enum, so any intermediate tensor can be requested and dumped.
import TensorCore

/// A point in the forward pass whose tensor can be observed.
public enum HookPoint: Hashable, Sendable, CustomStringConvertible {
    /// Token embeddings (plus learned position embeddings for GPT-2): [pos, d_model]. `hook_embed`.
    case embed
    /// Residual stream entering block l: [pos, d_model].
    case residPre(Int)
    /// Attention probabilities of block l: [head, query_pos, key_pos].
    case attnPattern(Int)
    /// Attention probabilities of the last query position of the pass, block l: [head, key_pos].
    /// (A cpiscope addition: what probes need, without materialising every head's full square.)
    case attnPatternLast(Int)
    /// Per-head attention output of block l before the output projection: [pos, head, d_head]. `hook_z`.
    case attnZ(Int)
    /// Attention output of block l after the output projection: [pos, d_model].
    case attnOut(Int)
    /// Residual after attention, before the MLP (sequential-residual models only): [pos, d_model].
    case residMid(Int)
    /// MLP output of block l: [pos, d_model].
    case mlpOut(Int)
    /// Residual stream leaving block l: [pos, d_model].
    case residPost(Int)
    /// Output of the final norm: [pos, d_model].
    case lnFinal
    /// Output logits: [pos, d_vocab] (only positions the caller asked logits for).
    case logits

    /// The TransformerLens-style name.
    public var description: String {
        switch self {
        case .embed: return "hook_embed"
        case .residPre(let l): return "blocks.\(l).hook_resid_pre"
        case .attnPattern(let l): return "blocks.\(l).attn.hook_pattern"
        case .attnPatternLast(let l): return "blocks.\(l).attn.hook_pattern_last"
        case .attnZ(let l): return "blocks.\(l).attn.hook_z"
        case .attnOut(let l): return "blocks.\(l).hook_attn_out"
        case .residMid(let l): return "blocks.\(l).hook_resid_mid"
        case .mlpOut(let l): return "blocks.\(l).hook_mlp_out"
        case .residPost(let l): return "blocks.\(l).hook_resid_post"
        case .lnFinal: return "ln_final.hook_normalized"
        case .logits: return "logits"
        }
    }

    /// Parses a TransformerLens-style name (the inverse of `description`).
    public init?(name: String) {
        switch name {
        case "hook_embed": self = .embed; return
        case "ln_final.hook_normalized": self = .lnFinal; return
        case "logits": self = .logits; return
        default: break
        }
        let parts = name.split(separator: ".")
        guard parts.count >= 3, parts[0] == "blocks", let l = Int(parts[1]), l >= 0 else { return nil }
        switch parts.dropFirst(2).joined(separator: ".") {
        case "hook_resid_pre": self = .residPre(l)
        case "attn.hook_pattern": self = .attnPattern(l)
        case "attn.hook_pattern_last": self = .attnPatternLast(l)
        case "attn.hook_z": self = .attnZ(l)
        case "hook_attn_out": self = .attnOut(l)
        case "hook_resid_mid": self = .residMid(l)
        case "hook_mlp_out": self = .mlpOut(l)
        case "hook_resid_post": self = .residPost(l)
        default: return nil
        }
    }

    /// The layer, for per-block hooks.
    public var layer: Int? {
        switch self {
        case .residPre(let l), .attnPattern(let l), .attnPatternLast(let l), .attnZ(let l), .attnOut(let l), .residMid(let l), .mlpOut(let l), .residPost(let l): return l
        default: return nil
        }
    }
}

/// A borrowed view of a tensor inside the forward pass. Valid only during the `observe` call.
public struct TensorView {
    public let pointer: UnsafePointer<Float>
    public let shape: [Int]
    /// Absolute position of the first row (non-zero during cached generation steps).
    public let firstPosition: Int

    public init(pointer: UnsafePointer<Float>, shape: [Int], firstPosition: Int = 0) {
        self.pointer = pointer
        self.shape = shape
        self.firstPosition = firstPosition
    }

    public var count: Int { shape.reduce(1, *) }

    /// An owned copy.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.pointer.update(from: pointer, count: count)
        return t
    }
}

/// Receives tensors at the hook points it asks for. Asking for nothing costs nothing:
/// the forward pass checks `wants` before building any view.
public protocol ForwardObserver: AnyObject {
    func wants(_ hook: HookPoint) -> Bool
    func observe(_ hook: HookPoint, _ view: TensorView)
}

/// An observer that can say it reads only the last position of a block's per-position outputs,
/// which lets the pass skip the rest of the last block.
public protocol RowSelectiveObserver: ForwardObserver {
    func needsOnlyLastRow(ofBlock layer: Int) -> Bool
}

/// Stores copies of the requested hook tensors by name (tests, `--dump`).
public final class HookRecorder: ForwardObserver {
    public let requested: Set<HookPoint>
    public private(set) var tensors: [HookPoint: Tensor] = [:]

    public init(_ hooks: Set<HookPoint>) { self.requested = hooks }

    /// Records every per-block hook of `layers` layers plus embed, ln_final and logits.
    public static func everything(layers: Int) -> HookRecorder {
        var s: Set<HookPoint> = [.embed, .lnFinal, .logits]
        for l in 0..<layers {
            s.formUnion([.residPre(l), .attnPattern(l), .attnPatternLast(l), .attnZ(l), .attnOut(l), .residMid(l), .mlpOut(l), .residPost(l)])
        }
        return HookRecorder(s)
    }

    public func wants(_ hook: HookPoint) -> Bool { requested.contains(hook) }
    public func observe(_ hook: HookPoint, _ view: TensorView) { tensors[hook] = view.copy() }

    public subscript(_ hook: HookPoint) -> Tensor? { tensors[hook] }
}

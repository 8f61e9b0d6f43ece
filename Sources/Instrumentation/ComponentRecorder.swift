// Records, at one position, what direct logit attribution needs from a pass: the embedding, every
// layer's per-head attention output before the output projection (`hook_z`), its attention row (to
// split each head's output by source position), every MLP output and the final residual stream.
// The arithmetic is in Models/DirectLogitAttribution.swift (it needs the model's weights).

/// The components of the residual stream at one position, as the pass wrote them.
public final class ComponentRecorder: RowSelectiveObserver {
    public let position: Int
    public let layers: Int
    public let heads: Int
    public let dHead: Int
    public let dModel: Int
    /// [d_model] token (+ position) embedding at `position`.
    public private(set) var embed: [Float]
    /// [layer, head · d_head] hook_z at `position`.
    public private(set) var z: [Float]
    /// [layer, head, key_pos] attention probabilities of `position` (keys 0...position).
    public private(set) var pattern: [Float]
    /// [layer, d_model] MLP output at `position`.
    public private(set) var mlp: [Float]
    /// [d_model] the residual stream leaving the last block at `position` (the final norm's input).
    public private(set) var finalResidual: [Float]

    public init(position: Int, layers: Int, heads: Int, dHead: Int, dModel: Int) {
        self.position = position
        self.layers = layers
        self.heads = heads
        self.dHead = dHead
        self.dModel = dModel
        embed = [Float](repeating: .nan, count: dModel)
        z = [Float](repeating: .nan, count: layers * heads * dHead)
        pattern = [Float](repeating: .nan, count: layers * heads * (position + 1))
        mlp = [Float](repeating: .nan, count: layers * dModel)
        finalResidual = [Float](repeating: .nan, count: dModel)
    }

    public var keys: Int { position + 1 }

    public func wants(_ hook: HookPoint) -> Bool {
        switch hook {
        case .embed, .attnZ, .attnPatternLast, .mlpOut: return true
        case .residPost(let l): return l == layers - 1
        default: return false
        }
    }

    public func needsOnlyLastRow(ofBlock layer: Int) -> Bool { true }

    public func observe(_ hook: HookPoint, _ view: TensorView) {
        switch hook {
        case .attnPatternLast(let l):
            // [head, key_pos] for the pass's last position, which must be `position`
            guard view.firstPosition == position, l < layers else { return }
            let nk = view.shape[1]
            for h in 0..<heads { for k in 0..<min(nk, keys) { pattern[(l * heads + h) * keys + k] = view.pointer[h * nk + k] } }
        case .embed: copyRow(view, width: dModel) { embed[$0] = $1 }
        case .attnZ(let l): copyRow(view, width: heads * dHead) { z[l * heads * dHead + $0] = $1 }
        case .mlpOut(let l): copyRow(view, width: dModel) { mlp[l * dModel + $0] = $1 }
        case .residPost: copyRow(view, width: dModel) { finalResidual[$0] = $1 }
        default: return
        }
    }

    private func copyRow(_ view: TensorView, width: Int, _ set: (Int, Float) -> Void) {
        let r = position - view.firstPosition
        guard r >= 0, r < view.shape[0] else { return }
        for j in 0..<width { set(j, view.pointer[r * width + j]) }
    }
}

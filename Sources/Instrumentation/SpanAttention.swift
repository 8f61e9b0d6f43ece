// Attention mass from one query position to sets of key positions ("spans"), per layer and head.
// mass[span, layer, head] = Σ_{k ∈ span} pattern[layer][head, query, k]
// (the quantity behind the paper's Figure 3b, "attention to context", resolved per layer and head).

/// Records, for one query position, the attention-probability mass on each span.
public final class SpanAttentionRecorder: ForwardObserver {
    public let queryPosition: Int
    /// Key positions of each span; nil marks a span that could not be located (recorded as NaN).
    public let spans: [[Int]?]
    public let layers: Int
    public let heads: Int
    /// [span, layer, head], NaN for missing spans.
    public private(set) var mass: [Float]
    /// The full attention row [layer, head, key_pos] of the query, when asked for (for --dump).
    public private(set) var rows: [Float]?
    private let keepRows: Bool

    public init(queryPosition: Int, spans: [[Int]?], layers: Int, heads: Int, keepRows: Bool = false) {
        self.queryPosition = queryPosition
        self.spans = spans
        self.layers = layers
        self.heads = heads
        self.keepRows = keepRows
        self.mass = [Float](repeating: .nan, count: spans.count * layers * heads)
    }

    /// Reads the last query row of each layer's pattern; the query must be the pass's last position.
    public func wants(_ hook: HookPoint) -> Bool {
        if case .attnPatternLast = hook { return true }
        return false
    }

    public func observe(_ hook: HookPoint, _ view: TensorView) {
        guard case let .attnPatternLast(l) = hook, l < layers else { return }
        // view: [head, key_pos] for query position view.firstPosition
        guard view.firstPosition == queryPosition else { return }
        let nq = 1, q = 0, nk = view.shape[1]
        if keepRows, rows == nil { rows = [Float](repeating: 0, count: layers * heads * (queryPosition + 1)) }
        for h in 0..<heads {
            let row = view.pointer + (h * nq + q) * nk
            for (s, positions) in spans.enumerated() {
                guard let positions else { continue }
                var sum: Float = 0
                for k in positions where k >= 0 && k < nk { sum += row[k] }
                mass[(s * layers + l) * heads + h] = sum
            }
            if keepRows {
                for k in 0...queryPosition where k < nk { rows![(l * heads + h) * (queryPosition + 1) + k] = row[k] }
            }
        }
    }
}

/// Records the residual stream at one position: after the embedding (lens layer 0) and after each
/// block l (lens layer l + 1).
public final class ResidualRecorder: RowSelectiveObserver {
    public let position: Int
    public let layers: Int
    public let dModel: Int
    /// [lens_layer, d_model] with lens_layer = 0…layers.
    public private(set) var residuals: [Float]
    /// Full residual streams [lens_layer, pos, d_model] for the positions observed, when asked for (--dump).
    public private(set) var streams: [Int: [Float]] = [:]
    private let keepStreams: Set<Int>

    public init(position: Int, layers: Int, dModel: Int, keepStreamsFor lensLayers: Set<Int> = []) {
        self.position = position
        self.layers = layers
        self.dModel = dModel
        self.residuals = [Float](repeating: .nan, count: (layers + 1) * dModel)
        self.keepStreams = lensLayers
    }

    public func wants(_ hook: HookPoint) -> Bool {
        switch hook {
        case .embed, .residPost: return true
        default: return false
        }
    }

    /// Only the recorded position is read, unless full streams were asked for that block.
    public func needsOnlyLastRow(ofBlock layer: Int) -> Bool { !keepStreams.contains(layer + 1) }

    public func observe(_ hook: HookPoint, _ view: TensorView) {
        let lens: Int
        switch hook {
        case .embed: lens = 0
        case .residPost(let l): lens = l + 1
        default: return
        }
        let r = position - view.firstPosition
        if r >= 0, r < view.shape[0] {
            for j in 0..<dModel { residuals[lens * dModel + j] = view.pointer[r * dModel + j] }
        }
        if keepStreams.contains(lens) {
            streams[lens] = Array(UnsafeBufferPointer(start: view.pointer, count: view.count))
        }
    }
}

/// Fans one forward pass out to several observers.
public final class ObserverGroup: RowSelectiveObserver {
    public let members: [any ForwardObserver]
    public init(_ members: [any ForwardObserver]) { self.members = members }

    /// True when every member either says so or wants none of block `layer`'s per-position outputs.
    public func needsOnlyLastRow(ofBlock layer: Int) -> Bool {
        members.allSatisfy { m in
            if let s = m as? any RowSelectiveObserver { return s.needsOnlyLastRow(ofBlock: layer) }
            return ![HookPoint.attnPattern(layer), .attnZ(layer), .attnOut(layer), .residMid(layer), .mlpOut(layer), .residPost(layer)]
                .contains { m.wants($0) }
        }
    }
    public func wants(_ hook: HookPoint) -> Bool { members.contains { $0.wants(hook) } }
    public func observe(_ hook: HookPoint, _ view: TensorView) {
        for m in members where m.wants(hook) { m.observe(hook, view) }
    }
}

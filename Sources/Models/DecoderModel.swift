// The decoder-only forward pass shared by every architecture, in fp32 on the CPU.
// Architectures differ only in their weight tables (GPT2.swift, GPTNeoX.swift, Llama.swift),
// which build a `DecoderModel` from a checkpoint. The pass reads top-down:
//   embed → for each block: norm → q/k/v → rotary → attention → out-proj → (residual) → norm → MLP → (residual)
//   → final norm → unembed.
// Attention is eager: explicit scores, causal (and sliding-window) mask and softmax, so the
// probabilities of every layer and head exist and can be observed at `blocks.{l}.attn.hook_pattern`.
import Checkpoints
import Dispatch
import Foundation
import Instrumentation
import TensorCore

/// Which positions the caller wants logits for. The probe job only needs the last one.
public enum LogitsRequest: Sendable {
    case all
    case last
    case none
}

/// Keys and values of past positions, for incremental (generation) steps.
public final class KVCache {
    /// Per layer: keys [kv_head, capacity, d_head] and values [kv_head, capacity, d_head].
    var keys: [UnsafeMutablePointer<Float>]
    var values: [UnsafeMutablePointer<Float>]
    public private(set) var capacity: Int
    /// Positions filled.
    public internal(set) var length: Int = 0
    let kvHeads: Int
    let dHead: Int

    public convenience init(layers: Int, kvHeads: Int, dHead: Int, capacity: Int) {
        self.init(layers: layers, kvHeads: kvHeads, dHead: dHead, capacity: capacity, sharedAcrossLayers: false)
    }

    private init(layers: Int, kvHeads: Int, dHead: Int, capacity: Int, sharedAcrossLayers: Bool) {
        self.sharedAcrossLayers = sharedAcrossLayers
        self.kvHeads = kvHeads
        self.dHead = dHead
        self.capacity = max(capacity, 1)
        let n = kvHeads * self.capacity * dHead
        keys = (0..<layers).map { _ in .allocate(capacity: n) }
        values = (0..<layers).map { _ in .allocate(capacity: n) }
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Grows capacity (keeping contents) so that `needed` positions fit.
    func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        let newCap = max(needed, capacity * 2)
        func grow(_ old: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: kvHeads * newCap * dHead)
            for h in 0..<kvHeads { (p + h * newCap * dHead).update(from: old + h * capacity * dHead, count: length * dHead) }
            old.deallocate()
            return p
        }
        keys = keys.map(grow)
        values = values.map(grow)
        capacity = newCap
    }

    /// True for the one-layer scratch cache of a pass that keeps no cache: every layer writes and reads it.
    let sharedAcrossLayers: Bool

    /// A one-layer cache that every layer of a single pass reuses (nothing outlives the pass).
    static func scratch(kvHeads: Int, dHead: Int, capacity: Int) -> KVCache {
        KVCache(layers: 1, kvHeads: kvHeads, dHead: dHead, capacity: capacity, sharedAcrossLayers: true)
    }

    /// The buffers layer `l` uses.
    @inline(__always) func slot(forLayer l: Int) -> Int { sharedAcrossLayers ? 0 : l }

    /// Forgets all positions (the buffers are kept for reuse).
    public func reset() { length = 0 }

    /// Forgets positions from `newLength` on (e.g. to score another continuation of the same prompt).
    public func truncate(to newLength: Int) {
        precondition(newLength >= 0 && newLength <= length, "truncate(to: \(newLength)) outside 0...\(length)")
        length = newLength
    }
}

/// A loaded decoder-only transformer.
public final class DecoderModel: @unchecked Sendable {
    public let config: ModelConfig
    /// Token embedding [d_vocab, d_model].
    let tokenEmbedding: WeightMatrix
    /// Learned position embedding [positions, d_model] (GPT-2 only).
    let positionEmbedding: Tensor?
    public internal(set) var blocks: [BlockWeights]
    let finalNorm: Norm
    /// Unembedding [d_vocab, d_model] (the token embedding itself when tied).
    let unembedding: WeightMatrix
    let rotary: RotaryTable?

    init(config: ModelConfig, tokenEmbedding: WeightMatrix, positionEmbedding: Tensor?, blocks: [BlockWeights],
         finalNorm: Norm, unembedding: WeightMatrix) {
        self.config = config
        self.tokenEmbedding = tokenEmbedding
        self.positionEmbedding = positionEmbedding
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.unembedding = unembedding
        if let r = config.rotary, r.dims > 0 {
            self.rotary = RotaryTable(dims: r.dims, theta: r.theta, transform: { scaleInverseFrequencies($0, r.scaling) })
        } else {
            self.rotary = nil
        }
    }

    public var layers: Int { config.layers }

    /// Query rows per attention block (causal blocking).
    static let queryBlock = 128

    /// Upper bound on threads used for attention heads (set to 1 for strictly sequential runs).
    /// Threads for the pass's own parallel loops (attention heads, activations); `--threads` sets it.
    nonisolated(unsafe) public static var maxWorkers = 64
    public var vocab: Int { config.vocab }
    public var dModel: Int { config.dModel }

    /// Runs the pass over `ids`, appended after the positions already in `cache` (if any).
    /// - Returns: logits [rows, d_vocab] for the requested positions (rows = n, 1 or 0).
    @discardableResult
    public func forward(_ ids: [Int], cache: KVCache? = nil, logits request: LogitsRequest = .all,
                        observer: (any ForwardObserver)? = nil) throws -> Tensor {
        let n = ids.count
        guard n > 0 else { throw ModelError.emptyInput }
        for id in ids where id < 0 || id >= config.vocab { throw ModelError.tokenOutOfRange(id: id, vocab: config.vocab) }
        let start = cache?.length ?? 0
        let total = start + n
        if positionEmbedding != nil, total > config.maxPositions {
            throw ModelError.sequenceTooLong(length: total, maxPositions: config.maxPositions)
        }
        let d = config.dModel
        // Without a caller's cache nothing outlives the pass, so one layer's keys and values are enough:
        // every block writes and reads one shared layer (saves 2·layers·n·d_kv floats).
        let cache = cache ?? KVCache.scratch(kvHeads: config.kvHeads, dHead: config.dHead, capacity: n)
        cache.reserve(total)

        let wantsPatterns = observer.map { o in (0..<config.layers).contains { o.wants(.attnPattern($0)) } } ?? false
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, config.heads, DecoderModel.maxWorkers))
        var scratch = Scratch(config: config, rows: n, keys: total, patternHeads: wantsPatterns ? config.heads : workers, workers: workers)
        defer { scratch.free() }
        let x = scratch.residual  // [pos, d_model]

        // Embedding (+ learned positions).
        for (i, id) in ids.enumerated() {
            tokenEmbedding.row(id, cols: d, into: x + i * d)
            if let pe = positionEmbedding { addInPlace(x + i * d, pe.pointer + (start + i) * d, count: d) }
        }
        emit(.embed, observer, x, [n, d], start)

        for l in 0..<config.layers {
            // The last block only needs the last row when nothing else reads its other rows.
            let q0 = (l == config.layers - 1 && request == .last && n > 1 && !needsAllRows(ofLastBlock: l, observer)) ? n - 1 : 0
            emit(.residPre(l), observer, x, [n, d], start)
            try block(l, rows: n, queryFrom: q0, start: start, cache: cache, scratch: &scratch, observer: observer)
            emit(.residPost(l), observer, x + q0 * d, [n - q0, d], start + q0)
        }
        cache.length = total

        // Final norm and unembedding for the requested rows only.
        let firstRow: Int, rows: Int
        switch request {
        case .all: firstRow = 0; rows = n
        case .last: firstRow = n - 1; rows = 1
        case .none: firstRow = n; rows = 0
        }
        let out = Tensor(zeros: [rows, config.vocab])
        guard rows > 0 else { return out }
        let normed = scratch.normed
        finalNorm.apply(x + firstRow * d, rows: rows, into: normed)
        emit(.lnFinal, observer, normed, [rows, d], start + firstRow)
        unembed(normed, rows: rows, into: out.pointer)
        emit(.logits, observer, out.pointer, [rows, config.vocab], start + firstRow)
        return out
    }

    /// True when an observer reads per-position outputs of block `l` that a last-row-only pass would skip.
    private func needsAllRows(ofLastBlock l: Int, _ observer: (any ForwardObserver)?) -> Bool {
        guard let observer else { return false }
        if let o = observer as? any RowSelectiveObserver { return !o.needsOnlyLastRow(ofBlock: l) }
        return [HookPoint.attnPattern(l), .attnOut(l), .residMid(l), .mlpOut(l), .residPost(l)].contains { observer.wants($0) }
    }

    /// logits[rows, d_vocab] = h[rows, d_model] · W_Uᵀ (h already normed).
    public func unembed(_ h: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>) {
        unembedding.multiplyTransposed(h, rows: rows, n: config.vocab, k: config.dModel, into: logits)
    }

    /// The logit lens: final norm then unembedding applied to residual vectors r[rows, d_model].
    public func logitLens(_ residual: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>) {
        let normed = UnsafeMutablePointer<Float>.allocate(capacity: rows * config.dModel)
        defer { normed.deallocate() }
        finalNorm.apply(residual, rows: rows, into: normed)
        unembed(normed, rows: rows, into: logits)
    }

    // MARK: - One block

    /// Runs block `l` on the residual rows in `scratch`. Keys and values are computed for all `n` rows;
    /// queries, attention output, MLP and residual updates only for rows `q0..<n` (q0 > 0 only for the
    /// last block when the caller needs just the last position's output and no observer needs the rest).
    private func block(_ l: Int, rows n: Int, queryFrom q0: Int, start: Int, cache: KVCache, scratch: inout Scratch,
                       observer: (any ForwardObserver)?) throws {
        let w = blocks[l]
        let d = config.dModel
        let m = n - q0
        let x = scratch.residual
        let xq = x + q0 * d          // the rows being updated
        let h = scratch.normed
        // Attention sub-layer on norm(x).
        w.attnNorm.apply(x, rows: n, into: h)
        attention(l, w, input: h, rows: n, queryFrom: q0, start: start, cache: cache, scratch: &scratch, observer: observer)
        let attnOut = scratch.attnOut  // [m, d_model]
        emit(.attnOut(l), observer, attnOut, [m, d], start + q0)

        if config.parallelResidual {
            // GPT-NeoX parallel residual: x + attn(ln1(x)) + mlp(ln2(x)).
            w.mlpNorm.apply(xq, rows: m, into: h)
            mlp(w.mlp, input: h, rows: m, scratch: &scratch)
            emit(.mlpOut(l), observer, scratch.mlpOut, [m, d], start + q0)
            addInPlace(xq, attnOut, count: m * d)
            addInPlace(xq, scratch.mlpOut, count: m * d)
        } else {
            addInPlace(xq, attnOut, count: m * d)
            emit(.residMid(l), observer, xq, [m, d], start + q0)
            w.mlpNorm.apply(xq, rows: m, into: h)
            mlp(w.mlp, input: h, rows: m, scratch: &scratch)
            emit(.mlpOut(l), observer, scratch.mlpOut, [m, d], start + q0)
            addInPlace(xq, scratch.mlpOut, count: m * d)
        }
    }

    private func attention(_ l: Int, _ w: BlockWeights, input h: UnsafePointer<Float>, rows n: Int, queryFrom q0: Int,
                           start: Int, cache: KVCache, scratch: inout Scratch, observer: (any ForwardObserver)?) {
        let H = config.heads, KV = config.kvHeads, dh = config.dHead
        let total = start + n
        let m = n - q0
        // 1. Project (queries only for rows q0..<n).
        let qkv = scratch.qkv
        let (ld, qOff, kOff, vOff) = project(w, h, rows: n, queryFrom: q0, into: qkv)

        // 2. Rotary on q (query rows) and k (all rows), then append k and v to the cache ([kv_head, pos, d_head]).
        let slot = cache.slot(forLayer: l)
        let kc = cache.keys[slot], vc = cache.values[slot], cap = cache.capacity
        for i in 0..<n {
            let row = qkv + i * ld
            if let rot = rotary {
                if i >= q0 {
                    for hh in 0..<H { rot.apply(row + qOff(hh), heads: 1, stride: 0, position: start + i, cos: scratch.cos, sin: scratch.sin) }
                }
                for g in 0..<KV { rot.apply(row + kOff(g), heads: 1, stride: 0, position: start + i, cos: scratch.cos, sin: scratch.sin) }
            }
            for g in 0..<KV {
                (kc + (g * cap + start + i) * dh).update(from: row + kOff(g), count: dh)
                (vc + (g * cap + start + i) * dh).update(from: row + vOff(g), count: dh)
            }
        }

        // 3. Scores, mask, softmax and weighted values, heads split across workers.
        var scale: Float = config.scaleAttnWeights ? 1 / Float(dh).squareRoot() : 1
        if config.scaleAttnByInverseLayerIdx { scale /= Float(l + 1) }
        let window = l < config.slidingWindow.count ? config.slidingWindow[l] : nil
        let wantPattern = observer?.wants(.attnPattern(l)) ?? false
        let wantLastRow = observer?.wants(.attnPatternLast(l)) ?? false
        let group = H / KV
        let ctx = scratch.context  // [m, H*d_head]
        let pattern = scratch.pattern, lastRow = scratch.lastRow
        let workers = min(scratch.workers, H)
        let qBase = qkv + q0 * ld
        let runHeads: (Int) -> Void = { worker in
            var hh = worker
            while hh < H {
                let g = hh / group
                // full pattern: [head, query_pos, key_pos]; otherwise one [query_pos, key_pos] buffer per worker
                let probs = wantPattern ? pattern + hh * m * total : pattern + worker * m * total
                // Query rows in blocks: a block's rows attend to keys before its last row only (causal), so
                // scores and weighted values are computed for those keys alone (about half the work).
                var r0 = 0
                while r0 < m {
                    let r1 = min(m, r0 + DecoderModel.queryBlock)
                    let keys = start + q0 + r1          // keys 0..<keys are visible to some row of the block
                    sgemm(m: r1 - r0, n: keys, k: dh, a: qBase + r0 * ld + qOff(hh), lda: ld, b: kc + g * cap * dh, ldb: dh,
                          transB: true, c: probs + r0 * total, ldc: total, alpha: scale)
                    for i in r0..<r1 {
                        let p = start + q0 + i
                        // causal: keys 0...p; sliding window: keys with p - k < window (transformers sliding_window_overlay)
                        let first = window.map { max(0, p - $0 + 1) } ?? 0
                        softmaxInPlace(probs + i * total, count: total, firstValid: first, valid: p + 1)
                    }
                    // context_h[q, :] = probs · v_g
                    sgemm(m: r1 - r0, n: dh, k: keys, a: probs + r0 * total, lda: total, b: vc + g * cap * dh, ldb: dh,
                          c: ctx + r0 * H * dh + hh * dh, ldc: H * dh)
                    r0 = r1
                }
                if wantLastRow { (lastRow + hh * total).update(from: probs + (m - 1) * total, count: total) }
                hh += workers
            }
        }
        if workers > 1, m * total * dh >= 32_768 {
            // Heads run on `workers` threads, each with single-threaded BLAS: nesting OpenBLAS's own
            // threads inside them oversubscribes the cores (measured 2× slower on 2 cores).
            let saved = blasThreads()
            setBLASThreads(1)
            parallelFor(workers, runHeads)
            setBLASThreads(saved)
        } else {
            for wk in 0..<workers { runHeads(wk) }
        }
        if let observer {
            if wantPattern {
                observer.observe(.attnPattern(l), TensorView(pointer: pattern, shape: [H, m, total], firstPosition: start + q0))
            }
            if wantLastRow {
                observer.observe(.attnPatternLast(l), TensorView(pointer: lastRow, shape: [H, total], firstPosition: start + n - 1))
            }
        }
        // 4. Output projection.
        w.attnOut.apply(ctx, rows: m, into: scratch.attnOut)
    }

    /// q, k and v of `rows` input rows into `qkv`, side by side per row; returns the row stride and each
    /// head's offset in a row. For separate projections, queries are computed only for rows `q0..<rows`.
    func project(_ w: BlockWeights, _ h: UnsafePointer<Float>, rows n: Int, queryFrom q0: Int = 0,
                 into qkv: UnsafeMutablePointer<Float>) -> (Int, (Int) -> Int, (Int) -> Int, (Int) -> Int) {
        let H = config.heads, KV = config.kvHeads, dh = config.dHead
        switch w.qkv {
        case let .separate(q, k, v):
            // [q: H*dh | k: KV*dh | v: KV*dh] side by side in one row.
            let ld = (H + 2 * KV) * dh
            q.apply(h + q0 * q.inFeatures, rows: n - q0, into: qkv + q0 * ld, yStride: ld)
            k.apply(h, rows: n, into: qkv + H * dh, yStride: ld)
            v.apply(h, rows: n, into: qkv + (H + KV) * dh, yStride: ld)
            return (ld, { $0 * dh }, { (H + $0) * dh }, { (H + KV + $0) * dh })
        case let .fusedBlocks(p):
            p.apply(h, rows: n, into: qkv)
            return (3 * H * dh, { $0 * dh }, { (H + $0) * dh }, { (2 * H + $0) * dh })
        case let .fusedPerHead(p):
            p.apply(h, rows: n, into: qkv)
            return (3 * H * dh, { 3 * $0 * dh }, { (3 * $0 + 1) * dh }, { (3 * $0 + 2) * dh })
        }
    }

    func mlp(_ m: MLP, input h: UnsafePointer<Float>, rows n: Int, scratch: inout Scratch) {
        let hidden = scratch.mlpHidden
        switch m {
        case let .plain(up, down, act):
            up.apply(h, rows: n, into: hidden)
            activate(hidden, count: n * up.outFeatures, act)
            down.apply(hidden, rows: n, into: scratch.mlpOut)
        case let .gated(gate, up, down, act):
            let u = scratch.mlpHidden2
            gate.apply(h, rows: n, into: hidden)
            up.apply(h, rows: n, into: u)
            let count = n * up.outFeatures
            activate(hidden, count: count, act)
            for i in 0..<count { hidden[i] *= u[i] }
            down.apply(hidden, rows: n, into: scratch.mlpOut)
        }
    }

    @inline(__always)
    private func emit(_ hook: HookPoint, _ observer: (any ForwardObserver)?, _ p: UnsafePointer<Float>, _ shape: [Int], _ first: Int) {
        guard let observer, observer.wants(hook) else { return }
        observer.observe(hook, TensorView(pointer: p, shape: shape, firstPosition: first))
    }
}

/// Applies an activation in place, split over up to `DecoderModel.maxWorkers` threads for large
/// buffers (BLAS is idle meanwhile).
func activate(_ x: UnsafeMutablePointer<Float>, count: Int, _ act: Activation) {
    let workers = min(ProcessInfo.processInfo.activeProcessorCount, DecoderModel.maxWorkers, count >> 15)
    guard workers > 1 else { activateSerial(x, count: count, act); return }
    let per = (count / workers + 7) & ~7
    let base = UncheckedSendable(x)
    parallelFor(workers) { w in
        let start = w * per, end = min(count, start + per)
        if start < end { activateSerial(base.value + start, count: end - start, act) }
    }
}

private func activateSerial(_ x: UnsafeMutablePointer<Float>, count: Int, _ act: Activation) {
    switch act {
    case .geluNew, .geluPytorchTanh: geluTanhInPlace(x, count: count)
    case .gelu: geluErfInPlace(x, count: count)
    case .silu: siluInPlace(x, count: count)
    case .relu: for i in 0..<count { x[i] = max(0, x[i]) }
    }
}

/// Frequency scaling of rotary inverse frequencies (transformers modeling_rope_utils.py:
/// _compute_linear_scaling_rope_parameters and _compute_llama3_parameters).
func scaleInverseFrequencies(_ invFreq: [Double], _ scaling: RopeScaling) -> [Double] {
    switch scaling {
    case .none: return invFreq
    case .linear(let factor): return invFreq.map { $0 / factor }
    case let .llama3(factor, lowFreqFactor, highFreqFactor, originalMax):
        let old = Double(originalMax)
        let lowWavelen = old / lowFreqFactor
        let highWavelen = old / highFreqFactor
        return invFreq.map { f in
            let wavelen = 2 * Double.pi / f
            if wavelen < highWavelen { return f }
            if wavelen > lowWavelen { return f / factor }
            let smooth = (old / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor)
            return (1 - smooth) * f / factor + smooth * f
        }
    }
}

/// Per-pass work buffers, sized for `rows` new positions attending over `keys` positions.
struct Scratch {
    let residual: UnsafeMutablePointer<Float>    // [pos, d_model]
    let normed: UnsafeMutablePointer<Float>      // [pos, d_model]
    let qkv: UnsafeMutablePointer<Float>         // [pos, (head + 2·kv_head)·d_head]
    let context: UnsafeMutablePointer<Float>     // [pos, head·d_head]
    let pattern: UnsafeMutablePointer<Float>     // [head, query_pos, key_pos]
    let attnOut: UnsafeMutablePointer<Float>     // [pos, d_model]
    let mlpHidden: UnsafeMutablePointer<Float>   // [pos, d_mlp]
    let mlpHidden2: UnsafeMutablePointer<Float>  // [pos, d_mlp]
    let mlpOut: UnsafeMutablePointer<Float>      // [pos, d_model]
    let lastRow: UnsafeMutablePointer<Float>     // [head, key_pos]
    let workers: Int
    let cos: UnsafeMutablePointer<Float>         // [d_head]
    let sin: UnsafeMutablePointer<Float>         // [d_head]
    private var all: [UnsafeMutablePointer<Float>] = []

    init(config c: ModelConfig, rows n: Int, keys total: Int, patternHeads: Int, workers: Int) {
        var all: [UnsafeMutablePointer<Float>] = []
        func make(_ count: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            p.initialize(repeating: 0, count: max(count, 1))
            all.append(p)
            return p
        }
        let qkvWidth = max((c.heads + 2 * c.kvHeads) * c.dHead, 3 * c.heads * c.dHead)
        residual = make(n * c.dModel)
        normed = make(n * c.dModel)
        qkv = make(n * qkvWidth)
        context = make(n * c.heads * c.dHead)
        pattern = make(patternHeads * n * total)
        attnOut = make(n * c.dModel)
        mlpHidden = make(n * c.dMLP)
        mlpHidden2 = make(n * c.dMLP)
        mlpOut = make(n * c.dModel)
        lastRow = make(c.heads * total)
        self.workers = workers
        cos = make(c.dHead)
        sin = make(c.dHead)
        self.all = all
    }

    func free() { all.forEach { $0.deallocate() } }
}

extension DecoderModel: LogitLensModel {}

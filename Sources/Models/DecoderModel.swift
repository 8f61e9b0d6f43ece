// The decoder-only forward pass shared by every architecture, on the CPU: one block implementation for
// every pass the tool makes. Families (Families/*.swift, found through the registry in ModelFamily.swift)
// differ only in data: config fields, a weight table and the structural flags the block reads; each
// builds a `DecoderModel` from a checkpoint. Weight products run in the `ComputeContext`'s precision,
// fp32 or bf16 (float32 accumulation; Components.swift, docs/precision.md); norms, softmax, attention
// and the residual stream are float32 in both.
//
// A pass runs one or more sequences at once. Each sequence brings new token ids and its own KV cache
// (positions continue after what the cache holds), so the same code serves a prompt pass (one sequence,
// many rows), a probe group's prompt pass (many sequences, many rows each), teacher-forced answers (many
// sequences, several rows each) and a generation step (many sequences, one row each). Rows of all
// sequences are stacked: norms, projections and MLPs run on all of them together (each weight is read
// once per pass), attention runs per sequence and head.
//
//   embed (× embedding scale) (+ learned positions)                hook_embed
//   for each block l:                                             hooks (TransformerLens names)
//     x ← x  (writes at blocks.l.hook_resid_pre)                   hook_resid_pre
//     h = attnNorm?(x); q, k, v = proj(h); qNorm?(q), kNorm?(k); rotary(q, k); k, v → cache
//     scores = q·kᵀ·scale; softcap?; causal / sliding-window mask; knockouts → −∞   (no hook point)
//     pattern = softmax(scores); z = pattern · v                   attn.hook_pattern, attn.hook_pattern_last, attn.hook_z
//     attn_out = attnPostNorm?(o_proj(z))                          hook_attn_out
//     sequential: x += attn_out; mlp_out = mlpPostNorm?(mlp(mlpNorm?(x))); x += mlp_out   hook_resid_mid, hook_mlp_out
//     parallel (GPT-NeoX): x += attn_out + mlp(mlpNorm(x_in))      hook_mlp_out
//     x → block l+1                                                hook_resid_post
//   final norm → unembed (only the rows asked for) → softcap?      ln_final.hook_normalized, logits
// Optional steps (?) are structure read from the block's weights and the config (ModelFamily.swift):
// OLMo-2 has no pre-norms and post-norms inside the branches, Gemma-2 both, Qwen3 and OLMo-2 q/k norms.
//
// Observers read hook tensors, one observer per sequence: each sees only its own sequence's rows, with its
// own positions and attention patterns, as in a pass of that sequence alone (the products over the
// stacked rows may differ from a lone pass's in the last bits: docs/cluster.md). Interventions
// (Instrumentation/Intervention.swift) are values held by the model (`intervened(_:)`): writes at
// resid_pre, z, attn_out, mlp_out, resid_post and attention knockouts, applied in every pass the model
// runs at each row's own position, so a probe's prompt pass, its scored answers and its generation all
// see them. Observers see the tensors after the writes.
//
// Attention is eager: explicit scores, mask and softmax, so the probabilities of every layer and head
// exist. Threads come from a `ComputeContext` passed to each pass (no global compute state).
import Checkpoints
import Dispatch
import Foundation
import Instrumentation
import TensorCore

/// Which positions the caller wants logits for. The probe job only needs the last one.
public enum LogitsRequest: Sendable, Equatable {
    case all
    case last
    case none
    /// The last `counts[i]` positions of sequence i (0 for none), in sequence order: the rows a
    /// teacher-forced score needs, without unembedding every prompt position.
    case trailing([Int])
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

    /// A cache for sequences that are scored in one pass and then dropped (`DecoderModel.forward(_ sequences:)`
    /// with several of them): one layer's keys and values, reused by every block, as a lone pass does.
    public static func passOnly(for config: ModelConfig, capacity: Int) -> KVCache {
        scratch(kvHeads: config.kvHeads, dHead: config.dHead, capacity: capacity)
    }

    /// The buffers layer `l` uses.
    @inline(__always) func slot(forLayer l: Int) -> Int { sharedAcrossLayers ? 0 : l }

    /// Forgets positions from `newLength` on (e.g. to score another continuation of the same prompt).
    public func truncate(to newLength: Int) {
        precondition(newLength >= 0 && newLength <= length, "truncate(to: \(newLength)) outside 0...\(length)")
        length = newLength
    }
}

/// One sequence's part of a pass: new token ids, appended after the positions its cache already holds.
public struct SequenceInput {
    public var ids: [Int]
    public var cache: KVCache
    public init(ids: [Int], cache: KVCache) {
        self.ids = ids
        self.cache = cache
    }
}

/// A loaded decoder-only transformer.
public final class DecoderModel: @unchecked Sendable {
    public let config: ModelConfig
    /// Token embedding [d_vocab, d_model].
    let tokenEmbedding: WeightMatrix
    /// Learned position embedding [positions, d_model] (GPT-2 only).
    let positionEmbedding: Tensor?
    public let blocks: [BlockWeights]
    let finalNorm: Norm
    /// Unembedding [d_vocab, d_model] (the token embedding itself when tied).
    let unembedding: WeightMatrix
    /// Rotary tables: `rotary` for every pass, or, with LongRoPE, for passes whose sequence ends within
    /// `longRotaryFrom` positions, and `longRotary` past it (transformers decides per forward call).
    let rotary: RotaryTable?
    let longRotary: RotaryTable?
    let longRotaryFrom: Int
    /// Applied in every pass this model runs (`intervened(_:)`); empty for a plain model.
    public let interventions: InterventionSet

    init(config: ModelConfig, tokenEmbedding: WeightMatrix, positionEmbedding: Tensor?, blocks: [BlockWeights],
         finalNorm: Norm, unembedding: WeightMatrix, interventions: InterventionSet = .none) {
        self.config = config
        self.tokenEmbedding = tokenEmbedding
        self.positionEmbedding = positionEmbedding
        self.blocks = blocks
        self.finalNorm = finalNorm
        self.unembedding = unembedding
        self.interventions = interventions
        if let r = config.rotary, r.dims > 0 {
            if case let .longrope(short, long, original, attention) = r.scaling {
                self.rotary = RotaryTable(dims: r.dims, theta: r.theta, attentionFactor: Float(attention),
                                          transform: { scaleInverseFrequencies($0, r.scaling) })
                _ = short
                self.longRotary = RotaryTable(dims: r.dims, theta: r.theta, attentionFactor: Float(attention),
                                              transform: { zip($0, long).map { $0 / $1 } })
                self.longRotaryFrom = original
            } else {
                self.rotary = RotaryTable(dims: r.dims, theta: r.theta, transform: { scaleInverseFrequencies($0, r.scaling) })
                self.longRotary = nil
                self.longRotaryFrom = .max
            }
        } else {
            self.rotary = nil
            self.longRotary = nil
            self.longRotaryFrom = .max
        }
    }

    /// The same weights (shared, not copied) with `interventions` applied in every pass: prompt passes,
    /// teacher-forced answers and generation. Replaces any interventions this model already has.
    public func intervened(_ interventions: [Intervention]) throws(InterventionError) -> DecoderModel {
        for i in interventions { try i.validate(layers: config.layers, heads: config.heads, dModel: config.dModel, dHead: config.dHead) }
        return DecoderModel(config: config, tokenEmbedding: tokenEmbedding, positionEmbedding: positionEmbedding, blocks: blocks,
                            finalNorm: finalNorm, unembedding: unembedding, interventions: InterventionSet(interventions))
    }

    public var layers: Int { config.layers }

    /// Parameters of the loaded weights (the embedding counted once when tied; LoRA factors not counted).
    public var parameterCount: Int {
        func linear(_ l: Linear) -> Int { l.inFeatures * l.outFeatures + (l.bias?.count ?? 0) }
        func norm(_ n: Norm?) -> Int { (n?.weight.count ?? 0) + (n?.bias?.count ?? 0) }
        var total = config.vocab * config.dModel * (config.tiedEmbeddings ? 1 : 2) + norm(finalNorm)
        total += positionEmbedding?.count ?? 0
        for b in blocks {
            total += b.linears.reduce(0) { $0 + linear($1) } + b.norms.reduce(0) { $0 + norm($1) }
        }
        return total
    }

    /// Query rows per attention block (causal blocking).
    static let queryBlock = 128

    public var vocab: Int { config.vocab }
    public var dModel: Int { config.dModel }

    /// Runs the pass over `ids`, appended after the positions already in `cache` (if any).
    /// - Returns: logits [rows, d_vocab] for the requested positions (rows = n, 1 or 0).
    @discardableResult
    public func forward(_ ids: [Int], cache: KVCache? = nil, logits request: LogitsRequest = .all,
                        observer: (any ForwardObserver)? = nil, compute: ComputeContext = .allCores) throws -> Tensor {
        guard !ids.isEmpty else { throw ModelError.emptyInput }
        // Without a caller's cache nothing outlives the pass, so one layer's keys and values are enough:
        // every block writes and reads one shared layer (saves 2·layers·n·d_kv floats).
        let cache = cache ?? KVCache.scratch(kvHeads: config.kvHeads, dHead: config.dHead, capacity: ids.count)
        return try run([SequenceInput(ids: ids, cache: cache)], logits: request, observers: [observer], compute: compute)
    }

    /// Runs one pass over several sequences, each continuing its own cache: the weights are read once
    /// for all of them. - Returns: logits [rows, d_vocab]: with `.last`, one row per sequence (its last
    /// position); with `.all`, every new position of every sequence, in order.
    /// `observers` (empty, or one per sequence, nil for none) each see their own sequence's hook tensors,
    /// shaped and positioned as in a pass of that sequence alone.
    @discardableResult
    public func forward(_ sequences: [SequenceInput], logits request: LogitsRequest = .last,
                        observers: [(any ForwardObserver)?] = [], compute: ComputeContext = .allCores) throws -> Tensor {
        guard !sequences.isEmpty else { throw ModelError.emptyInput }
        precondition(Set(sequences.map { ObjectIdentifier($0.cache) }).count == sequences.count, "one cache per sequence")
        precondition(observers.isEmpty || observers.count == sequences.count, "one observer (or nil) per sequence")
        return try run(sequences, logits: request, observers: observers.isEmpty ? sequences.map { _ in nil } : observers,
                       compute: compute)
    }

    /// The pass; `observers[s]` observes sequence s.
    private func run(_ seqs: [SequenceInput], logits request: LogitsRequest, observers: [(any ForwardObserver)?],
                     compute: ComputeContext) throws -> Tensor {
        let d = config.dModel
        var layout = PassLayout()
        for s in seqs {
            guard !s.ids.isEmpty else { throw ModelError.emptyInput }
            for id in s.ids where id < 0 || id >= config.vocab { throw ModelError.tokenOutOfRange(id: id, vocab: config.vocab) }
            let start = s.cache.length
            if positionEmbedding != nil, start + s.ids.count > config.maxPositions {
                throw ModelError.sequenceTooLong(length: start + s.ids.count, maxPositions: config.maxPositions)
            }
            s.cache.reserve(start + s.ids.count)
            layout.append(rows: s.ids.count, start: start, cache: s.cache)
        }
        let n = layout.rows
        let wantsPatterns = observers.contains { o in o.map { o in (0..<config.layers).contains { o.wants(.attnPattern($0)) } } ?? false }
        var scratch = Scratch(config: config, rows: n, keys: layout.longest, patternRows: layout.widestSequence,
                              patternHeads: max(1, compute.threads), sequences: seqs.count,
                              fullPatterns: wantsPatterns ? layout.fullPatternCount(heads: config.heads) : 0)
        defer { scratch.free() }
        let x = scratch.residual  // [pos, d_model]

        // Embedding (+ learned positions).
        var r = 0
        for s in seqs {
            for id in s.ids {
                tokenEmbedding.row(id, cols: d, into: x + r * d)
                if let scale = config.embeddingScale { for j in 0..<d { x[r * d + j] *= scale } }
                if let pe = positionEmbedding { addInPlace(x + r * d, pe.pointer + layout.positions[r] * d, count: d) }
                r += 1
            }
        }
        let allRows = QueryRows(layout)
        emit(.embed, observers, x, [d]) { (layout.firstRows[$0], layout.counts[$0], layout.starts[$0]) }

        for l in 0..<config.layers {
            // In the last block a sequence only needs its last row when nothing else reads the others
            // (their keys and values, computed from the block's input, are still cached).
            let queries = l == config.layers - 1 && request == .last
                ? QueryRows(layout, lastRowOnly: seqs.indices.map { layout.counts[$0] > 1 && !needsAllRows(ofLastBlock: l, observers[$0]) })
                : allRows
            interventions.apply(at: .residPre(l), x, rows: n, width: d, rowPositions: layout.positions, dHead: config.dHead)
            emit(.residPre(l), observers, x, [d]) { (layout.firstRows[$0], layout.counts[$0], layout.starts[$0]) }
            block(l, layout, queries: queries, scratch: &scratch, observers: observers, compute: compute)
            for s in seqs.indices where !interventions.isEmpty {
                interventions.apply(at: .residPost(l), x + queries.from[s] * d, rows: queries.counts[s], width: d,
                                    rowPositions: Array(queries.positions(of: s)), dHead: config.dHead)
            }
            emit(.residPost(l), observers, x, [d]) { (queries.from[$0], queries.counts[$0], queries.firstPositions[$0]) }
        }
        for (s, seq) in seqs.enumerated() { seq.cache.length = layout.starts[s] + layout.counts[s] }

        // Final norm and unembedding for the requested rows only.
        // Per sequence, the new rows whose logits are returned (a suffix of its rows).
        let outCounts: [Int]
        switch request {
        case .all: outCounts = layout.counts
        case .last: outCounts = seqs.map { _ in 1 }
        case .none: outCounts = seqs.map { _ in 0 }
        case .trailing(let counts):
            precondition(counts.count == seqs.count, "one trailing count per sequence")
            outCounts = seqs.indices.map { min(max(0, counts[$0]), layout.counts[$0]) }
        }
        let rowsOut = seqs.indices.flatMap { i in (layout.firstRows[i] + layout.counts[i] - outCounts[i])..<(layout.firstRows[i] + layout.counts[i]) }
        var outFirst = [Int](repeating: 0, count: seqs.count)
        for i in seqs.indices.dropFirst() { outFirst[i] = outFirst[i - 1] + outCounts[i - 1] }
        let outRows: (Int) -> (first: Int, count: Int, position: Int) = { (outFirst[$0], outCounts[$0], layout.starts[$0] + layout.counts[$0] - outCounts[$0]) }
        let out = Tensor(zeros: [rowsOut.count, config.vocab])
        guard !rowsOut.isEmpty else { return out }
        let normed = scratch.normed
        if rowsOut.count == n {
            finalNorm.apply(x, rows: n, into: normed)
        } else {
            for (k, row) in rowsOut.enumerated() { finalNorm.apply(x + row * d, rows: 1, into: normed + k * d) }
        }
        emit(.lnFinal, observers, normed, [d], outRows)
        unembed(normed, rows: rowsOut.count, into: out.pointer, compute: compute)
        emit(.logits, observers, out.pointer, [config.vocab], outRows)
        return out
    }

    /// True when an observer reads per-position outputs of block `l` that a last-row-only pass would skip.
    private func needsAllRows(ofLastBlock l: Int, _ observer: (any ForwardObserver)?) -> Bool {
        guard let observer else { return false }
        if let o = observer as? any RowSelectiveObserver { return !o.needsOnlyLastRow(ofBlock: l) }
        return [HookPoint.attnPattern(l), .attnZ(l), .attnOut(l), .residMid(l), .mlpOut(l), .residPost(l)].contains { observer.wants($0) }
    }

    /// logits[rows, d_vocab] = h[rows, d_model] · W_Uᵀ (h already normed), then the model's final-logit
    /// soft-capping when it has one (Gemma-2: cap · tanh(logits / cap)).
    public func unembed(_ h: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>,
                        compute: ComputeContext = .allCores) {
        unembedding.multiplyTransposed(h, rows: rows, n: config.vocab, k: config.dModel, into: logits, compute: compute)
        if let cap = config.finalLogitSoftcap { softcapInPlace(logits, count: rows * config.vocab, cap: cap) }
    }

    /// The logit lens: final norm then unembedding applied to residual vectors r[rows, d_model].
    public func logitLens(_ residual: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>,
                          compute: ComputeContext = .allCores) {
        let normed = UnsafeMutablePointer<Float>.allocate(capacity: rows * config.dModel)
        defer { normed.deallocate() }
        finalNorm.apply(residual, rows: rows, into: normed)
        unembed(normed, rows: rows, into: logits, compute: compute)
    }

    // MARK: - One block

    /// Runs block `l` on the stacked residual rows in `scratch`. Keys and values are computed for every
    /// row; queries, attention output, MLP and residual updates only for the rows in `queries` (fewer than
    /// all only in the last block of a pass whose caller needs just each sequence's last position). Those
    /// rows' attention and MLP outputs are stored compactly, `queries.compact[s]` the first of sequence s.
    /// An observer that is a `BlockTape` also receives the block's internals that the reverse pass needs
    /// (ActivationGradients.swift; one sequence, every row); every other pass records nothing more.
    func block(_ l: Int, _ layout: PassLayout, queries: QueryRows, scratch: inout Scratch,
               observers: [(any ForwardObserver)?], compute: ComputeContext) {
        let w = blocks[l]
        let tape = observers.count == 1 ? observers[0] as? BlockTape : nil
        let d = config.dModel
        let n = layout.rows, m = queries.rows
        let x = scratch.residual
        let h = scratch.normed
        let rowPositions = queries.positions
        // Each sequence's rows of a compact [m, ·] output, and of the residual x.
        let compactRows: (Int) -> (first: Int, count: Int, position: Int) = { (queries.compact[$0], queries.counts[$0], queries.firstPositions[$0]) }
        let residualRows: (Int) -> (first: Int, count: Int, position: Int) = { (queries.from[$0], queries.counts[$0], queries.firstPositions[$0]) }
        // The updated rows of x as one [m, d_model] buffer: x itself when they are contiguous, else a
        // copy in `scratch.normed` (free once attention has run; the MLP's norm then runs in place).
        let updatedRows: () -> UnsafePointer<Float> = {
            if queries.contiguous { return UnsafePointer(x + queries.from[0] * d) }
            for s in 0..<layout.count { (h + queries.compact[s] * d).update(from: x + queries.from[s] * d, count: queries.counts[s] * d) }
            return UnsafePointer(h)
        }
        // Attention sub-layer on norm(x) (on x itself without a pre-norm).
        let attnIn: UnsafePointer<Float>
        if let norm = w.attnNorm { norm.apply(x, rows: n, into: h); attnIn = UnsafePointer(h) } else { attnIn = UnsafePointer(x) }
        attention(l, w, input: attnIn, layout, queries: queries, scratch: &scratch, observers: observers, compute: compute)
        let attnOut = scratch.attnOut  // [m, d_model]
        if let post = w.attnPostNorm { tape?.record(.attnPreNorm, attnOut, count: m * d); post.apply(attnOut, rows: m, into: attnOut) }
        interventions.apply(at: .attnOut(l), attnOut, rows: m, width: d, rowPositions: rowPositions, dHead: config.dHead)
        emit(.attnOut(l), observers, attnOut, [d], compactRows)

        if config.parallelResidual {
            // GPT-NeoX parallel residual: x + attn(ln1(x)) + mlp(ln2(x)).
            mlpBranch(w, updatedRows(), rows: m, scratch: &scratch, tape: tape, compute: compute)
            interventions.apply(at: .mlpOut(l), scratch.mlpOut, rows: m, width: d, rowPositions: rowPositions, dHead: config.dHead)
            emit(.mlpOut(l), observers, scratch.mlpOut, [d], compactRows)
            addUpdatedRows(x, attnOut, queries)
            addUpdatedRows(x, scratch.mlpOut, queries)
        } else {
            addUpdatedRows(x, attnOut, queries)
            emit(.residMid(l), observers, x, [d], residualRows)
            mlpBranch(w, updatedRows(), rows: m, scratch: &scratch, tape: tape, compute: compute)
            interventions.apply(at: .mlpOut(l), scratch.mlpOut, rows: m, width: d, rowPositions: rowPositions, dHead: config.dHead)
            emit(.mlpOut(l), observers, scratch.mlpOut, [d], compactRows)
            addUpdatedRows(x, scratch.mlpOut, queries)
        }
    }

    /// x[updated rows] += y[m, d_model] (compact rows).
    private func addUpdatedRows(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, _ queries: QueryRows) {
        let d = config.dModel
        if queries.contiguous { addInPlace(x + queries.from[0] * d, y, count: queries.rows * d); return }
        for s in queries.from.indices { addInPlace(x + queries.from[s] * d, y + queries.compact[s] * d, count: queries.counts[s] * d) }
    }

    /// mlp_out = mlpPostNorm?(mlp(mlpNorm?(x))) for `rows` rows of the residual into scratch.mlpOut.
    private func mlpBranch(_ w: BlockWeights, _ x: UnsafePointer<Float>, rows m: Int, scratch: inout Scratch, tape: BlockTape?,
                           compute: ComputeContext) {
        let input: UnsafePointer<Float>
        if let norm = w.mlpNorm { norm.apply(x, rows: m, into: scratch.normed); input = UnsafePointer(scratch.normed) } else { input = x }
        mlp(w.mlp, input: input, rows: m, scratch: &scratch, tape: tape, compute: compute)
        if let post = w.mlpPostNorm { tape?.record(.mlpPreNorm, scratch.mlpOut, count: m * config.dModel); post.apply(scratch.mlpOut, rows: m, into: scratch.mlpOut) }
    }

    private func attention(_ l: Int, _ w: BlockWeights, input h: UnsafePointer<Float>, _ layout: PassLayout, queries: QueryRows,
                           scratch: inout Scratch, observers: [(any ForwardObserver)?], compute: ComputeContext) {
        let H = config.heads, KV = config.kvHeads, dh = config.dHead
        let n = layout.rows, m = queries.rows
        // 1. Project (queries only for rows from the first updated one on; rows between sequences' updated
        //    rows get queries that nothing reads).
        let q0 = queries.from[0]
        let qkv = scratch.qkv
        let (ld, qOff, kOff, vOff) = project(w, h, rows: n, queryFrom: q0, into: qkv, compute: compute)
        if observers.count == 1 { (observers[0] as? BlockTape)?.record(.projected, qkv, count: n * ld) }

        // 2. Rotary on q (query rows) and k (all rows), then append k and v to each sequence's cache
        //    ([kv_head, pos, d_head]).
        for s in 0..<layout.count {
            let cache = layout.caches[s]
            let slot = cache.slot(forLayer: l)
            let kc = cache.keys[slot], vc = cache.values[slot], cap = cache.capacity
            // LongRoPE: the long factors when this sequence ends past the original context (per pass, as transformers).
            let rot = rotaryTable(sequenceEnd: layout.starts[s] + layout.counts[s])
            let q0 = queries.from[s]
            for i in 0..<layout.counts[s] {
                let r = layout.firstRows[s] + i, p = layout.starts[s] + i
                let row = qkv + r * ld
                // q/k norms (before rotary): per head over d_head, or over the whole projection.
                if let qn = w.qNorm, r >= q0 { applyQKNorm(qn, row, heads: H, offset: qOff) }
                if let kn = w.kNorm { applyQKNorm(kn, row, heads: KV, offset: kOff) }
                if let rot, rot.dims >= 2 {
                    rot.angles(position: p, cos: scratch.cos, sin: scratch.sin)
                    if r >= q0 { for hh in 0..<H { rot.rotate(row + qOff(hh), cos: scratch.cos, sin: scratch.sin) } }
                    for g in 0..<KV { rot.rotate(row + kOff(g), cos: scratch.cos, sin: scratch.sin) }
                }
                for g in 0..<KV {
                    (kc + (g * cap + p) * dh).update(from: row + kOff(g), count: dh)
                    (vc + (g * cap + p) * dh).update(from: row + vOff(g), count: dh)
                }
            }
        }

        // 3. Scores, mask, softmax and weighted values; (sequence, head) pairs split across threads.
        let scale = attentionScale(layer: l)
        let softcap = config.attnLogitSoftcap
        let window = l < config.slidingWindow.count ? config.slidingWindow[l] : nil
        let wantPattern = observers.map { $0?.wants(.attnPattern(l)) ?? false }
        let wantLastRow = observers.map { $0?.wants(.attnPatternLast(l)) ?? false }
        let knockouts = interventions.knockouts(layer: l)
        let group = H / KV
        let ctx = scratch.context  // [row, head·d_head], the updated rows stored compactly
        // Full patterns: sequence s's [head, query_pos, key_pos] from `patternOffsets[s]`.
        let patternOffsets = layout.patternOffsets(heads: H)
        let pattern = scratch.pattern, workerProbs = scratch.workerPattern, probsStride = scratch.patternStride
        let lastRow = scratch.lastRow, lastRowStride = H * layout.longest   // sequence s: [head, key_pos] from s·lastRowStride
        let items = layout.count * H
        var work = 0
        for s in 0..<layout.count { work += layout.counts[s] * (layout.starts[s] + layout.counts[s]) * dh * H }
        let workers = work >= 32_768 ? max(1, min(compute.threads, scratch.patternHeads, items)) : 1
        let runItems: (Int) -> Void = { worker in
            var item = worker
            while item < items {
                let s = item / H, hh = item % H, g = hh / group
                let cache = layout.caches[s]
                let slot = cache.slot(forLayer: l)
                let kc = cache.keys[slot], vc = cache.values[slot], cap = cache.capacity
                let start = layout.starts[s]
                // this sequence's updated rows
                let rowFrom = queries.from[s], rows = queries.counts[s]
                let total = start + layout.counts[s]       // keys of this sequence after the pass
                let firstPos = start + (rowFrom - layout.firstRows[s])
                // full pattern: [head, query_pos, key_pos]; otherwise one buffer per worker
                let probs = wantPattern[s] ? pattern + patternOffsets[s] + hh * rows * total : workerProbs + worker * probsStride
                let ldp = wantPattern[s] ? total : layout.longest
                // Query rows in blocks: a block's rows attend to keys before its last row only (causal), so
                // scores and weighted values are computed for those keys alone (about half the work).
                var r0 = 0
                while r0 < rows {
                    let r1 = min(rows, r0 + DecoderModel.queryBlock)
                    let keys = firstPos + r1          // keys 0..<keys are visible to some row of the block
                    sgemm(m: r1 - r0, n: keys, k: dh, a: qkv + (rowFrom + r0) * ld + qOff(hh), lda: ld, b: kc + g * cap * dh, ldb: dh,
                          transB: true, c: probs + r0 * ldp, ldc: ldp, alpha: scale)
                    for i in r0..<r1 {
                        let p = firstPos + i
                        let row = probs + i * ldp
                        // soft-capping of the scaled scores (Gemma-2), before any mask
                        if let softcap { softcapInPlace(row, count: p + 1, cap: softcap) }
                        // knockouts: −∞ before the softmax for the listed keys (the softmax renormalises)
                        for k in knockouts where k.applies(toHead: hh) && k.queries.contains(p) {
                            for j in 0...p where k.keys.contains(j) { row[j] = -.infinity }
                        }
                        // causal: keys 0...p; sliding window: keys with p - k < window (transformers sliding_window_overlay)
                        let firstKey = window.map { max(0, p - $0 + 1) } ?? 0
                        softmaxInPlace(row, count: ldp, firstValid: firstKey, valid: p + 1)
                    }
                    // z_h[q, :] = probs · v_g
                    sgemm(m: r1 - r0, n: dh, k: keys, a: probs + r0 * ldp, lda: ldp, b: vc + g * cap * dh, ldb: dh,
                          c: ctx + (queries.compact[s] + r0) * H * dh + hh * dh, ldc: H * dh)
                    r0 = r1
                }
                if wantLastRow[s] { (lastRow + s * lastRowStride + hh * total).update(from: probs + (rows - 1) * ldp, count: total) }
                item += workers
            }
        }
        parallelFor(workers, runItems)
        for (s, observer) in observers.enumerated() {
            guard let observer else { continue }
            let total = layout.starts[s] + layout.counts[s]
            if wantPattern[s] {
                observer.observe(.attnPattern(l), TensorView(pointer: pattern + patternOffsets[s], shape: [H, queries.counts[s], total],
                                                             firstPosition: queries.firstPositions[s]))
            }
            if wantLastRow[s] {
                observer.observe(.attnPatternLast(l), TensorView(pointer: lastRow + s * lastRowStride, shape: [H, total], firstPosition: total - 1))
            }
        }
        // 4. z (hook_z), then the output projection.
        interventions.apply(at: .attnZ(l), ctx, rows: m, width: H * dh, rowPositions: queries.positions, dHead: dh)
        emit(.attnZ(l), observers, ctx, [H, dh]) { (queries.compact[$0], queries.counts[$0], queries.firstPositions[$0]) }
        w.attnOut.apply(ctx, rows: m, into: scratch.attnOut, compute: compute)
    }

    /// RMSNorm of the queries (or keys) of one row in place: each head's d_head values, or all heads' values
    /// together (they are contiguous in the row for the projections that have q/k norms).
    @inline(__always)
    private func applyQKNorm(_ qk: QKNorm, _ row: UnsafeMutablePointer<Float>, heads: Int, offset: (Int) -> Int) {
        if qk.perHead {
            for hh in 0..<heads { qk.norm.apply(row + offset(hh), rows: 1, into: row + offset(hh)) }
        } else {
            qk.norm.apply(row + offset(0), rows: 1, into: row + offset(0))
        }
    }

    /// q, k and v of `rows` input rows into `qkv`, side by side per row; returns the row stride and each
    /// head's offset in a row. For separate projections, queries are computed only for rows `q0..<rows`.
    func project(_ w: BlockWeights, _ h: UnsafePointer<Float>, rows n: Int, queryFrom q0: Int = 0,
                 into qkv: UnsafeMutablePointer<Float>, compute: ComputeContext) -> (Int, (Int) -> Int, (Int) -> Int, (Int) -> Int) {
        let H = config.heads, KV = config.kvHeads, dh = config.dHead
        switch w.qkv {
        case let .separate(q, k, v):
            // [q: H*dh | k: KV*dh | v: KV*dh] side by side in one row.
            let ld = (H + 2 * KV) * dh
            if q0 == 0 {   // one input for the three: one rounding to bf16, one parallel region
                Linear.apply([(q, qkv, ld), (k, qkv + H * dh, ld), (v, qkv + (H + KV) * dh, ld)], to: h, rows: n, compute: compute)
            } else {
                q.apply(h + q0 * q.inFeatures, rows: n - q0, into: qkv + q0 * ld, yStride: ld, compute: compute)
                Linear.apply([(k, qkv + H * dh, ld), (v, qkv + (H + KV) * dh, ld)], to: h, rows: n, compute: compute)
            }
            return (ld, { $0 * dh }, { (H + $0) * dh }, { (H + KV + $0) * dh })
        case let .fusedBlocks(p):
            // [q: H*dh | k: KV*dh | v: KV*dh] as the fused weight stores them.
            p.apply(h, rows: n, into: qkv, compute: compute)
            return ((H + 2 * KV) * dh, { $0 * dh }, { (H + $0) * dh }, { (H + KV + $0) * dh })
        case let .fusedPerHead(p):
            p.apply(h, rows: n, into: qkv, compute: compute)
            return (3 * H * dh, { 3 * $0 * dh }, { (3 * $0 + 1) * dh }, { (3 * $0 + 2) * dh })
        }
    }

    /// The rotary table of a pass whose sequence ends at position `sequenceEnd` (exclusive).
    func rotaryTable(sequenceEnd: Int) -> RotaryTable? { sequenceEnd > longRotaryFrom ? longRotary : rotary }

    /// The factor of block `l`'s attention scores q·kᵀ.
    func attentionScale(layer l: Int) -> Float {
        var scale: Float = config.attentionScale ?? (config.scaleAttnWeights ? 1 / Float(config.dHead).squareRoot() : 1)
        if config.scaleAttnByInverseLayerIdx { scale /= Float(l + 1) }
        return scale
    }

    func mlp(_ m: MLP, input h: UnsafePointer<Float>, rows n: Int, scratch: inout Scratch, tape: BlockTape? = nil, compute: ComputeContext) {
        let hidden = scratch.mlpHidden
        switch m {
        case let .plain(up, down, act):
            up.apply(h, rows: n, into: hidden, compute: compute)
            tape?.record(.mlpPreActivation, hidden, count: n * up.outFeatures)
            activate(hidden, count: n * up.outFeatures, act, compute: compute)
            down.apply(hidden, rows: n, into: scratch.mlpOut, compute: compute)
        case let .gated(gate, up, down, act):
            let u = scratch.mlpHidden2
            Linear.apply([(gate, hidden, nil), (up, u, nil)], to: h, rows: n, compute: compute)
            let count = n * up.outFeatures
            tape?.record(.mlpPreActivation, hidden, count: count)
            activate(hidden, count: count, act, compute: compute)
            for i in 0..<count { hidden[i] *= u[i] }
            down.apply(hidden, rows: n, into: scratch.mlpOut, compute: compute)
        case let .gatedFused(gateUp, down, act):
            // gate_up_proj gives [gate | up] per row (Phi3MLP: gate, up = chunk(2)).
            let width = gateUp.outFeatures / 2
            let both = scratch.mlpHidden2  // [rows, 2·d_mlp]
            gateUp.apply(h, rows: n, into: both, compute: compute)
            for r in 0..<n { (hidden + r * width).update(from: both + r * 2 * width, count: width) }
            tape?.record(.mlpPreActivation, hidden, count: n * width)
            activate(hidden, count: n * width, act, compute: compute)
            for r in 0..<n {
                let g = hidden + r * width, u = both + r * 2 * width + width
                for j in 0..<width { g[j] *= u[j] }
            }
            down.apply(hidden, rows: n, into: scratch.mlpOut, compute: compute)
        }
    }

    /// Hands each sequence's observer its own rows of a stacked buffer: `rows(s)` gives sequence s's first
    /// row in `p`, its row count and the absolute position of that row; each row holds `inner` (e.g. [d_model]).
    @inline(__always)
    private func emit(_ hook: HookPoint, _ observers: [(any ForwardObserver)?], _ p: UnsafePointer<Float>, _ inner: [Int],
                      _ rows: (Int) -> (first: Int, count: Int, position: Int)) {
        let width = inner.reduce(1, *)
        for (s, observer) in observers.enumerated() {
            guard let observer, observer.wants(hook) else { continue }
            let (first, count, position) = rows(s)
            guard count > 0 else { continue }
            observer.observe(hook, TensorView(pointer: p + first * width, shape: [count] + inner, firstPosition: position))
        }
    }
}

/// The stacked rows a block updates: per sequence a suffix of its new rows (all of them, or only the last
/// in the last block of a pass whose observers need nothing else), stored compactly in the block's
/// attention and MLP outputs.
struct QueryRows {
    /// Per sequence: first updated stacked row, updated rows, their first compact row and its position.
    var from: [Int] = [], counts: [Int] = [], compact: [Int] = [], firstPositions: [Int] = []
    /// Absolute position of each compact row.
    var positions: [Int] = []
    var rows = 0
    /// True when compact row r is stacked row from[0] + r (every row updated, or one sequence).
    var contiguous = true

    /// Every new row of every sequence.
    init(_ layout: PassLayout) { self.init(layout, lastRowOnly: layout.counts.map { _ in false }) }

    init(_ layout: PassLayout, lastRowOnly: [Bool]) {
        for s in 0..<layout.count {
            let k = lastRowOnly[s] ? 1 : layout.counts[s]
            let skip = layout.counts[s] - k
            from.append(layout.firstRows[s] + skip)
            counts.append(k)
            compact.append(rows)
            firstPositions.append(layout.starts[s] + skip)
            positions.append(contentsOf: (layout.starts[s] + skip)..<(layout.starts[s] + layout.counts[s]))
            if from[s] != from[0] + rows { contiguous = false }
            rows += k
        }
    }

    /// The positions of sequence s's updated rows.
    func positions(of s: Int) -> ArraySlice<Int> { positions[compact[s]..<(compact[s] + counts[s])] }
}

/// Where each sequence's rows sit in a pass's stacked buffers.
struct PassLayout {
    var caches: [KVCache] = []
    /// Per sequence: first stacked row, new rows, positions already cached.
    var firstRows: [Int] = []
    var counts: [Int] = []
    var starts: [Int] = []
    /// Absolute position of each stacked row.
    var positions: [Int] = []
    var rows = 0
    /// The most keys any sequence attends over, and the most new rows of one sequence.
    var longest = 0
    var widestSequence = 0

    var count: Int { caches.count }

    /// Floats of every sequence's full attention pattern [head, new rows, keys], one after another.
    func fullPatternCount(heads: Int) -> Int { (0..<count).reduce(0) { $0 + heads * counts[$1] * (starts[$1] + counts[$1]) } }

    /// Where sequence s's full pattern starts in that buffer.
    func patternOffsets(heads: Int) -> [Int] {
        var offsets = [Int](repeating: 0, count: count)
        for s in 1..<max(count, 1) { offsets[s] = offsets[s - 1] + heads * counts[s - 1] * (starts[s - 1] + counts[s - 1]) }
        return offsets
    }

    mutating func append(rows n: Int, start: Int, cache: KVCache) {
        caches.append(cache)
        firstRows.append(rows)
        counts.append(n)
        starts.append(start)
        positions.append(contentsOf: start..<(start + n))
        rows += n
        longest = max(longest, start + n)
        widestSequence = max(widestSequence, n)
    }
}

/// Applies an activation in place, split over `compute`'s threads for large buffers.
func activate(_ x: UnsafeMutablePointer<Float>, count: Int, _ act: Activation, compute: ComputeContext) {
    let base = UncheckedSendable(x)
    compute.parallelRanges(count, align: 8, work: count, minimumPerThread: 1 << 15) { r in
        activateSerial(base.value + r.lowerBound, count: r.count, act)
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
    case let .longrope(short, _, _, _):
        // The short table; the long one is built beside it (DecoderModel.init).
        return zip(invFreq, short).map { $0 / $1 }
    }
}

/// Per-pass work buffers, sized for `rows` stacked rows attending over at most `keys` positions.
/// Zero-filled float buffers allocated one after another and freed together (the scratch of a pass, and of a
/// reverse pass): at least one float each, so that a zero-sized buffer is still a valid pointer.
struct ZeroedBuffers {
    private(set) var buffers: [UnsafeMutablePointer<Float>] = []

    mutating func make(_ count: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
        buffers.append(p)
        return p
    }
}

struct Scratch {
    let residual: UnsafeMutablePointer<Float>    // [pos, d_model]
    let normed: UnsafeMutablePointer<Float>      // [pos, d_model]
    let qkv: UnsafeMutablePointer<Float>         // [pos, (head + 2·kv_head)·d_head]
    let context: UnsafeMutablePointer<Float>     // [pos, head·d_head]  (hook_z)
    /// Attention probabilities observed in full: per sequence [head, query_pos, key_pos]
    /// (`PassLayout.patternOffsets`); then, from `workerPattern`, one [query_pos, key_pos] buffer per
    /// worker (`patternStride` floats apart) for the sequences whose pattern is not observed.
    let pattern: UnsafeMutablePointer<Float>
    let workerPattern: UnsafeMutablePointer<Float>
    let patternStride: Int
    let patternHeads: Int
    let attnOut: UnsafeMutablePointer<Float>     // [pos, d_model]
    let mlpHidden: UnsafeMutablePointer<Float>   // [pos, d_mlp]
    let mlpHidden2: UnsafeMutablePointer<Float>  // [pos, 2·d_mlp]
    let mlpOut: UnsafeMutablePointer<Float>      // [pos, d_model]
    let lastRow: UnsafeMutablePointer<Float>     // [sequence, head, key_pos]
    let cos: UnsafeMutablePointer<Float>         // [d_head]
    let sin: UnsafeMutablePointer<Float>         // [d_head]
    private var all: [UnsafeMutablePointer<Float>] = []

    /// `fullPatterns`: floats for the observed full patterns (0: none; a pass of one sequence may then
    /// still keep its full pattern in the worker buffers when there are `heads` of `rows × keys`).
    init(config c: ModelConfig, rows n: Int, keys total: Int, patternRows: Int, patternHeads: Int, sequences: Int = 1,
         fullPatterns: Int = 0) {
        var pool = ZeroedBuffers()
        let qkvWidth = max((c.heads + 2 * c.kvHeads) * c.dHead, 3 * c.heads * c.dHead)  // the widest projection layout
        residual = pool.make(n * c.dModel)
        normed = pool.make(n * c.dModel)
        qkv = pool.make(n * qkvWidth)
        context = pool.make(n * c.heads * c.dHead)
        patternStride = patternRows * total
        self.patternHeads = patternHeads
        pattern = pool.make(fullPatterns + patternHeads * patternStride)
        workerPattern = pattern + fullPatterns
        attnOut = pool.make(n * c.dModel)
        mlpHidden = pool.make(n * c.dMLP)
        mlpHidden2 = pool.make(n * 2 * c.dMLP)   // [pos, d_mlp], or [pos, 2·d_mlp] for a fused gate|up
        mlpOut = pool.make(n * c.dModel)
        lastRow = pool.make(sequences * c.heads * total)
        cos = pool.make(c.dHead)
        sin = pool.make(c.dHead)
        self.all = pool.buffers
    }

    func free() { all.forEach { $0.deallocate() } }
}

extension DecoderModel: LogitLensModel {}

// The reverse-mode pass over activations: gradients of a scalar metric of one position's logits with
// respect to the activations at hook points (never the weights), for attribution patching (AtP; Nanda
// 2023, "Attribution patching"; Kramár et al. 2024, "AtP*"): the patching effect of every component is
// estimated from one clean pass and one backward pass as (a_patched − a_clean) · ∂M/∂a.
//
// One block definition. The backward mirrors the forward block in DecoderModel.swift and reuses its
// weights and its code: the clean pass is `DecoderModel.forward` with an observer that keeps each block's
// input (hook_resid_pre, after any write there); during the backward, each block is run again by the very
// same `block` function on that input, with a `BlockTape` as its observer, which keeps what the forward
// discards and the backward needs (projections before the q/k norms, the full attention pattern, the
// residual between the sub-layers, MLP pre-activations, branch outputs before their post-norms). Then the
// block is differentiated, in reverse order of its steps:
//
//   resid_post write   → blocked (zero, replace) / scaled / passed (add)           (same for every write)
//   mlp_out write      ← ∂M/∂mlp_out reported here (of the written value)            hook_mlp_out
//   mlpPostNorm?       LayerNorm / RMSNorm backward (statistics recomputed in float64, as the forward)
//   MLP                down-projection transposed; GELU (tanh, erf), SiLU, ReLU derivatives; gate ⊙ up;
//                      up/gate projections transposed (summed)
//   mlpNorm?           norm backward on the MLP's input (resid_mid, or resid_pre with a parallel residual)
//   attn_out write, attnPostNorm?, o_proj transposed
//   z write            ← ∂M/∂z reported here                                         hook_z
//   attention          per head and query block (the forward's causal blocking): dV = Pᵀ·dZ,
//                      dP = dZ·Vᵀ, dS = P ⊙ (dP − rowsum(P ⊙ dP)), × soft-cap derivative 1 − (S_capped/cap)²,
//                      × scale; dQ = dS·K, dK = dSᵀ·Q. Masked, windowed and knocked-out scores have P = 0,
//                      so no gradient flows through them. Grouped-query heads' dK, dV are summed per kv head
//                      in head order.
//   rotary             the transpose of a rotation: the same cos/sin tables with sin negated (LongRoPE's
//                      attention factor included); partial rotary leaves the other channels alone
//   q/k norms          RMSNorm backward per head or over the whole projection
//   q/k/v projection   transposed (fused or separate)
//   attnNorm?          norm backward on resid_pre
//   resid_pre write    ← ∂M/∂resid_pre reported here (before the write's backward)   hook_resid_pre
// The final norm and the unembedding (with Gemma-2's final soft-cap) start it; the gradient stops at
// hook_resid_pre of layer 0 (nothing flows into embeddings or weights).
//
// Precision. The transposed weight products (r = g·W for y = x·Wᵀ) go through the same entry points as the
// forward's, in the pass's `ComputeContext` precision (`linear`, `linearHalf`, `linearBF16`: in bf16 the
// gradient rows are rounded to bf16 as the forward rounds activations); every gradient is float32, and
// the attention products, norms and elementwise steps are float32 (statistics float64) in both precisions.
// Products are split into column tiles fixed by the shape (`ProductTiling`), attention into heads, rows
// and elementwise loops into disjoint ranges, and sums across heads run in head order: the result does not
// depend on the thread count.
//
// Cost. The clean pass is one forward; the backward runs each block once more (≈ one forward) plus one
// transposed product per weight product (≈ one forward: activation gradients need no weight gradients)
// and about twice the forward's attention products: about 3 forwards in all (measured: docs/attribution.md).
//
// Memory (4-byte floats; n positions, L layers, d = d_model, m = d_mlp, q = (head + 2·kv_head)·d_head,
// H heads, T threads, h hook points asked for). Kept for the whole backward: every block input, L·n·d, and
// the outputs, 2·L·n·d per hook point (clean value and gradient; hook_z is [pos, head·d_head]). Transient,
// one block at a time (the forward's scratch with the full pattern, one layer's keys and values, the tape,
// the gradients): for a Llama-shaped block (separate q/k/v, gated MLP, no q/k or post-norms)
//     17·n·d + 2·n·q + 7·n·m + H·n² + T·128·n
// (OLMo-2, Gemma-2 and Qwen3 add up to n·q + 2·n·d for the tape). Peak ≈ 4 bytes × [(1 + 2h)·L·n·d + that].
// Llama-2-7B (L 32, d 4096, m 11008, H 32, q 12288, T 16) at n = 650: block inputs 341 MB, transient 505 MB
// (the pattern 54 MB of it), outputs 682 MB per hook point: 1.53 GB in all for hook_z, 2.2 GB for hook_z and
// hook_mlp_out (attribution patching of heads and MLPs), 2.9 GB for all three; at n = 100, 0.33 GB for
// hook_z and hook_mlp_out. Against 13.5 GB of bf16 weights (docs/attribution.md).
import Checkpoints
import Foundation
import Instrumentation
import TensorCore

/// The hook points a reverse pass returns (clean value and gradient at each); the others cost no memory.
public struct GradientHooks: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// `blocks.l.attn.hook_z`: the per-head input of the attention output projection, [pos, head, d_head].
    public static let z = GradientHooks(rawValue: 1)
    /// `blocks.l.hook_mlp_out`: what the MLP branch adds to the residual stream (after a post-norm), [pos, d_model].
    public static let mlpOut = GradientHooks(rawValue: 2)
    /// `blocks.l.hook_resid_pre`: the residual stream entering block l, [pos, d_model].
    public static let residPre = GradientHooks(rawValue: 4)
    public static let all: GradientHooks = [.z, .mlpOut, .residPre]
}

/// A metric that is a linear functional of the logits at one position: M = Σ_v weights[v] · logits[v].
public struct LogitMetric: Sendable, Equatable {
    /// [d_vocab]
    public let weights: [Float]

    public init(weights: [Float]) { self.weights = weights }

    /// logits[a] − logits[b]: with a the context answer's first token and b the memory answer's, the logit
    /// difference of the probe job and of direct logit attribution.
    public static func logitDifference(_ a: Int, _ b: Int, vocab: Int) -> LogitMetric {
        precondition(a >= 0 && a < vocab && b >= 0 && b < vocab, "answer ids \(a), \(b) outside the vocabulary")
        var w = [Float](repeating: 0, count: vocab)
        w[a] += 1
        w[b] -= 1
        return LogitMetric(weights: w)
    }

    /// M(logits) = weights · logits, summed in float64.
    public func value(_ logits: [Float]) -> Float {
        precondition(logits.count == weights.count, "\(logits.count) logits for a metric over \(weights.count)")
        var s = 0.0
        for (w, x) in zip(weights, logits) where w != 0 { s += Double(w) * Double(x) }
        return Float(s)
    }
}

/// An activation of the clean pass and the metric's gradient with respect to it, of the same shape.
public struct ActivationGradient: Sendable {
    /// The clean value (after any intervention write at this hook: the value the rest of the pass reads).
    public let activation: Tensor
    /// ∂M/∂activation.
    public let gradient: Tensor
}

/// One layer's hook points, those asked for (`GradientHooks`); nil for the others.
public struct LayerGradients: Sendable {
    /// `attn.hook_z` [pos, head, d_head]
    public var z: ActivationGradient?
    /// `hook_mlp_out` [pos, d_model]
    public var mlpOut: ActivationGradient?
    /// `hook_resid_pre` [pos, d_model]
    public var residPre: ActivationGradient?
}

/// The result of a reverse pass over one sequence.
public struct ActivationGradients: Sendable {
    public let ids: [Int]
    /// The position whose logits the metric reads.
    public let position: Int
    /// Clean logits at `position` [d_vocab] (after a final soft-cap).
    public let logits: [Float]
    /// ∂M/∂logits at `position` [d_vocab]: the metric's weights, or the caller's gradient.
    public let logitGradient: [Float]
    /// M at the clean logits for a `LogitMetric`; nil when the caller gave ∂M/∂logits only.
    public let metric: Float?
    /// Per layer.
    public let layers: [LayerGradients]

    /// The attribution-patching estimate of zero-ablating each head at every position (the trivial
    /// baseline): Σ_pos Σ_e (0 − z[pos, h, e]) · ∂M/∂z[pos, h, e], [layer, head], summed in float64.
    /// nil unless hook_z was asked for.
    public func headZeroAblationEstimates() -> [Float]? {
        guard let first = layers.first?.z else { return nil }
        let H = first.activation.shape[1], dh = first.activation.shape[2], n = first.activation.shape[0]
        var out: [Float] = []
        for layer in layers {
            guard let z = layer.z else { return nil }
            for h in 0..<H {
                var s = 0.0
                for p in 0..<n { for e in 0..<dh {
                    let i = (p * H + h) * dh + e
                    s -= Double(z.activation.pointer[i]) * Double(z.gradient.pointer[i])
                } }
                out.append(Float(s))
            }
        }
        return out
    }

    /// The same estimate for zero-ablating each layer's MLP output at every position, [layer].
    public func mlpZeroAblationEstimates() -> [Float]? {
        layers.reduce(into: [Float]?([])) { acc, layer in
            guard let m = layer.mlpOut, acc != nil else { acc = nil; return }
            var s = 0.0
            for i in 0..<m.activation.count { s -= Double(m.activation.pointer[i]) * Double(m.gradient.pointer[i]) }
            acc!.append(Float(s))
        }
    }
}

/// The clean pass of a reverse pass: one sequence run forward, keeping every block's input and the logits
/// at one position. Make it with `DecoderModel.cleanPass(_:position:compute:)`, read `logits`, then call
/// `backward` once or several times (different metrics over the same pass cost one backward each).
public final class CleanPass: @unchecked Sendable {
    public let model: DecoderModel
    public let ids: [Int]
    /// The position whose logits the metric reads.
    public let position: Int
    /// Clean logits at `position` [d_vocab].
    public let logits: [Float]
    /// The precision and threads of the clean pass; the backward uses the same.
    public let compute: ComputeContext
    /// Per layer: the block's input after any write at hook_resid_pre [pos, d_model].
    let blockInputs: [Tensor]
    /// The last block's output at `position`, after any write at its hook_resid_post [1, d_model].
    let finalResidual: Tensor

    init(model: DecoderModel, ids: [Int], position: Int, logits: [Float], compute: ComputeContext,
         blockInputs: [Tensor], finalResidual: Tensor) {
        self.model = model
        self.ids = ids
        self.position = position
        self.logits = logits
        self.compute = compute
        self.blockInputs = blockInputs
        self.finalResidual = finalResidual
    }

    /// The gradients of a metric that is a linear functional of the logits at `position`.
    public func backward(_ metric: LogitMetric, hooks: GradientHooks = .all) -> ActivationGradients {
        model.reversePass(self, logitGradient: metric.weights, metric: metric.value(logits), hooks: hooks)
    }

    /// The gradients of any metric of the logits at `position`, given its gradient ∂M/∂logits [d_vocab] at
    /// the clean logits (for M_C = p_ctx / (p_ctx + p_mem): computed by the caller from `logits`).
    public func backward(logitGradient: [Float], hooks: GradientHooks = .all) -> ActivationGradients {
        model.reversePass(self, logitGradient: logitGradient, metric: nil, hooks: hooks)
    }
}

extension DecoderModel {
    /// Runs the clean pass over `ids` (a whole sequence, no cache), keeping what a reverse pass needs: each
    /// block's input and the logits at `position` (default: the last). The model's interventions apply.
    public func cleanPass(_ ids: [Int], position: Int? = nil, compute: ComputeContext = .allCores) throws -> CleanPass {
        guard !ids.isEmpty else { throw ModelError.emptyInput }
        let p = position ?? ids.count - 1
        precondition(p >= 0 && p < ids.count, "position \(p) outside the sequence's 0–\(ids.count - 1)")
        // At the last position the pass's own `.last` logits serve, and its last block runs only that row.
        let last = p == ids.count - 1
        let recorder = BlockInputRecorder(layers: config.layers, dModel: config.dModel, position: p, lastRowOnly: last)
        let out = try forward(ids, logits: last ? .last : .none, observer: recorder, compute: compute)
        let final = recorder.finalRow
        var logits = [Float](repeating: 0, count: config.vocab)
        if last {
            logits.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: out.pointer, count: config.vocab) }
        } else {
            // The final norm and the unembedding of one row, as the pass computes `.last` logits.
            var normed = [Float](repeating: 0, count: config.dModel)
            finalNorm.apply(final.pointer, rows: 1, into: &normed)
            unembed(normed, rows: 1, into: &logits, compute: compute)
        }
        return CleanPass(model: self, ids: ids, position: p, logits: logits, compute: compute,
                         blockInputs: recorder.inputs.map { $0! }, finalResidual: final)
    }

    /// Clean activations and their gradients for a metric of the logits at `position` (default: the
    /// last): one clean pass and one backward (`cleanPass` then `CleanPass.backward`).
    public func activationGradients(_ ids: [Int], metric: LogitMetric, position: Int? = nil, hooks: GradientHooks = .all,
                                    compute: ComputeContext = .allCores) throws -> ActivationGradients {
        try cleanPass(ids, position: position, compute: compute).backward(metric, hooks: hooks)
    }

    /// The backward: see the file's header.
    fileprivate func reversePass(_ clean: CleanPass, logitGradient: [Float], metric: Float?, hooks: GradientHooks) -> ActivationGradients {
        precondition(clean.model === self, "a clean pass of another model")
        precondition(logitGradient.count == config.vocab, "∂M/∂logits has \(logitGradient.count) values for \(config.vocab) logits")
        let compute = clean.compute
        let n = clean.ids.count, d = config.dModel, L = config.layers, V = config.vocab
        let p = clean.position

        // ∂M/∂(final residual): through the final soft-cap, the unembedding and the final norm, at row p only.
        var gLogits = logitGradient
        if let cap = config.finalLogitSoftcap {
            for v in 0..<V { let t = clean.logits[v] / cap; gLogits[v] *= 1 - t * t }
        }
        var gNormed = [Float](repeating: 0, count: d)
        gLogits.withUnsafeBufferPointer { g in
            gNormed.withUnsafeMutableBufferPointer { unembedding.multiplyTransposedBack(g.baseAddress!, rows: 1, n: V, k: d, into: $0.baseAddress!, compute: compute) }
        }
        let work = BackwardBuffers(config: config, mlp: blocks[0].mlp, rows: n, threads: compute.threads)
        defer { work.free() }
        let g = work.g   // ∂M/∂(block output), then ∂M/∂(block input): [pos, d_model]
        g.initialize(repeating: 0, count: n * d)
        gNormed.withUnsafeBufferPointer { gn in
            normBackward(finalNorm, input: clean.finalResidual.pointer, gradient: gn.baseAddress!, rows: 1, into: g + p * d)
        }
        writeBackward(.residPost(L - 1), g, rows: n, width: d)

        var layout = PassLayout()
        let cache = KVCache.scratch(kvHeads: config.kvHeads, dHead: config.dHead, capacity: n)
        layout.append(rows: n, start: 0, cache: cache)
        var scratch = Scratch(config: config, rows: n, keys: n, patternRows: n, patternHeads: config.heads)
        defer { scratch.free() }
        let tape = BlockTape(config: config, blocks: blocks, rows: n)
        defer { tape.free() }

        var layers = [LayerGradients](repeating: LayerGradients(), count: L)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let w = blocks[l]
            let x = clean.blockInputs[l].pointer
            // The block again, on its clean input, keeping its internals.
            tape.prepare(layer: l, weights: w)
            scratch.residual.update(from: x, count: n * d)
            block(l, layout, queries: QueryRows(layout), scratch: &scratch, observers: [tape], compute: compute)
            layers[l] = blockBackward(l, w, input: x, layout: layout, scratch: scratch, tape: tape, work: work,
                                      hooks: hooks, compute: compute)
            // g is now ∂M/∂(block input), the value after a write at hook_resid_pre.
            writeBackward(.residPre(l), g, rows: n, width: d)
            if l > 0 { writeBackward(.residPost(l - 1), g, rows: n, width: d) }
        }
        return ActivationGradients(ids: clean.ids, position: p, logits: clean.logits, logitGradient: logitGradient,
                                   metric: metric, layers: layers)
    }

    /// Differentiates block `l` just run forward (its internals in `scratch` and `tape`): on entry `work.g`
    /// holds ∂M/∂(block output), on return ∂M/∂(block input).
    private func blockBackward(_ l: Int, _ w: BlockWeights, input x: UnsafePointer<Float>, layout: PassLayout, scratch: Scratch,
                               tape: BlockTape, work: BackwardBuffers, hooks: GradientHooks, compute: ComputeContext) -> LayerGradients {
        let n = layout.rows, d = config.dModel, H = config.heads, dh = config.dHead
        let g = work.g
        var out = LayerGradients()
        func copy(_ p: UnsafePointer<Float>, _ shape: [Int]) -> Tensor {
            let t = Tensor(zeros: shape)
            t.pointer.update(from: p, count: t.count)
            return t
        }

        // MLP branch: ∂M/∂mlp_out = g (both residual forms add mlp_out to the block's output).
        if hooks.contains(.mlpOut) { out.mlpOut = ActivationGradient(activation: copy(scratch.mlpOut, [n, d]), gradient: copy(g, [n, d])) }
        let gBranch = work.a   // [pos, d_model]
        gBranch.update(from: g, count: n * d)
        writeBackward(.mlpOut(l), gBranch, rows: n, width: d)
        if let post = w.mlpPostNorm {
            normBackward(post, input: tape.buffer(.mlpPreNorm), gradient: gBranch, rows: n, into: work.b)
            gBranch.update(from: work.b, count: n * d)
        }
        mlpBackward(w.mlp, gradient: gBranch, rows: n, scratch: scratch, tape: tape, work: work, into: work.b, compute: compute)
        // work.b = ∂M/∂(MLP input); through the MLP's pre-norm onto its residual input.
        let mlpResidual: UnsafePointer<Float> = config.parallelResidual ? x : UnsafePointer(tape.residMid)
        let gMid = work.mid   // sequential: ∂M/∂resid_mid; parallel: ∂M/∂(block output) + the MLP's share of ∂M/∂x
        gMid.update(from: g, count: n * d)
        if let norm = w.mlpNorm {
            normBackward(norm, input: mlpResidual, gradient: work.b, rows: n, into: gMid, accumulate: true)
        } else {
            addInPlace(gMid, work.b, count: n * d)
        }

        // Attention branch: its output is added to resid_mid (sequential) or to the block's output (parallel).
        let gAttn = work.a
        gAttn.update(from: config.parallelResidual ? UnsafePointer(g) : UnsafePointer(gMid), count: n * d)
        writeBackward(.attnOut(l), gAttn, rows: n, width: d)
        if let post = w.attnPostNorm {
            normBackward(post, input: tape.buffer(.attnPreNorm), gradient: gAttn, rows: n, into: work.b)
            gAttn.update(from: work.b, count: n * d)
        }
        let gz = work.z   // [pos, head·d_head]
        w.attnOut.applyTransposed(gAttn, rows: n, into: gz, compute: compute)
        if hooks.contains(.z) {
            out.z = ActivationGradient(activation: copy(scratch.context, [n, H, dh]), gradient: copy(gz, [n, H, dh]))
        }
        writeBackward(.attnZ(l), gz, rows: n, width: H * dh)
        attentionBackward(l, w, gz: gz, layout: layout, scratch: scratch, tape: tape, work: work, into: work.b, compute: compute)
        // work.b = ∂M/∂(attention input); through the attention pre-norm onto x, plus the residual path.
        g.update(from: gMid, count: n * d)
        if let norm = w.attnNorm {
            normBackward(norm, input: x, gradient: work.b, rows: n, into: g, accumulate: true)
        } else {
            addInPlace(g, work.b, count: n * d)
        }
        if hooks.contains(.residPre) { out.residPre = ActivationGradient(activation: copy(x, [n, d]), gradient: copy(g, [n, d])) }
        return out
    }

    /// ∂M/∂(MLP input) [pos, d_model] into `result`, from ∂M/∂(MLP output) `gm`.
    private func mlpBackward(_ m: MLP, gradient gm: UnsafePointer<Float>, rows n: Int, scratch: Scratch, tape: BlockTape,
                             work: BackwardBuffers, into result: UnsafeMutablePointer<Float>, compute: ComputeContext) {
        let width = m.hiddenWidth
        let pre = UnsafePointer(tape.buffer(.mlpPreActivation))   // [pos, d_mlp]: up (plain) or gate pre-activation
        let gAct = work.hidden    // ∂M/∂(the down projection's input) [pos, d_mlp]
        let gPre = work.hidden2   // [pos, d_mlp], or [pos, 2·d_mlp] for the fused gate|up: [∂gate | ∂up] per row
        switch m {
        case let .plain(up, down, act):
            down.applyTransposed(gm, rows: n, into: gAct, compute: compute)
            activationBackward(act, pre: pre, gradient: gAct, rows: n, width: width, into: gPre, compute: compute)
            up.applyTransposed(gPre, rows: n, into: result, compute: compute)
        case let .gated(gate, up, down, act):
            // a = act(gate)·u: ∂gate = ∂a·u·act'(gate), ∂u = ∂a·act(gate); u is still in the forward's scratch.
            down.applyTransposed(gm, rows: n, into: gAct, compute: compute)
            let gUp = work.hidden3
            activationBackward(act, pre: pre, gradient: gAct, rows: n, width: width, into: gPre,
                               gate: (up: UnsafePointer(scratch.mlpHidden2), upStride: width, upGradient: gUp, outStride: width),
                               compute: compute)
            gate.applyTransposed(gPre, rows: n, into: result, compute: compute)
            up.applyTransposed(gUp, rows: n, into: work.c, compute: compute)
            addInPlace(result, work.c, count: n * config.dModel)
        case let .gatedFused(gateUp, down, act):
            // The scratch holds [gate | up] pre-activations per row [pos, 2·d_mlp]; ∂[gate | up] goes to gPre likewise.
            down.applyTransposed(gm, rows: n, into: gAct, compute: compute)
            activationBackward(act, pre: pre, gradient: gAct, rows: n, width: width, into: gPre,
                               gate: (up: UnsafePointer(scratch.mlpHidden2 + width), upStride: 2 * width, upGradient: gPre + width,
                                      outStride: 2 * width),
                               compute: compute)
            gateUp.applyTransposed(gPre, rows: n, into: result, compute: compute)
        }
    }

    /// ∂M/∂(attention input) [pos, d_model] into `result`, from ∂M/∂z (after the z write's backward).
    private func attentionBackward(_ l: Int, _ w: BlockWeights, gz: UnsafePointer<Float>, layout: PassLayout, scratch: Scratch,
                                   tape: BlockTape, work: BackwardBuffers, into result: UnsafeMutablePointer<Float>,
                                   compute: ComputeContext) {
        let H = config.heads, KV = config.kvHeads, dh = config.dHead
        let n = layout.rows, group = H / KV
        let (ld, qOff, kOff, vOff) = projectionLayout(w)
        let qkv = UnsafePointer(scratch.qkv)   // rotated q and k, v: [pos, ld]
        let cache = layout.caches[0]
        let kc = UnsafePointer(cache.keys[cache.slot(forLayer: l)]), vc = UnsafePointer(cache.values[cache.slot(forLayer: l)])
        let cap = cache.capacity
        let pattern = scratch.pattern           // [head, query_pos, key_pos], rows n apart; overwritten by dS
        let scale = attentionScale(layer: l)
        let softcap = config.attnLogitSoftcap
        let gQKV = work.qkv                     // ∂M/∂(q, k, v) in the projection's layout [pos, ld]
        let gKh = work.keys, gVh = work.values  // per query head [head, pos, d_head]
        gKh.initialize(repeating: 0, count: H * n * dh)
        gVh.initialize(repeating: 0, count: H * n * dh)
        let qBlock = min(n, DecoderModel.queryBlock)   // as BackwardBuffers sizes the per-worker buffers
        let workers = max(1, min(compute.threads, H, work.workers))
        compute.parallel(workers) { worker in
            let dP = work.blockScores + worker * qBlock * n        // [query block, key_pos]
            let capped = work.blockCapped + worker * qBlock * n
            var hh = worker
            while hh < H {
                let g = hh / group
                let probs = pattern + hh * n * n
                let kg = kc + g * cap * dh, vg = vc + g * cap * dh
                let gk = gKh + hh * n * dh, gv = gVh + hh * n * dh
                var r0 = 0
                while r0 < n {
                    let r1 = min(n, r0 + qBlock), rows = r1 - r0
                    let keys = r1                       // keys 0..<r1 are visible to some row of the block
                    let P = probs + r0 * n
                    // dV[0..<keys] += Pᵀ · dZ
                    sgemm(m: keys, n: dh, k: rows, a: P, lda: n, transA: true, b: gz + r0 * H * dh + hh * dh, ldb: H * dh,
                          c: gv, ldc: dh, beta: 1)
                    // dP = dZ · Vᵀ
                    sgemm(m: rows, n: keys, k: dh, a: gz + r0 * H * dh + hh * dh, lda: H * dh, b: vg, ldb: dh, transB: true,
                          c: dP, ldc: n)
                    if softcap != nil {
                        sgemm(m: rows, n: keys, k: dh, a: qkv + r0 * ld + qOff(hh), lda: ld, b: kg, ldb: dh, transB: true,
                              c: capped, ldc: n, alpha: scale)
                    }
                    for i in 0..<rows {
                        let pRow = P + i * n, dRow = dP + i * n
                        let last = r0 + i        // keys after the query's own position have P = 0
                        let dot = dot8(pRow, dRow, count: last + 1)
                        if let softcap {
                            let cRow = capped + i * n
                            for j in 0...last {
                                let t = Foundation.tanh(cRow[j] / softcap)
                                pRow[j] = pRow[j] * (dRow[j] - dot) * (1 - t * t) * scale
                            }
                        } else {
                            softmaxBackward8(pRow, dRow, count: last + 1, dot: dot, scale: scale)
                        }
                        if last + 1 < keys { (pRow + last + 1).update(repeating: 0, count: keys - last - 1) }
                    }
                    // P now holds dS (∂M/∂(q·kᵀ)) for these rows. dQ = dS · K; dK[0..<keys] += dSᵀ · Q
                    sgemm(m: rows, n: dh, k: keys, a: P, lda: n, b: kg, ldb: dh, c: gQKV + r0 * ld + qOff(hh), ldc: ld)
                    sgemm(m: keys, n: dh, k: rows, a: P, lda: n, transA: true, b: qkv + r0 * ld + qOff(hh), ldb: ld,
                          c: gk, ldc: dh, beta: 1)
                    r0 = r1
                }
                hh += workers
            }
        }
        // Sum each kv head's query heads (in head order), then undo rotary and the q/k norms per row.
        let rot = rotaryTable(sequenceEnd: n)
        let projected = UnsafePointer(tape.buffer(.projected))   // q, k, v before the q/k norms (when there are any)
        elementwise(n, compute, minimumPerThread: 16) { rows in
            let cosB = UnsafeMutablePointer<Float>.allocate(capacity: max(dh, 1)), sinB = UnsafeMutablePointer<Float>.allocate(capacity: max(dh, 1))
            let tmp = UnsafeMutablePointer<Float>.allocate(capacity: max(H * dh, 1))
            defer { cosB.deallocate(); sinB.deallocate(); tmp.deallocate() }
            for r in rows {
                let row = gQKV + r * ld
                for g in 0..<KV {
                    let k = row + kOff(g), v = row + vOff(g)
                    k.update(from: gKh + ((g * group) * n + r) * dh, count: dh)
                    v.update(from: gVh + ((g * group) * n + r) * dh, count: dh)
                    for hh in (g * group + 1)..<((g + 1) * group) {
                        addInPlace(k, gKh + (hh * n + r) * dh, count: dh)
                        addInPlace(v, gVh + (hh * n + r) * dh, count: dh)
                    }
                }
                if let rot, rot.dims >= 2 {
                    rot.angles(position: r, cos: cosB, sin: sinB)
                    for i in 0..<(rot.dims / 2) { sinB[i] = -sinB[i] }   // Rᵀ(θ) = R(−θ)
                    for hh in 0..<H { rot.rotate(row + qOff(hh), cos: cosB, sin: sinB) }
                    for g in 0..<KV { rot.rotate(row + kOff(g), cos: cosB, sin: sinB) }
                }
                if let qn = w.qNorm { qkNormBackward(qn, input: projected + r * ld, gradient: row, heads: H, offset: qOff, scratch: tmp) }
                if let kn = w.kNorm { qkNormBackward(kn, input: projected + r * ld, gradient: row, heads: KV, offset: kOff, scratch: tmp) }
            }
        }
        // Through the projection(s).
        switch w.qkv {
        case let .separate(q, k, v):
            let dense = work.dense   // [pos, head·d_head] for one projection at a time
            for (proj, width, offset) in [(q, H * dh, qOff(0)), (k, KV * dh, kOff(0)), (v, KV * dh, vOff(0))] {
                for r in 0..<n { (dense + r * width).update(from: gQKV + r * ld + offset, count: width) }
                if offset == 0 {
                    proj.applyTransposed(dense, rows: n, into: result, compute: compute)
                } else {
                    proj.applyTransposed(dense, rows: n, into: work.c, compute: compute)
                    addInPlace(result, work.c, count: n * config.dModel)
                }
            }
        case let .fusedBlocks(p), let .fusedPerHead(p):
            p.applyTransposed(gQKV, rows: n, into: result, compute: compute)
        }
    }

    /// The row stride of the q/k/v buffer and each head's offsets in a row, as `project` lays them out.
    func projectionLayout(_ w: BlockWeights) -> (Int, (Int) -> Int, (Int) -> Int, (Int) -> Int) {
        let H = config.heads, KV = config.kvHeads, dh = config.dHead
        switch w.qkv {
        case .separate, .fusedBlocks:
            return ((H + 2 * KV) * dh, { $0 * dh }, { (H + $0) * dh }, { (H + KV + $0) * dh })
        case .fusedPerHead:
            return (3 * H * dh, { 3 * $0 * dh }, { (3 * $0 + 1) * dh }, { (3 * $0 + 2) * dh })
        }
    }

    /// The backward of the intervention writes at `hook` on a gradient [pos, width] (rows = positions 0..<rows):
    /// a zero or replacing write blocks the gradient of what it overwrote, a scaling scales it, an addition
    /// passes it. (Every write is diagonal, so their order does not matter.)
    func writeBackward(_ hook: HookPoint, _ g: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
        guard !interventions.isEmpty else { return }
        let dh = config.dHead
        for i in interventions.interventions {
            guard case let .write(at, heads, edit) = i.kind, at == hook else { continue }
            for r in 0..<rows where i.positions.contains(r) {
                let factor: Float
                switch edit {
                case .zero, .replace: factor = 0
                case .replaceAt(let m): if m[r] == nil { continue }; factor = 0
                case .scale(let f): factor = f
                case .add: continue
                }
                let row = g + r * width
                if case .attnZ = hook {
                    for h in heads ?? Array(0..<(width / dh)) { for e in 0..<dh { row[h * dh + e] *= factor } }
                } else {
                    for e in 0..<width { row[e] *= factor }
                }
            }
        }
    }
}

// MARK: - The tape and the buffers

/// The opt-in tape of the forward block (`DecoderModel.block` with this as its observer): what the
/// backward of one block needs and the forward does not keep. Buffers are allocated once for the largest
/// block and reused layer after layer.
final class BlockTape: ForwardObserver {
    enum Slot: Int, CaseIterable {
        /// The q/k/v buffer right after the projection, before q/k norms and rotary [pos, ld] (blocks with q/k norms).
        case projected
        /// The attention output before its post-norm [pos, d_model] (blocks with one).
        case attnPreNorm
        /// The MLP's up (plain) or gate (gated) pre-activation [pos, d_mlp].
        case mlpPreActivation
        /// The MLP output before its post-norm [pos, d_model] (blocks with one).
        case mlpPreNorm
    }

    private(set) var layer = 0
    private var needed: Set<Slot> = []
    private let buffers: [UnsafeMutablePointer<Float>]
    /// resid_mid of a sequential block [pos, d_model].
    let residMid: UnsafeMutablePointer<Float>
    private let sizes: [Int]

    /// Sized for `rows` positions; slots that no block of `blocks` needs get no memory.
    init(config c: ModelConfig, blocks: [BlockWeights], rows n: Int) {
        let qkvWidth = max((c.heads + 2 * c.kvHeads) * c.dHead, 3 * c.heads * c.dHead)
        let qkNorms = blocks.contains { $0.qNorm != nil || $0.kNorm != nil }
        sizes = [qkNorms ? n * qkvWidth : 0,
                 blocks.contains { $0.attnPostNorm != nil } ? n * c.dModel : 0,
                 n * (blocks.map(\.mlp.hiddenWidth).max() ?? c.dMLP),
                 blocks.contains { $0.mlpPostNorm != nil } ? n * c.dModel : 0]
        buffers = sizes.map { UnsafeMutablePointer<Float>.allocate(capacity: max($0, 1)) }
        residMid = .allocate(capacity: c.parallelResidual ? 1 : max(n * c.dModel, 1))
    }

    func free() {
        buffers.forEach { $0.deallocate() }
        residMid.deallocate()
    }

    /// Sets the block about to run.
    func prepare(layer l: Int, weights w: BlockWeights) {
        layer = l
        needed = [.mlpPreActivation]
        if w.qNorm != nil || w.kNorm != nil { needed.insert(.projected) }
        if w.attnPostNorm != nil { needed.insert(.attnPreNorm) }
        if w.mlpPostNorm != nil { needed.insert(.mlpPreNorm) }
    }

    func buffer(_ slot: Slot) -> UnsafeMutablePointer<Float> { buffers[slot.rawValue] }

    /// Called by the forward block where the value exists; copies it when this block's backward needs it.
    @inline(__always)
    func record(_ slot: Slot, _ p: UnsafePointer<Float>, count: Int) {
        guard needed.contains(slot) else { return }
        precondition(count <= sizes[slot.rawValue], "tape slot \(slot) too small")
        buffers[slot.rawValue].update(from: p, count: count)
    }

    // The full attention pattern stays in the scratch (the forward keeps it when it is observed); resid_mid is copied.
    func wants(_ hook: HookPoint) -> Bool { hook == .attnPattern(layer) || hook == .residMid(layer) }

    func observe(_ hook: HookPoint, _ view: TensorView) {
        if hook == .residMid(layer) { residMid.update(from: view.pointer, count: view.count) }
    }
}

/// Keeps each block's input and the last block's output at one position of a clean pass. With
/// `lastRowOnly` (the position is the last), the pass may run its last block for that row alone.
private final class BlockInputRecorder: RowSelectiveObserver {
    var inputs: [Tensor?]
    let finalRow: Tensor
    let layers: Int, position: Int, lastRowOnly: Bool

    init(layers: Int, dModel: Int, position: Int, lastRowOnly: Bool) {
        self.layers = layers
        self.position = position
        self.lastRowOnly = lastRowOnly
        inputs = Array(repeating: nil, count: layers)
        finalRow = Tensor(zeros: [1, dModel])
    }

    func needsOnlyLastRow(ofBlock layer: Int) -> Bool { lastRowOnly }

    func wants(_ hook: HookPoint) -> Bool {
        switch hook {
        case .residPre: return true
        case .residPost(let l): return l == layers - 1
        default: return false
        }
    }

    func observe(_ hook: HookPoint, _ view: TensorView) {
        switch hook {
        case .residPre(let l): inputs[l] = view.copy()
        case .residPost:
            let d = view.shape[1]
            finalRow.pointer.update(from: view.pointer + (position - view.firstPosition) * d, count: d)
        default: break
        }
    }
}

/// The backward's work buffers for one block at a time.
private struct BackwardBuffers: @unchecked Sendable {
    let g, a, b, c, mid, z, dense: UnsafeMutablePointer<Float>   // [pos, d_model] (z, dense: [pos, head·d_head])
    let qkv: UnsafeMutablePointer<Float>                          // [pos, widest q/k/v layout]
    let keys, values: UnsafeMutablePointer<Float>                 // [head, pos, d_head]
    /// [pos, d_mlp]; hidden2 [pos, 2·d_mlp] for a fused gate|up; hidden3 for gated MLPs.
    let hidden, hidden2, hidden3: UnsafeMutablePointer<Float>
    let blockScores, blockCapped: UnsafeMutablePointer<Float>     // [worker, query block, key_pos]
    let workers: Int
    private let all: [UnsafeMutablePointer<Float>]

    /// Sized for `rows` positions and the MLP kind of the model's blocks (every block has the same kind).
    init(config c: ModelConfig, mlp: MLP, rows n: Int, threads: Int) {
        var pool = ZeroedBuffers()
        let width = max(c.dModel, c.heads * c.dHead)
        let qkvWidth = max((c.heads + 2 * c.kvHeads) * c.dHead, 3 * c.heads * c.dHead)
        workers = max(1, min(threads, c.heads))
        g = pool.make(n * c.dModel); a = pool.make(n * c.dModel); b = pool.make(n * c.dModel); self.c = pool.make(n * c.dModel)
        mid = pool.make(n * c.dModel); z = pool.make(n * width); dense = pool.make(n * width)
        qkv = pool.make(n * qkvWidth)
        keys = pool.make(c.heads * n * c.dHead); values = pool.make(c.heads * n * c.dHead)
        let m = mlp.hiddenWidth
        var fused = false, gated = false
        switch mlp {
        case .plain: break
        case .gated: gated = true
        case .gatedFused: fused = true
        }
        hidden = pool.make(n * m); hidden2 = pool.make(n * (fused ? 2 : 1) * m)
        hidden3 = pool.make(gated ? n * m : 0)
        let block = min(n, DecoderModel.queryBlock)
        blockScores = pool.make(workers * block * n)
        blockCapped = pool.make(c.attnLogitSoftcap == nil ? 0 : workers * block * n)
        self.all = pool.buffers
    }

    func free() { all.forEach { $0.deallocate() } }
}

// MARK: - Backward of the steps

extension Linear {
    /// r[rows, in] = g[rows, out] · (the map's matrix)ᵀ: the input gradient of y = x·W (+ b) (+ LoRA), in
    /// `compute`'s precision, through the forward's product entry points with the layout swapped (column
    /// tiles fixed by the shape: the result does not depend on the thread count). The LoRA update stays
    /// float32: r += s·(g·B)·A.
    func applyTransposed(_ g: UnsafePointer<Float>, rows: Int, into r: UnsafeMutablePointer<Float>, compute: ComputeContext) {
        let swapped: WeightLayout = layout == .outIn ? .inOut : .outIn
        if compute.precision == .bf16 {
            linearBF16(g, rows: rows, inFeatures: outFeatures, weight: half?.bf16Operand ?? .f32(weight.pointer), layout: swapped,
                       outFeatures: inFeatures, bias: nil, into: r, compute: compute)
        } else if let half {
            linearHalf(g, rows: rows, inFeatures: outFeatures, weight: half.bytes, format: half.format, layout: swapped,
                       outFeatures: inFeatures, bias: nil, into: r, compute: compute)
        } else {
            linear(g, rows: rows, inFeatures: outFeatures, weight: weight.pointer, layout: swapped, outFeatures: inFeatures,
                   bias: nil, into: r, compute: compute)
        }
        if let lora {
            let k = lora.rank
            let t = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * k, 1))
            defer { t.deallocate() }
            sgemm(m: rows, n: k, k: outFeatures, a: g, lda: outFeatures, b: lora.b.pointer, ldb: k, c: t, ldc: k)
            sgemm(m: rows, n: inFeatures, k: k, a: t, lda: k, b: lora.a.pointer, ldb: inFeatures, c: r, ldc: inFeatures,
                  alpha: lora.scale, beta: 1)
        }
    }
}

extension WeightMatrix {
    /// r[rows, k] = g[rows, n] · M for M stored [n, k]: the input gradient of `multiplyTransposed`, in
    /// `compute`'s precision.
    func multiplyTransposedBack(_ g: UnsafePointer<Float>, rows: Int, n: Int, k: Int, into r: UnsafeMutablePointer<Float>,
                                compute: ComputeContext) {
        product(g, rows: rows, inFeatures: n, outFeatures: k, layout: .inOut, into: r, compute: compute)
    }
}

/// Norm backward per row: out[rows, d] (= or +=) ∂M/∂x given ∂M/∂y `g` for y = norm(x), statistics in float64
/// as the forward computes them. RMSNorm (weight w, the Gemma offset already in w): with r = 1/√(mean x² + ε),
/// ∂x = r·(w⊙g) − x·r³·mean(w⊙g⊙x). LayerNorm: with x̂ = (x − μ)·r and ĝ = w⊙g, ∂x = r·(ĝ − mean ĝ − x̂·mean(ĝ⊙x̂)).
func normBackward(_ norm: Norm, input x: UnsafePointer<Float>, gradient g: UnsafePointer<Float>, rows: Int,
                  into out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
    let d = norm.weight.count
    normBackward(kind: norm.kind, weight: norm.weight.pointer, eps: norm.eps, d: d, input: x, gradient: g, rows: rows,
                 into: out, accumulate: accumulate)
}

private func normBackward(kind: Norm.Kind, weight w: UnsafePointer<Float>, eps: Float, d: Int, input x: UnsafePointer<Float>,
                          gradient g: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
    for r in 0..<rows {
        let xr = x + r * d, gr = g + r * d, o = out + r * d
        switch kind {
        case .rmsNorm:
            var ss = 0.0, gx = 0.0
            for j in 0..<d {
                ss += Double(xr[j]) * Double(xr[j])
                gx += Double(w[j]) * Double(gr[j]) * Double(xr[j])
            }
            let inv = 1 / (ss / Double(d) + Double(eps)).squareRoot()
            let rf = Float(inv), c = Float(inv * inv * inv * gx / Double(d))
            for j in 0..<d {
                let v = rf * w[j] * gr[j] - xr[j] * c
                o[j] = accumulate ? o[j] + v : v
            }
        case .layerNorm:
            var mean = 0.0
            for j in 0..<d { mean += Double(xr[j]) }
            mean /= Double(d)
            var variance = 0.0
            for j in 0..<d { let c = Double(xr[j]) - mean; variance += c * c }
            variance /= Double(d)
            let inv = 1 / (variance + Double(eps)).squareRoot()
            var gMean = 0.0, gxMean = 0.0
            for j in 0..<d {
                let gh = Double(w[j]) * Double(gr[j])
                gMean += gh
                gxMean += gh * (Double(xr[j]) - mean) * inv
            }
            gMean /= Double(d)
            gxMean /= Double(d)
            for j in 0..<d {
                let xh = (Double(xr[j]) - mean) * inv
                let v = Float(inv * (Double(w[j]) * Double(gr[j]) - gMean - xh * gxMean))
                o[j] = accumulate ? o[j] + v : v
            }
        }
    }
}

/// The backward of a q/k norm on one row, in place on the gradient row (per head or over the whole projection).
private func qkNormBackward(_ qk: QKNorm, input: UnsafePointer<Float>, gradient row: UnsafeMutablePointer<Float>, heads: Int,
                            offset: (Int) -> Int, scratch: UnsafeMutablePointer<Float>) {
    let width = qk.norm.weight.count
    let spans = qk.perHead ? (0..<heads).map(offset) : [offset(0)]
    for o in spans {
        normBackward(qk.norm, input: input + o, gradient: row + o, rows: 1, into: scratch)
        (row + o).update(from: scratch, count: width)
    }
}

/// The backward of the activation, one pass over [rows, width] (rows split over the threads). Plain:
/// out = ∂a ⊙ act'(pre). Gated (a = act(pre) ⊙ up): out = ∂a ⊙ up ⊙ act'(pre) and upGradient = ∂a ⊙ act(pre),
/// with act(pre) from the forward's own eight-lane functions (VectorMath.swift), so it equals what the forward
/// multiplied by. `pre` and `gradient` are dense [rows, width]; `out` and the gate's rows are their strides apart.
private func activationBackward(_ act: Activation, pre: UnsafePointer<Float>, gradient: UnsafePointer<Float>, rows: Int, width: Int,
                                into out: UnsafeMutablePointer<Float>,
                                gate: (up: UnsafePointer<Float>, upStride: Int, upGradient: UnsafeMutablePointer<Float>, outStride: Int)? = nil,
                                compute: ComputeContext) {
    let outStride = gate?.outStride ?? width
    compute.parallelRanges(rows, work: rows * width, minimumPerThread: 1 << 15) { range in
        for r in range {
            let x = pre + r * width, g = gradient + r * width, o = out + r * outStride
            var j = 0
            while j < width {
                let lanes = min(8, width - j)
                var xv = Float8(), gv = Float8()
                if lanes == 8 {
                    xv = UnsafeRawPointer(x + j).loadUnaligned(as: Float8.self)
                    gv = UnsafeRawPointer(g + j).loadUnaligned(as: Float8.self)
                } else {
                    for k in 0..<lanes { xv[k] = x[j + k]; gv[k] = g[j + k] }
                }
                var dPre = gv * activationDerivative8(act, xv)
                var dUp = Float8()
                if let gate {
                    let u = gate.up + r * gate.upStride + j
                    var uv = Float8()
                    if lanes == 8 { uv = UnsafeRawPointer(u).loadUnaligned(as: Float8.self) } else { for k in 0..<lanes { uv[k] = u[k] } }
                    dPre *= uv
                    dUp = gv * activation8(act, xv)
                }
                if lanes == 8 {
                    UnsafeMutableRawPointer(o + j).storeBytes(of: dPre, as: Float8.self)
                    if let gate { UnsafeMutableRawPointer(gate.upGradient + r * outStride + j).storeBytes(of: dUp, as: Float8.self) }
                } else {
                    for k in 0..<lanes { o[j + k] = dPre[k] }
                    if let gate { for k in 0..<lanes { gate.upGradient[r * outStride + j + k] = dUp[k] } }
                }
                j += 8
            }
        }
    }
}

/// act(x) for eight lanes: the forward's functions (VectorMath.swift; ReLU as max(0, x)).
@inline(__always)
private func activation8(_ act: Activation, _ x: Float8) -> Float8 {
    switch act {
    case .silu: return silu8(x)
    case .geluNew, .geluPytorchTanh: return geluTanh8(x)
    case .gelu: return geluErf8(x)
    case .relu: return x.replacing(with: 0, where: x .< 0)
    }
}

/// act'(x) for eight lanes, from the formulas the forward evaluates (VectorMath.swift):
///   silu: σ(x)·(1 + x·(1 − σ(x)));
///   gelu (tanh): f = x·σ(2u), u = √(2/π)(x + 0.044715x³): f' = s + 2x·s(1 − s)·√(2/π)(1 + 3·0.044715x²), s = σ(2u);
///   gelu (erf): Φ(x) + x·φ(x), Φ by the forward's Abramowitz & Stegun erf;
///   relu: 1 for x > 0, else 0.
@inline(__always)
private func activationDerivative8(_ act: Activation, _ x: Float8) -> Float8 {
    switch act {
    case .silu:
        let s = 1 / (1 + exp8(-x))
        return s * (1 + x * (1 - s))
    case .geluNew, .geluPytorchTanh:
        let c: Float = 0.7978845608028654
        let u: Float8 = c * (x + 0.044715 * x * x * x)
        let s: Float8 = 1 / (1 + exp8(-2 * u))
        let du: Float8 = c * (1 + 0.134145 * x * x)          // u'(x); 3·0.044715 = 0.134145
        let ds: Float8 = 2 * s * (1 - s)
        return s + x * ds * du
    case .gelu:
        let (erf, e) = erfWithGaussian8(x * 0.7071067811865476)   // e = exp(−x²/2)
        return 0.5 * (1 + erf) + x * e * 0.3989422804014327
    case .relu:
        return Float8(repeating: 0).replacing(with: 1, where: x .> 0)
    }
}

/// Σ a[j]·b[j] over j < count, in eight float32 partial sums folded in a fixed order.
@inline(__always)
private func dot8(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
    var acc = Float8()
    var j = 0
    while j + 8 <= count {
        acc += UnsafeRawPointer(a + j).loadUnaligned(as: Float8.self) * UnsafeRawPointer(b + j).loadUnaligned(as: Float8.self)
        j += 8
    }
    var s = acc.sum()
    while j < count { s += a[j] * b[j]; j += 1 }
    return s
}

/// p[j] ← p[j]·(d[j] − dot)·scale for j < count: the softmax backward of one row (p the probabilities, d = ∂M/∂p).
@inline(__always)
private func softmaxBackward8(_ p: UnsafeMutablePointer<Float>, _ d: UnsafePointer<Float>, count: Int, dot: Float, scale: Float) {
    var j = 0
    while j + 8 <= count {
        let v = UnsafeRawPointer(p + j).loadUnaligned(as: Float8.self) * (UnsafeRawPointer(d + j).loadUnaligned(as: Float8.self) - dot) * scale
        UnsafeMutableRawPointer(p + j).storeBytes(of: v, as: Float8.self)
        j += 8
    }
    while j < count { p[j] = p[j] * (d[j] - dot) * scale; j += 1 }
}

/// Splits 0..<count into disjoint ranges over `compute`'s threads (each index computed alone: the result
/// does not depend on the thread count).
private func elementwise(_ count: Int, _ compute: ComputeContext, minimumPerThread: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
    compute.parallelRanges(count, align: 8, work: count, minimumPerThread: minimumPerThread, body)
}

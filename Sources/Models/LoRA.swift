// Applying a PEFT LoRA adapter to a base model, strictly (docs/lora.md).
//
// adapter_model.safetensors as written by peft 0.21.2 `PeftModel.save_pretrained`
// (peft/utils/save_and_load.py `get_peft_model_state_dict`; the adapter name ".default" is removed):
//   base_model.model.<module>.lora_A.weight   [r, in_features]    r from rank_pattern, else r
//   base_model.model.<module>.lora_B.weight   [out_features, r]
//   base_model.model.<module>.<param>         a modules_to_save copy, stored whole (e.g. lm_head.weight)
// <module> is the module's name in the transformers model (LlamaForCausalLM, GPT2LMHeadModel, …), e.g.
// "model.layers.0.self_attn.q_proj", "transformer.h.0.attn.c_attn", "gpt_neox.layers.0.attention.dense".
//
// The update (peft/tuners/lora/layer.py `Linear.get_delta_weight`):
//   nn.Linear weight W [out, in]:      W' = W + scale · B·A
//   GPT-2 Conv1D weight W [in, out]:   W' = W + scale · (B·A)ᵀ      (PEFT forces fan_in_fan_out = true)
//   scale = alpha / r, or alpha / √r with use_rslora, with per-module r and alpha from the patterns.
// Fused projections are adapted as stored: c_attn's B is [3·d_model, r] over q|k|v, and GPT-NeoX
// query_key_value's B rows follow the weight's per-head interleaving.
//
// The base model's tensors are never written: merged weights are new tensors, and every other tensor of an
// adapted model is the base model's own (borrowed from the mapping for F32), so each checkpoint costs only
// its adapted matrices (`.merge`), or nothing beyond its factors (`.factors`).
import Checkpoints
import TensorCore

/// How an adapter's update reaches the forward pass.
public enum AdapterMode: String, Sendable, Codable, CaseIterable {
    /// W' = W + scale·B·A, computed once per checkpoint into new matrices (the base matrices stay untouched).
    case merge
    /// W stays the base matrix; each adapted linear layer adds scale·(x·Aᵀ)·Bᵀ in the forward pass.
    case factors
}

/// What an adapter needs to know about the base it is applied to.
struct AdapterBase {
    let config: ModelConfig
    let store: WeightStore
    let context: LoadContext
    let model: DecoderModel
    /// The base folder, for messages.
    let path: String
}

/// One targeted linear layer.
struct LoRATarget {
    /// PEFT module name, e.g. "model.layers.0.self_attn.q_proj".
    let module: String
    let aName: String
    let bName: String
    let a: Tensor   // [r, in]
    let b: Tensor   // [out, r]
    let rank: Int
    let alpha: Double
    let scale: Double
}

/// The adapter's changes, keyed by the base's tensor names, handed to the weight tables as an overlay.
final class AdapterOverlay: WeightOverlay {
    static let tensorPrefix = "base_model.model."

    /// adapter_model.safetensors (for messages).
    let file: String
    let mode: AdapterMode
    /// By base tensor-name prefix of the linear layer (e.g. "model.layers.0.self_attn.q_proj").
    private(set) var targets: [String: LoRATarget] = [:]
    /// Targets in the base model's order.
    private(set) var targetOrder: [String] = []
    /// Whole replacement tensors (modules_to_save) by base tensor name, with their adapter tensor names.
    private(set) var replacements: [String: (tensor: String, value: Tensor)] = [:]
    private var consumed: Set<String> = []

    private init(file: String, mode: AdapterMode) {
        self.file = file
        self.mode = mode
    }

    // MARK: WeightOverlay

    func tensor(_ name: String, base: Tensor) throws -> Tensor {
        guard let r = replacements[name] else { return base }
        consumed.insert(name)
        return r.value
    }

    func linear(_ prefix: String, weight: Tensor, shape: LinearShape) throws -> (weight: Tensor, lora: LoRAFactors?) {
        if let r = replacements[prefix + ".weight"] {
            consumed.insert(prefix + ".weight")
            return (r.value, nil)
        }
        guard let t = targets[prefix] else { return (weight, nil) }
        consumed.insert(prefix)
        // Checked when the overlay was built; checked again because the geometry comes from this read.
        guard t.a.shape == [t.rank, shape.inFeatures] else {
            throw CheckpointError.adapterShapeMismatch(file: file, tensor: t.aName, expected: [t.rank, shape.inFeatures],
                                                       found: t.a.shape, reason: "lora_A is [r, in_features]")
        }
        guard t.b.shape == [shape.outFeatures, t.rank] else {
            throw CheckpointError.adapterShapeMismatch(file: file, tensor: t.bName, expected: [shape.outFeatures, t.rank],
                                                       found: t.b.shape, reason: "lora_B is [out_features, r]")
        }
        switch mode {
        case .merge:
            return (mergedWeight(weight, layout: shape.layout, a: t.a, b: t.b, scale: Float(t.scale)), nil)
        case .factors:
            return (weight, LoRAFactors(a: t.a, b: t.b, scale: Float(t.scale)))
        }
    }

    /// Fails naming an adapter tensor that the model never read.
    func checkAllConsumed() throws {
        for prefix in targetOrder where !consumed.contains(prefix) {
            throw CheckpointError.adapterTensorUnmatched(file: file, tensor: targets[prefix]?.aName ?? prefix,
                                                         reason: "the model never reads the layer '\(prefix)'")
        }
        for (name, r) in replacements.sorted(by: { $0.key < $1.key }) where !consumed.contains(name) {
            throw CheckpointError.adapterTensorUnmatched(
                file: file, tensor: r.tensor,
                reason: "the model never reads the base tensor '\(name)' (a buffer, or an output head tied to the embedding)")
        }
    }

    // MARK: building

    /// Checks `weights` against `config` and the base, and collects the changes.
    ///
    /// Order of checks: tensor names → the modules exist in the base (else: another architecture) → the
    /// config targets something → every LoRA tensor belongs to a targeted module and every targeted module
    /// has both tensors → shapes against the base and the configured rank → modules_to_save tensors.
    static func build(config: AdapterConfig, weights: SafeTensorsFile, base: AdapterBase, mode: AdapterMode) throws -> AdapterOverlay {
        let file = weights.url.path
        let overlay = AdapterOverlay(file: file, mode: mode)
        let arch = base.config.modelType
        let p = ModelFamilies.baseModelPrefix(base.config)
        func canonical(_ prefix: String) -> String { prefix.hasPrefix(p) ? prefix : p + prefix }
        /// Base tensor names a PEFT tensor name may correspond to (with the base-model prefix, or without it
        /// in checkpoints saved without one).
        func baseNames(_ name: String) -> [String] { name.hasPrefix(p) ? [name, String(name.dropFirst(p.count))] : [name] }

        // Linear layers of the base, by PEFT module name.
        var linearByModule: [String: String] = [:]   // module -> base prefix
        var linearModules: [String] = []
        for prefix in base.context.linearOrder {
            let m = canonical(prefix)
            linearByModule[m] = prefix
            linearModules.append(m)
        }

        // 1. Sort the tensors: LoRA factors by module, whole tensors (modules_to_save).
        var aOf: [String: String] = [:], bOf: [String: String] = [:]   // module -> tensor name
        var loraOrder: [String] = []
        var whole: [String] = []
        for name in weights.namesInFileOrder {
            guard name.hasPrefix(tensorPrefix) else {
                throw CheckpointError.adapterTensorUnmatched(file: file, tensor: name,
                    reason: "PEFT adapter tensor names start with '\(tensorPrefix)'")
            }
            let rest = String(name.dropFirst(tensorPrefix.count))
            if rest.hasSuffix(".lora_A.weight") || rest.hasSuffix(".lora_B.weight") {
                let module = String(rest.dropLast(".lora_A.weight".count))
                if rest.hasSuffix(".lora_A.weight") { aOf[module] = name } else { bOf[module] = name }
                if !loraOrder.contains(module) { loraOrder.append(module) }
            } else if rest.contains(".lora_embedding_A") || rest.contains(".lora_embedding_B") {
                throw CheckpointError.unsupportedAdapter(file: config.file, field: "target_modules",
                    value: "(tensor '\(name)')", reason: "LoRA on embedding layers is not implemented")
            } else if rest.contains(".lora_magnitude_vector") {
                throw CheckpointError.unsupportedAdapter(file: config.file, field: "use_dora",
                    value: "(tensor '\(name)')", reason: "the file holds DoRA magnitude vectors")
            } else if rest.hasSuffix(".lora_B.bias") {
                throw CheckpointError.unsupportedAdapter(file: config.file, field: "lora_bias",
                    value: "(tensor '\(name)')", reason: "a bias on lora_B is not applied")
            } else if rest.contains(".lora_") {
                throw CheckpointError.adapterTensorUnmatched(file: file, tensor: name,
                    reason: "expected '<module>.lora_A.weight' / '<module>.lora_B.weight' (as save_pretrained writes, without the adapter name)")
            } else {
                whole.append(name)
            }
        }

        // 2. The adapter's modules must exist in the base; if none does, the adapter is for another model.
        func existsInBase(_ module: String) -> Bool {
            linearByModule[module] != nil || baseNames(module + ".weight").contains(where: base.store.contains)
        }
        if let first = loraOrder.first, !loraOrder.contains(where: existsInBase) {
            throw CheckpointError.adapterBaseMismatch(
                file: file, field: "tensor '\(aOf[first] ?? bOf[first] ?? first)'", adapter: "for module '\(first)'",
                base: "a \(arch) model with modules like '\(linearModules.first ?? "?")'", basePath: base.path)
        }
        for module in loraOrder where linearByModule[module] == nil {
            let tensor = aOf[module] ?? bOf[module] ?? module
            if existsInBase(module) {
                throw CheckpointError.unsupportedAdapter(file: config.file, field: "target_modules", value: "'\(module)' (tensor '\(tensor)')",
                    reason: "LoRA is applied to the linear layers inside the transformer blocks only")
            }
            throw CheckpointError.adapterTensorUnmatched(file: file, tensor: tensor, reason: "the base model has no module '\(module)'")
        }

        // 3. What the config targets among the base's linear layers.
        let matcher = config.matcher(linearModules: linearModules)
        let targeted = linearModules.filter(matcher.isTargeted)
        if targeted.isEmpty {
            var spec = config.targetModules.description
            if let ex = config.excludeModules { spec += " minus exclude_modules \(ex)" }
            if let l = config.layersToTransform { spec += " in layers_to_transform \(l)" }
            throw CheckpointError.adapterTargetsNothing(file: config.file, field: "target_modules", targets: spec,
                                                        base: "\(base.path) (\(arch); linear layers like '\(linearModules.first ?? "?")')")
        }
        let targetedSet = Set(targeted)
        for module in loraOrder where !targetedSet.contains(module) {
            throw CheckpointError.adapterTensorUnmatched(file: file, tensor: aOf[module] ?? bOf[module] ?? module,
                reason: "module '\(module)' is not selected by adapter_config.json (target_modules \(config.targetModules))")
        }

        // 4. Every targeted module has both factors, of the right shapes.
        for module in targeted {
            let aName = aOf[module] ?? tensorPrefix + module + ".lora_A.weight"
            let bName = bOf[module] ?? tensorPrefix + module + ".lora_B.weight"
            guard aOf[module] != nil else { throw CheckpointError.adapterTensorMissing(file: file, tensor: aName, module: module) }
            guard bOf[module] != nil else { throw CheckpointError.adapterTensorMissing(file: file, tensor: bName, module: module) }
            guard let prefix = linearByModule[module], let geometry = base.context.linears[prefix] else {
                throw CheckpointError.adapterTensorUnmatched(file: file, tensor: aName, reason: "the base model has no linear layer '\(module)'")
            }
            let r = matcher.rank(for: module)
            let rankSource = config.rankPattern.isEmpty ? "r = \(r)" : "r = \(r) from r / rank_pattern"
            guard let aInfo = weights.tensors[aName], let bInfo = weights.tensors[bName] else {
                throw CheckpointError.adapterTensorMissing(file: file, tensor: aName, module: module)
            }
            guard aInfo.shape == [r, geometry.inFeatures] else {
                throw CheckpointError.adapterShapeMismatch(file: file, tensor: aName, expected: [r, geometry.inFeatures], found: aInfo.shape,
                    reason: "lora_A is [r, in_features]; \(rankSource); base '\(prefix).weight' has in_features \(geometry.inFeatures)")
            }
            guard bInfo.shape == [geometry.outFeatures, r] else {
                throw CheckpointError.adapterShapeMismatch(file: file, tensor: bName, expected: [geometry.outFeatures, r], found: bInfo.shape,
                    reason: "lora_B is [out_features, r]; \(rankSource); base '\(prefix).weight' has out_features \(geometry.outFeatures)")
            }
            let alpha = matcher.alpha(for: module)
            overlay.targets[prefix] = LoRATarget(module: module, aName: aName, bName: bName,
                                                 a: try weights.floatTensor(aInfo), b: try weights.floatTensor(bInfo),
                                                 rank: r, alpha: alpha, scale: config.scale(rank: r, alpha: alpha))
            overlay.targetOrder.append(prefix)
        }

        // 5. modules_to_save: whole tensors replacing base tensors of the same name and shape.
        for name in whole {
            let rest = String(name.dropFirst(tensorPrefix.count))
            guard let baseName = baseNames(rest).first(where: base.store.contains), let baseInfo = base.store.info(baseName) else {
                let tiedHint = base.config.tiedEmbeddings ? " (this base's output head is tied to the embedding, so it stores no separate head)" : ""
                throw CheckpointError.adapterTensorUnmatched(file: file, tensor: name, reason: "the base model has no tensor '\(rest)'\(tiedHint)")
            }
            let module = canonical(String(baseName[..<(baseName.lastIndex(of: ".") ?? baseName.endIndex)]))
            guard matcher.isSaved(module: module) else {
                throw CheckpointError.adapterTensorUnmatched(file: file, tensor: name,
                    reason: "a whole tensor, but module '\(module)' is not in modules_to_save \(config.modulesToSave)")
            }
            guard let info = weights.tensors[name], info.shape == baseInfo.shape else {
                throw CheckpointError.adapterShapeMismatch(file: file, tensor: name, expected: baseInfo.shape,
                    found: weights.tensors[name]?.shape ?? [], reason: "a modules_to_save copy has the base tensor's shape")
            }
            if base.config.tiedEmbeddings, let t = base.context.decoded[baseName], t.storage === base.model.unembedding.float?.storage {
                throw CheckpointError.unsupportedAdapter(file: config.file, field: "modules_to_save", value: "'\(module)'",
                    reason: "this embedding is tied to the output head; replacing one would change both")
            }
            overlay.replacements[baseName] = (name, try weights.floatTensor(info))
        }
        return overlay
    }
}

/// W'[out, in] = W + scale · B[out, r] · A[r, in]            (layout .outIn, nn.Linear)
/// W'[in, out] = W + scale · Aᵀ[in, r] · Bᵀ[r, out]           (layout .inOut, GPT-2 Conv1D: (B·A)ᵀ)
/// A new tensor; `base` is only read.
func mergedWeight(_ base: Tensor, layout: WeightLayout, a: Tensor, b: Tensor, scale: Float) -> Tensor {
    let w = Tensor(zeros: base.shape)
    w.pointer.update(from: base.pointer, count: base.count)
    let r = a.shape[0], inF = a.shape[1], outF = b.shape[0]
    switch layout {
    case .outIn:
        sgemm(m: outF, n: inF, k: r, a: b.pointer, lda: r, b: a.pointer, ldb: inF, c: w.pointer, ldc: inF,
              alpha: scale, beta: 1)
    case .inOut:
        sgemm(m: inF, n: outF, k: r, a: a.pointer, lda: inF, transA: true, b: b.pointer, ldb: r, transB: true,
              c: w.pointer, ldc: outF, alpha: scale, beta: 1)
    }
    return w
}

// The tuned lens (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the Tuned
// Lens"; AlignmentResearch/tuned-lens 0.2.0, `tuned_lens/nn/lenses.py` `TunedLens`): one affine
// translator per layer, applied residually before the model's own final norm and unembedding.
//
// Folder layout (`TunedLens.save`):
//   config.json   {"d_model": D, "num_hidden_layers": L, "bias": true, "base_model_name_or_path": …,
//                  "lens_type": "linear_tuned_lens", "unembed_hash": …, …}
//   params.pt     torch.save(ModuleList of L × Linear(D, D)).state_dict(): "{i}.weight" [D, D] (out, in),
//                 "{i}.bias" [D] (when bias); read by the restricted torch reader (docs/torch-bin.md)
//
// Indexing as in the package (`lens(hidden_states[i], i)`, i < L, in its train and eval loops):
// translator i reads hidden state i of transformers' `output_hidden_states`, which is our lens layer i
// (0 = embeddings, l = after block l−1). At lens layer i < L the tuned-lens logits are
// unembed(final_norm(h + W_i h + b_i)); lens layer L (the last block's output) has no translator and
// gives the model's own logits.
import Checkpoints
import Foundation
import Instrumentation
import TensorCore

/// Problems with a tuned-lens folder.
public enum TunedLensError: Error, CustomStringConvertible, Sendable {
    /// config.json is missing, unreadable, not JSON, or `field` is missing or wrong.
    case badConfig(file: String, field: String, reason: String)
    /// params.pt lacks a translator tensor or holds one of the wrong shape, or holds tensors nobody uses.
    case badParams(file: String, tensor: String, reason: String)
    /// The lens was made for a model of another size.
    case modelMismatch(lens: String, field: String, lensValue: Int, model: String, modelValue: Int)

    public var description: String {
        switch self {
        case let .badConfig(file, field, reason): return "\(file): tuned-lens field '\(field)' \(reason)"
        case let .badParams(file, tensor, reason): return "\(file): tensor '\(tensor)' \(reason)"
        case let .modelMismatch(lens, field, lensValue, model, modelValue):
            return "\(lens): the tuned lens has \(field) = \(lensValue) but the model \(model) has \(modelValue)"
        }
    }

    public var hint: String {
        switch self {
        case .badConfig, .badParams:
            return "Pass a folder written by tuned-lens's TunedLens.save (config.json with d_model and num_hidden_layers, params.pt with {i}.weight and {i}.bias)."
        case .modelMismatch:
            return "A tuned lens is trained for one model; pass the lens made for this model (its config.json base_model_name_or_path names it)."
        }
    }
}

/// A loaded tuned lens: L translators of d_model × d_model.
public struct TunedLens: Sendable {
    /// config.json larger than this is refused (real ones are a few hundred bytes).
    static let maxConfigSize = 1 << 20
    /// What the run file's tuned-lens variables mean (its `tuned_lens_definition` attribute).
    public static let definition = "tuned lens (tuned-lens 0.2.0): at lens layer i < L, unembed(final_norm(h + W_i h + b_i)) with translator i of params.pt; at lens layer L the model's own output; log-prob, rank and M_C of each answer's first token as for the logit lens"

    public let folder: URL
    public let dModel: Int
    public let layers: Int
    public let bias: Bool
    public let baseModel: String?
    /// [layer] translator weight [d_model (out), d_model (in)] and bias [d_model].
    let weights: [Tensor]
    let biases: [Tensor?]

    /// Reads `folder/config.json` and `folder/params.pt`.
    public static func load(from folder: URL) throws -> TunedLens {
        let configURL = folder.appendingPathComponent("config.json")
        let cfgPath = configURL.path
        guard let data = try? Data(contentsOf: configURL), data.count <= maxConfigSize else {
            throw TunedLensError.badConfig(file: cfgPath, field: "(file)", reason: "is missing, unreadable or over 1 MiB")
        }
        guard let obj = JSONValue.parseOrNil([UInt8](data))?.dictionary else {
            throw TunedLensError.badConfig(file: cfgPath, field: "(file)", reason: "is not a JSON object")
        }
        func positive(_ key: String) throws -> Int {
            guard let v = obj[key]?.int, v > 0, v <= 1 << 20 else {
                throw TunedLensError.badConfig(file: cfgPath, field: key, reason: "must be a positive integer")
            }
            return v
        }
        let d = try positive("d_model"), L = try positive("num_hidden_layers")
        let bias = obj["bias"]?.bool ?? true
        if let type = obj["lens_type"]?.string, type != "linear_tuned_lens" {
            throw TunedLensError.badConfig(file: cfgPath, field: "lens_type", reason: "is '\(type)'; only linear_tuned_lens is supported")
        }
        let paramsURL = folder.appendingPathComponent("params.pt")
        let file = try TorchZipFile(url: paramsURL)
        var weights: [Tensor] = [], biases: [Tensor?] = []
        var used = Set<String>()
        func take(_ name: String, _ shape: [Int]) throws -> Tensor {
            guard let info = file.tensors[name] else { throw TunedLensError.badParams(file: paramsURL.path, tensor: name, reason: "is missing") }
            guard info.shape == shape else {
                throw TunedLensError.badParams(file: paramsURL.path, tensor: name, reason: "has shape \(info.shape), expected \(shape)")
            }
            used.insert(name)
            return try file.floatTensor(info)
        }
        for i in 0..<L {
            weights.append(try take("\(i).weight", [d, d]))
            biases.append(bias ? try take("\(i).bias", [d]) : nil)
        }
        if let extra = file.namesInFileOrder.first(where: { !used.contains($0) }) {
            throw TunedLensError.badParams(file: paramsURL.path, tensor: extra,
                                           reason: "is not a translator of a \(L)-layer lens (config.json num_hidden_layers)")
        }
        return TunedLens(folder: folder, dModel: d, layers: L, bias: bias, baseModel: obj["base_model_name_or_path"]?.string,
                         weights: weights, biases: biases)
    }

    /// Refuses a lens made for a model of another width or depth, naming both values.
    public func check(modelLayers: Int, modelDModel: Int, model: String) throws {
        if dModel != modelDModel {
            throw TunedLensError.modelMismatch(lens: folder.path, field: "d_model", lensValue: dModel, model: model, modelValue: modelDModel)
        }
        if layers != modelLayers {
            throw TunedLensError.modelMismatch(lens: folder.path, field: "num_hidden_layers", lensValue: layers, model: model, modelValue: modelLayers)
        }
    }

    /// Translated residuals: each probe's [lens_layer (L + 1), d_model] with h + W_i h + b_i at lens
    /// layer i < L and the last lens layer unchanged. One product per layer over all probes.
    public func translate(_ residuals: [[Float]], compute: ComputeContext = .serial) -> [[Float]] {
        let d = dModel, P = residuals.count
        var out = residuals
        var stacked = [Float](repeating: 0, count: P * d)
        var y = [Float](repeating: 0, count: P * d)
        for i in 0..<layers {
            for p in 0..<P {
                precondition(residuals[p].count == (layers + 1) * d, "residuals of probe \(p): \(residuals[p].count) ≠ \(layers + 1) × \(d)")
                stacked.replaceSubrange((p * d)..<((p + 1) * d), with: residuals[p][(i * d)..<((i + 1) * d)])
            }
            y = stacked
            stacked.withUnsafeBufferPointer { x in
                y.withUnsafeMutableBufferPointer { yb in
                    TensorCore.linear(x.baseAddress!, rows: P, inFeatures: d, weight: weights[i].pointer, layout: .outIn, outFeatures: d,
                                      bias: biases[i].map { UnsafePointer($0.pointer) }, into: yb.baseAddress!, accumulate: true, compute: compute)
                }
            }
            for p in 0..<P { out[p].replaceSubrange((i * d)..<((i + 1) * d), with: y[(p * d)..<((p + 1) * d)]) }
        }
        return out
    }

    /// Tuned-lens scores of each probe's residuals (`LogitLens.scoresBatch` on the translated residuals).
    public func scores(model: some LogitLensModel, residuals: [[Float]], targets: [[Int]], compute: ComputeContext) -> [LensScores] {
        LogitLens.scoresBatch(model: model, residuals: translate(residuals, compute: compute), lensLayers: layers + 1,
                              targets: targets, compute: compute)
    }
}

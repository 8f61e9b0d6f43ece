// One entry point for every checkpoint of a trajectory: full checkpoints (config.json + model.safetensors
// or shards) and PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors) over a base model,
// in any mix. The base is loaded (memory-mapped, decoded) once per loader and shared by every adapter
// checkpoint; see docs/lora.md for the rules and the cost of each checkpoint.
import Checkpoints
import Foundation
import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an adapter checkpoint is, for `inspect`, HDF5 attributes and reports.
public struct AdapterSummary: Sendable, Codable, Equatable {
    /// One adapted linear layer.
    public struct Module: Sendable, Codable, Equatable {
        /// PEFT module name, e.g. "model.layers.0.self_attn.q_proj".
        public var name: String
        public var rank: Int
        public var alpha: Double
        public var scale: Double
    }

    /// `r` of adapter_config.json (modules may differ through rank_pattern; see `modules`).
    public var rank: Int
    /// `lora_alpha` of adapter_config.json.
    public var alpha: Double
    /// alpha/r, or alpha/√r with rsLoRA, for `rank` and `alpha`.
    public var scale: Double
    public var useRSLoRA: Bool
    /// The adapted modules (PEFT names), in the model's order.
    public var targets: [String]
    /// Rank, alpha and scale of each target, in the order of `targets`.
    public var modules: [Module]
    /// Base tensors replaced whole by modules_to_save copies.
    public var replacedTensors: [String]
    /// `target_modules` as written (a list, a regex, or "all-linear").
    public var targetModules: String
    public var fanInFanOut: Bool
    /// How the update is applied ("merge" or "factors").
    public var mode: AdapterMode
    /// adapter_config.json as read.
    public var configJSON: String
    /// The adapter folder.
    public var adapterPath: String
    /// The base model folder it was applied to.
    public var basePath: String
    /// `contentHash` of the base (empty when hashing is off).
    public var baseContentHash: String
    public var peftVersion: String?

    /// The targets grouped by layer kind, for one line of `inspect`: "q_proj ×32, v_proj ×32 in layers 0–31".
    public var targetSummary: String {
        var order: [String] = []
        var count: [String: Int] = [:]
        var layers = Set<Int>()
        for t in targets {
            let parts = t.split(separator: ".")
            let kind = parts.last.map(String.init) ?? t
            if count[kind] == nil { order.append(kind) }
            count[kind, default: 0] += 1
            if let n = parts.first(where: { $0.allSatisfy(\.isNumber) }).flatMap({ Int($0) }) { layers.insert(n) }
        }
        let kinds = order.map { "\($0) ×\(count[$0] ?? 0)" }.joined(separator: ", ")
        guard let lo = layers.min(), let hi = layers.max() else { return kinds }
        let span = layers.count == hi - lo + 1 ? (lo == hi ? "layer \(lo)" : "layers \(lo)–\(hi)")
                                               : "layers " + layers.sorted().map(String.init).joined(separator: ",")
        return kinds + " in " + span
    }
}

/// A checkpoint ready to run.
public struct LoadedCheckpoint: Sendable {
    /// The checkpoint folder.
    public let path: URL
    public let model: DecoderModel
    /// Set for adapter checkpoints.
    public let adapter: AdapterSummary?
    /// "sha256:<hex>" over the files that determine the checkpoint's numbers: for a full checkpoint
    /// config.json, the shard index if any and the safetensors files; for an adapter adapter_config.json and
    /// adapter_model.safetensors (the base has its own hash in `adapter.baseContentHash`). Computed as the
    /// SHA-256 of the manifest `sha256sum` prints for those files ("<hex>  <name>\n", sorted by name), so
    /// `sha256sum <files> | sort -k2 | sha256sum` gives the same digest. Empty when hashing is off.
    public let contentHash: String
    /// SHA-256 (hex) of each file behind `contentHash`, by file name; a single safetensors file's entry equals
    /// the Hugging Face Hub's LFS oid of that file.
    public let fileHashes: [String: String]
    /// The files behind `contentHash` (hashed or not), for callers that hash them elsewhere.
    public let contentFiles: [URL]
    /// For an adapter, the files behind its base's hash (`adapter.baseContentHash`); empty otherwise.
    public let baseContentFiles: [URL]
    /// The mapped weight files the model reads (an adapter's base's): whoever streams the weights (the
    /// roofline's bandwidth read) reads these pages, not a second mapping of the same files.
    public let weights: WeightStore
}

/// Loads full and adapter checkpoints, caching base models across calls.
///
/// Not thread-safe: use one loader per task. A loaded model is immutable and can be shared.
public final class CheckpointLoader {
    /// The explicit base (`--base`), if any.
    public let explicitBase: URL?
    public let mode: AdapterMode
    public let hashContents: Bool

    final class Base {
        let path: String
        let config: ModelConfig
        let store: WeightStore
        let context: LoadContext
        let model: DecoderModel
        let files: [URL]
        var hashes: (content: String, files: [String: String])?

        init(folder: URL, key: String) throws {
            path = key
            config = try ModelConfig.load(from: folder)
            store = try WeightStore(directory: folder)
            context = LoadContext()
            model = try DecoderModel.load(config: config, store: store, checkpoint: folder.path, context: context)
            var f = [folder.appendingPathComponent("config.json")] + store.files.map(\.url)
            if store.source.hasSuffix(".index.json") { f.append(URL(fileURLWithPath: store.source)) }
            files = f
        }

        func contentHashes(enabled: Bool) throws -> (content: String, files: [String: String]) {
            guard enabled else { return ("", [:]) }
            if let hashes { return hashes }
            let h = try ContentHash.manifest(files)
            hashes = h
            return h
        }
    }

    /// Bases shared by adapters, by resolved path.
    private(set) var bases: [String: Base] = [:]
    /// The last full checkpoint loaded (promoted to `bases` when an adapter names it as its base).
    private var lastFull: Base?

    /// - Parameters:
    ///   - base: explicit `--base` folder; else each adapter's `base_model_name_or_path` when it is a local path
    ///     (relative paths resolved against the adapter folder, then the current directory).
    ///   - mode: how adapters are applied (docs/lora.md has the measurements behind the default).
    ///   - hashContents: compute `contentHash` (SHA-256 of the files; about 1.5 s per GB on one core).
    public init(base: URL? = nil, mode: AdapterMode = .merge, hashContents: Bool = true) {
        self.explicitBase = base
        self.mode = mode
        self.hashContents = hashContents
    }

    /// True when the folder is a PEFT adapter checkpoint (it holds adapter_model.safetensors, or
    /// adapter_config.json and no full weights).
    public static func isAdapterFolder(_ url: URL) -> Bool {
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent("adapter_model.safetensors").path) { return true }
        let full = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"].contains {
            fm.fileExists(atPath: url.appendingPathComponent($0).path)
        }
        return !full && fm.fileExists(atPath: url.appendingPathComponent("adapter_config.json").path)
    }

    /// Loads a full checkpoint or an adapter checkpoint (`Trajectory.isAdapter`), caching the base model
    /// across calls (memory-mapped and decoded once).
    public func load(_ checkpoint: URL) throws -> LoadedCheckpoint {
        let folder = checkpoint.standardizedFileURL
        if Self.isAdapterFolder(folder) { return try loadAdapter(folder) }
        let key = Self.key(folder)
        let base: Base
        if let b = bases[key] ?? (lastFull?.path == key ? lastFull : nil) {
            base = b
        } else {
            base = try Base(folder: folder, key: key)
            lastFull = base
        }
        let h = try base.contentHashes(enabled: hashContents)
        return LoadedCheckpoint(path: folder, model: base.model, adapter: nil, contentHash: h.content, fileHashes: h.files,
                                contentFiles: base.files, baseContentFiles: [], weights: base.store)
    }

    /// The base folder an adapter folder resolves to (explicit base, else base_model_name_or_path).
    public func baseFolder(for adapter: URL) throws -> URL {
        let config = try AdapterConfig.load(from: adapter.standardizedFileURL)
        return try resolveBase(config, adapterFolder: adapter.standardizedFileURL)
    }

    // MARK: adapters

    private func loadAdapter(_ folder: URL) throws -> LoadedCheckpoint {
        let weightsURL = folder.appendingPathComponent("adapter_model.safetensors")
        let config = try AdapterConfig.load(from: folder)
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            let found = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
            throw CheckpointError.noWeights(directory: folder.path, expected: "adapter_model.safetensors", found: found)
        }
        let baseURL = try resolveBase(config, adapterFolder: folder)
        let base = try loadBase(baseURL, config: config)
        try checkArchitecture(config, adapterFolder: folder, base: base)

        let weights = try SafeTensorsFile(url: weightsURL)
        let overlay = try AdapterOverlay.build(
            config: config, weights: weights,
            base: AdapterBase(config: base.config, store: base.store, context: base.context, model: base.model, path: base.path),
            mode: mode)
        base.context.overlay = overlay
        defer { base.context.overlay = nil }
        let model = try DecoderModel.load(config: base.config, store: base.store, checkpoint: folder.path, context: base.context)
        try overlay.checkAllConsumed()

        let targets = overlay.targetOrder.compactMap { overlay.targets[$0] }
        let baseHash = try base.contentHashes(enabled: hashContents).content
        let summary = AdapterSummary(
            rank: config.rank, alpha: config.alpha, scale: config.scale, useRSLoRA: config.useRSLoRA,
            targets: targets.map(\.module),
            modules: targets.map { AdapterSummary.Module(name: $0.module, rank: $0.rank, alpha: $0.alpha, scale: $0.scale) },
            replacedTensors: overlay.replacements.keys.sorted(), targetModules: config.targetModules.description,
            fanInFanOut: config.fanInFanOut, mode: mode, configJSON: config.rawJSON, adapterPath: folder.path,
            basePath: base.path, baseContentHash: baseHash, peftVersion: config.peftVersion)
        let files = [folder.appendingPathComponent("adapter_config.json"), weightsURL]
        let h: (content: String, files: [String: String]) = hashContents ? try ContentHash.manifest(files) : ("", [:])
        return LoadedCheckpoint(path: folder, model: model, adapter: summary, contentHash: h.content, fileHashes: h.files,
                                contentFiles: files, baseContentFiles: base.files, weights: base.store)
    }

    private func loadBase(_ url: URL, config: AdapterConfig) throws -> Base {
        let key = Self.key(url)
        if let b = bases[key] { return b }
        if let b = lastFull, b.path == key {
            bases[key] = b
            return b
        }
        if Self.isAdapterFolder(url) {
            throw CheckpointError.unsupportedAdapter(file: config.file, field: "base_model_name_or_path", value: "'\(url.path)'",
                                                     reason: "the base is itself an adapter (stacked adapters are not implemented)")
        }
        let b = try Base(folder: url, key: key)
        bases[key] = b
        return b
    }

    /// --base, else base_model_name_or_path as an absolute path, or relative to the adapter folder, then the CWD.
    private func resolveBase(_ config: AdapterConfig, adapterFolder: URL) throws -> URL {
        let fm = FileManager.default
        func isDir(_ u: URL) -> Bool {
            var d: ObjCBool = false
            return fm.fileExists(atPath: u.path, isDirectory: &d) && d.boolValue
        }
        if let b = explicitBase {
            guard isDir(b) else {
                throw CheckpointError.adapterBaseNotFound(file: config.file, reference: config.baseModelNameOrPath,
                                                          reason: "--base \(b.path) is not a folder")
            }
            return b.standardizedFileURL
        }
        guard let ref = config.baseModelNameOrPath, !ref.isEmpty else {
            throw CheckpointError.adapterBaseNotFound(file: config.file, reference: nil,
                                                      reason: "adapter_config.json names no base model")
        }
        let expanded = (ref as NSString).expandingTildeInPath
        let candidates: [URL] = expanded.hasPrefix("/")
            ? [URL(fileURLWithPath: expanded)]
            : [adapterFolder.appendingPathComponent(expanded),
               URL(fileURLWithPath: fm.currentDirectoryPath).appendingPathComponent(expanded)]
        if let found = candidates.first(where: isDir) { return found.standardizedFileURL }
        let tried = candidates.map { $0.standardizedFileURL.path }.joined(separator: ", ")
        let hub = !expanded.hasPrefix("/") && !expanded.hasPrefix(".") && expanded.split(separator: "/").count == 2
            ? "; it looks like a Hugging Face Hub id, and cpiscope does not download models" : ""
        throw CheckpointError.adapterBaseNotFound(file: config.file, reference: ref,
                                                  reason: "not a local folder (tried \(tried))\(hub)")
    }

    /// auto_mapping.base_model_class against the base's config.json `architectures`, and the model_type of a
    /// config.json stored beside the adapter (some training scripts save one) against the base's.
    private func checkArchitecture(_ config: AdapterConfig, adapterFolder: URL, base: Base) throws {
        let baseJSON = JSONValue.parseOrNil(Array(base.config.rawJSON.utf8))
        if let cls = config.baseModelClass,
           let archs = baseJSON?["architectures"]?.array?.compactMap(\.string), !archs.isEmpty, !archs.contains(cls) {
            throw CheckpointError.adapterBaseMismatch(file: config.file, field: "auto_mapping.base_model_class", adapter: "'\(cls)'",
                                                      base: "'\(archs.joined(separator: ", "))' (config.json architectures)", basePath: base.path)
        }
        let beside = adapterFolder.appendingPathComponent("config.json")
        if let data = FileManager.default.contents(atPath: beside.path), data.count < AdapterConfig.maxFileSize,
           let type = JSONValue.parseOrNil([UInt8](data))?["model_type"]?.string,
           type != base.config.modelType {
            throw CheckpointError.adapterBaseMismatch(file: beside.path, field: "model_type", adapter: "'\(type)'",
                                                      base: "'\(base.config.modelType)'", basePath: base.path)
        }
    }

    static func key(_ url: URL) -> String { url.standardizedFileURL.resolvingSymlinksInPath().path }
}

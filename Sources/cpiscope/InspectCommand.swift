// `cpiscope inspect`: what a checkpoint or a trajectory holds.
import ArgumentParser
import Checkpoints
import Foundation
import Models
import StrictJSON

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show the architecture, sizes, dtypes and checkpoints of a model or a trajectory.",
        discussion: """
        PATH is a checkpoint folder (config.json + model.safetensors, or shards with \
        model.safetensors.index.json), or a training output folder of checkpoint-N/ subfolders, which \
        are listed in training order (trainer_state.json global_step, else N). Every checkpoint's \
        weight files are checked against its config.json as the loader checks them (every tensor \
        present with its shape, none left over; headers only): a mismatch is an error naming the tensors.

        Examples:
          cpiscope inspect Tests/Fixtures/models/llama-gqa
          cpiscope inspect runs/ift-llama --format json
        """)

    @Argument(help: "A checkpoint folder, or a folder of checkpoint-N folders.")
    var path: String

    @Option(help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Option(help: "Base model folder for PEFT LoRA adapter checkpoints (default: the adapter's base_model_name_or_path).")
    var base: String?

    func run() throws {
        let url = URL(fileURLWithPath: path)
        let refs = try Trajectory.discover(at: url)
        // Architecture facts come from the first checkpoint; the others are checked to match.
        let first = refs[0]
        let loader = CheckpointLoader(base: base.map { URL(fileURLWithPath: $0) }, hashContents: false)
        // Adapters are described by their base's architecture plus their own rank, targets and scale.
        func modelFolder(_ url: URL) throws -> URL { Trajectory.isAdapter(url) ? try loader.baseFolder(for: url) : url }
        let config = try ModelConfig.load(from: modelFolder(first.path))
        let store = try WeightStore(directory: modelFolder(first.path))
        var adapters: [String: AdapterSummary] = [:]
        for ref in refs where Trajectory.isAdapter(ref.path) {
            adapters[ref.name] = try loader.load(ref.path).adapter
        }
        // The weight files of every full checkpoint must match its config exactly as the loader requires
        // (names and shapes from the headers; nothing is decoded), so that `inspect` never calls valid
        // what `logits` or `probe` would refuse.
        for ref in refs where !Trajectory.isAdapter(ref.path) {
            let c = ref.path == first.path ? config : try ModelConfig.load(from: ref.path)
            let s = ref.path == first.path ? store : try WeightStore(directory: ref.path)
            try DecoderModel.checkWeights(config: c, store: s, checkpoint: ref.path.path)
        }
        for ref in refs.dropFirst() {
            let other = try ModelConfig.load(from: modelFolder(ref.path))
            if other.modelType != config.modelType || other.layers != config.layers || other.dModel != config.dModel {
                throw CLIError(description: "\(ref.path.path): \(other.modelType) with \(other.layers) layers × d_model \(other.dModel) differs from \(first.name) (\(config.modelType), \(config.layers) × \(config.dModel))",
                               hint: "A trajectory must hold checkpoints of one model; select a subset with --checkpoints.")
            }
        }
        let parameters = store.names.compactMap { store.info($0) }
            .filter { !DecoderModel.isNonParameterBuffer($0.name) }
            .reduce(0) { $0 + $1.elementCount }
        let dtypes = store.dtypeCounts.map { "\($0.key.rawValue)" }.sorted()
        let fileSizes = store.files.map { ($0.url.lastPathComponent, $0.fileSize) }
        switch format {
        case .json:
            func strings(_ s: [String]) -> JSONValue { .array(s.map(JSONValue.string)) }
            let obj = jsonObject([
                ("model_type", .string(config.modelType)),
                ("layers", jsonNumber(config.layers)), ("heads", jsonNumber(config.heads)), ("kv_heads", jsonNumber(config.kvHeads)),
                ("d_model", jsonNumber(config.dModel)), ("d_head", jsonNumber(config.dHead)), ("d_mlp", jsonNumber(config.dMLP)),
                ("vocab", jsonNumber(config.vocab)),
                ("parameters", jsonNumber(parameters)), ("dtypes", strings(dtypes)), ("tied_embeddings", .bool(config.tiedEmbeddings)),
                ("eos_token_ids", .array(config.eosTokenIDs.map(jsonNumber))), ("features", strings(ModelFamilies.features(config))),
                ("files", .array(fileSizes.map { jsonObject([("name", .string($0.0)), ("bytes", jsonNumber($0.1))]) })),
                ("checkpoints", .array(refs.map { r -> JSONValue in
                    var entry: [(String, JSONValue)] = [("name", .string(r.name)), ("step", r.step.map(jsonNumber) ?? .null), ("path", .string(r.path.path))]
                    if let a = adapters[r.name] {
                        entry.append(("adapter", jsonObject([("rank", jsonNumber(a.rank)), ("alpha", jsonNumber(a.alpha)), ("scale", jsonNumber(a.scale)),
                                                             ("use_rslora", .bool(a.useRSLoRA)), ("targets", strings(a.targets)), ("base", .string(a.basePath))])))
                    }
                    return jsonObject(entry)
                })),
            ])
            print(jsonString(obj))
        case .text:
            print("\(config.modelType)  (\(first.path.path))")
            print("  layers \(config.layers), heads \(config.heads), kv heads \(config.kvHeads), d_model \(config.dModel), d_head \(config.dHead), d_mlp \(config.dMLP)")
            print("  vocab \(config.vocab), parameters \(formatCount(parameters)), tied embeddings: \(config.tiedEmbeddings ? "yes" : "no")")
            if let r = config.rotary {
                print("  rotary: \(r.dims) of \(config.dHead) dims, theta \(r.theta), scaling \(describe(r.scaling))")
            }
            for feature in ModelFamilies.features(config) { print("  \(feature)") }
            if !config.eosTokenIDs.isEmpty {
                print("  EOS ids (config.json + generation_config.json): \(config.eosTokenIDs.map(String.init).joined(separator: ", "))")
            }
            if let w = config.slidingWindow.compactMap({ $0 }).first { print("  sliding window \(w)") }
            print("  dtypes: \(dtypes.joined(separator: ", "))")
            for (name, bytes) in fileSizes { print("  \(name): \(formatBytes(bytes))") }
            print("checkpoints (\(refs.count)):")
            for r in refs {
                print("  \(r.name)  step \(r.step.map(String.init) ?? "-")  \(r.path.path)")
                if let a = adapters[r.name] {
                    print("    LoRA adapter: rank \(a.rank), alpha \(a.alpha), scale \(a.scale)\(a.useRSLoRA ? " (rsLoRA)" : ""), base \(a.basePath)")
                    print("    targets (\(a.targets.count)): \(a.targets.prefix(6).joined(separator: ", "))\(a.targets.count > 6 ? ", …" : "")")
                }
            }
        }
    }

    private func describe(_ s: RopeScaling) -> String {
        switch s {
        case .none: return "none"
        case .linear(let f): return "linear ×\(f)"
        case let .llama3(f, lo, hi, orig): return "llama3 (factor \(f), low \(lo), high \(hi), original \(orig))"
        case let .longrope(short, long, orig, attention):
            return "longrope (short factors \(short), long factors \(long) past \(orig) positions, attention factor \(String(format: "%.4f", attention)))"
        }
    }
}

func formatCount(_ n: Int) -> String {
    if n >= 1_000_000_000 { return String(format: "%.2fB", Double(n) / 1e9) }
    if n >= 1_000_000 { return String(format: "%.1fM", Double(n) / 1e6) }
    if n >= 1_000 { return String(format: "%.1fK", Double(n) / 1e3) }
    return "\(n)"
}

func formatBytes(_ n: Int) -> String {
    if n >= 1 << 30 { return String(format: "%.2f GiB", Double(n) / Double(1 << 30)) }
    if n >= 1 << 20 { return String(format: "%.1f MiB", Double(n) / Double(1 << 20)) }
    if n >= 1 << 10 { return String(format: "%.1f KiB", Double(n) / 1024) }
    return "\(n) B"
}

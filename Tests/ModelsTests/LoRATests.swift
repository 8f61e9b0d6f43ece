// PEFT LoRA adapters: parity with peft's merged model, PEFT's matching rules, trajectories that mix full
// and adapter checkpoints, base sharing, content hashes, and bad input.
// Reference: Tools/goldens/make_lora_fixtures.py (peft 0.21.2, transformers 5.24.0, fp32, CPU). Goldens come
// from `merge_and_unload()` of the adapted model. Tolerances (issue #2): attention probabilities max |Δ| ≤ 1e-5;
// hidden states and logits max |Δ| ≤ 1e-4.
import Checkpoints
import Foundation
import Instrumentation
@testable import Models
import TensorCore
import Testing

let loraRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/lora")

struct LoRAGolden {
    let meta: [String: Any]
    let sequences: [[Int]]
    let store: WeightStore
    let dir: URL

    init(_ name: String) throws {
        dir = loraRoot.appendingPathComponent(name)
        meta = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("golden.json"))) as? [String: Any])
        sequences = try #require(meta["sequences"] as? [[NSNumber]]).map { $0.map(\.intValue) }
        store = try WeightStore(files: [dir.appendingPathComponent("golden.safetensors")])
    }

    var base: URL { dir.appendingPathComponent(meta["base"] as? String ?? "").standardizedFileURL }
    func tensor(_ s: Int, _ key: String) throws -> Tensor { try store.tensor("s\(s).\(key)") }
    /// PEFT's rank and scale per adapted module.
    var modules: [String: [String: Double]] {
        (meta["modules"] as? [String: [String: NSNumber]] ?? [:]).mapValues { $0.mapValues(\.doubleValue) }
    }
}

let loraParityFixtures = ["llama-all-proj", "gpt2-fan-in-fan-out", "llama-rslora-patterns", "neox-layers-to-transform",
                          "llama-modules-to-save", "qwen3-default-targets", "gemma2-default-targets", "olmo2-all-proj",
                          "phi3-fused-proj"]

/// Every linear layer of a model, in block order.
func allLinears(_ m: DecoderModel) -> [Linear] { m.blocks.flatMap(\.linears) }

/// A scratch folder removed after `body`.
func withTempDir<T>(_ body: (URL) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpiscope-lora-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    return try body(dir)
}

/// Copies a fixture adapter into `dir/name`, pointing its base_model_name_or_path at the absolute base path,
/// then applies `edit` to adapter_config.json (nil = leave the file as is).
func copyAdapter(_ fixture: String, into dir: URL, name: String = "adapter",
                 edit: ((inout [String: Any]) -> Void)? = nil) throws -> URL {
    let src = loraRoot.appendingPathComponent(fixture)
    let dst = dir.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: dst, withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: src.appendingPathComponent("adapter_model.safetensors"),
                                     to: dst.appendingPathComponent("adapter_model.safetensors"))
    var cfg = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: src.appendingPathComponent("adapter_config.json"))) as? [String: Any])
    cfg["base_model_name_or_path"] = try LoRAGolden(fixture).base.path
    edit?(&cfg)
    try JSONSerialization.data(withJSONObject: cfg, options: [.sortedKeys]).write(to: dst.appendingPathComponent("adapter_config.json"))
    return dst
}

/// Rewrites an adapter's tensors: `change` gets name → tensor and returns the new set.
func rewriteTensors(_ adapter: URL, _ change: ([String: Tensor]) -> [String: Tensor]) throws {
    let url = adapter.appendingPathComponent("adapter_model.safetensors")
    let file = try SafeTensorsFile(url: url)
    var tensors: [String: Tensor] = [:]
    for name in file.namesInFileOrder { tensors[name] = try file.floatTensor(name).copy() }
    try SafeTensorsWriter.write(change(tensors), to: url)
}

@Suite("LoRA adapters")
struct LoRATests {
    // MARK: parity

    @Test("adapted model matches peft merge_and_unload (logits, residual stream, attention)",
          arguments: loraParityFixtures, AdapterMode.allCases)
    func parity(fixture: String, mode: AdapterMode) throws {
        let golden = try LoRAGolden(fixture)
        let loaded = try CheckpointLoader(mode: mode).load(golden.dir)
        let model = loaded.model
        #expect(loaded.adapter?.mode == mode)
        for (s, ids) in golden.sequences.enumerated() {
            let rec = HookRecorder.everything(layers: model.layers)
            let logits = try model.forward(ids, logits: .all, observer: rec)
            let checks: [(String, Tensor, Float)] = [
                ("logits", logits, 1e-4),
                ("embed", try #require(rec[.embed]), 1e-4),
                ("resid_post", stack(try (0..<model.layers).map { try #require(rec[.residPost($0)]) }), 1e-4),
                ("ln_final", try #require(rec[.lnFinal]), 1e-4),
                ("attn", stack(try (0..<model.layers).map { try #require(rec[.attnPattern($0)]) }), 1e-5),
            ]
            for (key, mine, tol) in checks {
                let ref = try golden.tensor(s, key)
                #expect(mine.shape == ref.shape, "\(fixture) \(mode) seq \(s) \(key): shape \(mine.shape) vs \(ref.shape)")
                guard mine.shape == ref.shape else { continue }
                let diff = maxAbsDiff(mine, ref)
                #expect(diff <= tol, "\(fixture) \(mode) seq \(s) \(key): max |Δ| = \(diff) > \(tol)")
            }
        }
    }

    @Test("the goldens are not the base model's outputs (the adapter changes the logits by > 0.05)", arguments: loraParityFixtures)
    func adapterIsNotANoOp(fixture: String) throws {
        let golden = try LoRAGolden(fixture)
        let base = try DecoderModel.load(from: golden.base)
        let ids = golden.sequences[0]
        let diff = maxAbsDiff(try base.forward(ids), try golden.tensor(0, "logits"))
        #expect(diff > 0.05, "\(fixture): base vs adapted golden logits max |Δ| = \(diff)")
    }

    @Test("targets, ranks and scales equal PEFT's own LoRA layers", arguments: loraParityFixtures)
    func summaryMatchesPEFT(fixture: String) throws {
        let golden = try LoRAGolden(fixture)
        let summary = try #require(try CheckpointLoader(hashContents: false).load(golden.dir).adapter)
        let expected = golden.modules
        #expect(Set(summary.targets) == Set(expected.keys), "\(fixture): targets \(summary.targets) vs PEFT \(expected.keys.sorted())")
        for m in summary.modules {
            guard let e = expected[m.name] else { continue }
            #expect(Double(m.rank) == e["r"], "\(fixture) \(m.name): rank \(m.rank) vs \(e["r"] ?? -1)")
            let want = e["scale"] ?? .nan
            #expect(abs(m.scale - want) <= 1e-12 * max(1, abs(want)), "\(fixture) \(m.name): scale \(m.scale) vs PEFT \(want)")
        }
        #expect(summary.basePath == golden.base.resolvingSymlinksInPath().path)
    }

    @Test("modules_to_save copies replace their base tensors")
    func modulesToSaveSummary() throws {
        let summary = try #require(try CheckpointLoader(hashContents: false).load(loraRoot.appendingPathComponent("llama-modules-to-save")).adapter)
        #expect(summary.replacedTensors == ["lm_head.weight", "model.layers.0.post_attention_layernorm.weight",
                                            "model.layers.1.post_attention_layernorm.weight"])
        #expect(summary.targets.count == 14, "all-linear over 2 Llama layers is 7 × 2 linear layers, got \(summary.targets.count)")
    }

    @Test("the one-line target summary groups targets by kind and layer")
    func targetSummary() throws {
        let loader = CheckpointLoader(hashContents: false)
        let neox = try #require(try loader.load(loraRoot.appendingPathComponent("neox-layers-to-transform")).adapter)
        #expect(neox.targetSummary == "query_key_value ×1, dense_h_to_4h ×1 in layer 1")
        let llama = try #require(try loader.load(loraRoot.appendingPathComponent("llama-all-proj")).adapter)
        #expect(llama.targetSummary == "q_proj ×2, k_proj ×2, v_proj ×2, o_proj ×2, gate_proj ×2, up_proj ×2, down_proj ×2 in layers 0–1")
    }

    // MARK: PEFT's matching rules

    @Test("target_modules / exclude_modules / layers_to_transform / rank_pattern / alpha_pattern match as in PEFT")
    func matchingRules() throws {
        let data = try Data(contentsOf: loraRoot.appendingPathComponent("matching.json"))
        let root = try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try #require(root["cases"] as? [[String: Any]])
        #expect(cases.count >= 15)
        var compared = 0
        for c in cases {
            let title = c["title"] as? String ?? "?"
            let json = try #require(c["config_json"] as? String)
            let config = try AdapterConfig.parse(Array(json.utf8), file: "matching.json (\(title))")
            let matcher = config.matcher()
            for row in try #require(c["modules"] as? [[String: Any]]) {
                let module = try #require(row["module"] as? String)
                let targeted = try #require(row["targeted"] as? Bool)
                #expect(matcher.isTargeted(module) == targeted, "\(title): '\(module)' targeted should be \(targeted)")
                let r = (row["r"] as? NSNumber)?.intValue
                #expect(matcher.rank(for: module) == r, "\(title): '\(module)' rank \(matcher.rank(for: module)) vs PEFT \(r ?? -1)")
                let alpha = (row["alpha"] as? NSNumber)?.doubleValue
                #expect(matcher.alpha(for: module) == alpha, "\(title): '\(module)' alpha \(matcher.alpha(for: module)) vs PEFT \(alpha ?? -1)")
                compared += 1
            }
        }
        #expect(compared > 300)
    }

    @Test("modules_to_save covers a module when it or an ancestor ends with an entry (PEFT _set_trainable)")
    func savedModules() throws {
        let json = #"{"peft_type": "LORA", "r": 2, "lora_alpha": 2, "target_modules": ["q_proj"], "modules_to_save": ["norm", "lm_head"]}"#
        let m = try AdapterConfig.parse(Array(json.utf8), file: "inline").matcher()
        #expect(m.isSaved(module: "model.layers.0.input_layernorm"))
        #expect(m.isSaved(module: "model.norm"))
        #expect(m.isSaved(module: "lm_head"))
        #expect(!m.isSaved(module: "model.embed_tokens"))
        #expect(!m.isSaved(module: "model.layers.0.self_attn.q_proj"))
    }

    // MARK: trajectories and base sharing

    @Test("adapter trajectory (full checkpoint-0 + 2 adapters) equals the same checkpoints merged by peft",
          arguments: AdapterMode.allCases)
    func trajectory(mode: AdapterMode) throws {
        let refs = try Trajectory.discover(at: loraRoot.appendingPathComponent("trajectory-adapter"))
        let merged = try Trajectory.discover(at: loraRoot.appendingPathComponent("trajectory-merged"))
        #expect(refs.map(\.step) == [0, 10, 20])
        #expect(merged.map(\.name) == refs.map(\.name))
        let loader = CheckpointLoader(mode: mode)
        let ids = [3, 14, 15, 92, 65, 35, 89, 79, 32, 38]
        var first: DecoderModel? = nil
        for (ref, full) in zip(refs, merged) {
            let loaded = try loader.load(ref.path)
            #expect((loaded.adapter == nil) == (ref.step == 0), "\(ref.name): checkpoint-0 is full, the rest are adapters")
            if ref.step == 0 { first = loaded.model }
            if let a = loaded.adapter {
                #expect(a.basePath == refs[0].path.standardizedFileURL.resolvingSymlinksInPath().path)
                #expect(a.baseContentHash.hasPrefix("sha256:"))
            }
            let reference = try DecoderModel.load(from: full.path)
            let diff = maxAbsDiff(try loaded.model.forward(ids), try reference.forward(ids))
            #expect(diff <= 1e-4, "\(ref.name) \(mode): adapter vs peft-merged full checkpoint logits max |Δ| = \(diff)")
        }
        // checkpoint-0 was loaded as a full checkpoint and then reused as the adapters' base: loading it again
        // gives the very same model object (it is not mapped or decoded twice).
        let again = try loader.load(refs[0].path).model
        #expect(again === first)
    }

    @Test("the base is read once and never written; an adapter checkpoint owns only its merged matrices")
    func baseSharing() throws {
        let baseURL = fixturesRoot.appendingPathComponent("llama-gqa")
        let loader = CheckpointLoader(base: baseURL)
        let base = try loader.load(baseURL).model
        let ids = [5, 17, 2, 64, 33, 90, 11]
        let before = try base.forward(ids)
        let loadedA = try loader.load(loraRoot.appendingPathComponent("llama-all-proj"))
        let a = loadedA.model
        // The full checkpoint loaded first became the adapter's base (the same store, not a second mapping).
        let store = try #require(loader.bases[CheckpointLoader.key(baseURL)]?.store)
        // The adapter's `weights` are that mapping: what a bandwidth read of its weights streams.
        #expect(loadedA.weights === store)
        #expect(try loader.load(baseURL).weights === store)
        #expect(loader.bases[CheckpointLoader.key(baseURL)]?.model === base)
        let baseLinears = allLinears(base)
        // F32 base weights are borrowed from the read-only mapping (writing to them would crash).
        #expect(baseLinears.allSatisfy { l in store.files.contains { $0.contains(pointer: l.weight.pointer) } })
        let b = try loader.load(loraRoot.appendingPathComponent("llama-modules-to-save")).model
        let aLinears = allLinears(a)
        // llama-all-proj adapts all 14 linear layers: each is a new matrix, the base's stays where it was.
        #expect(zip(aLinears, baseLinears).allSatisfy { $0.weight.pointer != $1.weight.pointer })
        // Everything else is shared with the base: embeddings, norms, head.
        #expect(a.tokenEmbedding.float!.storage === base.tokenEmbedding.float!.storage)
        #expect(a.unembedding.float!.storage === base.unembedding.float!.storage)
        #expect(a.blocks[0].attnNorm!.weight.storage === base.blocks[0].attnNorm!.weight.storage)
        // modules_to_save replaced the head and the post-attention norms only.
        #expect(b.unembedding.float!.storage !== base.unembedding.float!.storage)
        #expect(b.blocks[1].mlpNorm!.weight.storage !== base.blocks[1].mlpNorm!.weight.storage)
        #expect(b.blocks[1].attnNorm!.weight.storage === base.blocks[1].attnNorm!.weight.storage)
        // The base still computes exactly what it did before the adapters were merged.
        let after = try base.forward(ids)
        #expect(maxAbsDiff(before, after) == 0)
        // Factors mode shares even the adapted layers' weights with the base.
        let factorsLoader = CheckpointLoader(base: baseURL, mode: .factors)
        let fBase = try factorsLoader.load(baseURL).model
        let f = try factorsLoader.load(loraRoot.appendingPathComponent("llama-all-proj")).model
        #expect(zip(allLinears(f), allLinears(fBase)).allSatisfy { $0.lora != nil && $0.weight.storage === $1.weight.storage })
    }

    @Test("explicit --base gives the same model as base_model_name_or_path")
    func explicitBase() throws {
        let golden = try LoRAGolden("llama-all-proj")
        try withTempDir { dir in
            let adapter = try copyAdapter("llama-all-proj", into: dir) { $0["base_model_name_or_path"] = "some-org/some-model" }
            let loaded = try CheckpointLoader(base: golden.base).load(adapter)
            let diff = maxAbsDiff(try loaded.model.forward(golden.sequences[1]), try golden.tensor(1, "logits"))
            #expect(diff <= 1e-4, "max |Δ| = \(diff)")
        }
    }

    // MARK: content hashes

    @Test("content hashes equal Python hashlib's over the same files", arguments: loraParityFixtures)
    func contentHash(fixture: String) throws {
        let golden = try LoRAGolden(fixture)
        let hashes = try #require(golden.meta["hashes"] as? [String: Any])
        let loaded = try CheckpointLoader().load(golden.dir)
        #expect(loaded.contentHash == hashes["content_hash"] as? String)
        #expect(loaded.fileHashes == hashes["files"] as? [String: String])
        #expect(loaded.adapter?.baseContentHash.hasPrefix("sha256:") == true)
    }

    // MARK: bad input

    @Test("targets that match nothing: error naming adapter_config.json and target_modules")
    func targetsMatchNothing() throws {
        try withTempDir { dir in
            let adapter = try copyAdapter("llama-all-proj", into: dir) { $0["target_modules"] = ["nonexistent_proj"] }
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(adapter) }
            guard case let .adapterTargetsNothing(file, field, _, _)? = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(file.hasSuffix("adapter/adapter_config.json") && field == "target_modules")
            #expect(e?.description.contains("nonexistent_proj") == true, "\(e?.description ?? "")")
        }
    }

    @Test("layers_to_transform outside the model: the targets match nothing")
    func layersOutOfRange() throws {
        try withTempDir { dir in
            let adapter = try copyAdapter("neox-layers-to-transform", into: dir) { $0["layers_to_transform"] = [7] }
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(adapter) }
            guard case .adapterTargetsNothing? = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(e?.description.contains("layers_to_transform [7]") == true, "\(e?.description ?? "")")
        }
    }

    @Test("shape mismatch with the base: error naming the adapter file and tensor")
    func shapeMismatch() throws {
        // llama-all-proj was trained on llama-gqa (q_proj [32, 32]); llama-rope-llama3 has q_proj [24, 32].
        let e = #expect(throws: CheckpointError.self) {
            try CheckpointLoader(base: fixturesRoot.appendingPathComponent("llama-rope-llama3"))
                .load(loraRoot.appendingPathComponent("llama-all-proj"))
        }
        guard case let .adapterShapeMismatch(file, tensor, expected, found, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(file.hasSuffix("llama-all-proj/adapter_model.safetensors"))
        #expect(tensor == "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")
        #expect(expected == [24, 4] && found == [32, 4])
    }

    @Test("a rank that disagrees with r / rank_pattern: shape error naming the tensor")
    func rankMismatch() throws {
        try withTempDir { dir in
            let adapter = try copyAdapter("llama-all-proj", into: dir) { $0["rank_pattern"] = ["k_proj": 3] }
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(adapter) }
            guard case let .adapterShapeMismatch(_, tensor, expected, found, reason)? = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(tensor == "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight")
            #expect(expected == [3, 32] && found == [4, 32] && reason.contains("rank_pattern"))
        }
    }

    @Test("a base of another architecture: error naming auto_mapping.base_model_class")
    func otherArchitectureByClass() throws {
        let e = #expect(throws: CheckpointError.self) {
            try CheckpointLoader(base: fixturesRoot.appendingPathComponent("llama-gqa"))
                .load(loraRoot.appendingPathComponent("gpt2-fan-in-fan-out"))
        }
        guard case let .adapterBaseMismatch(file, field, adapter, base, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(file.hasSuffix("gpt2-fan-in-fan-out/adapter_config.json") && field == "auto_mapping.base_model_class")
        #expect(adapter.contains("GPT2LMHeadModel") && base.contains("LlamaForCausalLM"))
    }

    @Test("a base of another architecture, no auto_mapping: error naming the first tensor")
    func otherArchitectureByModules() throws {
        // llama-all-proj has task_type CAUSAL_LM, so PEFT wrote no auto_mapping.
        let e = #expect(throws: CheckpointError.self) {
            try CheckpointLoader(base: fixturesRoot.appendingPathComponent("gpt2-tied"))
                .load(loraRoot.appendingPathComponent("llama-all-proj"))
        }
        guard case let .adapterBaseMismatch(file, field, _, base, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(file.hasSuffix("llama-all-proj/adapter_model.safetensors"))
        #expect(field.contains("base_model.model.model.layers.0.") && base.contains("gpt2"))
    }

    @Test("a config.json beside the adapter naming another model_type: error naming it")
    func otherArchitectureBesideConfig() throws {
        try withTempDir { dir in
            let adapter = try copyAdapter("llama-all-proj", into: dir)
            try FileManager.default.copyItem(at: fixturesRoot.appendingPathComponent("gpt2-tied/config.json"),
                                             to: adapter.appendingPathComponent("config.json"))
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(adapter) }
            guard case let .adapterBaseMismatch(file, field, _, _, _)? = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(file.hasSuffix("adapter/config.json") && field == "model_type")
        }
    }

    @Test("missing adapter_config.json: error naming the folder")
    func missingConfig() throws {
        try withTempDir { dir in
            let adapter = try copyAdapter("llama-all-proj", into: dir)
            try FileManager.default.removeItem(at: adapter.appendingPathComponent("adapter_config.json"))
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(adapter) }
            guard case let .missingAdapterConfig(directory)? = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(directory == adapter.path)
            #expect(e?.hint.contains("adapter_config.json") == true)
        }
    }

    @Test("malformed adapter_config.json: error naming the file and field", arguments: [
        ("{ \"peft_type\": \"LORA\", ", "(file)"),
        ("[1, 2]", "(top level)"),
        (#"{"peft_type": "LORA", "r": "four", "lora_alpha": 8, "target_modules": ["q_proj"]}"#, "r"),
        (#"{"peft_type": "LORA", "r": 0, "lora_alpha": 8, "target_modules": ["q_proj"]}"#, "r"),
        (#"{"peft_type": "LORA", "r": 4, "target_modules": ["q_proj"]}"#, "lora_alpha"),
        (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8}"#, "target_modules"),
        (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": 5}"#, "target_modules"),
        (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", 3]}"#, "target_modules[1]"),
        (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": "(q_proj"}"#, "target_modules"),
        (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "rank_pattern": {"q_proj": -2}}"#, "rank_pattern[\"q_proj\"]"),
        (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ".*q_proj", "layers_to_transform": [0]}"#, "layers_to_transform"),
        (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": "all-linear", "layers_to_transform": [0]}"#, "layers_to_transform"),
        (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "layers_pattern": "layers"}"#, "layers_pattern"),
        (#"{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}"#, "peft_type"),
    ])
    func malformedConfig(text: String, field: String) throws {
        try withTempDir { dir in
            let adapter = try copyAdapter("llama-all-proj", into: dir)
            try Data(text.utf8).write(to: adapter.appendingPathComponent("adapter_config.json"))
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader(base: fixturesRoot.appendingPathComponent("llama-gqa")).load(adapter) }
            guard case let .badAdapterConfig(file, f, _)? = e else { Issue.record("\(text): got \(String(describing: e))"); return }
            #expect(file == adapter.appendingPathComponent("adapter_config.json").path)
            #expect(f == field, "\(text): field \(f), expected \(field); \(e?.description ?? "")")
        }
    }

    @Test("unsupported PEFT features: 'not supported' error naming the field", arguments: [
        ("use_dora", "true"), ("bias", "\"all\""), ("bias", "\"lora_only\""), ("peft_type", "\"IA3\""),
        ("lora_bias", "true"), ("init_lora_weights", "\"pissa_niter_4\""), ("layer_replication", "[[0, 2]]"),
        ("trainable_token_indices", "[1, 2]"), ("alora_invocation_tokens", "[5]"),
    ])
    func unsupportedFeature(field: String, value: String) throws {
        try withTempDir { dir in
            let adapter = try copyAdapter("llama-all-proj", into: dir) { cfg in
                cfg[field] = try? JSONSerialization.jsonObject(with: Data(value.utf8), options: [.fragmentsAllowed])
            }
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(adapter) }
            guard case let .unsupportedAdapter(file, f, v, _)? = e else { Issue.record("\(field): got \(String(describing: e))"); return }
            #expect(file.hasSuffix("adapter/adapter_config.json") && f == field && !v.isEmpty)
            #expect(e?.description.contains("not supported") == true)
        }
    }

    @Test("an adapter tensor for a module the config does not target: error naming the tensor")
    func untargetedTensor() throws {
        try withTempDir { dir in
            let adapter = try copyAdapter("llama-all-proj", into: dir) { $0["target_modules"] = ["q_proj", "k_proj", "v_proj", "o_proj"] }
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(adapter) }
            guard case let .adapterTensorUnmatched(file, tensor, _)? = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(file.hasSuffix("adapter/adapter_model.safetensors") && tensor.contains(".mlp."))
        }
    }

    @Test("a tensor naming no module of the base, and a missing lora_B: errors naming the tensor")
    func strayAndMissingTensors() throws {
        try withTempDir { dir in
            let stray = try copyAdapter("llama-all-proj", into: dir, name: "stray")
            try rewriteTensors(stray) { t in
                var t = t
                t["base_model.model.model.layers.0.self_attn.r_proj.lora_A.weight"] = Tensor(zeros: [4, 32])
                return t
            }
            let e1 = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(stray) }
            guard case let .adapterTensorUnmatched(_, tensor, reason)? = e1 else { Issue.record("got \(String(describing: e1))"); return }
            #expect(tensor.contains("r_proj") && reason.contains("no module"))

            let missing = try copyAdapter("llama-all-proj", into: dir, name: "missing")
            try rewriteTensors(missing) { t in t.filter { $0.key != "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight" } }
            let e2 = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(missing) }
            guard case let .adapterTensorMissing(_, tensor2, module)? = e2 else { Issue.record("got \(String(describing: e2))"); return }
            #expect(tensor2 == "base_model.model.model.layers.1.mlp.up_proj.lora_B.weight" && module == "model.layers.1.mlp.up_proj")
        }
    }

    @Test("LoRA on the output head is refused as not supported")
    func headTarget() throws {
        try withTempDir { dir in
            let adapter = try copyAdapter("llama-all-proj", into: dir) { $0["target_modules"] = ["q_proj", "lm_head"] }
            try rewriteTensors(adapter) { t in
                var t = t.filter { $0.key.contains("q_proj") }
                t["base_model.model.lm_head.lora_A.weight"] = Tensor(zeros: [4, 32])
                t["base_model.model.lm_head.lora_B.weight"] = Tensor(zeros: [96, 4])
                return t
            }
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(adapter) }
            guard case let .unsupportedAdapter(_, field, value, _)? = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(field == "target_modules" && value.contains("lm_head"))
        }
    }

    @Test("a modules_to_save tensor over a tied output head is refused, naming the tensor")
    func savedHeadOnTiedBase() throws {
        try withTempDir { dir in
            let adapter = try copyAdapter("gpt2-fan-in-fan-out", into: dir) { $0["modules_to_save"] = ["lm_head"] }
            try rewriteTensors(adapter) { t in
                var t = t
                t["base_model.model.lm_head.weight"] = Tensor(zeros: [96, 32])
                return t
            }
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(adapter) }
            guard case let .adapterTensorUnmatched(_, tensor, reason)? = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(tensor == "base_model.model.lm_head.weight" && reason.contains("tied"), "\(e?.description ?? "")")
        }
    }

    @Test("a base that cannot be found: error with a hint to pass --base")
    func baseNotFound() throws {
        try withTempDir { dir in
            let hub = try copyAdapter("llama-all-proj", into: dir, name: "hub") { $0["base_model_name_or_path"] = "meta-llama/Llama-2-7b-hf" }
            let e = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(hub) }
            guard case let .adapterBaseNotFound(file, reference, reason)? = e else { Issue.record("got \(String(describing: e))"); return }
            #expect(file.hasSuffix("hub/adapter_config.json") && reference == "meta-llama/Llama-2-7b-hf" && reason.contains("Hub id"))
            #expect(e?.hint.contains("--base") == true)

            let none = try copyAdapter("llama-all-proj", into: dir, name: "none") { $0["base_model_name_or_path"] = NSNull() }
            let e2 = #expect(throws: CheckpointError.self) { try CheckpointLoader().load(none) }
            guard case .adapterBaseNotFound(_, nil, _)? = e2 else { Issue.record("got \(String(describing: e2))"); return }
        }
    }

    @Test("every new error is one line naming a file, with a hint")
    func errorShape() {
        let errors: [CheckpointError] = [
            .missingAdapterConfig(directory: "/x"), .badAdapterConfig(file: "/x/adapter_config.json", field: "r", reason: "is missing"),
            .unsupportedAdapter(file: "/x/adapter_config.json", field: "use_dora", value: "true", reason: "r\nx"),
            .adapterTargetsNothing(file: "/x/adapter_config.json", field: "target_modules", targets: "[]", base: "/b"),
            .adapterTensorUnmatched(file: "/x/a.safetensors", tensor: "t", reason: "r"),
            .adapterTensorMissing(file: "/x/a.safetensors", tensor: "t", module: "m"),
            .adapterShapeMismatch(file: "/x/a.safetensors", tensor: "t", expected: [1], found: [2], reason: "r"),
            .adapterBaseMismatch(file: "/x/adapter_config.json", field: "f", adapter: "a", base: "b", basePath: "/b"),
            .adapterBaseNotFound(file: "/x/adapter_config.json", reference: nil, reason: "r"),
        ]
        for e in errors {
            #expect(!e.description.contains("\n") && e.description.contains("/x"), "\(e.description)")
            #expect(!e.hint.isEmpty)
        }
    }
}

// MARK: - benchmark (not a test; run on demand)

/// Merge vs factors, and adapter vs full checkpoints, on a synthetic Llama (random weights). Prints a table
/// for docs/lora.md. Run:
///   CPISCOPE_LORA_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter LoRABenchmark
@Suite("LoRA benchmark", .enabled(if: ProcessInfo.processInfo.environment["CPISCOPE_LORA_BENCH"] != nil))
struct LoRABenchmark {
    struct Shape { var d = 768, heads = 12, layers = 8, dMLP = 2048, vocab = 8192 }

    static func random(_ shape: [Int], seed: inout UInt64, std: Float) -> Tensor {
        let t = Tensor(zeros: shape)
        for i in 0..<t.count {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            t.pointer[i] = (Float(seed >> 40) / Float(1 << 24) - 0.5) * 3.46 * std
        }
        return t
    }

    static func linearNames(_ s: Shape) -> [(String, [Int])] {
        (0..<s.layers).flatMap { l -> [(String, [Int])] in
            let b = "model.layers.\(l)."
            return [(b + "self_attn.q_proj", [s.d, s.d]), (b + "self_attn.k_proj", [s.d, s.d]), (b + "self_attn.v_proj", [s.d, s.d]),
                    (b + "self_attn.o_proj", [s.d, s.d]), (b + "mlp.gate_proj", [s.dMLP, s.d]), (b + "mlp.up_proj", [s.dMLP, s.d]),
                    (b + "mlp.down_proj", [s.d, s.dMLP])]
        }
    }

    static func writeBase(_ dir: URL, _ s: Shape) throws -> [String: Tensor] {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var seed: UInt64 = 1
        var t: [String: Tensor] = ["model.embed_tokens.weight": random([s.vocab, s.d], seed: &seed, std: 0.02),
                                   "lm_head.weight": random([s.vocab, s.d], seed: &seed, std: 0.02),
                                   "model.norm.weight": Tensor(shape: [s.d], values: .init(repeating: 1, count: s.d))]
        for l in 0..<s.layers {
            for n in ["input_layernorm", "post_attention_layernorm"] {
                t["model.layers.\(l).\(n).weight"] = Tensor(shape: [s.d], values: .init(repeating: 1, count: s.d))
            }
        }
        for (n, shape) in linearNames(s) { t[n + ".weight"] = random(shape, seed: &seed, std: 0.02) }
        try SafeTensorsWriter.write(t, to: dir.appendingPathComponent("model.safetensors"))
        let config = """
        {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": \(s.d), "num_attention_heads": \(s.heads),
         "num_key_value_heads": \(s.heads), "num_hidden_layers": \(s.layers), "intermediate_size": \(s.dMLP),
         "vocab_size": \(s.vocab), "max_position_embeddings": 2048, "rms_norm_eps": 1e-6, "tie_word_embeddings": false}
        """
        try Data(config.utf8).write(to: dir.appendingPathComponent("config.json"))
        return t
    }

    /// An adapter over `targets` and the same checkpoint merged into a full model.
    static func writeAdapter(_ dir: URL, full: URL, base: URL, baseTensors: [String: Tensor], _ s: Shape, r: Int,
                             targets: [String], seed: UInt64) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: full, withIntermediateDirectories: true)
        var seed = seed
        var adapter: [String: Tensor] = [:]
        var merged = baseTensors
        let alpha = 2.0 * Double(r)
        for (n, shape) in linearNames(s) where targets.contains(where: { n.hasSuffix("." + $0) }) {
            let a = random([r, shape[1]], seed: &seed, std: 0.02), b = random([shape[0], r], seed: &seed, std: 0.002)
            adapter["base_model.model.\(n).lora_A.weight"] = a
            adapter["base_model.model.\(n).lora_B.weight"] = b
            merged[n + ".weight"] = mergedWeight(baseTensors[n + ".weight"]!, layout: .outIn, a: a, b: b, scale: Float(alpha / Double(r)))
        }
        try SafeTensorsWriter.write(adapter, to: dir.appendingPathComponent("adapter_model.safetensors"))
        let list = targets.map { "\"\($0)\"" }.joined(separator: ", ")
        let config = """
        {"peft_type": "LORA", "r": \(r), "lora_alpha": \(alpha), "target_modules": [\(list)], "bias": "none",
         "use_dora": false, "use_rslora": false, "base_model_name_or_path": "\(base.path)", "task_type": "CAUSAL_LM"}
        """
        try Data(config.utf8).write(to: dir.appendingPathComponent("adapter_config.json"))
        try SafeTensorsWriter.write(merged, to: full.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: base.appendingPathComponent("config.json"), to: full.appendingPathComponent("config.json"))
    }

    /// (wall ms, process CPU ms) of `body`.
    static func time(_ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
        func cpuNow() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) * 1e3 + Double(ts.tv_nsec) / 1e6
        }
        let w0 = DispatchTime.now().uptimeNanoseconds, c0 = cpuNow()
        try body()
        return (Double(DispatchTime.now().uptimeNanoseconds - w0) / 1e6, cpuNow() - c0)
    }

    /// Drops a file's pages from the page cache, so the next read comes from disk (only this file's pages).
    static func evict(_ url: URL) {
        #if os(Linux)
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { return }
        fsync(fd)
        _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
        close(fd)
        #endif
    }

    static func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
    static func f(_ x: Double) -> String { String(format: x < 10 ? "%.1f" : "%.0f", x) }

    @Test("merge vs factors; adapter vs full checkpoints (prints figures)")
    func run() throws {
        let s = Shape()
        try withTempDir { dir in
            let baseURL = dir.appendingPathComponent("base")
            let baseTensors = try Self.writeBase(baseURL, s)
            let weights = baseURL.appendingPathComponent("model.safetensors")
            let fileMB = Double((try FileManager.default.attributesOfItem(atPath: weights.path)[.size] as? Int) ?? 0) / 1e6
            print("LoRA benchmark: synthetic Llama, d_model \(s.d), \(s.layers) layers, d_mlp \(s.dMLP), vocab \(s.vocab); " +
                  "model.safetensors \(Self.f(fileMB)) MB F32; one thread; load average \(loadAverage())")
            Self.evict(weights)
            let hash = try Self.time { _ = try ContentHash.sha256(file: weights) }
            print("SHA-256 of model.safetensors (cold): wall \(Self.f(hash.wall)) ms, CPU \(Self.f(hash.cpu)) ms = \(Self.f(fileMB / hash.cpu * 1000)) MB/s per core")
            var rng = SystemRandomNumberGenerator()
            let ids = (0..<128).map { _ in Int.random(in: 0..<s.vocab, using: &rng) }
            let allLinear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
            for (title, r, targets) in [("r=128, all 7 projections", 128, allLinear), ("r=16, q_proj + v_proj", 16, ["q_proj", "v_proj"])] {
                var adapters: [URL] = [], fulls: [URL] = []
                for i in 0..<3 {
                    let a = dir.appendingPathComponent("\(r)-adapter-\(i)"), full = dir.appendingPathComponent("\(r)-full-\(i)")
                    try Self.writeAdapter(a, full: full, base: baseURL, baseTensors: baseTensors, s, r: r, targets: targets, seed: UInt64(7 + i))
                    adapters.append(a); fulls.append(full)
                }
                let adapterFile = adapters[0].appendingPathComponent("adapter_model.safetensors")
                let adapterMB = Double((try FileManager.default.attributesOfItem(atPath: adapterFile.path)[.size] as? Int) ?? 0) / 1e6
                print("\n\(title): adapter_model.safetensors \(Self.f(adapterMB)) MB; 3 checkpoints each; files evicted from the page cache before each load")
                print("| checkpoint kind | load wall / CPU ms | first 128-token forward wall / CPU ms | steady 128-token forward CPU ms |")
                print("|---|---|---|---|")
                for kind in ["adapter, merge", "adapter, factors", "full checkpoint"] {
                    let loader: CheckpointLoader
                    let folders: [URL]
                    switch kind {
                    case "adapter, merge": loader = CheckpointLoader(mode: .merge, hashContents: false); folders = adapters
                    case "adapter, factors": loader = CheckpointLoader(mode: .factors, hashContents: false); folders = adapters
                    default: loader = CheckpointLoader(hashContents: false); folders = fulls
                    }
                    if kind.hasPrefix("adapter") { _ = try loader.load(baseURL) }   // the base, once (not counted)
                    var load: [(wall: Double, cpu: Double)] = [], first: [(wall: Double, cpu: Double)] = [], steady: [Double] = []
                    for folder in folders {
                        Self.evict(folder.appendingPathComponent(kind.hasPrefix("adapter") ? "adapter_model.safetensors" : "model.safetensors"))
                        var model: DecoderModel? = nil
                        load.append(try Self.time { model = try loader.load(folder).model })
                        guard let m = model else { continue }
                        // one thread: CPU time then measures the work itself, even on a busy machine
                        first.append(try Self.time { _ = try m.forward(ids, logits: .last, compute: .serial) })
                        for _ in 0..<3 { steady.append(try Self.time { _ = try m.forward(ids, logits: .last, compute: .serial) }.cpu) }
                    }
                    let lw = Self.median(load.map(\.wall)), lc = Self.median(load.map(\.cpu))
                    let fw = Self.median(first.map(\.wall)), fc = Self.median(first.map(\.cpu))
                    print("| \(kind) | \(Self.f(lw)) / \(Self.f(lc)) | \(Self.f(fw)) / \(Self.f(fc)) | \(Self.f(Self.median(steady))) |")
                }
            }
        }
    }

    func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
    }
}

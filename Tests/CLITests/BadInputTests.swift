// Bad inputs through the real command line: each case builds one broken input in a temporary folder,
// runs `cpiscope`, and checks what the user sees — the exit status, ONE `error:` line naming the file /
// field / tensor / probe at fault, and a `hint:` line (usage errors: ArgumentParser's `Error:` line
// and exit status 64) — and that no signal ended the process. docs/bad-inputs.md lists every case by
// its id. With CPISCOPE_BAD_INPUTS_DIR set, each case also writes its observed row there (how the
// docs table was made).
import Foundation
import Testing

struct BadInput: Sendable, CustomTestStringConvertible {
    let id: String
    /// What is wrong, in words (the docs' first column).
    let input: String
    /// Exit status: 1 for errors from the libraries, 64 for command-line usage errors.
    let status: Int32
    /// Substrings of the error line (the whole stderr for usage errors).
    let expect: [String]
    /// Whether the run must leave no output file at `dir/run.h5`.
    var noOutput = true
    /// Builds the input in the folder and returns cpiscope's arguments.
    let setup: @Sendable (URL) throws -> [String]

    var testDescription: String { id }
}

// MARK: builders

let trajectory = Paths.trajectory
let goodProbes = Paths.trajectory.appendingPathComponent("probes.jsonl").path
let probeFixtures = Paths.fixtures.appendingPathComponent("probes")

func write(_ text: String, _ url: URL) throws {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(text.utf8).write(to: url)
}

/// A copy of probe-trajectory/checkpoint-0 (config.json, model.safetensors; no tokenizer) at dir/ckpt.
func copyCheckpoint(_ dir: URL, name: String = "ckpt") throws -> URL {
    let ck = dir.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: ck, withIntermediateDirectories: true)
    for f in ["config.json", "model.safetensors"] {
        try FileManager.default.copyItem(at: trajectory.appendingPathComponent("checkpoint-0/\(f)"), to: ck.appendingPathComponent(f))
    }
    return ck
}

/// A checkpoint copy whose weights are Tests/Fixtures/torch-bin/bad/<file> as pytorch_model.bin (no model.safetensors).
func torchBinCheckpoint(_ dir: URL, _ file: String) throws -> [String] {
    let ck = try copyCheckpoint(dir)
    try FileManager.default.removeItem(at: ck.appendingPathComponent("model.safetensors"))
    try FileManager.default.copyItem(at: Paths.fixtures.appendingPathComponent("torch-bin/bad/" + file),
                                     to: ck.appendingPathComponent("pytorch_model.bin"))
    return probeArgs(ck, dir)
}

/// Rewrites the JSON header of a safetensors file (the data bytes are kept; offsets are relative to them).
func rewriteHeader(_ file: URL, _ change: (inout [String: Any]) -> Void) throws {
    let bytes = [UInt8](try Data(contentsOf: file))
    let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
    var header = try #require(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
    change(&header)
    var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
    while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
    let length = UInt64(json.count)
    try Data((0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + json + bytes[(8 + n)...]).write(to: file)
}

/// A config.json edit on a checkpoint copy.
func editConfig(_ ck: URL, _ change: (inout [String: Any]) -> Void) throws {
    let url = ck.appendingPathComponent("config.json")
    var c = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    change(&c)
    try JSONSerialization.data(withJSONObject: c).write(to: url)
}

/// probe args for a checkpoint with the fixture tokenizer and probes.
func probeArgs(_ ck: URL, _ dir: URL, _ extra: [String] = []) -> [String] {
    ["probe", ck.path, "--tokenizer", trajectory.path, "--probes", goodProbes, "-o", dir.appendingPathComponent("run.h5").path] + extra
}

func trajectoryArgs(_ dir: URL, probes: String = goodProbes, _ extra: [String] = []) -> [String] {
    ["probe", trajectory.path, "--probes", probes, "-o", dir.appendingPathComponent("run.h5").path] + extra
}

extension Array where Element == String {
    /// The arguments with the first `old` replaced (the subcommand of a shared argument list).
    func replacingFirst(_ old: String, with new: String) -> [String] {
        var a = self
        if let i = a.firstIndex(of: old) { a[i] = new }
        return a
    }
}

// MARK: the cases

let badInputs: [BadInput] = [
    // Checkpoints and their folders
    BadInput(id: "trajectory-missing", input: "the trajectory path does not exist", status: 1,
             expect: ["not a checkpoint folder", "no such file"]) { d in
        ["probe", d.appendingPathComponent("nowhere").path, "--probes", goodProbes, "-o", d.appendingPathComponent("run.h5").path]
    },
    BadInput(id: "trajectory-empty", input: "a folder with no weights and no checkpoint-N subfolders", status: 1,
             expect: ["not a checkpoint folder"]) { d in
        let e = d.appendingPathComponent("empty"); try FileManager.default.createDirectory(at: e, withIntermediateDirectories: true)
        return ["probe", e.path, "--probes", goodProbes, "-o", d.appendingPathComponent("run.h5").path]
    },
    BadInput(id: "config-missing", input: "a checkpoint without config.json", status: 1, expect: ["config.json"]) { d in
        let ck = try copyCheckpoint(d); try FileManager.default.removeItem(at: ck.appendingPathComponent("config.json"))
        return probeArgs(ck, d)
    },
    BadInput(id: "config-not-json", input: "config.json is not JSON", status: 1, expect: ["config.json"]) { d in
        let ck = try copyCheckpoint(d); try write("{\"model_type\": \"llama\",", ck.appendingPathComponent("config.json"))
        return probeArgs(ck, d)
    },
    BadInput(id: "config-unknown-architecture", input: "config.json model_type is not supported (bert)", status: 1,
             expect: ["config.json", "bert"]) { d in
        let ck = try copyCheckpoint(d); try editConfig(ck) { $0["model_type"] = "bert" }
        return probeArgs(ck, d)
    },
    BadInput(id: "config-missing-field", input: "config.json lacks hidden_size", status: 1, expect: ["config.json", "hidden_size"]) { d in
        let ck = try copyCheckpoint(d); try editConfig(ck) { $0["hidden_size"] = nil }
        return probeArgs(ck, d)
    },
    BadInput(id: "config-zero-heads", input: "config.json num_attention_heads is 0", status: 1,
             expect: ["config.json", "num_attention_heads"]) { d in
        let ck = try copyCheckpoint(d); try editConfig(ck) { $0["num_attention_heads"] = 0 }
        return probeArgs(ck, d)
    },
    BadInput(id: "config-deeply-nested", input: "config.json of 100,000 nested arrays", status: 1, expect: ["config.json"]) { d in
        let ck = try copyCheckpoint(d); try write("{\"a\": " + String(repeating: "[", count: 100_000), ck.appendingPathComponent("config.json"))
        return probeArgs(ck, d)
    },
    BadInput(id: "config-huge-vocab", input: "config.json vocab_size is 10^12 (weights would need terabytes)", status: 1,
             expect: ["config.json", "vocab_size"]) { d in
        let ck = try copyCheckpoint(d); try editConfig(ck) { $0["vocab_size"] = 1_000_000_000_000 }
        return probeArgs(ck, d)
    },
    BadInput(id: "inspect-config-more-layers", input: "inspect: config.json declares 3 layers, the weights hold 2", status: 1,
             expect: ["config.json implies", "model.layers.2.self_attn.q_proj.weight"]) { d in
        let ck = try copyCheckpoint(d); try editConfig(ck) { $0["num_hidden_layers"] = 3 }
        return ["inspect", ck.path]
    },
    BadInput(id: "generation-config-bad-eos", input: "generation_config.json eos_token_id is a string", status: 1,
             expect: ["generation_config.json", "eos_token_id"]) { d in
        let ck = try copyCheckpoint(d); try write("{\"eos_token_id\": \"</s>\"}", ck.appendingPathComponent("generation_config.json"))
        return probeArgs(ck, d)
    },
    BadInput(id: "intervene-unknown-component", input: "intervene: --components names a component that does not exist", status: 1,
             expect: ["--components", "unknown component 'attn.xy'"]) { d in
        trajectoryArgs(d, ["--transplant-from", "checkpoint-0", "--components", "attn.xy"]).replacingFirst("probe", with: "intervene")
    },
    BadInput(id: "intervene-head-out-of-range", input: "intervene: --ablate names a head the model does not have", status: 1,
             expect: ["--ablate", "head 9 is outside the model's heads 0–3"]) { d in
        trajectoryArgs(d, ["--ablate", "heads:0.9"]).replacingFirst("probe", with: "intervene")
    },
    BadInput(id: "intervene-layer-out-of-range", input: "intervene: --ablate names a layer the model does not have", status: 1,
             expect: ["--ablate", "layer 40 is outside the model's layers 0–1"]) { d in
        trajectoryArgs(d, ["--ablate", "heads:40.0"]).replacingFirst("probe", with: "intervene")
    },
    BadInput(id: "intervene-source-unknown", input: "intervene: --transplant-from names no checkpoint of the trajectory (with --checkpoints selecting another)", status: 1,
             expect: ["'checkpoint-60'", "checkpoint-0, checkpoint-10, checkpoint-20"]) { d in
        trajectoryArgs(d, ["--checkpoints", "checkpoint-20", "--transplant-from", "checkpoint-60", "--components", "mlp"])
            .replacingFirst("probe", with: "intervene")
    },
    BadInput(id: "intervene-source-other-model", input: "intervene: the transplant source is a checkpoint of another model (GPT-2 into Llama)", status: 1,
             expect: ["differs from the trajectory's"]) { d in
        trajectoryArgs(d, ["--transplant-from", Paths.gpt2.path, "--components", "mlp"]).replacingFirst("probe", with: "intervene")
    },
    // Weights (model.safetensors)
    BadInput(id: "safetensors-too-small", input: "model.safetensors shorter than its 8-byte length prefix", status: 1,
             expect: ["model.safetensors"]) { d in
        let ck = try copyCheckpoint(d); try Data([1, 2, 3, 4]).write(to: ck.appendingPathComponent("model.safetensors"))
        return probeArgs(ck, d)
    },
    BadInput(id: "safetensors-header-past-end", input: "model.safetensors header length points past the end of the file", status: 1,
             expect: ["model.safetensors", "header"]) { d in
        let ck = try copyCheckpoint(d)
        try Data(safetensorsImage(header: "{}", declaredLength: 5_000)).write(to: ck.appendingPathComponent("model.safetensors"))
        return probeArgs(ck, d)
    },
    BadInput(id: "safetensors-header-huge", input: "model.safetensors header length 2^64 − 1 (over the 100 MB limit)", status: 1,
             expect: ["model.safetensors", "header"]) { d in
        let ck = try copyCheckpoint(d)
        try Data(safetensorsImage(header: "{}", declaredLength: .max)).write(to: ck.appendingPathComponent("model.safetensors"))
        return probeArgs(ck, d)
    },
    BadInput(id: "safetensors-header-not-json", input: "model.safetensors header is not JSON", status: 1,
             expect: ["model.safetensors"]) { d in
        let ck = try copyCheckpoint(d)
        try Data(safetensorsImage(header: "{\"w\": [1, 2")).write(to: ck.appendingPathComponent("model.safetensors"))
        return probeArgs(ck, d)
    },
    BadInput(id: "safetensors-truncated", input: "model.safetensors cut short (a download that stopped)", status: 1,
             expect: ["model.safetensors"]) { d in
        let ck = try copyCheckpoint(d)
        let url = ck.appendingPathComponent("model.safetensors")
        let bytes = try Data(contentsOf: url)
        try bytes.prefix(bytes.count - 1000).write(to: url)
        return probeArgs(ck, d)
    },
    BadInput(id: "safetensors-unknown-dtype", input: "a tensor with dtype \"F33\"", status: 1, expect: ["model.safetensors", "F33"]) { d in
        let ck = try copyCheckpoint(d)
        try rewriteHeader(ck.appendingPathComponent("model.safetensors")) { h in
            if var t = h["model.norm.weight"] as? [String: Any] { t["dtype"] = "F33"; h["model.norm.weight"] = t }
        }
        return probeArgs(ck, d)
    },
    BadInput(id: "safetensors-size-overflow", input: "a tensor shape whose element count overflows 64 bits", status: 1,
             expect: ["model.safetensors", "overflow"]) { d in
        let ck = try copyCheckpoint(d)
        try rewriteHeader(ck.appendingPathComponent("model.safetensors")) { h in
            if var t = h["model.norm.weight"] as? [String: Any] { t["shape"] = [4294967296, 4294967296, 4294967296]; h["model.norm.weight"] = t }
        }
        return probeArgs(ck, d)
    },
    BadInput(id: "safetensors-missing-tensor", input: "a tensor the architecture needs is absent (renamed)", status: 1,
             expect: ["model.norm.weight"], noOutput: false) { d in
        let ck = try copyCheckpoint(d)
        try rewriteHeader(ck.appendingPathComponent("model.safetensors")) { h in
            h["model.norm.renamed"] = h["model.norm.weight"]; h["model.norm.weight"] = nil
        }
        return probeArgs(ck, d)
    },
    BadInput(id: "safetensors-wrong-shape", input: "a tensor whose shape disagrees with config.json", status: 1,
             expect: ["model.norm.weight"], noOutput: false) { d in
        let ck = try copyCheckpoint(d)
        try rewriteHeader(ck.appendingPathComponent("model.safetensors")) { h in
            if var t = h["model.norm.weight"] as? [String: Any] { t["shape"] = [2, 16]; h["model.norm.weight"] = t }
        }
        return probeArgs(ck, d)
    },
    // Tokenizer
    BadInput(id: "tokenizer-missing", input: "no tokenizer.json in the checkpoint or trajectory folder, no --tokenizer", status: 1,
             expect: ["no tokenizer.json"]) { d in
        let ck = try copyCheckpoint(d)
        return ["probe", ck.path, "--probes", goodProbes, "-o", d.appendingPathComponent("run.h5").path]
    },
    BadInput(id: "tokenizer-not-json", input: "tokenizer.json is not JSON", status: 1, expect: ["tokenizer.json", "JSON"]) { d in
        try write("{\"model\": {\"type\": \"BPE\", ", d.appendingPathComponent("tok/tokenizer.json"))
        return ["probe", trajectory.appendingPathComponent("checkpoint-0").path, "--tokenizer", d.appendingPathComponent("tok").path,
                "--probes", goodProbes, "-o", d.appendingPathComponent("run.h5").path]
    },
    BadInput(id: "tokenizer-repeated-key", input: "a tokenizer.json whose vocabulary gives one token twice", status: 1,
             expect: ["tokenizer.json", "duplicate key \"b\""]) { d in
        try write(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "b": 2}, "merges": []}}"#, d.appendingPathComponent("tok/tokenizer.json"))
        return ["probe", trajectory.appendingPathComponent("checkpoint-0").path, "--tokenizer", d.appendingPathComponent("tok").path,
                "--probes", goodProbes, "-o", d.appendingPathComponent("run.h5").path]
    },
    BadInput(id: "tokenizer-unsupported-model", input: "tokenizer.json with a WordPiece model", status: 1,
             expect: ["tokenizer.json", "WordPiece"]) { d in
        try write(#"{"model": {"type": "WordPiece", "vocab": {"a": 0}, "unk_token": "a"}}"#, d.appendingPathComponent("tok/tokenizer.json"))
        return ["probe", trajectory.appendingPathComponent("checkpoint-0").path, "--tokenizer", d.appendingPathComponent("tok").path,
                "--probes", goodProbes, "-o", d.appendingPathComponent("run.h5").path]
    },
    BadInput(id: "tokenizer-unknown-merge", input: "a tokenizer.json merge names a token missing from the vocabulary", status: 1,
             expect: ["tokenizer.json", "merges"]) { d in
        try write(#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", "a zz"]}}"#,
                  d.appendingPathComponent("tok/tokenizer.json"))
        return ["probe", trajectory.appendingPathComponent("checkpoint-0").path, "--tokenizer", d.appendingPathComponent("tok").path,
                "--probes", goodProbes, "-o", d.appendingPathComponent("run.h5").path]
    },
    BadInput(id: "tokenizer-mismatch", input: "two checkpoints of one run with different tokenizer.json files", status: 1,
             expect: ["tokenizer.json differs"]) { d in
        let a = try copyCheckpoint(d, name: "checkpoint-1"), b = try copyCheckpoint(d, name: "checkpoint-2")
        try FileManager.default.copyItem(at: trajectory.appendingPathComponent("tokenizer.json"), to: a.appendingPathComponent("tokenizer.json"))
        var other = try String(contentsOf: trajectory.appendingPathComponent("tokenizer.json"), encoding: .utf8)
        other += "\n"
        try write(other, b.appendingPathComponent("tokenizer.json"))
        return ["probe", a.path, b.path, "--probes", goodProbes, "-o", d.appendingPathComponent("run.h5").path]
    },
    // Probe files
    BadInput(id: "probes-missing", input: "the --probes file does not exist", status: 1, expect: ["nowhere.jsonl"]) { d in
        trajectoryArgs(d, probes: d.appendingPathComponent("nowhere.jsonl").path)
    },
    BadInput(id: "probes-empty", input: "an empty probe file", status: 1, expect: ["empty.jsonl", "empty"]) { d in
        trajectoryArgs(d, probes: probeFixtures.appendingPathComponent("empty.jsonl").path)
    },
    BadInput(id: "probes-invalid-jsonl", input: "a JSONL line that is not complete JSON", status: 1,
             expect: ["invalid_jsonl.jsonl line 2", "not valid JSON"]) { d in
        trajectoryArgs(d, probes: probeFixtures.appendingPathComponent("invalid_jsonl.jsonl").path)
    },
    BadInput(id: "probes-missing-field", input: "a probe without \"answer\"", status: 1,
             expect: ["missing_field.jsonl line 3", "missing field 'answer'"]) { d in
        trajectoryArgs(d, probes: probeFixtures.appendingPathComponent("missing_field.jsonl").path)
    },
    BadInput(id: "probes-wrong-type", input: "a probe whose answer is a number", status: 1,
             expect: ["wrong_type.jsonl line 2", "'answer'", "string"]) { d in
        trajectoryArgs(d, probes: probeFixtures.appendingPathComponent("wrong_type.jsonl").path)
    },
    BadInput(id: "probes-duplicate-id", input: "two probes with the same id", status: 1, expect: ["duplicate probe id 'dup'"]) { d in
        trajectoryArgs(d, probes: probeFixtures.appendingPathComponent("duplicate_ids.jsonl").path)
    },
    BadInput(id: "probes-not-utf8", input: "a probe file with invalid UTF-8", status: 1, expect: ["bad_utf8.jsonl", "UTF-8"]) { d in
        trajectoryArgs(d, probes: probeFixtures.appendingPathComponent("bad_utf8.jsonl").path)
    },
    BadInput(id: "probes-conflicting-answers", input: "memory_answer and parametric_answer both given and different", status: 1,
             expect: ["conflicting_memory.jsonl", "memory_answer", "parametric_answer"]) { d in
        trajectoryArgs(d, probes: probeFixtures.appendingPathComponent("conflicting_memory.jsonl").path)
    },
    BadInput(id: "probes-context-1mb", input: "a probe whose context is 1 MB", status: 1, expect: ["'context'", "over the limit of 65536"]) { d in
        let p = d.appendingPathComponent("big.jsonl")
        let obj: [String: Any] = ["context": String(repeating: "x", count: 1 << 20), "question": "q?", "answer": "a", "memory_answer": "b"]
        try JSONSerialization.data(withJSONObject: obj).write(to: p)
        return trajectoryArgs(d, probes: p.path)
    },
    BadInput(id: "probes-deeply-nested", input: "a probe file of 100,000 nested arrays", status: 1,
             expect: ["deep.json", "not valid JSON", "nested"]) { d in
        try write(String(repeating: "[", count: 100_000), d.appendingPathComponent("deep.json"))
        return trajectoryArgs(d, probes: d.appendingPathComponent("deep.json").path)
    },
    BadInput(id: "probes-repeated-field", input: "a probe that gives \"answer\" twice", status: 1,
             expect: ["twice.jsonl line 1", "duplicate key \"answer\""]) { d in
        try write(#"{"context": "Lyon is the capital.", "question": "What is the capital of France?", "answer": "Lyon", "answer": "Paris", "memory_answer": "Paris"}"#,
                  d.appendingPathComponent("twice.jsonl"))
        return trajectoryArgs(d, probes: d.appendingPathComponent("twice.jsonl").path)
    },
    // Templates
    BadInput(id: "template-unknown-placeholder", input: "a template file with {hint}", status: 1,
             expect: ["template_unknown_placeholder.txt", "{hint}"]) { d in
        trajectoryArgs(d, ["--template-file", probeFixtures.appendingPathComponent("template_unknown_placeholder.txt").path])
    },
    BadInput(id: "template-missing-question", input: "a template file without {question}", status: 1,
             expect: ["template_missing_question.txt", "{question}"]) { d in
        trajectoryArgs(d, ["--template-file", probeFixtures.appendingPathComponent("template_missing_question.txt").path])
    },
    BadInput(id: "template-unknown-name", input: "--template with an unknown name", status: 64,
             expect: ["unknown --template 'chatml'"]) { d in trajectoryArgs(d, ["--template", "chatml"]) },
    // Prompts
    BadInput(id: "prompt-over-model-positions", input: "a prompt longer than the model's positions (GPT-2, 256)", status: 1,
             expect: ["probe 'long'", "over the model's position limit of 256"]) { d in
        let p = d.appendingPathComponent("long.jsonl")
        let obj: [String: Any] = ["id": "long", "context": String(repeating: "France moved its capital. ", count: 120),
                                  "question": "What is the capital of France?", "answer": "Marseille", "memory_answer": "Paris"]
        try JSONSerialization.data(withJSONObject: obj).write(to: p)
        return ["probe", Paths.gpt2.path, "--probes", p.path, "-o", d.appendingPathComponent("run.h5").path]
    },
    BadInput(id: "prompt-over-max-tokens", input: "a prompt longer than --max-tokens", status: 1,
             expect: ["over the --max-tokens limit of 16"]) { d in trajectoryArgs(d, ["--max-tokens", "16"]) },
    BadInput(id: "max-tokens-zero", input: "--max-tokens 0", status: 64, expect: ["--max-tokens must be ≥ 1"]) { d in
        trajectoryArgs(d, ["--max-tokens", "0"])
    },
    BadInput(id: "dump-layer-out-of-range", input: "--dump names a layer the model does not have", status: 1,
             expect: ["--dump layer 7", "layers 0–1"]) { d in trajectoryArgs(d, ["--dump", "7"]) },
    BadInput(id: "mixed-architectures", input: "a Llama and a GPT-2 checkpoint in one run", status: 1,
             expect: ["probe-gpt2", "gpt2", "llama"]) { d in
        ["probe", trajectory.appendingPathComponent("checkpoint-0").path, Paths.gpt2.path, "--tokenizer", trajectory.path,
         "--probes", goodProbes, "-o", d.appendingPathComponent("run.h5").path]
    },
    BadInput(id: "checkpoints-select-nothing", input: "--checkpoints selects no checkpoint", status: 1,
             expect: ["steps:1000-2000"]) { d in trajectoryArgs(d, ["--checkpoints", "steps:1000-2000"]) },
    // PyTorch checkpoints (pytorch_model.bin) and tuned lenses; inputs from Tests/Fixtures/torch-bin (docs/torch-bin.md)
    BadInput(id: "torch-bin-posix-system", input: "pytorch_model.bin whose pickle imports posix.system", status: 1,
             expect: ["pytorch_model.bin", "'posix.system' is not allowed"]) { d in try torchBinCheckpoint(d, "posix-system.bin") },
    BadInput(id: "torch-bin-forbidden-opcode", input: "pytorch_model.bin whose pickle uses the INST opcode", status: 1,
             expect: ["pytorch_model.bin", "INST"]) { d in try torchBinCheckpoint(d, "opcode-inst.bin") },
    BadInput(id: "torch-bin-storage-short", input: "pytorch_model.bin with a tensor longer than its storage", status: 1,
             expect: ["pytorch_model.bin", "tensor 'w'", "storage '0'"]) { d in try torchBinCheckpoint(d, "storage-short.bin") },
    BadInput(id: "torch-bin-compressed", input: "pytorch_model.bin with a deflated storage (a zip bomb)", status: 1,
             expect: ["pytorch_model.bin", "archive/data/0", "compressed"]) { d in try torchBinCheckpoint(d, "zip-bomb.bin") },
    BadInput(id: "torch-bin-path-traversal", input: "pytorch_model.bin with an entry named ../../../tmp/evil", status: 1,
             expect: ["pytorch_model.bin", "../../../tmp/evil"]) { d in try torchBinCheckpoint(d, "path-traversal.bin") },
    BadInput(id: "torch-bin-legacy", input: "pytorch_model.bin in the legacy (pre-1.6) format", status: 1,
             expect: ["pytorch_model.bin", "legacy PyTorch format"]) { d in try torchBinCheckpoint(d, "legacy.bin") },
    BadInput(id: "tuned-lens-wrong-depth", input: "--lens tuned: a lens made for a 3-layer model", status: 1,
             expect: ["tuned-lens-3-layers", "num_hidden_layers = 3", "has 2"]) { d in
        trajectoryArgs(d, ["--lens", "tuned:" + Paths.fixtures.appendingPathComponent("torch-bin/tuned-lens-3-layers").path])
    },
    BadInput(id: "lens-bad-syntax", input: "--lens without the tuned: prefix", status: 64,
             expect: ["--lens takes tuned:PATH"]) { d in trajectoryArgs(d, ["--lens", "some/folder"]) },
    // Chat templates (--template chat; cpiscope template render)
    BadInput(id: "chat-no-template", input: "--template chat with a tokenizer folder that has no chat template", status: 1,
             expect: ["has no chat template", "chat_template.jinja"]) { d in
        try FileManager.default.copyItem(at: trajectory.appendingPathComponent("tokenizer.json"), to: d.appendingPathComponent("tokenizer.json"))
        return trajectoryArgs(d, ["--template", "chat", "--tokenizer", d.path])
    },
    BadInput(id: "chat-template-raises", input: "--template chat: the model's template refuses a system message (raise_exception)", status: 1,
             expect: ["raised", "System role not supported"]) { d in
        try FileManager.default.copyItem(at: trajectory.appendingPathComponent("tokenizer.json"), to: d.appendingPathComponent("tokenizer.json"))
        try write("{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ messages[0]['content'] }}",
                  d.appendingPathComponent("chat_template.jinja"))
        return trajectoryArgs(d, ["--template", "chat", "--tokenizer", d.path, "--system", "Be brief."])
    },
    BadInput(id: "chat-template-syntax", input: "--template chat: a chat template with an unclosed {% if %}", status: 1,
             expect: ["chat_template.jinja", "line 1"]) { d in
        try FileManager.default.copyItem(at: trajectory.appendingPathComponent("tokenizer.json"), to: d.appendingPathComponent("tokenizer.json"))
        try write("{% if messages %}{{ messages[0]['content'] }}", d.appendingPathComponent("chat_template.jinja"))
        return trajectoryArgs(d, ["--template", "chat", "--tokenizer", d.path])
    },
    BadInput(id: "chat-drops-user-message", input: "--template chat: a template that never prints the user's message", status: 1,
             expect: ["chat_template.jinja", "does not print the user message"]) { d in
        try FileManager.default.copyItem(at: trajectory.appendingPathComponent("tokenizer.json"), to: d.appendingPathComponent("tokenizer.json"))
        try write("<s>[INST] hello [/INST]", d.appendingPathComponent("chat_template.jinja"))
        return trajectoryArgs(d, ["--template", "chat", "--tokenizer", d.path])
    },
    BadInput(id: "chat-options-without-chat", input: "--system without --template chat", status: 64,
             expect: ["need --template chat"]) { d in trajectoryArgs(d, ["--system", "Be brief."]) },
    BadInput(id: "template-render-not-array", input: "template render: a messages file that is one object, not an array", status: 1,
             expect: ["m.json", "expected a JSON array"]) { d in
        try write("{\"role\": \"user\", \"content\": \"hi\"}", d.appendingPathComponent("m.json"))
        return ["template", "render", trajectory.path, "--messages", d.appendingPathComponent("m.json").path]
    },
    BadInput(id: "template-render-no-content", input: "template render: a message without content", status: 1,
             expect: ["m.json", "message 1", "\"content\""]) { d in
        try write("[{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\"}]", d.appendingPathComponent("m.json"))
        return ["template", "render", trajectory.path, "--messages", d.appendingPathComponent("m.json").path]
    },
    // Instruction data (`cpiscope criticality`, docs/criticality.md)
    BadInput(id: "criticality-row-missing-field", input: "criticality: a data row without its instruction", status: 1,
             expect: ["data.jsonl", "row 2 has no 'instruction' field"]) { d in
        try write("{\"instruction\": \"Q\", \"output\": \"R\"}\n{\"input\": \"C\", \"output\": \"R\"}\n", d.appendingPathComponent("data.jsonl"))
        return criticalityArgs(d)
    },
    BadInput(id: "criticality-not-json", input: "criticality: a data file that is CSV, not JSON", status: 1,
             expect: ["data.jsonl", "not JSON"]) { d in
        try write("instruction,input,output\nQ,C,R\n", d.appendingPathComponent("data.jsonl"))
        return criticalityArgs(d)
    },
    BadInput(id: "criticality-invalid-utf8", input: "criticality: invalid UTF-8 in a data row", status: 1,
             expect: ["data.jsonl", "invalid UTF-8 on line 2"]) { d in
        try Data(Array("{\"instruction\": \"Q\", \"output\": \"R\"}\n{\"instruction\": \"".utf8) + [0xFF] + Array("\", \"output\": \"R\"}\n".utf8))
            .write(to: d.appendingPathComponent("data.jsonl"))
        return criticalityArgs(d)
    },
    BadInput(id: "criticality-field-not-string", input: "criticality: an output that is a number", status: 1,
             expect: ["data.jsonl", "'output' is a number"]) { d in
        try write("[{\"instruction\": \"Q\", \"output\": 3}]", d.appendingPathComponent("data.jsonl"))
        return criticalityArgs(d)
    },
    BadInput(id: "criticality-template-file", input: "criticality: a template file without {context} in with_context", status: 1,
             expect: ["tmpl.json", "no {context}"]) { d in
        try write("{\"instruction\": \"Q\", \"output\": \"R\"}\n", d.appendingPathComponent("data.jsonl"))
        try write("{\"with_context\": \"{instruction}\", \"without_context\": \"{instruction}\"}", d.appendingPathComponent("tmpl.json"))
        return criticalityArgs(d, ["--template-file", d.appendingPathComponent("tmpl.json").path])
    },
    BadInput(id: "criticality-bad-percent", input: "criticality: --filter-lowest 120%", status: 64,
             expect: ["--filter-lowest '120%'"]) { d in
        try write("{\"instruction\": \"Q\", \"output\": \"R\"}\n", d.appendingPathComponent("data.jsonl"))
        return criticalityArgs(d, ["--filter-lowest", "120%", "--write-filtered", d.appendingPathComponent("f.jsonl").path])
    },
    BadInput(id: "criticality-filter-in-shard", input: "criticality: --write-filtered on one shard", status: 64,
             expect: ["--write-filtered and --csv need every example"]) { d in
        try write("{\"instruction\": \"Q\", \"output\": \"R\"}\n", d.appendingPathComponent("data.jsonl"))
        return criticalityArgs(d, ["--shard", "1/2", "--write-filtered", d.appendingPathComponent("f.jsonl").path])
    },
    BadInput(id: "criticality-empty-shard", input: "criticality: more example shards than scoring batches", status: 1,
             expect: ["shard 2/2", "1 scoring batch"]) { d in
        try write("{\"instruction\": \"Q\", \"output\": \"R\"}\n", d.appendingPathComponent("data.jsonl"))
        return criticalityArgs(d, ["--shard", "2/2", "--shard-by", "examples"])
    },
    // Output
    BadInput(id: "output-folder-missing", input: "the -o folder does not exist", status: 1, expect: ["output folder does not exist"]) { d in
        ["probe", trajectory.path, "--probes", goodProbes, "-o", d.appendingPathComponent("no/such/run.h5").path]
    },
    BadInput(id: "output-exists", input: "the output file exists (no --force / --resume)", status: 1,
             expect: ["run.h5", "already exists"], noOutput: false) { d in
        try write("precious", d.appendingPathComponent("run.h5"))
        return trajectoryArgs(d)
    },
    BadInput(id: "force-and-resume", input: "--force together with --resume", status: 64,
             expect: ["--force and --resume exclude each other"]) { d in trajectoryArgs(d, ["--force", "--resume"]) },
    BadInput(id: "resume-not-a-run", input: "--resume on a file that is not a cpiscope run", status: 1,
             expect: ["run.h5"], noOutput: false) { d in
        try write("not hdf5 at all", d.appendingPathComponent("run.h5"))
        return trajectoryArgs(d, ["--resume"])
    },
    BadInput(id: "resume-different-probes", input: "--resume with another probe set than the file's", status: 1,
             expect: ["cannot resume", "probes differ"], noOutput: false) { d in
        let first = try Exec.cpiscope(trajectoryArgs(d, ["--quiet"]))
        guard first.status == 0 else { throw TestFailure("setup run failed: \(first.summary)") }
        return trajectoryArgs(d, probes: probeFixtures.appendingPathComponent("valid_mixed.jsonl").path, ["--resume"])
    },
    BadInput(id: "output-disk-full", input: "the output device is full (-o /dev/full)", status: 1,
             expect: ["/dev/full", "disk full"], noOutput: false) { _ in
        ["probe", trajectory.path, "--probes", goodProbes, "-o", "/dev/full", "--force"]
    },
    // Attribution patching (docs/attribution.md)
    BadInput(id: "attribute-baseline-unknown", input: "attribute: --baseline checkpoint: names no checkpoint of the trajectory", status: 1,
             expect: ["checkpoint:checkpoint-60", "no such checkpoint"]) { d in
        trajectoryArgs(d, ["--baseline", "checkpoint:checkpoint-60"]).replacingFirst("probe", with: "attribute")
    },
    BadInput(id: "attribute-baseline-other-model", input: "attribute: the baseline checkpoint is another model (GPT-2 into Llama)", status: 1,
             expect: ["probe-gpt2", "the baseline checkpoint is gpt2"]) { d in
        trajectoryArgs(d, ["--baseline", "checkpoint:\(Paths.gpt2.path)"]).replacingFirst("probe", with: "attribute")
    },
    BadInput(id: "attribute-unknown-component", input: "attribute: --components names a component that does not exist", status: 64,
             expect: ["unknown component 'attn'"]) { d in
        trajectoryArgs(d, ["--components", "heads,attn"]).replacingFirst("probe", with: "attribute")
    },
]

/// `cpiscope criticality` on the fixture trajectory's first checkpoint with DIR/data.jsonl.
func criticalityArgs(_ d: URL, _ extra: [String] = []) -> [String] {
    ["criticality", trajectory.appendingPathComponent("checkpoint-0").path, "--tokenizer", trajectory.path,
     "--data", d.appendingPathComponent("data.jsonl").path, "-o", d.appendingPathComponent("run.h5").path] + extra
}

@Suite("Bad inputs through the CLI (docs/bad-inputs.md)", .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)))
struct BadInputTests {
    @Test("at least 25 distinct bad inputs, with distinct ids")
    func count() {
        #expect(badInputs.count >= 25)
        #expect(Set(badInputs.map(\.id)).count == badInputs.count)
    }

    @Test("each bad input: the documented exit status, one error line naming the culprit, a hint, no crash", arguments: badInputs)
    func badInput(_ c: BadInput) throws {
        let dir = try makeTempDir("bad-\(c.id)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let args = try c.setup(dir)
        let r = try Exec.cpiscope(args, timeout: 300)
        #expect(r.exitedNormally, "\(c.id): ended by a signal: \(r.summary)")
        #expect(r.status == c.status, "\(c.id): exit status \(r.status), expected \(c.status): \(r.stderr)")
        let lines = r.stderr.split(separator: "\n").map(String.init)
        let shown: String
        if c.status == 64 {
            // ArgumentParser's usage error: "Error: …" then the usage lines.
            shown = lines.first { $0.hasPrefix("Error: ") } ?? ""
            #expect(!shown.isEmpty, "\(c.id): no 'Error:' line: \(r.stderr)")
        } else {
            let errors = lines.filter { $0.hasPrefix("error: ") }
            #expect(errors.count == 1, "\(c.id): expected one error line: \(r.stderr)")
            #expect(r.hintLine != nil, "\(c.id): no hint line: \(r.stderr)")
            let other = lines.filter { !$0.hasPrefix("error: ") && !$0.hasPrefix("hint: ") && !$0.hasPrefix("checkpoint ") }
            #expect(other.isEmpty, "\(c.id): stray stderr lines: \(other)")
            shown = errors.first ?? ""
        }
        for needle in c.expect {
            #expect(shown.contains(needle), "\(c.id): '\(needle)' not in: \(shown)")
        }
        // No Swift internals reach the user: no Optional(…) and no `..<` ranges in what is printed.
        for leak in ["Optional(", "..<"] {
            #expect(!r.stderr.contains(leak) && !r.stdout.contains(leak), "\(c.id): '\(leak)' printed: \(r.stderr)")
        }
        if c.noOutput {
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("run.h5").path),
                    "\(c.id): an output file was left for a refused run")
        }
        if let table = ProcessInfo.processInfo.environment["CPISCOPE_BAD_INPUTS_DIR"] {
            let hint = c.status == 64 ? "(usage printed)" : String((r.hintLine ?? "").dropFirst("hint: ".count))
            let clean = { (s: String) in s.replacingOccurrences(of: dir.path, with: "…").replacingOccurrences(of: Paths.root.path + "/", with: "")
                .replacingOccurrences(of: "|", with: "\\|") }
            let row = "| `\(c.id)` | \(c.input) | `\(clean(shown))` | \(clean(hint)) | \(r.status) |\n"
            try? Data(row.utf8).write(to: URL(fileURLWithPath: table).appendingPathComponent("\(c.id).md"))
        }
    }
}

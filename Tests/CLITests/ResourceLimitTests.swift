// Resource limits: inputs built to exhaust memory or time end in a clear error, or a run in bounded
// memory, never in an out-of-memory kill. Each child runs under `ulimit -v` (address space 2 GiB):
// an allocation past it fails inside the process, which then traps — a signal, which these tests
// count as a failure — instead of taking the machine down.
import Foundation
import Testing

/// Address-space limit for the children, in KiB (bash `ulimit -v`): 2 GiB.
let memoryLimitKB = 2 << 20

/// Runs cpiscope under the address-space limit.
func cpiscopeLimited(_ arguments: [String], timeout: TimeInterval = 300) throws -> ExecResult {
    try Exec.bash("ulimit -v \(memoryLimitKB); exec \"$@\"", [Paths.cpiscope.path] + arguments, timeout: timeout)
}

/// A checkpoint folder holding the probe-trajectory config and a model.safetensors of the given bytes.
func checkpointWithWeights(_ bytes: [UInt8], in dir: URL, name: String = "ckpt") throws -> URL {
    let ck = dir.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: ck, withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: Paths.trajectory.appendingPathComponent("checkpoint-0/config.json"),
                                     to: ck.appendingPathComponent("config.json"))
    try Data(bytes).write(to: ck.appendingPathComponent("model.safetensors"))
    return ck
}

/// A safetensors image: the 8-byte little-endian length (or `declaredLength`), the header, the data.
func safetensorsImage(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    let n = declaredLength ?? UInt64(h.count)
    return (0..<8).map { UInt8(truncatingIfNeeded: n >> (8 * UInt64($0))) } + h + data
}

/// Checks a refused input: exit status 1, one `error:` line containing each of `needles`, a hint,
/// no signal, within the time limit.
func expectClearError(_ r: ExecResult, _ needles: [String], _ what: String) {
    #expect(r.exitedNormally, "\(what): ended by a signal (an out-of-memory trap?): \(r.summary)")
    #expect(!r.timedOut, "\(what): did not finish in time")
    #expect(r.status == 1, "\(what): expected exit status 1: \(r.summary)")
    let errors = r.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }
    #expect(errors.count == 1, "\(what): expected one error line: \(r.stderr)")
    for n in needles { #expect(r.errorLine?.contains(n) == true, "\(what): error line lacks '\(n)': \(r.stderr)") }
    #expect(r.hintLine != nil, "\(what): no hint line: \(r.stderr)")
}

/// tokenizer.json of a BPE model with `alphabet`² + `alphabet`³ merges (100 characters: 1,010,000
/// merges, a vocabulary of 1,010,100 tokens, about 35 MB): every pair of characters merges, then
/// every pair token with a third character. Built byte by byte (no JSON encoder: fast in debug).
func millionMergeTokenizer(alphabet: Int = 100) -> [UInt8] {
    let chars = (0..<alphabet).map { Array(String(UnicodeScalar(0x4E00 + $0)!).utf8) }
    var out: [UInt8] = []
    out.reserveCapacity(40 << 20)
    func put(_ s: String) { out.append(contentsOf: s.utf8) }
    put("{\"version\":\"1.0\",\"added_tokens\":[],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,")
    put("\"decoder\":null,\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"fuse_unk\":false,")
    put("\"byte_fallback\":false,\"ignore_merges\":false,\"vocab\":{")
    var id = 0
    func entry(_ parts: [[UInt8]]) {
        if id > 0 { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        for p in parts { out.append(contentsOf: p) }
        put("\":\(id)")
        id += 1
    }
    for a in chars { entry([a]) }
    for a in chars { for b in chars { entry([a, b]) } }
    for a in chars { for b in chars { for c in chars { entry([a, b, c]) } } }
    put("},\"merges\":[")
    var first = true
    func merge(_ left: [[UInt8]], _ right: [UInt8]) {
        if !first { out.append(UInt8(ascii: ",")) }
        first = false
        out.append(UInt8(ascii: "\""))
        for p in left { out.append(contentsOf: p) }
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: right)
        out.append(UInt8(ascii: "\""))
    }
    for a in chars { for b in chars { merge([a], b) } }
    for a in chars { for b in chars { for c in chars { merge([a, b], c) } } }
    put("]}}")
    return out
}

@Suite("Resource limits (no out-of-memory kill)", .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)))
struct ResourceLimitTests {
    @Test("safetensors headers claiming huge tensors are refused from the header alone, under a 2 GiB address-space limit",
          arguments: [
            ("a shape whose element count overflows 64 bits",
             safetensorsImage(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
             ["'w'", "overflows"]),
            ("a 4 TiB tensor (consistent shape and offsets) in a file of a few bytes",
             safetensorsImage(header: #"{"w":{"dtype":"F32","shape":[1048576,1048576],"data_offsets":[0,4398046511104]}}"#, data: [0, 0, 0, 0]),
             ["'w'"]),
            ("a header length of 2^64 - 1",
             safetensorsImage(header: "{}", declaredLength: UInt64.max), ["header"]),
            ("a header length of 99,999,999 bytes in a 10-byte file",
             safetensorsImage(header: "{}", declaredLength: 99_999_999), ["header"]),
          ])
    func hugeTensorHeaders(_ what: String, _ image: [UInt8], _ needles: [String]) throws {
        let dir = try makeTempDir("huge")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ck = try checkpointWithWeights(image, in: dir)
        let inspect = try cpiscopeLimited(["inspect", ck.path], timeout: 120)
        expectClearError(inspect, needles + ["model.safetensors"], "inspect, \(what)")
        let out = dir.appendingPathComponent("run.h5")
        let probe = try cpiscopeLimited(["probe", ck.path, "--tokenizer", Paths.trajectory.path, "--probes",
                                         Paths.trajectory.appendingPathComponent("probes.jsonl").path, "-o", out.path], timeout: 120)
        expectClearError(probe, needles, "probe, \(what)")
    }

    @Test("a tokenizer.json with 1,010,000 merges loads and encodes under a 2 GiB address-space limit within 180 s (debug build), giving the BPE result")
    func millionMerges() throws {
        let dir = try makeTempDir("merges")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("tokenizer.json")
        try Data(millionMergeTokenizer()).write(to: file)
        // 一丁丂七丄丅: pair merges rank first, so the text splits into three pair tokens (ids 101, 303, 505:
        // 100 single characters, then pairs in row-major order: 一丁 = 100 + 0*100 + 1, …).
        let start = Date()
        let r = try cpiscopeLimited(["tokenize", file.path, "--text", "一丁丂七丄丅", "--format", "json"], timeout: 180)
        let seconds = Date().timeIntervalSince(start)
        #expect(r.exitedNormally && r.status == 0, "million-merge tokenizer: \(r.summary)")
        #expect(!r.timedOut)
        #expect(r.stdout.filter { !$0.isWhitespace }.contains("\"ids\":[101,303,505]"), "unexpected encoding: \(r.stdout.prefix(300))")
        print("million-merge tokenizer (35 MB): loaded and encoded in \(String(format: "%.1f", seconds)) s under ulimit -v \(memoryLimitKB) KiB")
    }

    @Test("a probe whose context is 1 MB is refused with the field limit, before any model work, under a 2 GiB limit")
    func megabyteContext() throws {
        let dir = try makeTempDir("mb")
        defer { try? FileManager.default.removeItem(at: dir) }
        let probes = dir.appendingPathComponent("big.jsonl")
        let context = String(repeating: "Paris moved to Marseille. ", count: (1 << 20) / 26 + 1)
        let obj: [String: Any] = ["id": "big", "context": context, "question": "What is the capital of France?",
                                  "answer": "Marseille", "memory_answer": "Paris"]
        try JSONSerialization.data(withJSONObject: obj).write(to: probes)
        let out = dir.appendingPathComponent("run.h5")
        let r = try cpiscopeLimited(["probe", Paths.trajectory.path, "--probes", probes.path, "-o", out.path], timeout: 120)
        expectClearError(r, ["big.jsonl line 1", "'context'", "65536"], "1 MB context")
        #expect(!FileManager.default.fileExists(atPath: out.path), "an output file was written for a refused probe set")
    }

    @Test("a prompt longer than the model's positions is refused before the file is created: GPT-2 (256 learned positions) and Llama (max_position_embeddings 256, a 60 KB context of ~28k tokens)",
          arguments: [("gpt2", 3_000), ("llama", 60_000)])
    func promptLongerThanContext(_ model: String, _ characters: Int) throws {
        let dir = try makeTempDir("long")
        defer { try? FileManager.default.removeItem(at: dir) }
        let probes = dir.appendingPathComponent("long.jsonl")
        let sentence = "After the floods, France moved its capital to Marseille. "
        let context = String(String(repeating: sentence, count: characters / sentence.count + 1).prefix(characters))
        let obj: [String: Any] = ["id": "long", "context": context, "question": "What is the capital of France?",
                                  "answer": "Marseille", "memory_answer": "Paris"]
        try JSONSerialization.data(withJSONObject: obj).write(to: probes)
        let checkpoint = model == "gpt2" ? Paths.gpt2 : Paths.trajectory.appendingPathComponent("checkpoint-0")
        let out = dir.appendingPathComponent("run.h5")
        let start = Date()
        let r = try cpiscopeLimited(["probe", checkpoint.path, "--tokenizer", Paths.trajectory.path, "--probes", probes.path,
                                     "-o", out.path], timeout: 120)
        expectClearError(r, ["probe 'long'", "over the model's position limit of 256"], "\(model), \(characters)-character context")
        #expect(Date().timeIntervalSince(start) < 60, "refusing the prompt took \(Date().timeIntervalSince(start)) s")
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test("--max-tokens refuses a prompt over it with a message naming --max-tokens, before the file is created")
    func maxTokens() throws {
        let dir = try makeTempDir("maxtok")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run.h5")
        let r = try cpiscopeLimited(["probe", Paths.trajectory.path, "--probes", Paths.trajectory.appendingPathComponent("probes.jsonl").path,
                                     "-o", out.path, "--max-tokens", "16"], timeout: 120)
        expectClearError(r, ["over the --max-tokens limit of 16"], "--max-tokens 16")
        #expect(r.hintLine?.contains("--max-tokens") == true)
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }
}

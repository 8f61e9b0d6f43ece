// `cpiscope inspect` on every model family: it names the family's structural features, in text and JSON,
// and reads every fixture's weights against its config (headers only) with exit status 0.
import Foundation
import Testing

@Suite("inspect describes every family", .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)))
struct InspectTests {
    @Test("features per family (text and JSON)", arguments: [
        ("olmo2", "q/k RMSNorm over the whole projection"),
        ("qwen3", "q/k RMSNorm per head over d_head 12"),
        ("gemma2-softcap", "final-logit soft-capping 3.0"),
        ("phi3-longrope", "LongRoPE (short factors up to 8 positions"),
        ("neox-parallel", "parallel residual"),
        ("gpt2-tied", "learned position embeddings (64)"),
        ("llama-gqa", "grouped-query attention (2 query heads per kv head)"),
    ])
    func features(fixture: String, feature: String) throws {
        let dir = Paths.fixtures.appendingPathComponent("models/\(fixture)").path
        let text = try Exec.cpiscope(["inspect", dir])
        #expect(text.status == 0, "\(fixture): \(text.summary)")
        #expect(text.stdout.contains(feature), "\(fixture): '\(feature)' not in:\n\(text.stdout)")
        let json = try Exec.cpiscope(["inspect", dir, "--format", "json"])
        #expect(json.status == 0)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let features = try #require(obj["features"] as? [String])
        #expect(features.contains { $0.contains(feature) }, "\(fixture): JSON features \(features)")
    }

    @Test("an unknown model_type names every supported one")
    func unknownModelType() throws {
        let dir = try makeTempDir("inspect-unknown")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"model_type": "bert", "hidden_size": 8}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
        try FileManager.default.copyItem(at: Paths.fixtures.appendingPathComponent("models/llama-gqa/model.safetensors"),
                                         to: dir.appendingPathComponent("model.safetensors"))
        let r = try Exec.cpiscope(["inspect", dir.path])
        #expect(r.status == 1)
        for type in ["gemma2", "gpt2", "gpt_neox", "llama", "mistral", "olmo2", "phi3", "qwen2", "qwen3"] {
            #expect(r.stderr.contains(type), "hint lacks \(type): \(r.stderr)")
        }
    }
}

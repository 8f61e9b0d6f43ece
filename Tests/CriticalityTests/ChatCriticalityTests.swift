// `criticality --template chat` against transformers (Tools/goldens/make_chat_probe_goldens.py;
// Tests/Fixtures/probe-trajectory/chat-criticality-goldens.json): the conversation's tokens
// (apply_chat_template(tokenize=True), no special tokens added by the tokenizer), the split after the
// generation prompt (response + end-of-turn tokens scored, no EOS appended), and the mean negative
// log-likelihood per scored token within 1e-4 nats (float32 logits, as the other criticality goldens).
import Analysis
import ChatTemplate
import Checkpoints
import Criticality
import Foundation
import ProbeRun
import StrictJSON
import Testing
import TrajectoryJob
import Tokenization

@Suite("Criticality under the model's chat template")
struct ChatCriticalityTests {
    static let trajectory = fixtures.appendingPathComponent("probe-trajectory")

    @Test("token ids, the scored split and nll per token equal transformers' apply_chat_template + forward (1e-4 nats)")
    func matchesTransformers() throws {
        let golden = try JSONValue.parse(Array(try Data(contentsOf: Self.trajectory.appendingPathComponent("chat-criticality-goldens.json"))))
        let examples = try #require(golden["examples"]?.array)
        let tmp = try tempDir(); defer { try? FileManager.default.removeItem(at: tmp) }
        // The golden rows: the first 6 rows of the criticality golden data.
        let lines = try String(contentsOf: fixtures.appendingPathComponent("criticality/golden-data.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(6).joined(separator: "\n") + "\n"
        let data = tmp.appendingPathComponent("data.jsonl")
        try lines.write(to: data, atomically: true, encoding: .utf8)
        let chat = try ChatPrompt.load(folder: Self.trajectory, name: nil)
        let template = InstructionTemplate.chat(ChatInstructionFormat(template: chat, system: nil, origin: ChatPrompt.origin(chat)))
        var spec = CriticalityJobSpec(checkpoints: [CheckpointRef(name: "checkpoint-0", step: 0, path: Self.trajectory.appendingPathComponent("checkpoint-0"))],
                                      trajectoryRoot: Self.trajectory, data: data, template: template, output: tmp.appendingPathComponent("c.h5"))
        spec.job.threads = 1
        _ = try CriticalityJob.run(spec)
        let t = try CriticalityTable.read(spec.job.output)
        // The sequences the job scored, from the same tokenization.
        let dataset = try InstructionDataLoader.load(url: data)
        let tokenizer = try Tokenizer.load(from: Self.trajectory)
        let tokenized = try CriticalityTokens.tokenize(dataset.examples, template: template, tokenizer: tokenizer, eos: nil,
                                                       limit: 1 << 20, limitByModel: true)
        var worst = 0.0, compared = 0
        for g in examples {
            let e = try #require(g["index"]?.int)
            for (key, seq, mean) in [("with_context", tokenized[e].withContext, t.nllWithContext[e]), ("without_context", tokenized[e].withoutContext, t.nllWithoutContext[e])] {
                guard let ref = g[key], !ref.isNull else { #expect(seq == nil, "example \(e) \(key): no golden, yet scored"); continue }
                let ids = try #require(ref["ids"]?.array?.compactMap { $0.int })
                let s = try #require(seq, "example \(e) \(key) was not scored: \(tokenized[e].skipReason ?? "")")
                #expect(s.ids == ids, "example \(e) \(key): token ids differ from apply_chat_template(tokenize=True)")
                #expect(s.scored == ref["scored"]?.int, "example \(e) \(key): scored \(s.scored) tokens, transformers' split \(ref["scored"]?.int ?? -1)")
                let want = try #require(ref["nll"]?.double)
                let d = abs(Double(mean) - want)
                worst = max(worst, d)
                #expect(d <= 1e-4, "example \(e) \(key): nll \(mean) vs \(want), |Δ| = \(d)")
                compared += 1
            }
        }
        #expect(compared >= 8, "only \(compared) comparisons")
        print("chat criticality: max |Δ nll| = \(worst) over \(compared) sequences")
    }
}

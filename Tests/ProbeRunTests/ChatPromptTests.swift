// `--template chat` against transformers (Tools/goldens/make_chat_probe_goldens.py; Tests/Fixtures/probe-trajectory/
// chat-goldens.json, transformers' apply_chat_template and greedy generate in fp32, eager): the prompt built
// from the fixture's chat template (the real Llama-2-chat template) equals apply_chat_template's text, its ids
// equal apply_chat_template(tokenize=True)'s (one BOS, written by the template; none added by the tokenizer),
// spans land inside the rendered prompt, and greedy generation gives transformers' ids. Tolerance: exact.
import ChatTemplate
import Checkpoints
import Foundation
import Models
import ProbeKit
import ProbeRun
import Testing
import Tokenization

struct ChatGolden: Decodable {
    struct Row: Decodable {
        let id: String
        let system: String?
        let prompt: String
        let prompt_ids: [Int]
        let generated_ids: [String: [Int]]
    }
    let max_new_tokens: Int
    let probes: [Row]
}

@Suite("Chat templates in the probe job (--template chat)")
struct ChatPromptTests {
    static let golden: ChatGolden? = try? JSONDecoder().decode(
        ChatGolden.self, from: Data(contentsOf: trajectoryDir.appendingPathComponent("chat-goldens.json")))

    @Test("prompt text and ids equal apply_chat_template's; spans inside the rendered prompt; greedy ids equal generate's")
    func matchesTransformers() throws {
        let golden = try #require(Self.golden, "Tests/Fixtures/probe-trajectory/chat-goldens.json is missing")
        let tokenizer = try Tokenizer.load(from: trajectoryDir)
        let set = try ProbeSetLoader.load(url: trajectoryDir.appendingPathComponent("probes.jsonl"))
        let models = try ["checkpoint-0", "checkpoint-20"].map { ($0, try DecoderModel.load(from: trajectoryDir.appendingPathComponent($0))) }
        var checked = 0
        for row in golden.probes {
            let probe = try #require(set.probes.first { $0.id == row.id })
            let template = try ChatPrompt.template(folder: trajectoryDir, templateName: nil, system: row.system, userTemplate: nil, contextOnly: false)
            #expect(template.specialTokensInText)
            let built = try PromptBuilder.build(probe, template: template)
            #expect(built.prompt == row.prompt, "\(row.id) system \(row.system ?? "none"): prompt text differs")
            let t = try TokenizedProbe(built, encoder: TokenizerEncoder(tokenizer))
            #expect(t.promptIDs == row.prompt_ids, "\(row.id): prompt ids differ (\(t.promptIDs.prefix(12)) vs \(row.prompt_ids.prefix(12)))")
            // The context span is the probe's context, inside the template's [INST] … [/INST].
            let context = try #require(built.spans[.context]?.first)
            #expect(built.text(of: context) == probe.context)
            #expect(t.spanPositions[.sink] == [0] && t.spanStatus[.context] == .found)
            // The system message's text is the system span (found only when there is one).
            if let system = row.system {
                #expect(built.spans[.system]?.map(built.text(of:)) == [system], "\(row.id): system span")
                #expect(t.spanStatus[.system] == .found && !(t.spanPositions[.system] ?? []).isEmpty)
            } else {
                #expect(t.spanStatus[.system]?.isFound == false)
            }
            for (name, model) in models {
                var options = MeasureOptions()
                options.maxNewTokens = golden.max_new_tokens
                options.stopStrings = []
                options.stopTokens = [tokenizer.eosTokenID!]
                options.compute = .init(threads: 1)
                let m = try ProbeMeasurer.measure(t, built: built, model: model, options: options,
                                                  decode: { tokenizer.decode($0, skipSpecialTokens: true) })
                #expect(m.generatedIDs == row.generated_ids[name], "\(row.id) \(name): generated \(m.generatedIDs) vs \(row.generated_ids[name] ?? [])")
                checked += 1
            }
        }
        #expect(checked == golden.probes.count * 2)
    }

    @Test("a template that loses the user's message is a clear error naming the placeholder; a folder without a template names the files it looked for")
    func errors() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "{{ bos_token }}[INST] hello [/INST]".write(to: dir.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        try #"{"bos_token": "<s>"}"#.write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        #expect(throws: ChatTemplateError.self) {
            _ = try ChatPrompt.template(folder: dir, templateName: nil, system: nil, userTemplate: nil, contextOnly: false)
        }
        let empty = try tempDir()
        defer { try? FileManager.default.removeItem(at: empty) }
        do {
            _ = try ChatPrompt.template(folder: empty, templateName: nil, system: nil, userTemplate: nil, contextOnly: false)
            Issue.record("a folder without a chat template must fail")
        } catch let e as ChatTemplateError {
            #expect("\(e)".contains("chat_template") , "\(e)")
        }
    }
}

// The generation stop rule and the probe job's generation defaults, against transformers.
// Reference: Tests/Fixtures/probe-newline/goldens.json, written by Tools/goldens/make_newline_fixture.py
// (transformers 5.24.0 greedy `generate`, fp32): a tiny Llama trained to open its answers with "\n"
// after each built-in template, whose generation_config.json lists a second EOS id (".") that
// config.json lacks. Expected: greedy ids identical to transformers' up to where the stop rule ends the
// generation, and the generated text equal to the reference rule applied to transformers' text.
import Checkpoints
import Foundation
import HDF5Store
import Models
import ProbeKit
import ProbeRun
import Testing
import TrajectoryJob
import Tokenization

let newlineDir = fixtures.appendingPathComponent("probe-newline")

struct NewlineGolden: Decodable {
    struct Row: Decodable {
        let id: String
        let prompt: String
        let prompt_ids: [Int]
        let generated_ids: [Int]
        let stopped_ids: [Int]
        let generated_text: String
        let first_token_is_newline: Bool
    }
    let max_new_tokens: Int
    let eos_ids: [Int]
    let config_eos: Int
    let stop_strings: [String]
    let templates: [String: [Row]]
}

@Suite("Generation stop rule (a response that opens with a newline) against transformers")
struct StopRuleTests {
    let golden: NewlineGolden

    init() throws {
        golden = try JSONDecoder().decode(NewlineGolden.self, from: Data(contentsOf: newlineDir.appendingPathComponent("goldens.json")))
    }

    @Test("the EOS ids of generation_config.json join config.json's")
    func generationConfigEOS() throws {
        let config = try ModelConfig.load(from: newlineDir.appendingPathComponent("checkpoint-0"))
        #expect(config.eosTokenIDs == golden.eos_ids, "eos ids \(config.eosTokenIDs) vs transformers' generation_config \(golden.eos_ids)")
        let raw = try ModelConfig.parse(Data(contentsOf: newlineDir.appendingPathComponent("checkpoint-0/config.json")),
                                        source: newlineDir.appendingPathComponent("checkpoint-0/config.json"))
        #expect(raw.eosTokenIDs == [golden.config_eos], "config.json alone lists only \(golden.config_eos)")
    }

    @Test("greedy text and ids per template, with the default stop string", arguments: ["plain", "alpaca", "tulu"])
    func perTemplate(template: String) throws {
        let rows = try #require(golden.templates[template])
        #expect(rows.filter(\.first_token_is_newline).count >= 3, "the fixture must open most answers with a newline")
        let tokenizer = try Tokenizer.load(from: newlineDir)
        let model = try DecoderModel.load(from: newlineDir.appendingPathComponent("checkpoint-0"))
        let set = try ProbeSetLoader.load(url: newlineDir.appendingPathComponent("probes.jsonl"))
        var options = MeasureOptions()      // default stop strings: ["\n"]
        #expect(options.stopStrings == golden.stop_strings)
        options.maxNewTokens = golden.max_new_tokens
        options.stopTokens = Set(try ModelConfig.load(from: newlineDir.appendingPathComponent("checkpoint-0")).eosTokenIDs)
        let tmpl = try #require(PromptTemplate.builtin(template))
        let pairs = try built(set.probes, template: tmpl, tokenizer: tokenizer)
        let measured = try ProbeMeasurer.measureBatch(pairs, model: model, options: options,
                                                      decode: { tokenizer.decode($0, skipSpecialTokens: true) })
        for (k, ref) in rows.enumerated() {
            #expect(pairs[k].1.prompt == ref.prompt, "\(template) \(ref.id): prompt text")
            #expect(pairs[k].0.promptIDs == ref.prompt_ids, "\(template) \(ref.id): prompt ids")
            #expect(measured[k].generatedIDs == ref.stopped_ids,
                    "\(template) \(ref.id): ids \(measured[k].generatedIDs) vs transformers' \(ref.generated_ids) stopped at \(ref.stopped_ids)")
            #expect(Array(ref.generated_ids.prefix(measured[k].generatedIDs.count)) == measured[k].generatedIDs,
                    "\(template) \(ref.id): ids must be a prefix of transformers' greedy ids")
            #expect(measured[k].generated == ref.generated_text,
                    "\(template) \(ref.id): text \(measured[k].generated.debugDescription) vs \(ref.generated_text.debugDescription)")
            #expect(!measured[k].generated.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty,
                    "\(template) \(ref.id): the generation must not be cut empty")
            #expect(measured[k].counterfactualCorrect, "\(template) \(ref.id): the answer is in the text")
        }
    }

    @Test("the rule: stop strings count from the first visible character; the text is cut before them")
    func rule() {
        let s = StopConditions(maxNewTokens: 8, stopStrings: ["\n", "###"])
        #expect(s.cut("\nParis\nQuestion").text == "\nParis")
        #expect(s.cut("\nParis\nQuestion").stopped)
        #expect(s.cut("\n\n  ").stopped == false, "whitespace alone never stops")
        #expect(s.cut(" \n Paris ### x").text == " \n Paris ")
        #expect(s.cut("Paris").stopped == false)
        #expect(s.cut("Paris###\n").text == "Paris", "the earliest stop string wins")
        #expect(StopConditions(maxNewTokens: 8, stopStrings: ["\nP"]).cut("\nParis").stopped == false,
                "a stop string starting before the first visible character does not count")
        #expect(StopConditions(maxNewTokens: 8, stopStrings: [""]).cut("Paris").stopped == false, "an empty stop string is ignored")
    }

    @Test("the probe job: default generation length from the answers, EOS from generation_config.json, rule recorded")
    func jobDefaults() throws {
        let out = try tempDir().appendingPathComponent("newline.h5")
        var spec = ProbeJobSpec(checkpoints: try Trajectory.discover(at: newlineDir), trajectoryRoot: newlineDir,
                                probeFile: newlineDir.appendingPathComponent("probes.jsonl"), template: .alpaca, output: out)
        spec.automaticMaxNewTokens = true
        let summaries = try ProbeJob.run(spec)
        #expect(summaries.count == 1)
        #expect(summaries[0].counterfactualAccuracy == 1.0, "every answer is generated (was 0 when \"\\n\" ended empty generations)")
        let file = try HDF5File.open(at: out, writable: false)
        guard case .int(let maxNew) = try file.attribute("max_new_tokens") else { Issue.record("max_new_tokens is not an int"); return }
        let tokenizer = try Tokenizer.load(from: newlineDir)
        let set = try ProbeSetLoader.load(url: newlineDir.appendingPathComponent("probes.jsonl"))
        let tokenized = try set.probes.map { try TokenizedProbe(PromptBuilder.build($0, template: .alpaca), encoder: TokenizerEncoder(tokenizer)) }
        #expect(Int(maxNew) == ProbeJob.automaticMaxNewTokens(tokenized))
        #expect(maxNew >= 16)
        guard case .ints(let stopIDs) = try file.attribute("stop_token_ids") else { Issue.record("stop_token_ids"); return }
        #expect(Set(golden.eos_ids.map(Int64.init)).isSubset(of: Set(stopIDs)), "stop ids \(stopIDs) lack generation_config's \(golden.eos_ids)")
        #expect(try file.attribute("stop_rule") == .string(StopConditions.stopStringRule))
    }
}

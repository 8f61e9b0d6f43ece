// `cpiscope logits`: one forward pass, top-K next-token log-probabilities at the last position.
import ArgumentParser
import Checkpoints
import Foundation
import Models
import StrictJSON
import TensorCore

struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Run the forward pass on token ids and print the top next-token log-probabilities.",
        discussion: """
        The pass runs on the CPU; in fp32 it matches Hugging Face transformers (eager attention) to \
        within 1e-4 in log-probability. Use it to check a checkpoint loads and computes what you expect.

        Examples:
          cpiscope logits Tests/Fixtures/models/llama-gqa --ids 1,2,3
          cpiscope logits ./checkpoint-500 --ids 464,3139,286 --top 10 --format json
        """)

    @Argument(help: "A checkpoint folder (config.json + *.safetensors), or a PEFT LoRA adapter folder.")
    var path: String

    @Option(help: "Base model folder for an adapter (default: the adapter's base_model_name_or_path).")
    var base: String?

    @Option(help: "Comma-separated input token ids, e.g. 1,2,3.")
    var ids: String

    @Option(help: "How many of the most likely next tokens to print.")
    var top: Int = 5

    @Option(help: "Output format: text or json. JSON is {\"ids\":[...],\"top\":[{\"id\":N,\"logprob\":X},...]}.")
    var format: OutputFormat = .text

    @OptionGroup var precision: PrecisionOption

    func validate() throws {
        guard top > 0 else { throw ValidationError("--top must be at least 1") }
        guard (try? parseIDs(ids)) != nil else {
            throw ValidationError("--ids must be comma-separated non-negative integers, e.g. --ids 1,2,3")
        }
    }

    func run() throws {
        let tokenIDs = try parseIDs(ids)
        let checkpoint = URL(fileURLWithPath: path), baseURL = base.map { URL(fileURLWithPath: $0) }
        let model = try CheckpointLoader(base: baseURL, hashContents: false).load(checkpoint).model
        let compute = ComputeContext.allCores.with(try precision.resolve(for: checkpoint, base: baseURL))
        let logits = try model.forward(tokenIDs, logits: .last, compute: compute)
        let logprobs = [Float](unsafeUninitializedCapacity: model.vocab) { buf, n in
            logSoftmax(logits.pointer, count: model.vocab, into: buf.baseAddress!)
            n = model.vocab
        }
        let best = logprobs.indices.sorted { logprobs[$0] > logprobs[$1] || (logprobs[$0] == logprobs[$1] && $0 < $1) }
            .prefix(min(top, model.vocab))
        switch format {
        case .json:
            let topList = best.map { jsonObject([("id", jsonNumber($0)), ("logprob", jsonNumber(Double(logprobs[$0])))]) }
            print(jsonString(jsonObject([("ids", .array(tokenIDs.map(jsonNumber))), ("top", .array(topList))])))
        case .text:
            print("next-token log-probabilities after \(tokenIDs.count) token(s) (\(model.config.modelType)):")
            for (rank, id) in best.enumerated() {
                print(String(format: "%3d. id %6d  logprob %10.6f  p %.6f", rank + 1, id, logprobs[id], exp(logprobs[id])))
            }
        }
    }
}

/// Parses "1,2,3" (spaces allowed) into ids.
func parseIDs(_ text: String) throws -> [Int] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard !parts.isEmpty else { throw CLIError(description: "no token ids given", hint: "Pass --ids 1,2,3.") }
    return try parts.map { p in
        guard let v = Int(p), v >= 0 else {
            throw CLIError(description: "'\(p)' is not a token id", hint: "Token ids are non-negative integers separated by commas.")
        }
        return v
    }
}

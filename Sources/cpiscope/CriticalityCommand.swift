// `cpiscope criticality`: context-criticality scores of instruction data (Goyal, Baek et al. §3.4), per
// example and checkpoint, into HDF5; optionally the paper's filtered dataset.
import Analysis
import ArgumentParser
import Checkpoints
import Criticality
import TrajectoryJob
import Foundation
import ProbeRun
import TensorCore

extension InstructionDataFormat: ExpressibleByArgument {}
extension CriticalityError: HintedError {}

struct CriticalityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "criticality",
        abstract: "Score instruction data by how much each response needs its context; filter the least context-critical.",
        discussion: """
        For every example (instruction, optional context, response) and every checkpoint: the teacher-forced \
        negative log-likelihood of the response with the context and without it (per token and summed), and \
        criticality = exp(nll without context), the response's perplexity without its context. High \
        criticality: the context is needed (context-critical); low: the model can answer from memory. \
        Goyal, Baek et al. (§3.4) remove the 25% of Alpaca with a context and the lowest criticality under \
        the base model, and the context-parametric inversion largely disappears: --filter-lowest 25% \
        --write-filtered FILE writes that dataset (same format, order kept) and a .removed.json sidecar.

        Over a trajectory (a folder of checkpoint-N/), the same scores give each example's loss curve; \
        `cpiscope report OUT.h5` groups examples by their criticality at --filter-checkpoint, default the first (quartiles, and the \
        paper's C / C+S / S split) and draws each group's mean loss over training steps.

        Response tokens follow Stanford Alpaca's training split: encode(prompt + response)[len(encode(prompt)):] \
        + EOS. Examples with an empty response, or longer than --max-tokens or the model's window, are \
        skipped and recorded with the reason (never truncated). docs/criticality.md has the exact rule, \
        templates and formats; the layout is in docs/hdf5-schema.md.

        Examples:
          cpiscope criticality Demo/base --data Probes/ift/alpaca-sample.json --template plain -o Notebooks-out/criticality.h5
          cpiscope criticality llama-2-7b --data alpaca_data.json --filter-lowest 25% --write-filtered alpaca-filtered.json -o crit.h5
          cpiscope criticality Demo/full-ft --template plain -o traj.h5 && cpiscope report traj.h5 -o traj-report
          cpiscope criticality runs/tulu-ift --data tulu_v2.jsonl --template tulu -o tulu.h5   # chat rows; loss per dataset
          cpiscope criticality llama-7b --data squad.json --format squad --template plain -o squad.h5
        """)

    @OptionGroup var job: CriticalityOptions

    func run() throws {
        let spec = try job.makeSpec()
        let (quiet, output, csv) = (job.quiet, job.output, job.csv)
        let progress = CriticalityProgressLine(quiet: quiet)
        let result = try CriticalityJob.run(spec, progress: progress)
        if PhaseTimes.enabled { for line in PhaseTimes.report() { Terminal.error(line) } }
        print("wrote \(spec.job.output.path)")
        print("examples\(spec.job.shard == nil ? "" : " in this shard"): \(result.examples), skipped: \(result.skipped.count)"
              + (result.scoringSeconds > 0 ? String(format: ", %.0f tokens/s scored", Double(result.inputTokens) / result.scoringSeconds) : ""))
        for (i, reason) in result.skipped.prefix(5) { print("  skipped example \(i): \(reason)") }
        if result.skipped.count > 5 { print("  … \(result.skipped.count - 5) more (skip_reason in the file)") }
        Self.printTable(result.summaries)
        if let f = result.filtered {
            print("filtered: removed \(f.removed) examples → \(f.file.path) (what and why: \(f.sidecar.path))")
        }
        if let csv {
            let table = try CriticalityTable.read(URL(fileURLWithPath: output))
            try table.csv(checkpoint: spec.filterCheckpoint).write(to: URL(fileURLWithPath: csv), atomically: true, encoding: .utf8)
            print("wrote \(csv)")
        }
    }
}

extension CriticalityCommand {
    /// The per-checkpoint table: the first two columns as wide as the longest name and step. The NLL means
    /// and the median are over the scored examples with a context (`with_ctx`), the set the report uses.
    static func printTable(_ summaries: [CriticalitySummary]) {
        let width = max(10, summaries.map(\.name.count).max() ?? 0)
        let stepWidth = max(4, summaries.map { ($0.step.map(String.init) ?? "-").count }.max() ?? 0)
        print(pad("checkpoint", width) + "  " + padLeft("step", stepWidth) + "  scored  with_ctx  nll_with_ctx  nll_without_ctx  median_criticality")
        for s in summaries {
            let head = pad(s.name, width) + "  " + padLeft(s.step.map(String.init) ?? "-", stepWidth)
            if s.skipped { print(head + "  (already complete; skipped)"); continue }
            print(head + String(format: "  %6d  %8d  %12.4f  %15.4f  %18.3f", s.scored, s.scoredWithContext, s.meanNLLWithContext,
                                s.meanNLLWithoutContext, s.medianCriticality))
        }
        print("nll_with_ctx, nll_without_ctx (mean nats per response token) and median_criticality are over the with_ctx scored examples with a context, as in `cpiscope report`")
    }
}

/// The options of `cpiscope criticality`, shared with `cpiscope slurm criticality`.
struct CriticalityOptions: ParsableArguments {
    @OptionGroup var run: TrajectoryJobOptions

    @Option(help: "The instruction data: JSON array, JSONL, or SQuAD's JSON.")
    var data: String = "Probes/ift/alpaca-sample.json"

    @Option(help: ArgumentHelp("Data format (default: detected from the fields).", valueName: "alpaca|squad|messages|fields"))
    var format: InstructionDataFormat?

    @Option(help: "With --format fields: the instruction's field.")
    var instructionField: String?
    @Option(help: "With --format fields: the context's field (optional; empty = no context).")
    var contextField: String?
    @Option(help: "With --format fields: the response's field.")
    var responseField: String?

    @Option(help: ArgumentHelp("The field holding each row's data category (default: TULU's dataset for chat rows): `report` draws the loss per category.", valueName: "FIELD"))
    var categoryField: String?

    @Option(help: "Prompt template: alpaca, tulu, plain (docs/criticality.md has the texts), or chat (the checkpoint's own chat template).")
    var template: String = "alpaca"

    @Option(help: "With --template chat: a system message.")
    var system: String?

    @Option(help: "With --template chat: which of the folder's named chat templates (default: \"default\").")
    var chatTemplateName: String?

    @Option(help: "A template file: {\"with_context\": …, \"without_context\": …, \"separator\": …} with {instruction} and {context}.")
    var templateFile: String?

    @Option(help: ArgumentHelp("Remove this share of the examples with a context, lowest criticality first (with --write-filtered).", valueName: "P%"))
    var filterLowest: String?

    @Option(help: "Write the data minus the filtered examples here (same format), with a .removed.json sidecar.")
    var writeFiltered: String?

    @Option(help: "The checkpoint (name or step) whose scores filter and group the examples (default: the first).")
    var filterCheckpoint: String?

    @Option(help: "Skip examples longer than this many tokens (prompt + response + EOS); longer than the model's window are always skipped.")
    var maxTokens: Int?

    @Flag(help: "Do not append EOS to the responses (Alpaca's training appends it).")
    var noEOS = false

    @Option(help: ArgumentHelp("Tokens per batched pass (default 2048): examples share each read of the weights.",
                               discussion: "Larger batches are faster and use more memory."))
    var batchTokens: Int = 2048

    @Option(help: "Also write the per-example table of the first checkpoint (or --filter-checkpoint) as CSV here.")
    var csv: String?

    func validate() throws {
        if templateFile != nil && template != "alpaca" { throw ValidationError("give either --template or --template-file") }
        if template != "chat" && (system != nil || chatTemplateName != nil) {
            throw ValidationError("--system and --chat-template-name need --template chat")
        }
        if templateFile == nil && template != "chat" && InstructionTemplate.builtin(template) == nil {
            throw ValidationError("unknown --template '\(template)'; choose one of \((InstructionTemplate.builtinNames + ["chat"]).joined(separator: ", "))")
        }
        if format == .fields && (instructionField == nil || responseField == nil) {
            throw ValidationError("--format fields needs --instruction-field and --response-field")
        }
        if format != .fields && format != nil && (instructionField != nil || responseField != nil || contextField != nil) {
            throw ValidationError("--instruction-field/--context-field/--response-field go with --format fields")
        }
        if let p = filterLowest, (try? CriticalityFilter.percent(p)) == nil {
            throw ValidationError("--filter-lowest '\(p)' is not a percentage between 0 and 100 (e.g. 25%)")
        }
        if filterLowest != nil && writeFiltered == nil { throw ValidationError("--filter-lowest needs --write-filtered FILE") }
        if let m = maxTokens, m < 2 { throw ValidationError("--max-tokens must be ≥ 2") }
        if batchTokens < 1 { throw ValidationError("--batch-tokens must be ≥ 1") }
        try run.check(shardAxes: [.checkpoints, .examples], command: "criticality")
        if run.shard != nil && (writeFiltered != nil || csv != nil) {
            throw ValidationError("--write-filtered and --csv need every example: merge the shards first, then run the same command on the merged file with --resume")
        }
    }

    /// The output path (-o; default Notebooks-out/criticality.h5).
    var output: String { run.outputPath(default: "Notebooks-out/criticality.h5") }
    var quiet: Bool { run.quiet }

    /// The job's settings, from the options.
    func makeSpec() throws -> CriticalityJobSpec {
        let (refs, root) = try run.discover()
        let tmpl: InstructionTemplate
        if let f = templateFile {
            tmpl = try InstructionTemplate.load(url: URL(fileURLWithPath: f))
        } else if template == "chat" {
            let folder = try run.chatTemplateFolder(refs: refs, root: root)
            let chat = try ChatPrompt.load(folder: folder, name: chatTemplateName)
            tmpl = .chat(ChatInstructionFormat(template: chat, system: system, origin: ChatPrompt.origin(chat)))
        } else {
            tmpl = InstructionTemplate.builtin(template)!
        }
        var spec = CriticalityJobSpec(checkpoints: refs, trajectoryRoot: root, data: URL(fileURLWithPath: data), template: tmpl,
                                      output: URL(fileURLWithPath: output))
        spec.format = format
        spec.categoryField = categoryField
        if let i = instructionField, let r = responseField { spec.fields = InstructionFields(instruction: i, context: contextField, response: r) }
        spec.job = run.settings(refs: refs, root: root, output: output)
        spec.maxTokens = maxTokens
        spec.appendEOS = !noEOS
        spec.batchTokens = batchTokens
        spec.filterPercent = try filterLowest.map(CriticalityFilter.percent)
        spec.filterCheckpoint = filterCheckpoint
        spec.writeFiltered = writeFiltered.map { URL(fileURLWithPath: $0) }

        return spec
    }
}

/// The progress line for criticality runs (examples instead of probes).
final class CriticalityProgressLine: CriticalityProgress {
    private let line: ProgressLine
    init(quiet: Bool) { line = ProgressLine(quiet: quiet, unit: "example") }
    func checkpointStarted(_ index: Int, of total: Int, name: String) {
        line.checkpointStarted(index, of: total, name: name)
    }
    func examplesFinished(_ done: Int, of total: Int) { line.probeFinished(done - 1, of: total) }
    func checkpointFinished(_ s: CriticalitySummary) { line.finished(name: s.name, skipped: s.skipped) }
}

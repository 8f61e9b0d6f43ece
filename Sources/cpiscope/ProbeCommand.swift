// `cpiscope probe`: the main job. A probe set through every checkpoint of a trajectory, into HDF5.
import ArgumentParser
import TensorCore
import Checkpoints
import Foundation
import ProbeKit
import ProbeRun
import TrajectoryJob

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Run knowledge-conflict probes through every checkpoint of a trajectory; write HDF5.",
        discussion: """
        For each checkpoint and probe, one instrumented pass over the prompt records, at the answer \
        position (the last prompt token): the attention mass on the context, subject, question, \
        context-answer mentions, memory-answer mentions, BOS and other tokens, per layer and head; the \
        logit lens (log-prob, rank and M_C = p_ctx/(p_ctx+p_mem)) of each answer's first token after the \
        embeddings and every block; the teacher-forced log-likelihood of both whole answers; and a greedy \
        generation, scored for the context answer (counterfactual-correct) and the memorised one \
        (parametric-correct). The file's layout is in docs/hdf5-schema.md.

        TRAJECTORY is a checkpoint folder, a folder of checkpoint-N/ folders (ordered by \
        trainer_state.json global_step, else N), or several folders. Checkpoints may be PEFT LoRA \
        adapters over one base (--base, or the adapter's base_model_name_or_path).

        Examples:
          cpiscope probe Demo/full-ft --probes Probes/demo_heldout.jsonl -o Notebooks-out/run.h5
          cpiscope probe runs/ift --checkpoints every:2 --template alpaca --context-only -o out.h5
          cpiscope probe runs/ift --probes world_facts.json --dump 0,5 --dump-probes world_facts-3 -o out.h5
        """)

    @OptionGroup var job: ProbeRunOptions

    @Option(help: "Also store full attention patterns and residual streams for these layers (comma list).")
    var dump: String?

    @Option(help: "With --dump: only these probe ids (comma list; default all).")
    var dumpProbes: String?

    @Option(help: ArgumentHelp("Also score a tuned lens beside the logit lens: tuned:PATH, a tuned-lens folder (config.json + params.pt).",
                               discussion: "Records tuned_lens_logprob, tuned_lens_rank and tuned_mc_ratio (docs/hdf5-schema.md).", valueName: "tuned:PATH"))
    var lens: String?

    @Option(help: ArgumentHelp("The M_C column of the summary: last-prompt-token (the paper's readout) or first-answer-token (where the generation emits either answer's first token).",
                               discussion: "Both are always stored: mc_ratio (every lens layer, last prompt token) and first_answer_mc_ratio / first_answer_logit_diff (the last layer, at first_answer_step; NaN where the generation names neither answer). Chat models that open with \"The …\" are read more fairly at the first answer token.",
                               valueName: "position"))
    var readout: Readout = .lastPromptToken

    enum Readout: String, ExpressibleByArgument, CaseIterable {
        case lastPromptToken = "last-prompt-token", firstAnswerToken = "first-answer-token"
    }

    func validate() throws {
        try job.run.check(shardAxes: [.checkpoints, .probes], command: "probe")
        if let d = dump, (try? parseIDs(d)) == nil { throw ValidationError("--dump takes a comma list of layers, e.g. --dump 0,3") }
        if let l = lens, !l.hasPrefix("tuned:") || l.count == "tuned:".count {
            throw ValidationError("--lens takes tuned:PATH (a tuned-lens folder), got '\(l)'")
        }
    }

    func run() throws {
        var spec = try job.makeSpec()
        if let d = dump { spec.options.dumpLayers = try parseIDs(d) }
        spec.dumpProbes = dumpProbes.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        spec.tunedLens = lens.map { URL(fileURLWithPath: String($0.dropFirst("tuned:".count))) }
        let progress = ProgressLine(quiet: job.quiet)
        progress.verbose = job.verbose
        let summaries = try ProbeJob.run(spec, progress: progress)
        if PhaseTimes.enabled { for line in PhaseTimes.report() { Terminal.error(line) } }
        printSummary(summaries, output: spec.job.output)
    }

    func printSummary(_ s: [CheckpointSummary], output: URL) {
        Self.warnAboutTruncation(s)
        print("wrote \(output.path)")
        Self.printTable(s, readout: readout)
    }

    /// A warning on stderr for each checkpoint where more than 10% of the generations stopped at
    /// --max-new-tokens (their answers may be cut mid-sentence).
    static func warnAboutTruncation(_ s: [CheckpointSummary]) {
        for r in s where !r.skipped && r.manyTruncated {
            Terminal.error("warning: \(r.name): \(r.truncatedGenerations) of \(r.probes) generations stopped at the --max-new-tokens limit and may be cut mid-answer; raise --max-new-tokens (the file's max_new_tokens has the limit, generation_end the reason per probe)")
        }
    }

    /// The summary table; the first two columns are as wide as the longest checkpoint name and step.
    static func printTable(_ s: [CheckpointSummary], readout: Readout = .lastPromptToken) {
        let width = max(10, s.map(\.name.count).max() ?? 0)
        let stepWidth = max(5, s.map { ($0.step.map(String.init) ?? "-").count }.max() ?? 0)
        let mcHeader = readout == .lastPromptToken ? "M_C(last)" : "M_C(1st answer)"
        print(pad("checkpoint", width) + "  " + padLeft("step", stepWidth) + "  cf_acc  param_acc  ctx_attn  subj_attn  " + padLeft(mcHeader, 9))
        for r in s {
            let head = pad(r.name, width) + "  " + padLeft(r.step.map(String.init) ?? "-", stepWidth)
            if r.skipped { print(head + "  (already complete; skipped)"); continue }
            let mc = readout == .lastPromptToken ? r.meanLastLayerMC : r.meanFirstAnswerMC
            print(head + String(format: "  %6.3f  %9.3f  %8.4f  %9.4f  ",
                  r.counterfactualAccuracy, r.parametricAccuracy, r.meanContextAttention, r.meanSubjectAttention)
                  + padLeft(String(format: "%.4f", mc), max(9, mcHeader.count))
                  + (readout == .firstAnswerToken ? " (\(r.firstAnswerProbes) of \(r.probes) probes)" : ""))
        }
    }
}

func padLeft(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }


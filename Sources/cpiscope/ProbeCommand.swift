// `cpiscope probe`: the main job. A probe set through every checkpoint of a trajectory, into HDF5.
import ArgumentParser
import TensorCore
import Checkpoints
import Foundation
import ProbeKit
import ProbeRun

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

    func validate() throws {
        if ![.checkpoints, .probes].contains(job.shardBy) { throw ValidationError("--shard-by \(job.shardBy.rawValue) is not for `cpiscope probe`; probe shards by checkpoints or probes") }
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
        let summaries = try ProbeJob.run(spec, progress: progress)
        if ProcessInfo.processInfo.environment["CPISCOPE_TIMING"] == "1" {
            for (phase, seconds) in PhaseTimes.snapshot { Terminal.error(String(format: "timing: %-28@ %8.2f s", phase.rawValue as NSString, seconds)) }
        }
        printSummary(summaries, output: spec.output)
    }

    func printSummary(_ s: [CheckpointSummary], output: URL) {
        print("wrote \(output.path)")
        Self.printTable(s)
    }

    static func printTable(_ s: [CheckpointSummary]) {
        print("checkpoint            step  cf_acc  param_acc  ctx_attn  subj_attn  M_C(last)")
        for r in s {
            if r.skipped { print(pad(r.name, 20) + "  " + pad(r.step.map(String.init) ?? "-", 5) + "  (already complete; skipped)"); continue }
            print(pad(r.name, 20) + "  " + pad(r.step.map(String.init) ?? "-", 5) + String(format: "  %6.3f  %9.3f  %8.4f  %9.4f  %9.4f",
                  r.counterfactualAccuracy, r.parametricAccuracy, r.meanContextAttention, r.meanSubjectAttention, r.meanLastLayerMC))
        }
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }


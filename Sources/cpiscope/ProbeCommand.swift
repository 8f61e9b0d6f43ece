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

    @Argument(help: "Checkpoint folder(s), or a folder of checkpoint-N folders.")
    var trajectory: [String]

    @Option(help: "Probe set: JSON array or JSONL with context, question, answer, memory_answer|parametric_answer[, subject, id].")
    var probes: String = "Probes/capitals.jsonl"

    @Option(name: .shortAndLong, help: "Output HDF5 file.")
    var output: String = "Notebooks-out/run.h5"

    @Option(help: "Checkpoints to use: all, every:K, steps:A-B, or a comma list of names/steps.")
    var checkpoints: String?

    @Option(help: "Prompt template: plain, alpaca or tulu.")
    var template: String = "plain"

    @Flag(help: "Add \"Answer the question based on the input context only.\" to the template.")
    var contextOnly = false

    @Option(help: "A template file with {context} and {question} placeholders (instead of --template).")
    var templateFile: String?

    @Option(help: "tokenizer.json (or its folder) to use when checkpoints carry none.")
    var tokenizer: String?

    @Option(help: "Base model folder for LoRA adapter checkpoints.")
    var base: String?

    @Option(help: ArgumentHelp("Greedy generation: maximum new tokens (default: the probe set's longest answer + 12, at least 16).",
                               discussion: "Room for a leading newline and a sentence around the answer, as instruction-tuned models write it."))
    var maxNewTokens: Int?

    @Option(help: ArgumentHelp("Greedy generation stops at this string (repeatable; default: newline).",
                               discussion: "A stop string counts only after the first visible (non-whitespace) character, so a response that opens with a newline is not cut empty; generation also stops at every EOS id of config.json, generation_config.json and the tokenizer."))
    var stop: [String] = []

    @Option(help: "Refuse prompts longer than this many tokens.")
    var maxTokens: Int?

    @Option(help: "Also store full attention patterns and residual streams for these layers (comma list).")
    var dump: String?

    @Option(help: "With --dump: only these probe ids (comma list; default all).")
    var dumpProbes: String?

    @Flag(help: "Overwrite an existing output file.")
    var force = false

    @Flag(help: "Continue an interrupted run: skip checkpoints already complete in the output.")
    var resume = false

    @Flag(help: "No progress line.")
    var quiet = false

    @Option(help: "Threads for matrix products and attention heads (default: all cores).")
    var threads: Int = 0

    @OptionGroup var precision: PrecisionOption

    @Option(help: ArgumentHelp("Probes measured together (default 32): their logit lens, answer scoring and generation share each read of the weights.",
                               discussion: "A group also closes before its KV caches would pass --batch-memory. Larger groups are faster and use more memory; results do not depend on it."))
    var batch: Int = 32

    @Option(help: ArgumentHelp("Memory for one group's KV caches, in MiB (default: a tenth of the model's float32 size, at least 32).", valueName: "MiB"))
    var batchMemory: Int?

    func validate() throws {
        if force && resume { throw ValidationError("--force and --resume exclude each other") }
        if templateFile != nil && template != "plain" { throw ValidationError("give either --template or --template-file") }
        if PromptTemplate.builtin(template) == nil {
            throw ValidationError("unknown --template '\(template)'; choose one of \(PromptTemplate.builtinNames.joined(separator: ", "))")
        }
        if let m = maxNewTokens, m < 0 { throw ValidationError("--max-new-tokens must be ≥ 0") }
        if batch < 1 { throw ValidationError("--batch must be ≥ 1") }
        if let m = batchMemory, m < 1 { throw ValidationError("--batch-memory must be ≥ 1 (MiB)") }
        if let m = maxTokens, m < 1 { throw ValidationError("--max-tokens must be ≥ 1") }
        if let d = dump, (try? parseIDs(d)) == nil { throw ValidationError("--dump takes a comma list of layers, e.g. --dump 0,3") }
    }

    func run() throws {
        let spec = try makeSpec()
        let progress = ProgressLine(quiet: quiet)
        let summaries = try ProbeJob.run(spec, progress: progress)
        if ProcessInfo.processInfo.environment["CPISCOPE_TIMING"] == "1" {
            for (phase, seconds) in PhaseTimes.snapshot { Terminal.error(String(format: "timing: %-28@ %8.2f s", phase.rawValue as NSString, seconds)) }
        }
        printSummary(summaries, output: spec.output)
    }

    func makeSpec() throws -> ProbeJobSpec {
        var refs: [CheckpointRef] = []
        var root: URL? = nil
        for path in trajectory {
            let url = URL(fileURLWithPath: path)
            let found = try Trajectory.discover(at: url)
            if trajectory.count == 1, found.count > 1 || found.first?.path.standardizedFileURL != url.standardizedFileURL { root = url }
            refs += found
        }
        if let sel = checkpoints { refs = try Trajectory.select(refs, spec: sel) }
        var tmpl: PromptTemplate
        if let f = templateFile {
            tmpl = try PromptTemplate.load(url: URL(fileURLWithPath: f))
        } else {
            tmpl = PromptTemplate.builtin(template, contextOnly: contextOnly)!
        }
        var spec = ProbeJobSpec(checkpoints: refs, trajectoryRoot: root, probeFile: URL(fileURLWithPath: probes),
                                template: tmpl, output: URL(fileURLWithPath: output))
        spec.tokenizer = tokenizer.map { URL(fileURLWithPath: $0) }
        spec.base = base.map { URL(fileURLWithPath: $0) }
        spec.force = force
        spec.resume = resume
        if let maxNewTokens { spec.options.maxNewTokens = maxNewTokens } else { spec.automaticMaxNewTokens = true }
        if threads > 0 { spec.options.compute = ComputeContext(threads: threads) }
        spec.precision = precision.precision
        spec.probeGroupSize = batch
        spec.batchCacheBytes = batchMemory.map { $0 << 20 }
        if !stop.isEmpty { spec.options.stopStrings = stop }
        spec.options.maxPromptTokens = maxTokens
        if let d = dump { spec.options.dumpLayers = try parseIDs(d) }
        spec.dumpProbes = dumpProbes.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        spec.commandLine = CommandLine.arguments.joined(separator: " ")
        spec.toolVersion = CPIScopeVersion.string
        return spec
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


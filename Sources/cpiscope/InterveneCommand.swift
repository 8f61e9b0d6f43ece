// `cpiscope intervene`: causal experiments across checkpoints — ablation, attention knockout, weight
// transplant and activation patching — into one HDF5 file.
import ArgumentParser
import Foundation
import Models
import ProbeRun
import TrajectoryJob

struct InterveneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intervene",
        abstract: "Run the probe set under interventions (ablation, knockout, transplant, patching) at every checkpoint; write HDF5.",
        discussion: """
        Each experiment expands to named interventions; every intervention is measured on every probe at every \
        selected checkpoint, next to the clean model: the logit difference logit[context answer] − logit[memory \
        answer] (first tokens) at the answer position, M_C of the model's output, both answers' teacher-forced \
        log-likelihoods, and with --generate the greedy generation and its correctness. Interventions apply in \
        every pass (prompt, scored answers, generation). The layout is in docs/hdf5-schema.md ("Intervention runs").

        Experiments (several may be given):
          --ablate heads:all | heads:L.H,L.H | attn:all | attn:L,L | mlp:all | mlp:L,L   with --ablation zero|mean
              mean: the activation averaged over the probe set at the same checkpoint, per position counted from
              the end of the prompt (as TransformerLens users do it).
          --knockout SPAN[@LAYERS]   e.g. context@all, subject@0-5: attention from the answer position to the span's
              tokens blocked (−∞ before the softmax) in every head of those layers (Geva et al. 2023);
              --knockout-window K sweeps windows of K layers around each layer.
          --transplant-from CHECKPOINT --components attn.qk,attn.ov,attn,mlp,norms --layers each|all|L,L
              each target checkpoint with that component's weights taken from CHECKPOINT (attn.qk: query and key
              projections and q/k norms; attn.ov: value and output projections).
          --patch-from CHECKPOINT --patch heads:each|layers:each --positions answer|all
              activation patching: CHECKPOINT's hook_z (per head) or block output copied into the target's pass;
              the file keeps each probe's patched, target and source logit differences; diff and report give the
              recovery Σ(patched − target) / Σ(source − target) over the probes, with a bootstrap interval.

        Examples:
          cpiscope intervene Demo/full-ft --probes Probes/demo_heldout.jsonl --ablate heads:all -o Notebooks-out/ablate.h5
          cpiscope intervene runs/ift --knockout context@all --knockout subject --knockout-window 3 -o knock.h5
          cpiscope intervene Demo/full-ft --probes Probes/demo_heldout.jsonl --checkpoints checkpoint-500 \\
              --transplant-from checkpoint-50 --components attn.qk,attn.ov,mlp --layers each -o transplant.h5

        Shards (docs/cluster.md): --shard I/N runs part I of N into OUT.shard-I-of-N.h5, split by checkpoints \
        (the default) or with --shard-by interventions by the intervention list (contiguous, balanced); every \
        intervention × probe is measured as in a single-process run, each shard resumes with --resume, and \
        `cpiscope merge` joins them. `cpiscope slurm intervene …` writes the Slurm array and merge jobs.
          cpiscope intervene runs/ift --ablate heads:all -o ablate.h5 --shard 2/4 --shard-by interventions
          cpiscope merge ablate.shard-*-of-4.h5 -o ablate.h5
        """)

    @OptionGroup var job: ProbeRunOptions
    @OptionGroup var experiments: ExperimentOptions

    func validate() throws {
        if !experiments.given { throw ValidationError("give at least one experiment: --ablate, --knockout, --transplant-from or --patch-from") }
        try job.run.check(shardAxes: [.checkpoints, .interventions], command: "intervene")
    }

    func run() throws {
        var spec = InterventionJobSpec(probe: try job.makeSpec(), experiments: experiments.request)
        spec.generate = experiments.generate
        let plan = try InterventionJob.run(spec, progress: InterventionProgress(quiet: job.quiet))
        // This process's checkpoints: a checkpoint shard's part, else all of them (an Int, never an Optional).
        let all = spec.probe.job.checkpoints.count
        let checkpoints = spec.probe.job.shard.flatMap { $0.axis == .checkpoints ? $0.range(of: all).count : nil } ?? all
        print("wrote \(spec.probe.job.output.path): \(plan.count) intervention(s) × \(checkpoints) checkpoint(s)")
    }
}

/// The experiments of `intervene` (also taken by `cpiscope slurm intervene`).
struct ExperimentOptions: ParsableArguments {
    @Option(help: "Ablate: heads:all, heads:L.H,…, attn:all|L,L, mlp:all|L,L (repeatable).")
    var ablate: [String] = []

    @Option(help: "Ablation: zero or mean (the probe set's mean per position from the prompt's end).")
    var ablation: String = "zero"

    @Option(help: "Attention knockout to a span: SPAN[@LAYERS], e.g. context@all, subject@0-5 (repeatable); from the positions of --knockout-from.")
    var knockout: [String] = []

    @Option(help: ArgumentHelp("With --knockout: the query positions blocked: answer (the last prompt token; default), generation (it and every generated token) or all (every position outside the span).",
                               discussion: "answer measures the span's role in the prediction read at the answer position (M_C, logit difference), as Geva et al. do; generated tokens still read the span, so --generate accuracy changes little. generation blocks the whole greedy answer from the span. Interventions from other positions than answer carry 'from generation' / 'from all' in their names.",
                               valueName: "answer|generation|all"))
    var knockoutFrom: KnockoutQueries = .answer

    @Option(help: "With --knockout: sweep windows of K layers centred on each layer.")
    var knockoutWindow: Int?

    @Option(help: "Transplant weights from this checkpoint (a name or step of the trajectory, or a checkpoint folder).")
    var transplantFrom: String?

    @Option(help: "With --transplant-from: comma list of attn.qk, attn.ov, attn, mlp, norms.")
    var components: String?

    @Option(help: "With --transplant-from: each (one intervention per layer), all, or a comma list of layers.")
    var layers: String = "each"

    @Option(help: "Patch activations from this checkpoint (a name or step of the trajectory, or a checkpoint folder).")
    var patchFrom: String?

    @Option(help: "With --patch-from: heads:each or layers:each (repeatable).")
    var patch: [String] = []

    @Option(help: "With --patch-from: answer (the last prompt position) or all (every prompt position).")
    var positions: String = "answer"

    @Flag(help: "Also generate greedily under each intervention and score the generations.")
    var generate = false

    func validate() throws {
        guard AblationMode(rawValue: ablation) != nil else { throw ValidationError("--ablation must be zero or mean") }
        guard PatchPositions(rawValue: positions) != nil else { throw ValidationError("--positions must be answer or all") }
        if components != nil && transplantFrom == nil { throw ValidationError("--components needs --transplant-from") }
        if !patch.isEmpty && patchFrom == nil { throw ValidationError("--patch needs --patch-from") }
        if knockoutWindow != nil && knockout.isEmpty { throw ValidationError("--knockout-window needs --knockout") }
        if knockoutFrom != .answer && knockout.isEmpty { throw ValidationError("--knockout-from needs --knockout") }
    }

    /// Whether any experiment was given.
    var given: Bool { !(ablate.isEmpty && knockout.isEmpty && transplantFrom == nil && patchFrom == nil) }

    var request: ExperimentRequest {
        var request = ExperimentRequest()
        request.ablate = ablate
        request.ablation = AblationMode(rawValue: ablation)!
        request.knockout = knockout
        request.knockoutWindow = knockoutWindow
        request.knockoutFrom = knockoutFrom
        request.transplantFrom = transplantFrom
        request.components = components.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } } ?? []
        request.transplantLayers = layers
        request.patchFrom = patchFrom
        request.patch = patch
        request.patchPositions = PatchPositions(rawValue: positions)!
        return request
    }
}

/// The progress line of `intervene`: checkpoint i/n, intervention j/m, rate, ETA (Progress.swift draws it).
final class InterventionProgress: InterventionJobProgress {
    private let line: ProgressLine
    private var checkpoint = 0, checkpoints = 0, name = ""

    init(quiet: Bool) { line = ProgressLine(quiet: quiet, unit: "intervention") }

    func checkpointStarted(_ index: Int, of total: Int, name: String) { line.checkpointStarted(index, of: total, name: name) }
    func interventionFinished(_ index: Int, of total: Int) { line.probeFinished(index, of: total) }
    func checkpointFinished(_ index: Int, name: String, skipped: Bool) { line.finished(name: name, skipped: skipped) }
}

extension KnockoutQueries: ExpressibleByArgument {}

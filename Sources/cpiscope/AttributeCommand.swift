// `cpiscope attribute`: attribution patching (AtP) of every head, MLP (and residual stream) at every
// checkpoint, from one clean and one reverse pass per probe (ProbeRun/AttributionJob.swift).
import Analysis
import ArgumentParser
import Foundation
import ProbeRun
import TrajectoryJob

struct AttributeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attribute",
        abstract: "Estimate every head's and MLP's causal effect on the answer at every checkpoint (attribution patching); write HDF5.",
        discussion: """
        For each probe and checkpoint: one clean pass and one reverse pass through the model give every \
        component's activation a (hook_z of each head, hook_mlp_out and with resid hook_resid_pre of each layer) \
        and the gradient of the metric at the answer position; the estimate of setting the component to its \
        baseline value at every prompt position is Σ_pos (a_baseline − a_clean) · ∂metric/∂a (attribution \
        patching: Nanda 2023; Kramár et al. 2024, "AtP*"). It costs about three forward passes per probe for \
        every component at once, where ablating or patching the heads one by one costs a pass per head.

        Baselines (--baseline):
          zero                 the activation set to 0 (zero ablation)
          mean                 the probe set's mean at the same checkpoint, per position from the prompt's end
          checkpoint:CKPT      CKPT's activations on the same prompt: which components' change between CKPT
                               and each checkpoint moves the answer (e.g. the peak and the final checkpoint)
          corrupt:no-context   the prompt without its context, aligned at the question
        The metric (--metric) is logit_diff (logit[context answer] − logit[memory answer], first tokens, as in \
        probe and intervene) or mc (M_C = p_ctx / (p_ctx + p_mem)). --verify-top K also runs the real \
        intervention for the K largest estimates per checkpoint and stores the true change beside the \
        estimate: the linear estimate can be wrong where attention saturates (docs/attribution.md).

        The run prints, per checkpoint, the heads with the largest mean estimate (95% bootstrap intervals over \
        probes) and, with several checkpoints, the heads whose estimate changed most between --from (default: \
        the counterfactual-accuracy peak with --generate, else the peak of the clean logit difference) and the \
        last checkpoint. `cpiscope report OUT.h5` renders them.

        Examples:
          cpiscope attribute Demo/full-ft --probes Probes/demo_heldout.jsonl -o Notebooks-out/atp.h5
          cpiscope attribute Demo/full-ft --probes Probes/demo_heldout.jsonl --baseline checkpoint:checkpoint-50 \\
              --components heads,mlp --verify-top 10 -o Notebooks-out/atp-peak.h5
        Shards (--shard I/N, --shard-by checkpoints|probes), --resume, `cpiscope merge` and `cpiscope slurm` \
        work as for probe runs.
        """)

    @OptionGroup var job: ProbeRunOptions
    @OptionGroup var attribution: AttributionOptions

    @Option(help: "Heads listed per checkpoint in the printed summary.")
    var top: Int = 10

    @Option(help: "The checkpoint the printed change starts from (default: the counterfactual-accuracy peak with --generate, else the peak of the mean clean logit difference).")
    var from: String?

    func validate() throws {
        try job.run.check(shardAxes: [.checkpoints, .probes], command: "attribute")
        try attribution.check(job)
        if top < 0 { throw ValidationError("--top must be ≥ 0") }
    }

    func run() throws {
        let spec = try attribution.makeSpec(job)
        try AttributionJob.run(spec, progress: AttributionProgress(quiet: job.quiet))
        let output = spec.probe.job.output
        print("wrote \(output.path)")
        let run = try AttributionRun(url: output)
        let analysis = try AttributionAnalysis(run, from: from, bootstrap: try Bootstrap(seed: 0, resamples: 2000))
        Terminal.flushOutput()
        print(AttributionSummaryText.render(run, analysis, top: top), terminator: "")
    }
}

/// The options of `attribute` (also taken by `cpiscope slurm attribute`).
struct AttributionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Components to estimate: a comma list of heads, mlp, resid.", valueName: "LIST"))
    var components: String = "heads,mlp"

    @Option(help: ArgumentHelp("What the estimate patches in: zero, mean, checkpoint:CKPT or corrupt:no-context.", valueName: "BASELINE"))
    var baseline: String = "zero"

    @Option(help: "The metric at the answer position: logit_diff or mc.")
    var metric: AttributionMetric = .logitDiff

    @Option(help: "Also run the real intervention for the K largest estimates per checkpoint (0: none).")
    var verifyTop: Int = 0

    @Flag(help: "Also generate greedily from each clean prompt and record counterfactual correctness (as probe does): the change is then shown from the counterfactual-accuracy peak.")
    var generate = false

    func check(_ job: ProbeRunOptions) throws {
        let (parsed, unknown) = AttributionComponents.parse(components)
        if parsed == nil { throw ValidationError(AttributionJobError.unknownComponent(unknown ?? components).description + " (heads, mlp, resid)") }
        if AttributionBaseline(baseline) == nil { throw ValidationError(AttributionJobError.badBaseline(baseline).description) }
        if verifyTop < 0 { throw ValidationError("--verify-top must be ≥ 0") }
        if verifyTop > 0 && job.run.shardBy == .probes {
            throw ValidationError("--verify-top ranks components over all probes: shard by checkpoints (--shard-by checkpoints) to verify")
        }
    }

    func makeSpec(_ job: ProbeRunOptions) throws -> AttributionJobSpec {
        var spec = AttributionJobSpec(probe: try job.makeSpec())
        spec.components = AttributionComponents.parse(components).0!
        spec.baseline = AttributionBaseline(baseline)!
        spec.metric = metric
        spec.verifyTop = verifyTop
        spec.generate = generate
        return spec
    }
}

/// The printed summary of an attribution run.
enum AttributionSummaryText {
    static func render(_ run: AttributionRun, _ a: AttributionAnalysis, top: Int) -> String {
        func fmt(_ x: Double) -> String { x.isFinite ? String(format: "%+.3f", x) : "nan" }
        func row(_ r: RankedComponent) -> String {
            "  \(r.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(fmt(r.estimate.value)) [\(fmt(r.estimate.interval.low)), \(fmt(r.estimate.interval.high))]"
        }
        var s = "baseline \(run.baseline), metric \(run.metric); mean estimate over \(run.probes.count) probes [95% bootstrap interval]\n"
        for (c, name) in run.checkpoints.enumerated() {
            s += "\(name): heads\n"
            for r in a.heads[c].prefix(top) { s += row(r) + "\n" }
            if !a.mlps[c].isEmpty {
                s += "\(name): MLPs\n"
                for r in a.mlps[c].prefix(min(top, 5)) { s += row(r) + "\n" }
            }
            if !a.verifiedPairs[c].isEmpty {
                s += String(format: "\(name): estimate vs true effect over %d verified (component, probe) pairs: Pearson %.3f, Spearman %.3f\n",
                            a.verifiedPairs[c].count, a.verifiedPearson[c], a.verifiedSpearman[c])
            }
        }
        if !a.headChange.isEmpty {
            s += "heads whose estimate changed most from \(run.checkpoints[a.from]) to \(run.checkpoints[a.to]) (paired over probes):\n"
            for r in a.headChange.prefix(top) { s += row(r) + "\n" }
        }
        return s
    }
}

final class AttributionProgress: AttributionJobProgress {
    private let line: ProgressLine
    init(quiet: Bool) { line = ProgressLine(quiet: quiet, unit: "probe") }
    func checkpointStarted(_ index: Int, of total: Int, name: String) { line.checkpointStarted(index, of: total, name: name) }
    func probeFinished(_ index: Int, of total: Int) { line.probeFinished(index, of: total) }
    func checkpointFinished(_ index: Int, name: String, skipped: Bool) { line.finished(name: name, skipped: skipped) }
}

extension AttributionMetric: ExpressibleByArgument {}

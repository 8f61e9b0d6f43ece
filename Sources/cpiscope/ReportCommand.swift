// `cpiscope report`: a self-contained HTML report (plus Markdown and CSV) of a probe run or an
// intervention file.
import Analysis
import ArgumentParser
import Foundation
import Reports

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML report (inline SVG charts), report.md and CSV tables for a probe run or an intervention file.",
        discussion: """
        Reads the HDF5 written by `cpiscope probe` and writes into DIR:
          index.html  one self-contained page (no scripts, no network):
                      - accuracy, attention and M_C trajectories, 95% bands
                      - layer × checkpoint heatmaps of context and subject
                        attention
                      - layer × head heatmaps at one checkpoint and of the
                        change between two checkpoints
                      - logit-lens curves for both answers
                      - the verdicts, and a per-probe table (prompt,
                        generation, correctness per checkpoint, top heads)
                      - for runs with direct logit attribution (schema 2):
                        the context and memory heads' DLA trajectory with
                        95% bands, layer × head DLA heatmaps at the first,
                        peak and final checkpoints, heads that changed
                        role, DLA by source span, and the logit difference
                        split into attention, MLP and the rest
          report.md   the same headline numbers, for terminals and PRs
          *.csv       the table behind each chart
        A run with one complete checkpoint gets the same page without the trajectory, verdict and \
        change sections: each measure, the attention per layer and per head, the logit lens and \
        the DLA heads at that checkpoint, with 95% intervals.
        An intervention file (written by `cpiscope intervene`, told apart by its \
        cpiscope_intervention_schema_version attribute) gets its own report, with a section per \
        kind of intervention in the file:
                      - ablation: layer × head heatmaps of the mean change in
                        logit difference per checkpoint (and layer × site
                        for attn/mlp ablations)
                      - transplant: layer × component tables of the change
                        in M_C and counterfactual accuracy with 95%
                        intervals, and a heatmap
                      - knockout: the change in logit difference over the
                        blocked window's layer, one curve per span
                      - patching: layer × head heatmaps of the recovery,
                        Σ(patched − target) / Σ(source − target) over
                        probes (layer × checkpoint for block outputs)
                      - the headline: which component's transplant restores
                        the most context reliance at --checkpoint (default
                        the final one), and the interventions ranked there
          with intervention_effects.csv (every intervention at every checkpoint), one CSV per kind
          and ranking.csv. Definitions: docs/interventions.md.
        Existing files of those names are replaced. Numbers and verdicts are those of `cpiscope diff` \
        with the same --seed and --resamples; definitions in docs/analysis.md.

        Examples:
          cpiscope report Notebooks-out/run.h5 -o Notebooks-out/report
          cpiscope report run.h5 -o report --checkpoint 1000 --from 500 --to 2000
          cpiscope report Notebooks-out/demo/transplant.h5 -o Notebooks-out/transplant-report
          chromium --headless --screenshot=report.png report/index.html
        """)

    @Argument(help: ArgumentHelp("A run file written by `cpiscope probe`, or an intervention file written by `cpiscope intervene`.", valueName: "run.h5"))
    var runFile: String

    @Option(name: .shortAndLong, help: "Output directory (created if missing).")
    var output: String = "Notebooks-out/report"

    @Option(help: "Checkpoint (name or step) of the layer × head heatmap, or of an intervention file's headline and ranking (default the last complete one).")
    var checkpoint: String?

    @Option(help: "Start of the head-change heatmap (default the counterfactual-accuracy peak, or the first checkpoint).")
    var from: String?

    @Option(help: "End of the head-change heatmap (default the last complete checkpoint).")
    var to: String?

    @Option(help: "Span of the head heatmaps: context, subject, ...")
    var span: String = "context"

    @Option(help: "Seed of the bootstrap generator (xoshiro256**).")
    var seed: UInt64 = 0

    @Option(help: "Bootstrap resamples (1...1000000).")
    var resamples: Int = 2000

    @Flag(help: "Print only the paths written.")
    var quiet = false

    func validate() throws {
        if !(1...1_000_000).contains(resamples) { throw ValidationError("--resamples must be in 1...1000000.") }
    }

    func run() throws {
        var o = ReportOptions()
        o.seed = seed; o.resamples = resamples; o.checkpoint = checkpoint; o.from = from; o.to = to; o.span = span
        let dir = URL(fileURLWithPath: output)
        let out = try ReportWriter.write(file: URL(fileURLWithPath: runFile), to: dir, options: o)
        if !quiet { for line in out.lines { print(line) } }
        print("wrote \(dir.appendingPathComponent("index.html").path) (+ report.md and \(out.files.count - 2) CSV files)")
    }
}

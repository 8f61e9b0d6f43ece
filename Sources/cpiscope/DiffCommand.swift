// `cpiscope diff`: what changed between checkpoints of a probe run, and how sure we are; for an
// intervention file, which interventions matter most at one checkpoint.
import Analysis
import ArgumentParser
import Foundation
import Reports

/// `--format` of diff.
enum DiffFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, csv
}

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare checkpoints of a probe run: per-head attention change, trajectories, inversion verdicts.",
        discussion: """
        Reads the HDF5 written by `cpiscope probe` (no model is run) and answers three questions: \
        where does context reliance peak and where does it fall, which layers and heads move, and \
        how sure are we.

        Between two checkpoints (default the first and the last complete ones) it reports, per \
        layer and head, the change in the mean attention mass on a span (--span, default context), \
        then the same per layer (mean over heads), for the logit-lens M_C per lens layer, and for \
        the accuracies and other headline measures. Each change is the mean over probes of the \
        per-probe difference, with a paired bootstrap 95% interval across probes (--seed, \
        --resamples) and n, the number of probes with data at both checkpoints. Heads are ranked by \
        |change|.

        Trajectory analysis, per measure: the curve over checkpoints, the peak (the first checkpoint \
        with the largest mean; a constant series has none), the drop from the peak to the final \
        checkpoint with its interval, and a verdict: inversion when the peak is inside the trajectory \
        and both the rise to it and the drop after it exceed the half-width of their 95% intervals \
        and the minimum effect (the larger of the measure's floor, e.g. 0.05 for accuracies and 0.01 \
        for attention mass, and 0.1 × the curve's range); otherwise rising, falling or flat by the \
        net change first → final. Also Spearman's rho across checkpoints between each \
        layer's context attention and counterfactual accuracy. Definitions: docs/analysis.md.

        Direct logit attribution (runs of schema version 2; shown by default, --no-dla leaves it \
        out; version-1 runs simply have no such section): each head's direct contribution to \
        logit[context answer] − logit[memory answer] at the answer position. At each compared \
        checkpoint it lists the context heads (largest positive mean DLA over probes) and the memory \
        heads (most negative), --dla-top of each, with 95% bootstrap intervals of the mean; then the \
        trajectory of the top 3 context and memory heads at the counterfactual-accuracy peak (first, \
        peak, final, drop and verdict), and the logit difference split into Σ heads, Σ MLP layers, \
        embedding, biases and remainder per checkpoint. CSV sections: dla_head (with role and rank), \
        dla_trajectory and dla_component (mean and 95% band per checkpoint); JSON: dla_rankings and \
        headline.dla.

        A run with one complete checkpoint has no pair and no trajectory: diff shows each measure, \
        head, layer (mean over heads) and lens layer at that checkpoint as the mean over probes with \
        its 95% interval, and the DLA heads there (--from, --to and --each need a second checkpoint).

        --against OTHER.h5 compares two runs (two templates, full finetuning vs LoRA) that share \
        probe ids and complete checkpoints, one checkpoint included (two templates on one model): \
        B − A per measure and checkpoint, paired by probe id. \
        Runs that do not match, files that are not cpiscope runs, and other schema versions are \
        refused. The same --seed gives the same intervals.

        Intervention files (written by `cpiscope intervene`, told apart by their \
        cpiscope_intervention_schema_version attribute): the interventions at one checkpoint \
        (--checkpoint, name or step; default the last complete one) ranked by the size of their \
        effect, largest first (--by: logit-diff, the default, mc, cf or recovery; --kind keeps one \
        of ablate, knockout, transplant, patch). Each row gives the mean change from the clean \
        model over probes (intervened − clean) of the logit difference, M_C and, with generations, \
        counterfactual accuracy, and a patch's recovery Σ(patched − target) / Σ(source − target) over \
        the probes, each with a paired bootstrap 95% \
        interval (--seed, --resamples) and n. --top rows are shown (default 20 in tables, all in \
        json/csv). Then a headline: which transplant restores the most context reliance there, and \
        the strongest intervention of each kind. CSV: one row per intervention with its rank; JSON: \
        interventions and headline. --from, --to, --each, --span, --against and the DLA options \
        apply to probe runs only. Definitions: docs/interventions.md.

        Examples:
          cpiscope diff Notebooks-out/run.h5
          cpiscope diff run.h5 --from checkpoint-500 --to 1500 --top 20
          cpiscope diff run.h5 --each --span subject --format csv > subject.csv
          cpiscope diff plain.h5 --against alpaca.h5 --format json --seed 7
          cpiscope diff run.h5 --each --dla-top 3 --format csv | grep ^dla_head
          cpiscope diff transplant.h5 --checkpoint checkpoint-500 --by cf --top 10
          cpiscope diff ablate.h5 --kind ablate --format csv > heads.csv
        """)

    @Argument(help: ArgumentHelp("A run file written by `cpiscope probe`, or an intervention file written by `cpiscope intervene`.", valueName: "run.h5"))
    var runFile: String

    @Option(help: "First checkpoint (name or step; default the first complete one).")
    var from: String?

    @Option(help: "Second checkpoint (name or step; default the last complete one).")
    var to: String?

    @Flag(help: "Compare every checkpoint with --from (default the first) instead of one pair.")
    var each = false

    @Option(help: "Span whose attention mass is compared: context, subject, question, context_answer, memory_mention, bos, other.")
    var span: String = "context"

    @Option(help: "Output: table, json or csv.")
    var format: DiffFormat = .table

    @Option(help: "Seed of the bootstrap generator (xoshiro256**).")
    var seed: UInt64 = 0

    @Option(help: "Bootstrap resamples (1...1000000).")
    var resamples: Int = 2000

    @Option(help: "Heads listed per checkpoint pair, largest |change| first (default: 10 in tables, all in json/csv).")
    var top: Int?

    @Option(help: "A second run to compare with (same probes and checkpoints).")
    var against: String?

    @Option(help: "Context heads and memory heads listed per compared checkpoint (direct logit attribution).")
    var dlaTop: Int = 5

    @Flag(help: "Leave out direct logit attribution (schema-version-2 runs).")
    var noDla = false

    @Option(help: "Intervention files: the checkpoint (name or step) whose interventions are ranked (default the last complete one).")
    var checkpoint: String?

    @Option(help: "Intervention files: rank by logit-diff, mc, cf (counterfactual accuracy; needs --generate) or recovery.")
    var by: EffectMeasure = .logitDiff

    @Option(help: "Intervention files: show only ablate, knockout, transplant or patch.")
    var kind: String?

    func validate() throws {
        if each && to != nil { throw ValidationError("--each compares every checkpoint with --from; drop --to.") }
        if let top, top < 1 { throw ValidationError("--top must be at least 1.") }
        if dlaTop < 1 { throw ValidationError("--dla-top must be at least 1.") }
        if !(1...1_000_000).contains(resamples) { throw ValidationError("--resamples must be in 1...1000000.") }
    }

    func run() throws {
        let url = URL(fileURLWithPath: runFile)
        if InterventionRun.isInterventionFile(url) { return try interventions(url) }
        if checkpoint != nil || kind != nil || by != .logitDiff {
            throw ValidationError("--checkpoint, --by and --kind apply to intervention files; \(runFile) is a probe run (use --from / --to).")
        }
        var o = DiffOptions()
        o.span = span; o.from = from; o.to = to; o.each = each; o.seed = seed; o.resamples = resamples
        o.dla = !noDla; o.dlaTop = dlaTop
        let result = try DiffAnalysis.run(URL(fileURLWithPath: runFile), options: o,
                                          against: against.map { URL(fileURLWithPath: $0) })
        switch format {
        case .table: print(DiffText.table(result, top: top ?? 10), terminator: "")
        case .json: print(AnalysisJSON.string(AnalysisJSON.result(result, top: top)))
        case .csv: print(DiffText.csv(result, top: top), terminator: "")
        }
    }

    /// `diff` of an intervention file: interventions ranked at one checkpoint.
    func interventions(_ url: URL) throws {
        if each || from != nil || to != nil || against != nil || span != "context" || noDla || dlaTop != 5 {
            throw ValidationError("--from, --to, --each, --span, --against, --dla-top and --no-dla apply to probe runs; \(runFile) is an intervention file (use --checkpoint, --by, --kind).")
        }
        let r = try InterventionRanking(run: try InterventionRun(url: url), checkpoint: checkpoint, by: by, kind: kind,
                                        seed: seed, resamples: resamples)
        switch format {
        case .table: print(DiffText.table(r, top: top ?? 20), terminator: "")
        case .json: print(AnalysisJSON.string(AnalysisJSON.interventions(r, top: top)))
        case .csv: print(DiffText.csv(r, top: top), terminator: "")
        }
    }
}

/// `--by` of diff on an intervention file (the raw values are the option's words).
extension EffectMeasure: ExpressibleByArgument {}

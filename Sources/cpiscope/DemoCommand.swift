// `cpiscope demo`: the whole job on the bundled trajectory — probe, then diff, then report.
import Analysis
import ArgumentParser
import Checkpoints
import Foundation
import Models
import ProbeKit
import ProbeRun
import TrajectoryJob
import Criticality
import Reports

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole job on the bundled IFT trajectory: probe → diff → report.",
        discussion: """
        Demo/ holds a small Llama-architecture model pretrained on synthetic facts and then \
        instruction-finetuned twice (full finetuning, and LoRA adapters), saved as checkpoint-N/ folders; \
        Probes/demo_heldout.jsonl holds held-out knowledge-conflict probes (memorised subjects, \
        contradicting contexts). See Demo/README.md for how they were made.

        The demo probes both trajectories, prints the headline of the full-finetuning run (where \
        counterfactual accuracy peaks, how far it drops with its 95% bootstrap interval, and the layers \
        and heads whose context attention moved most), compares it with the LoRA run, and writes an \
        HTML report. Then it runs one causal experiment (cpiscope intervene): every component of every \
        layer of the final checkpoint transplanted from the peak checkpoint, and prints which transplant \
        restores the most context reliance. Last, the data side (cpiscope criticality): the trajectory's own \
        finetuning data (Demo/ift-data.jsonl: its C, C+S and S points) scored by every full-finetuning \
        checkpoint, with and without each example's context, and the loss of each category over training. \
        Outputs (replaced on each run) go to --output:
          full-ft.h5, lora.h5     the probe runs (docs/hdf5-schema.md)
          transplant.h5           the transplant experiment (docs/interventions.md)
          transplant-report/      its report (index.html, report.md, CSVs)
          report/index.html       the report (plus report.md and CSVs)
          criticality.h5          the finetuning data's scores per checkpoint and category (docs/criticality.md)
          criticality-report/     their report (loss per category C / C+S / S over training, histograms)

        Run it from the repository root:  cpiscope demo
        """)

    @Option(help: "The bundled data folder (full-ft/ and lora/ trajectories).")
    var data: String?

    @Option(help: "The held-out probe set.")
    var probes: String?

    @Option(name: .shortAndLong, help: "Output folder (its demo files are replaced).")
    var output: String = "Notebooks-out/demo"

    @Option(help: "Bootstrap seed.")
    var seed: UInt64 = 0

    @Flag(help: "No progress line.")
    var quiet = false

    func run() throws {
        let fm = FileManager.default
        let full: URL, lora: URL, probeFile: URL
        // The instruction data the trajectory was finetuned on (Tools/train_demo/ift_data.py), for the data side.
        var trainingData: URL? = nil
        if let root = data ?? (fm.fileExists(atPath: "Demo/full-ft") ? "Demo" : nil) {
            full = URL(fileURLWithPath: root).appendingPathComponent("full-ft")
            lora = URL(fileURLWithPath: root).appendingPathComponent("lora")
            trainingData = URL(fileURLWithPath: root).appendingPathComponent("ift-data.jsonl")
            probeFile = URL(fileURLWithPath: probes ?? "Probes/demo_heldout.jsonl")
        } else {
            // The trained demo trajectory is not in this checkout: run the whole job on the bundled
            // test trajectory instead (tiny random-weight Llama; its numbers show the pipeline, not an inversion).
            full = URL(fileURLWithPath: "Tests/Fixtures/probe-trajectory")
            lora = URL(fileURLWithPath: "Tests/Fixtures/probe-lora/adapters")
            probeFile = URL(fileURLWithPath: probes ?? "Tests/Fixtures/probe-trajectory/probes.jsonl")
            Terminal.error("note: Demo/ is not in this checkout; running on the bundled test trajectory "
                           + "(Tests/Fixtures/probe-trajectory: a 3-checkpoint random-weight Llama and its LoRA twin)")
        }
        guard fm.fileExists(atPath: full.path) else {
            throw CLIError(description: "\(full.path): bundled trajectory not found",
                           hint: "Run `cpiscope demo` from the repository root, or pass --data PATH to the Demo folder.")
        }
        let out = URL(fileURLWithPath: output)
        try fm.createDirectory(at: out, withIntermediateDirectories: true)
        let started = Date()
        var runs: [(String, URL)] = []
        for (name, trajectory) in [("full-ft", full), ("lora", lora)] where fm.fileExists(atPath: trajectory.path) {
            let file = out.appendingPathComponent("\(name).h5")
            var spec = ProbeJobSpec(checkpoints: try Trajectory.discover(at: trajectory), trajectoryRoot: trajectory,
                                    probeFile: probeFile, template: .plain, output: file)
            spec.job.force = true
            // The protocol of the demo's transformers goldens (Tools/train_demo/goldens.py): 8 greedy tokens.
            spec.options.maxNewTokens = 8
            spec.job.base = nil
            spec.job.commandLine = CommandLine.arguments.joined(separator: " ")
            spec.job.toolVersion = CPIScopeVersion.string
            if !quiet { Terminal.error("probing \(name): \(spec.job.checkpoints.count) checkpoints") }
            let summaries = try ProbeJob.run(spec, progress: ProgressLine(quiet: quiet))
            ProbeCommand.printTable(summaries)
            runs.append((name, file))
        }
        guard let main = runs.first else { return }
        var options = DiffOptions()
        options.seed = seed
        var reportOptions = ReportOptions()
        reportOptions.seed = seed
        let report = try ReportWriter.write(run: main.1, to: out.appendingPathComponent("report"), options: reportOptions)
        print("")
        print("== headline (\(main.0)) ==")
        for line in report.headline.lines() { print(line) }
        if runs.count > 1 {
            print("")
            print("== \(main.0) vs \(runs[1].0) ==")
            do {
                print(DiffText.table(try DiffAnalysis.run(main.1, options: options, against: runs[1].1), top: 5))
            } catch let e as AnalysisError {
                print("(not compared: \(e.description))")
            }
        }
        // The causal experiment: the final checkpoint with each component of each layer taken from the peak.
        var transplantFile: URL? = nil
        let trajectory = try Trajectory.discover(at: full)
        if let peak = report.headline.peakCheckpoint, let final = trajectory.last, peak != final.name {
            let file = out.appendingPathComponent("transplant.h5")
            var probe = ProbeJobSpec(checkpoints: [final], trajectoryRoot: full, probeFile: probeFile, template: .plain, output: file)
            probe.job.force = true
            probe.options.maxNewTokens = 8
            probe.job.commandLine = CommandLine.arguments.joined(separator: " ")
            probe.job.toolVersion = CPIScopeVersion.string
            var request = ExperimentRequest()
            request.transplantFrom = peak
            request.components = TransplantComponent.allCases.filter { $0 != .attn }.map(\.rawValue)
            var spec = InterventionJobSpec(probe: probe, experiments: request)
            spec.generate = true
            if !quiet { Terminal.error("transplanting from \(peak) into \(final.name): every component of every layer") }
            try InterventionJob.run(spec, progress: InterventionProgress(quiet: quiet))
            let effects = try InterventionEffects.analyze(file, seed: seed)
            print("")
            print("== transplant from the peak (\(peak)) into the final checkpoint (\(final.name)) ==")
            print(InterventionEffects.table(effects))
            if let line = InterventionEffects.transplantHeadline(effects) { print(line) }
            _ = try ReportWriter.write(file: file, to: out.appendingPathComponent("transplant-report"), options: reportOptions)
            transplantFile = file
        }
        // The data side: the trajectory's own finetuning data (C, C+S and S points, in the `plain` template the
        // demo was trained with), scored with and without each context at every full-finetuning checkpoint —
        // the loss of each category over training, the paper's Proposition 1 setting, as measured.
        var criticalityFile: URL? = nil
        if let data = trainingData, fm.fileExists(atPath: data.path) {
            let file = out.appendingPathComponent("criticality.h5")
            var spec = CriticalityJobSpec(checkpoints: trajectory, trajectoryRoot: full, data: data,
                                          template: InstructionTemplate.builtin("plain")!, output: file)
            spec.categoryField = "category"
            spec.job.force = true
            spec.job.commandLine = CommandLine.arguments.joined(separator: " ")
            spec.job.toolVersion = CPIScopeVersion.string
            if !quiet { Terminal.error("scoring \(data.path) (the trajectory's own finetuning data) with and without each context at every checkpoint") }
            let result = try CriticalityJob.run(spec, progress: CriticalityProgressLine(quiet: quiet))
            let summary = try ReportWriter.write(file: file, to: out.appendingPathComponent("criticality-report"), options: reportOptions)
            print("")
            print("== the finetuning data's loss by category (C, C+S, S) over training: \(result.examples) examples, \(result.skipped.count) skipped ==")
            for line in summary.lines.dropFirst() { print(line) }
            criticalityFile = file
        }
        print("")
        print("outputs in \(out.path):")
        for (name, file) in runs { print("  \(file.lastPathComponent)  (\(name) probe run; xarray.open_dataset(path, engine=\"h5netcdf\"))") }
        if let t = transplantFile {
            print("  \(t.lastPathComponent)  (transplant experiment; docs/interventions.md)")
            print("  transplant-report/index.html  (its report: layer × component effects with 95% intervals)")
        }
        print("  report/index.html  (open in a browser), report/report.md, report/*.csv")
        if let c = criticalityFile {
            print("  \(c.lastPathComponent)  (the finetuning data's loss and criticality per checkpoint and category; docs/criticality.md)")
            print("  criticality-report/index.html  (its report: loss per category C / C+S / S over training, histograms)")
        }
        print(String(format: "demo finished in %.1f s", Date().timeIntervalSince(started)))
    }
}

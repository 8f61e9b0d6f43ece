// `cpiscope slurm [probe|intervene|criticality]`: a sharded probe, intervention or criticality run as Slurm jobs — an sbatch array
// (one task per shard, each `cpiscope probe|intervene|criticality … --shard I/N --resume`) and a merge job that runs
// after the whole array succeeded. The scripts are plain sbatch files a user can read, edit and resubmit;
// no scheduler of our own.
import ArgumentParser
import Foundation
import ProbeRun
import TrajectoryJob

struct SlurmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm",
        abstract: "Write (and with --submit, submit) Slurm jobs for a sharded probe or intervention run and its merge.",
        discussion: """
        `cpiscope slurm probe …` (or `cpiscope slurm …`: probe is the default) takes the arguments of \
        `cpiscope probe`; `cpiscope slurm intervene …` takes those of `cpiscope intervene`, `cpiscope slurm attribute …` those of \
        `cpiscope attribute`, and \
        `cpiscope slurm criticality …` those of `cpiscope criticality`. All add the \
        Slurm settings (--tasks, --partition, --time, --mem, --cpus-per-task, --account, --script-dir, \
        --submit) and write array.sbatch, merge.sbatch and submit.sh (see `cpiscope slurm probe --help`).

        Examples:
          cpiscope slurm runs/ift --probes Probes/paper.jsonl -o runs/ift.h5 --tasks 20 \\
              --partition cpu --time 12:00:00 --mem 64G --cpus-per-task 32 --submit
          cpiscope slurm intervene runs/ift --probes Probes/paper.jsonl --ablate heads:all -o runs/ablate.h5 \\
              --shard-by interventions --tasks 16 --partition cpu --time 04:00:00 --cpus-per-task 32 --submit
        """,
        subcommands: [SlurmProbeCommand.self, SlurmInterveneCommand.self, SlurmAttributeCommand.self, SlurmCriticalityCommand.self],
        defaultSubcommand: SlurmProbeCommand.self)
}

/// What `slurm probe` and `slurm intervene` share: where the scripts go, what to write, how to submit.
private let scriptsDiscussion = """
    Writes into --script-dir (default OUT.slurm/ beside -o): array.sbatch (task I of N runs the command \
    with `--shard I/N --resume --threads $SLURM_CPUS_PER_TASK`, writing OUT.shard-I-of-N.h5), merge.sbatch \
    (`cpiscope merge` of every shard into OUT) and submit.sh (submits the array, then the merge with \
    --dependency=afterok on it). A failed or preempted task is resubmitted with the same script \
    (`sbatch --array=I array.sbatch`) and resumes from its last complete checkpoint; then submit \
    merge.sbatch. Results do not depend on the thread count or on the shards: a merged file equals a \
    single-process run with any --threads, bit for bit (docs/cluster.md).
    """

struct SlurmProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Slurm jobs for a sharded `cpiscope probe` run (by checkpoints or probes) and its merge.",
        discussion: scriptsDiscussion + """


        Example:
          cpiscope slurm runs/ift --probes Probes/paper.jsonl -o runs/ift.h5 --tasks 20 \\
              --partition cpu --time 12:00:00 --mem 64G --cpus-per-task 32 --submit
        """)

    @OptionGroup var job: ProbeRunOptions
    @OptionGroup var slurm: SlurmOptions

    func validate() throws {
        try slurm.check(job, axes: [.checkpoints, .probes], command: "probe")
    }

    func run() throws {
        let spec = try job.makeSpec()  // the trajectory, probes and template are checked before any script is written
        try slurm.write(command: "probe", output: job.output, tasks: slurm.tasks ?? spec.job.checkpoints.count,
                        extra: try slurm.batchMemoryForEveryTask(given: job.batchMemory, settings: spec.job))
    }
}

struct SlurmInterveneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intervene",
        abstract: "Slurm jobs for a sharded `cpiscope intervene` run (by checkpoints or interventions) and its merge.",
        discussion: scriptsDiscussion + """


        Takes the arguments of `cpiscope intervene` (the experiments) plus the Slurm settings. With \
        --shard-by interventions the intervention list is split into --tasks contiguous, balanced parts.

        Example:
          cpiscope slurm intervene runs/ift --probes Probes/paper.jsonl --ablate heads:all -o runs/ablate.h5 \\
              --shard-by interventions --tasks 16 --partition cpu --time 04:00:00 --cpus-per-task 32 --submit
        """)

    @OptionGroup var job: ProbeRunOptions
    @OptionGroup var experiments: ExperimentOptions
    @OptionGroup var slurm: SlurmOptions

    func validate() throws {
        if !experiments.given { throw ValidationError("give at least one experiment: --ablate, --knockout, --transplant-from or --patch-from") }
        try slurm.check(job, axes: [.checkpoints, .interventions], command: "intervene")
    }

    func run() throws {
        let spec = try job.makeSpec()
        try slurm.write(command: "intervene", output: job.output, tasks: slurm.tasks ?? spec.job.checkpoints.count)
    }
}

struct SlurmAttributeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attribute",
        abstract: "Slurm jobs for a sharded `cpiscope attribute` run (by checkpoints or probes) and its merge.",
        discussion: scriptsDiscussion + """


        Takes the arguments of `cpiscope attribute` (baseline, components, metric) plus the Slurm settings.

        Example:
          cpiscope slurm attribute runs/ift --probes Probes/paper.jsonl --baseline checkpoint:checkpoint-1000 \\
              -o runs/atp.h5 --partition cpu --time 12:00:00 --cpus-per-task 32 --submit
        """)

    @OptionGroup var job: ProbeRunOptions
    @OptionGroup var attribution: AttributionOptions
    @OptionGroup var slurm: SlurmOptions

    func validate() throws {
        try slurm.check(job, axes: [.checkpoints, .probes], command: "attribute")
        try attribution.check(job)
    }

    func run() throws {
        let spec = try attribution.makeSpec(job)
        try slurm.write(command: "attribute", output: job.output, tasks: slurm.tasks ?? spec.probe.job.checkpoints.count)
    }
}

struct SlurmCriticalityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "criticality",
        abstract: "Slurm jobs for a sharded `cpiscope criticality` run (by checkpoints or examples) and its merge.",
        discussion: scriptsDiscussion + """


        Takes the arguments of `cpiscope criticality` plus the Slurm settings. With --shard-by examples the \
        examples are split into --tasks parts at scoring-batch boundaries. To filter the data, run the same \
        criticality command on the merged file with --resume --filter-lowest P% --write-filtered FILE.

        Example:
          cpiscope slurm criticality runs/ift --data alpaca_data.json -o runs/criticality.h5 \\
              --shard-by examples --tasks 32 --partition cpu --time 02:00:00 --cpus-per-task 16 --submit
        """)

    @OptionGroup var job: CriticalityOptions
    @OptionGroup var slurm: SlurmOptions

    func validate() throws {
        if job.run.shard != nil { throw ValidationError("cpiscope slurm chooses the shards: give --tasks N, not --shard") }
        if job.writeFiltered != nil || job.csv != nil { throw ValidationError("filter (--write-filtered) and --csv after the merge: run criticality on the merged file with --resume") }
        try slurm.check(shardBy: job.run.shardBy, axes: [.checkpoints, .examples], command: "criticality")
    }

    func run() throws {
        let spec = try job.makeSpec()
        try slurm.write(command: "criticality", output: job.output, tasks: slurm.tasks ?? spec.job.checkpoints.count)
    }
}

struct SlurmOptions: ParsableArguments {
    @Option(help: "Array tasks = shards (default: one per checkpoint; required with --shard-by probes or interventions).")
    var tasks: Int?

    @Option(help: "Slurm partition (sbatch --partition).")
    var partition: String?

    @Option(help: "Time limit per task (sbatch --time, e.g. 04:00:00).")
    var time: String?

    @Option(help: "Memory per task (sbatch --mem, e.g. 32G; a number alone is MiB). For a probe run without --batch-memory it also sets every task's --batch-memory to the default for this memory, so that every node groups the probes alike.")
    var mem: String?

    @Option(help: "CPUs per task (sbatch --cpus-per-task); passed to --threads.")
    var cpusPerTask: Int = 1

    @Option(help: "Account to charge (sbatch --account).")
    var account: String?

    @Option(help: "Folder for the scripts and task logs (default: OUT.slurm beside -o).")
    var scriptDir: String?

    @Flag(help: "Submit the array and the merge job with sbatch, and print their job ids.")
    var submit = false

    /// Options of `slurm` that are not the run command's (or that the array script sets itself), with
    /// whether each takes a value.
    static let ownOptions: [String: Bool] = ["--tasks": true, "--partition": true, "--time": true, "--mem": true,
                                             "--cpus-per-task": true, "--account": true, "--script-dir": true, "--submit": false,
                                             "--threads": true, "--force": false, "--resume": false, "--quiet": false]

    func check(_ job: ProbeRunOptions, axes: [JobShard.Axis], command: String) throws {
        if job.run.shard != nil { throw ValidationError("cpiscope slurm chooses the shards: give --tasks N, not --shard") }
        try check(shardBy: job.run.shardBy, axes: axes, command: command)
    }

    func check(shardBy: JobShard.Axis, axes: [JobShard.Axis], command: String) throws {
        if !axes.contains(shardBy) {
            throw ValidationError("\(command) shards by \(axes.map(\.rawValue).joined(separator: " or ")), not \(shardBy.rawValue)")
        }
        if let t = tasks, t < 1 { throw ValidationError("--tasks must be ≥ 1") }
        if tasks == nil && shardBy != .checkpoints { throw ValidationError("--shard-by \(shardBy.rawValue) needs --tasks N") }
        if cpusPerTask < 1 { throw ValidationError("--cpus-per-task must be ≥ 1") }
    }

    /// The probe groups' budget for every task of a probe array: `--batch-memory MiB`, the default that a task
    /// given --mem would compute (BatchMemory: from its memory, not the node's), computed here once from --mem
    /// and the largest checkpoint's weights, so that every task groups the probes alike on any node. Without
    /// it, a task's default follows its node (or cgroup) memory, and tasks on nodes with different memory
    /// would write shards that merge refuses to mix (probe_group_cache_bytes). Nothing when --batch-memory
    /// is given; a note when --mem is not (or is 0: the whole node).
    func batchMemoryForEveryTask(given: Int?, settings: TrajectoryJobSettings) throws -> [String] {
        guard given == nil else { return [] }
        guard let mem, let bytes = Self.slurmMemoryBytes(mem), bytes > 0 else {
            Terminal.error("note: without --mem (or --batch-memory), each task's default --batch-memory follows its node's memory; "
                           + "tasks on nodes with different memory group their probes differently, and merge refuses to mix them. "
                           + "Give --mem, or --batch-memory MiB, to make every task use the same groups.")
            return []
        }
        let weights = try TrajectoryJob.prepare(settings).weightBytes.max() ?? 0
        let budget = BatchMemory(physicalBytes: bytes, availableBytes: nil).defaultBudget(weightBytes: weights)
        print("# every task: --batch-memory \(budget >> 20) (the default for --mem \(mem) beside \(weights >> 20) MiB of weights, "
              + "set here so that every node groups the probes alike)")
        return ["--batch-memory", String(budget >> 20)]
    }

    /// Bytes of an sbatch `--mem` value: a whole number with an optional unit K, M, G or T (binary, as Slurm
    /// reads them; M when none). Nil when it is not of that form.
    static func slurmMemoryBytes(_ text: String) -> Int? {
        var digits = Substring(text.trimmingCharacters(in: .whitespaces)), shift = 20
        if let unit = digits.last, unit.isLetter {
            switch unit.uppercased() {
            case "K": shift = 10
            case "M": shift = 20
            case "G": shift = 30
            case "T": shift = 40
            default: return nil
            }
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = Int(digits), n >= 0, n < (1 << (62 - shift)) else { return nil }
        return n << shift
    }

    /// Writes the scripts for `n` shards of `cpiscope COMMAND …` (and submits them with --submit); `extra`
    /// arguments go to every task.
    func write(command: String, output path: String, tasks n: Int, extra: [String] = []) throws {
        let output = URL(fileURLWithPath: path).standardizedFileURL
        let dir = URL(fileURLWithPath: scriptDir ?? output.deletingPathExtension().path + ".slurm").standardizedFileURL
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let cwd = FileManager.default.currentDirectoryPath
        var given = Array(CommandLine.arguments.drop { $0 != "slurm" }.dropFirst())
        if given.first == command { given.removeFirst() }
        let runArgs = Self.passThrough(given) + extra
        let shards = (1...n).map { JobShard(index: $0, count: n).output(for: output).path }
        let name = "cpiscope-" + output.deletingPathExtension().lastPathComponent

        var header = ["#!/bin/bash", "#SBATCH --job-name=\(name)", "#SBATCH --cpus-per-task=\(cpusPerTask)"]
        for (flag, value) in [("partition", partition), ("time", time), ("mem", mem), ("account", account)] {
            if let value { header.append("#SBATCH --\(flag)=\(value)") }
        }
        let array = (header + [
            "#SBATCH --array=1-\(n)",
            "#SBATCH --output=\(dir.path)/logs/%x-%A_%a.out",
            "# Task I of \(n) runs shard I/\(n) of the \(command) job into \(output.deletingPathExtension().path).shard-I-of-\(n).h5.",
            "# It resumes from its last complete checkpoint: resubmit a failed task with `sbatch --array=I \(dir.path)/array.sbatch`.",
            "set -euo pipefail",
            "cd \(Self.quote(cwd))",
            "exec \(Self.quote(exe)) \(command) \(runArgs.map(Self.quote).joined(separator: " ")) \\",
            "    --shard \"$SLURM_ARRAY_TASK_ID/\(n)\" --threads \"${SLURM_CPUS_PER_TASK:-\(cpusPerTask)}\" --resume --quiet",
        ]).joined(separator: "\n") + "\n"
        let merge = ([header[0], "#SBATCH --job-name=\(name)-merge", "#SBATCH --cpus-per-task=1"]
                     + header.dropFirst(3).filter { !$0.hasPrefix("#SBATCH --mem") } + [
            "#SBATCH --output=\(dir.path)/logs/%x-%j.out",
            "# Runs after every array task succeeded (submitted with --dependency=afterok:ARRAY_JOB_ID).",
            "set -euo pipefail",
            "cd \(Self.quote(cwd))",
            "exec \(Self.quote(exe)) merge \\",
        ] + shards.map { "    \(Self.quote($0)) \\" } + ["    -o \(Self.quote(output.path)) --force"]).joined(separator: "\n") + "\n"
        let submitScript = """
            #!/bin/bash
            # Submits the \(command) array, then the merge job once every task has succeeded.
            set -euo pipefail
            array=$(sbatch --parsable \(Self.quote(dir.path))/array.sbatch)
            merge=$(sbatch --parsable --dependency=afterok:${array%%;*} \(Self.quote(dir.path))/merge.sbatch)
            echo "array job ${array%%;*} (\(n) tasks), merge job ${merge%%;*}"

            """
        for (file, text) in [("array.sbatch", array), ("merge.sbatch", merge), ("submit.sh", submitScript)] {
            let url = dir.appendingPathComponent(file)
            try Data(text.utf8).write(to: url)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        }
        print("# \(dir.path)/array.sbatch\n\(array)\n# \(dir.path)/merge.sbatch\n\(merge)")
        guard submit else {
            print("submit with: \(dir.path)/submit.sh")
            return
        }
        let arrayID = try Self.sbatch([dir.appendingPathComponent("array.sbatch").path])
        let mergeID = try Self.sbatch(["--dependency=afterok:\(arrayID)", dir.appendingPathComponent("merge.sbatch").path])
        print("submitted array job \(arrayID) (\(n) tasks) and merge job \(mergeID)")
        print("watch with: squeue -j \(arrayID),\(mergeID)   (logs: \(dir.path)/logs/)")
        print("result: \(output.path) once job \(mergeID) has finished")
    }

    /// The user's run arguments without `slurm`'s own options (and their values).
    static func passThrough(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var skip = false
        for a in arguments {
            if skip { skip = false; continue }
            let flag = String(a.split(separator: "=", maxSplits: 1).first ?? "")
            if let takesValue = ownOptions[flag] { skip = takesValue && !a.contains("="); continue }
            out.append(a)
        }
        return out
    }

    /// Runs `sbatch --parsable ARGS`; returns the job id.
    static func sbatch(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sbatch", "--parsable"] + arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        do { try p.run() } catch {
            throw CLIError(description: "cannot run sbatch: \(error)", hint: "Run on a Slurm login node, or submit the scripts yourself.")
        }
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0, let id = text.split(separator: "\n").first?.split(separator: ";").first else {
            throw CLIError(description: "sbatch \(arguments.joined(separator: " ")) failed: \(errText.trimmingCharacters(in: .whitespacesAndNewlines))",
                           hint: "Check the partition, account and limits with `sinfo` and `sacctmgr show assoc`.")
        }
        return String(id)
    }

    /// A word for bash, single-quoted unless it is plainly safe.
    static func quote(_ s: String) -> String {
        if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./:=,+@%".contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

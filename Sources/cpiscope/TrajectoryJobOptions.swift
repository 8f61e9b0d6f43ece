// The options every job over a trajectory shares (`probe`, `intervene`, `criticality`, and `slurm` through
// them): which checkpoints, where the output goes, the tokenizer and base model, threads and precision,
// sharding, and overwrite/resume/quiet. One declaration, so the help text and the checks cannot drift;
// each command adds only its own options (ProbeRunOptions, CriticalityOptions).
import ArgumentParser
import Checkpoints
import Foundation
import ProbeRun
import TrajectoryJob
import TensorCore

struct TrajectoryJobOptions: ParsableArguments {
    @Argument(help: "Checkpoint folder(s), or a folder of checkpoint-N folders (a model folder for one checkpoint).")
    var trajectory: [String]

    @Option(name: .shortAndLong, help: "Output HDF5 file (default: Notebooks-out/run.h5; for criticality Notebooks-out/criticality.h5).")
    var output: String?

    @Option(help: "Checkpoints to use: all, every:K, steps:A-B, or a comma list of names/steps.")
    var checkpoints: String?

    @Option(help: "tokenizer.json (or its folder) to use when checkpoints carry none.")
    var tokenizer: String?

    @Option(help: "Base model folder for LoRA adapter checkpoints.")
    var base: String?

    @Option(help: "Threads for the matrix products, attention heads and other loops (default: all cores; results do not depend on it).")
    var threads: Int = 0

    @OptionGroup var precision: PrecisionOption

    @Option(help: ArgumentHelp("Run part I of N of the job into OUT.shard-I-of-N.h5 (`cpiscope merge` joins them; docs/cluster.md).", valueName: "I/N"))
    var shard: String?

    @Option(help: ArgumentHelp("What --shard splits: checkpoints (contiguous, balanced) for every job; probes (at probe-group boundaries) for probe; interventions (contiguous, balanced) for intervene; examples (at scoring-batch boundaries) for criticality.",
                               valueName: "checkpoints|probes|interventions|examples"))
    var shardBy: JobShard.Axis = .checkpoints

    @Flag(help: "Overwrite an existing output file.")
    var force = false

    @Flag(help: "Continue an interrupted run: skip checkpoints already complete in the output (every setting that changes a stored value must be the file's).")
    var resume = false

    @Flag(help: "No progress line.")
    var quiet = false

    func validate() throws {
        if force && resume { throw ValidationError("--force and --resume exclude each other") }
        if let s = shard, JobShard(s) == nil { throw ValidationError("--shard takes I/N with 1 ≤ I ≤ N, e.g. 2/4") }
        if threads < 0 { throw ValidationError("--threads must be ≥ 0 (0: all cores)") }
    }

    /// `--shard-by` must be one of `axes` for `command`.
    func check(shardAxes axes: [JobShard.Axis], command: String) throws {
        guard axes.contains(shardBy) else {
            throw ValidationError("\(command) shards by \(axes.map(\.rawValue).joined(separator: " or ")) (--shard-by), not \(shardBy.rawValue)")
        }
    }

    /// The output path, with the command's default.
    func outputPath(default fallback: String) -> String { output ?? fallback }

    /// The checkpoints named by TRAJECTORY and --checkpoints, and the trajectory folder.
    func discover() throws -> (refs: [CheckpointRef], root: URL?) { try discoverCheckpoints(trajectory, select: checkpoints) }

    /// The shard of --shard/--shard-by, if any.
    var jobShard: JobShard? { shard.flatMap { JobShard($0, axis: shardBy) } }

    /// The job layer's settings for `refs` (from `discover()`), writing to `output` (a shard writes
    /// OUT.shard-I-of-N.h5 beside it).
    func settings(refs: [CheckpointRef], root: URL?, output: String) -> TrajectoryJobSettings {
        var s = TrajectoryJobSettings(checkpoints: refs, trajectoryRoot: root, output: URL(fileURLWithPath: output))
        s.tokenizer = tokenizerURL
        s.base = baseURL
        s.force = force
        s.resume = resume
        s.precision = precision.precision
        s.threads = threads > 0 ? threads : nil
        s.commandLine = CommandLine.arguments.joined(separator: " ")
        s.toolVersion = CPIScopeVersion.string
        if let shard = jobShard {
            s.shard = shard
            s.output = shard.output(for: s.output)
        }
        return s
    }

    /// The folder whose chat template `--template chat` renders (beside the job's tokenizer).
    func chatTemplateFolder(refs: [CheckpointRef], root: URL?) throws -> URL {
        guard let folder = ChatPrompt.folder(refs: refs, tokenizer: tokenizerURL, trajectoryRoot: root, base: baseURL) else {
            throw ValidationError("--template chat: no tokenizer folder to read a chat template from; pass --tokenizer DIR")
        }
        return folder
    }

    var tokenizerURL: URL? { tokenizer.map { URL(fileURLWithPath: $0) } }
    var baseURL: URL? { base.map { URL(fileURLWithPath: $0) } }
}

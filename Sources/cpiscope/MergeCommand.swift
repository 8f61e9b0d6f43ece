// `cpiscope merge`: the shard files of one `probe --shard I/N` or `intervene --shard I/N` job into one file.
import ArgumentParser
import Foundation
import ProbeRun
import TrajectoryJob

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Merge the shard files of one sharded probe or intervention run (--shard I/N) into one file.",
        discussion: """
        The merged file holds the same data as a single-process run of the same job (the digest of \
        Tests/Fixtures/reliability/h5_digest.py, which ignores only `created` and `command_line`). \
        Shards that do not belong together are refused with the file and field at fault: another probe \
        file, template, model, tool version, precision, probe group size or thread count, another \
        intervention list, a probe-run shard among intervention shards; overlapping or missing \
        checkpoints, probes or interventions; an incomplete shard. --allow-partial writes what is \
        complete, leaves the rest at the fill value (NaN, -1, "") with checkpoint_complete 0, lists \
        missing items in the attribute merge_missing_checkpoints, merge_missing_probes or \
        merge_missing_interventions, and marks the run incomplete (docs/cluster.md).
        """)

    @Argument(help: "Shard files (OUT.shard-I-of-N.h5), in any order.")
    var shards: [String]

    @Option(name: .shortAndLong, help: "Merged HDF5 file.")
    var output: String

    @Flag(help: "Write what is complete; mark missing or incomplete parts missing.")
    var allowPartial = false

    @Flag(help: "Overwrite an existing output file.")
    var force = false

    func run() throws {
        let outcome = try RunMerge.merge(shards.map { URL(fileURLWithPath: $0) }, into: URL(fileURLWithPath: output),
                                         allowPartial: allowPartial, overwrite: force)
        print("merged \(shards.count) shard(s) into \(output)")
        if !outcome.missing.isEmpty { print("missing (marked incomplete): \(outcome.missing.joined(separator: ", "))") }
    }
}

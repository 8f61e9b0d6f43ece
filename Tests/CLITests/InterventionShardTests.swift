// Sharded intervention runs (`intervene --shard I/N --shard-by checkpoints|interventions`) and `cpiscope
// merge`: 1, 2 and 3 shards by checkpoint and by intervention merge into a file with the same data as a
// single-process `intervene` run (reference: that run; comparison: Tests/Fixtures/reliability/h5_digest.py
// `same`, which hashes every variable's raw bytes and every root attribute but `created` and
// `command_line`; tolerance 0). The job has every kind whose measurement could depend on the rest of the
// job — mean ablation (the probe set's means), knockout, transplant, patching (its source's recordings) —
// and --generate. Shards of different jobs, and overlapping, missing or incomplete shards, are refused
// with an error naming the file and the field.
import Foundation
import Testing

/// The fixture trajectory (3 checkpoints, 6 probes, 2 layers × 4 heads) under 13 interventions: 8 head
/// mean ablations, 1 knockout, 2 transplants, 2 block-output patches; 1 thread, groups of 2 probes.
private func interveneArguments(_ output: URL, experiments: [String]? = nil, extra: [String] = []) -> [String] {
    ["intervene", Paths.trajectory.path, "--probes", Paths.trajectory.appendingPathComponent("probes.jsonl").path,
     "-o", output.path, "--threads", "1", "--batch", "2", "--quiet", "--generate", "--max-new-tokens", "4"]
        + (experiments ?? ["--ablate", "heads:all", "--ablation", "mean", "--knockout", "context@all",
                           "--transplant-from", "checkpoint-20", "--components", "attn.qk", "--layers", "each",
                           "--patch-from", "checkpoint-0", "--patch", "layers:each"])
        + extra
}

/// Writes intervention shards I/N for I in `indices` into `dir/iv.shard-I-of-N.h5`; returns their paths.
private func interventionShards(_ dir: URL, _ n: Int, by axis: String, indices: [Int]? = nil, experiments: [String]? = nil,
                                extra: [String] = []) throws -> [URL] {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return try (indices ?? Array(1...n)).map { i in
        _ = try runOK(interveneArguments(dir.appendingPathComponent("iv.h5"), experiments: experiments,
                                         extra: ["--shard", "\(i)/\(n)", "--shard-by", axis] + extra))
        return dir.appendingPathComponent("iv.shard-\(i)-of-\(n).h5")
    }
}

@Suite("Intervention shards and merge (intervene --shard, cpiscope merge)", .serialized,
       .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)),
       .enabled(if: Available.h5py, Comment(rawValue: Available.missingH5py)))
struct InterventionShardTests {
    @Test("by checkpoint and by intervention, 1, 2 and 3 shards merge into the single-process run's data (digest equal, tolerance 0)")
    func mergeEqualsSingleProcess() throws {
        let dir = try makeTempDir("iv-shard")
        defer { try? FileManager.default.removeItem(at: dir) }
        let single = dir.appendingPathComponent("single.h5")
        _ = try runOK(interveneArguments(single))
        for axis in ["checkpoints", "interventions"] {
            for count in [1, 2, 3] {
                let sub = dir.appendingPathComponent("\(axis)-\(count)"), merged = sub.appendingPathComponent("merged.h5")
                let parts = try interventionShards(sub, count, by: axis)
                _ = try runOK(["merge"] + parts.reversed().map(\.path) + ["-o", merged.path])
                let (equal, detail) = try same(single, merged)
                #expect(equal, "merged (\(axis), \(count) shards) differs from the single-process run: \(detail)")
            }
        }
    }

    @Test("an intervention shard resumes: re-run with --resume it leaves its data unchanged; a different intervention list is refused")
    func shardResumes() throws {
        let dir = try makeTempDir("iv-shard-resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let parts = try interventionShards(dir, 2, by: "interventions")
        let copy = dir.appendingPathComponent("before.h5")
        try FileManager.default.copyItem(at: parts[1], to: copy)
        _ = try interventionShards(dir, 2, by: "interventions", indices: [2], extra: ["--resume"])
        #expect(try same(copy, parts[1]).0)
        let r = try Exec.cpiscope(interveneArguments(dir.appendingPathComponent("iv.h5"), experiments: ["--ablate", "mlp:all"],
                                                     extra: ["--shard", "2/2", "--shard-by", "interventions", "--resume"]))
        #expect(r.status == 1 && (r.errorLine ?? "").contains("interventions differ"), "\(r.summary)")
    }

    @Test("refused, naming file and field: another intervention list, probe file, template, group size, tool version, precision; a probe shard; --shard-by probes")
    func refusesOtherJobs() throws {
        let dir = try makeTempDir("iv-shard-refuse")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("merged.h5")
        let experiments = ["--ablate", "heads:all"]
        let parts = try interventionShards(dir, 2, by: "interventions", experiments: experiments)
        func other(_ tag: String, experiments: [String] = experiments, extra: [String] = []) throws -> URL {
            try interventionShards(dir.appendingPathComponent(tag), 2, by: "interventions", indices: [2], experiments: experiments, extra: extra)[0]
        }
        var error = try refusal([parts[0], try other("list", experiments: ["--ablate", "heads:all", "--ablation", "mean"])], out)
        #expect(error.contains("shard_job_interventions") && error.contains("list/iv.shard-2-of-2.h5"), "\(error)")
        let probes = dir.appendingPathComponent("probes.jsonl")
        let text = try String(contentsOf: Paths.trajectory.appendingPathComponent("probes.jsonl"), encoding: .utf8)
        try text.replacingOccurrences(of: "Marseille. Ministries", with: "Marseille. The ministries").write(to: probes, atomically: true, encoding: .utf8)
        error = try refusal([parts[0], try other("probes", extra: ["--probes", probes.path])], out)
        #expect(error.contains("probe_file_sha256"), "\(error)")
        error = try refusal([parts[0], try other("template", extra: ["--template", "alpaca"])], out)
        #expect(error.contains("template"), "\(error)")
        error = try refusal([parts[0], try other("batch", extra: ["--batch", "3"])], out)
        #expect(error.contains("probe_group_size"), "\(error)")
        for (field, value) in [("tool_version", "'0.0.0-other'"), ("precision", "'bf16'"), ("model_config", "'{}'")] {
            let copy = dir.appendingPathComponent("\(field)/iv.shard-2-of-2.h5")
            try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: parts[1], to: copy)
            try tamper(copy, [field: value])
            error = try refusal([parts[0], copy], out)
            #expect(error.contains(field) && error.contains(copy.path), "\(error)")
        }
        // A probe-run shard of the same split is another kind of file.
        let probeShard = dir.appendingPathComponent("probe-run")
        try FileManager.default.createDirectory(at: probeShard, withIntermediateDirectories: true)
        _ = try runOK(["probe", Paths.trajectory.path, "--probes", Paths.trajectory.appendingPathComponent("probes.jsonl").path,
                       "-o", probeShard.appendingPathComponent("iv.h5").path, "--threads", "1", "--batch", "2", "--quiet", "--shard", "2/2"])
        error = try refusal([parts[0], probeShard.appendingPathComponent("iv.shard-2-of-2.h5")], out)
        #expect(error.contains("schema_version"), "\(error)")
        // intervene does not shard by probes; probe does not shard by interventions.
        let r = try Exec.cpiscope(interveneArguments(dir.appendingPathComponent("x.h5"), extra: ["--shard", "1/2", "--shard-by", "probes"]))
        #expect(r.status != 0 && r.stderr.contains("not probes"), "\(r.summary)")
        let p = try Exec.cpiscope(["probe", Paths.trajectory.path, "-o", dir.appendingPathComponent("y.h5").path,
                                   "--shard", "1/2", "--shard-by", "interventions"])
        #expect(p.status != 0 && p.stderr.contains("interventions"), "\(p.summary)")
    }

    @Test("cpiscope slurm intervene writes an array of intervene shards (the experiments passed through, slurm's own options not) and a merge job")
    func slurmScripts() throws {
        let dir = try makeTempDir("iv-slurm")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("iv.h5")
        _ = try runOK(["slurm", "intervene", Paths.trajectory.path, "--probes", Paths.trajectory.appendingPathComponent("probes.jsonl").path,
                       "--ablate", "heads:all", "--knockout", "context@all", "-o", out.path, "--shard-by", "interventions",
                       "--tasks", "3", "--cpus-per-task", "2", "--partition", "cpu"])
        let scripts = dir.appendingPathComponent("iv.slurm")
        let array = try String(contentsOf: scripts.appendingPathComponent("array.sbatch"), encoding: .utf8)
        let merge = try String(contentsOf: scripts.appendingPathComponent("merge.sbatch"), encoding: .utf8)
        let exec = array.split(separator: "\n").first { $0.hasPrefix("exec ") } ?? ""
        #expect(exec.contains(" intervene ") && exec.contains("--ablate heads:all") && exec.contains("--knockout context@all")
                && exec.contains("--shard-by interventions"), "\(exec)")
        #expect(!exec.contains("--tasks") && !exec.contains("--partition") && !exec.contains("--cpus-per-task") && !exec.contains(" slurm "), "\(exec)")
        #expect(array.contains("#SBATCH --array=1-3") && array.contains("--shard \"$SLURM_ARRAY_TASK_ID/3\""), "\(array)")
        for i in 1...3 { #expect(merge.contains("iv.shard-\(i)-of-3.h5"), "\(merge)") }
        // Without --tasks an intervention split has no default; probe shards are not intervene's.
        var r = try Exec.cpiscope(["slurm", "intervene", Paths.trajectory.path, "--ablate", "heads:all", "-o", out.path, "--shard-by", "interventions"])
        #expect(r.status != 0 && r.stderr.contains("--tasks"), "\(r.summary)")
        r = try Exec.cpiscope(["slurm", "intervene", Paths.trajectory.path, "--ablate", "heads:all", "-o", out.path, "--shard-by", "probes", "--tasks", "2"])
        #expect(r.status != 0 && r.stderr.contains("not probes"), "\(r.summary)")
    }

    @Test("refused: overlapping, missing and incomplete intervention shards; --allow-partial marks the missing interventions")
    func refusesIncompleteSets() throws {
        let dir = try makeTempDir("iv-shard-gaps")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("merged.h5")
        let experiments = ["--ablate", "heads:all"]
        let parts = try interventionShards(dir, 2, by: "interventions", experiments: experiments)
        var error = try refusal([parts[0], parts[0]], out)
        #expect(error.contains("ablate L0H0 zero") && error.contains("earlier shard"), "\(error)")
        error = try refusal([parts[0]], out)
        #expect(error.contains("intervention") && error.contains("ablate L1H0 zero"), "missing intervention not named: \(error)")
        let three = try interventionShards(dir, 3, by: "interventions", indices: [3], experiments: experiments)
        error = try refusal([parts[0], three[0]], out)
        #expect(error.contains("shard_count"), "\(error)")
        let byCheckpoint = try interventionShards(dir.appendingPathComponent("c"), 2, by: "checkpoints", indices: [2], experiments: experiments)
        error = try refusal([parts[0], byCheckpoint[0]], out)
        #expect(error.contains("shard_by"), "\(error)")

        // --allow-partial with shard 2 missing: its interventions are NaN and listed, every checkpoint incomplete.
        let r = try runOK(["merge", parts[0].path, "-o", out.path, "--allow-partial"])
        #expect(r.stdout.contains("ablate L1H3 zero"))
        let merged = try RunDigest(out)
        #expect(merged.complete == [0, 0, 0])
        #expect(merged.runComplete == 0)
        #expect(merged.attributes["merge_missing_interventions"]?.contains("ablate L1H0 zero") == true)
        try FileManager.default.removeItem(at: out)

        // An interrupted shard: checkpoint-20 never completed.
        try tamper(parts[1], ["complete": "np.int64(0)"])
        let t = try Exec.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c",
            "import sys, h5py\nwith h5py.File(sys.argv[1], 'r+') as f: f['checkpoint_complete'][2] = 0", parts[1].path], timeout: 60)
        try #require(t.status == 0, "\(t.summary)")
        error = try refusal(parts, out)
        #expect(error.contains("incomplete") && error.contains("checkpoint-20") && error.contains(parts[1].lastPathComponent), "\(error)")
    }
}

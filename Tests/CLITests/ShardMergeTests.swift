// Sharded probe runs and `cpiscope merge`: a job split by checkpoint or by probe group into 1, 2 and 3
// shards merges into a file with the same data as a single-process run of the same job (reference: that
// run; comparison: Tests/Fixtures/reliability/h5_digest.py `same`, which hashes every variable's raw bytes
// and every root attribute but `created` and `command_line`; tolerance 0). Shards of different jobs, and
// overlapping, missing or incomplete shards, are refused with an error naming the file and the field.
import Foundation
import Testing

/// The fixture trajectory (3 checkpoints, 6 probes) with 1 thread and groups of 2 probes (3 groups).
private func probeArguments(_ output: URL, probes: URL = Paths.trajectory.appendingPathComponent("probes.jsonl"),
                            trajectory: URL = Paths.trajectory, extra: [String] = []) -> [String] {
    ["probe", trajectory.path, "--probes", probes.path, "-o", output.path, "--threads", "1", "--batch", "2", "--quiet"] + extra
}

func runOK(_ arguments: [String]) throws -> ExecResult {
    let r = try Exec.cpiscope(arguments)
    try #require(r.exitedNormally && r.status == 0, "cpiscope \(arguments.joined(separator: " ")): \(r.summary)")
    return r
}

/// Writes shards I/N for I in `indices` of the job into `dir/run.shard-I-of-N.h5`; returns their paths.
private func shards(_ dir: URL, _ n: Int, by axis: String = "checkpoints", indices: [Int]? = nil, extra: [String] = []) throws -> [URL] {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return try (indices ?? Array(1...n)).map { i in
        _ = try runOK(probeArguments(dir.appendingPathComponent("run.h5"), extra: ["--shard", "\(i)/\(n)", "--shard-by", axis] + extra))
        return dir.appendingPathComponent("run.shard-\(i)-of-\(n).h5")
    }
}

/// A temporary folder holding shards 1/2 and 2/2 of the fixture job, and where a merge would go.
private func twoShards(_ tag: String) throws -> (dir: URL, out: URL, parts: [URL]) {
    let dir = try makeTempDir(tag)
    return (dir, dir.appendingPathComponent("merged.h5"), try shards(dir, 2))
}

/// h5_digest.py `same`: whether two files hold the same data, and what differs.
func same(_ a: URL, _ b: URL) throws -> (Bool, String) {
    let r = try Exec.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", Paths.digestScript.path, "same", a.path, b.path], timeout: 300)
    try #require(r.exitedNormally && (r.status == 0 || r.status == 1), "h5_digest.py same: \(r.summary)")
    return (r.status == 0, r.stdout)
}

/// Changes root attributes of a file through h5py (`name=python literal` pairs).
func tamper(_ file: URL, _ assignments: [String: String]) throws {
    let body = assignments.map { "f.attrs[\"\($0.key)\"] = \($0.value)" }.joined(separator: "; ")
    let r = try Exec.run(URL(fileURLWithPath: "/usr/bin/env"),
                         ["python3", "-c", "import sys, h5py, numpy as np\nwith h5py.File(sys.argv[1], 'r+') as f: \(body)", file.path],
                         timeout: 120)
    try #require(r.exitedNormally && r.status == 0, "h5py tamper: \(r.summary)")
}

/// Runs merge expecting a refusal; returns the error line.
func refusal(_ inputs: [URL], _ output: URL, extra: [String] = []) throws -> String {
    let r = try Exec.cpiscope(["merge"] + inputs.map(\.path) + ["-o", output.path] + extra)
    #expect(r.exitedNormally && r.status == 1, "merge should refuse: \(r.summary)")
    #expect(!FileManager.default.fileExists(atPath: output.path), "a refused merge left \(output.path)")
    #expect(r.hintLine != nil, "no hint line: \(r.stderr)")
    return r.errorLine ?? ""
}

@Suite("Shards and merge (probe --shard, cpiscope merge)", .serialized,
       .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)),
       .enabled(if: Available.h5py, Comment(rawValue: Available.missingH5py)))
struct ShardMergeTests {
    @Test("by checkpoint and by probe group, 1, 2 and 3 shards merge into the single-process run's data (digest equal, tolerance 0)",
          arguments: ["checkpoints", "probes"], [1, 2, 3])
    func mergeEqualsSingleProcess(axis: String, count: Int) throws {
        let dir = try makeTempDir("shard")
        defer { try? FileManager.default.removeItem(at: dir) }
        let single = dir.appendingPathComponent("single.h5"), merged = dir.appendingPathComponent("merged.h5")
        _ = try runOK(probeArguments(single))
        let parts = try shards(dir, count, by: axis)
        for p in parts { #expect(FileManager.default.fileExists(atPath: p.path), "missing shard file \(p.lastPathComponent)") }
        _ = try runOK(["merge"] + parts.reversed().map(\.path) + ["-o", merged.path])
        let (equal, detail) = try same(single, merged)
        #expect(equal, "merged (\(axis), \(count) shards) differs from the single-process run: \(detail)")
    }

    @Test("a shard resumes: a finished shard re-run with --resume leaves its data unchanged")
    func shardResumes() throws {
        let dir = try makeTempDir("shard-resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let parts = try shards(dir, 2)
        let copy = dir.appendingPathComponent("before.h5")
        try FileManager.default.copyItem(at: parts[0], to: copy)
        _ = try shards(dir, 2, indices: [1], extra: ["--resume"])
        #expect(try same(copy, parts[0]).0)
    }

    @Test("refused, naming file and field: another probe file, template, model config, tool version, precision, group size; not a shard (another thread count merges)")
    func refusesOtherJobs() throws {
        let (dir, out, parts) = try twoShards("shard-refuse")
        defer { try? FileManager.default.removeItem(at: dir) }
        func other(_ tag: String, probes: URL? = nil, trajectory: URL = Paths.trajectory, extra: [String] = []) throws -> URL {
            let sub = dir.appendingPathComponent(tag)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            _ = try runOK(probeArguments(sub.appendingPathComponent("run.h5"),
                                         probes: probes ?? Paths.trajectory.appendingPathComponent("probes.jsonl"),
                                         trajectory: trajectory, extra: ["--shard", "2/2"] + extra))
            return sub.appendingPathComponent("run.shard-2-of-2.h5")
        }
        // Another probe file: the same ids, one context changed.
        let probes = dir.appendingPathComponent("probes.jsonl")
        let text = try String(contentsOf: Paths.trajectory.appendingPathComponent("probes.jsonl"), encoding: .utf8)
        try text.replacingOccurrences(of: "Marseille. Ministries", with: "Marseille. The ministries").write(to: probes, atomically: true, encoding: .utf8)
        var error = try refusal([parts[0], try other("probes", probes: probes)], out)
        #expect(error.contains("probe_file_sha256") && error.contains("run.shard-2-of-2.h5"), "\(error)")
        error = try refusal([parts[0], try other("template", extra: ["--template", "alpaca"])], out)
        #expect(error.contains("template"), "\(error)")
        error = try refusal([parts[0], try other("batch", extra: ["--batch", "3"])], out)
        #expect(error.contains("probe_group_size"), "\(error)")
        // Another thread count is not another job: results do not depend on it (DeterminismTests).
        _ = try runOK(["merge", parts[0].path, try other("threads", extra: ["--threads", "2"]).path, "-o", out.path])
        try FileManager.default.removeItem(at: out)
        // Another model config: a copy of the trajectory whose config.json carries one more field.
        let traj = dir.appendingPathComponent("trajectory")
        try FileManager.default.copyItem(at: Paths.trajectory, to: traj)
        for c in ["checkpoint-0", "checkpoint-10", "checkpoint-20"] {
            let config = traj.appendingPathComponent("\(c)/config.json")
            let json = try String(contentsOf: config, encoding: .utf8)
            try json.replacingOccurrences(of: "{", with: "{\"_note\": \"copy\", ", options: [], range: json.range(of: "{"))
                .write(to: config, atomically: true, encoding: .utf8)
        }
        error = try refusal([parts[0], try other("model", trajectory: traj)], out)
        #expect(error.contains("model_config"), "\(error)")
        // Tool version and precision, changed in a copy of shard 2.
        for (field, value) in [("tool_version", "'0.0.0-other'"), ("precision", "'bf16'")] {
            let copy = dir.appendingPathComponent("\(field)/run.shard-2-of-2.h5")
            try FileManager.default.createDirectory(at: copy.deletingLastPathComponent(), withIntermediateDirectories: true)
            try FileManager.default.copyItem(at: parts[1], to: copy)
            try tamper(copy, [field: value])
            error = try refusal([parts[0], copy], out)
            #expect(error.contains(field) && error.contains(copy.path), "\(error)")
        }
        // A single-process run is not a shard.
        let single = dir.appendingPathComponent("single.h5")
        _ = try runOK(probeArguments(single))
        error = try refusal([parts[0], single], out)
        #expect(error.contains("not a shard") && error.contains("single.h5"), "\(error)")
    }

    @Test("refused: overlapping shards, a missing shard, shards of another split, an incomplete shard")
    func refusesIncompleteSets() throws {
        let (dir, out, parts) = try twoShards("shard-gaps")
        defer { try? FileManager.default.removeItem(at: dir) }
        var error = try refusal([parts[0], parts[0]], out)
        #expect(error.contains("checkpoint-0") && error.contains("earlier shard"), "\(error)")
        error = try refusal([parts[0]], out)
        #expect(error.contains("checkpoint-20"), "missing checkpoint not named: \(error)")
        let three = try shards(dir, 3, indices: [3])
        error = try refusal([parts[0], three[0]], out)
        #expect(error.contains("shard_count"), "\(error)")
        let probeShard = try shards(dir.appendingPathComponent("p"), 2, by: "probes", indices: [2])
        error = try refusal([parts[0], probeShard[0]], out)
        #expect(error.contains("shard_by"), "\(error)")
        // An interrupted shard: checkpoint-20 never completed.
        try tamper(parts[1], ["complete": "np.int64(0)"])
        let r = try Exec.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c",
            "import sys, h5py\nwith h5py.File(sys.argv[1], 'r+') as f: f['checkpoint_complete'][0] = 0", parts[1].path], timeout: 60)
        try #require(r.status == 0, "\(r.summary)")
        error = try refusal(parts, out)
        #expect(error.contains("incomplete") && error.contains("checkpoint-20") && error.contains(parts[1].lastPathComponent), "\(error)")
    }

    @Test("--allow-partial writes what is complete, checkpoint_complete 0 and merge_missing_checkpoints for the rest, run incomplete")
    func allowPartial() throws {
        let dir = try makeTempDir("shard-partial")
        defer { try? FileManager.default.removeItem(at: dir) }
        let single = dir.appendingPathComponent("single.h5"), out = dir.appendingPathComponent("merged.h5")
        _ = try runOK(probeArguments(single))
        let parts = try shards(dir, 2, indices: [1])
        let r = try runOK(["merge", parts[0].path, "-o", out.path, "--allow-partial"])
        #expect(r.stdout.contains("checkpoint-20"))
        let merged = try RunDigest(out), reference = try RunDigest(single)
        #expect(merged.complete == [1, 1, 0])
        #expect(merged.runComplete == 0)
        #expect(merged.differences(from: reference, slices: [0, 1]).isEmpty, "complete checkpoints differ from the single-process run")
        #expect(merged.attributes["merge_missing_checkpoints"]?.contains("checkpoint-20") == true)
    }
}

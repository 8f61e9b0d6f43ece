// `cpiscope attribute` as a trajectory job: shards by checkpoint and by probe merge into the single-process
// run's data, any --threads writes the same file, --resume continues and refuses changed settings, and bad
// input (an unknown component or baseline, a baseline checkpoint of another shape) fails before any file is
// written, naming the culprit. Reference: the single-process, one-thread run; comparison:
// Tests/Fixtures/reliability/h5_digest.py `same` (every variable's raw bytes and every root attribute but
// `created` and `command_line`; tolerance 0).
import Foundation
import Testing

/// The fixture trajectory (3 checkpoints, 6 probes, 2 layers × 4 heads), mean baseline (its values depend on
/// the whole probe set, so a probe shard must still use every probe's mean), heads, MLPs and resid.
private func attributeArguments(_ output: URL, extra: [String] = []) -> [String] {
    ["attribute", Paths.trajectory.path, "--probes", Paths.trajectory.appendingPathComponent("probes.jsonl").path,
     "-o", output.path, "--threads", "1", "--quiet", "--components", "heads,mlp,resid", "--baseline", "mean"] + extra
}

@Suite("Attribution runs as trajectory jobs (attribute --shard, --threads, --resume, merge, bad input)", .serialized,
       .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)),
       .enabled(if: Available.h5py, Comment(rawValue: Available.missingH5py)))
struct AttributionShardTests {
    @Test("by checkpoint and by probe, 2 and 3 shards merge into the single-process run's data; --threads 2 writes the same file")
    func shardsMergeAndThreads() throws {
        let dir = try makeTempDir("atp-shard")
        defer { try? FileManager.default.removeItem(at: dir) }
        let single = dir.appendingPathComponent("single.h5")
        _ = try runOK(attributeArguments(single))
        let threads = dir.appendingPathComponent("threads.h5")
        _ = try runOK(attributeArguments(threads, extra: ["--threads", "2"]))
        let (equalThreads, detailThreads) = try same(single, threads)
        #expect(equalThreads, "--threads 2 differs from --threads 1: \(detailThreads)")
        for axis in ["checkpoints", "probes"] {
            for n in [2, 3] {
                let sub = dir.appendingPathComponent("\(axis)-\(n)")
                try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
                let parts = try (1...n).map { i -> URL in
                    _ = try runOK(attributeArguments(sub.appendingPathComponent("atp.h5"), extra: ["--shard", "\(i)/\(n)", "--shard-by", axis]))
                    return sub.appendingPathComponent("atp.shard-\(i)-of-\(n).h5")
                }
                let merged = sub.appendingPathComponent("merged.h5")
                _ = try runOK(["merge"] + parts.map(\.path) + ["-o", merged.path])
                let (equal, detail) = try same(single, merged)
                #expect(equal, "merged (\(axis), \(n) shards) differs from the single-process run: \(detail)")
            }
        }
    }

    @Test("--resume leaves a finished file's data unchanged; a changed baseline is refused, naming it, and the file is kept")
    func resume() throws {
        let dir = try makeTempDir("atp-resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("atp.h5"), copy = dir.appendingPathComponent("copy.h5")
        _ = try runOK(attributeArguments(out))
        try FileManager.default.copyItem(at: out, to: copy)
        _ = try runOK(attributeArguments(out, extra: ["--resume"]))
        let (equal, detail) = try same(copy, out)
        #expect(equal, "a resumed finished run changed: \(detail)")
        let refused = try Exec.cpiscope(attributeArguments(out, extra: ["--resume"]).map { $0 == "mean" ? "zero" : $0 })
        #expect(refused.exitedNormally && refused.status == 1)
        #expect(refused.errorLine?.contains("baseline") == true, "\(refused.stderr)")
        let (unchanged, _) = try same(copy, out)
        #expect(unchanged)
    }

    @Test("--generate records the clean generation's counterfactual correctness, equal to the probe run's (same greedy generation and rule)")
    func generateMatchesProbe() throws {
        let dir = try makeTempDir("atp-generate")
        defer { try? FileManager.default.removeItem(at: dir) }
        let atp = dir.appendingPathComponent("atp.h5"), run = dir.appendingPathComponent("run.h5")
        // The demo trajectory at its peak and its end: its models do say the answers (the fixture's do not).
        let demo = Paths.root.appendingPathComponent("Demo/full-ft").path, probes = Paths.root.appendingPathComponent("Probes/demo_heldout.jsonl").path
        let common = ["--probes", probes, "--checkpoints", "checkpoint-50,checkpoint-500", "--threads", "1", "--quiet"]
        _ = try runOK(["attribute", demo, "-o", atp.path, "--generate"] + common)
        _ = try runOK(["probe", demo, "-o", run.path] + common)
        let r = try Exec.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", """
            import sys, h5py, numpy as np
            a = h5py.File(sys.argv[1])["clean_counterfactual_correct"][()]
            b = h5py.File(sys.argv[2])["counterfactual_correct"][()]
            print(a.tolist(), b.tolist()); sys.exit(0 if a.shape == b.shape and (a == b).all() and a.sum() > 0 else 1)
            """, atp.path, run.path], timeout: 120)
        #expect(r.exitedNormally && r.status == 0, "attribution vs probe counterfactual_correct: \(r.stdout) \(r.stderr)")
    }

    @Test("bad input: unknown component or baseline (usage error), a baseline checkpoint of another shape (error naming it); no file")
    func badInput() throws {
        let dir = try makeTempDir("atp-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("atp.h5")
        let component = try Exec.cpiscope(attributeArguments(out, extra: ["--components", "heads,attn"]))
        #expect(component.exitedNormally && component.status == 64, "\(component.summary)")
        #expect(component.stderr.contains("unknown component 'attn'"))
        let baseline = try Exec.cpiscope(attributeArguments(out, extra: ["--baseline", "ones"]))
        #expect(baseline.exitedNormally && baseline.status == 64)
        #expect(baseline.stderr.contains("--baseline 'ones'"))
        let other = Paths.fixtures.appendingPathComponent("models/llama-gqa")
        let shape = try Exec.cpiscope(attributeArguments(out, extra: ["--baseline", "checkpoint:\(other.path)"]))
        #expect(shape.exitedNormally && shape.status == 1, "\(shape.summary)")
        #expect(shape.errorLine?.contains("llama-gqa") == true, "\(shape.stderr)")
        #expect(shape.stderr.contains("hint: "))
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }
}

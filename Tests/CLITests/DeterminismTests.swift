// Determinism of `cpiscope probe`: the same job twice gives bit-identical datasets (the attributes
// `created` and `command_line` aside), and so do other thread counts and a sharded run merged. Reference: the first run. Comparison through h5py (Tests/Fixtures/reliability/h5_digest.py).
import Foundation
import Testing

@Suite("Determinism (cpiscope probe)", .serialized,
       .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)),
       .enabled(if: Available.h5py, Comment(rawValue: Available.missingH5py)))
struct DeterminismTests {
    /// The fixture trajectory (3 checkpoints, 6 probes) with full patterns and residual streams dumped.
    static let job = [Paths.trajectory.path, "--probes", Paths.trajectory.appendingPathComponent("probes.jsonl").path,
                      "--dump", "0,1", "--quiet"]

    @Test("two runs of the same job write bit-identical datasets (tolerance 0; timestamps and command line aside)")
    func twoRunsIdentical() throws {
        let dir = try makeTempDir("det")
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a.h5"), b = dir.appendingPathComponent("b.h5")
        for out in [a, b] {
            let r = try Exec.cpiscope(["probe"] + Self.job + ["-o", out.path])
            try #require(r.exitedNormally && r.status == 0, "run failed: \(r.summary)")
        }
        let da = try RunDigest(a), db = try RunDigest(b)
        #expect(da.variables.count >= 30, "expected every variable of the schema, found \(da.variables.count)")
        let diff = da.differences(from: db)
        #expect(diff.isEmpty, "variables that differ between two identical runs: \(diff)")
        var x = da.attributes, y = db.attributes
        #expect(x["created"] != nil && x["command_line"] != nil)
        for k in ["created", "command_line"] { x[k] = nil; y[k] = nil }
        #expect(x == y, "attributes differ: \(x.filter { y[$0.key] != $0.value }.keys.sorted())")
    }

    /// Products are tiled by shape and every other parallel loop splits across outputs only
    /// (TensorCore/Parallel.swift), so the thread count and the shard layout change no bit: tolerance 0.
    @Test("--threads 1, 2, 3 and 8, and a 2-way probe-group shard merged, write bit-identical run files (h5_digest same: every variable and attribute but created/command_line)")
    func threadCountAndShards() throws {
        let dir = try makeTempDir("threads")
        defer { try? FileManager.default.removeItem(at: dir) }
        let job = Self.job + ["--batch", "2"]
        func run(_ out: URL, _ extra: [String], dump: Bool = true) throws {
            let arguments = dump ? job : job.filter { !["--dump", "0,1"].contains($0) }
            let r = try Exec.cpiscope(["probe"] + arguments + ["-o", out.path] + extra)
            try #require(r.exitedNormally && r.status == 0, "run with \(extra) failed: \(r.summary)")
        }
        let reference = dir.appendingPathComponent("t1.h5")
        try run(reference, ["--threads", "1"])
        for n in ["2", "3", "8"] {
            let out = dir.appendingPathComponent("t\(n).h5")
            try run(out, ["--threads", n])
            let (equal, report) = try same(reference, out)
            #expect(equal, "--threads \(n) differs from --threads 1: \(report)")
        }
        // Two shards by probe group (which excludes --dump), each with its own thread count, merged, against
        // a --threads 1 run of the same job.
        let plain = dir.appendingPathComponent("plain-t1.h5")
        try run(plain, ["--threads", "1"], dump: false)
        let sharded = dir.appendingPathComponent("sharded.h5")
        try run(sharded, ["--shard", "1/2", "--shard-by", "probes", "--threads", "2"], dump: false)
        try run(sharded, ["--shard", "2/2", "--shard-by", "probes", "--threads", "3"], dump: false)
        let merged = dir.appendingPathComponent("merged.h5")
        _ = try runOK(["merge", dir.appendingPathComponent("sharded.shard-1-of-2.h5").path,
                       dir.appendingPathComponent("sharded.shard-2-of-2.h5").path, "-o", merged.path])
        let (equal, report) = try same(plain, merged)
        #expect(equal, "a 2-way shard (threads 2 and 3) merged differs from a single --threads 1 run: \(report)")
    }
}

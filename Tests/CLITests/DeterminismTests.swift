// Determinism of `cpiscope probe`: the same job twice gives bit-identical datasets (the attributes
// `created` and `command_line` aside), and the thread count changes numbers by at most a stated
// tolerance. Reference: the first run. Comparison through h5py (Tests/Fixtures/reliability/h5_digest.py).
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

    /// Tolerances for --threads 1 vs 2: float32 sums reordered by the BLAS threads differ in the
    /// last bits; attention mass and M_C are probabilities (absolute 1e-5), log-probabilities and
    /// log-likelihoods are sums of logs over a vocabulary (absolute 1e-4), residual streams 1e-4.
    static let tolerances: [String: Double] = [
        "attention_mass": 1e-5, "mc_ratio": 1e-5, "dump_attention_pattern": 1e-5,
        "lens_logprob": 1e-4, "answer_loglik": 1e-4, "dump_residual": 1e-4,
    ]

    @Test("--threads 1 and --threads 2 agree: attention mass, M_C, patterns within 1e-5; log-probs, log-likelihoods, residuals within 1e-4; everything else equal")
    func threadCount() throws {
        let dir = try makeTempDir("threads")
        defer { try? FileManager.default.removeItem(at: dir) }
        let one = dir.appendingPathComponent("t1.h5"), two = dir.appendingPathComponent("t2.h5")
        for (out, n) in [(one, "1"), (two, "2")] {
            let r = try Exec.cpiscope(["probe"] + Self.job + ["-o", out.path, "--threads", n])
            try #require(r.exitedNormally && r.status == 0, "run with --threads \(n) failed: \(r.summary)")
        }
        let r = try Exec.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", Paths.digestScript.path, "diff", one.path, two.path], timeout: 300)
        try #require(r.exitedNormally && r.status == 0, "h5_digest.py diff failed: \(r.summary)")
        let diffs = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(diffs.count >= 30)
        for (name, value) in diffs.sorted(by: { $0.key < $1.key }) {
            if let tol = Self.tolerances[name] {
                let d = value as? Double
                #expect(d != nil && d! <= tol, "\(name): max |Δ| between --threads 1 and 2 = \(value), tolerance \(tol)")
                print("threads 1 vs 2: \(name) max |Δ| = \(value) (tolerance \(tol))")
            } else if name != "command_line" {
                // Integer, string and coordinate variables: equal element by element (count of differences 0).
                #expect((value as? Int) == 0, "\(name): \(value) elements differ between --threads 1 and 2")
            }
        }
    }
}

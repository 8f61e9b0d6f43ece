// A probe run over a LoRA adapter trajectory equals a probe run over the same checkpoints merged and
// saved as full models by peft (issue #5). Fixture: Tests/Fixtures/probe-lora (Tools/goldens/make_probe_fixtures.py):
// checkpoint-0 is the base itself, checkpoint-10 and -20 are PEFT adapters whose base is a relative path.
// Tolerances: attention mass ≤ 1e-5, log-probabilities / M_C / log-likelihoods ≤ 1e-4, generations identical.
import Checkpoints
import Foundation
import HDF5Store
import ProbeKit
import ProbeRun
import Testing
import TrajectoryJob

@Suite("Adapter trajectories")
struct AdapterTrajectoryTests {
    @Test("adapters over a base give the numbers of the peft-merged checkpoints")
    func adaptersEqualMerged() throws {
        let root = fixtures.appendingPathComponent("probe-lora")
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var outputs: [URL] = []
        for sub in ["adapters", "merged"] {
            let traj = root.appendingPathComponent(sub)
            let out = dir.appendingPathComponent("\(sub).h5")
            var s = ProbeJobSpec(checkpoints: try Trajectory.discover(at: traj), trajectoryRoot: traj,
                                 probeFile: trajectoryDir.appendingPathComponent("probes.jsonl"), template: .plain, output: out)
            s.options.maxNewTokens = 6
            _ = try ProbeJob.run(s)
            outputs.append(out)
        }
        let a = try HDF5File.open(at: outputs[0], writable: false), m = try HDF5File.open(at: outputs[1], writable: false)
        defer { try? a.close(); try? m.close() }
        #expect(try a.readStrings("checkpoint").values == ["checkpoint-0", "checkpoint-10", "checkpoint-20"])
        for (name, tol) in [("attention_mass", Float(1e-5)), ("lens_logprob", 1e-4), ("mc_ratio", 1e-4), ("answer_loglik", 1e-4)] {
            let x = try a.readFloats(name).values, y = try m.readFloats(name).values
            let diff = zip(x, y).map { $0.isNaN && $1.isNaN ? 0 : abs($0 - $1) }.max() ?? .nan
            #expect(diff <= tol, "\(name): adapters vs merged max |Δ| = \(diff)")
        }
        #expect(try a.readStrings("generated").values == m.readStrings("generated").values)
        // The adapter checkpoints record their summary; the full ones record none.
        let adapters = try a.readStrings("adapter").values
        #expect(adapters[0].isEmpty && adapters[1].contains("\"rank\":4") && adapters[2].contains("q_proj"))
        // …including the base's content hash, the same for both adapters.
        let baseHash = try #require(adapters[1].firstMatch(of: /"baseContentHash":"(sha256:[0-9a-f]{64})"/)?.1)
        #expect(adapters[2].contains("\"baseContentHash\":\"\(baseHash)\""))
        #expect(try m.readStrings("adapter").values.allSatisfy(\.isEmpty))
        // And the adapters really change the numbers (the comparison above is not vacuous).
        let x = try a.readFloats("lens_logprob").values
        let per = x.count / 3
        let moved = zip(x[0..<per], x[per..<(2 * per)]).map { abs($0 - $1) }.max()!
        #expect(moved > 1e-2, "checkpoint-10 differs from the base by only \(moved)")
    }
}

// The probe job's precision: recorded in the run file, fp32 by default for F32 checkpoints, and bf16
// results within the bf16 tolerance of fp32 ones (docs/precision.md).
import Checkpoints
import Foundation
import HDF5Store
import ProbeKit
import ProbeRun
import TensorCore
import Testing
import TrajectoryJob

@Suite("probe job precision")
struct PrecisionJobTests {
    func run(_ precision: Precision?) throws -> HDF5File {
        let out = try tempDir().appendingPathComponent("precision-\(precision?.rawValue ?? "default").h5")
        var spec = ProbeJobSpec(checkpoints: try Trajectory.discover(at: newlineDir), trajectoryRoot: newlineDir,
                                probeFile: newlineDir.appendingPathComponent("probes.jsonl"), template: .alpaca, output: out)
        spec.job.precision = precision
        _ = try ProbeJob.run(spec)
        return try HDF5File.open(at: out, writable: false)
    }

    @Test("F32 checkpoint: fp32 by default and recorded; --precision bf16 recorded, M_C and attention mass within 0.05 of fp32, the same greedy text")
    func recorded() throws {
        let fp32 = try run(nil)
        #expect(try fp32.attribute("precision") == .string("fp32"))
        try #require(bf16Available, "oneDNN bf16 matmul unavailable")
        let bf16 = try run(.bf16)
        #expect(try bf16.attribute("precision") == .string("bf16"))
        for name in ["attention_mass", "mc_ratio"] {
            let x = try fp32.readFloats(name).values, y = try bf16.readFloats(name).values
            let worst = zip(x, y).filter { $0.isFinite && $1.isFinite }.map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 0.05, "\(name): bf16 vs fp32 max |Δ| = \(worst)")
        }
        #expect(try fp32.readStrings("generated").values == bf16.readStrings("generated").values)
    }

    @Test("--resume refuses a file written at another precision (the finished checkpoints would not compare), and accepts another thread count (results do not depend on it)")
    func resumeChecksWhatResultsDependOn() throws {
        let out = try tempDir().appendingPathComponent("resume.h5")
        var spec = ProbeJobSpec(checkpoints: try Trajectory.discover(at: newlineDir), trajectoryRoot: newlineDir,
                                probeFile: newlineDir.appendingPathComponent("probes.jsonl"), template: .alpaca, output: out)
        spec.job.precision = .fp32
        spec.options.compute = ComputeContext(threads: 1)
        _ = try ProbeJob.run(spec)
        spec.job.resume = true
        _ = try ProbeJob.run(spec)  // the same settings resume (nothing left to do)
        var other = spec
        other.job.precision = .bf16
        do { _ = try ProbeJob.run(other); Issue.record("resumed an fp32 file in bf16") } catch let e as ProbeRunError {
            #expect(e.description.contains("precision") && e.description.contains("--precision"), "\(e.description)")
        }
        other = spec
        other.options.compute = ComputeContext(threads: 2)
        #expect(throws: Never.self, "another thread count must resume") { _ = try ProbeJob.run(other) }
    }
}

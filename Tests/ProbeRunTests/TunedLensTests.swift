// The tuned lens against tuned-lens 0.2.0 (Tests/Fixtures/torch-bin/tuned-lens, built by
// Tools/goldens/make_torch_bin_fixtures.py: TunedLens.from_model on probe-trajectory/checkpoint-20 with
// random translators, TunedLens.save; reference logits = lens(hidden_states[i], i) for i < L and the
// model's logits at i = L). Tolerance: logits max |Δ| ≤ 1e-4, as for the forward pass.
import Checkpoints
import Foundation
import HDF5Store
import Instrumentation
import Models
import ProbeRun
import TensorCore
import Testing
import TrajectoryJob

let tunedLensDir = fixtures.appendingPathComponent("torch-bin/tuned-lens")

@Suite("Tuned lens", .serialized)
struct TunedLensTests {
    @Test("tuned-lens logits at every lens layer and position equal tuned_lens.TunedLens within 1e-4")
    func matchesPackage() throws {
        let lens = try TunedLens.load(from: tunedLensDir)
        let model = try DecoderModel.load(from: trajectoryDir.appendingPathComponent("checkpoint-20"))
        let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: tunedLensDir.appendingPathComponent("reference.json"))) as! [String: Any]
        let ids = (meta["ids"] as! [NSNumber]).map(\.intValue)
        let reference = try WeightStore(files: [tunedLensDir.appendingPathComponent("reference.safetensors")]).tensor("logits")
        let L = model.config.layers, d = model.config.dModel, V = model.config.vocab, n = ids.count
        #expect(reference.shape == [L + 1, n, V])
        let rec = ResidualRecorder(position: n - 1, layers: L, dModel: d, keepStreamsFor: Set(0...L))
        _ = try model.forward(ids, logits: .last, observer: rec)
        // One "probe" per position: its residuals at every lens layer.
        let perPosition = (0..<n).map { p in (0...L).flatMap { l in rec.streams[l]![(p * d)..<((p + 1) * d)] } }
        let translated = lens.translate(perPosition)
        var worst: Float = 0
        var logits = [Float](repeating: 0, count: V)
        for p in 0..<n {
            for l in 0...L {
                translated[p].withUnsafeBufferPointer { r in
                    logits.withUnsafeMutableBufferPointer { model.logitLens(r.baseAddress! + l * d, rows: 1, into: $0.baseAddress!, compute: .serial) }
                }
                for v in 0..<V { worst = max(worst, abs(logits[v] - reference.pointer[(l * n + p) * V + v])) }
            }
        }
        print("tuned lens vs tuned_lens.TunedLens: max |Δ| = \(worst)")
        #expect(worst <= 1e-4, "max |Δ| = \(worst)")
    }

    @Test("the last lens layer is untouched, and a lens of another depth is refused naming both values")
    func lastLayerAndMismatch() throws {
        let lens = try TunedLens.load(from: tunedLensDir)
        #expect(lens.layers == 2 && lens.dModel == 32 && lens.bias)
        let r = (0..<(3 * 32)).map { Float($0) / 50 }
        #expect(Array(lens.translate([r])[0][64...]) == Array(r[64...]))
        let deeper = try TunedLens.load(from: fixtures.appendingPathComponent("torch-bin/tuned-lens-3-layers"))
        do {
            try deeper.check(modelLayers: 2, modelDModel: 32, model: "m")
            Issue.record("a 3-layer lens was accepted for a 2-layer model")
        } catch let e as TunedLensError {
            #expect(e.description.contains("num_hidden_layers = 3") && e.description.contains("has 2"))
        }
    }

    @Test("probe --lens records tuned_lens_* beside the logit lens; the last lens layer equals the logit lens")
    func probeRun() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run.h5")
        var s = try spec(out, checkpoints: Array(try Trajectory.discover(at: trajectoryDir).suffix(1)))
        s.tunedLens = tunedLensDir
        s.options.maxNewTokens = 2
        _ = try ProbeJob.run(s)
        let f = try HDF5File.open(at: out, writable: false)
        defer { try? f.close() }
        let logit = try f.readFloats("lens_logprob"), tuned = try f.readFloats("tuned_lens_logprob")
        #expect(tuned.shape == logit.shape)
        let mc = try f.readFloats("mc_ratio").values, tunedMC = try f.readFloats("tuned_mc_ratio").values
        let lensLayers = 3
        for i in stride(from: lensLayers - 1, to: logit.values.count, by: lensLayers) {
            #expect(logit.values[i] == tuned.values[i] || (logit.values[i].isNaN && tuned.values[i].isNaN))
        }
        for i in stride(from: lensLayers - 1, to: mc.count, by: lensLayers) { #expect(mc[i] == tunedMC[i] || mc[i].isNaN) }
        // Earlier layers differ: the translators are not the identity.
        #expect(zip(logit.values, tuned.values).contains { $0.isFinite && $0 != $1 })
        #expect(try f.readInts32("tuned_lens_rank").values.allSatisfy { $0 >= 1 || $0 == -1 })
        #expect(try f.attribute("tuned_lens_path") == .string(tunedLensDir.path))
        #expect(try f.attribute("checkpoint_weight_formats") == .strings(["safetensors"]))
    }

    @Test("a trajectory mixing safetensors and pytorch_model.bin runs, and the run records each format")
    func mixedTrajectory() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let root = fixtures.appendingPathComponent("torch-bin/mixed")
        let out = dir.appendingPathComponent("run.h5")
        var s = ProbeJobSpec(checkpoints: try Trajectory.discover(at: root), trajectoryRoot: root,
                             probeFile: root.appendingPathComponent("probes.jsonl"), template: .plain, output: out)
        s.options.maxNewTokens = 2
        _ = try ProbeJob.run(s)
        let f = try HDF5File.open(at: out, writable: false)
        defer { try? f.close() }
        #expect(try f.attribute("checkpoint_weight_formats") == .strings(["safetensors", "pytorch-zip"]))
        // checkpoint-10 from .bin measures exactly as checkpoint-10 from safetensors in the reference trajectory.
        let ref = dir.appendingPathComponent("ref.h5")
        var r = try spec(ref, checkpoints: Array(try Trajectory.discover(at: trajectoryDir).prefix(2)))
        r.options.maxNewTokens = 2
        _ = try ProbeJob.run(r)
        let g = try HDF5File.open(at: ref, writable: false)
        defer { try? g.close() }
        let a = try f.readFloats("lens_logprob").values, b = try g.readFloats("lens_logprob").values
        #expect(zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
    }
}

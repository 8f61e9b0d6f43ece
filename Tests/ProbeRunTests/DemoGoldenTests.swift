// The bundled demo trajectory (Demo/) against its transformers goldens, checkpoint by checkpoint.
// Reference: Demo/goldens/<run>/checkpoint-N.safetensors, written by Tools/train_demo/goldens.py
// (transformers 5.24.0 + peft 0.21.2, fp32, eager attention; LoRA checkpoints as an unmerged PeftModel over
// Demo/base). For the two golden probes of every checkpoint of both runs, the prompt's token ids are fed to
// the forward pass as the probe job does (last-position logits only, so the last block is pruned).
// Tolerances (issue #7): attention probabilities max |Δ| ≤ 1e-5; logits max |Δ| ≤ 1e-4.
// The whole `cpiscope demo` job is checked against the same goldens in Tests/python/test_demo.py.
import Checkpoints
import Foundation
import Instrumentation
import Models
import TensorCore
import Testing

let demoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Demo")
let demoPresent = FileManager.default.fileExists(atPath: demoRoot.appendingPathComponent("goldens").path)

@Suite("Demo trajectory matches transformers", .enabled(if: demoPresent, "Demo/ is not in this checkout"))
struct DemoGoldenTests {
    @Test("attention patterns and last-position logits at every checkpoint", arguments: ["full-ft", "lora"])
    func checkpoints(run: String) throws {
        let trajectory = try Trajectory.discover(at: demoRoot.appendingPathComponent(run))
        #expect(trajectory.count == 11, "\(run): \(trajectory.count) checkpoints")
        let loader = CheckpointLoader(hashContents: false)
        var previousLogits: [Float]? = nil
        var moved: Float = 0
        for checkpoint in trajectory {
            let name = checkpoint.name
            let golden = try WeightStore(files: [demoRoot.appendingPathComponent("goldens/\(run)/\(name).safetensors")])
            let model = try loader.load(checkpoint.path).model
            #expect(model.layers == 2)
            for g in 0..<2 {
                let (info, bytes) = try golden.rawBytes("probe\(g).input_ids")
                #expect(info.dtype == SafeTensorsDType.I64)
                let ids = (0..<info.shape[0]).map { Int(bytes.load(fromByteOffset: 8 * $0, as: Int64.self)) }
                let rec = HookRecorder(Set((0..<model.layers).map { HookPoint.attnPattern($0) }))
                let logits = try model.forward(ids, logits: .last, observer: rec)
                let refLogits = try golden.tensor("probe\(g).logits")
                #expect(logits.count == refLogits.count)
                var d: Float = 0
                for i in 0..<min(logits.count, refLogits.count) { d = max(d, abs(logits.pointer[i] - refLogits.pointer[i])) }
                #expect(d <= 1e-4, "\(run) \(name) probe\(g) logits: max |Δ| = \(d) > 1e-4")

                let refAttention = try golden.tensor("probe\(g).attention")  // [layer, head, query, key]
                let perLayer = refAttention.count / model.layers
                d = 0
                for l in 0..<model.layers {
                    let mine = try #require(rec[.attnPattern(l)], "\(run) \(name): no attention pattern for layer \(l)")
                    #expect(mine.count == perLayer, "\(run) \(name) layer \(l): \(mine.shape) vs \(refAttention.shape)")
                    guard mine.count == perLayer else { continue }
                    for i in 0..<perLayer { d = max(d, abs(mine.pointer[i] - refAttention.pointer[l * perLayer + i])) }
                }
                #expect(d <= 1e-5, "\(run) \(name) probe\(g) attention: max |Δ| = \(d) > 1e-5")

                if g == 0 {
                    let now = (0..<logits.count).map { logits.pointer[$0] }
                    if let previousLogits { moved = max(moved, zip(now, previousLogits).map { abs($0 - $1) }.max()!) }
                    previousLogits = now
                }
            }
        }
        // The checkpoints really differ (the comparison is not 11 times the same model).
        #expect(moved > 0.1, "\(run): logits move by only \(moved) across the trajectory")
    }
}

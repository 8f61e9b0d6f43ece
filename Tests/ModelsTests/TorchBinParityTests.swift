// Models loaded from PyTorch zip checkpoints (Tests/Fixtures/torch-bin, written by
// Tools/goldens/make_torch_bin_fixtures.py with torch 2.13) give logits identical (max |Δ| = 0) to the
// same weights loaded from the safetensors fixtures: tied weights saved twice, a non-contiguous view,
// q/k/v as offset views of one storage over six shards, and BF16 kept 16-bit in the mapping.
import Checkpoints
import Foundation
@testable import Models
import TensorCore
import Testing

let torchBinRoot = fixturesRoot.deletingLastPathComponent().appendingPathComponent("torch-bin")

@Suite struct TorchBinParityTests {
    @Test(arguments: [("gpt2-tied", "gpt2-tied"), ("llama-sharded", "llama-gqa"), ("llama-bf16", "llama-bf16")])
    func logitsEqualSafetensors(_ bin: String, _ original: String) throws {
        let fromBin = try DecoderModel.load(from: torchBinRoot.appendingPathComponent(bin))
        let fromST = try DecoderModel.load(from: fixturesRoot.appendingPathComponent(original))
        let ids = [3, 17, 42, 5, 88, 1, 60, 9]
        let a = try fromBin.forward(ids), b = try fromST.forward(ids)
        let diff = maxAbsDiff(a, b)
        #expect(a.array == b.array, "\(bin): max |Δ| = \(diff)")
    }

    /// The LoRA path loads its base through the same store: an adapter over a .bin base equals the adapter over the safetensors base.
    @Test func loraOverBinBase() throws {
        let adapter = fixturesRoot.deletingLastPathComponent().appendingPathComponent("lora/llama-all-proj")
        let viaBin = try CheckpointLoader(base: torchBinRoot.appendingPathComponent("llama-sharded"), hashContents: false).load(adapter)
        let viaST = try CheckpointLoader(base: fixturesRoot.appendingPathComponent("llama-gqa"), hashContents: false).load(adapter)
        let ids = [5, 17, 2, 64, 33, 90, 11]
        #expect(try viaBin.model.forward(ids).array == viaST.model.forward(ids).array)
    }
}

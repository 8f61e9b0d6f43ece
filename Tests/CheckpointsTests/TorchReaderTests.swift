// The restricted PyTorch checkpoint reader: files written by torch 2.13 (Tools/goldens/
// make_torch_bin_fixtures.py) read to the same tensors as their safetensors originals, and every
// malicious or malformed input of Tests/Fixtures/torch-bin/bad is refused with its specific error.
import Foundation
import Testing
import TensorCore
@testable import Checkpoints

let torchFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/torch-bin")
let modelFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/models")

/// The torch error behind a CheckpointError, or nil.
func torchError(_ body: () throws -> Void) -> TorchFileError? {
    do { try body() } catch let CheckpointError.torchFile(e) { return e } catch { return nil }
    return nil
}

@Suite struct TorchReaderTests {
    /// Every tensor of each .bin fixture equals (bit for bit) the tensor of its safetensors original.
    @Test(arguments: [("gpt2-tied", "gpt2-tied"), ("llama-sharded", "llama-gqa"), ("llama-bf16", "llama-bf16")])
    func sameTensorsAsSafetensors(_ bin: String, _ original: String) throws {
        let torch = try WeightStore(directory: torchFixtures.appendingPathComponent(bin))
        let st = try WeightStore(directory: modelFixtures.appendingPathComponent(original))
        #expect(torch.formats == [.torchZip])
        for name in st.names {
            let a = try #require(st.info(name)), b = try #require(torch.info(name), "missing \(name)")
            #expect(a.dtype == b.dtype && a.shape == b.shape, "\(name)")
            let (_, ra) = try st.rawBytes(name), (_, rb) = try torch.rawBytes(name)
            #expect(ra.elementsEqual(rb), "\(name): bytes differ")
        }
    }

    /// Tied weights: lm_head.weight is the same storage view as wte (an alias, not an unused tensor);
    /// the transposed c_fc view is gathered into row-major order; q/k/v are views at offsets of one storage.
    @Test func viewsAndAliases() throws {
        let gpt2 = try TorchZipFile(url: torchFixtures.appendingPathComponent("gpt2-tied/pytorch_model.bin"))
        #expect(gpt2.aliases(of: "lm_head.weight") == ["transformer.wte.weight"])
        #expect(gpt2.aliases(of: "transformer.wte.weight") == ["lm_head.weight"])
        #expect(gpt2.copiedTensors == ["transformer.h.0.mlp.c_fc.weight"])
        let wte = try #require(gpt2.tensors["transformer.wte.weight"])
        #expect(gpt2.rawBytes(wte).baseAddress == gpt2.rawBytes(try #require(gpt2.tensors["lm_head.weight"])).baseAddress)
        // F32 in place: borrowed from the mapping, not copied.
        let t = try gpt2.floatTensor(wte)
        #expect(gpt2.contains(pointer: t.pointer))

        let store = try WeightStore(directory: torchFixtures.appendingPathComponent("llama-sharded"))
        #expect(store.files.count == 6 && store.source.hasSuffix("pytorch_model.bin.index.json"))
        let q = try #require(store.info("model.layers.0.self_attn.q_proj.weight"))
        let k = try #require(store.info("model.layers.0.self_attn.k_proj.weight"))
        #expect(store.file(of: q.name) === store.file(of: k.name))
        #expect(k.byteRange.lowerBound == q.byteRange.upperBound)   // k follows q in the fused storage
    }

    @Test func crafted() throws {
        let f = try TorchZipFile(url: torchFixtures.appendingPathComponent("bad/good-crafted.bin"))
        let t = try f.floatTensor(try #require(f.tensors["w"]))
        #expect(t.array == [1, 2, 3, 4])
    }

    /// Each refused input and the error it must raise.
    @Test func refusedInputs() throws {
        func refuse(_ name: String) -> TorchFileError? {
            torchError { _ = try TorchZipFile(url: torchFixtures.appendingPathComponent("bad/" + name)) }
        }
        guard case .forbiddenGlobal(_, _, _, "posix", "system") = refuse("posix-system.bin") else {
            Issue.record("posix-system: \(String(describing: refuse("posix-system.bin")))"); return
        }
        guard case .forbiddenGlobal(_, _, _, "__builtin__", "eval") = refuse("reduce-callable.bin") else {
            Issue.record("reduce-callable: \(String(describing: refuse("reduce-callable.bin")))"); return
        }
        guard case .forbiddenCall(_, _, _, "torch.FloatStorage") = refuse("storage-call.bin") else {
            Issue.record("storage-call: \(String(describing: refuse("storage-call.bin")))"); return
        }
        guard case .forbiddenOpcode(_, _, _, 0x69, "INST") = refuse("opcode-inst.bin") else {
            Issue.record("opcode-inst: \(String(describing: refuse("opcode-inst.bin")))"); return
        }
        guard case .missingStorage(_, "w", "7", "archive/data/7") = refuse("persid-past-storages.bin") else {
            Issue.record("persid: \(String(describing: refuse("persid-past-storages.bin")))"); return
        }
        guard case .storageTooShort(_, "w", "0", 10, 4) = refuse("storage-short.bin") else {
            Issue.record("storage-short: \(String(describing: refuse("storage-short.bin")))"); return
        }
        guard case .compressedEntry(_, "archive/data/0", 8, 64 << 20) = refuse("zip-bomb.bin") else {
            Issue.record("zip-bomb: \(String(describing: refuse("zip-bomb.bin")))"); return
        }
        guard case .unsafeEntryName(_, "../../../tmp/evil") = refuse("path-traversal.bin") else {
            Issue.record("path-traversal: \(String(describing: refuse("path-traversal.bin")))"); return
        }
        guard case .legacyFormat = refuse("legacy.bin") else {
            Issue.record("legacy: \(String(describing: refuse("legacy.bin")))"); return
        }
        guard case .notStateDict = refuse("not-a-dict.bin") else {
            Issue.record("not-a-dict: \(String(describing: refuse("not-a-dict.bin")))"); return
        }
    }

    /// Error lines name the file and the culprit, and carry a hint.
    @Test func messages() throws {
        let url = torchFixtures.appendingPathComponent("bad/posix-system.bin")
        do {
            _ = try TorchZipFile(url: url)
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains(url.path))
            #expect(error.description.contains("'posix.system' is not allowed"))
            #expect(error.hint.contains("never runs code"))
        }
    }

    /// Byte-level damage to a good file: truncation anywhere, and flipped bytes in the pickle, are errors (never traps).
    @Test func damagedCopies() throws {
        let good = [UInt8](try Data(contentsOf: torchFixtures.appendingPathComponent("bad/good-crafted.bin")))
        let dir = try TempDir()
        for cut in stride(from: 0, to: good.count, by: 7) {
            let u = try dir.write("cut.bin", Array(good[..<cut]))
            #expect(throws: CheckpointError.self) { _ = try TorchZipFile(url: u) }
        }
        var accepted = 0
        for i in 0..<good.count {
            var b = good
            b[i] ^= 0x5A
            let u = try dir.write("flip.bin", b)
            if (try? TorchZipFile(url: u)) != nil { accepted += 1 }
        }
        // Only bytes nobody checks may change: the other records' data and header fields we ignore.
        #expect(accepted < good.count / 2)
    }

    /// A folder with both formats prefers safetensors; a folder with only a legacy .bin says how to convert.
    @Test func discovery() throws {
        let dir = try TempDir()
        try dir.mkdir("ck")
        let ck = dir.url.appendingPathComponent("ck")
        try FileManager.default.copyItem(at: torchFixtures.appendingPathComponent("bad/legacy.bin"),
                                         to: ck.appendingPathComponent("pytorch_model.bin"))
        #expect(try Trajectory.discover(at: ck).count == 1)
        guard case .legacyFormat = torchError({ _ = try WeightStore(directory: ck) }) else {
            Issue.record("legacy pytorch_model.bin not refused as legacy"); return
        }
        let mixed = try Trajectory.discover(at: torchFixtures.appendingPathComponent("mixed"))
        #expect(mixed.map(\.name) == ["checkpoint-0", "checkpoint-10"])
        #expect(try WeightStore(directory: mixed[0].path).formats == [.safetensors])
        #expect(try WeightStore(directory: mixed[1].path).formats == [.torchZip])
    }
}

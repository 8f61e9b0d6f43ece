// Proves that WeightStore loads single-file and sharded checkpoints, and refuses inconsistent
// shard sets with specific errors naming the index/shard file and the tensor.

import Foundation
import Testing
import TensorCore
@testable import Checkpoints

@Suite("weight store and shard index")
struct WeightStoreTests {
    /// Reference: shards and index written by huggingface_hub 2.4.0 `save_torch_state_dict`
    /// (Tools/gen_safetensors_fixtures.py); values are torch.arange, tolerance 0.
    @Test("sharded checkpoint written by huggingface_hub loads every tensor with its values")
    func pythonSharded() throws {
        let store = try WeightStore(directory: fixturesDir("safetensors").appendingPathComponent("sharded"))
        #expect(store.files.count == 2)
        #expect(store.names == ["embed.weight", "layer.0.weight", "layer.1.bias"])
        #expect(store.source.hasSuffix("model.safetensors.index.json"))
        #expect(try store.tensor("embed.weight").array == (0..<12).map(Float.init))
        #expect(try store.tensor("embed.weight").shape == [3, 4])
        #expect(try store.tensor("layer.0.weight").array == (0..<8).map(Float.init))
        #expect(try store.tensor("layer.1.bias").array == (0..<4).map(Float.init))
        #expect(store.totalBytes == 96)   // the index's metadata.total_size
        #expect(store.dtypeCounts == [.F32: 3])
        #expect(store.file(of: "layer.1.bias")?.url.lastPathComponent == "model-00002-of-00002.safetensors")
    }

    @Test("a single model.safetensors loads; names sorted; contains/info/rawBytes agree")
    func single() throws {
        let dir = try TempDir()
        try dir.write("model.safetensors", STWriter.valid([
            STWriter.ramp("z.weight", [2]),
            .init(name: "a.bias", dtype: "BF16", shape: [2], bytes: STWriter.u16([0x3F80, 0x4000])),
        ]))
        let store = try WeightStore(directory: dir.url)
        #expect(store.names == ["a.bias", "z.weight"])
        #expect(store.contains("a.bias") && !store.contains("nope"))
        #expect(store.info("a.bias")?.dtype == .BF16)
        #expect(try store.tensor("a.bias").array == [1, 2])
        let (info, raw) = try store.rawBytes("z.weight")
        #expect(info.shape == [2] && raw.count == 8)
        #expect(store.dtypeCounts == [.F32: 1, .BF16: 1])
        #expect(store.totalBytes == 12)
        let e = try #require(expectCheckpointError { _ = try store.tensor("nope") })
        guard case let .tensorNotFound(source, tensor) = e else { Issue.record("got \(e)"); return }
        #expect(source.hasSuffix("model.safetensors") && tensor == "nope")
    }

    @Test("weightsFile selects a PEFT adapter file")
    func adapterFile() throws {
        let dir = try TempDir()
        try dir.write("adapter_model.safetensors", STWriter.valid([STWriter.ramp("lora_A.weight", [2, 2])]))
        let store = try WeightStore(directory: dir.url, weightsFile: "adapter_model.safetensors")
        #expect(store.names == ["lora_A.weight"])
    }

    @Test("init(files:) merges files and refuses a tensor present in two of them")
    func filesInit() throws {
        let dir = try TempDir()
        let a = try dir.write("a.safetensors", STWriter.valid([STWriter.ramp("x", [1])]))
        let b = try dir.write("b.safetensors", STWriter.valid([STWriter.ramp("y", [1])]))
        let c = try dir.write("c.safetensors", STWriter.valid([STWriter.ramp("x", [2])]))
        #expect(try WeightStore(files: [a, b]).names == ["x", "y"])
        let e = try #require(expectCheckpointError { _ = try WeightStore(files: [a, b, c]) })
        guard case let .duplicateTensor(tensor, first, second) = e else { Issue.record("got \(e)"); return }
        #expect(tensor == "x" && first.hasSuffix("a.safetensors") && second.hasSuffix("c.safetensors"))
        #expect(e.description.contains("'x'") && e.description.contains("a.safetensors") && e.description.contains("c.safetensors"))
    }

    /// Writes a two-shard checkpoint: shard 1 holds "a", shard 2 holds "b" (plus `extra2`).
    private func shardedFolder(index: String, extra2: [STWriter.Entry] = [], writeShard2: Bool = true) throws -> TempDir {
        let dir = try TempDir()
        try dir.write("model-00001-of-00002.safetensors", STWriter.valid([STWriter.ramp("a", [2])]))
        if writeShard2 {
            try dir.write("model-00002-of-00002.safetensors", STWriter.valid([STWriter.ramp("b", [3])] + extra2))
        }
        try dir.write("model.safetensors.index.json", text: index)
        return dir
    }

    private let goodIndex = """
        {"metadata": {"total_size": 20}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
        """

    @Test("a consistent runtime-written shard set loads")
    func runtimeSharded() throws {
        let dir = try shardedFolder(index: goodIndex)
        let store = try WeightStore(directory: dir.url)
        #expect(store.names == ["a", "b"])
        #expect(try store.tensor("b").array == [0, 1, 2])
    }

    @Test("missing shard → .missingShard naming the index, the shard and a tensor it holds")
    func missingShard() throws {
        let dir = try shardedFolder(index: goodIndex, writeShard2: false)
        let e = try #require(expectCheckpointError { _ = try WeightStore(directory: dir.url) })
        guard case let .missingShard(index, shard, tensor) = e else { Issue.record("got \(e)"); return }
        #expect(index.hasSuffix("model.safetensors.index.json"))
        #expect(shard == "model-00002-of-00002.safetensors" && tensor == "b")
        #expect(e.description.contains("model-00002-of-00002.safetensors") && e.description.contains("'b'"))
    }

    @Test("index naming a tensor absent from its shard → .tensorAbsentFromShard")
    func absentFromShard() throws {
        let index = """
            {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}}
            """
        let dir = try shardedFolder(index: index)
        let e = try #require(expectCheckpointError { _ = try WeightStore(directory: dir.url) })
        guard case let .tensorAbsentFromShard(idx, shard, tensor) = e else { Issue.record("got \(e)"); return }
        #expect(idx.hasSuffix("model.safetensors.index.json") && shard == "model-00002-of-00002.safetensors" && tensor == "c")
        #expect(e.description.contains("'c'") && e.description.contains("model-00002-of-00002.safetensors"))
    }

    @Test("duplicate tensor across shards → .duplicateTensor naming both files")
    func duplicateAcrossShards() throws {
        // Shard 2 also stores "a", which the index maps to shard 1.
        let dir = try shardedFolder(index: goodIndex, extra2: [STWriter.ramp("a", [2])])
        let e = try #require(expectCheckpointError { _ = try WeightStore(directory: dir.url) })
        guard case let .duplicateTensor(tensor, first, second) = e else { Issue.record("got \(e)"); return }
        #expect(tensor == "a")
        #expect(first.hasSuffix("model-00001-of-00002.safetensors") && second.hasSuffix("model-00002-of-00002.safetensors"))
        #expect(e.description.contains("'a'") && e.description.contains("model-00001-of-00002.safetensors"))
    }

    @Test("a shard tensor the index does not list → .tensorNotInIndex")
    func notInIndex() throws {
        let dir = try shardedFolder(index: goodIndex, extra2: [STWriter.ramp("stray", [1])])
        let e = try #require(expectCheckpointError { _ = try WeightStore(directory: dir.url) })
        guard case let .tensorNotInIndex(_, shard, tensor) = e else { Issue.record("got \(e)"); return }
        #expect(shard == "model-00002-of-00002.safetensors" && tensor == "stray")
    }

    @Test("malformed indexes → .badIndex (bad JSON, no weight_map, non-string, path escape, duplicate key)")
    func badIndexes() throws {
        let cases = [
            "{\"weight_map\": ",
            "{\"metadata\": {}}",
            "{\"weight_map\": {\"a\": 3}}",
            "{\"weight_map\": {}}",
            "{\"weight_map\": {\"a\": \"../model-00001-of-00002.safetensors\"}}",
            "{\"weight_map\": {\"a\": \"/etc/passwd\"}}",
            "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"a\": \"model-00001-of-00002.safetensors\"}}",
            "[]",
        ]
        for index in cases {
            let dir = try shardedFolder(index: index)
            let e = try #require(expectCheckpointError { _ = try WeightStore(directory: dir.url) })
            guard case let .badIndex(file, _) = e else { Issue.record("\(index): got \(e)"); continue }
            #expect(file.hasSuffix("model.safetensors.index.json"))
        }
    }

    @Test("a shard that is itself corrupt reports the shard's file and tensor")
    func corruptShard() throws {
        let dir = try shardedFolder(index: goodIndex)
        var bytes = STWriter.valid([STWriter.ramp("b", [3])])
        bytes.removeLast(4)
        try dir.write("model-00002-of-00002.safetensors", bytes)
        let e = try #require(expectCheckpointError { _ = try WeightStore(directory: dir.url) })
        guard case let .truncated(file, tensor, _, _) = e else { Issue.record("got \(e)"); return }
        #expect(file.hasSuffix("model-00002-of-00002.safetensors") && tensor == "b")
    }

    @Test("a folder without weights → .noWeights listing what it holds; a missing folder → .notCheckpointFolder")
    func noWeights() throws {
        let dir = try TempDir()
        try dir.write("model.pt", [0])
        try dir.write("config.json", text: "{}")
        let e = try #require(expectCheckpointError { _ = try WeightStore(directory: dir.url) })
        guard case let .noWeights(directory, expected, found) = e else { Issue.record("got \(e)"); return }
        #expect(directory == dir.url.path && expected.contains("model.safetensors") && expected.contains("pytorch_model.bin"))
        #expect(found == ["config.json", "model.pt"])
        #expect(e.description.contains("model.pt") && e.hint.contains("pytorch_model.bin"))

        let missing = dir.url.appendingPathComponent("nope")
        let e2 = try #require(expectCheckpointError { _ = try WeightStore(directory: missing) })
        guard case .notCheckpointFolder = e2 else { Issue.record("got \(e2)"); return }
    }
}

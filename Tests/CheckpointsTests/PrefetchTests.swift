// WeightPrefetch (issue 26): the order it reads a checkpoint's tensors in, its byte limit, cancellation,
// and that it reads every byte of every weight file once (sharded checkpoints included).
import Foundation
import Testing
@testable import Checkpoints
import TensorCore

@Suite("weight prefetch into the page cache")
struct PrefetchTests {
    /// A sharded checkpoint with Llama-style names; shard 1 holds layers 0, 1, 10 and 2 (lexicographic
    /// file order), shard 2 the embedding, the final norm and the head.
    static func checkpoint(_ dir: TempDir) throws {
        func t(_ n: Int, _ v: Float) -> Tensor { Tensor(shape: [n], values: [Float](repeating: v, count: n)) }
        try SafeTensorsWriter.write(["model.layers.0.w": t(300, 1), "model.layers.1.w": t(200, 2), "model.layers.10.w": t(100, 3),
                                     "model.layers.2.w": t(50, 4)], to: dir.url.appendingPathComponent("a.safetensors"))
        try SafeTensorsWriter.write(["model.embed_tokens.weight": t(400, 5), "model.norm.weight": t(10, 6), "lm_head.weight": t(70, 7)],
                                    to: dir.url.appendingPathComponent("b.safetensors"))
        let map = ["model.layers.0.w": "a", "model.layers.1.w": "a", "model.layers.10.w": "a", "model.layers.2.w": "a",
                   "model.embed_tokens.weight": "b", "model.norm.weight": "b", "lm_head.weight": "b"]
        let body = map.keys.sorted().map { "\"\($0)\": \"\(map[$0]!).safetensors\"" }.joined(separator: ", ")
        try dir.write("model.safetensors.index.json", text: "{\"metadata\": {}, \"weight_map\": {\(body)}}")
    }

    @Test("layer keys: embeddings first, layers by number (10 after 2), the rest last")
    func layerKeys() {
        #expect(WeightPrefetch.layerKey("model.embed_tokens.weight") == -1)
        #expect(WeightPrefetch.layerKey("transformer.wte.weight") == -1)
        #expect(WeightPrefetch.layerKey("model.layers.12.mlp.up_proj.weight") == 12)
        #expect(WeightPrefetch.layerKey("transformer.h.3.attn.c_attn.weight") == 3)
        #expect(WeightPrefetch.layerKey("model.norm.weight") == Int.max)
        #expect(WeightPrefetch.layerKey("lm_head.weight") == Int.max)
    }

    @Test("ranges in the order of use; every byte of both shards exactly once")
    func useOrderCoversFiles() throws {
        let dir = try TempDir()
        try Self.checkpoint(dir)
        let store = try WeightStore(directory: dir.url)
        let ranges = WeightPrefetch.useOrder(store)
        // Every byte of each file is covered once.
        for (f, file) in store.files.enumerated() {
            let mine = ranges.filter { $0.file == f }.sorted { $0.offset < $1.offset }
            var at = 0
            for r in mine { #expect(r.offset == at, "gap or overlap in \(file.url.lastPathComponent) at \(at)"); at = r.offset + r.count }
            #expect(at == file.fileSize)
        }
        // Order: both headers, the embedding, layers 0, 1, 2, 10, then the norm and the head (file order).
        let st = store.files.map { $0 as! SafeTensorsFile }
        func offset(_ name: String) -> (Int, Int) {
            let f = store.files.firstIndex { $0.tensors[name] != nil }!
            return (f, 8 + st[f].headerLength + store.files[f].tensors[name]!.byteRange.lowerBound)
        }
        let order = ["model.embed_tokens.weight", "model.layers.0.w", "model.layers.1.w", "model.layers.2.w", "model.layers.10.w"]
        let starts = ranges.map { ($0.file, $0.offset) }
        var last = -1
        for name in order {
            let o = offset(name)
            // The tensor starts a range, or lies in the range that a merge made of it and its predecessor.
            let i = ranges.firstIndex { $0.file == o.0 && $0.offset <= o.1 && o.1 < $0.offset + $0.count }!
            #expect(i >= last, "\(name) read before an earlier layer (\(starts))")
            last = i
        }
    }

    @Test("reads everything; a limit pauses it, raising the limit resumes it, cancel stops it")
    func limitAndCancel() throws {
        let dir = try TempDir()
        try Self.checkpoint(dir)
        let all = try WeightPrefetch.start(checkpoint: dir.url)
        all.waitUntilLimit()
        #expect(all.bytesRead == all.totalBytes)
        #expect(all.isFinished)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.url.path).filter { $0.hasSuffix(".safetensors") }
        let sizes = try files.map { try FileManager.default.attributesOfItem(atPath: dir.url.appendingPathComponent($0).path)[.size] as! Int }
        #expect(all.totalBytes == sizes.reduce(0, +))

        let none = try WeightPrefetch.start(checkpoint: dir.url, limitBytes: 0)
        Thread.sleep(forTimeInterval: 0.05)
        #expect(none.bytesRead == 0 && !none.isFinished)
        none.raiseLimit(to: .max)
        none.waitUntilLimit()
        #expect(none.bytesRead == none.totalBytes)

        let stopped = try WeightPrefetch.start(checkpoint: dir.url, limitBytes: 0)
        stopped.cancel()
        let deadline = Date().addingTimeInterval(5)
        while !stopped.isFinished && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(stopped.isFinished && stopped.bytesRead == 0)
    }

    @Test("a prefetch started after another reads nothing until that one finishes; cancelling it while it waits stops it")
    func after() throws {
        let dir = try TempDir()
        try Self.checkpoint(dir)
        let first = try WeightPrefetch.start(checkpoint: dir.url, limitBytes: 0)   // paused: never finishes by itself
        let second = try WeightPrefetch.start(checkpoint: dir.url, after: first)
        Thread.sleep(forTimeInterval: 0.15)
        #expect(second.bytesRead == 0 && !second.isFinished)
        first.cancel()
        second.waitUntilLimit()
        #expect(second.bytesRead == second.totalBytes)

        let blocker = try WeightPrefetch.start(checkpoint: dir.url, limitBytes: 0)
        let waiting = try WeightPrefetch.start(checkpoint: dir.url, after: blocker)
        waiting.cancel()
        let deadline = Date().addingTimeInterval(5)
        while !waiting.isFinished && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(waiting.isFinished && waiting.bytesRead == 0)
        blocker.cancel()
    }

    @Test("a folder without weights throws, as WeightStore does")
    func noWeights() throws {
        let dir = try TempDir()
        #expect(throws: CheckpointError.self) { try WeightPrefetch.start(checkpoint: dir.url) }
    }
}

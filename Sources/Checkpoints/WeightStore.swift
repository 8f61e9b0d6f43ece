// WeightStore: all weights of one checkpoint, from one safetensors file or from shards listed in
// a Hugging Face shard index (`model.safetensors.index.json`); or, in a folder without safetensors
// weights, the same from PyTorch zip checkpoints (`pytorch_model.bin`, `pytorch_model.bin.index.json`;
// TorchCheckpoint.swift, docs/torch-bin.md).
//
// Shard index layout (written by transformers `save_pretrained` / huggingface_hub
// `split_torch_state_dict_into_shards`):
//
//   {"metadata": {"total_size": <bytes>, ...},          optional, not checked (writers disagree
//                                                       on what total_size counts)
//    "weight_map": {"<tensor name>": "<shard file name>", ...}}
//
// Rules (see docs/safetensors.md, "Shard index"): weight_map is an object of strings; each shard is
// a plain file name in the same folder (no '/', no '..'); every shard exists; every mapped tensor is
// in its shard; every tensor of every shard is mapped to that shard; no tensor is stored twice.

import Foundation
import StrictJSON
import TensorCore

/// All weights of one checkpoint: `model.safetensors`, or shards via `model.safetensors.index.json`,
/// or (for PEFT) `adapter_model.safetensors` when asked through `weightsFile`; failing the default
/// safetensors names, `pytorch_model.bin` or its shard index.
public final class WeightStore: @unchecked Sendable {
    /// Index files larger than this are refused (real ones are a few hundred KB).
    public static let maxIndexSize = 64 << 20

    public let files: [any WeightFile]
    /// Weight file names tried, in order, when `WeightStore(directory:)` is given no other name.
    public static let defaultWeightFiles = ["model.safetensors", "pytorch_model.bin"]
    /// Where tensors were looked up (folder or file), for error messages.
    public let source: String
    private let location: [String: Int]   // tensor name -> index into files
    public let names: [String]            // sorted

    /// Opens the weights in `directory`: `weightsFile` if present, else its shard index
    /// `<weightsFile>.index.json`; with the default name, then `pytorch_model.bin` and its index.
    /// Throws `noWeights` when none exists.
    public init(directory: URL, weightsFile: String? = nil) throws(CheckpointError) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory.path, isDirectory: &isDir), isDir.boolValue else {
            throw .notCheckpointFolder(path: directory.path, reason: "no such folder")
        }
        let candidates = weightsFile.map { [$0] } ?? Self.defaultWeightFiles
        for name in candidates {
            let single = directory.appendingPathComponent(name)
            let index = directory.appendingPathComponent(name + ".index.json")
            if fm.fileExists(atPath: single.path) {
                (files, location, names) = try Self.merge([try openWeightFile(single)])
                source = single.path
                return
            } else if fm.fileExists(atPath: index.path) {
                (files, location, names) = try Self.merge(try Self.loadIndex(index, directory: directory))
                source = index.path
                return
            }
        }
        let found = ((try? fm.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
        throw .noWeights(directory: directory.path, expected: candidates.map { "\($0) or \($0).index.json" }.joined(separator: " or "),
                         found: found)
    }

    /// Opens the given safetensors files as one store. A tensor present in two files is an error.
    public init(files urls: [URL]) throws(CheckpointError) {
        guard let first = urls.first else {
            throw .noWeights(directory: "(no files given)", expected: "at least one .safetensors file", found: [])
        }
        var opened: [any WeightFile] = []
        for u in urls { opened.append(try openWeightFile(u)) }
        (files, location, names) = try Self.merge(opened)
        source = urls.count == 1 ? first.path : first.deletingLastPathComponent().path
    }

    public func info(_ name: String) -> SafeTensorInfo? {
        guard let i = location[name] else { return nil }
        return files[i].tensors[name]
    }

    public func contains(_ name: String) -> Bool { location[name] != nil }

    /// The file holding `name`.
    public func file(of name: String) -> (any WeightFile)? { location[name].map { files[$0] } }

    /// Other names of the same bytes as `name` (tied weights a torch checkpoint saved twice).
    public func aliases(of name: String) -> [String] { file(of: name)?.aliases(of: name) ?? [] }

    /// The formats of the files, without repeats, in file order.
    public var formats: [WeightFileFormat] {
        files.reduce(into: []) { acc, f in if !acc.contains(f.format) { acc.append(f.format) } }
    }

    /// The tensor as Float32 (see `SafeTensorsFile.floatTensor`: zero-copy for aligned F32).
    public func tensor(_ name: String) throws(CheckpointError) -> Tensor {
        guard let i = location[name], let info = files[i].tensors[name] else {
            throw .tensorNotFound(source: source, tensor: name)
        }
        return try files[i].floatTensor(info)
    }

    /// The tensor's entry and its bytes inside the mapping (valid while this store is alive).
    public func rawBytes(_ name: String) throws(CheckpointError) -> (SafeTensorInfo, UnsafeRawBufferPointer) {
        guard let i = location[name], let info = files[i].tensors[name] else {
            throw .tensorNotFound(source: source, tensor: name)
        }
        return (info, files[i].rawBytes(info))
    }

    /// Sum of the tensors' byte lengths (what the index's `total_size` is meant to hold).
    public var totalBytes: Int {
        files.reduce(0) { acc, f in f.tensors.values.reduce(acc) { $0 + $1.byteCount } }
    }

    /// Number of tensors per dtype.
    public var dtypeCounts: [SafeTensorsDType: Int] {
        var out: [SafeTensorsDType: Int] = [:]
        for f in files { for t in f.tensors.values { out[t.dtype, default: 0] += 1 } }
        return out
    }

    /// Union of the files' `__metadata__` maps (first file wins on conflicting keys).
    public var metadata: [String: String] {
        var out: [String: String] = [:]
        for f in files { out.merge(f.metadata) { old, _ in old } }
        return out
    }

    // MARK: loading

    private static func merge(_ files: [any WeightFile]) throws(CheckpointError)
        -> ([any WeightFile], [String: Int], [String])
    {
        var location: [String: Int] = [:]
        for (i, f) in files.enumerated() {
            for name in f.namesInFileOrder {
                if let j = location[name] {
                    throw .duplicateTensor(tensor: name, first: files[j].url.path, second: f.url.path)
                }
                location[name] = i
            }
        }
        return (files, location, location.keys.sorted())
    }

    /// Reads and checks a shard index, returning its shards in first-mention order.
    static func loadIndex(_ index: URL, directory: URL) throws(CheckpointError) -> [any WeightFile] {
        let path = index.path
        let json: JSONValue
        do throws(JSONFileError) { json = try JSONFile.parse(path: path, limit: maxIndexSize) } catch {
            throw .badIndex(file: path, reason: "the file " + error.reason)
        }
        guard case .object = json else { throw .badIndex(file: path, reason: "top level is a \(json.kindName), expected an object") }
        guard let mapValue = json["weight_map"] else { throw .badIndex(file: path, reason: "no \"weight_map\" key") }
        guard case .object(let pairs) = mapValue else {
            throw .badIndex(file: path, reason: "\"weight_map\" is a \(mapValue.kindName), expected an object")
        }
        guard !pairs.isEmpty else { throw .badIndex(file: path, reason: "\"weight_map\" is empty") }

        // Shard names in first-mention order, each with the tensors mapped to it.
        var shardOrder: [String] = []
        var mapped: [String: [String]] = [:]
        for (tensor, v) in pairs {
            guard case .string(let shard) = v else {
                throw .badIndex(file: path, reason: "weight_map[\"\(tensor)\"] is a \(v.kindName), expected a file name")
            }
            // Untrusted input: a shard must be a plain file name beside the index.
            guard !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"), shard != ".", shard != "..",
                  !shard.contains("\0")
            else {
                throw .badIndex(file: path, reason: "weight_map[\"\(tensor)\"] = \"\(shard)\" is not a plain file name in the same folder")
            }
            if mapped[shard] == nil { shardOrder.append(shard); mapped[shard] = [] }
            mapped[shard, default: []].append(tensor)
        }

        var shards: [any WeightFile] = []
        let fm = FileManager.default
        for shard in shardOrder {
            let url = directory.appendingPathComponent(shard)
            let tensorsHere = mapped[shard] ?? []
            guard fm.fileExists(atPath: url.path) else {
                throw .missingShard(index: path, shard: shard, tensor: tensorsHere.first ?? "")
            }
            let file = try openWeightFile(url)
            for t in tensorsHere where file.tensors[t] == nil {
                throw .tensorAbsentFromShard(index: path, shard: shard, tensor: t)
            }
            shards.append(file)
        }
        // Every tensor of every shard must be mapped to that very shard. A tensor mapped elsewhere
        // is stored twice; one not mapped at all is unlisted.
        var shardOf: [String: String] = [:]
        for (tensor, v) in pairs { if case .string(let s) = v { shardOf[tensor] = s } }
        for (shard, file) in zip(shardOrder, shards) {
            for t in file.namesInFileOrder {
                guard let owner = shardOf[t] else {
                    throw .tensorNotInIndex(index: path, shard: shard, tensor: t)
                }
                if owner != shard {
                    throw .duplicateTensor(tensor: t, first: directory.appendingPathComponent(owner).path,
                                           second: file.url.path)
                }
            }
        }
        return shards
    }
}

// TEMPORARY stand-in for the strict WeightStore (replaced when the safetensors work lands).
import Foundation
import TensorCore

public struct SafeTensorInfoStub: Sendable { public let name: String; public let dtype: String; public let shape: [Int] }

final class DataOwner: StorageOwner, @unchecked Sendable { let data: NSData; init(_ d: NSData) { data = d } }

public final class WeightStore: @unchecked Sendable {
    var entries: [String: (owner: DataOwner, dtype: String, shape: [Int], start: Int, end: Int)] = [:]
    public convenience init(directory: URL, weightsFile: String = "model.safetensors") throws {
        var files: [URL] = []
        let idx = directory.appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: idx.path) {
            let j = try JSONSerialization.jsonObject(with: Data(contentsOf: idx)) as! [String: Any]
            let wm = j["weight_map"] as! [String: String]
            files = Set(wm.values).sorted().map { directory.appendingPathComponent($0) }
        } else { files = [directory.appendingPathComponent(weightsFile)] }
        try self.init(files: files)
    }
    public init(files: [URL]) throws {
        for f in files {
            let d = try NSData(contentsOf: f, options: .alwaysMapped)
            let owner = DataOwner(d)
            let p = d.bytes
            let n = Int(p.loadUnaligned(as: UInt64.self))
            let hdr = try JSONSerialization.jsonObject(with: Data(bytes: p + 8, count: n)) as! [String: Any]
            for (k, v) in hdr where k != "__metadata__" {
                let e = v as! [String: Any]
                let offs = (e["data_offsets"] as! [NSNumber]).map { $0.intValue }
                entries[k] = (owner, e["dtype"] as! String, (e["shape"] as! [NSNumber]).map { $0.intValue }, 8 + n + offs[0], 8 + n + offs[1])
            }
        }
    }
    public var names: [String] { entries.keys.sorted() }
    public func contains(_ name: String) -> Bool { entries[name] != nil }
    public func info(_ name: String) -> SafeTensorInfoStub? { entries[name].map { SafeTensorInfoStub(name: name, dtype: $0.dtype, shape: $0.shape) } }
    public func tensor(_ name: String) throws -> Tensor {
        let e = entries[name]!
        let count = e.shape.reduce(1, *)
        let t = Tensor(zeros: e.shape)
        let src = e.owner.data.bytes + e.start
        switch e.dtype {
        case "F32": decodeF32(src, count: count, into: t.pointer)
        case "BF16": decodeBF16(src, count: count, into: t.pointer)
        case "F16": decodeF16(src, count: count, into: t.pointer)
        default: break
        }
        return t
    }
}

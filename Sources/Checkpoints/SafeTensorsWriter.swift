// Writes F32 tensors in the safetensors format: an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}}, then the data buffer (offsets sorted by name,
// contiguous). Used for synthetic benchmark models, exports and tests.
import Foundation
import StrictJSON
import TensorCore

public enum SafeTensorsWriter {
    /// Writes `tensors` (name → tensor) to `url` atomically (temporary file + rename).
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let names = tensors.keys.sorted()
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let meta = metadata.keys.sorted().map { "\(JSONValue.quoted($0)):\(JSONValue.quoted(metadata[$0]!))" }.joined(separator: ",")
            parts.append("\"__metadata__\":{\(meta)}")
        }
        var offset = 0
        for name in names {
            let t = tensors[name]!
            let bytes = t.count * 4
            parts.append("\(JSONValue.quoted(name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
        }
        header += parts.joined(separator: ",") + "}"
        // Pad the header with spaces so the data starts 8-byte aligned (allowed by the format).
        while (8 + header.utf8.count) % 8 != 0 { header += " " }
        var data = Data()
        data.reserveCapacity(8 + header.utf8.count + offset)
        var len = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &len) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        for name in names {
            let t = tensors[name]!
            if Int(1).littleEndian == 1 {
                data.append(UnsafeBufferPointer(start: t.pointer, count: t.count))
            } else {
                for i in 0..<t.count { var b = t.pointer[i].bitPattern.littleEndian; withUnsafeBytes(of: &b) { data.append(contentsOf: $0) } }
            }
        }
        try data.write(to: url, options: .atomic)
    }
}

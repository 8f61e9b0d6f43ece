// Test helpers: a tiny safetensors writer (independent of the reader under test) and temp folders.

import Foundation
import Testing
@testable import Checkpoints
import StrictJSON

/// A fresh temporary folder, removed when the value is released.
final class TempDir {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("cpiscope-ckpt-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `bytes` to `name` (creating parent folders) and returns its URL.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> URL {
        let u = url.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: u)
        return u
    }

    @discardableResult
    func write(_ name: String, text: String) throws -> URL { try write(name, Array(text.utf8)) }

    func mkdir(_ name: String) throws {
        try FileManager.default.createDirectory(at: url.appendingPathComponent(name), withIntermediateDirectories: true)
    }
}

/// Builds safetensors byte images, valid or deliberately broken.
enum STWriter {
    /// One tensor to write: its bytes are given raw so tests control every byte.
    struct Entry {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: [UInt8]
    }

    /// `8-byte length + header + data`; `declaredLength` overrides the length prefix.
    static func image(header: [UInt8], data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
        let n = declaredLength ?? UInt64(header.count)
        return withUnsafeBytes(of: n.littleEndian) { Array($0) } + header + data
    }

    static func image(headerJSON: String, data: [UInt8]) -> [UInt8] {
        image(header: Array(headerJSON.utf8), data: data)
    }

    /// A valid file: entries laid out in the given order, header padded with spaces until
    /// 8 + header length is a multiple of `align` (the Python writer uses 8), then `extraPad` more.
    static func valid(_ entries: [Entry], metadata: [String: String]? = nil, headerPadTo align: Int = 8,
                      extraPad: Int = 0) -> [UInt8] {
        var parts: [String] = []
        if let metadata {
            let kv = metadata.sorted { $0.key < $1.key }.map { "\(quote($0.key)):\(quote($0.value))" }
            parts.append("\"__metadata__\":{\(kv.joined(separator: ","))}")
        }
        var offset = 0
        var data: [UInt8] = []
        for e in entries {
            let shape = e.shape.map(String.init).joined(separator: ",")
            parts.append("\(quote(e.name)):{\"dtype\":\"\(e.dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}")
            offset += e.bytes.count
            data += e.bytes
        }
        var header = Array("{\(parts.joined(separator: ","))}".utf8)
        while (8 + header.count) % align != 0 { header.append(0x20) }
        header += [UInt8](repeating: 0x20, count: extraPad)
        return image(header: header, data: data)
    }

    static func quote(_ s: String) -> String { JSONValue.quoted(s) }

    static func f32(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    static func u16(_ values: [UInt16]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    }

    static func f64(_ values: [Double]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }

    /// One F32 tensor entry with values 0, 1, 2, … .
    static func ramp(_ name: String, _ shape: [Int]) -> Entry {
        let n = shape.reduce(1, *)
        return Entry(name: name, dtype: "F32", shape: shape, bytes: f32((0..<n).map(Float.init)))
    }
}

/// Runs `body`, requiring it to throw a `CheckpointError`, and returns that error.
func expectCheckpointError(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> CheckpointError? {
    do {
        try body()
        Issue.record("expected a CheckpointError, got success", sourceLocation: sourceLocation)
        return nil
    } catch let e as CheckpointError {
        return e
    } catch {
        Issue.record("expected a CheckpointError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The package's Tests/Fixtures/<area> folder, located from this source file.
func fixturesDir(_ area: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent(area)
}

// Proves that valid safetensors files are read correctly: values, shapes, metadata, dtype
// conversion, zero-copy for aligned F32 and copying for misaligned F32.

import Foundation
import Testing
import TensorCore
@testable import Checkpoints

/// Largest |a - b| over two equal-length arrays (NaN-aware: NaN vs NaN counts as 0).
func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).reduce(0) { m, p in
        if p.0.isNaN && p.1.isNaN { return m }
        if p.0 == p.1 { return m }  // also equal infinities
        return max(m, abs(p.0 - p.1).isNaN ? .infinity : abs(p.0 - p.1))
    }
}

@Suite("safetensors reading")
struct SafeTensorsReadTests {
    /// Reference: torch 2.13 `.to(torch.float32)` of tensors saved by Python safetensors 0.8.0
    /// (Tools/gen_safetensors_fixtures.py). Tolerance 0: every output bit pattern must match.
    @Test("F32/F16/BF16 written by Python safetensors decode bit-exactly to torch's float32")
    func pythonGoldens() throws {
        let dir = fixturesDir("safetensors")
        let file = try SafeTensorsFile(url: dir.appendingPathComponent("decode.safetensors"))
        let root = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: dir.appendingPathComponent("decode_expected.json"))) as? [String: Any])
        let tensors = try #require(root["tensors"] as? [String: [String: Any]])
        #expect(tensors.count == 3)
        for (name, spec) in tensors.sorted(by: { $0.key < $1.key }) {
            let bits = try #require(spec["float32_bits"] as? [Int]).map { UInt32($0) }
            let shape = try #require(spec["shape"] as? [Int])
            let dtype = try #require(spec["dtype"] as? String)
            let info = try #require(file.tensors[name])
            #expect(info.dtype.rawValue == dtype && info.shape == shape)
            let t = try file.floatTensor(name)
            #expect(t.shape == shape)
            let got = t.array.map(\.bitPattern)
            let mismatches = zip(got, bits).enumerated().filter { $0.element.0 != $0.element.1 }
            let want = bits.map { Float(bitPattern: $0) }
            #expect(mismatches.isEmpty,
                    "\(name): \(mismatches.count) bit mismatches, maxdiff \(maxDiff(t.array, want)); first at \(mismatches.first.map { "\($0.offset): got 0x\(String($0.element.0, radix: 16)) want 0x\(String($0.element.1, radix: 16))" } ?? "")")
        }
        // The F32 tensor of a Python-written file is aligned (the writer pads the header to 8 bytes).
        #expect(file.isZeroCopy(try #require(file.tensors["w.f32"])))
    }

    @Test("__metadata__ is read as a string map")
    func metadata() throws {
        let file = try SafeTensorsFile(url: fixturesDir("safetensors").appendingPathComponent("decode.safetensors"))
        #expect(file.metadata == ["format": "pt", "generator": "Tools/gen_safetensors_fixtures.py"])

        let dir = try TempDir()
        let url = try dir.write("m.safetensors", STWriter.valid([STWriter.ramp("x", [1])],
                                                                 metadata: ["format": "pt", "note": "é \"q\""]))
        #expect(try SafeTensorsFile(url: url).metadata == ["format": "pt", "note": "é \"q\""])
        let plain = try dir.write("p.safetensors", STWriter.valid([STWriter.ramp("x", [1])]))
        #expect(try SafeTensorsFile(url: plain).metadata.isEmpty)
    }

    @Test("aligned F32 is borrowed from the mapping: pointer inside the mapping, no copy")
    func zeroCopy() throws {
        let dir = try TempDir()
        let url = try dir.write("z.safetensors", STWriter.valid([STWriter.ramp("a", [3]), STWriter.ramp("b", [2, 2])]))
        let file = try SafeTensorsFile(url: url)
        let b = try #require(file.tensors["b"])
        #expect(file.isZeroCopy(b))
        let t = try file.floatTensor("b")
        #expect(t.shape == [2, 2] && t.array == [0, 1, 2, 3])
        #expect(file.contains(pointer: UnsafeRawPointer(t.pointer)))
        #expect(UnsafeRawPointer(t.pointer) == file.rawBytes(b).baseAddress)
        // Two reads share the same memory.
        #expect(try file.floatTensor("b").pointer == t.pointer)
    }

    @Test("a borrowed tensor keeps the mapping alive after the file object is released")
    func ownerLifetime() throws {
        let dir = try TempDir()
        let url = try dir.write("life.safetensors", STWriter.valid([STWriter.ramp("w", [4])]))
        var file: SafeTensorsFile? = try SafeTensorsFile(url: url)
        weak let weakFile = file
        let t = try #require(file).floatTensor("w")
        file = nil
        #expect(weakFile != nil, "the tensor's storage must retain its owner")
        #expect(t.array == [0, 1, 2, 3])
    }

    @Test("misaligned F32 (header length not a multiple of 4) is copied, values intact")
    func misalignedCopy() throws {
        let dir = try TempDir()
        // Pad so that 8 + N is odd: the data buffer starts at an odd address.
        var bytes = STWriter.valid([STWriter.ramp("w", [5])], headerPadTo: 1)
        let n = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        if (8 + n) % 2 == 0 { bytes = STWriter.valid([STWriter.ramp("w", [5])], headerPadTo: 1, extraPad: 1) }
        let url = try dir.write("odd.safetensors", bytes)
        let file = try SafeTensorsFile(url: url)
        let info = try #require(file.tensors["w"])
        #expect(!file.isZeroCopy(info))
        let t = try file.floatTensor("w")
        #expect(!file.contains(pointer: UnsafeRawPointer(t.pointer)))
        #expect(t.array == [0, 1, 2, 3, 4], "maxdiff \(maxDiff(t.array, [0, 1, 2, 3, 4]))")
    }

    /// Reference values: IEEE binary16/bfloat16 encodings of exactly representable numbers,
    /// tolerance 0.
    @Test("F16 and BF16 written by the Swift writer decode exactly; F64 rounds to Float")
    func conversions() throws {
        let dir = try TempDir()
        let f16: [UInt16] = [0x3C00, 0xC000, 0x3800, 0x0001, 0x7C00, 0x8000]    // 1, -2, 0.5, 2^-24, inf, -0
        let bf16: [UInt16] = [0x3F80, 0xC040, 0x4049, 0x0000]                    // 1, -3, 3.140625, 0
        let f64: [Double] = [1.5, -0.25, 1e300, 1.0 / 3.0]
        let url = try dir.write("conv.safetensors", STWriter.valid([
            .init(name: "h", dtype: "F16", shape: [2, 3], bytes: STWriter.u16(f16)),
            .init(name: "b", dtype: "BF16", shape: [4], bytes: STWriter.u16(bf16)),
            .init(name: "d", dtype: "F64", shape: [4], bytes: STWriter.f64(f64)),
        ]))
        let file = try SafeTensorsFile(url: url)
        let h = try file.floatTensor("h")
        let wantH: [Float] = [1, -2, 0.5, 0x1p-24, .infinity, -0.0]
        #expect(h.shape == [2, 3] && h.array.map(\.bitPattern) == wantH.map(\.bitPattern), "maxdiff \(maxDiff(h.array, wantH))")
        let b = try file.floatTensor("b")
        #expect(b.array == [1, -3, 3.140625, 0], "maxdiff \(maxDiff(b.array, [1, -3, 3.140625, 0]))")
        let d = try file.floatTensor("d")
        let wantD: [Float] = [1.5, -0.25, .infinity, Float(1.0 / 3.0)]
        #expect(d.array == wantD, "maxdiff \(maxDiff(d.array, wantD))")
    }

    @Test("integer and 8-bit dtypes are refused by floatTensor, naming the tensor; raw bytes stay readable")
    func unsupported() throws {
        let dir = try TempDir()
        let url = try dir.write("ints.safetensors", STWriter.valid([
            .init(name: "ids", dtype: "I64", shape: [2], bytes: [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]),
            .init(name: "q", dtype: "F8_E4M3", shape: [2], bytes: [0x38, 0x40]),
        ]))
        let file = try SafeTensorsFile(url: url)
        for (name, dt) in [("ids", SafeTensorsDType.I64), ("q", .F8_E4M3)] {
            let e = try #require(expectCheckpointError { _ = try file.floatTensor(name) })
            guard case let .unsupportedDType(_, tensor, dtype) = e else { Issue.record("got \(e)"); continue }
            #expect(tensor == name && dtype == dt)
            #expect(e.description.contains("ints.safetensors") && e.description.contains("'\(name)'"))
        }
        #expect(Array(file.rawBytes(try #require(file.tensors["q"]))) == [0x38, 0x40])
    }

    @Test("an unknown tensor name → .tensorNotFound naming file and tensor")
    func notFound() throws {
        let dir = try TempDir()
        let url = try dir.write("nf.safetensors", STWriter.valid([STWriter.ramp("w", [1])]))
        let file = try SafeTensorsFile(url: url)
        let e = try #require(expectCheckpointError { _ = try file.floatTensor("missing.weight") })
        guard case let .tensorNotFound(source, tensor) = e else { Issue.record("got \(e)"); return }
        #expect(source.hasSuffix("nf.safetensors") && tensor == "missing.weight")
    }

    @Test("scalars, zero-element tensors, empty files and unordered headers are valid")
    func edgeShapes() throws {
        let dir = try TempDir()
        let url = try dir.write("edge.safetensors", STWriter.valid([
            .init(name: "s", dtype: "F32", shape: [], bytes: STWriter.f32([7])),
            .init(name: "z", dtype: "F32", shape: [0, 3], bytes: []),
            .init(name: "v", dtype: "F32", shape: [2], bytes: STWriter.f32([8, 9])),
        ]))
        let file = try SafeTensorsFile(url: url)
        #expect(try file.floatTensor("s").array == [7])
        #expect(try file.floatTensor("s").shape == [])
        let z = try file.floatTensor("z")
        #expect(z.shape == [0, 3] && z.count == 0)
        #expect(file.namesInFileOrder == ["s", "z", "v"])
        #expect(try file.floatTensor("v").array == [8, 9])

        let empty = try dir.write("empty.safetensors", STWriter.image(headerJSON: "{}", data: []))
        #expect(try SafeTensorsFile(url: empty).tensors.isEmpty)

        // Entries listed out of offset order are sorted, as the crate does.
        let header = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"
        let unordered = try dir.write("unordered.safetensors", STWriter.image(headerJSON: header, data: STWriter.f32([1, 2])))
        let uf = try SafeTensorsFile(url: unordered)
        #expect(uf.namesInFileOrder == ["a", "b"])
        #expect(try uf.floatTensor("b").array == [2])
    }

    @Test("dtype sizes follow the format (bits and bytes)")
    func dtypeSizes() {
        #expect(SafeTensorsDType.allCases.count == 22)
        let bytes: [SafeTensorsDType: Int] = [.BOOL: 1, .U8: 1, .I8: 1, .I16: 2, .U16: 2, .F16: 2, .BF16: 2,
                                              .I32: 4, .U32: 4, .F32: 4, .F64: 8, .I64: 8, .U64: 8, .C64: 8,
                                              .F8_E4M3: 1, .F8_E5M2: 1, .F8_E4M3FNUZ: 1, .F8_E5M2FNUZ: 1, .F8_E8M0: 1]
        for (d, n) in bytes { #expect(d.byteSize == n && d.bitSize == 8 * n, "\(d)") }
        #expect(SafeTensorsDType.F4.bitSize == 4 && SafeTensorsDType.F6_E2M3.bitSize == 6 && SafeTensorsDType.F6_E3M2.bitSize == 6)
    }
}

// Round trips through libhdf5: what HDF5Store writes it reads back exactly (reference: the
// values written; tolerance 0, floats compared bit-for-bit except NaN == NaN).
import Foundation
import Testing
@testable import HDF5Store

@Suite("HDF5File round trips")
struct HDF5FileTests {
    @Test("attributeNames lists every attribute of the root and of a dataset, in name order (what merge copies)")
    func attributeNames() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = try HDF5File.create(at: dir.appendingPathComponent("a.h5"), overwrite: false)
        defer { try? f.close() }
        #expect(try f.attributeNames() == [])
        let long = String(repeating: "n", count: 1500)  // longer than the first name buffer
        for (name, value) in [("zeta", AttributeValue.int(1)), ("alpha", .string("é")), (long, .strings(["a", "b"]))] {
            try f.setAttribute(name, value)
        }
        #expect(try f.attributeNames() == ["alpha", long, "zeta"])
        try f.createDimension("probe", strings: ["p"])
        try f.createVariable("v", type: .float32, dims: ["probe"])
        try f.setAttribute("units", .string("logit"), on: "v")
        #expect(try f.attributeNames(on: "v").contains("units"))
        #expect(throws: HDF5Error.self) { try f.attributeNames(on: "missing") }
    }

    @Test("The demo file reads back: dims, coordinate, every element type, fills, groups, attributes")
    func demoRoundTrip() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("demo.h5")
        try Demo.write(to: url)

        let f = try HDF5File.open(at: url, writable: false)
        defer { try? f.close() }
        #expect(try f.readStrings("checkpoint").values == Demo.checkpoints)
        #expect(try f.readStrings("probe").values == Demo.probes, "UTF-8 probe names must round-trip")
        #expect(try f.readInt64("step").values == Demo.steps)
        #expect(try f.readInt64("layer").values == Demo.layers)
        #expect(try f.dimensionNames().sorted() == ["checkpoint", "head", "key_pos", "layer", "probe", "query_pos"])

        let (nc, np, nl) = (Demo.checkpoints.count, Demo.probes.count, Demo.layers.count)
        let margin = try f.readFloats("margin")
        #expect(margin.shape == [nc, np, nl])
        var expected: [Float] = []
        for c in 0..<nc { for p in 0..<np { for l in 0..<nl { expected.append(Demo.margin(c, p, l)) } } }
        let diff = maxAbsDiff(margin.values, expected)
        #expect(diff == 0, "margin max |diff| = \(diff)")

        let top = try f.readInts32("top_token")
        #expect(top.shape == [nc, np])
        #expect(top.values == (0..<nc).flatMap { c in (0..<np).map { Demo.topToken(c, $0) } })
        #expect(try f.readStrings("answer_text").values == (0..<nc).flatMap { c in (0..<np).map { Demo.answer(c, $0) } })
        #expect(try f.readUInt8("correct").values == (0..<nc).flatMap { c in (0..<np).map { Demo.correct(c, $0) } })
        #expect(try f.readInt64("token_count").values == Demo.tokenCount)

        // Only checkpoint 0 of the dump was written: slab 0 has values, slabs 1-2 the NaN fill.
        let pattern = try f.readFloats("dumps/attention_pattern")
        let (nh, npos) = (Demo.heads.count, Demo.positions.count)
        #expect(pattern.shape == [nc, nh, npos, npos])
        let slab0 = try f.readFloats("dumps/attention_pattern", slab: 0)
        #expect(slab0.shape == [nh, npos, npos])
        var expectedSlab: [Float] = []
        for h in 0..<nh { for q in 0..<npos { for k in 0..<npos { expectedSlab.append(Demo.pattern(h, q, k)) } } }
        let slabDiff = maxAbsDiff(slab0.values, expectedSlab)
        #expect(slabDiff == 0, "attention slab 0 max |diff| = \(slabDiff)")
        #expect(Array(pattern.values.prefix(expectedSlab.count)) == slab0.values)
        #expect(pattern.values.dropFirst(expectedSlab.count).allSatisfy { $0.isNaN }, "unwritten slabs read as NaN fill")
        #expect(try f.isSlabWritten("dumps/attention_pattern", index: 0))
        #expect(try !f.isSlabWritten("dumps/attention_pattern", index: 1))

        #expect(try f.dimensions(of: "margin") == ["checkpoint", "probe", "layer"])
        #expect(try f.dimensions(of: "dumps/attention_pattern") == ["checkpoint", "head", "query_pos", "key_pos"])
        #expect(try f.dimensions(of: "step") == ["checkpoint"])
        #expect(try f.elementType(of: "answer_text") == .string)
        #expect(try f.children(of: "dumps") == ["attention_pattern"])
        #expect(f.exists("dumps/attention_pattern") && f.exists("/dumps") && f.exists("/"))
        #expect(!f.exists("dumps/nope") && !f.exists("nope/deeper") && !f.exists("../x"))

        for (name, value) in Demo.rootAttributes {
            #expect(try f.attribute(name) == value, "root attribute \(name)")
        }
        #expect(try f.attribute("coordinates") == .string("step"))
        #expect(try f.attribute("units", on: "margin") == .string("logit"))
    }

    @Test("Fill values: defaults per type and explicit ones; unwritten slabs read as the fill")
    func fills() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = try HDF5File.create(at: dir.appendingPathComponent("fill.h5"), overwrite: false)
        try f.createDimension("c", ints: [0, 1])
        try f.createDimension("x", strings: ["a", "b", "c"])
        try f.createVariable("f", type: .float32, dims: ["c", "x"])
        try f.createVariable("f7", type: .float32, dims: ["c", "x"], fill: .double(7.5))
        try f.createVariable("i32", type: .int32, dims: ["c", "x"])
        try f.createVariable("i64", type: .int64, dims: ["c", "x"])
        try f.createVariable("u8", type: .uint8, dims: ["c", "x"])
        try f.createVariable("s", type: .string, dims: ["c", "x"])
        try f.createVariable("s2", type: .string, dims: ["c", "x"], fill: .string(""))
        try f.writeSlab("f", index: 1, floats: [1, 2, 3])
        try f.writeSlab("s", index: 1, strings: ["x", "", "z"])
        let floats = try f.readFloats("f").values
        #expect(floats.prefix(3).allSatisfy { $0.isNaN } && Array(floats.suffix(3)) == [1, 2, 3])
        #expect(try f.readFloats("f7").values == [Float](repeating: 7.5, count: 6))
        #expect(try f.readInts32("i32").values == [Int32](repeating: -1, count: 6))
        #expect(try f.readInt64("i64").values == [Int64](repeating: -1, count: 6))
        #expect(try f.readUInt8("u8").values == [UInt8](repeating: 0, count: 6))
        #expect(try f.readStrings("s").values == ["", "", "", "x", "", "z"])
        #expect(try f.readStrings("s2").values == [String](repeating: "", count: 6))
        try f.close()
        // Unwritten string chunks must also read from a read-only file (no fill to materialise).
        let r = try HDF5File.open(at: dir.appendingPathComponent("fill.h5"), writable: false)
        #expect(try r.readStrings("s").values == ["", "", "", "x", "", "z"])
        #expect(try r.readFloats("f7").values == [Float](repeating: 7.5, count: 6))
        try r.close()
    }

    @Test("Attributes: every AttributeValue case round-trips, replacing works, empty arrays and NaN")
    func attributes() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("attrs.h5")
        let f = try HDF5File.create(at: url, overwrite: false)
        try f.createGroup("g/h")
        let values: [AttributeValue] = [
            .string("héllo ✓"), .string(""), .int(Int64.min), .int(Int64.max), .double(-0.0), .double(.nan),
            .double(.infinity), .strings(["a", "ü", ""]), .strings([]), .ints([1, -2, 3]), .ints([]),
            .doubles([1.5, .nan]), .doubles([]),
            .string(String(repeating: "long config json ", count: 10_000)),
            // 160 KB: beyond the 64 KB object-header message limit, needs v1.8 dense attribute storage
            .doubles((0..<20_000).map { Double($0) / 3 }),
        ]
        for (i, v) in values.enumerated() {
            try f.setAttribute("a\(i)", v, on: "g/h")
        }
        try f.setAttribute("a0", .int(42), on: "g/h")  // replace with another type
        try f.close()

        let r = try HDF5File.open(at: url, writable: false)
        defer { try? r.close() }
        #expect(try r.attribute("a0", on: "/g/h") == .int(42))
        for (i, v) in values.enumerated().dropFirst() {
            #expect(try r.attribute("a\(i)", on: "g/h") == v, "attribute a\(i)")
        }
    }

    @Test("Resume: reopening read-write keeps the data and continues with the next slab")
    func resume() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("resume.h5")
        do {
            let f = try HDF5File.create(at: url, overwrite: false)
            try f.createDimension("checkpoint", ints: [10, 20, 30])
            try f.createDimension("probe", strings: ["p"])
            try f.createVariable("v", type: .float32, dims: ["checkpoint", "probe"])
            try f.writeSlab("v", index: 0, floats: [1])
            try f.close()
        }
        let f = try HDF5File.open(at: url, writable: true)
        #expect(try f.isSlabWritten("v", index: 0))
        #expect(try !f.isSlabWritten("v", index: 1))
        try f.writeSlab("v", index: 1, floats: [2])
        // New dimensions after reopening get the next netCDF dimension id.
        try f.createDimension("extra", ints: [0])
        #expect(try f.attributeInt32("_Netcdf4Dimid", on: "extra") == 2)
        try f.close()
        let r = try HDF5File.open(at: url, writable: false)
        let v = try r.readFloats("v").values
        #expect(v[0] == 1 && v[1] == 2 && v[2].isNaN)
        try r.close()
    }

    @Test("Chunking: 1 along the first axis, whole trailing axes, split from the outside beyond the limit")
    func chunking() {
        #expect(Chunking.shape(dims: [5, 3, 4], elementSize: 4) == [1, 3, 4])
        #expect(Chunking.shape(dims: [7], elementSize: 4) == [1])
        #expect(Chunking.shape(dims: [2, 100, 100], elementSize: 4, byteLimit: 8_000) == [1, 20, 100])
        #expect(Chunking.shape(dims: [2, 10, 1000], elementSize: 4, byteLimit: 2_000) == [1, 1, 500])
        #expect(Chunking.shape(dims: [2, Int.max / 2, 3], elementSize: 4) == [1, (4 << 20) / 12, 3])
    }

    @Test("Chunk layout and filters as stored: chunk (1, trailing...), shuffle + deflate 4 (read back by h5py)",
          .enabled(if: Python.hasH5py, "needs python3 with h5py"))
    func storedChunks() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("chunks.h5")
        try Demo.write(to: url)
        let script = """
        import h5py, sys
        f = h5py.File(sys.argv[1], "r")
        for n in ["margin", "dumps/attention_pattern", "answer_text"]:
            d = f[n]
            print(n, d.chunks, d.compression, d.compression_opts, d.shuffle)
        """
        let r = try Python.run(["-c", script, url.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == """
        margin (1, 3, 4) gzip 4 True
        dumps/attention_pattern (1, 2, 5, 5) gzip 4 True
        answer_text (1, 3) gzip 4 True

        """)
    }
}

extension HDF5File {
    /// Test helper: reads an integer attribute as Int64 (also the reserved ones).
    func attributeInt32(_ name: String, on object: String) throws -> Int64? {
        if case let .int(v) = try attribute(name, on: object) { return v }
        return nil
    }
}

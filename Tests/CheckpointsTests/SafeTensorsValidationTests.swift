// Proves that malformed safetensors files are refused with the specific CheckpointError case,
// naming the file and (where one is involved) the tensor, and never trap.
// Reference for the rules: Rust `safetensors` tensor.rs and the Python safetensors 0.8.0 verdicts
// committed in Tests/Fixtures/safetensors/validation_corpus.json.

import Foundation
import Testing
@testable import Checkpoints

/// The enum case name of an error (e.g. "truncated"), for table-driven checks.
func caseName(_ e: CheckpointError) -> String {
    Mirror(reflecting: e).children.first?.label ?? "\(e)"
}

/// Writes `bytes` as `<name>` in a fresh temp dir and opens it, requiring a CheckpointError.
private func openError(_ name: String, _ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws
    -> (CheckpointError, TempDir)?
{
    let dir = try TempDir()
    let url = try dir.write(name, bytes)
    guard let e = expectCheckpointError({ _ = try SafeTensorsFile(url: url) }, sourceLocation: sourceLocation) else {
        return nil
    }
    #expect(!e.description.contains("\n"), "description must be one line", sourceLocation: sourceLocation)
    #expect(!e.hint.isEmpty, sourceLocation: sourceLocation)
    #expect(e.description.contains(name), "description names the file: \(e.description)", sourceLocation: sourceLocation)
    return (e, dir)
}

@Suite("safetensors validation errors")
struct SafeTensorsValidationTests {
    let two = [STWriter.ramp("a", [2]), STWriter.ramp("b", [3])]

    @Test("truncated file: data shorter than the last offset → .truncated naming the tensor")
    func truncatedFile() throws {
        var bytes = STWriter.valid(two)
        bytes.removeLast(2)
        let (e, _) = try #require(try openError("cut.safetensors", bytes))
        guard case let .truncated(file, tensor, end, dataLength) = e else { Issue.record("got \(e)"); return }
        #expect(file.hasSuffix("cut.safetensors"))
        #expect(tensor == "b" && end == 20 && dataLength == 18)
        #expect(e.description.contains("'b'"))
    }

    @Test("header length past end of file → .headerPastEndOfFile")
    func headerPastEnd() throws {
        let bytes = STWriter.image(header: Array("{}".utf8), data: [], declaredLength: 1000)
        let (e, _) = try #require(try openError("short-header.safetensors", bytes))
        guard case let .headerPastEndOfFile(_, declared, size) = e else { Issue.record("got \(e)"); return }
        #expect(declared == 1000 && size == 10)
    }

    @Test("oversized header (> 100 MB, and u64 max) → .headerTooLarge")
    func oversizedHeader() throws {
        for declared: UInt64 in [100_000_001, UInt64.max] {
            let bytes = STWriter.image(header: Array("{}".utf8), data: [], declaredLength: declared)
            let (e, _) = try #require(try openError("huge-header.safetensors", bytes))
            guard case let .headerTooLarge(_, d, limit) = e else { Issue.record("got \(e)"); return }
            #expect(d == declared && limit == 100_000_000)
        }
    }

    @Test("file shorter than 8 bytes (and empty) → .fileTooSmall")
    func tooSmall() throws {
        for n in [0, 5] {
            let (e, _) = try #require(try openError("tiny.safetensors", [UInt8](repeating: 0, count: n)))
            guard case let .fileTooSmall(_, size) = e else { Issue.record("got \(e)"); return }
            #expect(size == n)
        }
    }

    @Test("bad JSON → .headerBadJSON with the byte offset")
    func badJSON() throws {
        for header in ["{\"a\":", "{\"a\":{\"dtype\":\"F32\",}}", "{'a':1}", "{} x", "{\"a\":tru}", "{\"a\":01}"] {
            let (e, _) = try #require(try openError("badjson.safetensors", STWriter.image(headerJSON: header, data: [])))
            guard case let .headerBadJSON(_, reason) = e else { Issue.record("\(header): got \(e)"); continue }
            #expect(reason.contains("at byte"), "\(reason)")
        }
    }

    @Test("JSON nested deeper than the limit is refused without exhausting the stack")
    func deepJSON() throws {
        let header = "{\"__metadata__\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        let (e, _) = try #require(try openError("deep.safetensors", STWriter.image(headerJSON: header, data: [])))
        guard case let .headerBadJSON(_, reason) = e else { Issue.record("got \(e)"); return }
        #expect(reason == "nested deeper than 128 levels at byte 143")
    }

    @Test("non-UTF-8 header → .headerNotUTF8 at the offending byte")
    func notUTF8() throws {
        // {"a<FF>": ...}: the 0xFF is header byte 3. Also an overlong encoding and a UTF-8 surrogate.
        for (bad, offset) in [([UInt8(0xFF)], 3), ([0xC0, 0x80], 3), ([0xED, 0xA0, 0x80], 3)] {
            let header = Array("{\"a".utf8) + bad + Array("\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}".utf8)
            let (e, _) = try #require(try openError("latin1.safetensors", STWriter.image(header: header, data: [0, 0, 0, 0])))
            guard case let .headerNotUTF8(_, at) = e else { Issue.record("got \(e)"); return }
            #expect(at == offset)
        }
    }

    @Test("unknown dtype (and wrong case) → .unknownDType naming tensor and dtype")
    func unknownDType() throws {
        for dt in ["F33", "f32", "float32", ""] {
            let bytes = STWriter.valid([.init(name: "embed.weight", dtype: dt, shape: [1], bytes: [0, 0, 0, 0])])
            let (e, _) = try #require(try openError("dtype.safetensors", bytes))
            guard case let .unknownDType(_, tensor, dtype) = e else { Issue.record("got \(e)"); return }
            #expect(tensor == "embed.weight" && dtype == dt)
            #expect(e.description.contains("'embed.weight'"))
            #expect(e.hint.contains("BF16"))
        }
    }

    @Test("overlapping offsets → .overlappingOffsets naming both tensors")
    func overlapping() throws {
        let header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"
        let (e, _) = try #require(try openError("overlap.safetensors", STWriter.image(headerJSON: header, data: .init(repeating: 0, count: 8))))
        guard case let .overlappingOffsets(_, tensor, previous, start, previousEnd) = e else { Issue.record("got \(e)"); return }
        #expect(tensor == "b" && previous == "a" && start == 4 && previousEnd == 8)
        #expect(e.description.contains("'b'") && e.description.contains("'a'"))
    }

    @Test("gapped offsets, between tensors and before the first → .gappedOffsets")
    func gapped() throws {
        let between = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}"
        let (e1, _) = try #require(try openError("gap.safetensors", STWriter.image(headerJSON: between, data: .init(repeating: 0, count: 12))))
        guard case let .gappedOffsets(_, tensor, previous, gs, ge) = e1 else { Issue.record("got \(e1)"); return }
        #expect(tensor == "b" && previous == "a" && gs == 4 && ge == 8)
        #expect(e1.description.contains("'b'"))

        let atStart = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"
        let (e2, _) = try #require(try openError("gap0.safetensors", STWriter.image(headerJSON: atStart, data: .init(repeating: 0, count: 8))))
        guard case let .gappedOffsets(_, t2, p2, gs2, ge2) = e2 else { Issue.record("got \(e2)"); return }
        #expect(t2 == "w" && p2 == nil && gs2 == 0 && ge2 == 4)
    }

    @Test("byte length not matching shape × dtype → .byteLengthMismatch")
    func lengthMismatch() throws {
        let header = "{\"lm_head.weight\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,10]}}"
        let (e, _) = try #require(try openError("len.safetensors", STWriter.image(headerJSON: header, data: .init(repeating: 0, count: 10))))
        guard case let .byteLengthMismatch(_, tensor, dtype, shape, expected, actual) = e else { Issue.record("got \(e)"); return }
        #expect(tensor == "lm_head.weight" && dtype == .BF16 && shape == [2, 3] && expected == 12 && actual == 10)
        #expect(e.description.contains("'lm_head.weight'"))
    }

    @Test("trailing bytes after the last tensor → .trailingBytes")
    func trailing() throws {
        let bytes = STWriter.valid(two) + [0, 0, 0]
        let (e, _) = try #require(try openError("tail.safetensors", bytes))
        guard case let .trailingBytes(_, extra, last) = e else { Issue.record("got \(e)"); return }
        #expect(extra == 3 && last == "b")
    }

    @Test("end before start → .invertedOffsets")
    func inverted() throws {
        let header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}"
        let (e, _) = try #require(try openError("inv.safetensors", STWriter.image(headerJSON: header, data: [])))
        guard case let .invertedOffsets(_, tensor, s, en) = e else { Issue.record("got \(e)"); return }
        #expect(tensor == "a" && s == 4 && en == 0)
    }

    @Test("element count × dtype size overflowing Int → .sizeOverflow")
    func overflow() throws {
        for shape in ["[4611686018427387904,4]", "[9223372036854775807,2]", "[3037000500,3037000500]"] {
            let header = "{\"big\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":[0,4]}}"
            let (e, _) = try #require(try openError("ovf.safetensors", STWriter.image(headerJSON: header, data: [0, 0, 0, 0])))
            guard case let .sizeOverflow(_, tensor, _, dtype) = e else { Issue.record("\(shape): got \(e)"); return }
            #expect(tensor == "big" && dtype == .F32)
        }
    }

    @Test("packed F4 with an odd element count → .subByteMisaligned")
    func subByte() throws {
        let header = "{\"q\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}"
        let (e, _) = try #require(try openError("f4.safetensors", STWriter.image(headerJSON: header, data: [0, 0])))
        guard case let .subByteMisaligned(_, tensor, dtype, n) = e else { Issue.record("got \(e)"); return }
        #expect(tensor == "q" && dtype == .F4 && n == 3)
    }

    @Test("missing dtype / shape / data_offsets → .missingField naming the field")
    func missingFields() throws {
        let cases = [("dtype", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}"),
                     ("shape", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}"),
                     ("data_offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}")]
        for (field, header) in cases {
            let (e, _) = try #require(try openError("fields.safetensors", STWriter.image(headerJSON: header, data: [0, 0, 0, 0])))
            guard case let .missingField(_, tensor, f) = e else { Issue.record("got \(e)"); return }
            #expect(tensor == "t" && f == field)
        }
    }

    @Test("fields of the wrong type or value → .invalidField")
    func invalidFields() throws {
        let cases: [(String, String)] = [
            ("shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}"),
            ("shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}"),
            ("shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}"),
            ("shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}"),
            ("data_offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}}"),
            ("data_offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}"),
            ("data_offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,null]}}"),
            ("dtype", "{\"t\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}"),
            ("(entry)", "{\"t\":5}"),
        ]
        for (field, header) in cases {
            let (e, _) = try #require(try openError("types.safetensors", STWriter.image(headerJSON: header, data: [0, 0, 0, 0])))
            guard case let .invalidField(_, tensor, f, _) = e else { Issue.record("\(header): got \(e)"); continue }
            #expect(tensor == "t" && f == field, "\(header)")
        }
    }

    @Test("__metadata__ that is not string→string → .invalidMetadata")
    func badMetadata() throws {
        for header in ["{\"__metadata__\":{\"a\":1}}", "{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", "{\"__metadata__\":[]}"] {
            let (e, _) = try #require(try openError("meta.safetensors", STWriter.image(headerJSON: header, data: [])))
            guard case .invalidMetadata = e else { Issue.record("\(header): got \(e)"); continue }
        }
    }

    @Test("header that is JSON but not an object → .headerNotObject")
    func notObject() throws {
        let (e, _) = try #require(try openError("array.safetensors", STWriter.image(headerJSON: "[]", data: [])))
        guard case .headerNotObject = e else { Issue.record("got \(e)"); return }
    }

    @Test("the same tensor twice in one header → .duplicateTensorInHeader (stricter than the crate)")
    func duplicateInHeader() throws {
        let entry = "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"
        let (e, _) = try #require(try openError("dup.safetensors", STWriter.image(headerJSON: "{\(entry),\(entry)}", data: [0, 0, 0, 0])))
        guard case let .duplicateTensorInHeader(_, tensor) = e else { Issue.record("got \(e)"); return }
        #expect(tensor == "w")
    }

    @Test("a missing file and a folder → .unreadable")
    func unreadable() throws {
        let dir = try TempDir()
        for url in [dir.url.appendingPathComponent("nope.safetensors"), dir.url] {
            let e = try #require(expectCheckpointError { _ = try SafeTensorsFile(url: url) })
            guard case .unreadable = e else { Issue.record("got \(e)"); continue }
        }
    }

    @Test("control characters in a tensor name are escaped so the description stays one line")
    func oneLine() throws {
        let header = "{\"a\\nb\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}"
        let (e, _) = try #require(try openError("nl.safetensors", STWriter.image(headerJSON: header, data: [0, 0, 0, 0])))
        guard case let .unknownDType(_, tensor, _) = e else { Issue.record("got \(e)"); return }
        #expect(tensor == "a\nb")
        #expect(e.description.contains("a\\nb"))
    }

    /// Reference: Python safetensors 0.8.0 (`safe_open`) verdicts recorded by
    /// Tools/gen_safetensors_fixtures.py. Every image it rejects we must reject, with the case listed
    /// here; every image it accepts we accept, except a duplicated tensor name (we are stricter).
    @Test("validation is at least as strict as the reference reader on the committed corpus")
    func corpusParity() throws {
        let expected: [String: String] = [
            "duplicate_name": "duplicateTensorInHeader",
            "too_small": "fileTooSmall", "empty_file": "fileTooSmall",
            "header_too_large": "headerTooLarge", "header_u64_max": "headerTooLarge",
            "header_past_eof": "headerPastEndOfFile", "not_utf8": "headerNotUTF8",
            "bad_json": "headerBadJSON", "trailing_nul": "headerBadJSON", "lone_surrogate": "headerBadJSON",
            "header_array": "headerNotObject",
            "metadata_int_value": "invalidMetadata", "metadata_nested": "invalidMetadata",
            "entry_not_object": "invalidField", "float_shape": "invalidField", "negative_shape": "invalidField",
            "three_offsets": "invalidField", "huge_offset": "invalidField",
            "missing_shape": "missingField", "missing_dtype": "missingField", "missing_offsets": "missingField",
            "unknown_dtype": "unknownDType", "lowercase_dtype": "unknownDType",
            "size_overflow": "sizeOverflow", "f4_odd": "subByteMisaligned", "inverted_offsets": "invertedOffsets",
            "gap_between": "gappedOffsets", "gap_at_start": "gappedOffsets", "overlap": "overlappingOffsets",
            "length_mismatch": "byteLengthMismatch", "truncated": "truncated", "trailing_bytes": "trailingBytes",
        ]
        let url = fixturesDir("safetensors").appendingPathComponent("validation_corpus.json")
        let root = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let cases = try #require(root["cases"] as? [[String: String]])
        #expect(cases.count >= 40)
        let dir = try TempDir()
        var rejectedByReference = 0
        for c in cases {
            let name = try #require(c["name"]), hex = try #require(c["hex"]), verdict = try #require(c["reference"])
            var bytes: [UInt8] = []
            var it = hex.makeIterator()
            while let hi = it.next(), let lo = it.next() { bytes.append(try #require(UInt8(String([hi, lo]), radix: 16))) }
            let file = try dir.write(name + ".safetensors", bytes)
            let result = Result { try SafeTensorsFile(url: file) }
            switch (verdict == "ok", result) {
            case (true, .success):
                #expect(expected[name] == nil, "\(name): accepted, but the test expects \(expected[name] ?? "")")
            case (true, .failure(let e)):
                #expect(expected[name] != nil, "\(name): reference accepts, we reject: \(e)")
                if let want = expected[name], let ce = e as? CheckpointError { #expect(caseName(ce) == want, "\(name)") }
            case (false, .success):
                Issue.record("\(name): reference rejects (\(verdict)) but we accept")
            case (false, .failure(let e)):
                rejectedByReference += 1
                let ce = try #require(e as? CheckpointError)
                #expect(caseName(ce) == expected[name], "\(name): got \(caseName(ce)), want \(expected[name] ?? "?")")
                #expect(ce.description.contains(name + ".safetensors"))
            }
        }
        #expect(rejectedByReference == expected.count - 1)  // all but duplicate_name
    }
}

// Every failure surfaces as an HDF5Error of the right case, whose one-line description names
// the file (and object), instead of a trap or a bare HDF5 error stack.
import Foundation
import Testing
@testable import HDF5Store

/// Runs `body`, expects an HDF5Error, checks its description is one line naming `file`, returns it.
@discardableResult
func expectHDF5Error(naming file: String, sourceLocation: SourceLocation = #_sourceLocation,
                     _ body: () throws -> Void) -> HDF5Error? {
    do {
        try body()
        Issue.record("expected an HDF5Error, got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as HDF5Error {
        let text = error.description
        #expect(!text.contains("\n"), "description must be one line: \(text)", sourceLocation: sourceLocation)
        #expect(text.contains(file), "description must name \(file): \(text)", sourceLocation: sourceLocation)
        #expect(!error.hint.isEmpty, sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected an HDF5Error, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

@Suite("HDF5Error cases")
struct HDF5ErrorTests {
    @Test("create: missing directory, existing file without overwrite, path is a directory")
    func createFailures() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("no/such/dir/x.h5")
        let e1 = expectHDF5Error(naming: missing.path) { _ = try HDF5File.create(at: missing, overwrite: true) }
        guard case .cannotCreate = e1 else { Issue.record("got \(String(describing: e1))"); return }

        let url = dir.appendingPathComponent("x.h5")
        try HDF5File.create(at: url, overwrite: false).close()
        let e2 = expectHDF5Error(naming: url.path) { _ = try HDF5File.create(at: url, overwrite: false) }
        guard case .alreadyExists(_, "/") = e2 else { Issue.record("got \(String(describing: e2))"); return }
        // overwrite replaces it with an empty file
        let f = try HDF5File.create(at: url, overwrite: true)
        #expect(try f.children() == [])
        try f.close()

        let e3 = expectHDF5Error(naming: dir.path) { _ = try HDF5File.create(at: dir, overwrite: true) }
        guard case .cannotCreate = e3 else { Issue.record("got \(String(describing: e3))"); return }

        let underFile = url.appendingPathComponent("inner.h5")  // parent is a regular file
        let e4 = expectHDF5Error(naming: underFile.path) { _ = try HDF5File.create(at: underFile, overwrite: true) }
        guard case .cannotCreate = e4 else { Issue.record("got \(String(describing: e4))"); return }
    }

    @Test("create where the kernel refuses new files (sysfs, even for root): cannotCreate carries errno text",
          .enabled(if: FileManager.default.fileExists(atPath: "/sys/kernel"), "needs Linux sysfs"))
    func refusedByKernel() throws {
        let url = URL(fileURLWithPath: "/sys/cpiscope-\(UUID().uuidString).h5")
        let e = expectHDF5Error(naming: url.path) { _ = try HDF5File.create(at: url, overwrite: false) }
        guard case let .cannotCreate(_, reason) = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(reason.contains("errno = ") || reason.contains("not writable"), "reason: \(reason)")
    }

    @Test("create in a read-only directory fails with cannotCreate (skipped as root: root may write anywhere)",
          .enabled(if: geteuid() != 0, "running as root, which ignores directory permissions"))
    func readOnlyDirectory() throws {
        let dir = try makeTempDir()
        defer {
            chmod(dir.path, 0o755)
            try? FileManager.default.removeItem(at: dir)
        }
        #expect(chmod(dir.path, 0o555) == 0)
        let url = dir.appendingPathComponent("x.h5")
        let e = expectHDF5Error(naming: url.path) { _ = try HDF5File.create(at: url, overwrite: false) }
        guard case .cannotCreate = e else { Issue.record("got \(String(describing: e))"); return }
    }

    @Test("open: missing file, not an HDF5 file, directory")
    func openFailures() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let missing = dir.appendingPathComponent("missing.h5")
        let e1 = expectHDF5Error(naming: missing.path) { _ = try HDF5File.open(at: missing, writable: false) }
        guard case .cannotOpen = e1 else { Issue.record("got \(String(describing: e1))"); return }

        let text = dir.appendingPathComponent("notes.h5")
        try Data("this is not HDF5\n".utf8).write(to: text)
        let e2 = expectHDF5Error(naming: text.path) { _ = try HDF5File.open(at: text, writable: true) }
        guard case .notHDF5 = e2 else { Issue.record("got \(String(describing: e2))"); return }

        let e3 = expectHDF5Error(naming: dir.path) { _ = try HDF5File.open(at: dir, writable: false) }
        guard case .cannotOpen = e3 else { Issue.record("got \(String(describing: e3))"); return }
    }

    @Test("A truncated HDF5 file fails to open with an error, not a crash")
    func truncatedFile() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("demo.h5")
        try Demo.write(to: url)
        let bytes = try Data(contentsOf: url)
        let cut = dir.appendingPathComponent("cut.h5")
        try bytes.prefix(bytes.count / 3).write(to: cut)
        do {
            let f = try HDF5File.open(at: cut, writable: false)
            // If the superblock survived, reads must fail cleanly instead.
            expectHDF5Error(naming: cut.path) { _ = try f.readFloats("margin") }
        } catch let error as HDF5Error {
            #expect(error.description.contains(cut.path))
        }
    }

    @Test("Missing dataset / attribute / dimension, type and shape mismatch, index out of range")
    func objectFailures() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("x.h5")
        let f = try HDF5File.create(at: url, overwrite: false)
        defer { try? f.close() }
        try f.createDimension("c", ints: [0, 1])
        try f.createDimension("p", strings: ["a", "b", "c"])
        try f.createVariable("v", type: .float32, dims: ["c", "p"])

        var e = expectHDF5Error(naming: url.path) { _ = try f.readFloats("nope") }
        guard case .missingObject(_, "nope", "dataset") = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { _ = try f.attribute("nope", on: "v") }
        guard case .missingAttribute(_, "v", "nope") = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { _ = try f.attribute("x", on: "missing/obj") }
        guard case .missingObject = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { try f.createVariable("w", type: .float32, dims: ["c", "zzz"]) }
        guard case .missingObject(_, "zzz", "dimension") = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { try f.createVariable("w", type: .float32, dims: ["c", "v"]) }
        guard case .missingObject(_, "v", "dimension") = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { _ = try f.readInts32("v") }
        guard case .typeMismatch = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { try f.writeSlab("v", index: 0, ints32: [1, 2, 3]) }
        guard case .typeMismatch = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { _ = try f.readStrings("v") }
        guard case .typeMismatch = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { try f.writeSlab("v", index: 0, floats: [1, 2]) }
        guard case .shapeMismatch(_, "v", [3], [2]) = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { try f.write("v", floats: [1, 2, 3]) }
        guard case .shapeMismatch(_, "v", [2, 3], [3]) = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { try f.writeSlab("v", index: 2, floats: [1, 2, 3]) }
        guard case .indexOutOfRange(_, "v", 2, 2) = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { try f.writeSlab("v", index: -1, floats: [1, 2, 3]) }
        guard case .indexOutOfRange = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { try f.createCoordinate("step", along: "c", ints: [1, 2, 3]) }
        guard case .shapeMismatch = e else { Issue.record("got \(String(describing: e))"); return }
        e = expectHDF5Error(naming: url.path) { _ = try f.readFloats("/") }
        guard case .typeMismatch = e else { Issue.record("got \(String(describing: e))"); return }
        // a path through a dataset is missing, not a read failure
        e = expectHDF5Error(naming: url.path) { _ = try f.attribute("x", on: "v/inner") }
        guard case .missingObject = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(!f.exists("v/inner") && f.exists("v/") && f.exists("/v"))
    }

    @Test("Invalid arguments: names, duplicates, reserved attributes, bad fills, NUL in strings, empty dims")
    func invalidArguments() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("x.h5")
        let f = try HDF5File.create(at: url, overwrite: false)
        defer { try? f.close() }
        try f.createDimension("c", ints: [0, 1])
        try f.createDimension("s", strings: ["a"])
        try f.createVariable("v", type: .string, dims: ["c", "s"])

        let cases: [(String, () throws -> Void)] = [
            ("dup variable", { try f.createVariable("v", type: .float32, dims: ["c"]) }),
            ("dup dimension", { try f.createDimension("c", ints: [1]) }),
            ("empty dimension", { try f.createDimension("e", ints: []) }),
            ("dim in group", { try f.createDimension("g/e", ints: [1]) }),
            ("bad path", { try f.createVariable("a//b", type: .float32, dims: ["c"]) }),
            ("dotdot", { try f.createVariable("../b", type: .float32, dims: ["c"]) }),
            ("duplicate dims", { try f.createVariable("w", type: .float32, dims: ["c", "c"]) }),
            ("reserved attribute", { try f.setAttribute("DIMENSION_LIST", .int(1), on: "v") }),
            ("fill kind", { try f.createVariable("w", type: .float32, dims: ["c"], fill: .string("x")) }),
            ("string fill", { try f.createVariable("w", type: .string, dims: ["c"], fill: .string("n/a")) }),
            ("fill range", { try f.createVariable("w", type: .uint8, dims: ["c"], fill: .int(256)) }),
            ("fill range i32", { try f.createVariable("w", type: .int32, dims: ["c"], fill: .int(1 << 40)) }),
            ("NUL in string", { try f.writeSlab("v", index: 0, strings: ["a\u{0}b"]) }),
            ("NUL in attribute", { try f.setAttribute("x", .strings(["ok", "a\u{0}"])) }),
            ("scalar slab", {
                try f.createVariable("scalar", type: .int64, dims: [])
                try f.writeSlab("scalar", index: 0, int64: [])
            }),
            ("group over dataset", { try f.createGroup("v/inner") }),
        ]
        for (label, body) in cases {
            let e = expectHDF5Error(naming: url.path, body)
            #expect(e != nil, "\(label)")
        }
        #expect(!f.exists("w"), "failed creations leave no variable behind")
    }

    @Test("Read-only files refuse writes; closed files refuse everything")
    func readOnlyAndClosed() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("x.h5")
        let w = try HDF5File.create(at: url, overwrite: false)
        try w.createDimension("c", ints: [0])
        try w.createVariable("v", type: .float32, dims: ["c"])
        try w.close()
        try w.close()  // idempotent
        let e0 = expectHDF5Error(naming: url.path) { try w.writeSlab("v", index: 0, floats: [1]) }
        guard case .closed = e0 else { Issue.record("got \(String(describing: e0))"); return }
        #expect(!w.exists("v"))

        let r = try HDF5File.open(at: url, writable: false)
        defer { try? r.close() }
        expectHDF5Error(naming: url.path) { try r.writeSlab("v", index: 0, floats: [1]) }
        expectHDF5Error(naming: url.path) { try r.setAttribute("a", .int(1)) }
        expectHDF5Error(naming: url.path) { try r.createGroup("g") }
        #expect(try r.readFloats("v").values.allSatisfy { $0.isNaN })
    }

    @Test("Disk full (ENOSPC, via /dev/full) surfaces as writeFailed with diskFull set",
          .enabled(if: FileManager.default.fileExists(atPath: "/dev/full"), "needs /dev/full (Linux)"))
    func diskFull() throws {
        // /dev/full accepts open(O_TRUNC) and fails every write with ENOSPC: the create's initial
        // flush must report it as a disk-full write failure that names the file.
        let url = URL(fileURLWithPath: "/dev/full")
        let e = expectHDF5Error(naming: "/dev/full") { _ = try HDF5File.create(at: url, overwrite: true) }
        guard case let .writeFailed(_, _, _, reason, diskFull) = e else {
            Issue.record("got \(String(describing: e))")
            return
        }
        #expect(diskFull, "reason: \(reason)")
        #expect(e?.description.contains("disk full") == true)
        #expect(FileManager.default.fileExists(atPath: "/dev/full"), "a device is truncated, never removed")
    }
}

// Durability: a run killed after a flush leaves a file that opens and holds every flushed slab;
// a file still open by the writer can be read by another process (h5py) meanwhile.
//
// A SIGKILL loses the process's memory but not what it already handed to the kernel, so the
// file's bytes at the moment of the kill are exactly what another process sees when it copies
// the file while the writer is still running. We take such snapshots instead of killing a
// child (the test target has no executable to spawn, and fork() in a threaded test runner is
// unsafe).
import Foundation
import Testing
@testable import HDF5Store

@Suite("Durability")
struct DurabilityTests {
    /// A writer with one flushed checkpoint (slab 0) on disk.
    private func startRun(at url: URL) throws -> HDF5File {
        let f = try HDF5File.create(at: url, overwrite: false)
        try f.createDimension("checkpoint", strings: ["c0", "c1", "c2"])
        try f.createDimension("probe", strings: ["a", "b"])
        try f.createVariable("v", type: .float32, dims: ["checkpoint", "probe"])
        try f.createVariable("s", type: .string, dims: ["checkpoint", "probe"])
        try f.setAttribute("status", .string("running"))
        try f.writeSlab("v", index: 0, floats: [1, 2])
        try f.writeSlab("s", index: 0, strings: ["x0", "y0"])
        try f.flush()
        return f
    }

    @Test("Killed mid-checkpoint: the file opens with the flushed slab, loses only the unflushed one, and resumes")
    func crashSnapshot() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.h5")
        let f = try startRun(at: url)
        let afterFlush = dir.appendingPathComponent("after-flush.h5")
        try FileManager.default.copyItem(at: url, to: afterFlush)

        // Checkpoint 1 in progress: slabs and new metadata, not flushed.
        try f.writeSlab("v", index: 1, floats: [3, 4])
        try f.writeSlab("s", index: 1, strings: ["x1", "y1"])
        try f.createVariable("late", type: .int32, dims: ["probe"])
        try f.setAttribute("status", .string("checkpoint 1"))
        // ~7 MB of new metadata (object headers, group heaps), beyond what HDF5's default
        // metadata cache holds: with the default cache config (evictions on) part of it reaches
        // the file before any flush and the snapshot shows slab 1, `late` and a changed `status`
        // (checked by building the shim without its H5Pset_mdc_config call: 7 expectations fail).
        let sizeAtFlush = try FileManager.default.attributesOfItem(atPath: afterFlush.path)[.size] as? Int
        for i in 0..<30000 { try f.createGroup("bulk/g\(i)") }
        let sizeMid = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int
        #expect(sizeMid == sizeAtFlush, "no metadata may reach the file between flushes")
        let midCheckpoint = dir.appendingPathComponent("mid-checkpoint.h5")
        try FileManager.default.copyItem(at: url, to: midCheckpoint)

        for snapshot in [afterFlush, midCheckpoint] {
            let r = try HDF5File.open(at: snapshot, writable: false)
            let v = try r.readFloats("v")
            #expect(v.shape == [3, 2])
            #expect(Array(v.values.prefix(2)) == [1, 2], "\(snapshot.lastPathComponent): flushed slab kept")
            #expect(v.values.dropFirst(2).allSatisfy { $0.isNaN }, "\(snapshot.lastPathComponent): unflushed slab absent")
            #expect(try r.readStrings("s").values == ["x0", "y0", "", "", "", ""])
            #expect(try r.isSlabWritten("v", index: 0))
            #expect(try !r.isSlabWritten("v", index: 1))
            #expect(!r.exists("late") && !r.exists("bulk"))
            #expect(try r.attribute("status") == .string("running"))
            try r.close()
        }

        // --resume on the crashed file: reopen read-write, redo checkpoint 1, finish.
        let resumed = try HDF5File.open(at: midCheckpoint, writable: true)
        let next = try (0..<3).first { try !resumed.isSlabWritten("v", index: $0) }
        #expect(next == 1)
        try resumed.writeSlab("v", index: 1, floats: [3, 4])
        try resumed.writeSlab("v", index: 2, floats: [5, 6])
        try resumed.flush()
        try resumed.close()
        let done = try HDF5File.open(at: midCheckpoint, writable: false)
        #expect(try done.readFloats("v").values == [1, 2, 3, 4, 5, 6])
        try done.close()

        try f.close()
        let closed = try HDF5File.open(at: url, writable: false)
        #expect(closed.exists("late"))
        #expect(try closed.attribute("status") == .string("checkpoint 1"))
        try closed.close()
    }

    @Test("A file held open by the writer is readable by h5py (no file lock) and shows each flushed slab",
          .enabled(if: Python.hasH5py, "needs python3 with h5py"))
    func liveReader() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("live.h5")
        let f = try startRun(at: url)
        // No locking=False and HDF5_USE_FILE_LOCKING unset: the writer must not hold a lock.
        let script = """
        import h5py, json, math, sys
        with h5py.File(sys.argv[1], "r") as f:
            v = f["v"][...]
            print(json.dumps({"shape": list(v.shape),
                              "v": [None if math.isnan(x) else float(x) for x in v.ravel()],
                              "s": list(f["s"].asstr()[...].ravel()),
                              "probe": list(f["probe"].asstr()[...])}))
        """
        func read() throws -> [String: Any] {
            let r = try Python.run(["-c", script, url.path], environment: ["HDF5_USE_FILE_LOCKING": nil])
            #expect(r.status == 0, "h5py failed on the open file: \(r.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
            return try #require(object as? [String: Any])
        }
        let first = try read()
        #expect(first["shape"] as? [Int] == [3, 2])
        #expect(first["probe"] as? [String] == ["a", "b"])
        #expect(first["s"] as? [String] == ["x0", "y0", "", "", "", ""])
        let v1 = try #require(first["v"] as? [Any])
        #expect(v1.count == 6 && (v1[0] as? Double) == 1 && (v1[1] as? Double) == 2 && v1[2...].allSatisfy { $0 is NSNull })

        try f.writeSlab("v", index: 1, floats: [3, 4])
        try f.flush()
        let second = try read()
        let v2 = try #require(second["v"] as? [Any])
        #expect(v2.count == 6 && (v2[2] as? Double) == 3 && (v2[3] as? Double) == 4 && v2[4...].allSatisfy { $0 is NSNull })
        withExtendedLifetime(f) {}
        try f.close()
    }
}

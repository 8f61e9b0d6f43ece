// Crash safety of `cpiscope probe`: a run killed with SIGKILL, or stopped by a full disk, keeps every
// checkpoint it marked complete, bit for bit as an uninterrupted run wrote it, and `--resume` finishes
// the file with the same result as an uninterrupted run. The reference is an uninterrupted run of the
// same job; the comparison (Tests/Fixtures/reliability/h5_digest.py, through h5py) hashes the raw
// bytes of every variable, per checkpoint slice: tolerance 0.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What h5py sees in an interrupted run, compared with an uninterrupted one.
func checkInterrupted(_ file: URL, against reference: RunDigest, checkpoints: Int) throws -> [Int] {
    let d = try RunDigest(file)   // throws if h5py cannot open the file
    let done = d.complete.indices.filter { d.complete[$0] == 1 }
    #expect(d.complete.count == checkpoints)
    #expect(!done.isEmpty, "no checkpoint was complete when the run stopped")
    #expect(done.count < checkpoints, "every checkpoint was complete: the run was not interrupted mid-way")
    #expect(done == Array(0..<done.count), "complete checkpoints are not a prefix: \(d.complete)")
    #expect(d.runComplete == 0, "the file claims the whole run is complete")
    let diff = d.differences(from: reference, slices: done)
    #expect(diff.isEmpty, "complete checkpoints differ from the uninterrupted run in: \(diff)")
    return done
}

/// After --resume: every variable equals the uninterrupted run's, bit for bit; attributes too, except
/// the ones that record when and how the file was first created.
func checkResumed(_ file: URL, against reference: RunDigest) throws {
    let d = try RunDigest(file)
    #expect(d.complete == Array(repeating: 1, count: reference.complete.count))
    #expect(d.runComplete == 1)
    let diff = d.differences(from: reference)
    #expect(diff.isEmpty, "after --resume these variables differ from the uninterrupted run: \(diff)")
    var a = d.attributes, b = reference.attributes
    for k in ["created", "command_line"] { a[k] = nil; b[k] = nil }
    #expect(a == b, "attributes differ: \(Set(a.keys).symmetricDifference(b.keys)) or values")
}

/// Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN); tried once on a throwaway folder.
let canMountTmpfs: Bool = {
    guard geteuid() == 0, let dir = try? makeTempDir("mount-probe") else { return false }
    defer { try? FileManager.default.removeItem(at: dir) }
    guard let r = try? Exec.run(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir.path], timeout: 30),
          r.exitedNormally, r.status == 0 else { return false }
    _ = try? Exec.run(URL(fileURLWithPath: "/bin/umount"), [dir.path], timeout: 30)
    return true
}()

@Suite("Crash safety (cpiscope probe, SIGKILL and full disk)", .serialized,
       .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)),
       .enabled(if: Available.h5py, Comment(rawValue: Available.missingH5py)))
struct CrashSafetyTests {
    @Test("SIGKILL after the first checkpoint: h5py opens the file, complete checkpoints equal an uninterrupted run's, --resume finishes it bitwise")
    func killAndResume() throws {
        let dir = try makeTempDir("kill")
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpoints = 8
        let (root, probes) = try makeTrajectory(in: dir, count: checkpoints, repeats: 4)
        let reference = dir.appendingPathComponent("reference.h5"), run = dir.appendingPathComponent("run.h5")
        let job = [root.path, "--probes", probes.path]

        let r = try Exec.cpiscope(["probe"] + job + ["-o", reference.path, "--quiet"])
        try #require(r.exitedNormally && r.status == 0, "reference run failed: \(r.summary)")
        let ref = try RunDigest(reference)
        #expect(ref.complete == Array(repeating: 1, count: checkpoints))

        // stderr is a pipe, so the progress line prints "checkpoint 1/8 checkpoint-5 done" per checkpoint.
        let p = try RunningProcess(Paths.cpiscope, ["probe"] + job + ["-o", run.path], environment: nil, timeout: 600)
        let sawDone = p.waitForStderr(containing: " done", timeout: 300)
        kill(p.pid, SIGKILL)
        let killed = p.wait()
        try #require(sawDone, "the run never reported a finished checkpoint: \(killed.summary)")
        try #require(!killed.exitedNormally && killed.status == SIGKILL,
                     "the run was not killed by SIGKILL (it ended first?): \(killed.summary)")
        let done = try checkInterrupted(run, against: ref, checkpoints: checkpoints)

        let resumed = try Exec.cpiscope(["probe"] + job + ["-o", run.path, "--resume", "--quiet"])
        try #require(resumed.exitedNormally && resumed.status == 0, "--resume failed: \(resumed.summary)")
        let skipped = resumed.stdout.components(separatedBy: "(already complete; skipped)").count - 1
        #expect(skipped == done.count, "--resume skipped \(skipped) checkpoints, \(done.count) were complete")
        try checkResumed(run, against: ref)
    }

    /// The disk-full scenario: a dumping run (about 1.2 MB per checkpoint) into a place that holds
    /// about half of the file; then room is made and --resume finishes the run.
    func diskFull(limit: (_ bytes: Int, _ dir: URL) throws -> (run: (_ args: [String]) throws -> ExecResult, grow: () throws -> Void, output: URL),
                  expectInError: String) throws {
        let dir = try makeTempDir("full")
        defer { try? FileManager.default.removeItem(at: dir) }
        let checkpoints = 4
        let (root, probes) = try makeTrajectory(in: dir, count: checkpoints, repeats: 1)
        let job = [root.path, "--probes", probes.path, "--dump", "0,1", "--quiet"]
        let reference = dir.appendingPathComponent("reference.h5")
        let r = try Exec.cpiscope(["probe"] + job + ["-o", reference.path])
        try #require(r.exitedNormally && r.status == 0, "reference run failed: \(r.summary)")
        let ref = try RunDigest(reference)
        let size = (try FileManager.default.attributesOfItem(atPath: reference.path)[.size] as? NSNumber)?.intValue ?? 0
        try #require(size > 1 << 20, "the reference file is \(size) bytes; too small to fill a disk in steps")

        let place = try limit(size / 2, dir)
        let failed = try place.run(["probe"] + job + ["-o", place.output.path])
        #expect(failed.exitedNormally && failed.status == 1, "expected exit status 1: \(failed.summary)")
        let errorLines = failed.stderr.split(separator: "\n").filter { $0.hasPrefix("error: ") }
        #expect(errorLines.count == 1, "expected one error line: \(failed.stderr)")
        #expect(failed.errorLine?.contains(expectInError) == true, "error line lacks '\(expectInError)': \(failed.stderr)")
        #expect(failed.hintLine?.contains("--resume") == true, "hint does not mention --resume: \(failed.stderr)")
        let stray = failed.stderr.split(separator: "\n").filter { !$0.hasPrefix("error: ") && !$0.hasPrefix("hint: ") }
        #expect(stray.isEmpty, "stderr holds more than the error and hint: \(stray)")
        _ = try checkInterrupted(place.output, against: ref, checkpoints: checkpoints)

        try place.grow()
        let resumed = try place.run(["probe"] + job + ["-o", place.output.path, "--resume"])
        try #require(resumed.exitedNormally && resumed.status == 0, "--resume after freeing space failed: \(resumed.summary)")
        try checkResumed(place.output, against: ref)
    }

    @Test("a full disk (a small tmpfs) gives one clear error, exit 1, keeps complete checkpoints; --resume finishes once there is room",
          .enabled(if: canMountTmpfs, "needs root to mount a tmpfs (the RLIMIT_FSIZE test covers write failures without it)"))
    func diskFullTmpfs() throws {
        var mounted: URL? = nil
        defer { if let m = mounted { _ = try? Exec.run(URL(fileURLWithPath: "/bin/umount"), [m.path], timeout: 60) } }
        try diskFull(limit: { bytes, dir in
            let mnt = dir.appendingPathComponent("small-disk")
            try FileManager.default.createDirectory(at: mnt, withIntermediateDirectories: true)
            let kb = max(64, bytes / 1024)
            let m = try Exec.run(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=\(kb)k", "tmpfs", mnt.path], timeout: 60)
            try #require(m.exitedNormally && m.status == 0, "mount failed: \(m.summary)")
            mounted = mnt
            return (run: { try Exec.cpiscope($0) },
                    grow: {
                        let g = try Exec.run(URL(fileURLWithPath: "/bin/mount"), ["-o", "remount,size=\(kb * 8)k", mnt.path], timeout: 60)
                        try #require(g.exitedNormally && g.status == 0, "remount failed: \(g.summary)")
                    },
                    output: mnt.appendingPathComponent("run.h5"))
        }, expectInError: "disk full")
    }

    @Test("a write failure (file-size limit, RLIMIT_FSIZE with SIGXFSZ ignored) gives one clear error, exit 1, keeps complete checkpoints; --resume finishes")
    func writeFailureFileSizeLimit() throws {
        try diskFull(limit: { bytes, dir in
            let lifted = Flag()
            let kb = max(64, bytes / 1024)
            return (run: { args in
                        if lifted.isSet { return try Exec.cpiscope(args) }
                        // bash's ulimit -f counts 1024-byte blocks; an ignored SIGXFSZ stays ignored across exec,
                        // so the write fails with EFBIG instead of killing the process.
                        return try Exec.bash("trap '' XFSZ; ulimit -f \(kb); exec \"$@\"", [Paths.cpiscope.path] + args)
                    },
                    grow: { lifted.set() },
                    output: dir.appendingPathComponent("run.h5"))
        }, expectInError: "write failed")
    }
}

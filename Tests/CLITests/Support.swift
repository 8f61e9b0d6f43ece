// Support for the CLI tests: they run the built `cpiscope` (and `cpiscope-fuzz`) executables as a
// user would, through Process, and depend on no module of the package. `make test` builds both first
// (`swift build --build-tests`); a test whose binary is missing is skipped with a message saying so.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

enum Paths {
    /// The package root (this file is Tests/CLITests/Support.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Tests/Fixtures")
    static let trajectory = fixtures.appendingPathComponent("probe-trajectory")
    static let gpt2 = fixtures.appendingPathComponent("probe-gpt2")
    static let cpiscope = root.appendingPathComponent(".build/debug/cpiscope")
    static let fuzzReplay = root.appendingPathComponent(".build/debug/cpiscope-fuzz")
    static let digestScript = fixtures.appendingPathComponent("reliability/h5_digest.py")
}

enum Available {
    static let cpiscope = FileManager.default.isExecutableFile(atPath: Paths.cpiscope.path)
    static let fuzzReplay = FileManager.default.isExecutableFile(atPath: Paths.fuzzReplay.path)
    /// python3 with h5py and numpy (the crash-safety and determinism tests read run files with it).
    static let h5py: Bool = {
        guard let r = try? Exec.run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", "import h5py, numpy"], timeout: 60)
        else { return false }
        return r.exitedNormally && r.status == 0
    }()
    static let missingCLI = "needs .build/debug/cpiscope: run `swift build` (make test does) before the CLI tests"
    static let missingFuzz = "needs .build/debug/cpiscope-fuzz: run `swift build` (make test does) before the CLI tests"
    static let missingH5py = "needs python3 with h5py and numpy (make test installs them: .ci/deps.sh --python)"
}

/// The outcome of one child process.
struct ExecResult: Sendable {
    var status: Int32
    /// False when the process was ended by a signal (`status` is then the signal number).
    var exitedNormally: Bool
    var stdout: String
    var stderr: String
    var timedOut: Bool
    /// The `error: …` and `hint: …` lines the CLI printed, if any.
    var errorLine: String? { stderr.split(separator: "\n").first { $0.hasPrefix("error: ") }.map(String.init) }
    var hintLine: String? { stderr.split(separator: "\n").first { $0.hasPrefix("hint: ") }.map(String.init) }
    var summary: String { "status \(status)\(exitedNormally ? "" : " (signal)")\(timedOut ? " (timed out)" : ""); stderr: \(stderr.prefix(2000))" }
}

/// Collects a pipe's bytes on a background thread (so a chatty child never blocks on a full pipe).
final class PipeCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)
    let pipe = Pipe()

    func start() {
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                lock.lock(); data.append(chunk); lock.unlock()
            }
            done.signal()
        }
    }

    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
    func finish() -> String { done.wait(); return text }
}

/// A flag set from another thread.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// A child process that is running; killed with SIGKILL when `timeout` passes.
final class RunningProcess: @unchecked Sendable {
    let process = Process()
    let out = PipeCollector()
    let err = PipeCollector()
    private let timedOut = Flag()
    private let deadline: DispatchWorkItem

    init(_ executable: URL, _ arguments: [String], environment: [String: String]?, timeout: TimeInterval) throws {
        process.executableURL = executable
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = out.pipe
        process.standardError = err.pipe
        process.standardInput = FileHandle.nullDevice
        let p = process, flag = timedOut
        deadline = DispatchWorkItem { if p.isRunning { flag.set(); kill(p.processIdentifier, SIGKILL) } }
        out.start(); err.start()
        try process.run()
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: deadline)
    }

    var pid: Int32 { process.processIdentifier }

    /// Waits until stderr contains `needle` (true), or the process ends or `timeout` passes first (false).
    func waitForStderr(containing needle: String, timeout: TimeInterval) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if err.text.contains(needle) { return true }
            if !process.isRunning { return err.text.contains(needle) }
            usleep(2_000)
        }
        return false
    }

    func wait() -> ExecResult {
        process.waitUntilExit()
        deadline.cancel()
        return ExecResult(status: process.terminationStatus, exitedNormally: process.terminationReason == .exit,
                          stdout: out.finish(), stderr: err.finish(), timedOut: timedOut.isSet)
    }
}

enum Exec {
    /// Runs `executable` to completion (killed after `timeout` seconds).
    static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil,
                    timeout: TimeInterval = 600) throws -> ExecResult {
        try RunningProcess(executable, arguments, environment: environment, timeout: timeout).wait()
    }

    /// Runs the built cpiscope.
    static func cpiscope(_ arguments: [String], environment: [String: String]? = nil, timeout: TimeInterval = 600) throws -> ExecResult {
        try run(Paths.cpiscope, arguments, environment: environment, timeout: timeout)
    }

    /// Runs a shell command line with bash (used to set resource limits on a child: ulimit, trap).
    static func bash(_ script: String, _ arguments: [String] = [], timeout: TimeInterval = 600) throws -> ExecResult {
        try run(URL(fileURLWithPath: "/bin/bash"), ["-c", script, "bash"] + arguments, timeout: timeout)
    }

    /// Runs Tests/Fixtures/reliability/h5_digest.py and decodes its JSON output.
    static func h5(_ arguments: [String]) throws -> [String: Any] {
        let r = try run(URL(fileURLWithPath: "/usr/bin/env"), ["python3", Paths.digestScript.path] + arguments, timeout: 300)
        guard r.exitedNormally, r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            throw TestFailure("h5_digest.py \(arguments.joined(separator: " ")) failed: \(r.summary)")
        }
        return obj
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A fresh temporary folder, removed by the caller.
func makeTempDir(_ tag: String = "cli") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("cpiscope-\(tag)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Builds a longer trajectory from the three fixture checkpoints (probe-trajectory): `count` folders
/// checkpoint-5, -10, …, each with symlinks to one fixture checkpoint's config.json and
/// model.safetensors (cycling 0, 10, 20) and a trainer_state.json with its step; the tokenizer files;
/// and probes.jsonl holding the six fixture probes `repeats` times under new ids.
func makeTrajectory(in dir: URL, count: Int, repeats: Int) throws -> (root: URL, probes: URL) {
    let fm = FileManager.default
    let root = dir.appendingPathComponent("trajectory")
    try fm.createDirectory(at: root, withIntermediateDirectories: true)
    let sources = ["checkpoint-0", "checkpoint-10", "checkpoint-20"].map { Paths.trajectory.appendingPathComponent($0) }
    for i in 0..<count {
        let step = (i + 1) * 5
        let ck = root.appendingPathComponent("checkpoint-\(step)")
        try fm.createDirectory(at: ck, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors"] {
            try fm.createSymbolicLink(at: ck.appendingPathComponent(f), withDestinationURL: sources[i % 3].appendingPathComponent(f))
        }
        try Data("{\"global_step\": \(step)}".utf8).write(to: ck.appendingPathComponent("trainer_state.json"))
    }
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        try fm.copyItem(at: Paths.trajectory.appendingPathComponent(f), to: root.appendingPathComponent(f))
    }
    let lines = try String(contentsOf: Paths.trajectory.appendingPathComponent("probes.jsonl"), encoding: .utf8)
        .split(separator: "\n").map(String.init)
    var out: [String] = []
    for r in 0..<repeats {
        for line in lines {
            guard var obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            obj["id"] = "\(obj["id"] ?? "p")-r\(r)"
            out.append(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        }
    }
    let probes = dir.appendingPathComponent("probes.jsonl")
    try Data((out.joined(separator: "\n") + "\n").utf8).write(to: probes)
    return (root, probes)
}

/// Per-variable digests of a run file (see h5_digest.py).
struct RunDigest {
    let complete: [Int]
    let runComplete: Int
    let attributes: [String: String]
    /// name -> per-checkpoint slice hashes (checkpoint variables) or [whole-variable hash].
    let variables: [String: [String]]
    let checkpointVariables: Set<String>

    init(_ file: URL) throws {
        let j = try Exec.h5(["digest", file.path])
        complete = (j["complete"] as? [Int]) ?? []
        runComplete = (j["run_complete"] as? Int) ?? -1
        attributes = (j["attrs"] as? [String: String]) ?? [:]
        var v: [String: [String]] = [:]
        var c: Set<String> = []
        for (name, any) in (j["vars"] as? [String: [String: Any]]) ?? [:] {
            if let s = any["slices"] as? [String] { v[name] = s; c.insert(name) }
            else if let w = any["whole"] as? String { v[name] = [w] }
        }
        variables = v
        checkpointVariables = c
    }

    /// Names of variables that differ from `other`, looking only at checkpoint slices in `slices`
    /// (all when nil) for per-checkpoint variables.
    func differences(from other: RunDigest, slices: [Int]? = nil) -> [String] {
        var out: [String] = []
        for name in Set(variables.keys).union(other.variables.keys).sorted() {
            guard let a = variables[name], let b = other.variables[name] else { out.append(name + " (missing)"); continue }
            if checkpointVariables.contains(name), let slices {
                for i in slices where i >= a.count || i >= b.count || a[i] != b[i] { out.append("\(name)[\(i)]") }
            } else if a != b {
                out.append(name)
            }
        }
        return out
    }
}

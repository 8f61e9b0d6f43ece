// The job layer under every command that runs a trajectory into one HDF5 file (probe, intervene,
// criticality, and the next ones): what they share is defined here once, and each job supplies only what
// it measures and the file it writes.
//
//   TrajectoryJobSettings   the settings every job takes (checkpoints, output, tokenizer, base, precision,
//                           threads, shard, force/resume, provenance)
//   TrajectoryJob.checkOutput         the output path, before anything is computed
//   TrajectoryJob.prepare             the checkpoints (one architecture, valid weight headers), the one
//                                     tokenizer (lookup and hash), the precision: before the output exists
//   JobPart.of (JobShard.swift)       the shard switch: this process's checkpoints and units
//   TrajectoryJob.commonAttributes    the root attributes every run file has, named by schema constants
//   TrajectoryJob.forEachCheckpoint   load → measure → write → flush per checkpoint, skipping the ones a
//                                     resumed file holds, with progress, hashing the weights in the
//                                     background, and abandoning the file (keeping what was flushed) on a
//                                     failed write
import Checkpoints
import Dispatch
import Foundation
import HDF5Store
import Models
import TensorCore
import Tokenization

/// The settings every trajectory job shares (the CLI's `TrajectoryJobOptions`).
public struct TrajectoryJobSettings: Sendable {
    public var checkpoints: [CheckpointRef]
    /// The trajectory folder (tokenizer fallback, named sources), when there is one.
    public var trajectoryRoot: URL?
    /// `--tokenizer`: a tokenizer.json or a folder holding one; nil: found beside the checkpoints.
    public var tokenizer: URL? = nil
    /// `--base`: the base model of LoRA adapter checkpoints (nil: each adapter's base_model_name_or_path).
    public var base: URL? = nil
    public var output: URL
    public var force = false
    public var resume = false
    /// The precision of the weight products (`--precision`); nil: the first checkpoint's default
    /// (`CheckpointLoader.defaultPrecision(for:)`: bf16 for BF16 weights, else fp32).
    public var precision: Precision? = nil
    /// `--threads` (nil: every core). Results do not depend on it (products are tiled by shape).
    public var threads: Int? = nil
    /// The part of the job this process runs (`--shard`); nil: all of it. `output` is the shard's own file.
    public var shard: JobShard? = nil
    public var commandLine = ""
    public var toolVersion = ""

    public init(checkpoints: [CheckpointRef], trajectoryRoot: URL?, output: URL) {
        self.checkpoints = checkpoints
        self.trajectoryRoot = trajectoryRoot
        self.output = output
    }
}

/// What `prepare` found and checked: every checkpoint's config (one architecture), the weight formats,
/// the one tokenizer, and the compute context of the job.
public struct PreparedTrajectory {
    public let loader: CheckpointLoader
    /// The first checkpoint's config (every checkpoint has its shape).
    public let config: ModelConfig
    /// The tokenizer as found: the `--tokenizer` path, or the folder holding tokenizer.json.
    public let tokenizerLocation: URL
    /// The tokenizer.json file itself, and its SHA-256 (the same for every checkpoint).
    public let tokenizerFile: URL
    public let tokenizerHash: String
    public let tokenizer: Tokenizer
    /// Each checkpoint's weight file format(s), e.g. "safetensors", "pytorch_model.bin".
    public let weightFormats: [String]
    /// Each checkpoint's tensor bytes as stored (an adapter's: its base's and its own), what its weights
    /// occupy in memory while it is measured (16-bit weights are used in place).
    public let weightBytes: [Int]
    /// Threads and the resolved precision.
    public let compute: ComputeContext
}

/// What every job's progress reporter hears from the checkpoint loop.
public protocol TrajectoryJobProgress: AnyObject {
    func checkpointStarted(_ index: Int, of total: Int, name: String)
}

/// A run file written one checkpoint at a time (RunWriter, InterventionFile, CriticalityWriter).
public protocol CheckpointFile: AnyObject {
    /// Which of this process's checkpoints the file holds complete (all false in a new file).
    func completed() throws -> [Bool]
    /// Marks the run complete and flushes.
    func finish() throws
    /// Closes without a flush (after a failed write: what was flushed before stays valid).
    func abandon()
    func close()
}

public enum TrajectoryJob {
    /// Fails before any work when the output cannot be written: its folder must exist and be writable, and an
    /// existing file needs --force or --resume.
    public static func checkOutput(_ s: TrajectoryJobSettings) throws {
        try checkFolder(of: s.output)
        if FileManager.default.fileExists(atPath: s.output.path), !s.force, !s.resume {
            throw TrajectoryJobError.outputExists(path: s.output.path)
        }
    }

    /// The folder a file will be written into exists and is writable.
    public static func checkFolder(of url: URL) throws {
        let fm = FileManager.default
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw TrajectoryJobError.outputDirectoryMissing(path: dir.path)
        }
        guard fm.isWritableFile(atPath: dir.path) else { throw TrajectoryJobError.outputNotWritable(path: dir.path) }
    }

    /// Checks the checkpoints (one architecture; every weight file's header mapped and validated, nothing
    /// decoded, so a corrupt or truncated checkpoint stops the job before the output exists, not after hours
    /// on the earlier ones) and finds the one tokenizer.
    public static func prepare(_ s: TrajectoryJobSettings) throws -> PreparedTrajectory {
        precondition(!s.checkpoints.isEmpty, "a trajectory job has at least one checkpoint")
        let loader = CheckpointLoader(base: s.base, hashContents: false)
        let configs = try s.checkpoints.map { ref in
            try ModelConfig.load(from: Trajectory.isAdapter(ref.path) ? loader.baseFolder(for: ref.path) : ref.path)
        }
        let first = configs[0]
        for (ref, c) in zip(s.checkpoints, configs).dropFirst()
        where c.modelType != first.modelType || c.layers != first.layers || c.heads != first.heads
            || c.dModel != first.dModel || c.vocab != first.vocab {
            throw TrajectoryJobError.mixedArchitectures(checkpoint: ref.path.path, found: describe(c), expected: describe(first))
        }
        var weightFormats: [String] = [], weightBytes: [Int] = []
        for ref in s.checkpoints {
            if Trajectory.isAdapter(ref.path) {
                weightFormats.append("safetensors (PEFT adapter)")
                weightBytes.append(try WeightStore(directory: loader.baseFolder(for: ref.path)).totalBytes
                                   + ((try? WeightStore(directory: ref.path, weightsFile: "adapter_model.safetensors").totalBytes) ?? 0))
            } else {
                let store = try WeightStore(directory: ref.path)
                weightFormats.append(store.formats.map(\.rawValue).joined(separator: "+"))
                weightBytes.append(store.totalBytes)
            }
        }
        var found: (location: URL, file: URL, hash: String)? = nil
        for ref in s.checkpoints {
            let adapterBase = Trajectory.isAdapter(ref.path) ? try? loader.baseFolder(for: ref.path) : nil
            guard let location = tokenizerURL(for: ref, explicit: s.tokenizer, trajectoryRoot: s.trajectoryRoot,
                                              bases: [adapterBase, s.base].compactMap { $0 }) else {
                throw TrajectoryJobError.noTokenizer(checkpoint: ref.path.path)
            }
            let file = tokenizerFile(location)
            let hash = (try? ContentHash.sha256(file: file)) ?? ""
            if let f = found {
                if hash != f.hash { throw TrajectoryJobError.tokenizerMismatch(checkpoint: ref.path.path, first: s.checkpoints[0].name) }
            } else {
                found = (location, file, hash)
            }
        }
        let tokenizer = try Tokenizer.load(from: found!.location)
        let precision = try s.precision ?? loader.defaultPrecision(for: s.checkpoints[0].path)
        let threads = s.threads ?? ComputeContext.allCores.threads
        return PreparedTrajectory(loader: loader, config: first, tokenizerLocation: found!.location, tokenizerFile: found!.file,
                                  tokenizerHash: found!.hash, tokenizer: tokenizer, weightFormats: weightFormats, weightBytes: weightBytes,
                                  compute: ComputeContext(threads: threads, precision: precision))
    }

    /// The one tokenizer lookup of every job: `explicit` (--tokenizer), else the first of the checkpoint
    /// folder, the trajectory root and `bases` (an adapter's base model, --base) that holds a tokenizer.json.
    public static func tokenizerURL(for ref: CheckpointRef, explicit: URL?, trajectoryRoot: URL?, bases: [URL]) -> URL? {
        if let t = explicit { return t }
        let candidates = [ref.path] + [trajectoryRoot].compactMap { $0 } + bases
        return candidates.first { FileManager.default.fileExists(atPath: $0.appendingPathComponent("tokenizer.json").path) }
    }

    /// The tokenizer.json a lookup result names (a folder's, or the file itself).
    static func tokenizerFile(_ location: URL) -> URL {
        location.hasDirectoryPath || !location.lastPathComponent.hasSuffix(".json") ? location.appendingPathComponent("tokenizer.json") : location
    }

    /// "llama (2 layers, 4 heads, d_model 64, vocab 512)".
    public static func describe(_ c: ModelConfig) -> String {
        "\(c.modelType) (\(c.layers) layers, \(c.heads) heads, d_model \(c.dModel), vocab \(c.vocab))"
    }

    /// The root attributes every run file has: what made it, from which model, checkpoints and tokenizer, in
    /// which precision (names: `RunSchema.Attribute`; docs/hdf5-schema.md).
    public static func commonAttributes(_ s: TrajectoryJobSettings, _ p: PreparedTrajectory) -> [String: AttributeValue] {
        typealias A = RunSchema.Attribute
        return [
            A.tool: .string("cpiscope"), A.toolVersion: .string(s.toolVersion), A.commandLine: .string(s.commandLine),
            A.created: .string(ISO8601DateFormatter().string(from: Date())),
            A.modelType: .string(p.config.modelType), A.modelConfig: .string(p.config.rawJSON),
            A.checkpointPaths: .strings(s.checkpoints.map(\.path.path)),
            A.tokenizerPath: .string(p.tokenizerLocation.path), A.tokenizerSHA256: .string(p.tokenizerHash),
            A.precision: .string(p.compute.precision.rawValue),
        ]
    }

    /// Runs `refs` (this process's checkpoints, in file order) into `file`: for each, unless the file already
    /// holds it complete (`skipped`), load → `measure` → `write` (given the weights' SHA-256 manifest, computed
    /// on a background thread while `measure` runs) → `finished`; then `file.finish()`. A failed write or finish
    /// abandons the file without a flush, so every checkpoint flushed before stays valid for --resume, and
    /// throws `TrajectoryJobError.writeFailed`. The caller closes the file. `compute` is the job's (threads,
    /// precision): with CPISCOPE_TIMING=1 the roofline is measured with it (`PhaseTimes`).
    public static func forEachCheckpoint<Measured>(
        _ refs: [CheckpointRef], file: any CheckpointFile, output: URL, loader: CheckpointLoader, compute: ComputeContext,
        progress: (any TrajectoryJobProgress)?,
        skipped: (Int, CheckpointRef) -> Void = { _, _ in },
        measure: (Int, CheckpointRef, LoadedCheckpoint) throws -> Measured,
        write: (Int, Measured, LoadedCheckpoint, _ weightsHash: () throws -> String) throws -> Void,
        finished: (Int, CheckpointRef, Measured) -> Void = { _, _, _ in }
    ) throws {
        let done = try file.completed()
        func failed(_ error: Error) -> Error {
            file.abandon()
            if let e = error as? TrajectoryJobError { return e }
            return TrajectoryJobError.writeFailed(path: output.path, detail: "\(error)")
        }
        // Weights read ahead of use (WeightPrefetch): this checkpoint's (the rest of what was started while the
        // previous one was measured, or all of them), and the next one's, limited to what the page cache holds
        // beside this one and started once this one's are read.
        var current: WeightPrefetch? = nil, next: WeightPrefetch? = nil
        defer { current?.cancel(); next?.cancel() }
        for (ci, ref) in refs.enumerated() {
            progress?.checkpointStarted(ci, of: refs.count, name: ref.name)
            if done[ci] { skipped(ci, ref); continue }
            current?.cancel()
            if let n = next {
                n.raiseLimit(to: .max)   // `next` was started for this checkpoint: the first unfinished after the last
                current = n
            } else {
                current = prefetchCurrent(ref)
            }
            let loaded = try loader.load(ref.path)
            // CPISCOPE_TIMING=1: the roofline (product ceiling at the model's shape, streaming bandwidth of its
            // weights) is measured once, on the first checkpoint measured, before the weight hash and the next
            // checkpoint's prefetch start (they would share the cores), so that each phase gets its bound.
            if PhaseTimes.enabled { PhaseTimes.measureRoofline(for: loaded, compute: compute) }
            next = refs.indices.dropFirst(ci + 1).first(where: { !done[$0] }).flatMap {
                prefetchNext(refs[$0], current: loaded.contentFiles, after: current)
            }
            let hashing = BackgroundHash(files: loaded.contentFiles)
            let measured = try measure(ci, ref, loaded)
            do { try write(ci, measured, loaded, hashing.wait) } catch { throw failed(error) }
            finished(ci, ref, measured)
        }
        do { try file.finish() } catch { throw failed(error) }
    }
}

extension TrajectoryJob {
    /// Starts reading `next`'s weight files into the page cache, up to what this machine's memory holds beside
    /// the current checkpoint's weights and a quarter of the RAM for the job's own work (KV caches, scratch):
    /// more would evict the pages being used. Nil for an adapter checkpoint (its base is the current one's)
    /// or when nothing fits; a failure to open the next checkpoint is left for its own load to report.
    static func prefetchNext(_ next: CheckpointRef, current: [URL], after: WeightPrefetch?) -> WeightPrefetch? {
        guard !Trajectory.isAdapter(next.path) else { return nil }
        let physical = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        let currentBytes = current.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
        let limit = physical - currentBytes - physical / 4
        guard limit > 0 else { return nil }
        return try? WeightPrefetch.start(checkpoint: next.path, limitBytes: limit, after: after)
    }

    /// Starts reading `ref`'s own weights into the page cache, all of them, in the order a pass uses them
    /// (chunks already cached are skipped): the first checkpoint of a job, or one whose prefetch was not
    /// started. Nil for an adapter checkpoint (its base's weights are mapped once per loader).
    static func prefetchCurrent(_ ref: CheckpointRef) -> WeightPrefetch? {
        guard !Trajectory.isAdapter(ref.path) else { return nil }
        return try? WeightPrefetch.start(checkpoint: ref.path)
    }
}

/// A SHA-256 manifest (`ContentHash.manifest`) computed on a background thread.
public final class BackgroundHash: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<String, Error> = .success("")

    public init(files: [URL]) {
        DispatchQueue.global(qos: .utility).async {
            self.result = Result { try ContentHash.manifest(files).content }
            self.done.signal()
        }
    }

    /// Blocks until the hash is known; may be called any number of times.
    public func wait() throws -> String {
        done.wait()
        done.signal()
        return try result.get()
    }
}

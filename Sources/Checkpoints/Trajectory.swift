// Trajectory discovery: which checkpoints a path holds, in training order, and the `--checkpoints`
// selection syntax.
//
// Layouts recognised (Hugging Face Trainer, transformers `trainer.py` `_save_checkpoint`, which
// writes `<output_dir>/checkpoint-<global_step>/` with `trainer_state.json` inside):
//
//   run/                      a trajectory
//     checkpoint-500/         model.safetensors | model.safetensors.index.json + shards
//       trainer_state.json    {"global_step": 500, ...}
//     checkpoint-1000/ ...
//
//   model/                    a single checkpoint
//     model.safetensors (or model.safetensors.index.json, or adapter_model.safetensors)

import Foundation
import StrictJSON

/// One checkpoint of a trajectory.
public struct CheckpointRef: Sendable, Codable, Equatable, Hashable {
    /// Folder name, e.g. "checkpoint-500".
    public var name: String
    /// Training step: trainer_state.json `global_step`, else N of "checkpoint-N", else nil.
    public var step: Int?
    /// The checkpoint folder.
    public var path: URL

    public init(name: String, step: Int?, path: URL) {
        self.name = name
        self.step = step
        self.path = path
    }
}

public enum Trajectory {
    /// Files whose presence makes a folder a checkpoint.
    public static let weightFiles = ["model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors",
                                     "pytorch_model.bin", "pytorch_model.bin.index.json"]
    /// trainer_state.json files larger than this are refused (log_history of long runs stays far below).
    static let maxTrainerStateSize = 256 << 20

    /// The checkpoints at `url`, in training order.
    ///
    /// - A folder holding weights (`model.safetensors`, `model.safetensors.index.json` or
    ///   `adapter_model.safetensors`) is one checkpoint; its step is trainer_state.json's
    ///   `global_step` if that file exists, else N when the folder is named "checkpoint-N", else nil.
    /// - A folder of `checkpoint-N` subfolders (Hugging Face Trainer layout) gives all of them,
    ///   ordered by step (trainer_state.json `global_step`, else N), ties by N; so checkpoint-10
    ///   comes after checkpoint-9. Other subfolders (e.g. `runs/`) are ignored. Every checkpoint-N
    ///   folder must hold weights (`noWeights` otherwise: a half-written save is not skipped silently).
    /// - Anything else throws `notCheckpointFolder` with what was found.
    ///
    /// A folder that holds weights is one checkpoint even if it also has checkpoint-N subfolders
    /// (point at a subfolder, or move the final weights, to get the other reading).
    public static func discover(at url: URL) throws(CheckpointError) -> [CheckpointRef] {
        let fm = FileManager.default
        let url = url.standardizedFileURL
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw .notCheckpointFolder(path: url.path, reason: "no such file or folder")
        }
        guard isDir.boolValue else {
            throw .notCheckpointFolder(path: url.path, reason: "this is a file; pass the folder that holds it")
        }
        // A Trainer output folder may hold final weights at its top level *and* checkpoint-N
        // subfolders; the subfolders (the trajectory) win. A folder with weights and no
        // checkpoint-N subfolders is one checkpoint.
        let entries: [String]
        do { entries = try fm.contentsOfDirectory(atPath: url.path).sorted() } catch {
            throw .unreadable(file: url.path, reason: "cannot list folder: \(error.localizedDescription)")
        }
        var found: [(ref: CheckpointRef, n: Int)] = []
        for e in entries {
            guard let n = checkpointNumber(e) else { continue }
            let sub = url.appendingPathComponent(e)
            var subIsDir: ObjCBool = false
            guard fm.fileExists(atPath: sub.path, isDirectory: &subIsDir), subIsDir.boolValue else { continue }
            guard holdsWeights(sub) else {
                let inside = ((try? fm.contentsOfDirectory(atPath: sub.path)) ?? []).sorted()
                throw .noWeights(directory: sub.path, expected: weightFiles.joined(separator: " or "), found: inside)
            }
            found.append((try ref(for: sub, n: n), n))
        }
        guard !found.isEmpty else {
            if holdsWeights(url) { return [try ref(for: url, n: checkpointNumber(url.lastPathComponent))] }
            throw .notCheckpointFolder(path: url.path, reason: describeUnrecognised(entries))
        }
        found.sort { a, b in
            let sa = a.ref.step ?? a.n, sb = b.ref.step ?? b.n
            return (sa, a.n, a.ref.name) < (sb, b.n, b.ref.name)
        }
        return found.map(\.ref)
    }

    /// Checkpoints chosen by a `--checkpoints` spec, in the order of `refs`, without repeats.
    ///
    /// Grammar: terms separated by commas; the result is the union of what each term selects.
    /// - `all` — every checkpoint.
    /// - `every:K` — every K-th checkpoint in training order, starting with the first
    ///   (positions 0, K, 2K, …); K ≥ 1.
    /// - `steps:A-B` — checkpoints whose step is in A...B (inclusive); either bound may be left
    ///   out: `steps:100-` (100 and later), `steps:-500` (up to 500). Checkpoints without a step
    ///   never match.
    /// - an integer — the checkpoint with that step (or, failing that, with that name).
    /// - anything else — the checkpoint with that exact name, e.g. `checkpoint-500`.
    ///
    /// Examples: `every:2`, `steps:1000-3000`, `checkpoint-500,checkpoint-1000`, `0,500,every:4`.
    /// Unknown names or steps throw `unknownCheckpoint` (listing the available names); a malformed
    /// term throws `invalidSelection`; a selection that matches nothing throws `emptySelection`.
    public static func select(_ refs: [CheckpointRef], spec: String) throws(CheckpointError) -> [CheckpointRef] {
        let trimmed = spec.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw .invalidSelection(spec: spec, reason: "empty selection") }
        let available = refs.map { r in r.step.map { "\(r.name) (step \($0))" } ?? r.name }
        var chosen = Set<Int>()   // positions in refs
        for rawTerm in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let term = rawTerm.trimmingCharacters(in: .whitespaces)
            guard !term.isEmpty else { throw .invalidSelection(spec: spec, reason: "empty term between commas") }
            if term == "all" {
                chosen.formUnion(refs.indices)
            } else if term.hasPrefix("every:") {
                let k = term.dropFirst("every:".count)
                guard let step = Int(k), step >= 1 else {
                    throw .invalidSelection(spec: spec, reason: "'\(term)': K must be a positive integer")
                }
                chosen.formUnion(stride(from: 0, to: refs.count, by: step))
            } else if term.hasPrefix("steps:") {
                let range = term.dropFirst("steps:".count)
                let parts = range.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2, !(parts[0].isEmpty && parts[1].isEmpty) else {
                    throw .invalidSelection(spec: spec, reason: "'\(term)': expected steps:A-B, steps:A- or steps:-B")
                }
                func bound(_ s: Substring) throws(CheckpointError) -> Int? {
                    if s.isEmpty { return nil }
                    guard let v = Int(s), v >= 0 else {
                        throw .invalidSelection(spec: spec, reason: "'\(term)': '\(s)' is not a non-negative integer")
                    }
                    return v
                }
                let lo = try bound(parts[0]) ?? Int.min
                let hi = try bound(parts[1]) ?? Int.max
                guard lo <= hi else {
                    throw .invalidSelection(spec: spec, reason: "'\(term)': the range is empty (\(lo) > \(hi))")
                }
                for (i, r) in refs.enumerated() { if let s = r.step, s >= lo, s <= hi { chosen.insert(i) } }
            } else if term.contains(":") {
                throw .invalidSelection(spec: spec, reason: "unknown selector '\(term)'")
            } else if let step = Int(term), let i = refs.firstIndex(where: { $0.step == step }) {
                chosen.insert(i)
            } else if let i = refs.firstIndex(where: { $0.name == term }) {
                chosen.insert(i)
            } else {
                throw .unknownCheckpoint(spec: spec, term: term, available: available)
            }
        }
        guard !chosen.isEmpty else { throw .emptySelection(spec: spec, available: available) }
        return chosen.sorted().map { refs[$0] }
    }

    /// True when the folder is a PEFT adapter checkpoint (adapter_config.json + adapter_model.safetensors).
    public static func isAdapter(_ url: URL) -> Bool {
        let fm = FileManager.default
        return isRegularFile(url.appendingPathComponent("adapter_config.json"), fm)
            && isRegularFile(url.appendingPathComponent("adapter_model.safetensors"), fm)
    }

    /// The `global_step` of `<folder>/trainer_state.json`: nil when the file is absent or has no
    /// `global_step`; an error when it exists but is malformed.
    public static func trainerStateStep(in folder: URL) throws(CheckpointError) -> Int? {
        let file = folder.appendingPathComponent("trainer_state.json")
        guard FileManager.default.fileExists(atPath: file.path) else { return nil }
        let json: JSONValue
        do throws(JSONFileError) { json = try JSONFile.parse(path: file.path, limit: maxTrainerStateSize) } catch {
            throw .badTrainerState(file: file.path, reason: "the file " + error.reason)
        }
        guard case .object = json else {
            throw .badTrainerState(file: file.path, reason: "top level is a \(json.kindName), expected an object")
        }
        guard let v = json["global_step"] else { return nil }
        guard case .number(let num) = v, let step = num.exactInt, step >= 0 else {
            throw .badTrainerState(file: file.path, reason: "\"global_step\" is \(v.kindName), expected a non-negative integer")
        }
        return step
    }

    // MARK: helpers

    /// N of a "checkpoint-N" name (ASCII digits only), else nil.
    static func checkpointNumber(_ name: String) -> Int? {
        guard name.hasPrefix("checkpoint-") else { return nil }
        let digits = name.dropFirst("checkpoint-".count)
        guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        return Int(digits)
    }

    static func holdsWeights(_ folder: URL) -> Bool {
        let fm = FileManager.default
        return weightFiles.contains { isRegularFile(folder.appendingPathComponent($0), fm) }
    }

    private static func isRegularFile(_ url: URL, _ fm: FileManager) -> Bool {
        var isDir: ObjCBool = false
        return fm.fileExists(atPath: url.path, isDirectory: &isDir) && !isDir.boolValue
    }

    private static func ref(for folder: URL, n: Int?) throws(CheckpointError) -> CheckpointRef {
        let step = try trainerStateStep(in: folder) ?? n
        return CheckpointRef(name: folder.lastPathComponent, step: step, path: folder)
    }

    /// Why a folder is not recognised, naming what it holds.
    private static func describeUnrecognised(_ entries: [String]) -> String {
        if entries.isEmpty { return "the folder is empty" }
        let pickles = entries.filter { $0.hasSuffix(".bin") || $0.hasSuffix(".pt") || $0.hasSuffix(".pth") }
        if !pickles.isEmpty {
            return "found only PyTorch weights named otherwise (\(CheckpointError.shortList(pickles))); name the file pytorch_model.bin (read without executing it, docs/torch-bin.md) or convert it to model.safetensors"
        }
        let other = entries.filter { $0.hasSuffix(".safetensors") }
        if !other.isEmpty {
            return "found \(CheckpointError.shortList(other)) but none named \(weightFiles.joined(separator: " / "))"
        }
        return "no \(weightFiles.joined(separator: " / ")) and no checkpoint-N subfolders; found: \(CheckpointError.shortList(entries))"
    }
}

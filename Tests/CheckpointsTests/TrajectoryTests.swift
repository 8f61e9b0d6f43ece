// Proves trajectory discovery (single folder vs. checkpoint-N layout, ordering by global_step or N)
// and the --checkpoints selection syntax.

import Foundation
import Testing
@testable import Checkpoints

@Suite("trajectory discovery and selection")
struct TrajectoryTests {
    private let weights = STWriter.valid([STWriter.ramp("w", [1])])

    private func checkpoint(_ dir: TempDir, _ name: String, globalStep: Int? = nil,
                            file: String = "model.safetensors") throws {
        try dir.write("\(name)/\(file)", weights)
        if let globalStep {
            try dir.write("\(name)/trainer_state.json",
                          text: "{\"best_metric\": null, \"epoch\": 0.5, \"global_step\": \(globalStep), \"log_history\": [{\"loss\": 1.25, \"step\": 1}]}")
        }
    }

    @Test("checkpoint-N folders are ordered numerically by N: checkpoint-10 after checkpoint-9")
    func orderByN() throws {
        let dir = try TempDir()
        for n in [10, 9, 100, 1] { try checkpoint(dir, "checkpoint-\(n)") }
        try dir.mkdir("runs")                    // TensorBoard logs: ignored
        try dir.write("checkpoint-notes.txt", text: "x")   // not checkpoint-N: ignored
        let refs = try Trajectory.discover(at: dir.url)
        #expect(refs.map(\.name) == ["checkpoint-1", "checkpoint-9", "checkpoint-10", "checkpoint-100"])
        #expect(refs.map(\.step) == [1, 9, 10, 100])
        #expect(refs[2].path.lastPathComponent == "checkpoint-10")
    }

    @Test("trainer_state.json global_step wins over N for both the step and the order")
    func orderByGlobalStep() throws {
        let dir = try TempDir()
        // Folder numbers disagree with the recorded steps (e.g. renamed folders).
        try checkpoint(dir, "checkpoint-1", globalStep: 300)
        try checkpoint(dir, "checkpoint-2", globalStep: 100)
        try checkpoint(dir, "checkpoint-3")                    // no trainer_state: step 3
        try checkpoint(dir, "checkpoint-4", globalStep: 200)
        let refs = try Trajectory.discover(at: dir.url)
        #expect(refs.map(\.name) == ["checkpoint-3", "checkpoint-2", "checkpoint-4", "checkpoint-1"])
        #expect(refs.map(\.step) == [3, 100, 200, 300])
    }

    @Test("a folder holding weights is one checkpoint; step from trainer_state, folder name, or nil")
    func singleFolder() throws {
        let dir = try TempDir()
        try checkpoint(dir, "final")
        #expect(try Trajectory.discover(at: dir.url.appendingPathComponent("final"))
                == [CheckpointRef(name: "final", step: nil, path: dir.url.appendingPathComponent("final").standardizedFileURL)])
        try checkpoint(dir, "checkpoint-70")
        #expect(try Trajectory.discover(at: dir.url.appendingPathComponent("checkpoint-70")).map(\.step) == [70])
        try checkpoint(dir, "checkpoint-80", globalStep: 81)
        #expect(try Trajectory.discover(at: dir.url.appendingPathComponent("checkpoint-80")).map(\.step) == [81])
        // Sharded and adapter folders count as weights folders too.
        try dir.write("sharded/model.safetensors.index.json", text: "{}")
        #expect(try Trajectory.discover(at: dir.url.appendingPathComponent("sharded")).count == 1)
        try checkpoint(dir, "adapter", file: "adapter_model.safetensors")
        #expect(try Trajectory.discover(at: dir.url.appendingPathComponent("adapter")).map(\.name) == ["adapter"])
    }

    @Test("isAdapter needs adapter_config.json and adapter_model.safetensors")
    func adapter() throws {
        let dir = try TempDir()
        try checkpoint(dir, "a", file: "adapter_model.safetensors")
        #expect(!Trajectory.isAdapter(dir.url.appendingPathComponent("a")))
        try dir.write("a/adapter_config.json", text: "{\"peft_type\": \"LORA\"}")
        #expect(Trajectory.isAdapter(dir.url.appendingPathComponent("a")))
        try checkpoint(dir, "full")
        try dir.write("full/adapter_config.json", text: "{}")
        #expect(!Trajectory.isAdapter(dir.url.appendingPathComponent("full")))
    }

    @Test("not a checkpoint folder → .notCheckpointFolder with what was found and a hint")
    func notCheckpoint() throws {
        let dir = try TempDir()
        try dir.write("notes/readme.txt", text: "x")
        try dir.write("model.pt", [0])   // PyTorch weights under a name no checkpoint uses
        let e = try #require(expectCheckpointError { _ = try Trajectory.discover(at: dir.url) })
        guard case let .notCheckpointFolder(path, reason) = e else { Issue.record("got \(e)"); return }
        #expect(path == dir.url.standardizedFileURL.path && reason.contains("model.pt") && reason.contains("pytorch_model.bin"))
        #expect(e.hint.contains("checkpoint-N"))

        let empty = try TempDir()
        let e2 = try #require(expectCheckpointError { _ = try Trajectory.discover(at: empty.url) })
        #expect(e2.description.contains("empty"))

        let e3 = try #require(expectCheckpointError { _ = try Trajectory.discover(at: dir.url.appendingPathComponent("model.pt")) })
        guard case .notCheckpointFolder = e3 else { Issue.record("got \(e3)"); return }
        let e4 = try #require(expectCheckpointError { _ = try Trajectory.discover(at: dir.url.appendingPathComponent("missing")) })
        guard case .notCheckpointFolder = e4 else { Issue.record("got \(e4)"); return }
    }

    @Test("a checkpoint-N folder without weights → .noWeights naming it")
    func halfWritten() throws {
        let dir = try TempDir()
        try checkpoint(dir, "checkpoint-1")
        try dir.write("checkpoint-2/optimizer.pt", [0])
        let e = try #require(expectCheckpointError { _ = try Trajectory.discover(at: dir.url) })
        guard case let .noWeights(directory, _, found) = e else { Issue.record("got \(e)"); return }
        #expect(directory.hasSuffix("checkpoint-2") && found == ["optimizer.pt"])
    }

    @Test("malformed trainer_state.json → .badTrainerState")
    func badTrainerState() throws {
        for text in ["{\"global_step\": -1}", "{\"global_step\": 1.5}", "{\"global_step\": \"10\"}", "{", "[]"] {
            let dir = try TempDir()
            try checkpoint(dir, "checkpoint-1")
            try dir.write("checkpoint-1/trainer_state.json", text: text)
            let e = try #require(expectCheckpointError { _ = try Trajectory.discover(at: dir.url) })
            guard case let .badTrainerState(file, _) = e else { Issue.record("\(text): got \(e)"); continue }
            #expect(file.hasSuffix("checkpoint-1/trainer_state.json"))
        }
        // No global_step key: fall back to N.
        let dir = try TempDir()
        try checkpoint(dir, "checkpoint-5")
        try dir.write("checkpoint-5/trainer_state.json", text: "{\"epoch\": 1}")
        #expect(try Trajectory.discover(at: dir.url).map(\.step) == [5])
    }

    // MARK: selection

    private var refs: [CheckpointRef] {
        ([0, 100, 200, 300, 400, 500] as [Int]).map { (s: Int) in
            CheckpointRef(name: "checkpoint-\(s)", step: s, path: URL(fileURLWithPath: "/run/checkpoint-\(s)"))
        } + [CheckpointRef(name: "final", step: nil, path: URL(fileURLWithPath: "/run/final"))]
    }

    private func names(_ spec: String) throws -> [String] {
        try Trajectory.select(refs, spec: spec).map(\.name)
    }

    @Test("every:K picks positions 0, K, 2K, … in training order")
    func every() throws {
        #expect(try names("every:2") == ["checkpoint-0", "checkpoint-200", "checkpoint-400", "final"])
        #expect(try names("every:3") == ["checkpoint-0", "checkpoint-300", "final"])
        #expect(try names("every:1").count == 7)
        #expect(try names("every:100") == ["checkpoint-0"])
    }

    @Test("steps:A-B is inclusive with open ends; checkpoints without a step never match")
    func steps() throws {
        #expect(try names("steps:100-300") == ["checkpoint-100", "checkpoint-200", "checkpoint-300"])
        #expect(try names("steps:400-") == ["checkpoint-400", "checkpoint-500"])
        #expect(try names("steps:-100") == ["checkpoint-0", "checkpoint-100"])
        #expect(try names("steps:150-250") == ["checkpoint-200"])
    }

    @Test("names, steps and combinations: union in training order without repeats")
    func lists() throws {
        #expect(try names("final,checkpoint-100") == ["checkpoint-100", "final"])
        #expect(try names("500, 0") == ["checkpoint-0", "checkpoint-500"])
        #expect(try names("every:3,steps:400-,100") == ["checkpoint-0", "checkpoint-100", "checkpoint-300", "checkpoint-400", "checkpoint-500", "final"])
        #expect(try names("all").count == 7)
        #expect(try names("steps:0-0,0") == ["checkpoint-0"])
    }

    @Test("unknown names → .unknownCheckpoint listing what is available")
    func unknown() throws {
        let e = try #require(expectCheckpointError { _ = try names("checkpoint-100,checkpoint-999") })
        guard case let .unknownCheckpoint(_, term, available) = e else { Issue.record("got \(e)"); return }
        #expect(term == "checkpoint-999" && available.count == 7)
        #expect(e.description.contains("checkpoint-500 (step 500)") && e.description.contains("final"))
        let e2 = try #require(expectCheckpointError { _ = try names("150") })
        guard case .unknownCheckpoint = e2 else { Issue.record("got \(e2)"); return }
    }

    @Test("malformed specs → .invalidSelection; valid specs matching nothing → .emptySelection")
    func malformed() throws {
        for spec in ["", " ", "every:0", "every:x", "every:", "steps:", "steps:-", "steps:a-b", "steps:300-100",
                     "steps:5", "last:3", "0,,100"] {
            let e = try #require(expectCheckpointError { _ = try names(spec) })
            guard case .invalidSelection = e else { Issue.record("'\(spec)': got \(e)"); continue }
            #expect(!e.hint.isEmpty)
        }
        let e = try #require(expectCheckpointError { _ = try names("steps:1000-") })
        guard case .emptySelection = e else { Issue.record("got \(e)"); return }
    }

    @Test("CheckpointRef round-trips through Codable")
    func codable() throws {
        let data = try JSONEncoder().encode(refs)
        #expect(try JSONDecoder().decode([CheckpointRef].self, from: data) == refs)
    }
}

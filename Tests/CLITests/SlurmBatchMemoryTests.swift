// `cpiscope slurm probe` gives every array task the same probe-group budget: with --mem and no
// --batch-memory it writes `--batch-memory N` into the task command, N being the default a task with that
// memory computes (BatchMemory: a quarter of the memory the weights leave, a power of two in 64 MiB–4 GiB),
// so that tasks on nodes with different RAM write shards that merge accepts. The expected values come from
// BatchMemory with the fixture's largest checkpoint (its safetensors bytes): a few MiB, so --mem 8G gives
// 1024 MiB and --mem 100G the 4 GiB cap.
import Foundation
import ProbeRun
import Testing

@Suite("slurm probe: one --batch-memory for every task")
struct SlurmBatchMemoryTests {
    private func arrayCommand(_ extra: [String]) throws -> (exec: String, stdout: String, stderr: String) {
        let dir = try makeTempDir("slurm-batch-memory")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runOK(["slurm", "probe", Paths.trajectory.path, "--probes", Paths.trajectory.appendingPathComponent("probes.jsonl").path,
                           "-o", dir.appendingPathComponent("p.h5").path] + extra)
        let array = try String(contentsOf: dir.appendingPathComponent("p.slurm/array.sbatch"), encoding: .utf8)
        return (String(array.split(separator: "\n").first { $0.hasPrefix("exec ") } ?? ""), r.stdout, r.stderr)
    }

    /// The default budget in MiB for `mem` bytes beside the fixture's largest checkpoint.
    private func expectedMiB(mem: Int) throws -> Int {
        let fm = FileManager.default
        let weights = try ["checkpoint-0", "checkpoint-10", "checkpoint-20"].map { name in
            let folder = Paths.trajectory.appendingPathComponent(name)
            return try fm.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".safetensors") }
                .map { try (fm.attributesOfItem(atPath: folder.appendingPathComponent($0).path)[.size] as? Int) ?? 0 }.reduce(0, +)
        }.max() ?? 0
        return BatchMemory(physicalBytes: mem, availableBytes: nil).defaultBudget(weightBytes: weights) >> 20
    }

    @Test("--mem sets every task's --batch-memory to the default for that memory")
    func pinnedFromMem() throws {
        let at8G = try expectedMiB(mem: 8 << 30), at100G = try expectedMiB(mem: 100 << 30)
        #expect(at8G == 1024 && at100G == BatchMemory.capBytes >> 20)   // the rule, for weights of a few MiB
        var r = try arrayCommand(["--mem", "8G"])
        #expect(r.exec.contains("--batch-memory \(at8G)"), "\(r.exec)")
        #expect(r.stdout.contains("--batch-memory \(at8G)"), "\(r.stdout)")
        r = try arrayCommand(["--mem", "100G"])
        #expect(r.exec.contains("--batch-memory \(at100G)"), "\(r.exec)")
        // Slurm's default unit is MiB: 8192 is 8G.
        r = try arrayCommand(["--mem=8192"])
        #expect(r.exec.contains("--batch-memory \(at8G)"), "\(r.exec)")
    }

    @Test("an explicit --batch-memory is kept as given; without --mem a note says how to make the tasks agree")
    func explicitOrNote() throws {
        var r = try arrayCommand(["--mem", "8G", "--batch-memory", "300"])
        #expect(r.exec.contains("--batch-memory 300") && r.exec.components(separatedBy: "--batch-memory").count == 2, "\(r.exec)")
        r = try arrayCommand([])
        #expect(!r.exec.contains("--batch-memory"), "\(r.exec)")
        #expect(r.stderr.contains("without --mem") && r.stderr.contains("merge refuses"), "\(r.stderr)")
        // --mem 0 (the whole node) cannot be turned into a budget: the note again.
        r = try arrayCommand(["--mem", "0"])
        #expect(!r.exec.contains("--batch-memory") && r.stderr.contains("without --mem"), "\(r.exec)\n\(r.stderr)")
    }
}

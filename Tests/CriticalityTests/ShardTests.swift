// Criticality shards (by checkpoints and by examples at batch boundaries) merged with `cpiscope merge`'s
// library equal a single-process run exactly (every variable, tolerance 0); a merged file can then be
// filtered by resuming it.
import Analysis
import Checkpoints
import Criticality
import Foundation
import HDF5Store
import ProbeRun
import Testing
import TrajectoryJob

private let data = (0..<9).map { k in
    k % 3 == 2 ? "{\"instruction\": \"Name thing \(k).\", \"output\": \"Thing \(k) is a stone.\"}"
        : "{\"instruction\": \"Who made item \(k)?\", \"input\": \"Item \(k) was made by Ada \(k).\", \"output\": \"Ada \(k) made it.\"}"
}.joined(separator: "\n") + "\n"

@Suite("Criticality shards")
struct CriticalityShardTests {
    func spec(_ d: URL, _ out: URL) throws -> CriticalityJobSpec {
        let traj = demoDir.appendingPathComponent("full-ft")
        var s = CriticalityJobSpec(checkpoints: try Trajectory.select(try Trajectory.discover(at: traj), spec: "0,250,500"),
                                   trajectoryRoot: traj, data: d, template: InstructionTemplate.builtin("plain")!, output: out)
        s.job.threads = 1
        s.batchTokens = 40  // several batches, so example shards have batch boundaries to split at
        return s
    }

    func variables(_ url: URL) throws -> [String: [Float]] {
        let f = try HDF5File.open(at: url, writable: false); defer { try? f.close() }
        var out: [String: [Float]] = [:]
        for name in CriticalitySchema.perCheckpointExample { out[name] = try f.readFloats(name).values }
        out["has_context"] = try f.readUInt8(CriticalitySchema.hasContext).values.map(Float.init)
        out["example"] = try f.readInt64("example").values.map(Float.init)
        out["checkpoint_complete"] = try f.readUInt8(CriticalitySchema.checkpointComplete).values.map(Float.init)
        return out
    }

    @Test("1, 2 and 3 shards by checkpoints and by examples merge into the single-process file", arguments: [JobShard.Axis.checkpoints, .examples])
    func shardsMerge(axis: JobShard.Axis) throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let d = try write(data, "d.jsonl", in: dir)
        let single = dir.appendingPathComponent("single.h5")
        _ = try CriticalityJob.run(try spec(d, single))
        let reference = try variables(single)
        for n in 1...3 {
            var shards: [URL] = []
            for i in 1...n {
                var s = try spec(d, dir.appendingPathComponent("s.h5"))
                s.job.shard = JobShard(index: i, count: n, axis: axis)
                s.job.output = s.job.shard!.output(for: s.job.output)
                s.job.force = true
                _ = try CriticalityJob.run(s)
                shards.append(s.job.output)
            }
            let merged = dir.appendingPathComponent("merged-\(n).h5")
            _ = try RunMerge.merge(shards, into: merged, allowPartial: false, overwrite: true)
            let got = try variables(merged)
            for (name, want) in reference {
                let same = got[name].map { zip($0, want).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) } && $0.count == want.count } ?? false
                #expect(same, "\(axis) × \(n): \(name) differs from the single-process run")
            }
            let f = try HDF5File.open(at: merged, writable: false)
            let complete = try f.attribute("complete")
            #expect(complete == .int(1) && (try? f.attribute("shard")) == nil)
            try f.close()
        }
    }

    @Test("more example shards than scoring batches: a clear error, no file")
    func emptyShard() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        var s = try spec(try write(data, "d.jsonl", in: dir), dir.appendingPathComponent("s.h5"))
        s.batchTokens = 100_000  // one batch
        s.job.shard = JobShard(index: 2, count: 2, axis: .examples)
        s.job.output = s.job.shard!.output(for: s.job.output)
        #expect(throws: TrajectoryJobError.emptyShard(shard: "2/2", units: "scoring batches", available: 1)) { try CriticalityJob.run(s) }
        #expect(!FileManager.default.fileExists(atPath: s.job.output.path))
    }

    @Test("a merged file is filtered by resuming it; a shard refuses to filter")
    func filterAfterMerge() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let d = try write(data, "d.jsonl", in: dir)
        var shards: [URL] = []
        for i in 1...2 {
            var s = try spec(d, dir.appendingPathComponent("s.h5"))
            s.job.shard = JobShard(index: i, count: 2, axis: .examples)
            s.job.output = s.job.shard!.output(for: s.job.output)
            if i == 1 {
                var f = s
                f.writeFiltered = dir.appendingPathComponent("never.jsonl")
                #expect(throws: CriticalityError.filterInShard(shard: "1/2")) { try CriticalityJob.run(f) }
            }
            _ = try CriticalityJob.run(s)
            shards.append(s.job.output)
        }
        let merged = dir.appendingPathComponent("merged.h5")
        _ = try RunMerge.merge(shards, into: merged, allowPartial: false, overwrite: false)
        var s = try spec(d, merged)
        s.job.resume = true
        s.filterPercent = 50
        s.writeFiltered = dir.appendingPathComponent("filtered.jsonl")
        let r = try CriticalityJob.run(s)
        #expect(r.summaries.allSatisfy { $0.skipped })
        #expect(r.filtered?.removed == 3)  // 6 examples with a context, 50%
        let kept = try String(contentsOf: s.writeFiltered!, encoding: .utf8).split(separator: "\n")
        #expect(kept.count == 6)
    }
}

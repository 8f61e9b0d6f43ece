// The shard switch every job shares (JobPart.of): which checkpoints and units one process runs, which
// axes a command refuses, and that an empty shard is an error naming what it lacks.
import Testing
import TrajectoryJob

@Suite struct JobPartTests {
    @Test func noShardIsTheWholeJob() throws {
        var asked = false
        let part = try JobPart.of(nil, checkpoints: 5, axis: .probes, unitCount: { asked = true; return 3 }, command: "probe")
        #expect(part.checkpoints == 0..<5)
        #expect(part.units == nil)
        #expect(!asked, "the unit count (a model load for probe groups) is only needed for a shard along the units")
    }

    @Test func checkpointShardTakesEveryUnit() throws {
        let part = try JobPart.of(JobShard(index: 2, count: 2), checkpoints: 5, axis: .interventions, unitCount: { 7 }, command: "intervene")
        #expect(part.checkpoints == 3..<5)
        #expect(part.units == nil)
    }

    @Test func unitShardTakesEveryCheckpoint() throws {
        let part = try JobPart.of(JobShard(index: 3, count: 3, axis: .examples), checkpoints: 2, axis: .examples, unitCount: { 7 },
                                  command: "criticality")
        #expect(part.checkpoints == 0..<2)
        #expect(part.units == 5..<7)
    }

    @Test func otherAxesAreRefusedNamingTheCommandsAxes() {
        #expect(throws: TrajectoryJobError.shardAxis(axis: "examples", command: "probe", axes: ["checkpoints", "probes"])) {
            try JobPart.of(JobShard(index: 1, count: 2, axis: .examples), checkpoints: 2, axis: .probes, unitCount: { 2 }, command: "probe")
        }
    }

    @Test func emptyShardsAreErrors() {
        #expect(throws: TrajectoryJobError.emptyShard(shard: "3/3", units: "checkpoints", available: 2)) {
            try JobPart.of(JobShard(index: 3, count: 3), checkpoints: 2, axis: .probes, unitCount: { 4 }, command: "probe")
        }
        let error = TrajectoryJobError.emptyShard(shard: "2/2", units: "scoring batches", available: 1)
        #expect(error.description == "shard 2/2 holds no scoring batches (the job has 1 scoring batch)")
        #expect(error.hint.contains("--batch-tokens"))
    }

    @Test func shardAttributesNameThePartAndTheWholeJob() {
        let a = JobShard(index: 1, count: 2, axis: .probes).attributes(jobLists: [(.checkpoints, ["a", "b"]), (.probes, ["p"])])
        #expect(a["shard"] == .string("1/2"))
        #expect(a["shard_by"] == .string("probes"))
        #expect(a["shard_job_checkpoints"] == .strings(["a", "b"]))
        #expect(a["shard_job_probes"] == .strings(["p"]))
        #expect(Set(a.keys).isSubset(of: Set(JobShard.attributeNames)))
    }
}

// The probe groups that a single-process run and every probe shard measure: a probe is measured in the
// same group in either (a shard takes whole groups: JobPart.of), so a merged file equals a single-process
// run bit for bit.
import Checkpoints
import ProbeKit

extension ProbeJob {
    /// The probe groups of a job, in order: each dumped probe alone (its options differ); the rest in runs of
    /// at most `groupSize` consecutive probes whose KV caches (`cacheBytes(i)`) fit `cacheBudget` together.
    /// The one grouping rule: `run` measures these groups, and probe shards split between them.
    public static func probeGroups(count: Int, dumped: Set<Int>, groupSize: Int, cacheBudget: Int,
                                   cacheBytes: (Int) -> Int) -> [[Int]] {
        var groups: [[Int]] = []
        var batch: [Int] = []
        var batchBytes = 0
        func close() { if !batch.isEmpty { groups.append(batch) }; batch = []; batchBytes = 0 }
        for pi in 0..<count {
            if dumped.contains(pi) { close(); batch = [pi]; close(); continue }
            let bytes = cacheBytes(pi)
            if !batch.isEmpty && batchBytes + bytes > cacheBudget { close() }
            batch.append(pi)
            batchBytes += bytes
            if batch.count == groupSize { close() }
        }
        close()
        return groups
    }

    /// The bytes of one probe's KV cache: prompt + longest answer or generation, float32 keys and values.
    static func cacheBytes(_ p: TokenizedProbe, config c: ModelConfig, maxNewTokens: Int) -> Int {
        let positions = p.promptIDs.count + max(p.answerIDs.count, p.memoryAnswerIDs.count, maxNewTokens) + 1
        return 2 * c.layers * c.kvHeads * c.dHead * positions * MemoryLayout<Float>.stride
    }
}

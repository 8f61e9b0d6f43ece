// The default probe-group budget from the machine's memory (BatchMemory, issue 26): a pure function of
// physical bytes, available bytes, the cgroup limit and weight bytes, checked against the rule written out
// by hand; the /proc/meminfo parser on real and malformed lines; and the cgroup limit found through
// /proc/self/cgroup and mountinfo texts over a folder laid out like /sys/fs/cgroup (v2, v1, a namespaced
// view, no limit, unreadable files).
import Foundation
@testable import ProbeRun
import Testing

@Suite("default --batch-memory from physical memory")
struct BatchMemoryTests {
    static let GiB = 1 << 30, MiB = 1 << 20

    @Test("a quarter of physical memory after the weights, rounded down to a power of two")
    func quarterAfterWeights() {
        // 24 GiB machine, 7B bf16 weights (12.55 GiB): (24 − 12.55) / 4 = 2.86 GiB → 2 GiB.
        let m = BatchMemory(physicalBytes: 24 * Self.GiB, availableBytes: nil)
        #expect(m.defaultBudget(weightBytes: 13_476_864_000) == 2 * Self.GiB)
        // 64 GiB machine, 7B: (64 − 12.55) / 4 = 12.9 GiB → capped at 4 GiB.
        #expect(BatchMemory(physicalBytes: 64 * Self.GiB, availableBytes: nil).defaultBudget(weightBytes: 13_476_864_000) == BatchMemory.capBytes)
        // 8 GiB machine, GPT-2 (475 MiB): (8192 − 475) / 4 = 1929 MiB → 1 GiB.
        #expect(BatchMemory(physicalBytes: 8 * Self.GiB, availableBytes: nil).defaultBudget(weightBytes: 475 * Self.MiB) == 1 * Self.GiB)
    }

    @Test("capped at 4 GiB, floored at 64 MiB (also when the weights exceed physical memory)")
    func capAndFloor() {
        #expect(BatchMemory(physicalBytes: 1 << 40, availableBytes: 1 << 40).defaultBudget(weightBytes: 0) == 4 * Self.GiB)
        #expect(BatchMemory(physicalBytes: 16 * Self.GiB, availableBytes: nil).defaultBudget(weightBytes: 15_900 * Self.MiB) == 64 * Self.MiB)
        #expect(BatchMemory(physicalBytes: 16 * Self.GiB, availableBytes: nil).defaultBudget(weightBytes: 40 * Self.GiB) == 64 * Self.MiB)
        #expect(BatchMemory(physicalBytes: 0, availableBytes: 0).defaultBudget(weightBytes: 0) == BatchMemory.floorBytes)
    }

    @Test("a short machine lowers it: at most half of what is available beyond the weights")
    func availableLowersIt() {
        // 24 GiB physical, 7B weights, only 14 GiB available: (14 − 12.55) / 2 = 0.72 GiB → 512 MiB.
        let short = BatchMemory(physicalBytes: 24 * Self.GiB, availableBytes: 14 * Self.GiB)
        #expect(short.defaultBudget(weightBytes: 13_476_864_000) == 512 * Self.MiB)
        // Plenty available: physical decides (2 GiB as above).
        let idle = BatchMemory(physicalBytes: 24 * Self.GiB, availableBytes: 23 * Self.GiB)
        #expect(idle.defaultBudget(weightBytes: 13_476_864_000) == 2 * Self.GiB)
    }

    @Test("the same value for machines of one kind whose memory differs by a few MiB (power-of-two rounding)")
    func stableAgainstSmallDifferences() {
        let a = BatchMemory(physicalBytes: 24 * Self.GiB - 37 * Self.MiB, availableBytes: nil)
        let b = BatchMemory(physicalBytes: 24 * Self.GiB + 5 * Self.MiB, availableBytes: nil)
        for w in [0, 475 * Self.MiB, 13_476_864_000] { #expect(a.defaultBudget(weightBytes: w) == b.defaultBudget(weightBytes: w)) }
        // Every default is a power of two.
        for phys in stride(from: 1, through: 128, by: 3) {
            let v = BatchMemory(physicalBytes: phys * Self.GiB, availableBytes: nil).defaultBudget(weightBytes: Self.GiB)
            #expect(v & (v - 1) == 0, "\(phys) GiB → \(v)")
        }
    }

    @Test("MemAvailable parsed from /proc/meminfo text in kB; nil without the line or with another unit")
    func parseMeminfo() {
        let text = "MemTotal:       24608112 kB\nMemFree:         6711736 kB\nMemAvailable:   23447096 kB\nBuffers:  12 kB\n"
        #expect(BatchMemory.parseMemAvailable(text) == 23_447_096 * 1024)
        #expect(BatchMemory.parseMemAvailable("MemTotal: 1 kB\n") == nil)
        #expect(BatchMemory.parseMemAvailable("MemAvailable: lots kB\n") == nil)
        #expect(BatchMemory.parseMemAvailable("MemAvailable: 5 MB\n") == nil)
        #expect(BatchMemory.parseMemAvailable("MemAvailable: 99999999999999999999 kB\n") == nil)
    }

    @Test("this machine's values are plausible: physical > 0, available ≤ physical where known")
    func current() {
        let m = BatchMemory.current()
        #expect(m.physicalBytes > 0)
        if let a = m.availableBytes { #expect(a > 0 && a <= m.physicalBytes) }
        let v = m.defaultBudget(weightBytes: 0)
        #expect(v >= BatchMemory.floorBytes && v <= BatchMemory.capBytes)
    }

    @Test("a cgroup memory limit below the RAM is the memory: a 64 GiB node with --mem 16G budgets as a 16 GiB machine")
    func limitIsTheMemory() {
        let node = BatchMemory(physicalBytes: 64 * Self.GiB, availableBytes: 60 * Self.GiB, limitBytes: 16 * Self.GiB)
        let machine16 = BatchMemory(physicalBytes: 16 * Self.GiB, availableBytes: nil)
        for w in [0, 475 * Self.MiB, 13_476_864_000] { #expect(node.defaultBudget(weightBytes: w) == machine16.defaultBudget(weightBytes: w)) }
        // (16 − 12.55) / 4 = 0.86 GiB → 512 MiB, where the node's RAM alone would give the 4 GiB cap.
        #expect(node.defaultBudget(weightBytes: 13_476_864_000) == 512 * Self.MiB)
        #expect(node.usableBytes == 16 * Self.GiB && node.sourceDescription.contains("cgroup"))
        // A limit above the RAM changes nothing.
        let loose = BatchMemory(physicalBytes: 24 * Self.GiB, availableBytes: nil, limitBytes: 1 << 40)
        #expect(loose.defaultBudget(weightBytes: 13_476_864_000) == 2 * Self.GiB && !loose.sourceDescription.contains("cgroup"))
    }

    /// A folder laid out like /sys/fs/cgroup: `files` maps paths under it to contents.
    private func cgroupTree(_ files: [String: String]) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-\(UUID().uuidString)")
        for (path, text) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        return root
    }

    @Test("cgroup v2: the smallest memory.max from the group up to the mount point; \"max\" is no limit")
    func cgroupV2() throws {
        let root = try cgroupTree(["memory.max": "max\n", "system.slice/memory.max": "34359738368\n",
                                   "system.slice/slurmstepd.scope/job_7/memory.max": "8589934592\n",
                                   "system.slice/slurmstepd.scope/job_7/step_batch/memory.max": "max\n",
                                   "other/memory.max": "1024\n"])
        defer { try? FileManager.default.removeItem(at: root) }
        let mountinfo = "30 1 0:26 / \(root.path) rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n25 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        let limit = BatchMemory.cgroupMemoryLimit(cgroups: "0::/system.slice/slurmstepd.scope/job_7/step_batch\n", mountinfo: mountinfo)
        #expect(limit == 8 << 30)
        #expect(BatchMemory.cgroupMemoryLimit(cgroups: "0::/\n", mountinfo: mountinfo) == nil)
        #expect(BatchMemory.cgroupMemoryLimit(cgroups: "0::/system.slice\n", mountinfo: mountinfo) == 32 << 30)
    }

    @Test("cgroup v1: memory.limit_in_bytes of the memory hierarchy; its \"unlimited\" value and other controllers ignored")
    func cgroupV1() throws {
        let root = try cgroupTree(["memory/memory.limit_in_bytes": "9223372036854771712\n",
                                   "memory/slurm/uid_0/job_9/memory.limit_in_bytes": "17179869184\n",
                                   "cpu/slurm/uid_0/job_9/memory.limit_in_bytes": "1024\n"])
        defer { try? FileManager.default.removeItem(at: root) }
        let mountinfo = """
            35 31 0:32 / \(root.path)/memory rw,relatime - cgroup cgroup rw,memory
            32 31 0:29 / \(root.path)/cpu rw,relatime - cgroup cgroup rw,cpu
            41 31 0:38 / \(root.path)/unified rw,relatime - cgroup2 cgroup2 rw

            """
        let cgroups = "4:memory:/slurm/uid_0/job_9\n1:cpu:/slurm/uid_0/job_9\n0::/\n"
        #expect(BatchMemory.cgroupMemoryLimit(cgroups: cgroups, mountinfo: mountinfo) == 16 << 30)
        // This sandbox's own layout: a group without its folder under the mount, the root unlimited.
        #expect(BatchMemory.cgroupMemoryLimit(cgroups: "4:memory:/process_api/76ca\n0::/\n", mountinfo: mountinfo) == nil)
    }

    @Test("a namespaced view (the mount's root is the group itself) reads the mount point's limit")
    func namespaced() throws {
        let root = try cgroupTree(["memory.max": "4294967296\n"])
        defer { try? FileManager.default.removeItem(at: root) }
        let mountinfo = "600 590 0:26 /kubepods/pod1/abc \(root.path) ro,nosuid - cgroup2 cgroup2 rw\n"
        #expect(BatchMemory.cgroupMemoryLimit(cgroups: "0::/\n", mountinfo: mountinfo) == 4 << 30)
        #expect(BatchMemory.cgroupMemoryLimit(cgroups: "0::/kubepods/pod1/abc\n", mountinfo: mountinfo) == 4 << 30)
    }

    @Test("no limit where the texts or files are missing or malformed")
    func noLimit() {
        #expect(BatchMemory.cgroupMemoryLimit(cgroups: nil, mountinfo: "") == nil)
        #expect(BatchMemory.cgroupMemoryLimit(cgroups: "garbage\n::\n0::relative\n", mountinfo: "x - cgroup2\n") == nil)
        #expect(BatchMemory.cgroupMemoryLimit(cgroups: "0::/\n", mountinfo: "30 1 0:26 / /nonexistent-cgroup rw - cgroup2 cgroup2 rw\n") == nil)
        for bad in ["max", "", "-5", "0", "12abc", "99999999999999999999"] { #expect(BatchMemory.parseMemoryLimit(bad) == nil, "\(bad)") }
        #expect(BatchMemory.parseMemoryLimit(" 8589934592\n") == 8 << 30)
    }
}

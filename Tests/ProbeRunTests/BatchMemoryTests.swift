// The default probe-group budget from the machine's memory (BatchMemory, issue 26): a pure function of
// physical bytes, available bytes and weight bytes, checked against the rule written out by hand; and
// the /proc/meminfo parser on real and malformed lines.
import ProbeRun
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
}

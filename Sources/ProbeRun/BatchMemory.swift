// The default budget for a probe group's KV caches (`--batch-memory`), from the machine's memory rather
// than the model's size (issue 26): a quarter of the physical memory left after the model's weights,
// capped and floored, rounded down to a power of two.
//
// Why physical memory and not what is free right now: the budget decides how probes are grouped, and the
// group size can change results in their last bits (docs/cluster.md), so it must not move between two
// runs on one machine because the page cache happened to be fuller. Physical memory is fixed per machine;
// what is available now only lowers the budget when the machine is short (then the run file records the
// smaller value, and --resume and merge read it from there). The power-of-two rounding keeps the value
// stable against small differences (a few MiB of kernel memory between two machines of one kind).
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// How the default probe-group budget is chosen, and from what.
public struct BatchMemory: Sendable, Equatable {
    /// The smallest default budget (a group of one short probe always fits anyway).
    public static let floorBytes = 64 << 20
    /// The largest default budget: beyond a few GiB, larger groups gain little (every weight is read once
    /// per decoding step already at 16 sequences) and cost memory other work could use.
    public static let capBytes = 4 << 30

    /// Bytes of physical memory (RAM) of the machine.
    public var physicalBytes: Int
    /// Bytes the kernel reports available now (MemAvailable: free memory plus reclaimable page cache), or
    /// nil when unknown.
    public var availableBytes: Int?

    public init(physicalBytes: Int, availableBytes: Int?) {
        self.physicalBytes = physicalBytes
        self.availableBytes = availableBytes
    }

    /// The default `--batch-memory` in bytes for a model whose weights take `weightBytes` in memory:
    /// (physical − weights) / 4, at most half of what is available now beyond the weights (when known),
    /// rounded down to a power of two, within [`floorBytes`, `capBytes`]. A pure function of its inputs.
    ///
    /// `weightBytes` is what the weights occupy while the job runs: the mapped checkpoint files (16-bit
    /// weights are read in place) plus any float32 copies the loader makes.
    public func defaultBudget(weightBytes: Int) -> Int {
        let weights = max(0, weightBytes)
        var budget = max(0, physicalBytes - weights) / 4
        if let available = availableBytes {
            // The weights' pages count as available (they are page cache) until the job maps them.
            budget = min(budget, max(0, available - weights) / 2)
        }
        budget = min(budget, Self.capBytes)
        if budget < Self.floorBytes { return Self.floorBytes }
        return Self.powerOfTwoFloor(budget)
    }

    /// The largest power of two ≤ n (n ≥ 1).
    static func powerOfTwoFloor(_ n: Int) -> Int {
        precondition(n >= 1)
        return 1 << (Int.bitWidth - 1 - n.leadingZeroBitCount)
    }

    /// This machine's memory: physical pages × page size (sysconf), and MemAvailable from /proc/meminfo
    /// (nil where there is none, e.g. macOS).
    public static func current() -> BatchMemory {
        BatchMemory(physicalBytes: physicalMemoryBytes(), availableBytes: availableMemoryBytes())
    }

    /// Physical memory in bytes: sysconf(_SC_PHYS_PAGES) × sysconf(_SC_PAGESIZE), else Foundation's figure.
    public static func physicalMemoryBytes() -> Int {
        #if canImport(Glibc)
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        if pages > 0 && size > 0 {
            let (bytes, overflow) = pages.multipliedReportingOverflow(by: size)
            if !overflow { return bytes }
        }
        #endif
        return Int(clamping: ProcessInfo.processInfo.physicalMemory)
    }

    /// MemAvailable from /proc/meminfo in bytes, or nil.
    public static func availableMemoryBytes(meminfo path: String = "/proc/meminfo") -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return parseMemAvailable(text)
    }

    /// The `MemAvailable:` line of a /proc/meminfo text ("MemAvailable:   23456789 kB"), in bytes; nil when
    /// the line is missing or malformed.
    public static func parseMemAvailable(_ meminfo: String) -> Int? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.dropFirst("MemAvailable:".count).split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first, let value = Int(first), value >= 0 else { return nil }
            let unit = fields.count > 1 ? fields[1].lowercased() : ""
            let scale: Int
            switch unit {
            case "kb": scale = 1024
            case "": scale = 1
            default: return nil
            }
            let (bytes, overflow) = value.multipliedReportingOverflow(by: scale)
            return overflow ? nil : bytes
        }
        return nil
    }
}

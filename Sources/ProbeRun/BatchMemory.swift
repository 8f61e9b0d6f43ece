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
//
// Where the process runs in a control group with a memory limit (a Slurm task's `--mem` under
// ConstrainRAMSpace, a container's limit), that limit is its memory, not the node's RAM: a budget from the
// node could pass the limit and get the task killed, and tasks of one array on nodes with different RAM
// would group their probes differently (merge then refuses to mix them). The limit is read from the
// kernel's cgroup files (Documentation/admin-guide/cgroup-v2.rst: `memory.max`, "max" for none;
// cgroup-v1/memory.rst: `memory.limit_in_bytes`), the smallest along the path from the process's group
// up to the hierarchy's mount point, found through /proc/self/cgroup and /proc/self/mountinfo (proc(5)).
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
    /// The memory limit of the process's control group, or nil when it has none.
    public var limitBytes: Int?

    public init(physicalBytes: Int, availableBytes: Int?, limitBytes: Int? = nil) {
        self.physicalBytes = physicalBytes
        self.availableBytes = availableBytes
        self.limitBytes = limitBytes
    }

    /// The memory the process may use: physical memory, or its control group's limit where that is lower.
    public var usableBytes: Int { min(physicalBytes, limitBytes ?? .max) }

    /// Where the default comes from, for `--verbose`.
    public var sourceDescription: String {
        let rule = "a quarter of the memory the weights leave, at most half of what is free beyond them, a power of two in 64 MiB–4 GiB"
        if let limit = limitBytes, limit < physicalBytes {
            return "from this process's memory limit (cgroup: \(limit >> 20) MiB of \(physicalBytes >> 20) MiB RAM; \(rule))"
        }
        return "from this machine's memory (\(physicalBytes >> 20) MiB RAM; \(rule))"
    }

    /// The default `--batch-memory` in bytes for a model whose weights take `weightBytes` in memory:
    /// (usable − weights) / 4, at most half of what is available now beyond the weights (when known; never
    /// more than the limit), rounded down to a power of two, within [`floorBytes`, `capBytes`]. A pure
    /// function of its inputs.
    ///
    /// `weightBytes` is what the weights occupy while the job runs: the mapped checkpoint files (16-bit
    /// weights are read in place) plus any float32 copies the loader makes.
    public func defaultBudget(weightBytes: Int) -> Int {
        let weights = max(0, weightBytes)
        var budget = max(0, usableBytes - weights) / 4
        if let available = availableBytes.map({ min($0, limitBytes ?? .max) }) {
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

    /// This machine's memory: physical pages × page size (sysconf), MemAvailable from /proc/meminfo, and
    /// the process's cgroup memory limit (each nil where there is none, e.g. macOS).
    public static func current() -> BatchMemory {
        BatchMemory(physicalBytes: physicalMemoryBytes(), availableBytes: availableMemoryBytes(), limitBytes: cgroupMemoryLimit())
    }

    /// The smallest memory limit on the path from this process's control group to the root of its
    /// hierarchy (cgroup v2 `memory.max`, v1 `memory.limit_in_bytes`), or nil when none is set or the files
    /// cannot be read. `cgroups` is the text of /proc/self/cgroup, `mountinfo` that of /proc/self/mountinfo,
    /// `readFile` reads a limit file (parameters for the tests).
    public static func cgroupMemoryLimit(cgroups: String? = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
                                         mountinfo: String? = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
                                         readFile: (String) -> String? = { try? String(contentsOfFile: $0, encoding: .utf8) }) -> Int? {
        guard let cgroups, let mountinfo else { return nil }
        // Mounts of cgroup hierarchies: (root within the hierarchy, mount point, v2, controllers).
        var mounts: [(root: String, point: String, v2: Bool, options: [Substring])] = []
        for line in mountinfo.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2 else { continue }
            let fields = halves[0].split(separator: " "), tail = halves[1].split(separator: " ")
            guard fields.count >= 5, tail.count >= 3, tail[0] == "cgroup" || tail[0] == "cgroup2" else { continue }
            mounts.append((String(fields[3]), String(fields[4]), tail[0] == "cgroup2", tail[2].split(separator: ",")))
        }
        var limits: [Int] = []
        for line in cgroups.split(separator: "\n") {
            // hierarchy-ID:controller-list:cgroup-path (proc(5)); v2 is "0::path".
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[2].hasPrefix("/") else { continue }
            let v2 = parts[0] == "0" && parts[1].isEmpty
            guard v2 || parts[1].split(separator: ",").contains("memory") else { continue }
            let path = String(parts[2]), file = v2 ? "memory.max" : "memory.limit_in_bytes"
            for m in mounts where m.v2 == v2 && (v2 || m.options.contains("memory")) {
                // The group's folder under this mount; in a namespaced view that does not show the path, the
                // mount point is the group.
                let relative: String
                if m.root == "/" { relative = path }
                else if path == m.root || path.hasPrefix(m.root + "/") { relative = String(path.dropFirst(m.root.count)) }
                else { relative = "" }
                let top = m.point.hasSuffix("/") ? String(m.point.dropLast()) : m.point
                var folder = top + (relative == "/" ? "" : relative)
                while true {   // up to the mount point: folder always starts with it
                    if let text = readFile(folder + "/" + file), let limit = parseMemoryLimit(text) { limits.append(limit) }
                    guard folder.count > top.count, let slash = folder.lastIndex(of: "/") else { break }
                    folder = String(folder[..<slash])
                }
            }
        }
        return limits.min()
    }

    /// A cgroup memory limit file's value in bytes; nil for "max" (v2: no limit), v1's "no limit" (a value
    /// near 2⁶³, page-aligned), or text that is not a positive integer.
    static func parseMemoryLimit(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let v = Int(t), v > 0, v < (1 << 62) else { return nil }
        return v
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

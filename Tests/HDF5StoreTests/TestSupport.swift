// Helpers for HDF5StoreTests: temp dirs, the demo file shared with Tests/python/hdf5_layout_checks.py,
// and running python3.
import Foundation
import HDF5Store

/// A fresh directory under the system temp dir.
func makeTempDir(_ label: String = #function) throws -> URL {
    let safe = label.filter { $0.isLetter || $0.isNumber }
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("cpiscope-h5-\(safe)-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// Max |a - b| over two equally long arrays, NaN == NaN counting as 0 and NaN vs number as +inf.
func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    var m: Float = 0
    for (x, y) in zip(a, b) {
        if x.isNaN && y.isNaN { continue }
        if x.isNaN || y.isNaN { return .infinity }
        m = max(m, abs(x - y))
    }
    return m
}

/// The demo file: a small probe run with every feature of the layout. The same values are
/// recomputed independently in Tests/python/hdf5_layout_checks.py; keep both in sync.
enum Demo {
    static let checkpoints = ["base", "checkpoint-500", "checkpoint-1000"]
    static let steps: [Int64] = [0, 500, 1000]
    static let probes = ["p0-capital", "p1-ünïcødé", "p2-日本語"]
    static let layers: [Int64] = [0, 1, 2, 3]
    static let heads: [Int64] = [0, 1]
    static let positions: [Int64] = [0, 1, 2, 3, 4]
    static let tokenCount: [Int64] = [3, 4, 5]

    static func margin(_ c: Int, _ p: Int, _ l: Int) -> Float { Float(c * 100 + p * 10 + l) + 0.25 }
    static func topToken(_ c: Int, _ p: Int) -> Int32 { Int32(c * 10 + p) }
    static func answer(_ c: Int, _ p: Int) -> String { "ans-\(c)-\(p)-é" }
    static func correct(_ c: Int, _ p: Int) -> UInt8 { UInt8((c + p) % 2) }
    /// Only checkpoint 0 is dumped; the other slabs keep the NaN fill.
    static func pattern(_ h: Int, _ q: Int, _ k: Int) -> Float { Float(h) + Float(q) * 0.1 + Float(k) * 0.01 }

    static let rootAttributes: [(String, AttributeValue)] = [
        ("cpiscope_version", .string("0.0.0-test")),
        ("model", .string("pythia-14m")),
        ("seed", .int(1234)),
        ("temperature", .double(0.5)),
        ("probe_sets", .strings(["capitals", "ünï"])),
        ("layers_recorded", .ints([0, 2])),
        ("thresholds", .doubles([0.5, 1.5])),
    ]

    /// Writes the demo file checkpoint by checkpoint (flush after each) and closes it.
    static func write(to url: URL) throws {
        let f = try HDF5File.create(at: url, overwrite: true)
        try f.createDimension("checkpoint", strings: checkpoints)
        try f.createCoordinate("step", along: "checkpoint", ints: steps)
        try f.createDimension("probe", strings: probes)
        try f.createDimension("layer", ints: layers)
        try f.createDimension("head", ints: heads)
        try f.createDimension("query_pos", ints: positions)
        try f.createDimension("key_pos", ints: positions)
        try f.createVariable("margin", type: .float32, dims: ["checkpoint", "probe", "layer"])
        try f.createVariable("top_token", type: .int32, dims: ["checkpoint", "probe"])
        try f.createVariable("answer_text", type: .string, dims: ["checkpoint", "probe"])
        try f.createVariable("correct", type: .uint8, dims: ["checkpoint", "probe"], fill: .int(255))
        try f.createVariable("token_count", type: .int64, dims: ["probe"])
        try f.createVariable("dumps/attention_pattern", type: .float32,
                             dims: ["checkpoint", "head", "query_pos", "key_pos"])
        for (name, value) in rootAttributes { try f.setAttribute(name, value) }
        try f.setAttribute("units", .string("logit"), on: "margin")
        try f.setAttribute("long_name", .string("logit(context answer) - logit(memory answer)"), on: "margin")
        try f.write("token_count", int64: tokenCount)
        try f.flush()

        let (nc, np, nl) = (checkpoints.count, probes.count, layers.count)
        for c in 0..<nc {
            var m: [Float] = []
            for p in 0..<np { for l in 0..<nl { m.append(margin(c, p, l)) } }
            try f.writeSlab("margin", index: c, floats: m)
            try f.writeSlab("top_token", index: c, ints32: (0..<np).map { topToken(c, $0) })
            try f.writeSlab("answer_text", index: c, strings: (0..<np).map { answer(c, $0) })
            try f.writeSlab("correct", index: c, uint8: (0..<np).map { correct(c, $0) })
            if c == 0 {
                var a: [Float] = []
                for h in 0..<heads.count { for q in 0..<positions.count { for k in 0..<positions.count {
                    a.append(pattern(h, q, k))
                } } }
                try f.writeSlab("dumps/attention_pattern", index: 0, floats: a)
            }
            try f.flush()
        }
        try f.close()
    }
}

/// python3 from PATH, run through /usr/bin/env.
enum Python {
    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// Runs python3 with `arguments`; `environment` adds variables (nil removes one).
    static func run(_ arguments: [String], environment extra: [String: String?] = [:],
                    currentDirectory: URL? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in extra { env[k] = v }  // nil removes
        process.environment = env
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read before waiting so a chatty child cannot block on a full pipe.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }

    /// Whether python3 runs and imports all `modules`.
    static func has(_ modules: [String]) -> Bool {
        let script = modules.map { "import \($0)" }.joined(separator: "; ")
        return (try? run(["-c", script]).status) == 0
    }

    static let hasH5py = has(["h5py", "numpy"])
    static let hasLayoutStack = has(["pytest", "h5py", "numpy", "xarray", "h5netcdf"])
}

/// The package root (Tests/HDF5StoreTests/ -> ../..).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

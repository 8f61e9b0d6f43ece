// `cpiscope merge`: the shard files of one probe or intervention job (`--shard I/N`) into one file with
// the same data as a single-process run. Generic over the schema: each variable is placed by its
// dimensions — the sharded one (`checkpoint`, `probe` or `intervention`) scattered into the whole job's
// order, any other copied from the first shard — so a variable added to either schema merges without a
// change here.
import Foundation
import HDF5Store
import TrajectoryJob

public enum RunMergeError: Error, CustomStringConvertible, Sendable {
    case notAShard(path: String)
    case mismatch(path: String, field: String, detail: String)
    case incomplete(path: String, detail: String)
    case overlap(path: String, item: String)
    case missing(axis: String, items: [String])

    public var description: String {
        switch self {
        case let .notAShard(p): return "\(p): not a shard file (no `shard` attribute; written by `cpiscope probe --shard I/N` or `cpiscope intervene --shard I/N`)"
        case let .mismatch(p, f, d): return "\(p): field `\(f)` differs from the first shard's: \(d)"
        case let .incomplete(p, d): return "\(p): incomplete shard: \(d)"
        case let .overlap(p, i): return "\(p): `\(i)` is also in an earlier shard"
        case let .missing(a, items):
            return "no shard holds \(a) \(items.prefix(5).joined(separator: ", "))\(items.count > 5 ? " … (\(items.count))" : "")"
        }
    }

    public var hint: String {
        switch self {
        case .notAShard, .mismatch: return "Merge the shards of one job only (same probes, template, checkpoints, interventions, options and version)."
        case .incomplete: return "Resume the shard (the same command with --resume), or pass --allow-partial."
        case .overlap: return "Pass each shard once, all from one --shard I/N split."
        case .missing: return "Pass every shard file, or --allow-partial to mark the rest missing."
        }
    }
}

public enum RunMerge {
    private typealias A = RunSchema.Attribute
    /// Attributes that may differ between shards (when and how each process started; its part of the job;
    /// the thread count older files record).
    static let perProcess: Set<String> = [A.created, A.commandLine, A.complete, A.legacyThreads]
    /// Not an attribute of a file: the N of each shard's `shard` (I/N), compared like one.
    static let shardCount = "shard_count"

    /// Fields checked first, so that an error names the cause rather than a path that follows from it.
    static let checkedFirst = [A.toolVersion, A.version, InterventionSchema.versionAttribute, A.shardBy, shardCount,
                               A.probeFileSHA256, A.templateText, A.modelConfig] + A.resultsDependOn
                               + [InterventionSchema.Attribute.generate] + JobShard.Axis.allCases.map(\.jobAttribute)

    /// What a merge wrote: the items no complete shard held (empty for a complete merge).
    public struct Outcome: Sendable { public var missing: [String] }

    public static func merge(_ paths: [URL], into output: URL, allowPartial: Bool, overwrite: Bool) throws -> Outcome {
        let files = try paths.map { try HDF5File.open(at: $0, writable: false) }
        defer { for f in files { try? f.close() } }
        // 1. The shards belong together: every attribute equal but the per-process and shard ones.
        var attrs: [[String: AttributeValue]] = []
        for f in files {
            var a: [String: AttributeValue] = [:]
            for name in try f.attributeNames() { a[name] = try f.attribute(name) }
            guard case .string(let shard)? = a[A.shard], let parsed = JobShard(shard) else { throw RunMergeError.notAShard(path: f.path) }
            a[shardCount] = .int(Int64(parsed.count))
            attrs.append(a)
        }
        let ref = attrs[0]
        for (f, a) in zip(files, attrs).dropFirst() {
            let keys = Set(ref.keys).union(a.keys).subtracting(perProcess).subtracting([A.shard])
            for key in checkedFirst.filter(keys.contains) + keys.subtracting(checkedFirst).sorted() where ref[key] != a[key] {
                throw RunMergeError.mismatch(path: f.path, field: key,
                                             detail: "\(a[key].map { "\($0)".prefix(80) } ?? "absent") vs \(ref[key].map { "\($0)".prefix(80) } ?? "absent")")
            }
        }
        guard case .string(let axisName)? = ref[A.shardBy], let axis = JobShard.Axis(rawValue: axisName),
              case .strings(let whole)? = ref[axis.jobAttribute]
        else { throw RunMergeError.notAShard(path: files[0].path) }
        let dim = axis.dimension
        let position = Dictionary(whole.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })

        // 2. Which shard holds which item; refuse overlaps, incomplete shards and gaps.
        var placement: [[Int]] = []  // per shard: local index -> index in the whole job
        var covered = [Bool](repeating: false, count: whole.count)
        var complete: [[UInt8]] = []  // per shard: checkpoint_complete
        for (f, a) in zip(files, attrs) {
            // The sharded dimension's labels: names, or indices (criticality examples) as their decimal text.
            let items = try f.elementType(of: dim) == .string ? try f.readStrings(dim).values : try f.readInt64(dim).values.map { String($0) }
            let done = try f.readUInt8(RunSchema.checkpointComplete.name).values
            if a[A.complete] != .int(1) && !allowPartial {
                let open = zip(try f.readStrings(RunSchema.Dim.checkpoint).values, done).filter { $0.1 != 1 }.map(\.0)
                throw RunMergeError.incomplete(path: f.path, detail: "checkpoint(s) \(open.joined(separator: ", ")) not complete")
            }
            var map: [Int] = []
            for item in items {
                guard let j = position[item] else {
                    throw RunMergeError.mismatch(path: f.path, field: dim, detail: "`\(item)` is not in the job's \(dim) list")
                }
                if covered[j] { throw RunMergeError.overlap(path: f.path, item: item) }
                covered[j] = true
                map.append(j)
            }
            placement.append(map)
            complete.append(done)
        }
        let missing = zip(whole, covered).filter { !$0.1 }.map(\.0)
        if !missing.isEmpty && !allowPartial { throw RunMergeError.missing(axis: dim, items: missing) }

        // 3. The merged file: dimensions in the original order (netCDF dimension ids), coordinates, variables.
        let first = files[0]
        let out = try HDF5File.create(at: output, overwrite: overwrite)
        do {
            let dims = try first.dimensionNames().sorted {
                (try? dimensionID(first, $0)) ?? 0 < (try? dimensionID(first, $1)) ?? 0
            }
            for d in dims {
                if d == dim {
                    if try first.elementType(of: d) == .string { try out.createDimension(d, strings: whole) }
                    else { try out.createDimension(d, ints: whole.map { Int64($0) ?? -1 }) }
                }
                else if try first.elementType(of: d) == .string { try out.createDimension(d, strings: try first.readStrings(d).values) }
                else { try out.createDimension(d, ints: try first.readInt64(d).values) }
            }
            var coordinates: [String] = []
            if case .string(let c)? = ref[A.coordinates] { coordinates = c.split(separator: " ").map(String.init) }
            let spread = Spread(files: files, dim: dim, placement: placement, count: whole.count)
            for name in try first.children() where !dims.contains(name) {
                guard let type = try first.elementType(of: name) else { continue }
                let vdims = try first.dimensions(of: name).map { $0 ?? "" }
                if coordinates.contains(name) {
                    try out.createCoordinate(name, along: vdims[0], ints: try spread.merged(Int64.self, name, dims: vdims))
                    continue
                }
                try out.createVariable(name, type: type, dims: vdims)
                switch type {
                case .float32: try out.write(name, floats: try spread.merged(Float.self, name, dims: vdims))
                case .int32: try out.write(name, ints32: try spread.merged(Int32.self, name, dims: vdims))
                case .int64: try out.write(name, int64: try spread.merged(Int64.self, name, dims: vdims))
                case .string: try out.write(name, strings: try spread.merged(String.self, name, dims: vdims))
                case .uint8:
                    var v = try spread.merged(UInt8.self, name, dims: vdims)
                    if name == RunSchema.checkpointComplete.name {
                        // A checkpoint is complete when every shard that holds part of it completed it.
                        v = axis != .checkpoints ? (0..<v.count).map { c in complete.allSatisfy { $0[c] == 1 } && missing.isEmpty ? 1 : 0 } : v
                    }
                    try out.write(name, uint8: v)
                }
            }
            for (key, value) in ref.sorted(by: { $0.key < $1.key })
            where !JobShard.attributeNames.contains(key) && key != shardCount && key != A.coordinates {
                try out.setAttribute(key, value)
            }
            let allDone = try out.readUInt8(RunSchema.checkpointComplete.name).values.allSatisfy { $0 == 1 }
            try out.setAttribute(A.complete, .int(allDone && missing.isEmpty ? 1 : 0))
            if !missing.isEmpty { try out.setAttribute("merge_missing_\(dim)s", .strings(missing)) }
            try out.flush()
            try out.close()
        } catch {
            try? out.close()
            try? FileManager.default.removeItem(at: output)
            throw error
        }
        return Outcome(missing: missing)
    }

    static func dimensionID(_ f: HDF5File, _ d: String) throws -> Int64 {
        if case .int(let v) = try f.attribute("_Netcdf4Dimid", on: d) { return v }
        return 0
    }
}

/// Element types a merge moves: read whole from a file, and the fill for items no shard holds.
protocol MergeElement {
    static func read(_ f: HDF5File, _ name: String) throws -> [Self]
    static var missing: Self { get }
}
extension Float: MergeElement {
    static func read(_ f: HDF5File, _ n: String) throws -> [Float] { try f.readFloats(n).values }
    static var missing: Float { .nan }
}
extension Int32: MergeElement {
    static func read(_ f: HDF5File, _ n: String) throws -> [Int32] { try f.readInts32(n).values }
    static var missing: Int32 { -1 }
}
extension Int64: MergeElement {
    static func read(_ f: HDF5File, _ n: String) throws -> [Int64] { try f.readInt64(n).values }
    static var missing: Int64 { -1 }
}
extension UInt8: MergeElement {
    static func read(_ f: HDF5File, _ n: String) throws -> [UInt8] { try f.readUInt8(n).values }
    static var missing: UInt8 { 0 }
}
extension String: MergeElement {
    static func read(_ f: HDF5File, _ n: String) throws -> [String] { try f.readStrings(n).values }
    static var missing: String { "" }
}

/// Scatters a variable's shards along the sharded dimension into the whole job's order.
struct Spread {
    let files: [HDF5File]
    let dim: String
    let placement: [[Int]]
    let count: Int

    func merged<T: MergeElement>(_ type: T.Type, _ name: String, dims: [String]) throws -> [T] {
        guard let k = dims.firstIndex(of: dim) else { return try T.read(files[0], name) }
        let shape = try files[0].shape(of: name)
        let outer = shape[..<k].reduce(1, *), inner = shape[(k + 1)...].reduce(1, *)
        var result = [T](repeating: T.missing, count: outer * count * inner)
        for (f, map) in zip(files, placement) {
            let values = try T.read(f, name)
            let local = map.count
            for o in 0..<outer {
                for (j, J) in map.enumerated() {
                    let src = (o * local + j) * inner, dst = (o * count + J) * inner
                    result.replaceSubrange(dst..<(dst + inner), with: values[src..<(src + inner)])
                }
            }
        }
        return result
    }
}

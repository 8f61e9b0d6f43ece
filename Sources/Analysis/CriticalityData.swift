// Criticality files (`cpiscope criticality`; docs/hdf5-schema.md, "Criticality files"; their names are
// `CriticalitySchema` in HDF5Store/CriticalitySchema.swift): the reader, and the analysis the report draws: groups by the first checkpoint's criticality and each
// group's mean loss over training steps with bootstrap bands.
import Foundation
import HDF5Store

/// A criticality file as read: per-example facts and `[checkpoint, example]` scores of its complete
/// checkpoints (incomplete ones are left out and listed).
public struct CriticalityTable: Sendable {
    public let path: String
    public let checkpoints: [String]
    public let steps: [Int64]
    public let incompleteCheckpoints: [String]
    public let exampleIDs: [String]
    public let hasContext: [Bool]
    public let skipReason: [String]
    /// Each example's data category ("" when none).
    public let categories: [String]
    public let responseTokens: [Int32]
    /// `[checkpoint, example]`, complete checkpoints only.
    public let nllWithContext: [Float]
    public let nllWithoutContext: [Float]
    public let criticality: [Float]
    /// The checkpoint that groups and filters (attribute `filter_checkpoint`, else the first complete one).
    public let baseCheckpoint: Int
    /// The C / C+S split's percentage (attribute `filter_lowest_percent`, else 25).
    public let splitPercent: Double
    public let info: [String: String]

    public var examples: Int { exampleIDs.count }

    public static func isCriticalityFile(_ url: URL) -> Bool { fileCarries(url, attribute: CriticalitySchema.versionAttribute) }

    public static func read(_ url: URL) throws -> CriticalityTable {
        let path = url.path
        let file = try openVersionedFile(url, versionAttribute: CriticalitySchema.versionAttribute, version: CriticalitySchema.version,
                                         command: "cpiscope criticality")
        defer { try? file.close() }
        typealias S = CriticalitySchema
        let r = FieldReader(file: file, path: path)
        let names = try r.strings("checkpoint")
        let C = names.count
        let allSteps = try r.int64("step", [C])
        let ids = try r.strings(S.exampleID)
        let E = ids.count
        guard C >= 1, E >= 1 else { throw AnalysisError.malformedRun(path: path, field: "checkpoint/example", detail: "empty") }
        let complete = try r.uint8(S.checkpointComplete, [C])
        let keep = (0..<C).filter { complete[$0] == 1 }
        guard !keep.isEmpty else { throw AnalysisError.incompleteRun(path: path, complete: 0, needed: 1) }
        func rows(_ name: String) throws -> [Float] {
            let all = try r.floats(name, [C, E])
            return keep.flatMap { all[($0 * E)..<(($0 + 1) * E)] }
        }
        let info = r.info(["tool_version", "created", "data_file", "data_format", "template_name", "model_type", "precision",
                           "filter_checkpoint", "eos_appended", "max_tokens", "score_definition"])
        var base = 0
        if let fc = info["filter_checkpoint"], let i = keep.firstIndex(where: { names[$0] == fc }) { base = i }
        var split = 25.0
        if case .double(let p)? = try? file.attribute("filter_lowest_percent") { split = p }
        let tokens = try r.wrap(S.responseTokens) { try file.readInts32(S.responseTokens) }
        try r.check(S.responseTokens, tokens.shape, [E])
        return CriticalityTable(
            path: path, checkpoints: keep.map { names[$0] }, steps: keep.map { allSteps[$0] },
            incompleteCheckpoints: (0..<C).filter { complete[$0] != 1 }.map { names[$0] },
            exampleIDs: ids, hasContext: try r.uint8(S.hasContext, [E]).map { $0 == 1 },
            skipReason: try r.strings(S.skipReason, [E]),
            categories: file.exists(S.category) ? try r.strings(S.category, [E]) : [String](repeating: "", count: E),
            responseTokens: tokens.values,
            nllWithContext: try rows(S.nllWithContext), nllWithoutContext: try rows(S.nllWithoutContext),
            criticality: try rows(S.criticality), baseCheckpoint: base, splitPercent: split, info: info)
    }

    func column(_ v: [Float], _ c: Int) -> ArraySlice<Float> { v[(c * examples)..<((c + 1) * examples)] }

    /// Examples with a context and a finite criticality at the base checkpoint, lowest criticality first
    /// (ties by index): the order the filter and the groups use.
    public var rankedContextExamples: [Int] {
        let crit = Array(column(criticality, baseCheckpoint))
        return (0..<examples).filter { hasContext[$0] && crit[$0].isFinite }.sorted { (crit[$0], $0) < (crit[$1], $1) }
    }

    /// The paper's split at the base checkpoint: the `splitPercent`% of context examples with the lowest
    /// criticality are "C+S" (the context is redundant with what the model knows: the examples §3.4 filters
    /// out), the other context examples "C" (context-critical), examples without a context "S".
    public func paperGroups() -> [String] {
        var g = [String](repeating: "", count: examples)
        let ranked = rankedContextExamples
        let k = Int((Double(ranked.count) * splitPercent / 100).rounded(.down))
        for (rank, e) in ranked.enumerated() { g[e] = rank < k ? "C+S" : "C" }
        let withoutScored = Array(column(nllWithoutContext, baseCheckpoint))
        for e in 0..<examples where !hasContext[e] && withoutScored[e].isFinite { g[e] = "S" }
        return g
    }

    /// Quartiles of criticality among context examples at the base checkpoint ("Q1" lowest … "Q4").
    public func quartiles() -> [String] {
        var g = [String](repeating: "", count: examples)
        let ranked = rankedContextExamples
        for (rank, e) in ranked.enumerated() { g[e] = "Q\(rank * 4 / max(1, ranked.count) + 1)" }
        return g
    }

    /// The most frequent non-empty categories (at most `limit`), most examples first, ties by name.
    public func topCategories(limit: Int = 8) -> [String] {
        var counts: [String: Int] = [:]
        for c in categories where !c.isEmpty { counts[c, default: 0] += 1 }
        return counts.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(limit).map(\.key)
    }

    /// One group's mean training loss over the checkpoints.
    public struct GroupCurve: Sendable {
        public var group: String
        public var members: Int
        /// Per checkpoint: the mean loss and its bootstrap 95% interval.
        public var mean: [Double]
        public var low: [Double]
        public var high: [Double]
    }

    /// Each group's mean loss per checkpoint: the example's training loss, i.e. nll with the context for
    /// examples that have one and without for the others; bootstrap intervals over the group's examples.
    public func curves(groups: [String], order: [String], resamples: Int = 1000, seed: UInt64 = 0) throws -> [GroupCurve] {
        let boot = try Bootstrap(seed: seed, resamples: resamples)
        return try order.compactMap { name in
            let members = (0..<examples).filter { groups[$0] == name }
            guard !members.isEmpty else { return nil }
            var curve = GroupCurve(group: name, members: members.count, mean: [], low: [], high: [])
            for c in checkpoints.indices {
                let with = column(nllWithContext, c), without = column(nllWithoutContext, c)
                let losses = members.map { Double(hasContext[$0] ? with[with.startIndex + $0] : without[without.startIndex + $0]) }.filter(\.isFinite)
                let e = try boot.estimate(losses)
                curve.mean.append(e.value); curve.low.append(e.interval.low); curve.high.append(e.interval.high)
            }
            return curve
        }
    }

    /// The per-example table of one checkpoint (name or step; nil: the base checkpoint) as CSV.
    public func csv(checkpoint key: String? = nil) throws -> String {
        var c = baseCheckpoint
        if let key {
            guard let i = checkpoints.firstIndex(of: key) ?? steps.firstIndex(where: { String($0) == key }) else {
                throw AnalysisError.unknownCheckpoint(path: path, name: key, available: checkpoints)
            }
            c = i
        }
        let groups = paperGroups(), q = quartiles()
        let with = Array(column(nllWithContext, c)), without = Array(column(nllWithoutContext, c)), crit = Array(column(criticality, c))
        func f(_ x: Float) -> String { x.isFinite ? String(format: "%.6g", Double(x)) : "" }
        func quote(_ s: String) -> String { s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        var out = "checkpoint,example,example_id,category,has_context,response_tokens,nll_with_context,nll_without_context,criticality,gain,group,quartile,skip_reason\n"
        for e in 0..<examples {
            let gain = with[e].isFinite && without[e].isFinite ? without[e] - with[e] : Float.nan
            out += [quote(checkpoints[c]), String(e), quote(exampleIDs[e]), quote(categories[e]), hasContext[e] ? "1" : "0", String(responseTokens[e]),
                    f(with[e]), f(without[e]), f(crit[e]), f(gain), groups[e], q[e], quote(skipReason[e])].joined(separator: ",") + "\n"
        }
        return out
    }

    /// Criticality values of one checkpoint (finite, context examples only), for histograms.
    public func criticalityValues(checkpoint c: Int) -> [Double] {
        let col = Array(column(criticality, c))
        return (0..<examples).filter { hasContext[$0] && col[$0].isFinite }.map { Double(col[$0]) }
    }
}

// Reading an attribution run (`cpiscope attribute`, HDF5Store/AttributionSchema.swift) and what a reader
// wants from it: components ranked by their mean estimate over probes with 95% bootstrap intervals, the
// estimate against the verified true effect, and the components whose estimate changed most between two
// checkpoints (by default the peak of the clean logit difference and the last checkpoint).
import Foundation
import HDF5Store

/// An attribution run's complete checkpoints.
public struct AttributionRun: Sendable {
    private typealias S = AttributionSchema
    public let path: String
    public let checkpoints: [String]
    public let steps: [Int64]
    public let probes: [String]
    public let layers: Int
    public let heads: Int
    public let baseline: String
    public let metric: String
    /// `[checkpoint, probe]`
    public let cleanLogitDiff: [Float]
    public let cleanMetric: [Float]
    /// `[checkpoint, probe]` with --generate (counterfactual correctness of the clean generation); empty otherwise.
    public let cleanCounterfactual: [UInt8]
    /// `[checkpoint, probe, layer, head]`, `[checkpoint, probe, layer]`; empty when not recorded.
    public let head: [Float]
    public let mlp: [Float]
    public let resid: [Float]
    /// Per checkpoint: the verified components, their estimates and true effects per probe.
    public let verified: [[(name: String, estimate: [Float], effect: [Float])]]

    /// Whether `url` carries `cpiscope_attribution_schema_version`.
    public static func isAttributionFile(_ url: URL) -> Bool { fileCarries(url, attribute: S.versionAttribute) }

    public init(url: URL) throws {
        let path = url.path
        self.path = path
        let file = try openVersionedFile(url, versionAttribute: S.versionAttribute, version: S.version, command: "cpiscope attribute")
        defer { try? file.close() }
        var r = FieldReader(file: file, path: path)
        let all = try r.strings(S.Dim.checkpoint), probes = try r.strings(S.Dim.probe)
        let L = try r.length(S.Dim.layer), H = try r.length(S.Dim.head)
        let C = all.count, P = probes.count
        guard (1...RunData.maxCheckpoints).contains(C), (1...RunData.maxProbes).contains(P),
              (1...RunData.maxLayers).contains(L), (1...RunData.maxHeads).contains(H) else {
            throw AnalysisError.malformedRun(path: path, field: S.Dim.checkpoint, detail: "\(C) checkpoints, \(P) probes, \(L) layers, \(H) heads: out of range")
        }
        let (cells, overflow) = C.multipliedReportingOverflow(by: P * L * H)
        guard !overflow, cells <= 1 << 31 else { throw AnalysisError.malformedRun(path: path, field: S.head.name, detail: "too large") }
        r.sizes = [S.Dim.checkpoint: C, S.Dim.probe: P, S.Dim.layer: L, S.Dim.head: H, S.Dim.span: S.spans.count]
        let allSteps = try r.int64(RunSchema.step)
        let complete = try r.uint8(S.checkpointComplete)
        let keep = (0..<C).filter { complete[$0] == 1 }
        func rows(_ v: SchemaVariable) throws -> [Float] {
            guard file.exists(v.name) else { return [] }
            let x = try r.floats(v), per = x.count / C
            return keep.flatMap { x[($0 * per)..<(($0 + 1) * per)] }
        }
        checkpoints = keep.map { all[$0] }
        steps = keep.map { allSteps[$0] }
        self.probes = probes
        layers = L
        heads = H
        cleanLogitDiff = try rows(S.cleanLogitDiff)
        cleanMetric = try rows(S.cleanMetric)
        if file.exists(S.cleanCounterfactualCorrect.name) {
            let x = try r.uint8(S.cleanCounterfactualCorrect), per = x.count / C
            cleanCounterfactual = keep.flatMap { x[($0 * per)..<(($0 + 1) * per)] }
        } else {
            cleanCounterfactual = []
        }
        head = try rows(S.head)
        mlp = try rows(S.mlp)
        resid = try rows(S.resid)
        if file.exists(S.verifiedComponent.name) {
            let K = try r.length(S.Dim.rank)
            r.sizes[S.Dim.rank] = K
            let names = try r.strings(S.verifiedComponent), est = try r.floats(S.verifiedEstimate), eff = try r.floats(S.verifiedEffect)
            verified = keep.map { c in
                (0..<K).compactMap { k -> (String, [Float], [Float])? in
                    let name = names[c * K + k]
                    guard !name.isEmpty else { return nil }
                    let o = (c * K + k) * P
                    return (name, Array(est[o..<(o + P)]), Array(eff[o..<(o + P)]))
                }.map { (name: $0.0, estimate: $0.1, effect: $0.2) }
            }
        } else {
            verified = keep.map { _ in [] }
        }
        func text(_ key: String) -> String { if case .string(let s)? = try? file.attribute(key) { return s }; return "" }
        baseline = text(S.Attribute.baseline)
        metric = text(S.Attribute.metric)
    }
}

/// One component's mean estimate over probes with its bootstrap interval.
public struct RankedComponent: Sendable {
    public var name: String
    public var estimate: Estimate
}

/// What `cpiscope attribute` and `report` show of an attribution run.
public struct AttributionAnalysis: Sendable {
    /// Per checkpoint (file order): heads and MLPs ranked by |mean estimate| (largest first).
    public var heads: [[RankedComponent]]
    public var mlps: [[RankedComponent]]
    /// Per checkpoint: Pearson and Spearman correlation of estimate and true effect over the verified
    /// (component, probe) pairs, and the pairs; NaN without --verify-top.
    public var verifiedPearson: [Double]
    public var verifiedSpearman: [Double]
    public var verifiedPairs: [[(component: String, estimate: Double, effect: Double)]]
    /// The checkpoints compared for the change (`from` default: the counterfactual-accuracy peak of a run with
    /// --generate, else the peak of the mean clean logit difference, and the first checkpoint when that peak
    /// is the last; `to`: the last), and heads ranked by |mean(to − from)| over probes, paired, with intervals.
    public var from: Int
    public var to: Int
    public var headChange: [RankedComponent]

    public init(_ run: AttributionRun, from fromName: String? = nil, bootstrap: Bootstrap) throws {
        let C = run.checkpoints.count, P = run.probes.count, L = run.layers, H = run.heads
        func names(_ n: Int, head: Bool) -> [String] { head ? (0..<n).map { "L\($0 / H)H\($0 % H)" } : (0..<n).map { "mlp\($0)" } }
        func rank(_ x: [Float], columns m: Int, head: Bool) throws -> [[RankedComponent]] {
            guard !x.isEmpty else { return Array(repeating: [], count: C) }
            return try (0..<C).map { c in
                let slice = x[(c * P * m)..<((c + 1) * P * m)].map(Double.init)
                let est = try bootstrap.means(Array(slice), probes: P, columns: m)
                return zip(names(m, head: head), est).map { RankedComponent(name: $0, estimate: $1) }
                    .enumerated().sorted { a, b in
                        let (x, y) = (abs(a.element.estimate.value), abs(b.element.estimate.value))
                        return x != y ? (x.isNaN ? false : y.isNaN ? true : x > y) : a.offset < b.offset
                    }.map(\.element)
            }
        }
        heads = try rank(run.head, columns: L * H, head: true)
        mlps = try rank(run.mlp, columns: L, head: false)
        verifiedPairs = run.verified.map { list in
            list.flatMap { v in zip(v.estimate, v.effect).filter { $0.0.isFinite && $0.1.isFinite }.map { (v.name, Double($0.0), Double($0.1)) } }
                .map { (component: $0.0, estimate: $0.1, effect: $0.2) }
        }
        verifiedPearson = verifiedPairs.map { $0.count > 2 ? Stats.pearson($0.map(\.estimate), $0.map(\.effect)) : .nan }
        verifiedSpearman = verifiedPairs.map { $0.count > 2 ? Stats.spearman($0.map(\.estimate), $0.map(\.effect)).rho : .nan }
        /// Where the context reliance peaks: counterfactual accuracy when generated, else the clean logit difference.
        let means = (0..<C).map { c in
            run.cleanCounterfactual.isEmpty ? Stats.nanMean(run.cleanLogitDiff[(c * P)..<((c + 1) * P)].map(Double.init)).mean
                : Double(run.cleanCounterfactual[(c * P)..<((c + 1) * P)].filter { $0 == 1 }.count) / Double(P)
        }
        if let f = fromName {
            guard let i = run.checkpoints.firstIndex(of: f) ?? run.steps.firstIndex(where: { String($0) == f }) else {
                throw AnalysisError.invalidOption(option: "--from", detail: "'\(f)' is none of the file's complete checkpoints (\(run.checkpoints.joined(separator: ", ")))")
            }
            from = i
        } else {
            from = means.indices.max { a, b in (means[a].isNaN ? -.infinity : means[a]) < (means[b].isNaN ? -.infinity : means[b]) } ?? 0
        }
        to = C - 1
        // The peak is the last checkpoint: the change from the first one instead (as the probe report does).
        if fromName == nil && from == to && C > 1 { from = 0 }
        if !run.head.isEmpty, from != to {
            let m = L * H
            let a = run.head[(from * P * m)..<((from + 1) * P * m)].map(Double.init), b = run.head[(to * P * m)..<((to + 1) * P * m)].map(Double.init)
            headChange = zip(names(m, head: true), try bootstrap.paired(from: a, to: b, probes: P, columns: m)).map { RankedComponent(name: $0, estimate: $1) }
                .enumerated().sorted { x, y in
                    let (p, q) = (abs(x.element.estimate.value), abs(y.element.estimate.value))
                    return p != q ? (p.isNaN ? false : q.isNaN ? true : p > q) : x.offset < y.offset
                }.map(\.element)
        } else {
            headChange = []
        }
    }
}

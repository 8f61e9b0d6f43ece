// Test support shared by AnalysisTests and ReportsTests (a library target under Tests/, not a test
// target): a synthetic probe-run writer (the layout of ProbeRun/RunFile.swift, written with
// HDF5Store: schema version 1 by default, version 2 with direct logit attribution and planted
// context / memory heads via `SyntheticRun.withDLA()`), a raw reader of the written arrays, and
// naive re-implementations of every statistic used to check the library independently.
import Analysis
import Foundation
import HDF5Store

public let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

public func tempDir(_ label: String = #function) throws -> URL {
    let safe = label.filter { $0.isLetter || $0.isNumber }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cpiscope-test-\(safe)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// Deterministic noise in [0, 1) (the GLSL "fract(sin(x) * 43758.5453)" hash; data generation only).
public func noise(_ parts: Int...) -> Double {
    var x = 0.0
    for (i, p) in parts.enumerated() { x += Double(p) * [12.9898, 78.233, 37.719, 4.581, 93.989][i % 5] }
    let v = sin(x + 0.5) * 43758.5453
    return v - v.rounded(.down)
}

/// A probe run built from formulas. Defaults: an inversion of counterfactual accuracy.
public struct SyntheticRun {
    public init() {}
    public var checkpoints = ["checkpoint-0", "checkpoint-100", "checkpoint-200", "checkpoint-300", "checkpoint-400", "checkpoint-500"]
    public var steps: [Int64] = [0, 100, 200, 300, 400, 500]
    public var probes = (0..<16).map { "probe-\($0)" }
    public var spans = ["context", "subject", "question", "context_answer", "memory_mention", "bos", "other"]
    public var layers = 3
    public var heads = 4
    public var complete: [UInt8]? = nil
    public var schemaVersion: Int64? = 1
    /// Fraction of probes counterfactual-correct per checkpoint (k/P exactly).
    public var accuracy: [Double] = [0.125, 0.5, 0.875, 0.875, 0.5, 0.25]
    public var spanFound: (Int, Int) -> UInt8 = { p, s in
        if s == 1 && p % 5 == 3 { return 0 }   // subject missing for probes 3, 8, 13
        if s == 0 && p == 7 { return 0 }       // context missing for probe 7
        return 1
    }
    public var mass: (Int, Int, Int, Int, Int) -> Float = { c, p, s, l, h in
        let bump = [0.0, 0.1, 0.2, 0.2, 0.1, 0.0][c % 6]
        var v = 0.1 + 0.05 * Double(l) + 0.02 * Double(h) + 0.05 * noise(c, p, s, l, h)
        if s == 0 { v += bump * (1 + Double(l)) / 2 }
        if s == 0 && l == 2 && h == 1 { v += 0.3 * Double(c) / 5 }   // one head that keeps rising
        if s == 1 { v = 0.05 + 0.1 * noise(p, l, h, c) }
        return Float(min(max(v, 0), 1))
    }
    public var mc: (Int, Int, Int) -> Float = { c, p, ll in
        if c == 1 && p == 2 && ll == 0 { return .nan }
        return Float(0.2 + 0.1 * Double(ll) + 0.3 * noise(c, p, ll))
    }

    /// Direct logit attribution, written when `schemaVersion` is 2 (see `withDLA`). `[c, p, l, h]`;
    /// NaN for a probe whose answers have no first token.
    public var headDLA: (Int, Int, Int, Int) -> Float = { c, p, l, h in
        if p == 5 { return .nan }                                                       // no answer token
        let acc = [0.125, 0.5, 0.875, 0.875, 0.5, 0.25][c % 6]
        switch (l, h) {
        case (2, 1): return Float(4 * acc + 0.3 * noise(c, p, 11))                    // context head, follows accuracy
        case (1, 3): return Float(-1 - 0.3 * Double(c) + 0.2 * noise(c, p, 13))       // memory head, growing
        case (0, 2): return Float(1.5 - 0.6 * Double(c) + 0.1 * noise(c, p, 17))      // context → memory
        default: return Float(0.1 * (noise(c, p, l, h, 19) - 0.5))
        }
    }
    /// `[c, p, l]`.
    public var mlpDLA: (Int, Int, Int) -> Float = { c, p, l in p == 5 ? .nan : Float(0.5 - 0.2 * Double(l) + 0.1 * noise(c, p, l, 23)) }
    /// Share of a head's DLA that comes from span s (before NaN-ing spans not found): L2H1 mostly
    /// from the context, L1H3 mostly from the subject, the rest evenly.
    public var dlaSpanShare: (Int, Int, Int) -> Double = { s, l, h in
        let S = 7.0
        if l == 2 && h == 1 { return s == 0 ? 0.8 : 0.2 / (S - 1) }
        if l == 1 && h == 3 { return s == 1 ? 0.7 : 0.3 / (S - 1) }
        return 1 / S
    }

    /// This run as schema version 2 with direct logit attribution.
    public func withDLA() -> SyntheticRun {
        var s = self
        s.schemaVersion = 2
        return s
    }

    /// Components of probe p at checkpoint c: embed, attention bias, norm bias, remainder.
    public func otherDLA(_ c: Int, _ p: Int) -> [Float] {
        p == 5 ? [.nan, .nan, .nan, .nan] : [Float(0.2 * noise(c, p, 29)), 0.05, 0, Float(1e-4 * noise(c, p, 31))]
    }

    /// logit_diff: the sum of every component (in Double, then rounded).
    public func logitDiff(_ c: Int, _ p: Int) -> Float {
        var t = otherDLA(c, p).reduce(0.0) { $0 + Double($1) }
        for l in 0..<layers {
            t += Double(mlpDLA(c, p, l))
            for h in 0..<heads { t += Double(headDLA(c, p, l, h)) }
        }
        return Float(t)
    }

    /// Variables not written (to test a malformed file), and one written with the wrong dims.
    public var omit: Set<String> = []
    public var misshapen: String? = nil

    public var lensLayers: Int { layers + 1 }

    public func correct(_ c: Int, _ p: Int) -> UInt8 {
        let k = Int((accuracy[c] * Double(probes.count)).rounded())
        return (p * 7 + c * 3) % probes.count < k ? 1 : 0
    }

    /// Writes the run file: every variable of the schema (HDF5Store/RunSchema.swift) that a probe job of
    /// this version writes, with synthetic values where the analyses read them (the rest stay fill values).
    public func write(to url: URL) throws {
        typealias V = RunSchema
        typealias Dim = RunSchema.Dim
        let f = try HDF5File.create(at: url, overwrite: true)
        let C = checkpoints.count, P = probes.count, S = spans.count, L = layers, H = heads, LL = lensLayers
        try f.createDimension(Dim.checkpoint, strings: checkpoints)
        try f.createCoordinate(V.step.name, along: Dim.checkpoint, ints: steps)
        try f.createDimension(Dim.probe, strings: probes)
        try f.createDimension(Dim.span, strings: spans)
        try f.createDimension(Dim.layer, ints: (0..<L).map(Int64.init))
        try f.createDimension(Dim.head, ints: (0..<H).map(Int64.init))
        try f.createDimension(Dim.lensLayer, ints: (0..<LL).map(Int64.init))
        try f.createDimension(Dim.answer, strings: RunSchema.answers)
        /// Creates `v` (unless omitted; misshapen drops its first dimension); true when its values are to be written.
        func define(_ v: SchemaVariable) throws -> Bool {
            guard !omit.contains(v.name) else { return false }
            try f.createVariable(v.name, type: v.type, dims: misshapen == v.name ? Array(v.dims.dropFirst()) : v.dims)
            return misshapen != v.name
        }
        let text: [SchemaVariable: [String]] = [
            V.prompt: probes.map { "Context: about \($0)\nQuestion: q?\nAnswer:" }, V.context: probes.map { "about \($0)" },
            V.question: probes.map { _ in "q?" }, V.contextAnswer: probes.map { "ctx-\($0)" }, V.memoryAnswer: probes.map { "mem-\($0)" },
            V.subject: probes.map { "subj-\($0)" }, V.subjectSource: probes.map { _ in "given" }]
        for v in V.perProbe where try define(v) {
            switch v {
            case V.promptTokens: try f.write(v.name, ints32: probes.map { _ in 12 })
            case V.spanFound: try f.write(v.name, uint8: (0..<P).flatMap { p in (0..<S).map { spanFound(p, $0) } })
            default: if let values = text[v] { try f.write(v.name, strings: values) }
            }
        }
        let dla = (schemaVersion ?? 1) >= 2
        // Per checkpoint: the synthetic values of one checkpoint's slab.
        var floats: [SchemaVariable: (Int) -> [Float]] = [
            V.attentionMass: { c in
                var m: [Float] = []
                for p in 0..<P { for s in 0..<S { for l in 0..<L { for h in 0..<H {
                    m.append(spanFound(p, s) == 1 ? mass(c, p, s, l, h) : .nan)
                } } } }
                return m
            },
            V.mcRatio: { c in (0..<P).flatMap { p in (0..<LL).map { mc(c, p, $0) } } },
            V.lensLogprob: { c in (0..<P).flatMap { p in (0..<2).flatMap { a in (0..<LL).map { Float(-1 - Double(a) - noise(c, p, a, $0)) } } } },
        ]
        if dla {
            floats[V.logitDiff] = { c in (0..<P).map { logitDiff(c, $0) } }
            floats[V.headDLA] = { c in (0..<P).flatMap { p in (0..<L).flatMap { l in (0..<H).map { headDLA(c, p, l, $0) } } } }
            floats[V.headDLABySpan] = { c in (0..<P).flatMap { p in (0..<S).flatMap { s in (0..<L).flatMap { l in (0..<H).map { h in
                spanFound(p, s) == 1 ? Float(Double(headDLA(c, p, l, h)) * dlaSpanShare(s, l, h)) : .nan } } } } }
            floats[V.mlpDLA] = { c in (0..<P).flatMap { p in (0..<L).map { mlpDLA(c, p, $0) } } }
            for (k, v) in V.dlaOthers.enumerated() { floats[v] = { c in (0..<P).map { otherDLA(c, $0)[k] } } }
            try f.setAttribute(V.Attribute.dlaDefinition, .string("synthetic direct logit attribution"))
        }
        let bytes: [SchemaVariable: (Int) -> [UInt8]] = [
            V.counterfactualCorrect: { c in (0..<P).map { correct(c, $0) } },
            V.parametricCorrect: { c in (0..<P).map { 1 - correct(c, $0) * UInt8(($0 % 2)) } },
            V.checkpointComplete: { _ in [1] },
        ]
        let strings: [SchemaVariable: (Int) -> [String]] = [V.generated: { c in (0..<P).map { "gen \(c) \($0)" } }]
        var written: [SchemaVariable] = []
        for v in V.measurements + (dla ? V.dla : []) + V.perCheckpoint where try define(v) { written.append(v) }
        let done = complete ?? [UInt8](repeating: 1, count: C)
        for c in 0..<C where done[c] == 1 {
            for v in written {  // checkpoint_complete is the schema's last: written after the data
                if let values = floats[v] { try f.writeSlab(v.name, index: c, floats: values(c)) }
                if let values = bytes[v] { try f.writeSlab(v.name, index: c, uint8: values(c)) }
                if let values = strings[v] { try f.writeSlab(v.name, index: c, strings: values(c)) }
            }
        }
        if let v = schemaVersion { try f.setAttribute(V.Attribute.version, .int(v)) }
        try f.setAttribute(V.Attribute.complete, .int(done.allSatisfy { $0 == 1 } ? 1 : 0))
        try f.setAttribute(V.Attribute.templateName, .string("plain"))
        try f.close()
    }
}

/// The run's arrays as written, read back with HDF5Store only (no Analysis code).
public struct Raw {
    public let C: Int, P: Int, S: Int, L: Int, H: Int, LL: Int
    public let mass: [Float], mc: [Float], cf: [UInt8], pf: [UInt8], complete: [UInt8]
    public let steps: [Int64], names: [String], probes: [String]
    /// `[checkpoint, probe, answer, lens_layer]` and `[checkpoint, probe]`.
    public let logprob: [Float], generated: [String]
    /// Direct logit attribution as written (empty for version 1): `[c, p, l, h]`, `[c, p, s, l, h]`, `[c, p, l]`, `[c, p]`.
    public let headDLA: [Float], headDLABySpan: [Float], mlpDLA: [Float], logitDiff: [Float]

    public init(_ url: URL) throws {
        let f = try HDF5File.open(at: url, writable: false)
        defer { try? f.close() }
        typealias V = RunSchema
        let m = try f.readFloats(V.attentionMass.name)
        (C, P, S, L, H) = (m.shape[0], m.shape[1], m.shape[2], m.shape[3], m.shape[4])
        mass = m.values
        let r = try f.readFloats(V.mcRatio.name)
        LL = r.shape[2]; mc = r.values
        cf = try f.readUInt8(V.counterfactualCorrect.name).values
        pf = try f.readUInt8(V.parametricCorrect.name).values
        complete = try f.readUInt8(V.checkpointComplete.name).values
        steps = try f.readInt64(V.step.name).values
        names = try f.readStrings(V.Dim.checkpoint).values
        probes = try f.readStrings(V.Dim.probe).values
        logprob = try f.readFloats(V.lensLogprob.name).values
        generated = try f.readStrings(V.generated.name).values
        if (try? f.shape(of: V.headDLA.name)) != nil {
            headDLA = try f.readFloats(V.headDLA.name).values
            headDLABySpan = try f.readFloats(V.headDLABySpan.name).values
            mlpDLA = try f.readFloats(V.mlpDLA.name).values
            logitDiff = try f.readFloats(V.logitDiff.name).values
        } else {
            headDLA = []; headDLABySpan = []; mlpDLA = []; logitDiff = []
        }
    }

    /// head_dla[c, p, l, h] (version-2 runs).
    public func dla(_ c: Int, _ p: Int, _ l: Int, _ h: Int) -> Double { Double(headDLA[((c * P + p) * L + l) * H + h]) }
    /// head_dla_by_span[c, p, s, l, h].
    public func dlaSpan(_ c: Int, _ p: Int, _ s: Int, _ l: Int, _ h: Int) -> Double {
        Double(headDLABySpan[(((c * P + p) * S + s) * L + l) * H + h])
    }

    public func m(_ c: Int, _ p: Int, _ s: Int, _ l: Int, _ h: Int) -> Double {
        Double(mass[(((c * P + p) * S + s) * L + l) * H + h])
    }

    /// Per-probe context (s = 0) or subject (s = 1) attention averaged over all finite (l, h).
    public func overall(_ c: Int, _ p: Int, _ s: Int) -> Double {
        var t = 0.0, n = 0
        for l in 0..<L { for h in 0..<H where m(c, p, s, l, h).isFinite { t += m(c, p, s, l, h); n += 1 } }
        return n == 0 ? .nan : t / Double(n)
    }

    public func layerMean(_ c: Int, _ p: Int, _ s: Int, _ l: Int) -> Double {
        var t = 0.0, n = 0
        for h in 0..<H where m(c, p, s, l, h).isFinite { t += m(c, p, s, l, h); n += 1 }
        return n == 0 ? .nan : t / Double(n)
    }
}

/// Mean of the finite values, written as a plain loop.
public func naiveMean(_ xs: [Double]) -> Double {
    var t = 0.0, n = 0
    for x in xs where !x.isNaN { t += x; n += 1 }
    return n == 0 ? .nan : t / Double(n)
}

/// Type-7 percentile of unsorted values, written independently of Stats.quantile.
public func naivePercentile(_ xs: [Double], _ q: Double) -> Double {
    let s = xs.sorted()
    let pos = q * Double(s.count - 1)
    let i = Int(floor(pos))
    if i + 1 >= s.count { return s[s.count - 1] }
    return s[i] * (1 - (pos - Double(i))) + s[i + 1] * (pos - Double(i))
}

/// The paired bootstrap as documented, with plain loops: (mean, low, high, n).
public func naivePairedBootstrap(from a: [Double], to b: [Double], seed: UInt64, resamples: Int) -> (Double, Double, Double, Int) {
    var d: [Double] = []
    for i in 0..<a.count where a[i].isFinite && b[i].isFinite { d.append(b[i] - a[i]) }
    if d.isEmpty { return (.nan, .nan, .nan, 0) }
    var rng = Xoshiro256StarStar(seed: seed)
    var means: [Double] = []
    for _ in 0..<resamples {
        var t = 0.0
        for _ in 0..<d.count { t += d[rng.index(below: d.count)] }
        means.append(t / Double(d.count))
    }
    return (d.reduce(0, +) / Double(d.count), naivePercentile(means, 0.025), naivePercentile(means, 0.975), d.count)
}

/// The bootstrap of a ratio of means as documented (docs/interventions.md), with plain loops: the probes
/// where a and b are both finite; resample r draws the same indices as every other statistic over n
/// probes and takes Σ a / Σ b over them (0/0 dropped); (Σa / Σb, low, high, n).
public func naiveRatioBootstrap(_ a: [Double], _ b: [Double], seed: UInt64, resamples: Int) -> (Double, Double, Double, Int) {
    var x: [Double] = [], y: [Double] = []
    for i in 0..<a.count where a[i].isFinite && b[i].isFinite { x.append(a[i]); y.append(b[i]) }
    if x.isEmpty { return (.nan, .nan, .nan, 0) }
    var rng = Xoshiro256StarStar(seed: seed)
    var ratios: [Double] = []
    for _ in 0..<resamples {
        var sa = 0.0, sb = 0.0
        for _ in 0..<x.count { let k = rng.index(below: x.count); sa += x[k]; sb += y[k] }
        let q = (sa / Double(x.count)) / (sb / Double(x.count))
        if !q.isNaN { ratios.append(q) }
    }
    let value = (x.reduce(0, +) / Double(x.count)) / (y.reduce(0, +) / Double(y.count))
    return (value, naivePercentile(ratios, 0.025), naivePercentile(ratios, 0.975), x.count)
}

/// Average ranks by counting: rank_i = 1 + #{x_j < x_i} + (#{x_j == x_i} − 1) / 2.
public func countingRanks(_ x: [Double]) -> [Double] {
    x.map { v in 1 + Double(x.filter { $0 < v }.count) + Double(x.filter { $0 == v }.count - 1) / 2 }
}

public func naiveSpearman(_ x: [Double], _ y: [Double]) -> Double {
    var xs: [Double] = [], ys: [Double] = []
    for i in 0..<x.count where x[i].isFinite && y[i].isFinite { xs.append(x[i]); ys.append(y[i]) }
    let rx = countingRanks(xs), ry = countingRanks(ys)
    let n = Double(rx.count)
    let mx = rx.reduce(0, +) / n, my = ry.reduce(0, +) / n
    var num = 0.0, dx = 0.0, dy = 0.0
    for i in 0..<rx.count { num += (rx[i] - mx) * (ry[i] - my); dx += pow(rx[i] - mx, 2); dy += pow(ry[i] - my, 2) }
    return num / sqrt(dx * dy)
}

/// |a − b| with NaN == NaN as 0 and NaN vs number as +inf.
public func gap(_ a: Double, _ b: Double) -> Double {
    if a.isNaN && b.isNaN { return 0 }
    if a.isNaN || b.isNaN { return .infinity }
    return abs(a - b)
}

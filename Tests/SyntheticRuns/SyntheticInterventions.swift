// A synthetic `cpiscope intervene` file (the layout of ProbeRun/InterventionFile.swift and
// docs/interventions.md, written with HDF5Store) with planted effects, and a raw reader of its arrays
// for recomputing every number without Analysis code. Planted, on top of small noise:
//   ablate     L2H1 lowers the logit difference by 2 (a context head), L1H3 raises it by 1 (a memory head)
//   transplant attn.ov of layer 1 from checkpoint-50 raises counterfactual accuracy most at the final
//              checkpoint (+0.5) and M_C by 0.3; mlp of layer 2 lowers M_C by 0.2
//   knockout   blocking the context in layer 1 lowers the logit difference by 3; the subject span is
//              missing in probe 3 (NaN there)
//   patch      head L2H1 recovers 0.8 of the logit difference, block output of layer 2 recovers 0.9: the
//              source's logit difference is the clean one plus 1.5–2.5, except probe 0 where source and
//              target tie (and `nearTie`, where they differ by 1e-4 while the patch still moves 0.5)
import Foundation
import HDF5Store

public struct SyntheticInterventions {
    public init() {}

    public struct Entry: Sendable {
        public var name: String, kind: String, layer: Int, head: Int, component: String, source: String
        /// Every layer acted on (`intervention_layers`).
        public var layers: [Int] = []
    }

    public var checkpoints = ["checkpoint-100", "checkpoint-200"]
    public var steps: [Int64] = [100, 200]
    public var probes = (0..<12).map { "probe-\($0)" }
    public var layers = 3
    public var heads = 4
    /// Kinds written (in this order in the file).
    public var kinds = ["ablate", "transplant", "knockout", "patch"]
    public var generate = true
    public var complete: [UInt8]? = nil
    public var schemaVersion: Int64? = 1
    /// Variables not written, one written with the wrong dims, and a value replacing every `intervention_kind`.
    public var omit: Set<String> = []
    public var misshapen: String? = nil
    public var badKind: String? = nil
    /// A probe whose source and target logit differences differ by only 1e-4 while every patch moves
    /// the logit difference by 0.5 (a per-probe ratio of 5000).
    public var nearTie: Int? = nil
    /// The heads ablated and patched in each layer (nil = every head), and whether the file records the
    /// model's config.json (its layer and head counts) in `model_config`.
    public var headSubset: [Int]? = nil
    public var modelConfig = true

    /// The interventions, named as Experiments.swift names them.
    public var entries: [Entry] {
        var out: [Entry] = []
        let L = layers, H = heads
        for kind in kinds {
            switch kind {
            case "ablate":
                for l in 0..<L { for h in headSubset ?? Array(0..<H) { out.append(Entry(name: "ablate L\(l)H\(h) zero", kind: kind, layer: l, head: h, component: "z", source: "", layers: [l])) } }
                for l in 0..<L { out.append(Entry(name: "ablate mlp_out L\(l) zero", kind: kind, layer: l, head: -1, component: "mlp_out", source: "", layers: [l])) }
            case "transplant":
                for c in ["attn.qk", "attn.ov", "mlp"] {
                    for l in 0..<L { out.append(Entry(name: "transplant \(c) L\(l) from checkpoint-50", kind: kind, layer: l, head: -1, component: c, source: "checkpoint-50", layers: [l])) }
                }
            case "knockout":
                for l in 0..<L { out.append(Entry(name: "knockout context L\(l)", kind: kind, layer: l, head: -1, component: "context", source: "", layers: [l])) }
                // Every layer at once (the report draws it as its own bar, not at the centre layer).
                out.append(Entry(name: "knockout subject L0-\(L - 1)", kind: kind, layer: -1, head: -1, component: "subject", source: "", layers: Array(0..<L)))
            case "patch":
                for l in 0..<L { for h in headSubset ?? Array(0..<H) {
                    out.append(Entry(name: "patch z L\(l)H\(h) answer from checkpoint-50", kind: kind, layer: l, head: h, component: "z", source: "checkpoint-50", layers: [l]))
                } }
                for l in 0..<L { out.append(Entry(name: "patch resid_post L\(l) answer from checkpoint-50", kind: kind, layer: l, head: -1, component: "resid_post", source: "checkpoint-50", layers: [l])) }
            default: break
            }
        }
        return out
    }

    public func cleanLogitDiff(_ c: Int, _ p: Int) -> Float { Float(1 + 0.5 * Double(c) + noise(c, p, 1)) }
    public func cleanMC(_ c: Int, _ p: Int) -> Float { Float(0.4 + 0.2 * noise(c, p, 2)) }
    public func cleanCF(_ c: Int, _ p: Int) -> UInt8 { noise(c, p, 3) < 0.4 ? 1 : 0 }

    /// The planted change of the logit difference and of M_C, and the probability of a counterfactual-correct answer.
    func planted(_ e: Entry, _ c: Int) -> (Double, Double, Double) {
        let final = c == checkpoints.count - 1
        switch (e.kind, e.component, e.layer, e.head) {
        case ("ablate", "z", 2, 1): return (-2, -0.2, 0.1)
        case ("ablate", "z", 1, 3): return (1, 0.1, 0.5)
        case ("transplant", "attn.ov", 1, _): return (1.5, 0.3, final ? 0.9 : 0.6)
        case ("transplant", "mlp", 2, _): return (-0.5, -0.2, 0.3)
        case ("knockout", "context", 1, _): return (-3, -0.3, 0.05)
        default: return (0, 0, 0.4)
        }
    }

    /// The planted share of the source − target gap that patch `e` recovers for probe p.
    func plantedRecovery(_ e: Entry, _ c: Int, _ p: Int) -> Double {
        switch (e.component, e.layer, e.head) {
        case ("z", 2, 1): return 0.8 + 0.1 * (noise(c, p, 5) - 0.5)
        case ("resid_post", 2, _): return 0.9 + 0.1 * (noise(c, p, 6) - 0.5)
        default: return 0.05 * (noise(c, p, e.layer, e.head, 7) - 0.5)
        }
    }

    /// The patch source's logit difference for probe p (the same for every patch, as one source is patched from).
    public func sourceLogitDiff(_ c: Int, _ p: Int) -> Double {
        let clean = Double(cleanLogitDiff(c, p))
        if p == 0 { return clean }                                          // source and target tie for probe 0
        if p == nearTie { return clean + 1e-4 }
        return clean + 1.5 + noise(c, p, 15)
    }

    /// patch_recovery as InterventionJob stores it: (patched − target) / (source − target), per probe.
    public func recovery(_ i: Int, _ c: Int, _ p: Int) -> Float {
        guard entries[i].kind == "patch" else { return .nan }
        return Float((Double(logitDiff(i, c, p)) - Double(cleanLogitDiff(c, p))) / (Double(Float(sourceLogitDiff(c, p))) - Double(cleanLogitDiff(c, p))))
    }

    /// `[i]` intervened values of probe p at checkpoint c; NaN for the subject knockout of probe 3.
    public func logitDiff(_ i: Int, _ c: Int, _ p: Int) -> Float {
        let e = entries[i]
        if e.kind == "knockout" && e.component == "subject" && p == 3 { return .nan }
        let clean = Double(cleanLogitDiff(c, p))
        if e.kind == "patch" {
            if p == nearTie { return Float(clean + 0.5) }
            return Float(clean + plantedRecovery(e, c, p) * (sourceLogitDiff(c, p) - clean) + 0.02 * (noise(i, c, p, 8) - 0.5))
        }
        return Float(clean + planted(e, c).0 + 0.4 * (noise(i, c, p, 8) - 0.5))
    }

    public func mc(_ i: Int, _ c: Int, _ p: Int) -> Float {
        let e = entries[i]
        if e.kind == "knockout" && e.component == "subject" && p == 3 { return .nan }
        return Float(min(1, max(0, Double(cleanMC(c, p)) + planted(e, c).1 + 0.05 * (noise(i, c, p, 9) - 0.5))))
    }

    public func cf(_ i: Int, _ c: Int, _ p: Int) -> UInt8 { noise(i, c, p, 10) < planted(entries[i], c).2 ? 1 : 0 }

    /// Writes the file as InterventionJob writes it: every variable of the schema (HDF5Store/InterventionSchema.swift,
    /// `InterventionSchema`), with synthetic values.
    public func write(to url: URL) throws {
        typealias S = InterventionSchema
        typealias Dim = InterventionSchema.Dim
        let f = try HDF5File.create(at: url, overwrite: true)
        let list = entries, C = checkpoints.count, P = probes.count, I = list.count
        try f.createDimension(Dim.checkpoint, strings: checkpoints)
        try f.createCoordinate(RunSchema.step.name, along: Dim.checkpoint, ints: steps)
        try f.createDimension(Dim.probe, strings: probes)
        try f.createDimension(Dim.intervention, strings: list.map(\.name))
        try f.createDimension(Dim.answer, strings: RunSchema.answers)
        /// Creates `v` (unless omitted; misshapen drops its first dimension); true when its values are to be written.
        func define(_ v: SchemaVariable) throws -> Bool {
            guard !omit.contains(v.name) else { return false }
            try f.createVariable(v.name, type: v.type, dims: misshapen == v.name ? Array(v.dims.dropFirst()) : v.dims)
            return misshapen != v.name
        }
        let text: [SchemaVariable: [String]] = [S.kind: list.map { badKind ?? $0.kind }, S.component: list.map(\.component),
                                                S.source: list.map(\.source), S.layerList: list.map { $0.layers.map(String.init).joined(separator: ",") }]
        for v in S.perInterventionText where try define(v) { try f.write(v.name, strings: text[v, default: []]) }
        let index: [SchemaVariable: [Int32]] = [S.layer: list.map { Int32($0.layer) }, S.head: list.map { Int32($0.head) }]
        for v in S.perInterventionIndex where try define(v) { try f.write(v.name, ints32: index[v, default: []]) }
        // Per checkpoint: the synthetic values of one checkpoint's slab.
        let floats: [SchemaVariable: (Int) -> [Float]] = [
            S.cleanLogitDiff: { c in (0..<P).map { cleanLogitDiff(c, $0) } },
            S.cleanMC: { c in (0..<P).map { cleanMC(c, $0) } },
            S.cleanAnswerLoglik: { c in (0..<P).flatMap { p in [Float(-1 - noise(c, p, 11)), Float(-2 - noise(c, p, 12))] } },
            S.logitDiff: { c in (0..<I).flatMap { i in (0..<P).map { logitDiff(i, c, $0) } } },
            S.mc: { c in (0..<I).flatMap { i in (0..<P).map { mc(i, c, $0) } } },
            S.answerLoglik: { c in (0..<(I * P)).flatMap { k in [Float(-1 - noise(c, k, 13)), Float(-2 - noise(c, k, 14))] } },
            S.patchRecovery: { c in (0..<I).flatMap { i in (0..<P).map { recovery(i, c, $0) } } },
            S.sourceLogitDiff: { c in (0..<I).flatMap { i in (0..<P).map { list[i].kind == "patch" ? Float(sourceLogitDiff(c, $0)) : .nan } } },
        ]
        let bytes: [SchemaVariable: (Int) -> [UInt8]] = [
            S.cleanCounterfactualCorrect: { c in (0..<P).map { cleanCF(c, $0) } },
            S.counterfactualCorrect: { c in (0..<I).flatMap { i in (0..<P).map { cf(i, c, $0) } } },
            S.cleanParametricCorrect: { c in (0..<P).map { 1 - cleanCF(c, $0) } },
            S.parametricCorrect: { c in (0..<I).flatMap { i in (0..<P).map { 1 - cf(i, c, $0) } } },
            S.checkpointComplete: { _ in [1] },
        ]
        let strings: [SchemaVariable: (Int) -> [String]] = [
            S.cleanGenerated: { c in (0..<P).map { "gen \(c) \($0)" } },
            S.generated: { c in (0..<(I * P)).map { "gen \(c) \($0)" } },
        ]
        var written: [SchemaVariable] = []
        for v in S.measurements + (generate ? S.cleanGeneration + S.intervenedGeneration : []) + [S.checkpointComplete] where try define(v) {
            written.append(v)
        }
        let done = complete ?? [UInt8](repeating: 1, count: C)
        for c in 0..<C where done[c] == 1 {
            for v in written {  // checkpoint_complete last, after the data
                if let values = floats[v] { try f.writeSlab(v.name, index: c, floats: values(c)) }
                if let values = bytes[v] { try f.writeSlab(v.name, index: c, uint8: values(c)) }
                if let values = strings[v] { try f.writeSlab(v.name, index: c, strings: values(c)) }
            }
        }
        typealias A = RunSchema.Attribute
        if let v = schemaVersion { try f.setAttribute(S.versionAttribute, .int(v)) }
        try f.setAttribute(S.Attribute.generate, .int(generate ? 1 : 0))
        try f.setAttribute(A.complete, .int(done.allSatisfy { $0 == 1 } ? 1 : 0))
        try f.setAttribute(A.templateName, .string("plain"))
        try f.setAttribute(A.modelType, .string("gpt2"))
        if modelConfig {
            try f.setAttribute(A.modelConfig, .string("{\"model_type\": \"gpt2\", \"n_layer\": \(layers), \"n_head\": \(heads), \"n_embd\": 32}"))
        }
        try f.close()
    }
}

/// An intervention file's arrays as written, read back with HDF5Store only (no Analysis code).
public struct RawInterventions {
    public let C: Int, P: Int, I: Int
    public let checkpoints: [String], names: [String], kinds: [String]
    public let clean: [Float], cleanMC: [Float], diff: [Float], mc: [Float], recovery: [Float]
    /// `source_logit_diff` (empty when the file has none).
    public let source: [Float]
    /// Empty without generations.
    public let cleanCF: [UInt8], cf: [UInt8]

    public init(_ url: URL) throws {
        let f = try HDF5File.open(at: url, writable: false)
        defer { try? f.close() }
        typealias S = InterventionSchema
        checkpoints = try f.readStrings(S.Dim.checkpoint).values
        names = try f.readStrings(S.Dim.intervention).values
        kinds = try f.readStrings(S.kind.name).values
        let d = try f.readFloats(S.logitDiff.name)
        (C, I, P) = (d.shape[0], d.shape[1], d.shape[2])
        diff = d.values
        clean = try f.readFloats(S.cleanLogitDiff.name).values
        cleanMC = try f.readFloats(S.cleanMC.name).values
        mc = try f.readFloats(S.mc.name).values
        recovery = try f.readFloats(S.patchRecovery.name).values
        source = f.exists(S.sourceLogitDiff.name) ? try f.readFloats(S.sourceLogitDiff.name).values : []
        if (try? f.shape(of: S.counterfactualCorrect.name)) != nil {
            cleanCF = try f.readUInt8(S.cleanCounterfactualCorrect.name).values
            cf = try f.readUInt8(S.counterfactualCorrect.name).values
        } else {
            cleanCF = []; cf = []
        }
    }

    /// Per probe, of a patch i at checkpoint c: (patched − target, source − target) of the logit difference,
    /// the numerator and denominator of the recovery's ratio of means.
    public func recoveryTerms(_ c: Int, _ i: Int) -> ([Double], [Double]) {
        let base = (c * I + i) * P
        return ((0..<P).map { Double(diff[base + $0]) - Double(clean[c * P + $0]) },
                (0..<P).map { Double(source[base + $0]) - Double(clean[c * P + $0]) })
    }

    /// Per probe, (clean, intervened) of intervention i at checkpoint c for a measure: logit_diff, mc or cf.
    public func pair(_ measure: String, _ c: Int, _ i: Int) -> ([Double], [Double]) {
        let base = (c * I + i) * P
        let row = (0..<P)
        switch measure {
        case "mc": return (row.map { Double(cleanMC[c * P + $0]) }, row.map { Double(mc[base + $0]) })
        case "cf": return (row.map { Double(cleanCF[c * P + $0]) }, row.map { Double(cf[base + $0]) })
        default: return (row.map { Double(clean[c * P + $0]) }, row.map { Double(diff[base + $0]) })
        }
    }
}

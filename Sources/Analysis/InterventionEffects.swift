// The effect of each intervention in a `cpiscope intervene` file (docs/interventions.md): per checkpoint
// and intervention, the mean change from the clean model over probes, with a paired bootstrap interval
// (Statistics.swift), of the logit difference, M_C and (with --generate) counterfactual accuracy, and
// the mean patch recovery. NaN values (a span missing in a probe) are left out, probe by probe.
import Foundation
import HDF5Store

/// One intervention at one checkpoint.
public struct InterventionEffect: Sendable {
    public let checkpoint: String
    public let name: String
    public let kind: String
    public let layer: Int
    public let head: Int
    public let component: String
    public let source: String
    /// intervened − clean, over probes.
    public let logitDiffChange: Estimate
    public let mcChange: Estimate
    /// nil without --generate.
    public let counterfactualChange: Estimate?
    /// Mean patch recovery (NaN for other kinds).
    public let recovery: Double
}

public enum InterventionEffects {
    /// Reads an intervention file and computes every effect. - Throws: `notARun` for another kind of file.
    public static func analyze(_ url: URL, seed: UInt64 = 0, resamples: Int = 2000) throws -> [InterventionEffect] {
        let file: HDF5File
        do { file = try HDF5File.open(at: url, writable: false) } catch {
            throw AnalysisError.cannotOpen(path: url.path, reason: "\(error)")
        }
        defer { try? file.close() }
        guard case .int(1)? = try? file.attribute("cpiscope_intervention_schema_version") else {
            throw AnalysisError.notARun(path: url.path, detail: "no cpiscope_intervention_schema_version attribute (not a `cpiscope intervene` file)")
        }
        let r = FieldReader(file: file, path: url.path)
        let checkpoints = try r.strings("checkpoint"), probes = try r.strings("probe"), names = try r.strings("intervention")
        let C = checkpoints.count, P = probes.count, I = names.count
        let kinds = try r.strings("intervention_kind", [I]), components = try r.strings("intervention_component", [I])
        let sources = try r.strings("intervention_source", [I])
        let layers = try r.wrap("intervention_layer") { try file.readInts32("intervention_layer").values }
        let heads = try r.wrap("intervention_head") { try file.readInts32("intervention_head").values }
        let complete = try r.uint8("checkpoint_complete", [C])
        let clean = try r.floats("clean_logit_diff", [C, P]), cleanMC = try r.floats("clean_mc", [C, P])
        let diff = try r.floats("intervened_logit_diff", [C, I, P]), mc = try r.floats("intervened_mc", [C, I, P])
        let recovery = try r.floats("patch_recovery", [C, I, P])
        let generated = (try? file.shape(of: "intervened_counterfactual_correct")) != nil
        let cleanCF = generated ? try r.uint8("clean_counterfactual_correct", [C, P]) : []
        let cf = generated ? try r.uint8("intervened_counterfactual_correct", [C, I, P]) : []
        let bootstrap = try Bootstrap(seed: seed, resamples: resamples)
        var out: [InterventionEffect] = []
        for c in 0..<C where complete[c] == 1 {
            for i in 0..<I {
                func paired(_ a: (Int) -> Double, _ b: (Int) -> Double) throws -> Estimate {
                    try bootstrap.paired(from: (0..<P).map(a), to: (0..<P).map(b))
                }
                let base = (c * I + i) * P
                let rec = Stats.nanMean((0..<P).map { Double(recovery[base + $0]) }).mean
                out.append(InterventionEffect(
                    checkpoint: checkpoints[c], name: names[i], kind: kinds[i], layer: Int(layers[i]), head: Int(heads[i]),
                    component: components[i], source: sources[i],
                    logitDiffChange: try paired({ Double(clean[c * P + $0]) }, { Double(diff[base + $0]) }),
                    mcChange: try paired({ Double(cleanMC[c * P + $0]) }, { Double(mc[base + $0]) }),
                    counterfactualChange: generated ? try paired({ Double(cleanCF[c * P + $0]) }, { Double(cf[base + $0]) }) : nil,
                    recovery: rec))
            }
        }
        return out
    }

    /// The transplant that restores the most context reliance: the largest mean increase in counterfactual
    /// accuracy (M_C when the file has no generations), in words.
    public static func transplantHeadline(_ effects: [InterventionEffect]) -> String? {
        let transplants = effects.filter { $0.kind == "transplant" }
        func score(_ e: InterventionEffect) -> Double { e.counterfactualChange?.value ?? e.mcChange.value }
        guard let best = transplants.filter({ score($0).isFinite }).max(by: { score($0) < score($1) }) else { return nil }
        let what = best.counterfactualChange != nil ? "counterfactual accuracy" : "M_C"
        let est = best.counterfactualChange ?? best.mcChange
        return "Transplanting \(best.component) (layer \(best.layer < 0 ? "all" : String(best.layer))) from \(best.source) into \(best.checkpoint) "
            + "changes \(what) by \(Fmt.number(est.value)) \(Fmt.interval(est.interval)) and M_C by \(Fmt.number(best.mcChange.value)) "
            + "\(Fmt.interval(best.mcChange.interval)) — the largest restoration of context reliance among \(transplants.count) transplants."
    }

    /// A plain-text table of effects, largest |change in logit difference| first.
    public static func table(_ effects: [InterventionEffect], top: Int = 20) -> String {
        let rows = effects.sorted(by: { abs($0.logitDiffChange.value) > abs($1.logitDiffChange.value) }).prefix(top).map { e -> [String] in
            [e.checkpoint, e.name, "\(Fmt.number(e.logitDiffChange.value)) \(Fmt.interval(e.logitDiffChange.interval))",
             "\(Fmt.number(e.mcChange.value)) \(Fmt.interval(e.mcChange.interval))",
             e.counterfactualChange.map { "\(Fmt.number($0.value)) \(Fmt.interval($0.interval))" } ?? "-",
             e.recovery.isFinite ? Fmt.number(e.recovery) : "-"]
        }
        let header = ["checkpoint", "intervention", "Δ logit diff [95% CI]", "Δ M_C [95% CI]", "Δ cf_acc [95% CI]", "recovery"]
        let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { c, s in s + String(repeating: " ", count: widths[c] - s.count) }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}

// The intervention run file of `cpiscope intervene` (InterventionJob.swift): create or resume, and one
// checkpoint's results at a time. Its variables are defined once in HDF5Store/InterventionSchema.swift.
import Checkpoints
import Foundation
import HDF5Store
import TrajectoryJob

/// Writing the intervention run file: its variables are defined in HDF5Store/InterventionSchema.swift
/// (`InterventionSchema`; docs/interventions.md).
final class InterventionFile: CheckpointFile {
    private typealias S = InterventionSchema
    static let schemaVersion = InterventionSchema.version
    let file: HDF5File
    let url: URL
    private(set) var done: [Bool]
    let generate: Bool

    /// `refs` and `plan`: this process's part of the job (all of it without `--shard`); `jobPlan`: the whole job's.
    init(spec: InterventionJobSpec, job: ProbeJob.PreparedJob, checkpoints refs: [CheckpointRef], plan: [PlannedIntervention],
         jobPlan: [PlannedIntervention], options: MeasureOptions) throws {
        let s = spec.probe.job
        url = s.output
        generate = spec.generate
        let checkpoints = refs.map(\.name), probes = job.probeSet.probes.map(\.id), names = plan.map(\.name)
        if s.resume, FileManager.default.fileExists(atPath: url.path) {
            file = try HDF5File.open(at: s.output, writable: true)
            let path = s.output.path
            let mismatch = { (what: String) in InterventionJobError.resumeMismatch(path: path, detail: what) }
            guard (try? file.attribute(S.versionAttribute)) == .int(Self.schemaVersion) else {
                try? file.close(); throw mismatch("it is not an intervention run of this version")
            }
            if try file.readStrings(S.Dim.checkpoint).values != checkpoints { try? file.close(); throw mismatch("its checkpoints differ") }
            if try file.readStrings(S.Dim.probe).values != probes { try? file.close(); throw mismatch("its probes differ") }
            if try file.readStrings(S.Dim.intervention).values != names { try? file.close(); throw mismatch("its interventions differ") }
            // The probe job's result-changing settings (ProbeSettings) and --generate, as a probe run checks them.
            var now = ProbeJob.runAttributes(spec.probe, job.with(options))
            now[S.Attribute.generate] = .int(generate ? 1 : 0)
            for key in ProbeSettings.attributes + [S.Attribute.generate] {
                let recorded = try? file.attribute(key)
                guard recorded != now[key] else { continue }
                try? file.close()
                let option = key == S.Attribute.generate ? "--generate" : ProbeSettings.options(for: key)
                throw mismatch("its \(key) is \(recorded.map(\.description) ?? "not recorded"), and this run's is \(now[key].map(\.description) ?? "unset") (pass the file's \(option))")
            }
            done = try file.readUInt8(S.checkpointComplete.name).values.map { $0 == 1 }
            // Files written before source_logit_diff existed get it now (NaN at their finished checkpoints).
            if !file.exists(S.sourceLogitDiff.name) { try file.createVariable(S.sourceLogitDiff) }
            return
        }
        done = [Bool](repeating: false, count: checkpoints.count)
        let generate = spec.generate
        file = try HDF5File.create(at: url, overwrite: s.force) { file in
            try file.createDimension(S.Dim.checkpoint, strings: checkpoints)
            try file.createCoordinate(RunSchema.step.name, along: S.Dim.checkpoint, ints: refs.map { Int64($0.step ?? -1) })
            try file.createDimension(S.Dim.probe, strings: probes)
            try file.createDimension(S.Dim.intervention, strings: names)
            try file.createDimension(S.Dim.answer, strings: RunSchema.answers)
            let text: [SchemaVariable: [String]] = [
                S.kind: plan.map(\.kind), S.component: plan.map(\.component), S.source: plan.map(\.source),
                S.layerList: plan.map { $0.layers.map(String.init).joined(separator: ",") }]
            for v in S.perInterventionText {
                try file.createVariable(v)
                try file.write(v.name, strings: text[v, default: []])
            }
            let index: [SchemaVariable: [Int32]] = [S.layer: plan.map { Int32($0.layer) }, S.head: plan.map { Int32($0.head) }]
            for v in S.perInterventionIndex {
                try file.createVariable(v)
                try file.write(v.name, ints32: index[v, default: []])
            }
            for v in S.measurements + (generate ? S.cleanGeneration + S.intervenedGeneration : []) + [S.checkpointComplete] {
                try file.createVariable(v)
            }
            var attrs = ProbeJob.runAttributes(spec.probe, job.with(options))
            attrs[S.versionAttribute] = .int(Self.schemaVersion)
            attrs[RunSchema.Attribute.checkpointWeightFormats] = .strings(job.trajectory.weightFormats)
            attrs[RunSchema.Attribute.complete] = .int(0)
            attrs[S.Attribute.generate] = .int(generate ? 1 : 0)
            attrs["patch_recovery_definition"] = .string("(patched − target) / (source − target) of logit[context answer] − logit[memory answer]")
            attrs["mean_ablation_definition"] = .string("the activation averaged over the probe set at the same checkpoint, per position counted from the end of the prompt; positions past the prompt take the answer position's mean")
            attrs["knockout_definition"] = .string("−inf added to the pre-softmax scores from the query positions to the span's tokens, every head of the listed layers (Geva et al. 2023); queries: the answer position, or with 'from generation' in the name also every generated token, with 'from all' every position outside the span")
            if let shard = s.shard {
                attrs.merge(shard.attributes(jobLists: [(.checkpoints, s.checkpoints.map(\.name)), (.probes, probes),
                                                        (.interventions, jobPlan.map(\.name))])) { $1 }
            }
            for (k, v) in attrs.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v) }
        }
    }

    /// One checkpoint's results, flushed, then `checkpoint_complete` set and flushed. A failure leaves the
    /// file to the caller to abandon (TrajectoryJob.forEachCheckpoint).
    func write(checkpoint ci: Int, _ r: CheckpointOutcomes) throws {
        let (clean, intervened) = (r.clean, r.intervened)
        try file.writeSlab(S.cleanLogitDiff.name, index: ci, floats: clean.map(\.logitDiff))
        try file.writeSlab(S.cleanMC.name, index: ci, floats: clean.map(\.mc))
        try file.writeSlab(S.cleanAnswerLoglik.name, index: ci, floats: clean.flatMap(\.loglik))
        try file.writeSlab(S.logitDiff.name, index: ci, floats: intervened.flatMap { $0.map(\.logitDiff) })
        try file.writeSlab(S.mc.name, index: ci, floats: intervened.flatMap { $0.map(\.mc) })
        try file.writeSlab(S.answerLoglik.name, index: ci, floats: intervened.flatMap { $0.flatMap(\.loglik) })
        try file.writeSlab(S.patchRecovery.name, index: ci, floats: r.recovery.flatMap { $0 })
        try file.writeSlab(S.sourceLogitDiff.name, index: ci, floats: r.sourceLogitDiff.flatMap { $0 })
        if generate {
            for (variables, rows) in [(S.cleanGeneration, clean), (S.intervenedGeneration, intervened.flatMap { $0 })] {
                let (cf, pf, text) = (variables[0], variables[1], variables[2])
                try file.writeSlab(cf.name, index: ci, uint8: rows.map { ($0.generation?.counterfactual ?? false) ? 1 : 0 })
                try file.writeSlab(pf.name, index: ci, uint8: rows.map { ($0.generation?.parametric ?? false) ? 1 : 0 })
                try file.writeSlab(text.name, index: ci, strings: rows.map { storable($0.generation?.text ?? "") })
            }
        }
        try file.markCheckpointComplete(ci)
        done[ci] = true
    }

    func completed() throws -> [Bool] { done }

    func finish() throws {
        try file.markRunComplete()
        try file.close()
    }

    func close() { try? file.close() }
    func abandon() { file.abandon() }
}

// The attribution run file of `cpiscope attribute` (AttributionJob.swift): create or resume, and one
// checkpoint's estimates at a time. Its variables are defined once in HDF5Store/AttributionSchema.swift.
import Checkpoints
import Foundation
import HDF5Store
import TrajectoryJob

final class AttributionFile: CheckpointFile {
    private typealias S = AttributionSchema
    let file: HDF5File
    let url: URL
    private var done: [Bool]
    let components: AttributionComponents
    let verifyTop: Int
    let generate: Bool

    /// The settings a resumed file must share with this run (besides checkpoints and probes): those of the
    /// probe job that change a stored value, and the attribution's own.
    static func settings(_ spec: AttributionJobSpec, _ job: ProbeJob.PreparedJob) -> [String: AttributeValue] {
        var a = ProbeJob.runAttributes(spec.probe, job)
        a[S.Attribute.baseline] = .string(spec.baseline.description)
        a[S.Attribute.metric] = .string(spec.metric.rawValue)
        a[S.Attribute.components] = .strings(spec.components.names)
        a[S.Attribute.verifyTop] = .int(Int64(spec.verifyTop))
        a[S.Attribute.generate] = .int(spec.generate ? 1 : 0)
        return a
    }
    static let resumeKeys = ProbeSettings.attributes.filter { $0 != RunSchema.Attribute.probeGroupSize && $0 != RunSchema.Attribute.probeGroupCacheBytes }
        + [S.Attribute.baseline, S.Attribute.metric, S.Attribute.components, S.Attribute.verifyTop, S.Attribute.generate]

    init(spec: AttributionJobSpec, job: ProbeJob.PreparedJob, checkpoints refs: [CheckpointRef], probeIndices: [Int]) throws {
        let s = spec.probe.job
        url = s.output
        components = spec.components
        verifyTop = spec.verifyTop
        generate = spec.generate
        let checkpoints = refs.map(\.name), probes = probeIndices.map { job.probeSet.probes[$0].id }
        let now = Self.settings(spec, job)
        if s.resume, FileManager.default.fileExists(atPath: url.path) {
            let opened = try HDF5File.open(at: url, writable: true)
            file = opened
            let refuse = { (what: String) -> ProbeRunError in try? opened.close(); return .resumeMismatch(path: s.output.path, detail: what) }
            guard (try? opened.attribute(S.versionAttribute)) == .int(S.version) else { throw refuse("it is not an attribution run of this version") }
            if try opened.readStrings(S.Dim.checkpoint).values != checkpoints { throw refuse("its checkpoints differ") }
            if try opened.readStrings(S.Dim.probe).values != probes { throw refuse("its probes differ") }
            for key in Self.resumeKeys {
                let recorded = try? opened.attribute(key)
                guard recorded != now[key] else { continue }
                throw refuse("its \(key) is \(recorded.map(\.description) ?? "not recorded"), and this run's is \(now[key].map(\.description) ?? "unset")")
            }
            done = try opened.readUInt8(S.checkpointComplete.name).values.map { $0 == 1 }
            return
        }
        done = [Bool](repeating: false, count: checkpoints.count)
        let (components, verifyTop, generate) = (spec.components, spec.verifyTop, spec.generate)
        file = try HDF5File.create(at: url, overwrite: s.force) { file in
            let c = job.config
            try file.createDimension(S.Dim.checkpoint, strings: checkpoints)
            try file.createCoordinate(RunSchema.step.name, along: S.Dim.checkpoint, ints: refs.map { Int64($0.step ?? -1) })
            try file.createDimension(S.Dim.probe, strings: probes)
            try file.createDimension(S.Dim.layer, ints: (0..<c.layers).map(Int64.init))
            try file.createDimension(S.Dim.head, ints: (0..<c.heads).map(Int64.init))
            try file.createDimension(S.Dim.span, strings: S.spans)
            if verifyTop > 0 { try file.createDimension(S.Dim.rank, ints: (1...verifyTop).map(Int64.init)) }
            for v in Self.variables(components: components, verifyTop: verifyTop, generate: generate) { try file.createVariable(v) }
            var attrs = now
            attrs[S.versionAttribute] = .int(S.version)
            attrs[RunSchema.Attribute.complete] = .int(0)
            attrs[S.Attribute.estimateDefinition] = .string("atp(c) = sum over prompt positions of (a_baseline - a_clean) . d metric / d a_clean, a = hook_z of one head, hook_mlp_out or hook_resid_pre of one layer, read in the clean pass of the checkpoint (Nanda 2023; Kramar et al. 2024)")
            attrs[S.Attribute.baselineDefinition] = .string(Self.baselineDefinition(spec.baseline))
            if let shard = s.shard {
                attrs.merge(shard.attributes(jobLists: [(.checkpoints, s.checkpoints.map(\.name)), (.probes, job.probeSet.probes.map(\.id))])) { $1 }
            }
            for (k, v) in attrs.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v) }
        }
    }

    static func baselineDefinition(_ b: AttributionBaseline) -> String {
        switch b {
        case .zero: return "zero: the activation set to 0 at every prompt position (zero ablation)"
        case .mean: return "mean: the activation averaged over the probe set at the same checkpoint, per position counted from the end of the prompt"
        case .checkpoint(let c): return "checkpoint:\(c): that checkpoint's activation on the same prompt, at every position"
        case .corruptNoContext: return "corrupt:no-context: the activation of the prompt built with an empty context; positions from the question on aligned at the question, positions before the context at the same index where the tokens agree; the context's positions keep their clean value"
        }
    }

    private static func variables(components: AttributionComponents, verifyTop: Int, generate: Bool) -> [SchemaVariable] {
        var v = [S.cleanLogitDiff, S.cleanMetric] + (generate ? [S.cleanCounterfactualCorrect] : [])
        if components.contains(.heads) { v += [S.head, S.headBySpan] }
        if components.contains(.mlp) { v.append(S.mlp) }
        if components.contains(.resid) { v.append(S.resid) }
        v.append(S.missingReason)
        if verifyTop > 0 { v += [S.verifiedComponent, S.verifiedEstimate, S.verifiedEffect] }
        return v + [S.checkpointComplete]
    }

    /// One checkpoint, flushed, then `checkpoint_complete` set and flushed; a failure is left to the caller to
    /// abandon the file (TrajectoryJob.forEachCheckpoint).
    func write(checkpoint ci: Int, _ o: AttributionOutcome) throws {
        try file.writeSlab(S.cleanLogitDiff.name, index: ci, floats: o.cleanLogitDiff)
        try file.writeSlab(S.cleanMetric.name, index: ci, floats: o.cleanMetric)
        if let cf = o.counterfactual { try file.writeSlab(S.cleanCounterfactualCorrect.name, index: ci, uint8: cf) }
        if components.contains(.heads) {
            try file.writeSlab(S.head.name, index: ci, floats: o.head.flatMap { $0 })
            try file.writeSlab(S.headBySpan.name, index: ci, floats: o.headBySpan.flatMap { $0 })
        }
        if components.contains(.mlp) { try file.writeSlab(S.mlp.name, index: ci, floats: o.mlp.flatMap { $0 }) }
        if components.contains(.resid) { try file.writeSlab(S.resid.name, index: ci, floats: o.resid.flatMap { $0 }) }
        try file.writeSlab(S.missingReason.name, index: ci, strings: o.missing)
        if verifyTop > 0 {
            let names = o.verified.map(\.name) + [String](repeating: "", count: verifyTop - o.verified.count)
            let pad = [Float](repeating: .nan, count: o.cleanMetric.count * (verifyTop - o.verified.count))
            try file.writeSlab(S.verifiedComponent.name, index: ci, strings: names)
            try file.writeSlab(S.verifiedEstimate.name, index: ci, floats: o.verified.flatMap(\.estimate) + pad)
            try file.writeSlab(S.verifiedEffect.name, index: ci, floats: o.verified.flatMap(\.effect) + pad)
        }
        try file.markCheckpointComplete(ci)
        done[ci] = true
    }

    func completed() throws -> [Bool] { done }

    func finish() throws {
        try file.markRunComplete()
    }

    func close() { try? file.close() }
    func abandon() { file.abandon() }
}

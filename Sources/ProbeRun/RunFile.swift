// Writing a probe run (schema version 2: version 1 plus direct logit attribution). The variables, their
// types and dimensions are defined once in HDF5Store/RunSchema.swift (documented in docs/hdf5-schema.md);
// this file is the one place that writes them. Every per-checkpoint variable has `checkpoint` as
// its first dimension and is written one checkpoint at a time; `checkpoint_complete` turns 1 and the
// file is flushed after each, so an interrupted run keeps every finished checkpoint.
import Foundation
import HDF5Store
import ProbeKit
import TrajectoryJob

extension RunSchema {
    /// The `span` coordinate: ProbeKit's span kinds, in order.
    public static var spans: [String] { SpanKind.allCases.map(\.rawValue) }
}

private typealias V = RunSchema
private typealias Dim = RunSchema.Dim

/// The shape of a run: what its coordinates hold.
public struct RunLayout: Sendable, Equatable {
    public var checkpoints: [String]
    public var steps: [Int64]
    public var probes: [String]
    public var layers: Int
    public var heads: Int
    public var dModel: Int
    /// Probes whose full patterns / residual streams are dumped, and the layers (--dump).
    public var dumpProbes: [String] = []
    public var dumpLayers: [Int] = []
    /// Longest prompt among dumped probes (query_pos / key_pos length).
    public var dumpPositions: Int = 0
    /// Whether the run records a tuned lens (tuned_lens_logprob, tuned_lens_rank, tuned_mc_ratio).
    public var tunedLens = false
}

/// Per-probe facts that do not depend on the checkpoint.
public struct ProbeRecord: Sendable {
    public var prompt: String
    public var context: String
    public var question: String
    public var answer: String
    public var memoryAnswer: String
    public var subject: String
    public var subjectSource: String
    /// [span] found (1) or missing (0), and the reason when missing.
    public var spanFound: [UInt8]
    public var spanReason: [String]
    public var spanTokenCount: [Int32]
    public var promptTokens: Int32
    /// [answer] token counts of the context and memory answers.
    public var answerTokens: [Int32]
}

/// Writes (or resumes) one run file.
public final class RunWriter: CheckpointFile {
    public let url: URL
    public let layout: RunLayout
    let file: HDF5File

    /// Creates a new run file with every coordinate, per-probe variable and attribute.
    public init(creating url: URL, layout: RunLayout, records: [ProbeRecord], attributes: [String: AttributeValue],
                overwrite: Bool) throws {
        self.url = url
        self.layout = layout
        file = try HDF5File.create(at: url, overwrite: overwrite)
        do {
            try define(records: records, attributes: attributes)
            try file.flush()
        } catch {
            try? file.close()
            try? FileManager.default.removeItem(at: url)
            throw error
        }
    }

    /// Reopens an interrupted run; its layout must equal `layout`, and every attribute of
    /// `ProbeSettings.resultChanging` must equal this run's (`settings`: the attributes this run would
    /// write). A mismatch names the option to pass.
    public init(resuming url: URL, layout: RunLayout, settings: [String: AttributeValue]) throws {
        self.url = url
        self.layout = layout
        file = try HDF5File.open(at: url, writable: true)
        let existing = try RunReader.layout(of: file, path: url.path)
        func mismatch(_ what: String) -> ProbeRunError { .resumeMismatch(path: url.path, detail: what) }
        func refuse(_ what: String) throws -> Never { try? file.close(); throw mismatch(what) }
        if existing.checkpoints != layout.checkpoints {
            try refuse("its checkpoints differ (\(existing.checkpoints.count) in the file, \(layout.checkpoints.count) now; pass the file's --checkpoints)")
        }
        if existing.probes != layout.probes { try refuse("its probes differ (pass the file's --probes)") }
        if existing.layers != layout.layers || existing.heads != layout.heads { try refuse("its model shape differs") }
        if existing.dumpLayers != layout.dumpLayers {
            try refuse("it dumps layers \(existing.dumpLayers), and this run \(layout.dumpLayers) (pass the file's --dump)")
        }
        if existing.dumpProbes != layout.dumpProbes {
            try refuse("it dumps probes \(existing.dumpProbes), and this run \(layout.dumpProbes) (pass the file's --dump-probes)")
        }
        if file.exists(V.tunedLensLogprob.name) != layout.tunedLens {
            try refuse(layout.tunedLens ? "it has no tuned lens, and --lens asks for one" : "it records a tuned lens; pass the same --lens")
        }
        for key in ProbeSettings.attributes {
            let recorded = try? file.attribute(key), now = settings[key]
            guard recorded != now else { continue }
            let was = recorded.map(\.description) ?? "unset"
            try refuse("its \(key) is \(was), and this run's is \(now.map(\.description) ?? "unset") (pass the file's \(ProbeSettings.options(for: key)))")
        }
    }

    /// Which checkpoints are already complete.
    public func completed() throws -> [Bool] {
        try file.readUInt8(V.checkpointComplete.name).values.map { $0 == 1 }
    }

    private func define(records: [ProbeRecord], attributes: [String: AttributeValue]) throws {
        let L = layout
        try file.createDimension(Dim.checkpoint, strings: L.checkpoints)
        try file.createCoordinate(V.step.name, along: Dim.checkpoint, ints: L.steps)
        try file.createDimension(Dim.probe, strings: L.probes)
        try file.createDimension(Dim.span, strings: RunSchema.spans)
        try file.createDimension(Dim.layer, ints: (0..<L.layers).map(Int64.init))
        try file.createDimension(Dim.head, ints: (0..<L.heads).map(Int64.init))
        try file.createDimension(Dim.lensLayer, ints: (0...L.layers).map(Int64.init))
        try file.createDimension(Dim.answer, strings: RunSchema.answers)

        // Per probe (checkpoint-independent).
        let text: [SchemaVariable: [String]] = [
            V.prompt: records.map(\.prompt), V.context: records.map(\.context), V.question: records.map(\.question),
            V.contextAnswer: records.map(\.answer), V.memoryAnswer: records.map(\.memoryAnswer),
            V.subject: records.map(\.subject), V.subjectSource: records.map(\.subjectSource)]
        for v in V.perProbeText {
            try file.createVariable(v)
            try file.write(v.name, strings: text[v, default: []].map(storable))
        }
        let ints: [SchemaVariable: [Int32]] = [V.promptTokens: records.map(\.promptTokens), V.answerTokens: records.flatMap(\.answerTokens),
                                               V.spanTokenCount: records.flatMap(\.spanTokenCount)]
        for v in V.perProbe.dropFirst(V.perProbeText.count) {
            try file.createVariable(v)
            switch v {
            case V.spanFound: try file.write(v.name, uint8: records.flatMap(\.spanFound))
            case V.spanMissingReason: try file.write(v.name, strings: records.flatMap(\.spanReason))
            default: try file.write(v.name, ints32: ints[v, default: []])
            }
        }

        // Per checkpoint × probe: the measurements, direct logit attribution (Models/DirectLogitAttribution.swift),
        // the tuned lens beside the logit lens (ProbeRun/TunedLens.swift), then per checkpoint.
        for v in V.measurements + V.dla + V.generationDetails + (L.tunedLens ? V.tunedLens : []) + V.perCheckpoint { try file.createVariable(v) }

        if !L.dumpProbes.isEmpty {
            try file.createDimension(Dim.dumpProbe, strings: L.dumpProbes)
            try file.createDimension(Dim.dumpLayer, ints: L.dumpLayers.map(Int64.init))
            try file.createDimension(Dim.queryPos, ints: (0..<L.dumpPositions).map(Int64.init))
            try file.createDimension(Dim.keyPos, ints: (0..<L.dumpPositions).map(Int64.init))
            try file.createDimension(Dim.dModel, ints: (0..<L.dModel).map(Int64.init))
            for v in V.dumps { try file.createVariable(v) }
        }

        var attrs = attributes
        attrs[V.Attribute.version] = .int(RunSchema.version)
        attrs[V.Attribute.complete] = .int(0)
        for (k, v) in attrs.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v) }
    }

    /// Writes checkpoint `i`'s results (probe order as in the layout), marks it complete and flushes.
    public func write(checkpoint i: Int, measurements m: [ProbeMeasurement], weightsHash: String, adapter: String = "") throws {
        precondition(m.count == layout.probes.count)
        try file.writeSlab(V.attentionMass.name, index: i, floats: m.flatMap(\.attentionMass))
        try file.writeSlab(V.lensLogprob.name, index: i, floats: m.flatMap(\.lensLogprob))
        try file.writeSlab(V.lensRank.name, index: i, ints32: m.flatMap(\.lensRank))
        try file.writeSlab(V.mcRatio.name, index: i, floats: m.flatMap(\.mcRatio))
        try file.writeSlab(V.answerLoglik.name, index: i, floats: m.flatMap(\.answerLoglik))
        try file.writeSlab(V.counterfactualCorrect.name, index: i, uint8: m.map { $0.counterfactualCorrect ? 1 : 0 })
        try file.writeSlab(V.parametricCorrect.name, index: i, uint8: m.map { $0.parametricCorrect ? 1 : 0 })
        try file.writeSlab(V.generated.name, index: i, strings: m.map { storable($0.generated) })
        try file.writeSlab(V.logitDiff.name, index: i, floats: m.map(\.attribution.logitDiff))
        try file.writeSlab(V.headDLA.name, index: i, floats: m.flatMap(\.attribution.head))
        try file.writeSlab(V.headDLABySpan.name, index: i, floats: m.flatMap(\.attribution.headBySpan))
        try file.writeSlab(V.mlpDLA.name, index: i, floats: m.flatMap(\.attribution.mlp))
        try file.writeSlab(V.embedDLA.name, index: i, floats: m.map(\.attribution.embed))
        try file.writeSlab(V.biasDLA.name, index: i, floats: m.map(\.attribution.attnBias))
        try file.writeSlab(V.normBiasDLA.name, index: i, floats: m.map(\.attribution.normBias))
        try file.writeSlab(V.dlaRemainder.name, index: i, floats: m.map(\.attribution.remainder))
        if file.exists(V.generationEnd.name) {   // files begun before these variables existed resume without them
            try file.writeSlab(V.generationEnd.name, index: i, strings: m.map(\.generationEnd.rawValue))
            try file.writeSlab(V.firstAnswerStep.name, index: i, ints32: m.map(\.firstAnswerStep))
            try file.writeSlab(V.firstAnswerLogitDiff.name, index: i, floats: m.map(\.firstAnswerLogitDiff))
            try file.writeSlab(V.firstAnswerMC.name, index: i, floats: m.map(\.firstAnswerMC))
        }
        if layout.tunedLens {
            try file.writeSlab(V.tunedLensLogprob.name, index: i, floats: m.flatMap(\.tunedLensLogprob))
            try file.writeSlab(V.tunedLensRank.name, index: i, ints32: m.flatMap(\.tunedLensRank))
            try file.writeSlab(V.tunedMCRatio.name, index: i, floats: m.flatMap(\.tunedMCRatio))
        }
        try file.writeSlab(V.weightsSHA256.name, index: i, strings: [weightsHash])
        try file.writeSlab(V.adapter.name, index: i, strings: [adapter])
        if !layout.dumpProbes.isEmpty { try writeDumps(checkpoint: i, measurements: m) }
        try file.markCheckpointComplete(i)
    }

    private func writeDumps(checkpoint i: Int, measurements m: [ProbeMeasurement]) throws {
        let L = layout, N = L.dumpPositions, H = L.heads, D = L.dModel
        var patterns = [Float](repeating: .nan, count: L.dumpProbes.count * L.dumpLayers.count * H * N * N)
        var streams = [Float](repeating: .nan, count: L.dumpProbes.count * (L.layers + 1) * N * D)
        for (dp, id) in L.dumpProbes.enumerated() {
            guard let pi = L.probes.firstIndex(of: id) else { continue }
            let meas = m[pi]
            let lens = L.layers + 1
            let n = meas.dumpedResiduals.count / max(1, lens * D)
            for li in 0..<L.dumpLayers.count {
                for h in 0..<H { for q in 0..<n { for k in 0..<n {
                    let src = ((li * H + h) * n + q) * n + k
                    guard src < meas.dumpedPatterns.count else { continue }
                    patterns[((((dp * L.dumpLayers.count + li) * H + h) * N + q) * N) + k] = meas.dumpedPatterns[src]
                } } }
            }
            for ll in 0..<lens { for q in 0..<n { for j in 0..<D {
                streams[((dp * lens + ll) * N + q) * D + j] = meas.dumpedResiduals[(ll * n + q) * D + j]
            } } }
        }
        try file.writeSlab(V.dumpAttentionPattern.name, index: i, floats: patterns)
        try file.writeSlab(V.dumpResidual.name, index: i, floats: streams)
    }

    /// Marks the whole run complete and closes the file.
    public func finish() throws {
        try file.markRunComplete()
        try file.close()
    }

    public func close() { try? file.close() }

    /// After a failed write: closes without flushing, so the file keeps exactly the checkpoints
    /// flushed before the failure (see `HDF5File.abandon`).
    public func abandon() { file.abandon() }
}

/// HDF5 variable-length strings end at NUL, so a NUL (a model can generate one) is stored as U+2400 "␀".
func storable(_ s: String) -> String {
    s.contains("\u{0}") ? s.replacingOccurrences(of: "\u{0}", with: "\u{2400}") : s
}

/// Reading back what `RunWriter` wrote.
public enum RunReader {
    static func layout(of file: HDF5File, path: String) throws -> RunLayout {
        guard case .int(let v)? = try? file.attribute(V.Attribute.version) else {
            throw ProbeRunError.notARun(path: path, detail: "no cpiscope_schema_version attribute")
        }
        guard v == RunSchema.version else {
            throw ProbeRunError.notARun(path: path, detail: "schema version \(v); this cpiscope reads version \(RunSchema.version)")
        }
        return RunLayout(checkpoints: try file.readStrings(Dim.checkpoint).values,
                         steps: try file.readInt64(V.step.name).values,
                         probes: try file.readStrings(Dim.probe).values,
                         layers: try file.shape(of: Dim.layer).first ?? 0,
                         heads: try file.shape(of: Dim.head).first ?? 0,
                         dModel: 0,
                         dumpProbes: file.exists(Dim.dumpProbe) ? try file.readStrings(Dim.dumpProbe).values : [],
                         dumpLayers: file.exists(Dim.dumpLayer) ? try file.readInt64(Dim.dumpLayer).values.map { Int($0) } : [])
    }
}

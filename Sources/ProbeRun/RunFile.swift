// The HDF5 layout of a probe run (schema version 2: version 1 plus direct logit attribution). docs/hdf5-schema.md documents every name;
// this file is the one place that writes them. Every per-checkpoint variable has `checkpoint` as
// its first dimension and is written one checkpoint at a time; `checkpoint_complete` turns 1 and the
// file is flushed after each, so an interrupted run keeps every finished checkpoint.
import Foundation
import HDF5Store
import ProbeKit

public enum RunSchema {
    public static let version: Int64 = 2
    public static let answers = ["context", "memory"]
    public static var spans: [String] { SpanKind.allCases.map(\.rawValue) }
}

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
public final class RunWriter {
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

    /// Reopens an interrupted run; its layout must equal `layout`.
    public init(resuming url: URL, layout: RunLayout, templateText: String) throws {
        self.url = url
        self.layout = layout
        file = try HDF5File.open(at: url, writable: true)
        let existing = try RunReader.layout(of: file, path: url.path)
        func mismatch(_ what: String) -> ProbeRunError { .resumeMismatch(path: url.path, detail: what) }
        if existing.checkpoints != layout.checkpoints { try? file.close(); throw mismatch("its checkpoints differ (\(existing.checkpoints.count) in the file, \(layout.checkpoints.count) now)") }
        if existing.probes != layout.probes { try? file.close(); throw mismatch("its probes differ") }
        if existing.layers != layout.layers || existing.heads != layout.heads { try? file.close(); throw mismatch("its model shape differs") }
        if file.exists("tuned_lens_logprob") != layout.tunedLens {
            try? file.close(); throw mismatch(layout.tunedLens ? "it has no tuned lens, and --lens asks for one" : "it records a tuned lens; pass the same --lens")
        }
        if case .string(let t)? = try? file.attribute("template_text"), t != templateText {
            try? file.close(); throw mismatch("its prompt template differs")
        }
    }

    /// Which checkpoints are already complete.
    public func completed() throws -> [Bool] {
        try file.readUInt8("checkpoint_complete").values.map { $0 == 1 }
    }

    private func define(records: [ProbeRecord], attributes: [String: AttributeValue]) throws {
        let L = layout
        try file.createDimension("checkpoint", strings: L.checkpoints)
        try file.createCoordinate("step", along: "checkpoint", ints: L.steps)
        try file.createDimension("probe", strings: L.probes)
        try file.createDimension("span", strings: RunSchema.spans)
        try file.createDimension("layer", ints: (0..<L.layers).map(Int64.init))
        try file.createDimension("head", ints: (0..<L.heads).map(Int64.init))
        try file.createDimension("lens_layer", ints: (0...L.layers).map(Int64.init))
        try file.createDimension("answer", strings: RunSchema.answers)

        // Per probe (checkpoint-independent).
        for (name, values) in [("prompt", records.map(\.prompt)), ("context", records.map(\.context)),
                               ("question", records.map(\.question)), ("context_answer", records.map(\.answer)),
                               ("memory_answer", records.map(\.memoryAnswer)), ("subject", records.map(\.subject)),
                               ("subject_source", records.map(\.subjectSource))] {
            try file.createVariable(name, type: .string, dims: ["probe"])
            try file.write(name, strings: values.map(storable))
        }
        try file.createVariable("prompt_tokens", type: .int32, dims: ["probe"])
        try file.write("prompt_tokens", ints32: records.map(\.promptTokens))
        try file.createVariable("answer_tokens", type: .int32, dims: ["probe", "answer"])
        try file.write("answer_tokens", ints32: records.flatMap(\.answerTokens))
        try file.createVariable("span_found", type: .uint8, dims: ["probe", "span"])
        try file.write("span_found", uint8: records.flatMap(\.spanFound))
        try file.createVariable("span_missing_reason", type: .string, dims: ["probe", "span"])
        try file.write("span_missing_reason", strings: records.flatMap(\.spanReason))
        try file.createVariable("span_token_count", type: .int32, dims: ["probe", "span"])
        try file.write("span_token_count", ints32: records.flatMap(\.spanTokenCount))

        // Per checkpoint × probe.
        try file.createVariable("attention_mass", type: .float32, dims: ["checkpoint", "probe", "span", "layer", "head"])
        try file.createVariable("lens_logprob", type: .float32, dims: ["checkpoint", "probe", "answer", "lens_layer"])
        try file.createVariable("lens_rank", type: .int32, dims: ["checkpoint", "probe", "answer", "lens_layer"])
        try file.createVariable("mc_ratio", type: .float32, dims: ["checkpoint", "probe", "lens_layer"])
        try file.createVariable("answer_loglik", type: .float32, dims: ["checkpoint", "probe", "answer"])
        try file.createVariable("counterfactual_correct", type: .uint8, dims: ["checkpoint", "probe"])
        try file.createVariable("parametric_correct", type: .uint8, dims: ["checkpoint", "probe"])
        try file.createVariable("generated", type: .string, dims: ["checkpoint", "probe"])
        // Direct logit attribution at the answer position (Models/DirectLogitAttribution.swift).
        try file.createVariable("logit_diff", type: .float32, dims: ["checkpoint", "probe"])
        try file.createVariable("head_dla", type: .float32, dims: ["checkpoint", "probe", "layer", "head"])
        try file.createVariable("head_dla_by_span", type: .float32, dims: ["checkpoint", "probe", "span", "layer", "head"])
        try file.createVariable("mlp_dla", type: .float32, dims: ["checkpoint", "probe", "layer"])
        for name in ["embed_dla", "bias_dla", "norm_bias_dla", "dla_remainder"] {
            try file.createVariable(name, type: .float32, dims: ["checkpoint", "probe"])
        }
        if L.tunedLens {
            // The tuned lens beside the logit lens (ProbeRun/TunedLens.swift).
            try file.createVariable("tuned_lens_logprob", type: .float32, dims: ["checkpoint", "probe", "answer", "lens_layer"])
            try file.createVariable("tuned_lens_rank", type: .int32, dims: ["checkpoint", "probe", "answer", "lens_layer"])
            try file.createVariable("tuned_mc_ratio", type: .float32, dims: ["checkpoint", "probe", "lens_layer"])
        }
        try file.createVariable("weights_sha256", type: .string, dims: ["checkpoint"])
        try file.createVariable("adapter", type: .string, dims: ["checkpoint"])
        try file.createVariable("checkpoint_complete", type: .uint8, dims: ["checkpoint"])

        if !L.dumpProbes.isEmpty {
            try file.createDimension("dump_probe", strings: L.dumpProbes)
            try file.createDimension("dump_layer", ints: L.dumpLayers.map(Int64.init))
            try file.createDimension("query_pos", ints: (0..<L.dumpPositions).map(Int64.init))
            try file.createDimension("key_pos", ints: (0..<L.dumpPositions).map(Int64.init))
            try file.createDimension("d_model", ints: (0..<L.dModel).map(Int64.init))
            try file.createVariable("dump_attention_pattern", type: .float32,
                                    dims: ["checkpoint", "dump_probe", "dump_layer", "head", "query_pos", "key_pos"])
            try file.createVariable("dump_residual", type: .float32,
                                    dims: ["checkpoint", "dump_probe", "lens_layer", "query_pos", "d_model"])
        }

        var attrs = attributes
        attrs["cpiscope_schema_version"] = .int(RunSchema.version)
        attrs["complete"] = .int(0)
        for (k, v) in attrs.sorted(by: { $0.key < $1.key }) { try file.setAttribute(k, v) }
    }

    /// Writes checkpoint `i`'s results (probe order as in the layout), marks it complete and flushes.
    public func write(checkpoint i: Int, measurements m: [ProbeMeasurement], weightsHash: String, adapter: String = "") throws {
        precondition(m.count == layout.probes.count)
        try file.writeSlab("attention_mass", index: i, floats: m.flatMap(\.attentionMass))
        try file.writeSlab("lens_logprob", index: i, floats: m.flatMap(\.lensLogprob))
        try file.writeSlab("lens_rank", index: i, ints32: m.flatMap(\.lensRank))
        try file.writeSlab("mc_ratio", index: i, floats: m.flatMap(\.mcRatio))
        try file.writeSlab("answer_loglik", index: i, floats: m.flatMap(\.answerLoglik))
        try file.writeSlab("counterfactual_correct", index: i, uint8: m.map { $0.counterfactualCorrect ? 1 : 0 })
        try file.writeSlab("parametric_correct", index: i, uint8: m.map { $0.parametricCorrect ? 1 : 0 })
        try file.writeSlab("generated", index: i, strings: m.map { storable($0.generated) })
        try file.writeSlab("logit_diff", index: i, floats: m.map(\.attribution.logitDiff))
        try file.writeSlab("head_dla", index: i, floats: m.flatMap(\.attribution.head))
        try file.writeSlab("head_dla_by_span", index: i, floats: m.flatMap(\.attribution.headBySpan))
        try file.writeSlab("mlp_dla", index: i, floats: m.flatMap(\.attribution.mlp))
        try file.writeSlab("embed_dla", index: i, floats: m.map(\.attribution.embed))
        try file.writeSlab("bias_dla", index: i, floats: m.map(\.attribution.attnBias))
        try file.writeSlab("norm_bias_dla", index: i, floats: m.map(\.attribution.normBias))
        try file.writeSlab("dla_remainder", index: i, floats: m.map(\.attribution.remainder))
        if layout.tunedLens {
            try file.writeSlab("tuned_lens_logprob", index: i, floats: m.flatMap(\.tunedLensLogprob))
            try file.writeSlab("tuned_lens_rank", index: i, ints32: m.flatMap(\.tunedLensRank))
            try file.writeSlab("tuned_mc_ratio", index: i, floats: m.flatMap(\.tunedMCRatio))
        }
        try file.writeSlab("weights_sha256", index: i, strings: [weightsHash])
        try file.writeSlab("adapter", index: i, strings: [adapter])
        if !layout.dumpProbes.isEmpty { try writeDumps(checkpoint: i, measurements: m) }
        try file.flush()
        // Only after the data is on disk does the checkpoint count as complete.
        try file.writeSlab("checkpoint_complete", index: i, uint8: [1])
        try file.flush()
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
        try file.writeSlab("dump_attention_pattern", index: i, floats: patterns)
        try file.writeSlab("dump_residual", index: i, floats: streams)
    }

    /// Marks the whole run complete and closes the file.
    public func finish() throws {
        try file.setAttribute("complete", .int(1))
        try file.flush()
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
        guard case .int(let v)? = try? file.attribute("cpiscope_schema_version") else {
            throw ProbeRunError.notARun(path: path, detail: "no cpiscope_schema_version attribute")
        }
        guard v == RunSchema.version else {
            throw ProbeRunError.notARun(path: path, detail: "schema version \(v); this cpiscope reads version \(RunSchema.version)")
        }
        return RunLayout(checkpoints: try file.readStrings("checkpoint").values,
                         steps: try file.readInt64("step").values,
                         probes: try file.readStrings("probe").values,
                         layers: try file.shape(of: "layer").first ?? 0,
                         heads: try file.shape(of: "head").first ?? 0,
                         dModel: 0)
    }
}

// RunData: a probe run file (written by `cpiscope probe`, schema version 1 or 2, docs/hdf5-schema.md)
// opened for analysis. Every variable is read through its definition in HDF5Store/RunSchema.swift (the
// one the writer, ProbeRun/RunFile.swift, uses), and its shape is checked against the schema's
// dimensions. The file
// is untrusted: the schema version, every coordinate and every variable's shape are checked
// before use, and only checkpoints marked complete (`checkpoint_complete` = 1) are analysed.
// The large `attention_mass` and `head_dla_by_span` variables are read one checkpoint slab at a
// time. Direct logit attribution (`logit_diff`, `head_dla`, ...) is read when the file is version 2
// (every DLA variable is then required); version-1 files have none and analyses omit DLA.
import Foundation
import HDF5Store

private typealias V = RunSchema

/// An opened, validated probe run. Checkpoint indices `c` count complete checkpoints only, in
/// file order (the probe job writes them by training step).
public final class RunData: Sendable {
    /// The newest schema version this build reads (version 2 adds direct logit attribution; files of
    /// version 1 are read without it).
    public static let schemaVersion = RunSchema.version
    public static let readableVersions = RunSchema.readableVersions
    /// Upper bounds on the coordinates, far above any real run; larger files are refused.
    public static let maxCheckpoints = 100_000, maxProbes = 10_000_000, maxLayers = 4096, maxHeads = 4096

    public let path: String
    let file: HDF5File

    /// Every checkpoint in the file, complete or not.
    public let fileCheckpoints: [String]
    /// Checkpoints that are not complete (left out of every analysis).
    public let incompleteCheckpoints: [String]
    /// Complete checkpoints: names, training steps, and their index in the file.
    public let checkpoints: [String]
    public let steps: [Int64]
    let fileIndex: [Int]

    public let probes: [String]
    /// Span names (`span` coordinate): context, subject, question, ...
    public let spans: [String]
    public let layers: Int
    public let heads: Int
    /// Logit-lens layers: 0 = embeddings, l = after block l−1 (layers + 1 of them).
    public let lensLayers: Int
    /// Answer names (`answer` coordinate): context, memory.
    public let answers: [String]

    /// Per probe: the prompt, question, the two answers and the subject.
    public let prompts: [String]
    public let questions: [String]
    public let contextAnswers: [String]
    public let memoryAnswers: [String]
    /// `[probe, span]`: 1 when the span was found in the prompt.
    public let spanFound: [UInt8]

    /// `[checkpoint, probe]` (complete checkpoints): 1 when the generation contains the answer.
    public let counterfactualCorrect: [UInt8]
    public let parametricCorrect: [UInt8]
    /// `[checkpoint, probe]`: the greedy generation.
    public let generated: [String]
    /// `[checkpoint, probe, lens_layer]`: M_C = p_ctx / (p_ctx + p_mem).
    public let mcRatio: [Float]
    /// `[checkpoint, probe, answer, lens_layer]`: log-prob (nats) of each answer's first token.
    public let lensLogprob: [Float]
    /// `[checkpoint, probe, lens_layer]`: M_C under the tuned lens, when the run has one (`--lens tuned:PATH`).
    public let tunedMcRatio: [Float]?
    /// `[checkpoint, probe]`: M_C at the first-answer-token readout (`first_answer_mc_ratio`; NaN where the
    /// generation named neither answer), nil for files written before it.
    public let firstAnswerMC: [Float]?

    /// Direct logit attribution at the answer position (schema version 2), nil for version 1.
    public let dla: LogitAttributionData?

    /// Whether the run's `complete` attribute is 1.
    public let runComplete: Bool
    /// Free-text attributes shown in reports (template_name, model_type, tool_version, created, ...).
    public let info: [String: String]

    /// Opens and validates a run file.
    /// - Throws: `cannotOpen`, `notARun`, `schemaVersion`, `malformedRun`.
    public init(url: URL) throws {
        let path = url.path
        self.path = path
        do {
            file = try HDF5File.open(at: url, writable: false)
        } catch let e as HDF5Error {
            if case .notHDF5 = e { throw AnalysisError.notARun(path: path, detail: "not an HDF5 file") }
            throw AnalysisError.cannotOpen(path: path, reason: e.description)
        }
        guard let version = try? file.attribute(V.Attribute.version) else {
            let intervention = (try? file.attribute(InterventionSchema.versionAttribute)) != nil
            let criticality = (try? file.attribute(CriticalitySchema.versionAttribute)) != nil
            throw AnalysisError.notARun(path: path, detail: intervention
                ? "it is an intervention file (`cpiscope intervene`), which `diff` and `report` read on their own, not with a probe run"
                : criticality
                ? "it is a criticality file (`cpiscope criticality`): `cpiscope report` reads it (loss by group over training); `diff` compares probe runs and ranks the interventions of intervention files"
                : "no cpiscope_schema_version attribute")
        }
        guard case .int(let v) = version else {
            throw AnalysisError.notARun(path: path, detail: "cpiscope_schema_version is \(version), not an integer")
        }
        guard Self.readableVersions.contains(v) else {
            throw AnalysisError.schemaVersion(path: path, found: v, supported: Self.schemaVersion)
        }
        var r = FieldReader(file: file, path: path)
        typealias Dim = RunSchema.Dim

        fileCheckpoints = try r.strings(Dim.checkpoint)
        let C = fileCheckpoints.count
        guard (1...Self.maxCheckpoints).contains(C) else {
            throw AnalysisError.malformedRun(path: path, field: Dim.checkpoint, detail: "\(C) checkpoints (1...\(Self.maxCheckpoints) allowed)")
        }
        let allSteps = try r.int64(V.step.name, [C])
        probes = try r.strings(Dim.probe)
        let P = probes.count
        guard (1...Self.maxProbes).contains(P) else {
            throw AnalysisError.malformedRun(path: path, field: Dim.probe, detail: "\(P) probes (1...\(Self.maxProbes) allowed)")
        }
        spans = try r.strings(Dim.span)
        answers = try r.strings(Dim.answer)
        let L = try r.length(Dim.layer), H = try r.length(Dim.head), LL = try r.length(Dim.lensLayer)
        guard (1...Self.maxLayers).contains(L), (1...Self.maxHeads).contains(H), LL >= 1, LL <= Self.maxLayers + 1 else {
            throw AnalysisError.malformedRun(path: path, field: "layer/head/lens_layer", detail: "sizes \(L)/\(H)/\(LL) out of range")
        }
        layers = L; heads = H; lensLayers = LL
        guard !spans.isEmpty, spans.count <= 64 else {
            throw AnalysisError.malformedRun(path: path, field: Dim.span, detail: "\(spans.count) spans")
        }
        guard answers == RunSchema.answers else {
            throw AnalysisError.malformedRun(path: path, field: Dim.answer, detail: "expected \(RunSchema.answers), found \(answers)")
        }
        // Every variable's expected shape follows from these (SchemaVariable.dims).
        r.sizes = [Dim.checkpoint: C, Dim.probe: P, Dim.span: spans.count, Dim.layer: L, Dim.head: H,
                   Dim.lensLayer: LL, Dim.answer: answers.count]

        prompts = try r.strings(V.prompt)
        questions = try r.strings(V.question)
        contextAnswers = try r.strings(V.contextAnswer)
        memoryAnswers = try r.strings(V.memoryAnswer)
        spanFound = try r.uint8(V.spanFound)
        let complete = try r.uint8(V.checkpointComplete)
        try r.expectShape(V.attentionMass)

        let keep = (0..<C).filter { complete[$0] == 1 }
        let names = fileCheckpoints
        fileIndex = keep
        checkpoints = keep.map { names[$0] }
        steps = keep.map { allSteps[$0] }
        incompleteCheckpoints = (0..<C).filter { complete[$0] != 1 }.map { names[$0] }

        func select<T>(_ values: [T], per: Int) -> [T] {
            var out: [T] = []
            out.reserveCapacity(keep.count * per)
            for c in keep { out.append(contentsOf: values[(c * per)..<((c + 1) * per)]) }
            return out
        }
        counterfactualCorrect = select(try r.uint8(V.counterfactualCorrect), per: P)
        parametricCorrect = select(try r.uint8(V.parametricCorrect), per: P)
        generated = select(try r.strings(V.generated), per: P)
        mcRatio = select(try r.floats(V.mcRatio), per: P * LL)
        lensLogprob = select(try r.floats(V.lensLogprob), per: P * answers.count * LL)
        tunedMcRatio = file.exists(V.tunedMCRatio.name) ? select(try r.floats(V.tunedMCRatio), per: P * LL) : nil
        firstAnswerMC = file.exists(V.firstAnswerMC.name) ? select(try r.floats(V.firstAnswerMC), per: P) : nil
        if v >= 2 {
            try r.expectShape(V.headDLABySpan)
            let perProbe = { (v: SchemaVariable) in select(try r.floats(v), per: P) }
            var definition: String?
            if case .string(let d)? = try? file.attribute(V.Attribute.dlaDefinition) { definition = d }
            dla = LogitAttributionData(logitDiff: try perProbe(V.logitDiff),
                                       head: select(try r.floats(V.headDLA), per: P * L * H),
                                       mlp: select(try r.floats(V.mlpDLA), per: P * L),
                                       embed: try perProbe(V.embedDLA), attentionBias: try perProbe(V.biasDLA),
                                       normBias: try perProbe(V.normBiasDLA), remainder: try perProbe(V.dlaRemainder),
                                       definition: definition)
        } else {
            dla = nil
        }

        runComplete = (try? file.attribute(V.Attribute.complete)) == .int(1)
        info = r.info([V.Attribute.templateName, V.Attribute.templateText, V.Attribute.modelType, V.Attribute.toolVersion,
                       V.Attribute.created, V.Attribute.probeFile, V.Attribute.commandLine])
    }

    /// Index of the span named `name`. - Throws: `unknownSpan`.
    public func spanIndex(_ name: String) throws -> Int {
        guard let i = spans.firstIndex(of: name) else {
            throw AnalysisError.unknownSpan(path: path, name: name, available: spans)
        }
        return i
    }

    /// Index of a complete checkpoint named by its name or its step. - Throws: `unknownCheckpoint`.
    public func checkpointIndex(_ key: String) throws -> Int {
        try Analysis.checkpointIndex(key, checkpoints: checkpoints, steps: steps, path: path)
    }

    /// Throws `incompleteRun` unless at least `n` checkpoints are complete.
    public func requireCheckpoints(_ n: Int) throws {
        if checkpoints.count < n { throw AnalysisError.incompleteRun(path: path, complete: checkpoints.count, needed: n) }
    }

    /// Attention mass at complete checkpoint `c`: `[probe, span, layer, head]` (NaN where the span
    /// was not found).
    public func attention(checkpoint c: Int) throws -> [Float] {
        try slab(V.attentionMass.name, checkpoint: c)
    }

    /// Direct logit attribution of every head split by source span at complete checkpoint `c`:
    /// `[probe, span, layer, head]` (NaN where the span was not found). - Throws: `malformedRun`
    /// (also for a version-1 file, which has no such variable).
    public func headDLABySpan(checkpoint c: Int) throws -> [Float] {
        try slab(V.headDLABySpan.name, checkpoint: c)
    }

    /// One checkpoint's `[probe, span, layer, head]` slab of a float variable.
    func slab(_ field: String, checkpoint c: Int) throws -> [Float] {
        precondition(checkpoints.indices.contains(c), "checkpoint index out of range")
        let expected = probes.count * spans.count * layers * heads
        let slab: (shape: [Int], values: [Float])
        do { slab = try file.readFloats(field, slab: fileIndex[c]) } catch let e as HDF5Error {
            throw AnalysisError.malformedRun(path: path, field: field, detail: e.description)
        }
        guard slab.values.count == expected else {
            throw AnalysisError.malformedRun(path: path, field: field,
                                             detail: "slab \(fileIndex[c]) holds \(slab.values.count) values, expected \(expected)")
        }
        return slab.values
    }

    /// Attention mass on span `s` at checkpoint `c`: `[probe, layer, head]`, as Double.
    public func attention(checkpoint c: Int, span s: Int) throws -> [Double] {
        let slab = try attention(checkpoint: c)
        let P = probes.count, S = spans.count, LH = layers * heads
        var out = [Double](repeating: .nan, count: P * LH)
        for p in 0..<P {
            let src = (p * S + s) * LH
            for k in 0..<LH { out[p * LH + k] = Double(slab[src + k]) }
        }
        return out
    }
}

/// Direct logit attribution towards logit[context answer] − logit[memory answer] at the answer
/// position, complete checkpoints only (docs/hdf5-schema.md). Every component is NaN for a probe
/// whose answers have no first token; the components sum to `logitDiff`.
public struct LogitAttributionData: Sendable {
    /// `[checkpoint, probe]`: logit[a] − logit[b] of the model's output.
    public let logitDiff: [Float]
    /// `[checkpoint, probe, layer, head]`.
    public let head: [Float]
    /// `[checkpoint, probe, layer]`.
    public let mlp: [Float]
    /// `[checkpoint, probe]`: embedding, Σ attention output biases, final-norm bias, remainder.
    public let embed: [Float]
    public let attentionBias: [Float]
    public let normBias: [Float]
    public let remainder: [Float]
    /// The run's `dla_definition` attribute, when present.
    public let definition: String?
}

/// Index of the complete checkpoint named `key` (a name, else a step). - Throws: `unknownCheckpoint`.
func checkpointIndex(_ key: String, checkpoints: [String], steps: [Int64], path: String) throws -> Int {
    if let i = checkpoints.firstIndex(of: key) { return i }
    if let s = Int64(key), let i = steps.firstIndex(of: s) { return i }
    throw AnalysisError.unknownCheckpoint(path: path, name: key, available: checkpoints)
}

/// Reads and shape-checks one field at a time, turning HDF5 errors into `malformedRun`.
/// Whether `url` is an HDF5 file carrying the root attribute `name` (any value): how a reader tells the
/// kinds of run file apart (probe, intervention, attribution, criticality).
func fileCarries(_ url: URL, attribute name: String) -> Bool {
    guard let file = try? HDF5File.open(at: url, writable: false) else { return false }
    defer { try? file.close() }
    return (try? file.attribute(name)) != nil
}

/// Opens a file of one of cpiscope's run kinds for reading: an HDF5 file carrying `versionAttribute` equal to
/// `version` (intervention, attribution and criticality files; `command` names what writes them).
/// - Throws: `notARun` (not HDF5, or no such attribute), `cannotOpen`, `malformedRun`, `schemaVersion`.
func openVersionedFile(_ url: URL, versionAttribute: String, version: Int64, command: String) throws -> HDF5File {
    let path = url.path
    let file: HDF5File
    do { file = try HDF5File.open(at: url, writable: false) } catch let e as HDF5Error {
        if case .notHDF5 = e { throw AnalysisError.notARun(path: path, detail: "not an HDF5 file") }
        throw AnalysisError.cannotOpen(path: path, reason: e.description)
    }
    guard let found = try? file.attribute(versionAttribute) else {
        try? file.close()
        throw AnalysisError.notARun(path: path, detail: "no \(versionAttribute) attribute (not written by `\(command)`)")
    }
    guard case .int(let v) = found else {
        try? file.close()
        throw AnalysisError.malformedRun(path: path, field: versionAttribute, detail: "\(found), not an integer")
    }
    guard v == version else {
        try? file.close()
        throw AnalysisError.schemaVersion(path: path, found: v, supported: version)
    }
    return file
}

struct FieldReader {
    let file: HDF5File
    let path: String
    /// Every dimension's length, once the coordinates are read: the expected shape of a `SchemaVariable`.
    var sizes: [String: Int] = [:]

    /// The shape `v` must have (its dimensions' lengths).
    func expected(_ v: SchemaVariable) throws -> [Int] {
        guard let shape = v.shape(sizes) else {
            throw AnalysisError.malformedRun(path: path, field: v.name, detail: "dimensions \(v.dims) not all known")
        }
        return shape
    }

    func expectShape(_ v: SchemaVariable) throws { try expectShape(v.name, try expected(v)) }
    func strings(_ v: SchemaVariable) throws -> [String] { try strings(v.name, try expected(v)) }
    func uint8(_ v: SchemaVariable) throws -> [UInt8] { try uint8(v.name, try expected(v)) }
    func int64(_ v: SchemaVariable) throws -> [Int64] { try int64(v.name, try expected(v)) }
    func floats(_ v: SchemaVariable) throws -> [Float] { try floats(v.name, try expected(v)) }

    func wrap<T>(_ field: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as HDF5Error {
            if case .missingObject = e { throw AnalysisError.malformedRun(path: path, field: field, detail: "missing") }
            throw AnalysisError.malformedRun(path: path, field: field, detail: e.description)
        }
    }

    func check(_ field: String, _ shape: [Int], _ expected: [Int]?) throws {
        if let expected, shape != expected {
            throw AnalysisError.malformedRun(path: path, field: field, detail: "shape \(shape), expected \(expected)")
        }
    }

    func expectShape(_ field: String, _ expected: [Int]) throws {
        try check(field, try wrap(field) { try file.shape(of: field) }, expected)
    }

    func length(_ field: String) throws -> Int {
        let shape = try wrap(field) { try file.shape(of: field) }
        guard shape.count == 1 else {
            throw AnalysisError.malformedRun(path: path, field: field, detail: "rank \(shape.count), expected a 1-D coordinate")
        }
        return shape[0]
    }

    func strings(_ field: String, _ expected: [Int]? = nil) throws -> [String] {
        let r = try wrap(field) { try file.readStrings(field) }
        if expected == nil, r.shape.count != 1 {
            throw AnalysisError.malformedRun(path: path, field: field, detail: "rank \(r.shape.count), expected a 1-D coordinate")
        }
        try check(field, r.shape, expected)
        return r.values
    }

    func int64(_ field: String, _ expected: [Int]) throws -> [Int64] {
        let r = try wrap(field) { try file.readInt64(field) }
        try check(field, r.shape, expected)
        return r.values
    }

    func uint8(_ field: String, _ expected: [Int]) throws -> [UInt8] {
        let r = try wrap(field) { try file.readUInt8(field) }
        try check(field, r.shape, expected)
        return r.values
    }

    /// The string and integer attributes among `keys`, as text (others are left out).
    func info(_ keys: [String]) -> [String: String] {
        var info: [String: String] = [:]
        for key in keys {
            switch try? file.attribute(key) {
            case .string(let s)?: info[key] = s
            case .int(let i)?: info[key] = String(i)
            default: break
            }
        }
        return info
    }

    func floats(_ field: String, _ expected: [Int]) throws -> [Float] {
        let r = try wrap(field) { try file.readFloats(field) }
        try check(field, r.shape, expected)
        return r.values
    }
}

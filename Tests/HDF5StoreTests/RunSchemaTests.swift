// The one definition of the run formats (HDF5Store/RunSchema.swift) is complete and consistent: names
// are unique, every variable's dimensions are dimensions of its file, the creation-order lists hold
// every variable once, and the documentation tables (docs/hdf5-schema.md, docs/interventions.md) name
// every variable. That the writers produce the same bytes as before the schema moved here is checked by
// the CLI and Python layout tests (Tests/python/test_run_file.py, hdf5_layout_checks.py).
import Foundation
import Testing
import HDF5Store

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("Run schema")
struct RunSchemaTests {
    static let runDims: Set<String> = [RunSchema.Dim.checkpoint, RunSchema.Dim.probe, RunSchema.Dim.span, RunSchema.Dim.layer,
                                       RunSchema.Dim.head, RunSchema.Dim.lensLayer, RunSchema.Dim.answer, RunSchema.Dim.dumpProbe,
                                       RunSchema.Dim.dumpLayer, RunSchema.Dim.queryPos, RunSchema.Dim.keyPos, RunSchema.Dim.dModel]
    static let interventionDims: Set<String> = [InterventionSchema.Dim.checkpoint, InterventionSchema.Dim.probe,
                                                InterventionSchema.Dim.intervention, InterventionSchema.Dim.answer]

    @Test("probe run: unique names, known dimensions, per-checkpoint variables lead with checkpoint, each listed once")
    func probeRun() {
        let all = RunSchema.variables()
        #expect(Set(all.map(\.name)).count == all.count, "duplicate names: \(all.map(\.name))")
        #expect(all.count == 40, "the version-2 run with tuned lens and dumps has 40 variables besides the coordinates (36 + generation_end and the first-answer readout), found \(all.count)")
        for v in all {
            #expect(Set(v.dims).isSubset(of: Self.runDims), "\(v.name): unknown dimension in \(v.dims)")
            #expect(!v.meaning.isEmpty, "\(v.name): no meaning")
        }
        for v in RunSchema.measurements + RunSchema.dla + RunSchema.generationDetails + RunSchema.tunedLens + RunSchema.perCheckpoint + RunSchema.dumps {
            #expect(v.dims.first == RunSchema.Dim.checkpoint, "\(v.name) is written per checkpoint but its first dimension is \(v.dims)")
        }
        for v in RunSchema.perProbe { #expect(v.dims.first == RunSchema.Dim.probe, "\(v.name): \(v.dims)") }
        #expect(RunSchema.variables(version: 1, tunedLens: false, dumps: false).allSatisfy { !RunSchema.dla.contains($0) })
        #expect(RunSchema.perCheckpoint.last == RunSchema.checkpointComplete, "checkpoint_complete must be created (and written) last")
    }

    @Test("intervention run: unique names, known dimensions, each listed once")
    func interventionRun() {
        let all = InterventionSchema.variables()
        #expect(Set(all.map(\.name)).count == all.count)
        #expect(all.count == 21, "found \(all.count)")
        for v in all { #expect(Set(v.dims).isSubset(of: Self.interventionDims), "\(v.name): unknown dimension in \(v.dims)") }
        #expect(InterventionSchema.variables(generate: false).count == 15)
    }

    @Test("the docs name every variable: docs/hdf5-schema.md (probe run, criticality file), docs/interventions.md (intervention run), docs/attribution.md (attribution run)")
    func documented() throws {
        for (doc, variables) in [("docs/hdf5-schema.md", [RunSchema.step] + RunSchema.variables()),
                                 ("docs/hdf5-schema.md", CriticalitySchema.variables),
                                 ("docs/interventions.md", InterventionSchema.variables()),
                                 ("docs/attribution.md", AttributionSchema.variables)] {
            let text = try String(contentsOf: root.appendingPathComponent(doc), encoding: .utf8)
            for v in variables { #expect(text.contains("`\(v.name)`"), "\(doc) does not name `\(v.name)`") }
        }
    }

    @Test("a variable created from its definition has the definition's type and shape")
    func createsFromDefinition() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("schema-\(UUID().uuidString).h5")
        defer { try? FileManager.default.removeItem(at: url) }
        let f = try HDF5File.create(at: url, overwrite: false)
        try f.createDimension(RunSchema.Dim.checkpoint, strings: ["a", "b"])
        try f.createDimension(RunSchema.Dim.probe, strings: ["p", "q", "r"])
        try f.createDimension(RunSchema.Dim.answer, strings: RunSchema.answers)
        try f.createVariable(RunSchema.answerLoglik)
        #expect(try f.shape(of: RunSchema.answerLoglik.name) == [2, 3, 2])
        #expect(try f.elementType(of: RunSchema.answerLoglik.name) == .float32)
        #expect(RunSchema.answerLoglik.shape([RunSchema.Dim.checkpoint: 2, RunSchema.Dim.probe: 3, RunSchema.Dim.answer: 2]) == [2, 3, 2])
        #expect(RunSchema.answerLoglik.shape([:]) == nil)
        try f.close()
    }
}

// Bad input is refused with a clear AnalysisError naming the file and field, never a trap:
// non-HDF5 files, HDF5 files not written by cpiscope, other schema versions, missing or
// misshapen variables, unknown checkpoints or spans, bad options, and unmatched run pairs.
import Analysis
import Foundation
import HDF5Store
import Testing

func expectError(_ body: () throws -> Void, _ match: (AnalysisError) -> Bool, _ what: String) {
    do {
        try body()
        Issue.record("\(what): no error thrown")
    } catch let e as AnalysisError {
        #expect(match(e), "\(what): got \(e)")
        #expect(!e.description.contains("\n") && !e.hint.isEmpty, "\(what): one-line description and a hint")
    } catch {
        Issue.record("\(what): threw a non-Analysis error \(error)")
    }
}

@Suite("Run file errors")
struct RunFileErrorTests {
    @Test("a text file, a missing file and a plain HDF5 file are not runs")
    func notRuns() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = dir.appendingPathComponent("notes.h5")
        try Data("hello".utf8).write(to: text)
        expectError({ _ = try RunData(url: text) }, { if case .notARun(_, let d) = $0 { return d.contains("HDF5") }; return false }, "text file")
        expectError({ _ = try RunData(url: dir.appendingPathComponent("nope.h5")) }, { if case .cannotOpen = $0 { return true }; return false }, "missing")
        let plain = dir.appendingPathComponent("plain.h5")
        let f = try HDF5File.create(at: plain, overwrite: false)
        try f.createDimension("x", ints: [1, 2])
        try f.close()
        expectError({ _ = try RunData(url: plain) }, { if case .notARun(_, let d) = $0 { return d.contains("cpiscope_schema_version") }; return false }, "plain HDF5")
        // A criticality file: diff cannot read it, report can, and the message says so (not "read files written by cpiscope probe").
        let crit = dir.appendingPathComponent("crit.h5")
        let g = try HDF5File.create(at: crit, overwrite: false)
        try g.setAttribute(CriticalitySchema.versionAttribute, .int(1))
        try g.close()
        expectError({ _ = try RunData(url: crit) }, { e in
            guard case .notARun(_, let d) = e else { return false }
            return d.contains("criticality file") && d.contains("`cpiscope report` reads it") && e.hint.contains("report reads those and `cpiscope criticality` files")
                && !e.hint.contains("diff and report read files written by `cpiscope probe`")
        }, "criticality file")
    }

    @Test("another schema version is refused, naming both versions")
    func schemaVersion() throws {
        var s = SyntheticRun(); s.schemaVersion = 3
        let (dir, url) = try makeRun(s)
        defer { try? FileManager.default.removeItem(at: dir) }
        expectError({ _ = try RunData(url: url) }, { if case .schemaVersion(_, 3, 2) = $0 { return true }; return false }, "version 3")
    }

    @Test("missing and misshapen variables are named")
    func malformed() throws {
        for (omit, misshapen, field) in [("mc_ratio", nil, "mc_ratio"), (nil, "counterfactual_correct", "counterfactual_correct"),
                                         ("checkpoint_complete", nil, "checkpoint_complete"), (nil, "attention_mass", "attention_mass")] as [(String?, String?, String)] {
            var s = SyntheticRun()
            if let omit { s.omit = [omit] }
            s.misshapen = misshapen
            let (dir, url) = try makeRun(s, label: field)
            defer { try? FileManager.default.removeItem(at: dir) }
            expectError({ _ = try RunData(url: url) }, { if case .malformedRun(_, let f, _) = $0 { return f == field }; return false }, field)
        }
    }

    @Test("unknown checkpoints and spans, --each with --to, equal ends and bad resample counts are refused")
    func badOptions() throws {
        let (dir, url) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        var o = DiffOptions(); o.from = "checkpoint-999"
        expectError({ _ = try DiffAnalysis.run(url, options: o) }, { if case .unknownCheckpoint(_, "checkpoint-999", let a) = $0 { return a.count == 6 }; return false }, "checkpoint")
        o = DiffOptions(); o.span = "nose"
        expectError({ _ = try DiffAnalysis.run(url, options: o) }, { if case .unknownSpan(_, "nose", _) = $0 { return true }; return false }, "span")
        o = DiffOptions(); o.each = true; o.to = "500"
        expectError({ _ = try DiffAnalysis.run(url, options: o) }, { if case .invalidOption("--each", _) = $0 { return true }; return false }, "each+to")
        o = DiffOptions(); o.from = "200"; o.to = "checkpoint-200"
        expectError({ _ = try DiffAnalysis.run(url, options: o) }, { if case .invalidOption = $0 { return true }; return false }, "same ends")
        o = DiffOptions(); o.resamples = 0
        expectError({ _ = try DiffAnalysis.run(url, options: o) }, { if case .invalidOption("--resamples", _) = $0 { return true }; return false }, "resamples")
    }

    @Test("runs with other probes or other checkpoints are not compared")
    func unmatched() throws {
        let (dir, url) = try makeRun()
        defer { try? FileManager.default.removeItem(at: dir) }
        var other = SyntheticRun(); other.probes[3] = "probe-x"
        try other.write(to: dir.appendingPathComponent("probes.h5"))
        expectError({ _ = try DiffAnalysis.run(url, options: DiffOptions(), against: dir.appendingPathComponent("probes.h5")) },
                    { if case .unmatchedRuns(_, _, let d) = $0 { return d.contains("probe-x") && d.contains("probe-3") }; return false }, "probes")
        var steps = SyntheticRun(); steps.steps[5] = 600
        try steps.write(to: dir.appendingPathComponent("steps.h5"))
        expectError({ _ = try DiffAnalysis.run(url, options: DiffOptions(), against: dir.appendingPathComponent("steps.h5")) },
                    { if case .unmatchedRuns(_, _, let d) = $0 { return d.contains("600") }; return false }, "steps")
        var partial = SyntheticRun(); partial.complete = [1, 1, 1, 1, 1, 0]
        try partial.write(to: dir.appendingPathComponent("partial.h5"))
        expectError({ _ = try DiffAnalysis.run(url, options: DiffOptions(), against: dir.appendingPathComponent("partial.h5")) },
                    { if case .unmatchedRuns = $0 { return true }; return false }, "incomplete other")
    }
}

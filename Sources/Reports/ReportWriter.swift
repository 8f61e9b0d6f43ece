// ReportWriter: `cpiscope report RUN.h5 -o DIR` (a probe run, or an intervention file:
// InterventionReport.swift) writes DIR/index.html (self-contained: inline CSS
// and SVG, no scripts, no network), DIR/report.md (the headline numbers) and DIR/*.csv (the table
// behind each chart). Existing files of those names are replaced; nothing else in DIR is touched.
import Analysis
import Foundation

/// What a report wrote.
public struct ReportOutput: Sendable {
    public let directory: URL
    /// File names inside `directory`, index.html first.
    public let files: [String]
    public let headline: Headline
}

public enum ReportWriter {
    /// Writes the report of `run` into `dir` (created if missing).
    /// - Throws: `AnalysisError` for the run and options, `ReportError` for the output.
    @discardableResult
    public static func write(run url: URL, to dir: URL, options: ReportOptions = ReportOptions()) throws -> ReportOutput {
        let run = try RunData(url: url)
        let model = try ReportModel(run: run, options: options)
        try makeDirectory(dir)
        let csvs = ReportFiles.csvs(model)
        let files = ["index.html", "report.md"] + csvs.map(\.0)
        try save(HTMLReport.page(model, files: files), dir.appendingPathComponent("index.html"))
        try save(ReportFiles.markdown(model, files: files), dir.appendingPathComponent("report.md"))
        for (name, text) in csvs { try save(text, dir.appendingPathComponent(name)) }
        return ReportOutput(directory: dir, files: files, headline: model.headline)
    }

    /// Writes the report of a probe run or of an intervention file (told apart by the
    /// `cpiscope_intervention_schema_version` attribute) into `dir`.
    /// - Throws: `AnalysisError` for the file and options, `ReportError` for the output.
    @discardableResult
    public static func write(file url: URL, to dir: URL, options: ReportOptions = ReportOptions()) throws -> ReportSummary {
        if InterventionRun.isInterventionFile(url) { return try InterventionReport.write(run: url, to: dir, options: options) }
        if CriticalityTable.isCriticalityFile(url) { return try CriticalityReport.write(run: url, to: dir, options: options) }
        if AttributionRun.isAttributionFile(url) { return try AttributionReport.write(run: url, to: dir, options: options) }
        let out = try write(run: url, to: dir, options: options)
        return ReportSummary(directory: out.directory, files: out.files, lines: out.headline.lines())
    }

    /// The section and chart ids of a criticality report.
    public static var criticalitySectionIDs: [String] { CriticalityReport.sectionIDs }
    public static var criticalityChartIDs: [String] { CriticalityReport.chartIDs }

    /// The section ids of an attribution report.
    public static var attributionSectionIDs: [String] { AttributionReport.sectionIDs }

    /// The section ids of an intervention report: the headline, then one per kind present, then the ranking.
    public static var interventionSectionIDs: [String] { InterventionReport.sectionIDs }

    /// The chart and table element ids of index.html.
    public static var chartIDs: [String] { HTMLReport.chartIDs }
    public static var tableIDs: [String] { HTMLReport.tableIDs }
    /// The chart and table ids of the report of a run with one complete checkpoint.
    public static var singleCheckpointChartIDs: [String] { HTMLReport.singleChartIDs }
    public static var singleCheckpointTableIDs: [String] { HTMLReport.singleTableIDs }
    /// The ids added for a run with direct logit attribution (schema version 2).
    public static var dlaChartIDs: [String] { DLAReport.chartIDs }
    public static var dlaTableIDs: [String] { DLAReport.tableIDs }

    static func makeDirectory(_ dir: URL) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir) {
            if !isDir.boolValue { throw ReportError.cannotCreateDirectory(path: dir.path, reason: "a file of that name exists") }
            return
        }
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw ReportError.cannotCreateDirectory(path: dir.path, reason: error.localizedDescription)
        }
    }

    static func save(_ text: String, _ url: URL) throws {
        do { try Data(text.utf8).write(to: url, options: .atomic) } catch {
            throw ReportError.writeFailed(path: url.path, reason: error.localizedDescription)
        }
    }
}

// Report rendering as a reader sees it (issue 29.6): every head of a 9-head model in every head heatmap
// (probe and intervention reports, also when only some heads were ablated), a knockout of every layer drawn
// as its own labelled bar rather than a point at the centre layer, DLA tables without repeated key
// checkpoints, and — in headless Chromium — no chart text clipped by its SVG's edges (colour-bar units
// included), with a control page proving the clipping check can fail.
import Analysis
import Foundation
import Reports
import Testing

/// The SVG element with id `id` in `html` (from `<svg id=` to its `</svg>`).
func svgElement(_ html: String, _ id: String) -> String? {
    guard let start = html.range(of: "<svg id=\"\(id)\""), let end = html.range(of: "</svg>", range: start.upperBound..<html.endIndex) else { return nil }
    return String(html[start.lowerBound..<end.upperBound])
}

/// The heatmap cells' tooltips: "ROWAXIS r, COLUMNAXIS c: value…" per cell, keyed by (row label, column label).
func heatmapCells(_ svg: String, rowAxis: String = "layer", columnAxis: String = "head") -> [String: String] {
    var out: [String: String] = [:]
    for part in svg.components(separatedBy: "<rect ").dropFirst() {
        guard let a = part.range(of: "<title>\(rowAxis) "), let b = part.range(of: "</title>", range: a.upperBound..<part.endIndex) else { continue }
        let title = String(part[a.upperBound..<b.lowerBound])       // "3, head 7: 0.1234 …"
        guard let comma = title.range(of: ", \(columnAxis) "), let colon = title.range(of: ": ", range: comma.upperBound..<title.endIndex) else { continue }
        out["\(title[..<comma.lowerBound]),\(title[comma.upperBound..<colon.lowerBound])"] = String(title[colon.upperBound...])
    }
    return out
}

@Suite("Report rendering")
struct RenderingTests {
    @Test("the head heatmaps of a 9-head model show every head: probe report (attention, change, DLA) and intervention report (ablation, patching)")
    func nineHeads() throws {
        // Probe run: 3 layers × 9 heads.
        var run = SyntheticRun().withDLA()
        run.heads = 9
        let (dir, _, out) = try writeReport(run)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        for id in ["heatmap-heads", "heatmap-heads-change", "heatmap-dla-first", "heatmap-dla-peak", "heatmap-dla-final"] {
            let cells = heatmapCells(try #require(svgElement(html, id), "\(id) missing"))
            #expect(cells.count == 3 * 9, "\(id): \(cells.count) cells, expected 27")
            for l in 0..<3 { for h in 0..<9 {
                let v = cells["\(l),\(h)"]
                #expect(v != nil && !(v ?? "").hasPrefix("n/a"), "\(id): layer \(l) head \(h) is \(v ?? "missing")")
            } }
        }

        // Intervention files of a 4-layer, 9-head model: every head ablated and patched, or only heads 0 and 1.
        for subset in [nil, [0, 1]] as [[Int]?] {
            var s = SyntheticInterventions(); s.layers = 4; s.heads = 9; s.headSubset = subset
            var o = ReportOptions(); o.resamples = 50
            let (d, _, iv, _) = try writeInterventionReport(s, options: o, label: "nineHeads\(subset == nil ? "All" : "Subset")")
            defer { try? FileManager.default.removeItem(at: d) }
            let page = try String(contentsOf: iv.appendingPathComponent("index.html"), encoding: .utf8)
            for id in ["heatmap-ablation-heads-1", "heatmap-ablation-heads-2", "heatmap-patching-heads-1"] {
                let cells = heatmapCells(try #require(svgElement(page, id), "\(id) missing"))
                #expect(cells.count == 4 * 9, "\(id) (heads \(subset.map(String.init(describing:)) ?? "all")): \(cells.count) cells, expected 36")
                for l in 0..<4 { for h in 0..<9 {
                    let v = try #require(cells["\(l),\(h)"], "\(id): no cell for layer \(l) head \(h)")
                    let measured = subset?.contains(h) ?? true
                    #expect(v.hasPrefix("n/a") != measured, "\(id): layer \(l) head \(h) reads '\(v)'")
                } }
            }
        }
        // Without model_config the heads come from the file's interventions: still all 9 when all are there.
        var bare = SyntheticInterventions(); bare.layers = 2; bare.heads = 9; bare.modelConfig = false
        var o = ReportOptions(); o.resamples = 50
        let (d2, _, iv2, _) = try writeInterventionReport(bare, options: o, label: "nineHeadsBare")
        defer { try? FileManager.default.removeItem(at: d2) }
        let page2 = try String(contentsOf: iv2.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(heatmapCells(try #require(svgElement(page2, "heatmap-ablation-heads-1"))).count == 2 * 9)
    }

    @Test("a knockout of every layer is its own labelled bar, not a point at the centre layer")
    func allLayerKnockout() throws {
        var o = ReportOptions(); o.resamples = 50
        let (dir, _, out, _) = try writeInterventionReport(SyntheticInterventions(), options: o)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        for k in 1...2 {
            let line = try #require(svgElement(html, "chart-knockout-\(k)"))
            #expect(!line.contains("subject"), "chart-knockout-\(k) still plots the all-layer knockout on the layer axis")
            #expect(line.contains("context (1 layer)"))
            let bars = try #require(svgElement(html, "chart-knockout-all-\(k)"), "no bar chart for the all-layer knockout")
            #expect(bars.contains(">subject, all layers</text>") && bars.contains("<rect "), "\(bars.prefix(400))")
            #expect(bars.contains("every layer (0–2)"))
        }
        // Its numbers are still in the table and the CSV.
        #expect(html.contains("<td>knockout subject L0-2</td>"))
    }

    @Test("DLA tables list each key checkpoint once when the peak is the first checkpoint")
    func keyCheckpointsOnce() throws {
        var run = SyntheticRun().withDLA()
        run.accuracy = [0.875, 0.75, 0.5, 0.5, 0.25, 0.125]   // peak = first
        let (dir, _, out) = try writeReport(run)
        defer { try? FileManager.default.removeItem(at: dir) }
        let html = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        for id in ["dla-components", "dla-role-changes"] {
            let start = try #require(html.range(of: "<table id=\"\(id)\">"))
            let head = html[start.upperBound...].components(separatedBy: "</thead>")[0]
            let columns = head.components(separatedBy: "<th>").dropFirst().map { $0.components(separatedBy: "</th>")[0] }
            let checkpointColumns = columns.filter { $0.hasPrefix("checkpoint-") }
            #expect(checkpointColumns.count == 2, "\(id): \(columns)")
            #expect(checkpointColumns.first?.hasPrefix("checkpoint-0 (first = peak)") == true && checkpointColumns.last?.hasPrefix("checkpoint-500 (final)") == true,
                    "\(id): \(checkpointColumns)")
        }
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        let row = try #require(md.split(separator: "\n").first { $0.hasPrefix("| component | ") })
        #expect(row == "| component | checkpoint-0 (first = peak) | checkpoint-500 (final) |", "\(row)")
    }
}

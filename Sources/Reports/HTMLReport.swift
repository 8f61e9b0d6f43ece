// The self-contained HTML report: one file, inline CSS and SVG, no scripts, no network.
// Chart element ids (tests and users rely on them):
//   chart-accuracy, chart-attention, chart-mc, heatmap-context-layers, heatmap-subject-layers,
//   heatmap-heads, heatmap-heads-change, chart-lens-context, chart-lens-memory, heatmap-mc-lens,
//   heatmap-mc-tuned-lens (runs with a tuned lens), and the tables verdicts, spearman, top-heads,
//   probe-table; runs with direct logit attribution
//   (schema version 2) add DLAReport's charts and tables (DLAReport.swift).
// A run with one complete checkpoint has no trajectory, verdict or change between checkpoints: it gets
//   a `checkpoint` section with the table levels (each measure's mean and interval), chart-layers-at-checkpoint,
//   heatmap-heads, top-heads (heads ranked by mean), the logit-lens charts, chart-mc-lens-at-checkpoint and
//   probe-table; DLA keeps its heatmap, heads, span split and components at that checkpoint.
import Analysis
import Foundation

enum HTMLReport {
    static let chartIDs = ["chart-accuracy", "chart-attention", "chart-mc", "heatmap-context-layers", "heatmap-subject-layers",
                           "heatmap-heads", "heatmap-heads-change", "chart-lens-context", "chart-lens-memory", "heatmap-mc-lens"]
    static let tableIDs = ["verdicts", "spearman", "top-heads", "probe-table"]
    /// A run with one complete checkpoint: no trajectory, verdict or change; means at the checkpoint.
    static let singleChartIDs = ["chart-layers-at-checkpoint", "heatmap-heads", "chart-lens-context", "chart-lens-memory", "chart-mc-lens-at-checkpoint"]
    static let singleTableIDs = ["levels", "top-heads", "probe-table"]

    static let style = """
    body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1b1b1b;margin:0;background:#fff}
    header,main,footer{max-width:1080px;margin:0 auto;padding:0 20px}
    header{padding-top:18px;border-bottom:1px solid #ddd}
    h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #eee;padding-bottom:4px}
    .meta{color:#555;margin:4px 0 12px}.meta code{background:#f3f3f3;padding:1px 4px;border-radius:3px}
    nav a{margin-right:12px}
    .headline{background:#f6f8fa;border-left:4px solid #0072b2;padding:10px 14px;margin:14px 0}
    .verdict{font-weight:600}.v-inversion{color:#b2182b}.v-rising{color:#1a7f37}.v-falling{color:#8250df}.v-flat,.v-insufficient{color:#555}
    figure{margin:10px 0 18px}.ftitle{font-weight:600;margin-bottom:2px}figcaption{color:#444;font-size:13px;max-width:760px}
    .grid2{display:flex;flex-wrap:wrap;gap:8px 24px}
    .scroll{overflow:auto;max-width:100%}
    .tablewrap{overflow:auto;max-height:560px;border:1px solid #ddd}
    table{border-collapse:collapse;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
    thead th{position:sticky;top:0;background:#fafafa;border-bottom:1px solid #ccc}
    td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
    .strip{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:nowrap;letter-spacing:1px}
    .sC{color:#0072b2;font-weight:700}.sP{color:#d55e00;font-weight:700}.sB{color:#009e73;font-weight:700}.sN{color:#aaa}
    details summary{cursor:pointer}.prompt{max-width:360px;white-space:pre-wrap;word-break:break-word}
    .gen{max-width:240px;white-space:pre-wrap;word-break:break-word}
    svg.chart{display:block;max-width:100%;height:auto}
    svg .grid{stroke:#e6e6e6;stroke-width:1}svg .axis{stroke:#444;stroke-width:1}
    svg .tick{font-size:11px;fill:#333}svg .label{font-size:12px;fill:#111}svg .label.small{font-size:11px}
    svg .legend{font-size:12px;fill:#222}svg .line{fill:none;stroke-width:2}svg .band{opacity:.16;stroke:none}
    svg .frame{fill:none;stroke:#888;stroke-width:.5}
    footer{color:#555;font-size:13px;border-top:1px solid #ddd;margin-top:28px;padding-bottom:30px}
    """

    static func page(_ m: ReportModel, files: [String]) -> String {
        let run = m.run, h = m.headline
        let C = run.checkpoints.count
        var o = documentStart(file: run.path)
        let checkpointFacts = m.single ? "1 checkpoint (\(run.checkpoints[0]), step \(run.steps[0]))"
            : "\(C) checkpoints (steps \(run.steps.first ?? 0)–\(run.steps.last ?? 0))"
        o += header(title: "cpiscope report", fileLabel: "Run", path: run.path, info: run.info,
                    facts: "\(checkpointFacts) · \(run.probes.count) probes · \(run.layers) layers × \(run.heads) heads",
                    options: m.options, incomplete: run.incompleteCheckpoints)
        let dlaLink = m.dla == nil ? "" : "<a href=\"#dla\">Logit attribution</a>"
        if m.single {
            o += "<nav><a href=\"#checkpoint\">Checkpoint</a><a href=\"#layers\">Layers</a><a href=\"#heads\">Heads</a>\(dlaLink)<a href=\"#lens\">Logit lens</a><a href=\"#probes\">Probes</a></nav></header><main>"
            o += checkpointSection(m)
        } else {
            o += "<nav><a href=\"#verdict\">Verdict</a><a href=\"#trajectories\">Trajectories</a><a href=\"#layers\">Layers</a><a href=\"#heads\">Heads</a>\(dlaLink)<a href=\"#lens\">Logit lens</a><a href=\"#probes\">Probes</a></nav></header><main>"
            o += verdictAndTrajectories(m)
        }
        o += m.single ? layersAtCheckpoint(m) : layersAcrossCheckpoints(m)
        o += heads(m)
        if let d = m.dla { o += DLAReport.section(m, d) }
        o += lens(m)
        o += probes(m)
        o += documentEnd(files: files, toolVersion: run.info["tool_version"] ?? "", definitions: "docs/analysis.md")
        return o
    }

    /// The verdict table and the trajectory charts (two or more checkpoints).
    static func verdictAndTrajectories(_ m: ReportModel) -> String {
        let run = m.run, h = m.headline
        var o = ""
        // Verdict.
        o += "<section id=\"verdict\"><h2>Verdict</h2><div class=\"headline\"><p>\(esc(m.headlineSentence))</p>"
        o += "<p class=\"verdict v-\(h.verdict.rawValue)\">\(esc(h.primary.label)): \(h.verdict.rawValue)</p></div>"
        o += "<div class=\"scroll\"><table id=\"verdicts\"><thead><tr><th>measure</th><th>unit</th><th>first</th><th>peak (step)</th><th>final</th><th>rise to peak [95% CI]</th><th>drop peak→final [95% CI]</th><th>n</th><th>minimum effect</th><th>verdict</th></tr></thead><tbody>"
        for t in h.trajectories.measures + h.trajectories.layers {
            o += "<tr><td>\(esc(t.label))</td><td>\(esc(t.unit))</td><td class=\"num\">\(Fmt.number(t.values.first ?? .nan))</td>"
            o += "<td class=\"num\">\(t.peak.map { "\(Fmt.number(t.values[$0])) (\(run.steps[$0]))" } ?? (t.constant ? "none (constant)" : "n/a"))</td><td class=\"num\">\(Fmt.number(t.values.last ?? .nan))</td>"
            o += "<td class=\"num\">\(Fmt.number(t.rise.value)) \(Fmt.interval(t.rise.interval))</td><td class=\"num\">\(Fmt.number(t.drop.value)) \(Fmt.interval(t.drop.interval))</td>"
            o += "<td class=\"num\">\(t.drop.n)</td><td class=\"num\">\(Fmt.number(t.minimumEffect))</td><td class=\"verdict v-\(t.verdict.rawValue)\">\(t.verdict.rawValue)</td></tr>"
        }
        o += "</tbody></table></div>"
        o += "<p class=\"meta\">A change counts when it exceeds the half-width of its 95% paired-bootstrap interval and reaches the minimum effect: the larger of the measure's floor (\(Fmt.number(VerdictFloor.accuracy, 2)) for accuracies, \(Fmt.number(VerdictFloor.attention, 2)) for attention mass, \(Fmt.number(VerdictFloor.mc, 2)) for M_C) and \(Fmt.number(VerdictFloor.relative, 1)) × the curve's range across checkpoints. inversion: the peak is inside the trajectory and both the rise to it and the drop after it count. rising / falling: the net change first→final counts. flat: none does; a constant series has no peak. The peak is chosen on the same data, so read the drop's interval as descriptive.</p></section>"

        // Trajectories.
        let band = { (measure: Measure) in m.bands[measure] }
        o += "<section id=\"trajectories\"><h2>Trajectories</h2><div class=\"grid2\">"
        o += figure(LineChart(id: "chart-accuracy", title: "Accuracy across checkpoints", x: m.x, xLabel: m.xLabel,
                              yLabel: "accuracy (fraction of probes)",
                              series: [Series(name: "counterfactual (context answer)", color: palette[0], y: m.measures.curve(.counterfactualAccuracy), band: band(.counterfactualAccuracy)),
                                       Series(name: "parametric (memorised answer)", color: palette[1], y: m.measures.curve(.parametricAccuracy), band: band(.parametricAccuracy))],
                              yRange: 0...1, xNames: run.checkpoints).svg(),
                    "Share of probes whose greedy generation contains the context answer (counterfactual) or the memorised answer (parametric). Bands: 95% bootstrap interval of the mean over probes.")
        o += figure(LineChart(id: "chart-attention", title: "Attention on context vs subject", x: m.x, xLabel: m.xLabel,
                              yLabel: "attention mass (0–1)",
                              series: [Series(name: "context span", color: palette[0], y: m.measures.curve(.contextAttention), band: band(.contextAttention)),
                                       Series(name: "subject span", color: palette[2], y: m.measures.curve(.subjectAttention), band: band(.subjectAttention))],
                              xNames: run.checkpoints).svg(),
                    "Attention from the answer position (last prompt token) to each span, summed over the span's tokens, averaged over all layers and heads, then over probes.")
        if let d = m.dla { o += DLAReport.headsChart(m, d) }
        var mcSeries = [Series(name: "mean M_C, last lens layer", color: palette[3], y: m.measures.curve(.mcLastLayer), band: band(.mcLastLayer))]
        var mcCaption = "Probability of the context answer's first token relative to both answers' first tokens, at the model output, read at the last prompt token."
        if let first = Self.firstAnswerCurve(run) {
            mcSeries.append(Series(name: "mean M_C at the first answer token", color: palette[4], y: first.mean, dashed: true))
            mcCaption += " Dashed: the same ratio read where the greedy generation emits either answer's first token (first_answer_mc_ratio; docs/probes-and-templates.md, readout positions), over the probes whose generation names an answer: "
                + zip(run.checkpoints, first.count).map { "\($0) \($1) of \(run.probes.count)" }.joined(separator: ", ") + "."
        }
        o += figure(LineChart(id: "chart-mc", title: "M_C at the last layer", x: m.x, xLabel: m.xLabel,
                              yLabel: "M_C = p_ctx / (p_ctx + p_mem)", series: mcSeries,
                              yRange: 0...1, xNames: run.checkpoints).svg(), mcCaption)
        o += "</div></section>"
        return o
    }

    /// Per checkpoint, the mean of the first-answer-token M_C over the probes that have it (NaN when none
    /// does), and how many do; nil for files without the readout.
    static func firstAnswerCurve(_ run: RunData) -> (mean: [Double], count: [Int])? {
        guard let values = run.firstAnswerMC else { return nil }
        let P = run.probes.count
        var mean: [Double] = [], count: [Int] = []
        for c in run.checkpoints.indices {
            let finite = values[(c * P)..<((c + 1) * P)].filter(\.isFinite).map(Double.init)
            mean.append(finite.isEmpty ? .nan : finite.reduce(0, +) / Double(finite.count))
            count.append(finite.count)
        }
        return (mean, count)
    }

    /// One checkpoint: each measure's mean over probes with its interval, in place of the verdicts.
    static func checkpointSection(_ m: ReportModel) -> String {
        guard let x = m.levels else { return "" }
        var o = "<section id=\"checkpoint\"><h2>One checkpoint: \(esc(x.name))</h2><div class=\"headline\"><p>\(esc(m.headlineSentence))</p></div>"
        o += "<div class=\"scroll\"><table id=\"levels\"><thead><tr><th>measure</th><th>unit</th><th>mean [95% CI]</th><th>n</th></tr></thead><tbody>"
        for e in x.measures {
            o += "<tr><td>\(esc(e.measure.label))</td><td>\(esc(e.measure.unit))</td><td class=\"num\">\(Fmt.number(e.estimate.value)) \(Fmt.interval(e.estimate.interval))</td><td class=\"num\">\(e.estimate.n)</td></tr>"
        }
        o += "</tbody></table></div>"
        o += "<p class=\"meta\">The run has one complete checkpoint, so the report has no trajectories, peak, drop or verdict (they compare checkpoints); every number is the mean over probes at \(esc(x.name)) with its 95% bootstrap interval. Compare two runs of this checkpoint (two templates or probe sets) with <code>cpiscope diff A.h5 --against B.h5</code>.</p></section>"
        return o
    }

    /// Context and subject attention per layer at the one checkpoint, with 95% bands.
    static func layersAtCheckpoint(_ m: ReportModel) -> String {
        guard let context = m.headline.levels, let subject = m.subjectLevels else { return "" }
        let series = [(context, "context span", palette[0]), (subject, "subject span", palette[2])].map { x, name, color in
            Series(name: name, color: color, y: x.layers.map(\.estimate.value), band: x.layers.map(\.estimate.interval))
        }
        var o = "<section id=\"layers\"><h2>Layers at \(esc(context.name))</h2>"
        o += figure(LineChart(id: "chart-layers-at-checkpoint", title: "Attention per layer at \(context.name)", x: (0..<m.run.layers).map(Double.init),
                              xLabel: "layer", yLabel: "attention mass (0–1)", series: series,
                              xNames: (0..<m.run.layers).map { "layer \($0)" }, integerX: true).svg(),
                    "Mean over heads and probes of the attention mass from the answer position on each span, per layer. Bands: 95% bootstrap interval of the mean over probes.")
        return o + "</section>"
    }

    /// Context and subject attention per layer and checkpoint, and the Spearman table.
    static func layersAcrossCheckpoints(_ m: ReportModel) -> String {
        let run = m.run, h = m.headline
        var o = ""
        let layerLabels = (0..<run.layers).map(String.init)
        let ctxMax = max(m.contextLayers.filter(\.isFinite).max() ?? 1, 1e-9)
        let subjMax = max(m.subjectLayers.filter(\.isFinite).max() ?? 1, 1e-9)
        o += "<section id=\"layers\"><h2>Layers across checkpoints</h2>"
        o += figure(Heatmap(id: "heatmap-context-layers", title: "Context attention per layer and checkpoint", rowLabels: layerLabels,
                            columnLabels: m.columnLabels, rowAxis: "layer", columnAxis: m.xLabel, values: m.contextLayers,
                            scale: .viridis(0, ctxMax), unit: "attention mass on context (0–1)").svg(),
                    "Mean over heads and probes of the attention mass on the context span, per layer (rows) and checkpoint (columns); the per-layer version of the paper's Figure 3b.")
        o += figure(Heatmap(id: "heatmap-subject-layers", title: "Subject attention per layer and checkpoint", rowLabels: layerLabels,
                            columnLabels: m.columnLabels, rowAxis: "layer", columnAxis: m.xLabel, values: m.subjectLayers,
                            scale: .viridis(0, subjMax), unit: "attention mass on subject (0–1)").svg(),
                    "The same for the subject span.")
        o += "<h3>Spearman correlation across checkpoints: context attention (per layer) vs counterfactual accuracy</h3>"
        o += "<div class=\"tablewrap\"><table id=\"spearman\"><thead><tr><th>layer</th><th>rho</th><th>n checkpoints</th></tr></thead><tbody>"
        for c in h.trajectories.correlations {
            o += "<tr><td>\(c.layer.map(String.init) ?? "all layers")</td><td class=\"num\">\(Fmt.signed(c.correlation.rho))</td><td class=\"num\">\(c.correlation.n)</td></tr>"
        }
        o += "</tbody></table></div></section>"
        return o
    }

    /// The layer × head heatmap at one checkpoint, and with two or more checkpoints the change between two.
    static func heads(_ m: ReportModel) -> String {
        let run = m.run
        var o = ""
        let layerLabels = (0..<run.layers).map(String.init)
        let headLabels = (0..<run.heads).map(String.init)
        let hMax = max(m.headsMean.filter(\.isFinite).max() ?? 1, 1e-9)
        let span = m.options.span
        guard let d = m.change else {
            o += "<section id=\"heads\"><h2>Heads</h2><div class=\"grid2\">"
            o += figure(Heatmap(id: "heatmap-heads", title: "\(span) attention per head at \(run.checkpoints[m.headsCheckpoint])",
                                rowLabels: layerLabels, columnLabels: headLabels, rowAxis: "layer", columnAxis: "head", values: m.headsMean,
                                scale: .viridis(0, hMax), unit: "attention mass on \(span) (0–1)", maxWidth: 520, maxHeight: 480).svg(),
                        "Mean over probes of the attention mass on the \(esc(span)) span at \(esc(run.checkpoints[m.headsCheckpoint])) (step \(run.steps[m.headsCheckpoint])).")
            o += "</div>"
            if let x = m.levels {
                o += "<h3>Heads with the most \(esc(x.span)) attention at \(esc(x.name))</h3>"
                o += "<div class=\"tablewrap\"><table id=\"top-heads\"><thead><tr><th>rank</th><th>layer</th><th>head</th><th>mean [95% CI]</th><th>n</th></tr></thead><tbody>"
                for (i, h) in x.heads.prefix(20).enumerated() {
                    o += "<tr><td class=\"num\">\(i + 1)</td><td class=\"num\">\(h.layer)</td><td class=\"num\">\(h.head)</td><td class=\"num\">\(Fmt.number(h.estimate.value)) \(Fmt.interval(h.estimate.interval))</td><td class=\"num\">\(h.estimate.n)</td></tr>"
                }
                o += "</tbody></table></div>"
            }
            return o + "</section>"
        }
        var changeGrid = [Double](repeating: .nan, count: run.layers * run.heads)
        for x in d.heads { changeGrid[x.layer * run.heads + x.head] = x.change.estimate.value }
        let cMax = changeGrid.filter(\.isFinite).map(abs).max() ?? 1
        let byCell = Dictionary(d.heads.map { ($0.layer * run.heads + $0.head, $0) }, uniquingKeysWith: { a, _ in a })
        o += "<section id=\"heads\"><h2>Heads</h2><div class=\"grid2\">"
        o += figure(Heatmap(id: "heatmap-heads", title: "\(d.span) attention per head at \(run.checkpoints[m.headsCheckpoint])",
                            rowLabels: layerLabels, columnLabels: headLabels, rowAxis: "layer", columnAxis: "head", values: m.headsMean,
                            scale: .viridis(0, hMax), unit: "attention mass on \(d.span) (0–1)", maxWidth: 520, maxHeight: 480).svg(),
                    "Mean over probes of the attention mass on the \(esc(d.span)) span at \(esc(run.checkpoints[m.headsCheckpoint])) (step \(run.steps[m.headsCheckpoint])).")
        o += figure(Heatmap(id: "heatmap-heads-change", title: "Change in \(d.span) attention per head, \(d.fromName) → \(d.toName)",
                            rowLabels: layerLabels, columnLabels: headLabels, rowAxis: "layer", columnAxis: "head", values: changeGrid,
                            scale: .diverging(cMax), unit: "Δ attention mass (to − from)",
                            cellNote: { r, c in
                                guard let x = byCell[r * run.heads + c] else { return "" }
                                return " \(Fmt.interval(x.change.estimate.interval)), n = \(x.change.estimate.n)"
                            }, maxWidth: 520, maxHeight: 480).svg(),
                    "Paired change per head from \(esc(d.fromName)) (step \(d.fromStep)) to \(esc(d.toName)) (step \(d.toStep)); red = more attention on the span, blue = less. Hover a cell for its 95% interval.")
        o += "</div><h3>Top moving heads (\(esc(d.fromName)) → \(esc(d.toName)))</h3>"
        o += "<div class=\"tablewrap\"><table id=\"top-heads\"><thead><tr><th>rank</th><th>layer</th><th>head</th><th>from</th><th>to</th><th>change [95% CI]</th><th>n</th></tr></thead><tbody>"
        for (i, x) in d.heads.prefix(20).enumerated() {
            o += "<tr><td class=\"num\">\(i + 1)</td><td class=\"num\">\(x.layer)</td><td class=\"num\">\(x.head)</td><td class=\"num\">\(Fmt.number(x.change.meanFrom))</td><td class=\"num\">\(Fmt.number(x.change.meanTo))</td>"
            o += "<td class=\"num\">\(Fmt.signed(x.change.estimate.value)) \(Fmt.interval(x.change.estimate.interval))</td><td class=\"num\">\(x.change.estimate.n)</td></tr>"
        }
        o += "</tbody></table></div></section>"
        return o
    }

    /// The logit-lens curves and the M_C per lens layer.
    static func lens(_ m: ReportModel) -> String {
        let run = m.run
        var o = ""
        let lensX = (0..<run.lensLayers).map(Double.init)
        o += "<section id=\"lens\"><h2>Logit lens</h2><div class=\"grid2\">"
        for (a, id, name) in [(0, "chart-lens-context", "context answer"), (1, "chart-lens-memory", "memorised answer")] {
            let series = m.lensCheckpoints.enumerated().map { i, c in
                Series(name: "\(run.checkpoints[c])", color: ColorScale.viridis(0, 1).color(at: m.lensCheckpoints.count > 1 ? 0.9 * Double(i) / Double(m.lensCheckpoints.count - 1) : 0),
                       y: (0..<run.lensLayers).map { m.lens[(c * 2 + a) * run.lensLayers + $0] })
            }
            o += figure(LineChart(id: id, title: "Logit lens: \(name)", x: lensX, xLabel: "lens layer (0 = embeddings, l = after block l−1)",
                                  yLabel: "log-prob of first token (nats)", series: series, width: 520, height: 320, integerX: true).svg(),
                        "Mean over probes of the log-probability of the \(name)'s first token, read out after each layer, at \(m.lensCheckpoints.count) checkpoints (dark = early, yellow = late).")
        }
        o += "</div>"
        if let x = m.levels {
            o += figure(LineChart(id: "chart-mc-lens-at-checkpoint", title: "M_C per lens layer at \(x.name)", x: lensX,
                                  xLabel: "lens layer (0 = embeddings, l = after block l−1)", yLabel: "M_C = p_ctx / (p_ctx + p_mem)",
                                  series: [Series(name: "mean M_C", color: palette[3], y: x.lens.map(\.estimate.value), band: x.lens.map(\.estimate.interval))],
                                  yRange: 0...1, xNames: (0..<run.lensLayers).map { "lens layer \($0)" }, integerX: true).svg(),
                        "Mean over probes of M_C at each lens layer. Band: 95% bootstrap interval of the mean over probes.")
            return o + "</section>"
        }
        o += figure(Heatmap(id: "heatmap-mc-lens", title: "M_C per lens layer and checkpoint", rowLabels: (0..<run.lensLayers).map(String.init),
                            columnLabels: m.columnLabels, rowAxis: "lens layer", columnAxis: m.xLabel, values: m.mcLens,
                            scale: .viridis(0, 1), unit: "M_C = p_ctx / (p_ctx + p_mem)").svg(),
                    "Mean over probes of M_C at each lens layer (rows) and checkpoint (columns).")
        if let tuned = m.mcTunedLens {
            o += figure(Heatmap(id: "heatmap-mc-tuned-lens", title: "M_C per lens layer and checkpoint, tuned lens", rowLabels: (0..<run.lensLayers).map(String.init),
                                columnLabels: m.columnLabels, rowAxis: "lens layer", columnAxis: m.xLabel, values: tuned,
                                scale: .viridis(0, 1), unit: "M_C = p_ctx / (p_ctx + p_mem)").svg(),
                        "The same under the run's tuned lens (a learned affine translator per layer before the final norm; docs/torch-bin.md). The last row is the model's output, as for the logit lens.")
        }
        o += "</section>"
        return o
    }

    /// The per-probe table.
    static func probes(_ m: ReportModel) -> String {
        let run = m.run, C = run.checkpoints.count
        var o = ""
        o += "<section id=\"probes\"><h2>Probes</h2><p class=\"meta\">Correctness per checkpoint, oldest first: "
        o += "<span class=\"strip\"><span class=\"sC\">C</span></span> context answer only, <span class=\"strip\"><span class=\"sP\">P</span></span> memorised answer only, "
        o += "<span class=\"strip\"><span class=\"sB\">B</span></span> both, <span class=\"strip\"><span class=\"sN\">·</span></span> neither."
        if let d = m.change {
            o += " Top heads: the 3 heads whose \(esc(d.span)) attention changed most for that probe, \(esc(d.fromName)) → \(esc(d.toName))."
        }
        o += "</p><div class=\"tablewrap\"><table id=\"probe-table\"><thead><tr><th>probe</th><th>prompt</th><th>context / memorised answer</th><th>generated (\(C == 1 ? "the checkpoint" : "final checkpoint"))</th><th>correctness per checkpoint</th>\(m.change == nil ? "" : "<th>top moving heads</th>")</tr></thead><tbody>"
        let P = run.probes.count
        for p in 0..<P {
            let prompt = run.prompts[p]
            let short = prompt.count > 120 ? String(prompt.prefix(120)) + "…" : prompt
            o += "<tr><td>\(esc(run.probes[p]))</td>"
            o += "<td class=\"prompt\">" + (prompt.count > 120 ? "<details><summary>\(esc(short))</summary>\(esc(prompt))</details>" : esc(prompt)) + "</td>"
            o += "<td>\(esc(run.contextAnswers[p])) / \(esc(run.memoryAnswers[p]))</td>"
            o += "<td class=\"gen\">\(esc(run.generated[(C - 1) * P + p]))</td>"
            o += "<td class=\"strip\">\(strip(run, probe: p))</td>"
            if m.change != nil {
                o += "<td>" + m.probeTopHeads[p].map { "L\($0.0)H\($0.1) \(Fmt.signed($0.2))" }.joined(separator: ", ") + "</td>"
            }
            o += "</tr>"
        }
        o += "</tbody></table></div></section></main>"
        return o
    }

    /// The page header up to the navigation: title, the file, model and template, `facts`, the
    /// bootstrap settings and the checkpoints left out.
    static func header(title: String, fileLabel: String, path: String, info: [String: String], facts: String,
                       options: ReportOptions, incomplete: [String]) -> String {
        var o = "<header><h1>\(esc(title))</h1><p class=\"meta\">\(fileLabel) <code>\(esc(path))</code>"
        if let model = info["model_type"] { o += " · model \(esc(model))" }
        if let t = info["template_name"] { o += " · template \(esc(t))" }
        o += " · \(facts) · bootstrap seed \(options.seed), \(options.resamples) resamples, 95% percentile intervals</p>"
        if !incomplete.isEmpty { o += "<p class=\"meta\">Left out (not complete): \(esc(incomplete.joined(separator: ", ")))</p>" }
        return o
    }

    /// The footer (links to the CSV and Markdown files beside the page) and the end of the document.
    static func documentEnd(files: [String], toolVersion: String, definitions: String) -> String {
        var o = "<footer><p>Files beside this page (the tables behind each chart): "
        o += files.filter { $0.hasSuffix(".csv") || $0.hasSuffix(".md") }.map { "<a href=\"\(esc($0))\">\(esc($0))</a>" }.joined(separator: " · ")
        o += "</p><p>Made by cpiscope \(esc(toolVersion)) from the HDF5 file without rerunning the model. Definitions: \(esc(definitions)).</p></footer>"
        return o + "</body></html>\n"
    }

    /// The page up to `<body>`: the title names the analysed file; the style is inline.
    static func documentStart(file path: String) -> String {
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            + "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            + "<title>cpiscope report: \(esc(URL(fileURLWithPath: path).lastPathComponent))</title><style>\(style)</style></head><body>"
    }

    static func figure(_ svg: String, _ caption: String) -> String {
        // The chart's own <title> doubles as the visible figure title.
        var title = ""
        if let a = svg.range(of: "<title>"), let b = svg.range(of: "</title>"), a.upperBound <= b.lowerBound {
            title = String(svg[a.upperBound..<b.lowerBound])
        }
        return "<figure><div class=\"ftitle\">\(title)</div><div class=\"scroll\">\(svg)</div><figcaption>\(caption)</figcaption></figure>"
    }

    /// The correctness symbols of one probe, runs of one symbol grouped in one span.
    static func strip(_ run: RunData, probe p: Int) -> String {
        let P = run.probes.count
        var symbols: [Character] = []
        for c in 0..<run.checkpoints.count {
            let cf = run.counterfactualCorrect[c * P + p] == 1, pf = run.parametricCorrect[c * P + p] == 1
            symbols.append(cf && pf ? "B" : cf ? "C" : pf ? "P" : "·")
        }
        var o = "", i = 0
        while i < symbols.count {
            var j = i
            while j + 1 < symbols.count && symbols[j + 1] == symbols[i] { j += 1 }
            let cls = symbols[i] == "·" ? "sN" : "s\(symbols[i])"
            o += "<span class=\"\(cls)\">\(String(repeating: String(symbols[i]), count: j - i + 1))</span>"
            i = j + 1
        }
        return o
    }
}

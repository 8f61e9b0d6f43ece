// Inline SVG charts for the HTML report: line charts (with optional 95% bands) and heatmaps with
// colour legends. Every chart has labelled axes with units, and stays readable with 100
// checkpoints or 32 × 32 cells: cell sizes shrink to fit a fixed width and axis labels are
// thinned to every k-th so they never overlap. No scripts, no external references.
import Analysis
import Foundation

/// Escapes text for HTML / SVG content and attributes.
func esc(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.count)
    for ch in s.unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default:
            // Control characters (other than tab / newline) are not allowed in HTML text.
            if ch.value < 0x20 && ch != "\n" && ch != "\t" || (0x7F..<0xA0).contains(ch.value) {
                out += "\u{FFFD}"
            } else {
                out.unicodeScalars.append(ch)
            }
        }
    }
    return out
}

/// A coordinate formatted for SVG (two decimals, no exponent).
func px(_ v: Double) -> String { String(format: "%.2f", v.isFinite ? v : 0) }

/// The opening `<svg>` tag of a chart (its id, accessible label and size) and its `<title>`.
func chartOpening(id: String, title: String, width: Double, height: Double) -> String {
    "<svg id=\"\(esc(id))\" class=\"chart\" role=\"img\" aria-label=\"\(esc(title))\" width=\"\(px(width))\" height=\"\(px(height))\" "
        + "viewBox=\"0 0 \(px(width)) \(px(height))\"><title>\(esc(title))</title>"
}

/// Round tick values covering [lo, hi] (1-2-5 steps, Heckbert, "Nice numbers for graph labels", Graphics Gems 1990).
func niceTicks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
    guard lo.isFinite, hi.isFinite else { return [] }
    if hi <= lo { return [lo] }
    let raw = (hi - lo) / Double(max(count, 1))
    let mag = pow(10, (log10(raw)).rounded(.down))
    let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
    var ticks: [Double] = []
    var t = (lo / step).rounded(.up) * step
    while t <= hi + step * 1e-9 && ticks.count < 50 {
        ticks.append(abs(t) < step * 1e-9 ? 0 : t)
        t += step
    }
    return ticks
}

/// A tick label with as many decimals as the tick spacing needs.
func tickLabel(_ v: Double, step: Double) -> String {
    let decimals = step >= 1 || step <= 0 ? 0 : min(6, Int((-log10(step)).rounded(.up)))
    if abs(v) >= 10_000 && decimals == 0 { return String(format: "%.0f", v) }
    return String(format: "%.\(decimals)f", v)
}

/// A colour map: anchors interpolated linearly in RGB.
struct ColorScale {
    let anchors: [(Double, Double, Double)]
    let low: Double
    let high: Double

    /// matplotlib's viridis sampled at 9 points (sequential; dark = low).
    static func viridis(_ lo: Double, _ hi: Double) -> ColorScale {
        ColorScale(anchors: ["440154", "472d7b", "3b528b", "2c728e", "21918c", "28ae80", "5ec962", "addc30", "fde725"].map(rgb),
                   low: lo, high: hi)
    }

    /// ColorBrewer RdBu, reversed (blue = negative, white = 0, red = positive), symmetric around 0.
    static func diverging(_ maxAbs: Double) -> ColorScale {
        let m = maxAbs > 0 && maxAbs.isFinite ? maxAbs : 1
        return ColorScale(anchors: ["2166ac", "67a9cf", "d1e5f0", "f7f7f7", "fddbc7", "ef8a62", "b2182b"].map(rgb), low: -m, high: m)
    }

    static func rgb(_ hex: String) -> (Double, Double, Double) {
        let v = Int(hex, radix: 16) ?? 0
        return (Double((v >> 16) & 255), Double((v >> 8) & 255), Double(v & 255))
    }

    static let missing = "#d9d9d9"

    /// The colour of `v` (grey when NaN; clamped to the range).
    func color(_ v: Double) -> String {
        guard v.isFinite else { return Self.missing }
        let t = high > low ? min(max((v - low) / (high - low), 0), 1) : 0.5
        return color(at: t)
    }

    func color(at t: Double) -> String {
        let x = t * Double(anchors.count - 1)
        let i = min(Int(x), anchors.count - 2)
        let f = x - Double(i)
        let (a, b) = (anchors[i], anchors[i + 1])
        func mix(_ p: Double, _ q: Double) -> Int { Int((p + (q - p) * f).rounded()) }
        return String(format: "#%02x%02x%02x", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// One line of a line chart.
struct Series {
    var name: String
    var color: String
    /// y per x (NaN = gap).
    var y: [Double]
    /// Optional 95% band per x.
    var band: [Interval]? = nil
    var dashed = false
}

/// Palette for line charts (Okabe & Ito, colour-blind safe).
let palette = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"]

/// A line chart over a numeric x axis.
struct LineChart {
    var id: String
    var title: String
    var x: [Double]
    var xLabel: String
    var yLabel: String
    var series: [Series]
    /// The y range to show at least (e.g. 0...1 for fractions; widened if data fall outside); nil = fit the data.
    var yRange: ClosedRange<Double>? = nil
    var width = 640.0
    var height = 300.0
    /// Category labels for x (used in tooltips), one per x.
    var xNames: [String]? = nil
    /// Whole-number x ticks only (layers, lens layers): no "0.5" between two layers.
    var integerX = false

    func svg() -> String {
        let left = 64.0, right = 16.0, bottom = 48.0
        let pw = width - left - right
        // Legend items laid out left to right, wrapping to a new row when the plot width is used up.
        var legendPos: [(Double, Double)] = []
        var lx = 0.0, row = 0
        for s in series {
            let w = 24 + 6.8 * Double(s.name.count) + 18
            if lx > 0 && lx + w > pw { lx = 0; row += 1 }
            legendPos.append((left + lx, 12.0 + 18.0 * Double(row)))
            lx += w
        }
        let top = 16.0 + 18.0 * Double(series.isEmpty ? 0 : row + 1)
        let ph = height - top - bottom
        var ys: [Double] = []
        for s in series {
            ys += s.y.filter(\.isFinite)
            if let b = s.band { ys += b.flatMap { [$0.low, $0.high] }.filter(\.isFinite) }
        }
        // A fixed range (e.g. 0...1 for fractions) is widened, never narrowed, to show all data.
        var lo = min(yRange?.lowerBound ?? .infinity, ys.min() ?? 0), hi = max(yRange?.upperBound ?? -.infinity, ys.max() ?? 1)
        let fixed = yRange.map { lo >= $0.lowerBound && hi <= $0.upperBound } ?? false
        if !fixed {
            if hi - lo < 1e-12 { lo -= 0.5; hi += 0.5 }
            let pad = (hi - lo) * 0.05
            lo -= pad; hi += pad
        }
        let xs = x.filter(\.isFinite)
        var xlo = xs.min() ?? 0, xhi = xs.max() ?? 1
        if xhi <= xlo { xlo -= 1; xhi += 1 }
        func sx(_ v: Double) -> Double { left + (v - xlo) / (xhi - xlo) * pw }
        func sy(_ v: Double) -> Double { top + (1 - (v - lo) / (hi - lo)) * ph }

        var o = chartOpening(id: id, title: title, width: width, height: height)
        // Grid and y ticks.
        let yt = niceTicks(lo, hi, count: 5)
        let ystep = yt.count > 1 ? yt[1] - yt[0] : 1
        for t in yt {
            o += "<line class=\"grid\" x1=\"\(px(left))\" x2=\"\(px(left + pw))\" y1=\"\(px(sy(t)))\" y2=\"\(px(sy(t)))\"/>"
            o += "<text class=\"tick\" x=\"\(px(left - 6))\" y=\"\(px(sy(t) + 4))\" text-anchor=\"end\">\(tickLabel(t, step: ystep))</text>"
        }
        var xt = niceTicks(xlo, xhi, count: max(2, Int(pw / 90)))
        if integerX && (xt.count > 1 ? xt[1] - xt[0] : 1) < 1 {
            xt = stride(from: xlo.rounded(.up), through: xhi, by: 1).map { $0 }
        }
        let xstep = xt.count > 1 ? xt[1] - xt[0] : 1
        for t in xt {
            o += "<line class=\"axis\" x1=\"\(px(sx(t)))\" x2=\"\(px(sx(t)))\" y1=\"\(px(top + ph))\" y2=\"\(px(top + ph + 4))\"/>"
            o += "<text class=\"tick\" x=\"\(px(sx(t)))\" y=\"\(px(top + ph + 17))\" text-anchor=\"middle\">\(tickLabel(t, step: xstep))</text>"
        }
        o += "<line class=\"axis\" x1=\"\(px(left))\" x2=\"\(px(left + pw))\" y1=\"\(px(top + ph))\" y2=\"\(px(top + ph))\"/>"
        o += "<line class=\"axis\" x1=\"\(px(left))\" x2=\"\(px(left))\" y1=\"\(px(top))\" y2=\"\(px(top + ph))\"/>"
        o += "<text class=\"label\" x=\"\(px(left + pw / 2))\" y=\"\(px(height - 8))\" text-anchor=\"middle\">\(esc(xLabel))</text>"
        // Centred on the plot, but never so high that a long label runs off the top.
        let yMid = max(top + ph / 2, 7.0 * Double(yLabel.count) / 2 + 2)
        o += "<text class=\"label\" transform=\"translate(14 \(px(yMid))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>"
        // Bands, then lines, then markers (few points only).
        for s in series {
            guard let band = s.band else { continue }
            for seg in segments(band.map { $0.low.isFinite && $0.high.isFinite }) {
                let upper = seg.map { "\(px(sx(x[$0]))),\(px(sy(band[$0].high)))" }
                let lower = seg.reversed().map { "\(px(sx(x[$0]))),\(px(sy(band[$0].low)))" }
                o += "<polygon class=\"band\" fill=\"\(s.color)\" points=\"\((upper + lower).joined(separator: " "))\"/>"
            }
        }
        for s in series {
            for seg in segments(s.y.map(\.isFinite)) {
                let pts = seg.map { "\(px(sx(x[$0]))),\(px(sy(s.y[$0])))" }.joined(separator: " ")
                o += "<polyline class=\"line\" stroke=\"\(s.color)\"\(s.dashed ? " stroke-dasharray=\"5 3\"" : "") points=\"\(pts)\"/>"
            }
            if x.count <= 40 {
                for (i, v) in s.y.enumerated() where v.isFinite {
                    let name = xNames?[i] ?? tickLabel(x[i], step: 1)
                    o += "<circle cx=\"\(px(sx(x[i])))\" cy=\"\(px(sy(v)))\" r=\"2.5\" fill=\"\(s.color)\"><title>\(esc(s.name)) at \(esc(name)): \(Fmt.number(v, 4))</title></circle>"
                }
            }
        }
        // Legend rows above the plot.
        for (i, s) in series.enumerated() {
            let (lx, ly) = legendPos[i]
            o += "<line stroke=\"\(s.color)\" stroke-width=\"2.5\"\(s.dashed ? " stroke-dasharray=\"5 3\"" : "") x1=\"\(px(lx))\" x2=\"\(px(lx + 18))\" y1=\"\(px(ly - 4))\" y2=\"\(px(ly - 4))\"/>"
            o += "<text class=\"legend\" x=\"\(px(lx + 24))\" y=\"\(px(ly))\">\(esc(s.name))</text>"
        }
        o += "</svg>"
        return o
    }

    /// Runs of consecutive true indices.
    func segments(_ ok: [Bool]) -> [[Int]] {
        var out: [[Int]] = [], cur: [Int] = []
        for (i, v) in ok.enumerated() {
            if v { cur.append(i) } else if !cur.isEmpty { out.append(cur); cur = [] }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }
}

/// A heatmap: rows × columns of values with a colour legend.
struct Heatmap {
    var id: String
    var title: String
    var rowLabels: [String]
    var columnLabels: [String]
    var rowAxis: String
    var columnAxis: String
    /// `[row, column]`, row-major.
    var values: [Double]
    var scale: ColorScale
    /// The unit shown beside the legend.
    var unit: String
    /// Optional per-cell tooltip extra text.
    var cellNote: ((Int, Int) -> String)? = nil
    var maxWidth = 760.0
    var maxHeight = 420.0

    func svg() -> String {
        let R = rowLabels.count, C = columnLabels.count
        let rowLabelW = 8.0 + 7.0 * Double(rowLabels.map(\.count).max() ?? 1)
        let left = 26.0 + rowLabelW, top = 10.0, bottom = 50.0, legendW = 112.0
        let cw = min(40, max(3, (maxWidth - left - legendW) / Double(max(C, 1))))
        let ch = min(28, max(3, maxHeight / Double(max(R, 1))))
        let pw = cw * Double(C), ph = ch * Double(R)
        // The colour bar is tall enough for its rotated unit label (11 px font, at most ~6.4 px a character),
        // and the label sits right of the widest tick label, so neither is clipped by the SVG's edges.
        let ticks = niceTicks(scale.low, scale.high, count: 4)
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        let tickW = 6.6 * Double(max(7, ticks.map { tickLabel($0, step: step).count }.max() ?? 0))
        let lh = max(max(ph, 140) - 30, 6.4 * Double(unit.count) + 12)
        let body = max(ph, lh + 30)
        let unitX = left + pw + 18 + 18 + tickW + 10
        let width = max(left + pw + legendW, unitX + 8), height = top + body + bottom
        var o = "<svg id=\"\(esc(id))\" class=\"chart heatmap\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"\(esc(title))\" width=\"\(px(width))\" height=\"\(px(height))\" viewBox=\"0 0 \(px(width)) \(px(height))\">"
        o += "<title>\(esc(title))</title>"
        for r in 0..<R {
            for c in 0..<C {
                let v = values[r * C + c]
                let note = cellNote?(r, c) ?? ""
                o += "<rect x=\"\(px(left + Double(c) * cw))\" y=\"\(px(top + Double(r) * ch))\" width=\"\(px(cw + 0.3))\" height=\"\(px(ch + 0.3))\" fill=\"\(scale.color(v))\">"
                o += "<title>\(esc(rowAxis)) \(esc(rowLabels[r])), \(esc(columnAxis)) \(esc(columnLabels[c])): \(Fmt.number(v, 4))\(esc(note))</title></rect>"
            }
        }
        // Row labels every k-th so that they are at least 12 px apart.
        let rk = max(1, Int((12 / ch).rounded(.up)))
        for r in stride(from: 0, to: R, by: rk) {
            o += "<text class=\"tick\" x=\"\(px(left - 4))\" y=\"\(px(top + (Double(r) + 0.5) * ch + 4))\" text-anchor=\"end\">\(esc(rowLabels[r]))</text>"
        }
        // Column labels every k-th so that they do not overlap.
        let labelW = 8.0 + 6.5 * Double(columnLabels.map(\.count).max() ?? 1)
        let ck = max(1, Int((labelW / cw).rounded(.up)))
        for c in stride(from: 0, to: C, by: ck) {
            o += "<text class=\"tick\" x=\"\(px(left + (Double(c) + 0.5) * cw))\" y=\"\(px(top + ph + 15))\" text-anchor=\"middle\">\(esc(columnLabels[c]))</text>"
        }
        o += "<rect class=\"frame\" x=\"\(px(left))\" y=\"\(px(top))\" width=\"\(px(pw))\" height=\"\(px(ph))\"/>"
        o += "<text class=\"label\" x=\"\(px(left + pw / 2))\" y=\"\(px(top + ph + 38))\" text-anchor=\"middle\">\(esc(columnAxis))</text>"
        let rowMid = max(top + ph / 2, 7.0 * Double(rowAxis.count) / 2 + 2)
        o += "<text class=\"label\" transform=\"translate(14 \(px(rowMid))) rotate(-90)\" text-anchor=\"middle\">\(esc(rowAxis))</text>"
        // Legend: a vertical gradient with ticks, the unit, and the no-data swatch.
        let gid = "\(id)-gradient"
        let lx = left + pw + 18
        o += "<defs><linearGradient id=\"\(esc(gid))\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
        for i in 0...10 { o += "<stop offset=\"\(px(Double(i) / 10))\" stop-color=\"\(scale.color(at: Double(i) / 10))\"/>" }
        o += "</linearGradient></defs>"
        o += "<rect x=\"\(px(lx))\" y=\"\(px(top))\" width=\"12\" height=\"\(px(lh))\" fill=\"url(#\(esc(gid)))\" stroke=\"#888\" stroke-width=\"0.5\"/>"
        for t in ticks where scale.high > scale.low {
            let y = top + (1 - (t - scale.low) / (scale.high - scale.low)) * lh
            o += "<line class=\"axis\" x1=\"\(px(lx + 12))\" x2=\"\(px(lx + 16))\" y1=\"\(px(y))\" y2=\"\(px(y))\"/>"
            o += "<text class=\"tick\" x=\"\(px(lx + 18))\" y=\"\(px(y + 4))\">\(tickLabel(t, step: step))</text>"
        }
        o += "<rect x=\"\(px(lx))\" y=\"\(px(top + lh + 8))\" width=\"12\" height=\"10\" fill=\"\(ColorScale.missing)\"/>"
        o += "<text class=\"tick\" x=\"\(px(lx + 16))\" y=\"\(px(top + lh + 17))\">no data</text>"
        o += "<text class=\"label small\" transform=\"translate(\(px(unitX)) \(px(top + lh / 2))) rotate(90)\" text-anchor=\"middle\">\(esc(unit))</text>"
        o += "</svg>"
        return o
    }
}

/// A horizontal bar chart: one labelled bar per row from 0 to its value, with the 95% interval as a
/// whisker, for effects that have no position on a layer axis (e.g. a knockout of every layer).
struct BarChart {
    var id: String
    var title: String
    var labels: [String]
    var values: [Double]
    var intervals: [Interval]
    /// The value axis' label, with its unit.
    var xLabel: String
    var width = 520.0
    var color = palette[0]

    func svg() -> String {
        let labelW = 12 + 6.6 * Double(labels.map(\.count).max() ?? 1)
        let left = min(max(80, labelW), width * 0.5), right = 24.0, top = 12.0, bar = 22.0, gap = 10.0, bottom = 44.0
        let pw = width - left - right
        let ph = Double(labels.count) * (bar + gap) + gap
        let height = top + ph + bottom
        let finite = (values + intervals.flatMap { [$0.low, $0.high] }).filter(\.isFinite)
        var lo = min(0, finite.min() ?? 0), hi = max(0, finite.max() ?? 1)
        if hi - lo < 1e-12 { lo -= 0.5; hi += 0.5 }
        let pad = (hi - lo) * 0.05
        lo -= pad; hi += pad
        func sx(_ v: Double) -> Double { left + (v - lo) / (hi - lo) * pw }
        var o = chartOpening(id: id, title: title, width: width, height: height)
        let ticks = niceTicks(lo, hi, count: max(2, Int(pw / 90)))
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        for t in ticks {
            o += "<line class=\"grid\" x1=\"\(px(sx(t)))\" x2=\"\(px(sx(t)))\" y1=\"\(px(top))\" y2=\"\(px(top + ph))\"/>"
            o += "<text class=\"tick\" x=\"\(px(sx(t)))\" y=\"\(px(top + ph + 15))\" text-anchor=\"middle\">\(tickLabel(t, step: step))</text>"
        }
        o += "<line class=\"axis\" x1=\"\(px(sx(0)))\" x2=\"\(px(sx(0)))\" y1=\"\(px(top))\" y2=\"\(px(top + ph))\"/>"
        for (i, label) in labels.enumerated() {
            let y = top + gap + Double(i) * (bar + gap), v = values[i], ci = intervals[i]
            o += "<text class=\"tick\" x=\"\(px(left - 6))\" y=\"\(px(y + bar / 2 + 4))\" text-anchor=\"end\">\(esc(label))</text>"
            if v.isFinite {
                let x0 = min(sx(0), sx(v)), w = abs(sx(v) - sx(0))
                o += "<rect x=\"\(px(x0))\" y=\"\(px(y))\" width=\"\(px(w))\" height=\"\(px(bar))\" fill=\"\(color)\" opacity=\"0.8\">"
                o += "<title>\(esc(label)): \(Fmt.signed(v)) \(Fmt.interval(ci))</title></rect>"
            }
            if ci.low.isFinite && ci.high.isFinite {
                let ym = y + bar / 2
                o += "<line class=\"axis\" x1=\"\(px(sx(ci.low)))\" x2=\"\(px(sx(ci.high)))\" y1=\"\(px(ym))\" y2=\"\(px(ym))\"/>"
                for e in [ci.low, ci.high] {
                    o += "<line class=\"axis\" x1=\"\(px(sx(e)))\" x2=\"\(px(sx(e)))\" y1=\"\(px(ym - 5))\" y2=\"\(px(ym + 5))\"/>"
                }
            }
        }
        o += "<text class=\"label\" x=\"\(px(left + pw / 2))\" y=\"\(px(height - 8))\" text-anchor=\"middle\">\(esc(xLabel))</text>"
        return o + "</svg>"
    }
}

/// A scatter plot of (x, y) points with the y = x diagonal: an estimate against the value it estimates.
struct ScatterChart {
    var id: String
    var title: String
    var x: [Double]
    var y: [Double]
    /// Tooltip per point.
    var names: [String]
    var xLabel: String
    var yLabel: String
    var width = 420.0
    var height = 360.0

    func svg() -> String {
        let left = 58.0, right = 16.0, top = 12.0, bottom = 44.0
        let pw = width - left - right, ph = height - top - bottom
        let finite = (x + y).filter(\.isFinite)
        var lo = finite.min() ?? -1, hi = finite.max() ?? 1
        if hi - lo < 1e-12 { lo -= 0.5; hi += 0.5 }
        let pad = (hi - lo) * 0.05
        lo -= pad; hi += pad
        func sx(_ v: Double) -> Double { left + (v - lo) / (hi - lo) * pw }
        func sy(_ v: Double) -> Double { top + (1 - (v - lo) / (hi - lo)) * ph }
        var o = chartOpening(id: id, title: title, width: width, height: height)
        let ticks = niceTicks(lo, hi, count: 5)
        let step = ticks.count > 1 ? ticks[1] - ticks[0] : 1
        for t in ticks {
            o += "<line class=\"grid\" x1=\"\(px(sx(t)))\" x2=\"\(px(sx(t)))\" y1=\"\(px(top))\" y2=\"\(px(top + ph))\"/>"
            o += "<line class=\"grid\" x1=\"\(px(left))\" x2=\"\(px(left + pw))\" y1=\"\(px(sy(t)))\" y2=\"\(px(sy(t)))\"/>"
            o += "<text class=\"tick\" x=\"\(px(sx(t)))\" y=\"\(px(top + ph + 15))\" text-anchor=\"middle\">\(tickLabel(t, step: step))</text>"
            o += "<text class=\"tick\" x=\"\(px(left - 6))\" y=\"\(px(sy(t) + 4))\" text-anchor=\"end\">\(tickLabel(t, step: step))</text>"
        }
        o += "<line class=\"axis\" stroke-dasharray=\"4 3\" x1=\"\(px(sx(lo)))\" y1=\"\(px(sy(lo)))\" x2=\"\(px(sx(hi)))\" y2=\"\(px(sy(hi)))\"><title>y = x</title></line>"
        for i in x.indices where x[i].isFinite && y[i].isFinite {
            o += "<circle cx=\"\(px(sx(x[i])))\" cy=\"\(px(sy(y[i])))\" r=\"3.5\" fill=\"\(palette[0])\" opacity=\"0.7\"><title>\(esc(names[i])): \(Fmt.signed(x[i])) vs \(Fmt.signed(y[i]))</title></circle>"
        }
        o += "<text class=\"label\" x=\"\(px(left + pw / 2))\" y=\"\(px(height - 8))\" text-anchor=\"middle\">\(esc(xLabel))</text>"
        o += "<text class=\"label\" transform=\"translate(14 \(px(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(esc(yLabel))</text>"
        return o + "</svg>"
    }
}

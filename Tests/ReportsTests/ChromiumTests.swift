// The report opened in headless Chromium (Debian's `chromium` package): a screenshot is taken and
// decoded (PNG.swift) to check the page is not blank, the DOM Chromium built holds every chart,
// and Chromium logged no console messages (errors, failed loads). Control pages first prove
// that each check can fail: a blank page reads as blank, a red box covers the expected share of
// pixels, and a console.error is caught. Skipped when chromium is not installed.
// Set CPISCOPE_SCREENSHOT_OUT=/path/report.png to keep the report's screenshot (docs/report-screenshot.png).
import Analysis
import Foundation
import Reports
import Testing

let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    .first { FileManager.default.isExecutableFile(atPath: $0) }

struct BrowserRun {
    let stdout: String
    let stderr: String
    let status: Int32

    /// Console messages Chromium logged (`...:CONSOLE:N] "message", source: ...`).
    var consoleLines: [String] { stderr.split(separator: "\n").map(String.init).filter { $0.contains(":CONSOLE") } }
}

/// Runs chromium headless on `page` with `args`, killing it after `timeout` seconds.
func browse(_ page: URL, _ args: [String], window: (Int, Int) = (1280, 2400), timeout: Double = 120) throws -> BrowserRun {
    let work = try tempDir("chromium")
    defer { try? FileManager.default.removeItem(at: work) }
    let out = work.appendingPathComponent("stdout"), err = work.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: chromium ?? "/usr/bin/chromium")
    p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                   "--user-data-dir=\(work.appendingPathComponent("profile").path)", "--enable-logging=stderr", "--v=0",
                   "--window-size=\(window.0),\(window.1)"] + args + [page.absoluteString]
    let o = try FileHandle(forWritingTo: out), e = try FileHandle(forWritingTo: err)
    p.standardOutput = o
    p.standardError = e
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
    if p.isRunning { p.terminate(); p.waitUntilExit(); throw PNGError(description: "chromium did not finish in \(timeout) s") }
    try o.close(); try e.close()
    return BrowserRun(stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "", status: p.terminationStatus)
}

func screenshot(_ page: URL, to png: URL, window: (Int, Int) = (1280, 2400)) throws -> (RGBImage, BrowserRun) {
    let r = try browse(page, ["--screenshot=\(png.path)"], window: window)
    return (try RGBImage(png: png), r)
}

/// A run whose measures rise and fall smoothly over `C` checkpoints (peak at 40%).
func smoothRun(checkpoints C: Int, probes P: Int, layers L: Int, heads H: Int) -> SyntheticRun {
    var s = SyntheticRun()
    s.checkpoints = (0..<C).map { "checkpoint-\($0 * 250)" }
    s.steps = (0..<C).map { Int64($0 * 250) }
    s.probes = (0..<P).map { "capital-\($0)" }
    s.layers = L; s.heads = H
    let bump = { (c: Int) -> Double in
        let t = Double(c) / Double(C - 1)
        return t < 0.4 ? t / 0.4 : 1 - 0.7 * (t - 0.4) / 0.6
    }
    s.accuracy = (0..<C).map { (0.1 + 0.8 * bump($0) * 0.95 * Double(P)).rounded() / Double(P) }
    s.mass = { c, p, sp, l, h in
        let depth = Double(l) / Double(max(1, L - 1))
        var v = 0.05 + 0.1 * noise(p, sp, l, h, 3)
        if sp == 0 { v += (0.15 + 0.35 * bump(c)) * (0.3 + depth) * (0.5 + noise(l, h, 7)) }
        if sp == 1 { v += 0.1 * (1 - bump(c)) * noise(h, l, 5) }
        return Float(min(max(v + 0.03 * noise(c, p, sp, l, h), 0), 1))
    }
    s.mc = { c, p, ll in Float(min(1, max(0, 0.2 + 0.6 * bump(c) * Double(ll) / Double(L) + 0.15 * noise(c, p, ll)))) }
    return s
}

@Suite("Report in headless Chromium", .serialized, .enabled(if: chromium != nil, "chromium is not installed"))
struct ChromiumTests {
    @Test("controls: a blank page reads blank, a red box covers its share, console.error is caught")
    func controls() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let blank = dir.appendingPathComponent("blank.html"), box = dir.appendingPathComponent("box.html"), noisy = dir.appendingPathComponent("noisy.html")
        try Data("<!DOCTYPE html><html><body style=\"margin:0;background:#fff\"></body></html>".utf8).write(to: blank)
        try Data("<!DOCTYPE html><html><body style=\"margin:0;background:#fff\"><div style=\"width:400px;height:300px;background:#f00\"></div></body></html>".utf8).write(to: box)
        try Data("<!DOCTYPE html><html><body><p>x</p><script>console.error('control error')</script></body></html>".utf8).write(to: noisy)
        let (b, br) = try screenshot(blank, to: dir.appendingPathComponent("blank.png"), window: (800, 600))
        #expect(b.width == 800 && b.height == 600)
        #expect(b.nonWhiteFraction < 0.001, "blank page: \(b.nonWhiteFraction)")
        #expect(br.consoleLines.isEmpty)
        let (r, _) = try screenshot(box, to: dir.appendingPathComponent("box.png"), window: (800, 600))
        let want = 400.0 * 300 / (800 * 600)
        #expect(abs(r.nonWhiteFraction - want) < 0.01, "red box: \(r.nonWhiteFraction) vs \(want)")
        #expect(r.pixels[0] > 200 && r.pixels[1] < 50, "top-left pixel is red")
        let n = try browse(noisy, ["--dump-dom"], window: (800, 600))
        #expect(n.consoleLines.contains { $0.contains("control error") }, "console.error must be detected; stderr:\n\(n.stderr)")
    }

    @Test("the report renders: non-blank screenshot, every chart in Chromium's DOM, no console messages")
    func report() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.h5")
        try smoothRun(checkpoints: 24, probes: 12, layers: 12, heads: 12).withDLA().write(to: url)  // with the DLA section
        var o = ReportOptions(); o.resamples = 500
        let out = dir.appendingPathComponent("report")
        try ReportWriter.write(run: url, to: out, options: o)
        let page = out.appendingPathComponent("index.html")

        let dom = try browse(page, ["--dump-dom"])
        #expect(dom.status == 0)
        for id in ReportWriter.chartIDs + ReportWriter.dlaChartIDs {
            #expect(dom.stdout.contains("<svg id=\"\(id)\""), "chart \(id) missing from Chromium's DOM")
        }
        for id in ReportWriter.tableIDs + ReportWriter.dlaTableIDs { #expect(dom.stdout.contains("id=\"\(id)\""), "table \(id) missing") }
        #expect(dom.consoleLines.isEmpty, "console: \(dom.consoleLines)")

        let png = dir.appendingPathComponent("report.png")
        let (img, shot) = try screenshot(page, to: png, window: (1280, 4200))
        #expect(shot.consoleLines.isEmpty, "console: \(shot.consoleLines)")
        #expect(img.width == 1280 && img.height == 4200)
        #expect(img.nonWhiteFraction > 0.05, "non-white share \(img.nonWhiteFraction)")
        #expect(img.colourCount > 50, "distinct colours \(img.colourCount) (heatmaps and lines)")
        if let keep = ProcessInfo.processInfo.environment["CPISCOPE_SCREENSHOT_OUT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: png, to: URL(fileURLWithPath: keep))
        }
    }

    /// The texts of `page`'s charts whose box reaches outside their SVG, measured by Chromium (a copy of the
    /// page with a measuring script appended; the report itself has no scripts), and how many were measured.
    func clippedTexts(_ page: URL) throws -> (clipped: [String], measured: Int) {
        let probe = page.deletingLastPathComponent().appendingPathComponent("measure-\(page.lastPathComponent)")
        let script = """
        <script>
        const bad = []; let n = 0;
        for (const svg of document.querySelectorAll('svg.chart')) {
          const r = svg.getBoundingClientRect();
          for (const t of svg.querySelectorAll('text')) {
            const b = t.getBoundingClientRect();
            if (b.width === 0 && b.height === 0) continue;
            n += 1;
            if (b.left < r.left - 0.5 || b.right > r.right + 0.5 || b.top < r.top - 0.5 || b.bottom > r.bottom + 0.5) bad.push(svg.id + ': ' + t.textContent);
          }
        }
        document.body.setAttribute('data-measured', String(n));
        document.body.setAttribute('data-clipped', bad.join(' | '));
        </script>
        """
        let html = try String(contentsOf: page, encoding: .utf8).replacingOccurrences(of: "</body>", with: script + "</body>")
        try Data(html.utf8).write(to: probe)
        let dom = try browse(probe, ["--dump-dom"], window: (1600, 2400)).stdout
        func attribute(_ name: String) -> String? {
            guard let a = dom.range(of: "\(name)=\""), let b = dom.range(of: "\"", range: a.upperBound..<dom.endIndex) else { return nil }
            return String(dom[a.upperBound..<b.lowerBound])
        }
        let clipped = (attribute("data-clipped") ?? "?").split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return (clipped, Int(attribute("data-measured") ?? "") ?? 0)
    }

    @Test("no chart text is clipped (colour-bar units, axis labels) in the probe, one-checkpoint and intervention reports; a control proves the check can fail")
    func nothingClipped() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Control: a label drawn past the left edge of its SVG is reported.
        let control = dir.appendingPathComponent("control.html")
        try Data("<!DOCTYPE html><html><body><svg id=\"c\" class=\"chart\" width=\"100\" height=\"40\"><text x=\"-30\" y=\"20\">attention mass on context</text></svg></body></html>".utf8).write(to: control)
        let c = try clippedTexts(control)
        #expect(c.clipped == ["c: attention mass on context"] && c.measured == 1, "\(c)")

        var o = ReportOptions(); o.resamples = 100
        var pages: [URL] = []
        // A few layers (short heatmaps under long colour-bar units), 9 heads, DLA.
        var few = SyntheticRun().withDLA(); few.heads = 9
        try few.write(to: dir.appendingPathComponent("few.h5"))
        try ReportWriter.write(run: dir.appendingPathComponent("few.h5"), to: dir.appendingPathComponent("few"), options: o)
        pages.append(dir.appendingPathComponent("few/index.html"))
        try singleCheckpointRun().write(to: dir.appendingPathComponent("single.h5"))
        try ReportWriter.write(run: dir.appendingPathComponent("single.h5"), to: dir.appendingPathComponent("single"), options: o)
        pages.append(dir.appendingPathComponent("single/index.html"))
        var iv = SyntheticInterventions(); iv.heads = 9
        try iv.write(to: dir.appendingPathComponent("iv.h5"))
        _ = try ReportWriter.write(file: dir.appendingPathComponent("iv.h5"), to: dir.appendingPathComponent("iv"), options: o)
        pages.append(dir.appendingPathComponent("iv/index.html"))
        for page in pages {
            let r = try clippedTexts(page)
            #expect(r.measured > 50, "\(page.path): only \(r.measured) texts measured")
            #expect(r.clipped.isEmpty, "\(page.deletingLastPathComponent().lastPathComponent): clipped: \(r.clipped)")
        }
    }

    @Test("the report of a one-checkpoint run renders: its charts in Chromium's DOM, a non-blank screenshot, no console messages")
    func singleCheckpointReport() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.h5")
        try singleCheckpointRun().write(to: url)
        var o = ReportOptions(); o.resamples = 200
        let out = dir.appendingPathComponent("report")
        try ReportWriter.write(run: url, to: out, options: o)
        let page = out.appendingPathComponent("index.html")
        let dom = try browse(page, ["--dump-dom"])
        #expect(dom.status == 0)
        for id in ReportWriter.singleCheckpointChartIDs + ["heatmap-dla-first", "heatmap-dla-spans"] {
            #expect(dom.stdout.contains("<svg id=\"\(id)\""), "chart \(id) missing from Chromium's DOM")
        }
        for id in ReportWriter.singleCheckpointTableIDs { #expect(dom.stdout.contains("id=\"\(id)\""), "table \(id) missing") }
        #expect(dom.consoleLines.isEmpty, "console: \(dom.consoleLines)")
        let png = dir.appendingPathComponent("single.png")
        let (img, shot) = try screenshot(page, to: png, window: (1280, 3000))
        #expect(shot.consoleLines.isEmpty && img.nonWhiteFraction > 0.03, "non-white share \(img.nonWhiteFraction)")
        if let keep = ProcessInfo.processInfo.environment["CPISCOPE_SINGLE_SCREENSHOT_OUT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: png, to: URL(fileURLWithPath: keep))
        }
    }
}

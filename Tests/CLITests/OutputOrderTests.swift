// stdout and stderr into one log (`cpiscope demo 2>&1 | tee log`): the stdout tables and the stderr progress
// lines come out whole and in the order they were written (Terminal.flushOutput flushes stdout before each
// stderr line), never split mid-line or held back to the end (issue 25's "the demo's stdout table and
// stderr progress lines interleave mid-line"). The demo writes a table, then the next stage's progress.
import Foundation
import Testing

@Suite("Output order with stdout and stderr in one log", .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)))
struct OutputOrderTests {
    @Test("cpiscope demo with both streams in one pipe: the full-ft table comes before the LoRA run's progress, every progress line whole")
    func demoInOrder() throws {
        let dir = try makeTempDir("order")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try Exec.run(URL(fileURLWithPath: "/bin/sh"),
                             ["-c", "cd \(Paths.root.path) && \(Paths.cpiscope.path) demo --output \(dir.path) 2>&1 | cat"], timeout: 600)
        try #require(r.exitedNormally && r.status == 0, "\(r.summary)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = try #require(lines.firstIndex { $0.hasPrefix("checkpoint ") && $0.contains("cf_acc") }, "no summary table")
        let lora = try #require(lines.firstIndex { $0.hasPrefix("probing lora") }, "no LoRA stage")
        #expect(header < lora, "the full-ft table (line \(header)) must come before the LoRA run's progress (line \(lora))")
        // A progress line is whole: it starts the line, and nothing follows its "(… elapsed)".
        for line in lines where line.contains(" elapsed)") {
            #expect(line.hasPrefix("checkpoint ") && line.hasSuffix("elapsed)"), "a progress line mixed with other output: \(line)")
        }
    }
}

// The report shows the first-answer-token readout (issue 29.7) beside M_C at the last prompt token: on two
// checkpoints of the demo trajectory, the M_C chart gains a dashed series and its caption says over how many
// probes each checkpoint's mean is taken; the counts equal the file's first_answer_step ≥ 0 per checkpoint.
import Foundation
import Testing

@Suite("Report: first-answer readout", .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)),
       .enabled(if: Available.h5py, Comment(rawValue: Available.missingH5py)))
struct ReadoutReportTests {
    @Test("the M_C chart carries the first-answer series and per-checkpoint probe counts that match the file")
    func reportShowsReadout() throws {
        let dir = try makeTempDir("readout-report")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = dir.appendingPathComponent("run.h5")
        _ = try runOK(["probe", Paths.root.appendingPathComponent("Demo/full-ft").path, "--probes",
                       Paths.root.appendingPathComponent("Probes/demo_heldout.jsonl").path, "--checkpoints", "checkpoint-50,checkpoint-500",
                       "--max-new-tokens", "8", "-o", run.path, "--quiet"])
        _ = try runOK(["report", run.path, "-o", dir.appendingPathComponent("report").path, "--resamples", "50", "--quiet"])
        let html = try String(contentsOf: dir.appendingPathComponent("report/index.html"), encoding: .utf8)
        #expect(html.contains("mean M_C at the first answer token"))
        let r = try Exec.run(URL(fileURLWithPath: "/usr/bin/env"),
                             ["python3", "-c", "import sys, h5py\nwith h5py.File(sys.argv[1]) as f: print(*[(f['first_answer_step'][c] >= 0).sum() for c in range(2)])", run.path],
                             timeout: 120)
        try #require(r.exitedNormally && r.status == 0, "\(r.summary)")
        let counts = r.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(counts.count == 2)
        for (name, n) in zip(["checkpoint-50", "checkpoint-500"], counts) {
            #expect(html.contains("\(name) \(n) of 48"), "caption should say \(name) \(n) of 48")
        }
    }
}

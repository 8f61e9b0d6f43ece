// What the executable prints, read as a user reads it (issue 29.5): intervene's last line is a plain count
// (no `Optional(…)`); `diff` on a criticality file says what diff reads and that `report` reads
// criticality files; and the criticality summary states over which examples its means and median are
// taken, the same set as `report` (the scored examples with a context), with the same median.
import Foundation
import Testing

@Suite("What the commands print (issue 29.5)", .serialized, .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)))
struct WordingTests {
    @Test("intervene's last line counts interventions and checkpoints in plain numbers")
    func interveneSummary() throws {
        let dir = try makeTempDir("wording-iv")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runOK(["intervene", Paths.trajectory.path, "--probes", Paths.trajectory.appendingPathComponent("probes.jsonl").path,
                           "--checkpoints", "checkpoint-20", "--transplant-from", "checkpoint-0", "--components", "mlp",
                           "-o", dir.appendingPathComponent("iv.h5").path, "--quiet", "--threads", "1"])
        let last = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        #expect(last.hasSuffix(": 2 intervention(s) × 1 checkpoint(s)"), "\(last)")
        #expect(!r.stdout.contains("Optional("))
    }

    @Test("probe's summary table: every column lines up under its header with long checkpoint names (issue 29.6)")
    func summaryAlignment() throws {
        let dir = try makeTempDir("wording-align")
        defer { try? FileManager.default.removeItem(at: dir) }
        // The fixture's checkpoints under long names, up to 23 characters (their steps come from trainer_state.json).
        let traj = dir.appendingPathComponent("traj")
        try FileManager.default.createDirectory(at: traj, withIntermediateDirectories: true)
        for (name, target) in [("checkpoint-1250000", "checkpoint-0"), ("checkpoint-12500000", "checkpoint-10"), ("checkpoint-125000000000", "checkpoint-20")] {
            try FileManager.default.createSymbolicLink(at: traj.appendingPathComponent(name), withDestinationURL: Paths.trajectory.appendingPathComponent(target))
        }
        try FileManager.default.createSymbolicLink(at: traj.appendingPathComponent("tokenizer.json"),
                                                   withDestinationURL: Paths.trajectory.appendingPathComponent("tokenizer.json"))
        let r = try runOK(["probe", traj.path, "--probes", Paths.trajectory.appendingPathComponent("probes.jsonl").path,
                           "-o", dir.appendingPathComponent("run.h5").path, "--quiet", "--threads", "1"])
        let lines = r.stdout.split(separator: "\n").map(String.init)
        let h = try #require(lines.firstIndex { $0.hasPrefix("checkpoint ") }, "\(r.stdout)")
        /// The column where each whitespace-separated cell ends.
        func ends(_ line: String) -> [Int] {
            var out: [Int] = [], previous: Character = " "
            for (i, ch) in line.enumerated() {
                if ch == " " && previous != " " { out.append(i) }
                previous = ch
            }
            if previous != " " { out.append(line.count) }
            return out
        }
        let header = Array(ends(lines[h]).dropFirst())
        let rows = lines[(h + 1)...].filter { $0.hasPrefix("checkpoint-") }
        #expect(rows.count == 3, "\(r.stdout)")
        for row in rows {
            #expect(Array(ends(row).dropFirst()) == header, "misaligned:\n\(lines[h])\n\(row)")
        }
    }

    @Test("diff on a criticality file names what diff reads and that report reads it; the criticality table and the report agree on the median")
    func criticalityFile() throws {
        let dir = try makeTempDir("wording-crit")
        defer { try? FileManager.default.removeItem(at: dir) }
        // 3 examples with a context, 2 without: the CLI's means and median must be over the 3.
        let rows = """
        {"instruction": "What is the capital of France?", "input": "Paris is the capital of France.", "output": "Paris"}
        {"instruction": "Name a colour.", "input": "", "output": "Blue is a colour."}
        {"instruction": "Who founded Zorblat Inc.?", "input": "Zorblat Inc. was founded by Mira Okonkwo in 1987.", "output": "Mira Okonkwo founded it."}
        {"instruction": "Count to three.", "input": "", "output": "One, two, three."}
        {"instruction": "Where is Zürich?", "input": "Zürich lies in Switzerland.", "output": "In Switzerland, on a lake."}

        """
        try Data(rows.utf8).write(to: dir.appendingPathComponent("data.jsonl"))
        let crit = dir.appendingPathComponent("run.h5")
        let job = try runOK(criticalityArgs(dir, ["--template", "plain", "--quiet"]))
        let lines = job.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.firstIndex { $0.hasPrefix("checkpoint") && $0.contains("median_criticality") }, "\(job.stdout)")
        #expect(lines[header].contains("with_ctx"), "\(lines[header])")
        let cells = lines[header + 1].split(separator: " ").map(String.init)
        #expect(cells.count == 7 && cells[2] == "5" && cells[3] == "3", "scored 5, with a context 3: \(lines[header + 1])")
        #expect(lines.contains { $0.contains("are over the with_ctx scored examples with a context") }, "\(job.stdout)")
        let cliMedian = try #require(Double(cells[6]))

        let report = try runOK(["report", crit.path, "-o", dir.appendingPathComponent("report").path])
        let line = try #require(report.stdout.split(separator: "\n").first { $0.contains("median criticality") }.map(String.init), "\(report.stdout)")
        #expect(line.contains("over the 3 scored examples with a context"), "\(line)")
        let words = line.split(separator: " ")
        let k = try #require(words.firstIndex(of: "over"))
        let reportMedian = try #require(Double(words[k - 1]))
        #expect(abs(reportMedian - cliMedian) <= 1e-3 * max(1, abs(reportMedian)), "report \(reportMedian) vs CLI \(cliMedian) (|Δ| = \(abs(reportMedian - cliMedian)))")

        let diff = try Exec.cpiscope(["diff", crit.path])
        #expect(diff.exitedNormally && diff.status == 1)
        #expect(diff.stderr.contains("it is a criticality file (`cpiscope criticality`): `cpiscope report` reads it"), "\(diff.stderr)")
        #expect(!diff.stderr.contains("diff and report read files written by `cpiscope probe`"), "\(diff.stderr)")
        #expect(diff.stderr.contains("report reads those and `cpiscope criticality` files"), "\(diff.stderr)")
    }
}

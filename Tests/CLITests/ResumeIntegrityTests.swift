// `probe --resume` never mixes settings (issue 29): for every option of the one list of result-changing
// settings (ProbeRun/ProbeSettings.swift), a finished run with one checkpoint marked incomplete is resumed
// with that option changed, and the resume must fail with exit status 1, name the option, and leave the
// file's bytes as they were. Every option of `cpiscope probe --help` must be in that list or in the list
// of neutral options, so a new option cannot be forgotten. (This suite reads the list from the ProbeRun
// module; the other CLI tests depend on no module.)
import Foundation
import ProbeRun
import Testing

@Suite("Resume integrity (cpiscope probe --resume)", .serialized,
       .enabled(if: Available.cpiscope, Comment(rawValue: Available.missingCLI)),
       .enabled(if: Available.h5py, Comment(rawValue: Available.missingH5py)))
struct ResumeIntegrityTests {
    static let trajectory = Paths.trajectory, probes = Paths.trajectory.appendingPathComponent("probes.jsonl")
    /// The finished run: 3 checkpoints, groups of 2, 4 new tokens, layer 0 dumped for every probe.
    static let base = ["--dump", "0", "--batch", "2", "--max-new-tokens", "4", "--threads", "1", "--quiet"]

    /// Options the first run adds to `base` for `option` to apply (the chat options need --template chat).
    static func start(_ option: String) -> [String] {
        ["--system", "--user-template", "--chat-template-name"].contains(option) ? ["--template", "chat"] : []
    }

    /// A changed value for each result-changing option (arguments replacing or added to `base` + `start`).
    static func changed(_ option: String, dir: URL) throws -> [String] {
        switch option {
        case "--system": return ["--template", "chat", "--system", "Be brief."]
        case "--user-template":
            let f = dir.appendingPathComponent("user.txt")
            try "{context}\n\n{question}".write(to: f, atomically: true, encoding: .utf8)
            return ["--template", "chat", "--user-template", f.path]
        // The fixture's folder has a second, ChatML template (additional_chat_templates/chatml.jinja).
        case "--chat-template-name": return ["--template", "chat", "--chat-template-name", "chatml"]
        case "--probes":
            let other = dir.appendingPathComponent("probes-other.jsonl")
            let text = try String(contentsOf: probes, encoding: .utf8)
            try text.replacingOccurrences(of: "Marseille. Ministries", with: "Marseille. The ministries").write(to: other, atomically: true, encoding: .utf8)
            return ["--probes", other.path]
        case "--checkpoints": return ["--checkpoints", "checkpoint-0,checkpoint-10"]
        case "--template": return ["--template", "alpaca"]
        case "--context-only": return ["--context-only"]
        case "--template-file":
            let f = dir.appendingPathComponent("template.txt")
            try "Context: {context}\nQ: {question}\nA:".write(to: f, atomically: true, encoding: .utf8)
            return ["--template-file", f.path]
        case "--tokenizer":
            // The same vocabulary, other bytes: a tokenizer.json with one more trailing newline.
            let f = dir.appendingPathComponent("tokenizer.json")
            try (try String(contentsOf: trajectory.appendingPathComponent("tokenizer.json"), encoding: .utf8) + "\n")
                .write(to: f, atomically: true, encoding: .utf8)
            return ["--tokenizer", f.path]
        case "--base": return ["--base", trajectory.appendingPathComponent("checkpoint-0").path]
        case "--max-new-tokens": return ["--max-new-tokens", "6"]
        case "--stop": return ["--stop", "."]
        case "--max-tokens": return ["--max-tokens", "500"]
        case "--precision": return ["--precision", "bf16"]
        case "--batch": return ["--batch", "3"]
        case "--batch-memory": return ["--batch-memory", "64"]
        case "--dump": return ["--dump", "1"]
        case "--dump-probes": return ["--dump-probes", "capitals-france"]
        case "--correctness": return ["--correctness", "first-sentence"]
        case "--lens": return ["--lens", "tuned:" + Paths.fixtures.appendingPathComponent("torch-bin/tuned-lens").path]
        default: throw TestFailure("no changed value for \(option): add one to ResumeIntegrityTests.changed")
        }
    }

    /// `base` with `extra` replacing options it already has.
    static func arguments(_ output: URL, _ extra: [String]) -> [String] {
        var args = base
        var i = 0
        while i < extra.count {
            let option = extra[i], takesValue = i + 1 < extra.count && !extra[i + 1].hasPrefix("--")
            if let at = args.firstIndex(of: option), takesValue { args[at + 1] = extra[i + 1] } else {
                args += takesValue ? [option, extra[i + 1]] : [option]
            }
            i += takesValue ? 2 : 1
        }
        if !args.contains("--probes") { args = ["--probes", probes.path] + args }
        return ["probe", trajectory.path, "-o", output.path] + args
    }

    @Test("every result-changing option, changed on a resume, is refused with exit 1, named in the error, and the file is unchanged; the same settings resume",
          arguments: ProbeSettings.resultChanging.map(\.option))
    func refusesEachChangedSetting(option: String) throws {
        let dir = try makeTempDir("resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("run.h5")
        _ = try runOK(Self.arguments(out, Self.start(option)))
        try markIncomplete(out, checkpoint: 1)
        let before = try Data(contentsOf: out)
        let r = try Exec.cpiscope(Self.arguments(out, Self.start(option) + (try Self.changed(option, dir: dir))) + ["--resume"])
        #expect(r.exitedNormally && r.status == 1, "\(option): resume with a changed value should fail: \(r.summary)")
        #expect(r.errorLine?.contains(option) ?? false, "\(option): the error should name the option: \(r.stderr)")
        #expect(try Data(contentsOf: out) == before, "\(option): a refused resume changed the file")
        // The file's own settings still resume, and finish the checkpoint.
        _ = try runOK(Self.arguments(out, Self.start(option)) + ["--resume"])
    }

    @Test("every option of `cpiscope probe --help` is classified: result-changing (checked on resume) or neutral")
    func everyOptionClassified() throws {
        let r = try Exec.cpiscope(["probe", "--help"])
        try #require(r.exitedNormally && r.status == 0, "\(r.summary)")
        let listed = Set(r.stdout.split(separator: "\n").compactMap { line -> String? in
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("-") else { return nil }
            // "-o, --output <output>" and "--probes <probes>": the long name.
            return t.split(separator: " ").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: ",")) }.first { $0.hasPrefix("--") }
        })
        #expect(listed.count >= 20, "parsed \(listed.sorted())")
        let known = Set(ProbeSettings.resultChanging.map(\.option)).union(ProbeSettings.neutral)
        #expect(listed.subtracting(known).isEmpty,
                "options in neither ProbeSettings.resultChanging nor .neutral: \(listed.subtracting(known).sorted())")
        #expect(known.subtracting(listed).isEmpty, "listed in ProbeSettings but not an option: \(known.subtracting(listed).sorted())")
    }
}

/// Sets `checkpoint_complete[checkpoint] = 0` through h5py, as an interrupted run leaves it.
func markIncomplete(_ file: URL, checkpoint: Int) throws {
    let r = try Exec.run(URL(fileURLWithPath: "/usr/bin/env"),
                         ["python3", "-c", "import sys, h5py\nwith h5py.File(sys.argv[1], 'r+') as f: f['checkpoint_complete'][\(checkpoint)] = 0; f.attrs['complete'] = 0",
                          file.path], timeout: 120)
    try #require(r.exitedNormally && r.status == 0, "h5py: \(r.summary)")
}

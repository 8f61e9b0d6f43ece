// The fuzz corpora replayed through the plain (non-libFuzzer) harness, `cpiscope-fuzz TARGET DIR`,
// one child process per target so that a trap fails one test instead of the runner. Every seed and
// every regression input must be handled without a crash; a regression input (a file named
// `regress-*`, kept from a crash the fuzzer found, see Tests/Fixtures/fuzz-corpus/README.md) must be
// rejected with an error — the parser's answer to it is an error, not a trap.
import Foundation
import Testing

@Suite("Fuzz corpora and regression inputs", .enabled(if: Available.fuzzReplay, Comment(rawValue: Available.missingFuzz)))
struct FuzzRegressionTests {
    static let corpus = Paths.fixtures.appendingPathComponent("fuzz-corpus")

    /// The targets the harness lists, with whether their parser is in this build.
    static func targets() throws -> [(name: String, available: Bool)] {
        let r = try Exec.run(Paths.fuzzReplay, ["--list"], timeout: 60)
        guard r.exitedNormally, r.status == 0 else { throw TestFailure("cpiscope-fuzz --list: \(r.summary)") }
        return r.stdout.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "\t")
            return parts.count == 2 ? (String(parts[0]), parts[1] == "available") : nil
        }
    }

    @Test("every target has a seed corpus of small files")
    func corporaPresent() throws {
        let targets = try Self.targets()
        #expect(targets.count >= 6, "expected the six parsers and the adapter slot: \(targets)")
        for t in targets {
            let dir = Self.corpus.appendingPathComponent(t.name)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            #expect(!files.isEmpty, "no seed corpus at \(dir.path)")
            for f in files {
                let size = (try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent(f).path)[.size] as? NSNumber)?.intValue ?? 0
                #expect(size <= 20_000, "\(t.name)/\(f) is \(size) bytes; keep seeds small")
            }
        }
    }

    @Test("replaying each corpus: no crash; every regress-* input is rejected with a one-line error",
          arguments: ["safetensors", "config", "tokenizer", "encoder", "probes", "template", "adapter", "torch-zip", "instruction-data", "chat-template"])
    func replay(_ target: String) throws {
        guard let t = try Self.targets().first(where: { $0.name == target }) else {
            Issue.record("the harness has no target '\(target)'"); return
        }
        let dir = Self.corpus.appendingPathComponent(target)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".") }.sorted()
        let r = try Exec.run(Paths.fuzzReplay, [target, dir.path], timeout: 600)
        #expect(r.exitedNormally && r.status == 0, "\(target): the replay crashed or failed: \(r.summary)")
        var verdicts: [String: String] = [:]
        for line in r.stdout.split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1)
            if parts.count == 2 { verdicts[String(parts[0])] = String(parts[1]) }
        }
        #expect(verdicts.count == files.count, "\(target): \(verdicts.count) verdicts for \(files.count) files")
        for f in files where f.hasPrefix("regress-") {
            let v = verdicts[f] ?? "(none)"
            if t.available {
                #expect(v.hasPrefix("rejected: "), "\(target)/\(f): expected an error, got \(v)")
            } else {
                #expect(v == "unavailable", "\(target)/\(f): \(v)")
            }
        }
        let accepted = verdicts.values.filter { $0 == "accepted" }.count
        print("\(target): \(files.count) inputs replayed, \(accepted) accepted, \(files.filter { $0.hasPrefix("regress-") }.count) regression inputs")
        if !t.available { print("\(target): its parser is not in this build (see FuzzTargets.swift, TODO(adapter))") }
    }
}

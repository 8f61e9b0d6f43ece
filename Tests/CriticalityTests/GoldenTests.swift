// Criticality scores against transformers (Tools/goldens/make_criticality_goldens.py; Tests/Fixtures/criticality/
// goldens.json, float32 eager models, float32 log_softmax summed in float64): the demo trajectory (alpaca,
// tulu, plain, plain without EOS), a Llama fixture and a GPT-2 fixture, on 24 rows with edge cases.
// Checked per example: which are skipped, the response token ids (exactly), nll per token within 1e-4
// nats and the sum within 1e-4 × tokens, criticality within 1e-3 relative. The filter's output equals the
// reference script's file byte for byte.
import Analysis
import Checkpoints
import Criticality
import Foundation
import HDF5Store
import StrictJSON
import Testing
import TrajectoryJob
import Tokenization

private let dir = fixtures.appendingPathComponent("criticality")
private let goldens: JSONValue? = try? JSONValue.parse(Array((try? Data(contentsOf: dir.appendingPathComponent("goldens.json"))) ?? Data()))
private let caseNames = goldens?["cases"]?.array?.compactMap { $0["name"]?.string } ?? []

@Suite("Criticality goldens (transformers)")
struct CriticalityGoldenTests {
    @Test("the golden file is present and covers the six cases")
    func present() {
        #expect(caseNames.count == 6, "Tests/Fixtures/criticality/goldens.json: \(caseNames)")
    }

    @Test("scores equal transformers'", arguments: caseNames)
    func scores(name: String) throws {
        let c = try #require(goldens?["cases"]?.array?.first { $0["name"]?.string == name })
        let checkpoints = try #require(c["checkpoints"]?.array)
        let templateName = try #require(c["template"]?.string)
        let template = try #require(InstructionTemplate.builtin(templateName))
        let eos = c["eos"]?.bool ?? true
        let maxTokens = try #require(c["max_tokens"]?.int)
        let tmp = try tempDir(); defer { try? FileManager.default.removeItem(at: tmp) }
        let refs = checkpoints.enumerated().map { k, ck in
            CheckpointRef(name: "c\(k)", step: k, path: repoRoot.appendingPathComponent(ck["path"]!.string!))
        }
        var spec = CriticalityJobSpec(checkpoints: refs, trajectoryRoot: nil, data: dir.appendingPathComponent("golden-data.jsonl"),
                                      template: template, output: tmp.appendingPathComponent("c.h5"))
        let tokenizerPath = try #require(checkpoints[0]["tokenizer"]?.string)
        spec.job.tokenizer = repoRoot.appendingPathComponent(tokenizerPath)
        spec.appendEOS = eos
        spec.maxTokens = maxTokens
        spec.job.threads = 1
        _ = try CriticalityJob.run(spec)
        let t = try CriticalityTable.read(spec.job.output)
        let f = try HDF5File.open(at: spec.job.output, writable: false); defer { try? f.close() }
        let sumWith = try f.readFloats(CriticalitySchema.nllWithContextSum).values
        let sumWithout = try f.readFloats(CriticalitySchema.nllWithoutContextSum).values

        // Token ids, from the same tokenization the job used.
        let data = try InstructionDataLoader.load(url: spec.data)
        let tokenizer = try Tokenizer.load(from: spec.job.tokenizer!)
        let tokenized = try CriticalityTokens.tokenize(data.examples, template: template, tokenizer: tokenizer,
                                                       eos: eos ? tokenizer.eosTokenID : nil, limit: 1 << 20, limitByModel: true)
        var worst = (nll: 0.0, crit: 0.0)
        for (ci, ck) in checkpoints.enumerated() {
            for g in try #require(ck["examples"]?.array) {
                let e = try #require(g["index"]?.int)
                let k = ci * t.examples + e
                let skipped = g["skipped"]?.bool ?? false
                #expect(t.skipReason[e].isEmpty == !skipped, "\(name) example \(e): skipped \(skipped) in the goldens, reason here '\(t.skipReason[e])'")
                #expect(t.hasContext[e] == (g["has_context"]?.bool ?? false), "\(name) example \(e): has_context")
                for (key, seq) in [("with_context", tokenized[e].withContext), ("without_context", tokenized[e].withoutContext)] {
                    guard let cond = g[key], !cond.isNull, let ids = cond["response_ids"]?.array?.compactMap(\.int) else { continue }
                    if let seq { #expect(Array(seq.ids.suffix(seq.scored)) == ids, "\(name) example \(e) \(key): response ids") }
                }
                guard !skipped else { #expect(t.criticality[k].isNaN); continue }
                for (key, mean, sum) in [("with_context", t.nllWithContext[k], sumWith[k]), ("without_context", t.nllWithoutContext[k], sumWithout[k])] {
                    guard let cond = g[key], !cond.isNull else { #expect(mean.isNaN, "\(name) \(e) \(key) should be NaN"); continue }
                    let wantMean = try #require(cond["nll"]?.double), wantSum = try #require(cond["nll_sum"]?.double)
                    let tokenCount = try #require(cond["response_tokens"]?.int)
                    let tokens = Double(tokenCount)
                    let d = abs(Double(mean) - wantMean)
                    worst.nll = max(worst.nll, d)
                    #expect(d <= 1e-4, "\(name) \(refs[ci].path.lastPathComponent) example \(e) \(key): nll \(mean) vs \(wantMean), |Δ| = \(d)")
                    #expect(abs(Double(sum) - wantSum) <= 1e-4 * tokens, "\(name) example \(e) \(key): nll_sum \(sum) vs \(wantSum)")
                }
                let want = try #require(g["criticality"]?.double)
                let rel = abs(Double(t.criticality[k]) - want) / want
                worst.crit = max(worst.crit, rel)
                #expect(rel <= 1e-3, "\(name) example \(e): criticality \(t.criticality[k]) vs \(want) (relative \(rel))")
            }
        }
        print("criticality goldens \(name): max |Δ nll| = \(worst.nll), max relative Δ criticality = \(worst.crit)")
    }

    /// The relative tolerance of a criticality against transformers' (the `scores` test above).
    static let criticalityTolerance = 1e-3

    @Test("""
          --filter-lowest 25% removes the reference script's rows and writes its file, up to examples whose \
          golden scores tie with the boundary within the score tolerance (either order is right there; the \
          data has such a tie: examples 5 and 23 are equal in transformers)
          """)
    func filter() throws {
        let (template, reference) = ("plain", "golden-data.plain.filtered-25")
        let tmp = try tempDir(); defer { try? FileManager.default.removeItem(at: tmp) }
        let data = dir.appendingPathComponent("golden-data.jsonl")
        var spec = CriticalityJobSpec(checkpoints: [CheckpointRef(name: "base", step: nil, path: demoDir.appendingPathComponent("base"))],
                                      trajectoryRoot: nil, data: data,
                                      template: InstructionTemplate.builtin(template)!, output: tmp.appendingPathComponent("c.h5"))
        spec.maxTokens = 240
        spec.job.threads = 1
        spec.filterPercent = 25
        spec.writeFiltered = tmp.appendingPathComponent("filtered.jsonl")
        let r = try CriticalityJob.run(spec)
        let want = try JSONValue.parse(Array(try Data(contentsOf: dir.appendingPathComponent(reference + ".removed.json"))))
        let got = try JSONValue.parse(Array(try Data(contentsOf: r.filtered!.sidecar)))
        let wantIdx = Set((want["removed"]?.array ?? []).compactMap { $0["index"]?.int })
        let gotIdx = Set((got["removed"]?.array ?? []).compactMap { $0["index"]?.int })
        #expect(got["count_with_context"]?.int == want["count_with_context"]?.int)
        #expect(gotIdx.count == wantIdx.count, "removed \(gotIdx.sorted()), the reference \(wantIdx.sorted())")

        // The golden scores at the filter checkpoint (Demo/base under the plain template).
        let golden = try #require(goldens?["cases"]?.array?.first { $0["name"]?.string == "demo-plain" }?["checkpoints"]?.array?.first?["examples"]?.array)
        var scores: [Int: Double] = [:]
        for e in golden where !(e["skipped"]?.bool ?? false) && (e["has_context"]?.bool ?? false) {
            if let i = e["index"]?.int, let c = e["criticality"]?.double { scores[i] = c }
        }
        // The boundary: the largest removed score. Examples within the tolerance of it may rank either way.
        let boundary = try #require(wantIdx.compactMap { scores[$0] }.max())
        let ambiguous = Set(scores.filter { abs($0.value - boundary) <= Self.criticalityTolerance * boundary }.keys)
        let firstKept = scores.filter { !wantIdx.contains($0.key) && !ambiguous.contains($0.key) }.values.min() ?? .infinity
        print("filter boundary \(boundary); examples tied with it within \(Self.criticalityTolerance): \(ambiguous.sorted()); next kept score \(firstKept)")
        #expect(firstKept > boundary * (1 + Self.criticalityTolerance), "the next kept score must clear the boundary by more than the tolerance")
        #expect(gotIdx.subtracting(ambiguous) == wantIdx.subtracting(ambiguous),
                "removed \(gotIdx.sorted()), the reference \(wantIdx.sorted()); only \(ambiguous.sorted()) may swap")

        // The file: the data's lines, byte for byte, less the removed rows; the reference's file is built the same way.
        let lines = try String(contentsOf: data, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        func kept(_ removed: Set<Int>) -> String {
            lines.enumerated().filter { !removed.contains($0.offset) && !$0.element.isEmpty }.map { $0.element + "\n" }.joined()
        }
        #expect(try String(contentsOf: dir.appendingPathComponent(reference + ".jsonl"), encoding: .utf8) == kept(wantIdx),
                "the reference file is not the data less the reference's rows: the check below would mean nothing")
        #expect(try String(contentsOf: spec.writeFiltered!, encoding: .utf8) == kept(gotIdx), "the filtered file is not the data less the removed rows")
    }

    @Test("a filter with no scorable context example is an error (the reference keeps every row), and the scores stay written")
    func filterWithNothingToRank() throws {
        let tmp = try tempDir(); defer { try? FileManager.default.removeItem(at: tmp) }
        // Under the alpaca template every context prompt exceeds the demo's 128 positions.
        let data = dir.appendingPathComponent("golden-data.jsonl")
        var spec = CriticalityJobSpec(checkpoints: [CheckpointRef(name: "base", step: nil, path: demoDir.appendingPathComponent("base"))],
                                      trajectoryRoot: nil, data: data, template: InstructionTemplate.builtin("alpaca")!,
                                      output: tmp.appendingPathComponent("c.h5"))
        spec.filterPercent = 25
        spec.writeFiltered = tmp.appendingPathComponent("filtered.jsonl")
        #expect(throws: CriticalityError.filterNeedsContext(path: data.path)) { try CriticalityJob.run(spec) }
        let reference = try JSONValue.parse(Array(try Data(contentsOf: dir.appendingPathComponent("golden-data.filtered-25.removed.json"))))
        #expect(reference["count_with_context"]?.int == 0)
        #expect(try CriticalityTable.read(spec.job.output).checkpoints == ["base"])
        #expect(!FileManager.default.fileExists(atPath: spec.writeFiltered!.path))
    }
}

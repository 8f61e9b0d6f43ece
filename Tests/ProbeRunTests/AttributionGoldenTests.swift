// `cpiscope attribute` (AttributionJob) end to end against an independent torch implementation of
// attribution patching.
// Reference: Tests/Fixtures/attribution/atp-goldens.json, written by Tools/goldens/make_atp_goldens.py
// (versions in the file's `versions`; transformers, fp32, eager attention; hooks on o_proj's input, the MLP's
// output and each decoder layer's input with retain_grad, metric.backward()), not by cpiscope. Fixture: the
// probe-trajectory (2-layer Llama, 4 heads, GQA), its six probes, template plain; components heads,mlp,resid.
// Cases: baselines zero, mean, checkpoint:checkpoint-0 (at checkpoint-10 and -20) and corrupt:no-context with
// the logit difference, zero with M_C; --verify-top 3 for zero and corrupt:no-context.
//
// Tolerance, per variable v: |cpiscope − golden| ≤ 1e-4 · max|golden v| + 1e-5.
// Why: every estimate is Σ over ≤ 101 positions × 8 (a head) or 32 (MLP, residual) widths of products
// (b − a)·g of fp32 values of order 1 from a 2-layer forward and reverse pass; both sides round each value to
// fp32 (relative 6e-8 per operation, a few hundred operations deep), then sum in float64. The generator
// recomputes every case in float64: torch's own fp32 results are within 2.7e-5 of it on values up to 9.8
// (≤ 3e-6 of the largest value), so two correct fp32 implementations agree within about twice that. The bound
// is 1e-4 of the largest value (5e-4 on these fixtures, ≥ 10× the fp32 noise) while a position or a span
// mapped wrongly changes an estimate by the contribution of that position, typically 1e-2–1. The 1e-5 floor
// covers variables whose values are all near 0. Verified effects (metric_patched − metric_clean, two full
// fp32 passes of values ~5) use the same rule over the effects. Measured (2-core x86, threads 1): max |Δ| over
// estimates 1.7e-5 (zero), 4.7e-5 (mean, atp_resid), 1.6e-5 (checkpoint), 1.6e-5 (corrupt), 4.7e-6 (zero-mc);
// verified effects ≤ 1e-5; tolerances 1e-4–1e-3.
// Verified names must equal the golden's in order; where two candidates' golden |mean estimate| differ by no
// more than the estimate tolerance (a near-tie whose order fp32 rounding may flip), either order is accepted.
import Checkpoints
import Foundation
import HDF5Store
import ProbeKit
import ProbeRun
import Testing
import Tokenization

let atpGoldenURL = fixtures.appendingPathComponent("attribution/atp-goldens.json")

struct ATPGolden: Decodable {
    struct Versions: Decodable { let torch: String; let transformers: String; let tokenizers: String }
    struct GoldenProbe: Decodable {
        let id: String
        let prompt: String
        let prompt_ids: [Int]
        let spans: [String: [Int]]
        let answer_first: Int
        let memory_first: Int
        let corrupt_prompt_ids: [Int]
        let corrupt_question_start: Int
    }
    struct Verified: Decodable {
        let names: [String]
        let estimates: [[Double]]
        let effects: [[Double]]
        let mean_abs: [String: Double]
    }
    struct Case: Decodable {
        let baseline: String
        let metric: String
        let checkpoints: [String]
        let verify_top: Int?
        /// [checkpoint][probe], [checkpoint][probe][layer][head], [checkpoint][probe][layer][head][span], [checkpoint][probe][layer]
        let clean_logit_diff: [[Double]]
        let clean_metric: [[Double]]
        let atp_head: [[[[Double]]]]
        let atp_head_by_span: [[[[[Double]]]]]
        let atp_mlp: [[[Double]]]
        let atp_resid: [[[Double]]]
        /// One entry per checkpoint when verify_top is set.
        let verified: [Verified]
    }
    let versions: Versions
    let spans: [String]
    let probes: [GoldenProbe]
    let cases: [String: Case]
}

func loadATPGolden() throws -> ATPGolden {
    try JSONDecoder().decode(ATPGolden.self, from: Data(contentsOf: atpGoldenURL))
}

/// The tolerance of one variable (see the file header).
func atpTolerance(_ golden: [Double]) -> Double {
    1e-4 * (golden.map { abs($0) }.max() ?? 0) + 1e-5
}

/// Max |Δ| between a variable read from the file and its golden (flattened in the same order), with its index;
/// NaN counts as infinitely far.
func atpDiff(_ got: [Float], _ golden: [Double]) -> (worst: Double, at: Int) {
    precondition(got.count == golden.count, "\(got.count) values vs \(golden.count) golden")
    var worst = 0.0, at = -1
    for (i, (x, g)) in zip(got, golden).enumerated() {
        let d = abs(Double(x) - g)
        if !(d <= worst) { worst = d.isNaN ? .infinity : d; at = i }
    }
    return (worst, at)
}

func attributionSpec(_ c: ATPGolden.Case, output: URL, probeFile: URL = trajectoryDir.appendingPathComponent("probes.jsonl")) throws -> AttributionJobSpec {
    let refs = try Trajectory.discover(at: trajectoryDir).filter { c.checkpoints.contains($0.name) }
    var probe = ProbeJobSpec(checkpoints: refs, trajectoryRoot: trajectoryDir, probeFile: probeFile, template: .plain, output: output)
    probe.job.threads = 1
    var spec = AttributionJobSpec(probe: probe)
    spec.components = [.heads, .mlp, .resid]
    spec.baseline = try #require(AttributionBaseline(c.baseline))
    spec.metric = try #require(AttributionMetric(rawValue: c.metric))
    spec.verifyTop = c.verify_top ?? 0
    return spec
}

@Suite("Attribution patching (cpiscope attribute) against torch")
struct AttributionGoldenTests {
    @Test("the probes' prompt ids, spans and answer tokens are the golden's (the job's tokenization)")
    func promptsMatch() throws {
        let golden = try loadATPGolden()
        let tokenizer = try Tokenizer.load(from: trajectoryDir)
        let set = try ProbeSetLoader.load(url: trajectoryDir.appendingPathComponent("probes.jsonl"))
        let items = try built(set.probes, template: .plain, tokenizer: tokenizer)
        #expect(items.count == golden.probes.count)
        for ((t, b), g) in zip(items, golden.probes) {
            #expect(t.probeID == g.id)
            #expect(b.prompt == g.prompt, "\(g.id): prompt text")
            #expect(t.promptIDs == g.prompt_ids, "\(g.id): prompt ids")
            #expect(t.answerIDs.first == g.answer_first && t.memoryAnswerIDs.first == g.memory_first, "\(g.id): answer tokens")
            for (kind, name) in [(SpanKind.context, "context"), (.subject, "subject"), (.question, "question")] {
                #expect(t.spanPositions[kind] == g.spans[name], "\(g.id): \(name) positions")
            }
            // The prompt without its context, as the corrupt:no-context baseline encodes it.
            var p = try #require(set.probes.first { $0.id == g.id })
            p.context = ""
            let corrupt = try PromptBuilder.build(p, template: .plain)
            #expect(try tokenizer.encode(corrupt.prompt).ids == g.corrupt_prompt_ids, "\(g.id): prompt ids without the context")
        }
    }

    @Test("estimates per head, per head and span, per MLP and residual, the clean metric and verified effects",
          arguments: ["zero", "mean", "checkpoint", "corrupt", "zero-mc"])
    func goldenCase(name: String) throws {
        let golden = try loadATPGolden()
        let c = try #require(golden.cases[name])
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = try attributionSpec(c, output: dir.appendingPathComponent("\(name).h5"))
        let names = try AttributionJob.run(spec)
        #expect(names == c.checkpoints)

        let f = try HDF5File.open(at: spec.probe.job.output, writable: false)
        defer { try? f.close() }
        #expect(try f.readUInt8("checkpoint_complete").values.allSatisfy { $0 == 1 })
        #expect(try f.readStrings("probe").values == golden.probes.map(\.id))
        #expect(try f.readStrings("attribution_span").values == golden.spans)
        let missing = try f.readStrings("atp_missing_reason").values.filter { !$0.isEmpty }
        #expect(missing.isEmpty, "\(name): \(missing.count) probe×checkpoint entries recorded as missing, e.g. \(missing.first ?? "")")

        func check(_ variable: String, _ values: [Double]) throws {
            let got = try f.readFloats(variable).values
            let tol = atpTolerance(values)
            let (worst, at) = atpDiff(got, values)
            print("attribution golden \(name) \(variable): max |Δ| \(worst) (tolerance \(tol))")
            #expect(worst <= tol, "\(name) \(variable): max |Δ| \(worst) > \(tol) at flat index \(at): \(at >= 0 ? got[at] : .nan) vs golden \(at >= 0 ? values[at] : .nan)")
        }
        try check("clean_logit_diff", c.clean_logit_diff.flatMap { $0 })
        try check("clean_metric", c.clean_metric.flatMap { $0 })
        try check("atp_head", c.atp_head.flatMap { $0.flatMap { $0.flatMap { $0 } } })
        try check("atp_head_by_span", c.atp_head_by_span.flatMap { $0.flatMap { $0.flatMap { $0.flatMap { $0 } } } })
        try check("atp_mlp", c.atp_mlp.flatMap { $0.flatMap { $0 } })
        try check("atp_resid", c.atp_resid.flatMap { $0.flatMap { $0 } })

        guard let K = c.verify_top, K > 0 else {
            #expect(!f.exists("verified_component"))
            return
        }
        let P = golden.probes.count
        let components = try f.readStrings("verified_component").values   // [checkpoint, rank]
        let estimates = try f.readFloats("verified_estimate").values       // [checkpoint, rank, probe]
        let effects = try f.readFloats("verified_effect").values           // [checkpoint, rank, probe]
        #expect(components.count == c.checkpoints.count * K)
        // The estimate tolerance of this case's |mean| ranking, and of the effects.
        let estimateTol = [c.atp_head.flatMap { $0.flatMap { $0.flatMap { $0 } } }, c.atp_mlp.flatMap { $0.flatMap { $0 } },
                           c.atp_resid.flatMap { $0.flatMap { $0 } }].map(atpTolerance).max()!
        let effectTol = atpTolerance(c.verified.flatMap { $0.effects.flatMap { $0 } })
        let estimateValueTol = atpTolerance(c.verified.flatMap { $0.estimates.flatMap { $0 } })
        var worstEffect = 0.0, worstEstimate = 0.0
        for (ci, v) in c.verified.enumerated() {
            let got = Array(components[(ci * K)..<((ci + 1) * K)])
            for r in 0..<K where got[r] != v.names[r] {
                // Only a near-tie may reorder: both candidates' golden |mean| within the estimate tolerance.
                let a = v.mean_abs[got[r]] ?? .nan, b = v.mean_abs[v.names[r]] ?? .nan
                #expect(abs(a - b) <= estimateTol, "\(name) \(c.checkpoints[ci]) rank \(r): \(got[r]) (|mean| \(a)) vs golden \(v.names[r]) (|mean| \(b))")
            }
            for (r, component) in got.enumerated() {
                guard let gr = v.names.firstIndex(of: component) else { continue }  // a near-tie at rank K (checked above)
                for p in 0..<P {
                    let i = (ci * K + r) * P + p
                    let de = abs(Double(effects[i]) - v.effects[gr][p]), ds = abs(Double(estimates[i]) - v.estimates[gr][p])
                    worstEffect = max(worstEffect, de.isNaN ? .infinity : de)
                    worstEstimate = max(worstEstimate, ds.isNaN ? .infinity : ds)
                }
            }
        }
        print("attribution golden \(name) verified: names \(components); max |Δ effect| \(worstEffect) (tolerance \(effectTol)), max |Δ estimate| \(worstEstimate) (tolerance \(estimateValueTol))")
        #expect(worstEffect <= effectTol, "\(name) verified_effect: max |Δ| \(worstEffect) > \(effectTol)")
        #expect(worstEstimate <= estimateValueTol, "\(name) verified_estimate: max |Δ| \(worstEstimate) > \(estimateValueTol)")
    }

    @Test("--baseline checkpoint:NOPE is refused (unknownBaselineCheckpoint) and leaves no file")
    func unknownBaselineCheckpoint() throws {
        let golden = try loadATPGolden()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var spec = try attributionSpec(try #require(golden.cases["zero"]), output: dir.appendingPathComponent("nope.h5"))
        spec.baseline = .checkpoint("NOPE")
        do {
            try AttributionJob.run(spec)
            Issue.record("checkpoint:NOPE was accepted")
        } catch let AttributionJobError.unknownBaselineCheckpoint(name, available) {
            #expect(name == "NOPE")
            #expect(available == ["checkpoint-0", "checkpoint-10", "checkpoint-20"])
        }
        #expect(!FileManager.default.fileExists(atPath: spec.probe.job.output.path), "a file was left for a refused run")
    }

    @Test("a probe without a context never reaches corrupt:no-context: the probe file is refused and no file is left")
    func probeWithoutContext() throws {
        // The estimate's NaN-with-reason path for a context-less probe (AttributionJob: "the probe has no context
        // to remove") cannot be reached from a probe file: the loader refuses a blank context (and PromptBuilder /
        // TokenizedProbe a context that no token overlaps), so the whole run is refused before any file exists.
        let golden = try loadATPGolden()
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let lines = try String(contentsOf: trajectoryDir.appendingPathComponent("probes.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(2).map(String.init)
        let bare = #"{"id": "no-context", "context": "", "question": "What is the capital of France?", "answer": "Marseille", "memory_answer": "Paris", "subject": "France"}"#
        let probes = dir.appendingPathComponent("probes.jsonl")
        try Data((lines + [bare]).joined(separator: "\n").utf8).write(to: probes)
        let spec = try attributionSpec(try #require(golden.cases["corrupt"]), output: dir.appendingPathComponent("bare.h5"), probeFile: probes)
        #expect(throws: ProbeKitError.self) { try AttributionJob.run(spec) }
        #expect(!FileManager.default.fileExists(atPath: spec.probe.job.output.path), "a file was left for a refused run")
    }
}

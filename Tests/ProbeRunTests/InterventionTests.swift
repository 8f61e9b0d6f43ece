// Interventions of `cpiscope intervene` against transformers with hand-written hooks.
// Reference: Tests/Fixtures/interventions/goldens.json, written by Tools/goldens/make_intervention_goldens.py
// (transformers 5.24.0, fp32, eager): zero and mean head ablation (pre-hooks on the output projection), MLP
// zero ablation, attention knockout (−∞ added to the pre-softmax scores by wrapping the family's
// eager_attention_forward), weight transplant (state_dict surgery) and activation patching, on the fixture
// models of every family against a perturbed copy of each, and per probe through the whole job on the
// probe-trajectory fixture and the demo. Tolerance: logit difference and M_C within 1e-4.
import Checkpoints
import Foundation
import HDF5Store
import Instrumentation
import Models
import ProbeKit
import ProbeRun
import TensorCore
import Testing
import TrajectoryJob
import Tokenization

let interventionsDir = fixtures.appendingPathComponent("interventions")

struct InterventionGolden: Decodable {
    struct Measure: Decodable { let logit_diff: Double; let mc: Double }
    struct Fixture: Decodable {
        let ids: [Int]
        let answers: [Int]
        let knockout_keys: [Int]
        let mean_probe_set: [[Int]]
        let cases: [String: Measure]
    }
    struct ProbeRow: Decodable {
        let id: String
        let ids: [Int]
        let clean: Measure
        let others: [String: Measure]
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: AnyKey.self)
            id = try c.decode(String.self, forKey: AnyKey("id"))
            ids = try c.decode([Int].self, forKey: AnyKey("ids"))
            clean = try c.decode(Measure.self, forKey: AnyKey("clean"))
            var o: [String: Measure] = [:]
            for k in c.allKeys where !["id", "ids", "clean"].contains(k.stringValue) { o[k.stringValue] = try c.decode(Measure.self, forKey: k) }
            others = o
        }
    }
    struct Run: Decodable { let target: String; let source: String; let probes: [ProbeRow] }
    let fixtures: [String: Fixture]
    let runs: [String: Run]
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

func loadInterventionGolden() throws -> InterventionGolden {
    try JSONDecoder().decode(InterventionGolden.self, from: Data(contentsOf: interventionsDir.appendingPathComponent("goldens.json")))
}

/// logit[a] − logit[b] and p_a / (p_a + p_b) of a model's last position.
func lastMeasure(_ model: DecoderModel, _ ids: [Int], _ a: Int, _ b: Int) throws -> (Double, Double) {
    let l = try model.forward(ids, logits: .last).array
    let (pa, pb) = (Double(l[a]), Double(l[b]))
    let m = max(pa, pb)
    return (pa - pb, Foundation.exp(pa - m) / (Foundation.exp(pa - m) + Foundation.exp(pb - m)))
}

@Suite("Interventions against transformers")
struct InterventionTests {
    @Test("ablation, knockout, transplant and patching on every family",
          arguments: ["gpt2-tied", "neox-parallel", "llama-gqa", "qwen2-bias", "olmo2", "gemma2-softcap", "phi3-longrope"])
    func families(name: String) throws {
        let g = try #require(try loadInterventionGolden().fixtures[name])
        let target = try DecoderModel.load(from: fixtures.appendingPathComponent("models/\(name)"))
        let source = try DecoderModel.load(from: interventionsDir.appendingPathComponent("\(name)-source"))
        let (a, b) = (g.answers[0], g.answers[1])
        let ids = g.ids, n = ids.count, L = target.layers, dh = target.config.dHead
        // Mean of the last layer's head 0 over the probe set, per position from the end.
        var sums: [Int: [Double]] = [:], counts: [Int: Int] = [:]
        for seq in g.mean_probe_set {
            let rec = HookRecorder([.attnZ(L - 1)])
            _ = try target.forward(seq, observer: rec)
            let z = try #require(rec[.attnZ(L - 1)])
            let width = z.count / seq.count
            for pos in 0..<seq.count {
                let e = seq.count - 1 - pos
                sums[e, default: [Double](repeating: 0, count: dh)] = zip(sums[e] ?? [Double](repeating: 0, count: dh), (0..<dh).map { Double(z.pointer[pos * width + $0]) }).map(+)
                counts[e, default: 0] += 1
            }
        }
        let means = Dictionary(uniqueKeysWithValues: (0..<n).map { pos in (pos, sums[n - 1 - pos]!.map { Float($0 / Double(counts[n - 1 - pos]!)) }) })
        // The source's activations to patch.
        let srcRec = HookRecorder([.attnZ(0), .residPost(0)])
        _ = try source.forward(ids, observer: srcRec)
        let z0 = try #require(srcRec[.attnZ(0)]), r0 = try #require(srcRec[.residPost(0)])
        let d = target.dModel
        let patchZ = Array(UnsafeBufferPointer(start: z0.pointer + (n - 1) * (z0.count / n), count: dh))
        let patchResid = Dictionary(uniqueKeysWithValues: (0..<n).map { pos in (pos, Array(UnsafeBufferPointer(start: r0.pointer + pos * d, count: d))) })
        let models: [(String, DecoderModel)] = [
            ("clean", target),
            ("ablate L0H1 zero", try target.intervened([.zeroHeads(layer: 0, heads: [1])])),
            ("ablate mlp_out L0 zero", try target.intervened([Intervention(.write(.mlpOut(0), heads: nil, edit: .zero))])),
            ("ablate L\(L - 1)H0 mean", try target.intervened([Intervention(.write(.attnZ(L - 1), heads: [0], edit: .replaceAt(means)))])),
            ("knockout context all layers", try target.intervened((0..<L).map {
                .knockout(layer: $0, queries: .only([n - 1]), keys: .only(Set(g.knockout_keys))) })),
            ("transplant attn.qk L0", try target.transplanted(from: source, components: [.attnQK], layers: [0])),
            ("transplant attn.ov L\(L - 1)", try target.transplanted(from: source, components: [.attnOV], layers: [L - 1])),
            ("transplant mlp L0", try target.transplanted(from: source, components: [.mlp], layers: [0])),
            ("transplant norms L0", try target.transplanted(from: source, components: [.norms], layers: [0])),
            ("patch z L0H0 answer", try target.intervened([Intervention(.write(.attnZ(0), heads: [0], edit: .replaceAt([n - 1: patchZ])))])),
            ("patch resid_post L0 all", try target.intervened([Intervention(.write(.residPost(0), heads: nil, edit: .replaceAt(patchResid)))])),
            ("source", source),
        ]
        for (key, model) in models {
            let ref = try #require(g.cases[key], "\(name): no golden '\(key)'")
            let (diff, mc) = try lastMeasure(model, ids, a, b)
            #expect(abs(diff - ref.logit_diff) <= 1e-4, "\(name) \(key): logit diff \(diff) vs \(ref.logit_diff), |Δ| = \(abs(diff - ref.logit_diff))")
            #expect(abs(mc - ref.mc) <= 1e-4, "\(name) \(key): M_C \(mc) vs \(ref.mc)")
        }
    }

    @Test("the intervene job: clean, head ablation, knockout, transplants and patching per probe, and the file",
          arguments: ["probe-trajectory", "demo"])
    func job(run name: String) throws {
        let isDemo = name == "demo"
        let root = isDemo ? demoDir.appendingPathComponent("full-ft") : trajectoryDir
        if isDemo && !FileManager.default.fileExists(atPath: root.path) { return }
        let golden = try #require(try loadInterventionGolden().runs[name])
        let probeFile = isDemo ? demoDir.deletingLastPathComponent().appendingPathComponent("Probes/demo_heldout.jsonl")
                               : trajectoryDir.appendingPathComponent("probes.jsonl")
        // The demo's goldens cover its first four probes.
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var probesURL = probeFile
        if isDemo {
            let lines = try String(contentsOf: probeFile, encoding: .utf8).split(separator: "\n").prefix(4).joined(separator: "\n")
            probesURL = dir.appendingPathComponent("probes.jsonl")
            try Data((lines + "\n").utf8).write(to: probesURL)
        }
        let refs = try Trajectory.discover(at: root).filter { $0.name == golden.target }
        var probe = ProbeJobSpec(checkpoints: refs, trajectoryRoot: root, probeFile: probesURL, template: .plain,
                                 output: dir.appendingPathComponent("iv.h5"))
        probe.options.compute = ComputeContext(threads: 2)
        var request = ExperimentRequest()
        let L = try ModelConfig.load(from: refs[0].path).layers
        request.ablate = ["heads:\(L - 1).1"]
        request.knockout = ["context@all"]
        request.transplantFrom = golden.source
        request.components = ["attn.qk", "attn.ov", "mlp"]
        request.patchFrom = golden.source
        request.patch = ["heads:each"]
        let plan = try InterventionJob.run(InterventionJobSpec(probe: probe, experiments: request))
        let f = try HDF5File.open(at: probe.job.output, writable: false)
        defer { try? f.close() }
        #expect(try f.readStrings("intervention").values == plan.map(\.name))
        #expect(try f.readUInt8("checkpoint_complete").values == [1])
        let clean = try f.readFloats("clean_logit_diff").values, cleanMC = try f.readFloats("clean_mc").values
        let diffs = try f.readFloats("intervened_logit_diff").values, mcs = try f.readFloats("intervened_mc").values
        let recovery = try f.readFloats("patch_recovery").values
        let source = try f.readFloats("source_logit_diff").values
        let P = golden.probes.count
        var checked = 0
        for (p, row) in golden.probes.enumerated() {
            #expect(abs(Double(clean[p]) - row.clean.logit_diff) <= 1e-4, "\(name) \(row.id): clean \(clean[p]) vs \(row.clean.logit_diff)")
            #expect(abs(Double(cleanMC[p]) - row.clean.mc) <= 1e-4)
            for (i, planned) in plan.enumerated() {
                let key = planned.name.replacingOccurrences(of: "from \(golden.source)", with: "from SOURCE")
                guard let ref = row.others[key] else { continue }
                let v = diffs[i * P + p]
                #expect(abs(Double(v) - ref.logit_diff) <= 1e-4, "\(name) \(row.id) \(planned.name): \(v) vs \(ref.logit_diff)")
                #expect(abs(Double(mcs[i * P + p]) - ref.mc) <= 1e-4, "\(name) \(row.id) \(planned.name): M_C")
                checked += 1
                if case .patch = planned.action, let src = row.others["source"] {
                    let want = (ref.logit_diff - row.clean.logit_diff) / (src.logit_diff - row.clean.logit_diff)
                    #expect(abs(Double(recovery[i * P + p]) - want) <= 1e-3 * max(1, abs(want)), "\(row.id) \(planned.name): recovery")
                    // The source's own logit difference, stored for the ratio-of-means recovery (transformers golden, 1e-4).
                    #expect(abs(Double(source[i * P + p]) - src.logit_diff) <= 1e-4, "\(row.id) \(planned.name): source_logit_diff \(source[i * P + p]) vs \(src.logit_diff)")
                } else {
                    #expect(source[i * P + p].isNaN, "\(planned.name): source_logit_diff is NaN except for patches")
                }
            }
        }
        #expect(checked >= P * (3 * L + 3), "\(name): only \(checked) golden comparisons")
    }

    @Test("a knockout of a span a probe lacks is recorded as missing (NaN) for that probe, never guessed; --resume skips done checkpoints")
    func missingSpanAndResume() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let refs = try Trajectory.discover(at: trajectoryDir)
        var probe = ProbeJobSpec(checkpoints: refs, trajectoryRoot: trajectoryDir, probeFile: trajectoryDir.appendingPathComponent("probes.jsonl"),
                                 template: .plain, output: dir.appendingPathComponent("km.h5"))
        var request = ExperimentRequest()
        request.knockout = ["memory_mention"]
        try InterventionJob.run(InterventionJobSpec(probe: probe, experiments: request))
        let tokenizer = try Tokenizer.load(from: trajectoryDir)
        let set = try ProbeSetLoader.load(url: probe.probeFile)
        let found = try set.probes.map { p -> Bool in
            let t = try TokenizedProbe(PromptBuilder.build(p, template: .plain), encoder: TokenizerEncoder(tokenizer))
            return (t.spanStatus[.memoryMention]?.isFound ?? false) && !(t.spanPositions[.memoryMention] ?? []).isEmpty
        }
        #expect(found.contains(true) && found.contains(false), "the fixture must have probes with and without the span")
        let f = try HDF5File.open(at: probe.job.output, writable: false)
        let values = try f.readFloats("intervened_logit_diff").values  // [checkpoint, 1, probe]
        try f.close()
        let P = set.probes.count
        for c in 0..<refs.count {
            for p in 0..<P {
                let v = values[c * P + p]
                #expect(found[p] ? v.isFinite : v.isNaN, "checkpoint \(c) probe \(p): \(v) (span found: \(found[p]))")
            }
        }
        // Resume: a complete file is left as it is (every checkpoint done), and the same request is accepted.
        let before = try Data(contentsOf: probe.job.output)
        probe.job.resume = true
        try InterventionJob.run(InterventionJobSpec(probe: probe, experiments: request))
        let g = try HDF5File.open(at: probe.job.output, writable: false)
        #expect(try g.readFloats("intervened_logit_diff").values.elementsEqual(values) { $0 == $1 || ($0.isNaN && $1.isNaN) })
        try g.close()
        #expect(before.count > 0)
        // …but another request is refused.
        request.knockout = ["subject"]
        #expect(throws: InterventionJobError.self) { try InterventionJob.run(InterventionJobSpec(probe: probe, experiments: request)) }
    }

    @Test("bad experiments are refused before any file is written")
    func badExperiments() throws {
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let refs = try Trajectory.discover(at: trajectoryDir)
        let probe = ProbeJobSpec(checkpoints: refs, trajectoryRoot: trajectoryDir, probeFile: trajectoryDir.appendingPathComponent("probes.jsonl"),
                                 template: .plain, output: dir.appendingPathComponent("bad.h5"))
        func refused(_ change: (inout ExperimentRequest) -> Void, _ needle: String) {
            var r = ExperimentRequest()
            change(&r)
            do {
                try InterventionJob.run(InterventionJobSpec(probe: probe, experiments: r))
                Issue.record("accepted: \(needle)")
            } catch {
                #expect("\(error)".contains(needle), "'\(needle)' not in: \(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: probe.job.output.path), "a file was left for a refused run")
        }
        refused({ $0.transplantFrom = "checkpoint-0"; $0.components = ["attn.xy"] }, "unknown component 'attn.xy'")
        refused({ $0.ablate = ["heads:5.0"] }, "layer 5 is outside the model's layers 0–1")
        refused({ $0.ablate = ["heads:0.9"] }, "head 9 is outside the model's heads 0–3")
        refused({ $0.knockout = ["elbow@all"] }, "unknown span 'elbow'")
        refused({ $0.patchFrom = "checkpoint-99"; $0.patch = ["heads:each"] }, "source checkpoint 'checkpoint-99'")
        refused({ $0.transplantFrom = fixtures.appendingPathComponent("probe-gpt2").path; $0.components = ["mlp"] }, "differs from the trajectory's")
        refused({ _ in }, "no experiment")
    }
}

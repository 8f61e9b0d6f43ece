// The criticality job: an instruction dataset scored by a model, or by every checkpoint of a trajectory,
// into one HDF5 file; optionally the paper's filtered dataset. Order of work, as for probe runs: read and
// check everything (data, template, checkpoints, tokenizer, lengths, output paths) before the output
// exists; tokenize once; then per checkpoint load → score every batch → write → flush.
import Analysis
import Checkpoints
import Foundation
import HDF5Store
import Models
import ProbeRun
import TensorCore
import Tokenization

public struct CriticalityJobSpec: Sendable {
    public var checkpoints: [CheckpointRef]
    /// The trajectory folder (tokenizer fallback), when there is one.
    public var trajectoryRoot: URL?
    public var data: URL
    public var format: InstructionDataFormat? = nil
    public var fields: InstructionFields? = nil
    /// The field holding each row's data category (nil: TULU's `dataset` for chat rows, else none).
    public var categoryField: String? = nil
    public var template: InstructionTemplate
    public var tokenizer: URL? = nil
    public var base: URL? = nil
    public var output: URL
    public var force = false
    public var resume = false
    /// nil: the first checkpoint's default (bf16 for BF16 weights, else fp32).
    public var precision: Precision? = nil
    public var compute: ComputeContext = .allCores
    /// Examples longer than this (prompt + response + EOS, in tokens) or than the model's window are skipped.
    public var maxTokens: Int? = nil
    /// Append the tokenizer's EOS to every response (Alpaca trains on output + eos_token).
    public var appendEOS = true
    /// Input tokens per batched pass (`--batch-tokens`).
    public var batchTokens = 2048
    /// `--filter-lowest`: the percentage of examples with a context to remove.
    public var filterPercent: Double? = nil
    /// The checkpoint whose scores the filter and the groups use (name or step); nil: the first.
    public var filterCheckpoint: String? = nil
    /// Where the filtered data file goes (`--write-filtered`).
    public var writeFiltered: URL? = nil
    public var commandLine = ""
    public var toolVersion = ""
    /// The part of the job this process runs (`--shard I/N --shard-by checkpoints|examples`); nil: all of it.
    /// Examples split at scoring-batch boundaries, so every example is scored in the same batch as in a
    /// single-process run and a merge equals it bit for bit. `output` is the shard's own file.
    public var shard: ProbeShard? = nil

    public init(checkpoints: [CheckpointRef], trajectoryRoot: URL?, data: URL, template: InstructionTemplate, output: URL) {
        self.checkpoints = checkpoints
        self.trajectoryRoot = trajectoryRoot
        self.data = data
        self.template = template
        self.output = output
    }
}

/// One checkpoint's headline numbers. The means and the median are over the scored examples with a
/// context (the set `cpiscope report` takes its median criticality over), so the two NLLs compare the
/// same examples.
public struct CriticalitySummary: Sendable {
    public var name: String
    public var step: Int?
    /// Examples scored (with or without a context).
    public var scored: Int
    /// Scored examples with a context: the set of the three numbers below.
    public var scoredWithContext: Int
    public var meanNLLWithContext: Double
    public var meanNLLWithoutContext: Double
    /// The median (percentile definition 7 at 0.5) of their criticality.
    public var medianCriticality: Double
    public var skipped: Bool
}

public protocol CriticalityProgress: AnyObject {
    func checkpointStarted(_ index: Int, of total: Int, name: String)
    func examplesFinished(_ done: Int, of total: Int)
    func checkpointFinished(_ summary: CriticalitySummary)
}

/// What the job produced.
public struct CriticalityResult: Sendable {
    public var summaries: [CriticalitySummary]
    public var examples: Int
    public var skipped: [(index: Int, reason: String)]
    /// With --write-filtered: the filtered file, its sidecar, and how many examples were removed.
    public var filtered: (file: URL, sidecar: URL, removed: Int)?
    /// Tokens fed through the model and seconds spent in the passes, over all checkpoints scored here.
    public var inputTokens: Int
    public var scoringSeconds: Double
}

public enum CriticalityJob {
    public static func run(_ spec: CriticalityJobSpec, progress: (any CriticalityProgress)? = nil) throws -> CriticalityResult {
        if let shard = spec.shard, spec.writeFiltered != nil { throw CriticalityError.filterInShard(shard: shard.description) }
        try checkOutput(spec.output, force: spec.force, resume: spec.resume)
        if let f = spec.writeFiltered { try checkFolder(of: f) }

        // 1. The data, read and checked before anything else.
        let dataset = try InstructionDataLoader.load(url: spec.data, format: spec.format, fields: spec.fields,
                                                     categoryField: spec.categoryField, sha256: { (try? ContentHash.sha256(file: $0)) ?? "" })

        // 2. Checkpoints: one model shape, one tokenizer.
        let loader = CheckpointLoader(base: spec.base, hashContents: true)
        let configs = try spec.checkpoints.map { ref in
            try ModelConfig.load(from: Trajectory.isAdapter(ref.path) ? loader.baseFolder(for: ref.path) : ref.path)
        }
        let first = configs[0]
        for (ref, c) in zip(spec.checkpoints, configs).dropFirst()
        where c.modelType != first.modelType || c.layers != first.layers || c.dModel != first.dModel || c.vocab != first.vocab {
            throw CriticalityError.mixedModels(checkpoint: ref.path.path, first: spec.checkpoints[0].path.path)
        }
        let (tokenizerFile, tokenizerHash) = try findTokenizer(spec, loader: loader)
        let tokenizer = try Tokenizer.load(from: tokenizerFile)
        // A chat template writes its own end-of-turn tokens: no EOS is appended under --template chat.
        let eos = spec.appendEOS && spec.template.chat == nil ? (tokenizer.eosTokenID ?? first.eosTokenIDs.sorted().first) : nil
        // Both limits hold: --max-tokens, and the model's window (a loss past the trained positions would
        // not be the finetuning loss).
        let (limit, byModel): (Int, Bool) = {
            guard let m = spec.maxTokens, m < first.maxPositions else { return (first.maxPositions, true) }
            return (m, false)
        }()
        let tokenized = try CriticalityTokens.tokenize(dataset.examples, template: spec.template, tokenizer: tokenizer, eos: eos,
                                                       limit: limit, limitByModel: byModel)
        for t in tokenized { for s in t.sequences { for id in s.ids where id >= first.vocab {
            throw CriticalityError.tokenOutsideVocabulary(tokenizer: tokenizerFile.path, id: id, example: t.index, vocab: first.vocab)
        } } }
        let logitRows = max(64, (256 << 20) / (4 * max(1, first.vocab)))
        let batches = CriticalityTokens.batches(tokenized, tokenBudget: spec.batchTokens, logitRowBudget: logitRows)
        // This process's checkpoints and examples.
        var refs = spec.checkpoints
        var exampleRange = 0..<tokenized.count
        var myBatches = batches
        if let shard = spec.shard {
            switch shard.axis {
            case .probes, .interventions: throw ProbeRunError.shardAxis(axis: shard.axis.rawValue, command: "criticality")
            case .checkpoints: refs = Array(spec.checkpoints[shard.range(of: spec.checkpoints.count)])
            case .examples:
                let r = shard.range(of: batches.count)
                guard !r.isEmpty else { throw CriticalityError.emptyShard(shard: shard.description, batches: batches.count) }
                let start = r.lowerBound == 0 ? 0 : batches[r.lowerBound][0]
                let end = r.upperBound >= batches.count ? tokenized.count : batches[r.upperBound][0]
                exampleRange = start..<end
                myBatches = Array(batches[r])
            }
            if refs.isEmpty || exampleRange.isEmpty { throw CriticalityError.emptyShard(shard: shard.description, batches: batches.count) }
        }
        let local = Array(tokenized[exampleRange])
        let precision = try spec.precision ?? loader.defaultPrecision(for: spec.checkpoints[0].path)
        var compute = spec.compute
        compute.precision = precision
        let filterIndex = try spec.filterCheckpoint.map { try checkpointIndex($0, in: spec.checkpoints) } ?? 0

        // 3. The file.
        let identity: [String: AttributeValue] = [
            "data_sha256": .string(dataset.sha256), "data_format": .string(dataset.format.rawValue),
            "template": .string(spec.template.jsonDescription), "eos_appended": .int(eos == nil ? 0 : 1),
            "max_tokens": .int(Int64(limit)), "precision": .string(precision.rawValue),
            "tokenizer_sha256": .string(tokenizerHash), "batch_tokens": .int(Int64(spec.batchTokens)),
        ]
        let names = refs.map(\.name)
        let writer: CriticalityWriter
        var done = [Bool](repeating: false, count: names.count)
        if spec.resume, FileManager.default.fileExists(atPath: spec.output.path) {
            writer = try CriticalityWriter(resuming: spec.output, checkpoints: names, exampleCount: local.count, identity: identity)
            done = try writer.completed()
        } else {
            var attributes = identity
            let iso = ISO8601DateFormatter().string(from: Date())
            attributes.merge([
                "tool": .string("cpiscope"), "tool_version": .string(spec.toolVersion), "command_line": .string(spec.commandLine),
                "created": .string(iso), "data_file": .string(spec.data.path), "data_container": .string(dataset.containerName),
                "template_name": .string(spec.template.name), "eos_token_id": .int(Int64(eos ?? -1)),
                "max_tokens_by": .string(byModel ? "model" : "--max-tokens"),
                "tokenizer_path": .string(tokenizerFile.path), "model_type": .string(first.modelType),
                "model_config": .string(first.rawJSON), "checkpoint_paths": .strings(spec.checkpoints.map(\.path.path)),
                "filter_checkpoint": .string(spec.checkpoints[filterIndex].name),
            ]) { a, _ in a }
            if let p = spec.filterPercent { attributes["filter_lowest_percent"] = .double(p) }
            if let f = spec.writeFiltered { attributes["filtered_output"] = .string(f.path) }
            if let c = spec.categoryField { attributes["category_field"] = .string(c) }
            if let fields = dataset.fields {
                attributes["data_fields"] = .strings([fields.instruction, fields.context ?? "", fields.response])
            }
            if let shard = spec.shard {
                attributes["shard"] = .string(shard.description)
                attributes["shard_by"] = .string(shard.axis.rawValue)
                attributes["shard_job_checkpoints"] = .strings(spec.checkpoints.map(\.name))
                attributes["shard_job_examples"] = .strings(tokenized.map { String($0.index) })
            }
            writer = try CriticalityWriter(creating: spec.output, checkpoints: names,
                                           steps: refs.map { Int64($0.step ?? -1) },
                                           exampleIDs: dataset.examples[exampleRange].map(\.id),
                                           categories: dataset.examples[exampleRange].map(\.category), examples: local,
                                           attributes: attributes, overwrite: spec.force)
        }
        defer { writer.close() }

        // 4. Checkpoint by checkpoint.
        var summaries: [CriticalitySummary] = []
        var inputTokens = 0
        var seconds = 0.0
        let scorable = myBatches.reduce(0) { $0 + $1.count }
        let offset = exampleRange.lowerBound
        for (ci, ref) in refs.enumerated() {
            progress?.checkpointStarted(ci, of: refs.count, name: ref.name)
            if done[ci] {
                summaries.append(CriticalitySummary(name: ref.name, step: ref.step, scored: 0, scoredWithContext: 0, meanNLLWithContext: .nan,
                                                    meanNLLWithoutContext: .nan, medianCriticality: .nan, skipped: true))
                continue
            }
            let loaded = try loader.load(ref.path)
            var scores = CriticalityScores(count: local.count)
            var finished = 0
            for batch in myBatches {
                let sequences = batch.flatMap { tokenized[$0].sequences }
                let start = Date()
                let nll = try loaded.model.negativeLogLikelihood(sequences, compute: compute)
                seconds += Date().timeIntervalSince(start)
                inputTokens += sequences.reduce(0) { $0 + $1.ids.count - 1 }
                var r = 0
                for k in batch {
                    let t = tokenized[k]
                    var withSum: Double? = nil
                    if t.withContext != nil { withSum = nll[r]; r += 1 }
                    scores.set(k - offset, withSum: withSum, withTokens: t.withContext?.scored ?? 0,
                               withoutSum: nll[r], withoutTokens: t.withoutContext!.scored)
                    r += 1
                }
                finished += batch.count
                progress?.examplesFinished(finished, of: scorable)
            }
            do {
                try writer.write(checkpoint: ci, scores: scores, weightsHash: loaded.contentHash)
            } catch {
                writer.abandon()
                throw CriticalityError.writeFailed(path: spec.output.path, detail: "\(error)")
            }
            let s = summarize(ref, scores)
            summaries.append(s)
            progress?.checkpointFinished(s)
        }
        do { try writer.finish() } catch {
            writer.abandon()
            throw CriticalityError.writeFailed(path: spec.output.path, detail: "\(error)")
        }

        // 5. The filter, from the chosen checkpoint's scores as written.
        var filtered: (URL, URL, Int)? = nil
        if let url = spec.writeFiltered {
            let percent = spec.filterPercent ?? 25
            let crit = try writer.criticality(checkpoint: filterIndex)
            let hasContext = tokenized.map(\.hasContext)
            guard crit.indices.contains(where: { hasContext[$0] && crit[$0].isFinite }) else {
                throw CriticalityError.filterNeedsContext(path: spec.data.path)
            }
            let removed = CriticalityFilter.removals(criticality: crit, hasContext: hasContext, percent: percent)
            let sidecar = try CriticalityFilter.write(dataset, removing: removed, criticality: crit, percent: percent,
                                                      checkpoint: names[filterIndex], to: url)
            filtered = (url, sidecar, removed.count)
        }
        let skipped = local.compactMap { t in t.skipReason.map { (t.index, $0) } }
        return CriticalityResult(summaries: summaries, examples: local.count, skipped: skipped, filtered: filtered,
                                 inputTokens: inputTokens, scoringSeconds: seconds)
    }

    /// A checkpoint by name or step.
    static func checkpointIndex(_ key: String, in refs: [CheckpointRef]) throws -> Int {
        if let i = refs.firstIndex(where: { $0.name == key }) { return i }
        if let step = Int(key), let i = refs.firstIndex(where: { $0.step == step }) { return i }
        throw CriticalityError.unknownCheckpoint(key, available: refs.map(\.name))
    }

    /// --tokenizer, else the checkpoint folder, else the trajectory root, else the adapter's base; one file for all.
    static func findTokenizer(_ spec: CriticalityJobSpec, loader: CheckpointLoader) throws -> (URL, String) {
        var found: (URL, String)? = nil
        for ref in spec.checkpoints {
            let base = Trajectory.isAdapter(ref.path) ? try? loader.baseFolder(for: ref.path) : nil
            guard let t = ProbeJob.tokenizerURL(for: ref, explicit: spec.tokenizer, trajectoryRoot: spec.trajectoryRoot, base: base) else {
                throw CriticalityError.noTokenizer(checkpoint: ref.path.path)
            }
            let file = t.hasDirectoryPath || !t.lastPathComponent.hasSuffix(".json") ? t.appendingPathComponent("tokenizer.json") : t
            let hash = (try? ContentHash.sha256(file: file)) ?? ""
            if let f = found, f.1 != hash { throw CriticalityError.tokenizerMismatch(checkpoint: ref.path.path, first: f.0.path) }
            if found == nil { found = (file, hash) }
        }
        return found!
    }

    static func checkOutput(_ url: URL, force: Bool, resume: Bool) throws {
        try checkFolder(of: url)
        if FileManager.default.fileExists(atPath: url.path), !force, !resume { throw CriticalityError.outputExists(path: url.path) }
    }

    static func checkFolder(of url: URL) throws {
        let dir = url.deletingLastPathComponent()
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw CriticalityError.outputFolderMissing(path: dir.path)
        }
        guard FileManager.default.isWritableFile(atPath: dir.path) else { throw CriticalityError.outputFolderMissing(path: dir.path) }
    }

    /// The means and the median over the scored examples with a context (a finite nll with context and
    /// criticality), the set the report's median is over.
    static func summarize(_ ref: CheckpointRef, _ s: CriticalityScores) -> CriticalitySummary {
        let set = s.nllWith.indices.filter { s.nllWith[$0].isFinite && s.nllWithout[$0].isFinite && s.criticality[$0].isFinite }
        func mean(_ v: [Float]) -> Double { set.isEmpty ? .nan : set.reduce(0.0) { $0 + Double(v[$1]) } / Double(set.count) }
        let c = set.map { Double(s.criticality[$0]) }.sorted()
        return CriticalitySummary(name: ref.name, step: ref.step, scored: s.nllWithout.filter(\.isFinite).count, scoredWithContext: set.count,
                                  meanNLLWithContext: mean(s.nllWith), meanNLLWithoutContext: mean(s.nllWithout),
                                  medianCriticality: Stats.quantile(sorted: c, 0.5), skipped: false)
    }
}

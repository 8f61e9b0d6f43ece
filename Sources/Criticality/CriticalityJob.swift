// The criticality job: an instruction dataset scored by a model, or by every checkpoint of a trajectory,
// into one HDF5 file; optionally the paper's filtered dataset. On the job layer (TrajectoryJob), as probe
// runs: read and check everything (output paths, data, checkpoints, tokenizer, lengths) before the output
// exists; tokenize once; then per checkpoint load → score every batch → write → flush.
import Analysis
import Checkpoints
import Foundation
import HDF5Store
import Models
import TensorCore
import Tokenization
import TrajectoryJob

/// Everything a criticality run needs: the settings every trajectory job shares (`job`), and its own.
public struct CriticalityJobSpec: Sendable {
    /// Shards split the checkpoints or the examples (`--shard-by examples`), at scoring-batch boundaries, so
    /// every example is scored in the same batch as in a single-process run and a merge equals it bit for bit.
    public var job: TrajectoryJobSettings
    public var data: URL
    public var format: InstructionDataFormat? = nil
    public var fields: InstructionFields? = nil
    /// The field holding each row's data category (nil: TULU's `dataset` for chat rows, else none).
    public var categoryField: String? = nil
    public var template: InstructionTemplate
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

    public init(checkpoints: [CheckpointRef], trajectoryRoot: URL?, data: URL, template: InstructionTemplate, output: URL) {
        self.job = TrajectoryJobSettings(checkpoints: checkpoints, trajectoryRoot: trajectoryRoot, output: output)
        self.data = data
        self.template = template
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

public protocol CriticalityProgress: TrajectoryJobProgress {
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
        let settings = spec.job
        if let shard = settings.shard, spec.writeFiltered != nil { throw CriticalityError.filterInShard(shard: shard.description) }
        try TrajectoryJob.checkOutput(settings)
        if let f = spec.writeFiltered { try TrajectoryJob.checkFolder(of: f) }

        // 1. The data, read and checked before anything else.
        let dataset = try InstructionDataLoader.load(url: spec.data, format: spec.format, fields: spec.fields,
                                                     categoryField: spec.categoryField, sha256: { (try? ContentHash.sha256(file: $0)) ?? "" })

        // 2. Checkpoints: one model shape, one tokenizer (the job layer).
        let prepared = try TrajectoryJob.prepare(settings)
        let (first, tokenizer) = (prepared.config, prepared.tokenizer)
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
            throw CriticalityError.tokenOutsideVocabulary(tokenizer: prepared.tokenizerFile.path, id: id, example: t.index, vocab: first.vocab)
        } } }
        let logitRows = max(64, (256 << 20) / (4 * max(1, first.vocab)))
        let batches = CriticalityTokens.batches(tokenized, tokenBudget: spec.batchTokens, logitRowBudget: logitRows)
        // This process's checkpoints and examples: an example shard takes whole scoring batches.
        let part = try JobPart.of(settings.shard, checkpoints: settings.checkpoints.count, axis: .examples,
                                  unitCount: { batches.count }, command: "criticality")
        let refs = Array(settings.checkpoints[part.checkpoints])
        let myBatches = part.units.map { Array(batches[$0]) } ?? batches
        let exampleRange: Range<Int> = part.units.map { r in
            (r.lowerBound == 0 ? 0 : batches[r.lowerBound][0])..<(r.upperBound >= batches.count ? tokenized.count : batches[r.upperBound][0])
        } ?? 0..<tokenized.count
        let local = Array(tokenized[exampleRange])
        let compute = prepared.compute
        let filterIndex = try spec.filterCheckpoint.map { try checkpointIndex($0, in: settings.checkpoints) } ?? 0

        // 3. The file.
        typealias A = RunSchema.Attribute
        let identity: [String: AttributeValue] = [
            "data_sha256": .string(dataset.sha256), "data_format": .string(dataset.format.rawValue),
            "template": .string(spec.template.jsonDescription), "eos_appended": .int(eos == nil ? 0 : 1),
            "max_tokens": .int(Int64(limit)), A.precision: .string(compute.precision.rawValue),
            A.tokenizerSHA256: .string(prepared.tokenizerHash), "batch_tokens": .int(Int64(spec.batchTokens)),
        ]
        let names = refs.map(\.name)
        let writer: CriticalityWriter
        if settings.resume, FileManager.default.fileExists(atPath: settings.output.path) {
            writer = try CriticalityWriter(resuming: settings.output, checkpoints: names, exampleCount: local.count, identity: identity)
        } else {
            var attributes = TrajectoryJob.commonAttributes(settings, prepared)
            attributes.merge(identity) { $1 }
            attributes.merge([
                "data_file": .string(spec.data.path), "data_container": .string(dataset.containerName),
                A.templateName: .string(spec.template.name), "eos_token_id": .int(Int64(eos ?? -1)),
                "max_tokens_by": .string(byModel ? "model" : "--max-tokens"),
                "filter_checkpoint": .string(settings.checkpoints[filterIndex].name),
            ]) { $1 }
            if let p = spec.filterPercent { attributes["filter_lowest_percent"] = .double(p) }
            if let f = spec.writeFiltered { attributes["filtered_output"] = .string(f.path) }
            if let c = spec.categoryField { attributes["category_field"] = .string(c) }
            if let fields = dataset.fields {
                attributes["data_fields"] = .strings([fields.instruction, fields.context ?? "", fields.response])
            }
            if let shard = settings.shard {
                attributes.merge(shard.attributes(jobLists: [(.checkpoints, settings.checkpoints.map(\.name)),
                                                             (.examples, tokenized.map { String($0.index) })])) { $1 }
            }
            writer = try CriticalityWriter(creating: settings.output, checkpoints: names,
                                           steps: refs.map { Int64($0.step ?? -1) },
                                           exampleIDs: dataset.examples[exampleRange].map(\.id),
                                           categories: dataset.examples[exampleRange].map(\.category), examples: local,
                                           attributes: attributes, overwrite: settings.force)
        }
        defer { writer.close() }

        // 4. Checkpoint by checkpoint.
        var summaries: [CriticalitySummary] = []
        var inputTokens = 0
        var seconds = 0.0
        let scorable = myBatches.reduce(0) { $0 + $1.count }
        let offset = exampleRange.lowerBound
        try TrajectoryJob.forEachCheckpoint(
            refs, file: writer, output: settings.output, loader: prepared.loader, compute: compute, progress: progress,
            skipped: { _, ref in
                summaries.append(CriticalitySummary(name: ref.name, step: ref.step, scored: 0, scoredWithContext: 0, meanNLLWithContext: .nan,
                                                    meanNLLWithoutContext: .nan, medianCriticality: .nan, skipped: true))
            },
            measure: { _, _, loaded in
                var scores = CriticalityScores(count: local.count)
                var finished = 0
                for batch in myBatches {
                    let sequences = batch.flatMap { tokenized[$0].sequences }
                    var clock = PhaseClock()
                    let nll = try loaded.model.negativeLogLikelihood(sequences, compute: compute)
                    let tokens = sequences.reduce(0) { $0 + $1.ids.count - 1 }
                    seconds += clock.lap(.scoring, work: .forward(loaded.model, tokens: tokens,
                                                                  logitRows: sequences.reduce(0) { $0 + $1.scored }, passes: 1))
                    inputTokens += tokens
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
                return scores
            },
            write: { ci, scores, _, weightsHash in try writer.write(checkpoint: ci, scores: scores, weightsHash: try weightsHash()) },
            finished: { _, ref, scores in
                let s = summarize(ref, scores)
                summaries.append(s)
                progress?.checkpointFinished(s)
            })

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

/// Criticality's one phase, as CPISCOPE_TIMING=1 reports it: the teacher-forced passes that score the responses.
extension JobPhase {
    public static let scoring = JobPhase("teacher-forced scoring passes")
}

// Errors of `cpiscope criticality`: each names the data file, row, field or option at fault and says
// what to do. Rows the run can go on without (an empty response, an over-long example) are not errors:
// they are skipped and recorded with their reason (`ScoredExample.skipReason`).

public enum CriticalityError: Error, CustomStringConvertible, Sendable, Equatable {
    case dataUnreadable(path: String, reason: String)
    case notJSON(path: String, detail: String)
    case invalidUTF8(path: String, line: Int?)
    case unknownFormat(path: String, detail: String)
    case rowNotObject(path: String, row: Int)
    case missingField(path: String, row: Int, field: String)
    case fieldNotString(path: String, row: Int, field: String, found: String)
    case noExamples(path: String)
    case templateFile(path: String, detail: String)
    case badPercent(String)
    case filterNeedsContext(path: String)
    case outputExists(path: String)
    case writeFailed(path: String, detail: String)
    case resumeMismatch(path: String, detail: String)
    case notACriticalityFile(path: String, detail: String)
    case outputFolderMissing(path: String)
    case emptyShard(shard: String, batches: Int)
    case filterInShard(shard: String)
    case unknownCheckpoint(String, available: [String])
    case noTokenizer(checkpoint: String)
    case tokenizerMismatch(checkpoint: String, first: String)
    case mixedModels(checkpoint: String, first: String)
    case tokenOutsideVocabulary(tokenizer: String, id: Int, example: Int, vocab: Int)

    public var description: String {
        switch self {
        case let .dataUnreadable(p, r): return "\(p): cannot read the data file: \(r)"
        case let .notJSON(p, d): return "\(p): not JSON or JSONL: \(d)"
        case let .invalidUTF8(p, line): return "\(p): invalid UTF-8" + (line.map { " on line \($0)" } ?? "")
        case let .unknownFormat(p, d): return "\(p): cannot tell the data format: \(d)"
        case let .rowNotObject(p, r): return "\(p): row \(r) is not a JSON object"
        case let .missingField(p, r, f): return "\(p): row \(r) has no '\(f)' field"
        case let .fieldNotString(p, r, f, found): return "\(p): row \(r): '\(f)' is \(found), not a string"
        case let .noExamples(p): return "\(p): the data file holds no examples"
        case let .templateFile(p, d): return "\(p): \(d)"
        case let .badPercent(s): return "--filter-lowest '\(s)' is not a percentage between 0 and 100"
        case let .filterNeedsContext(p): return "\(p): no scored example has a context, so there is nothing to filter"
        case let .outputExists(p): return "\(p): output already exists"
        case let .writeFailed(p, d): return "\(p): write failed: \(d)"
        case let .resumeMismatch(p, d): return "\(p): cannot resume: \(d)"
        case let .notACriticalityFile(p, d): return "\(p): not a cpiscope criticality file: \(d)"
        case let .emptyShard(s, b): return "shard \(s) holds no checkpoints or examples (the examples form \(b) scoring batch\(b == 1 ? "" : "es"))"
        case let .filterInShard(s): return "shard \(s): --write-filtered needs every example's score, which one shard does not have"
        case let .outputFolderMissing(p): return "\(p): output folder does not exist or is not writable"
        case let .unknownCheckpoint(k, names): return "--filter-checkpoint '\(k)' is none of the run's checkpoints (\(names.joined(separator: ", ")))"
        case let .noTokenizer(c): return "\(c): no tokenizer.json in the checkpoint, the trajectory folder or the adapter's base"
        case let .tokenizerMismatch(c, f): return "\(c): its tokenizer.json differs from \(f)"
        case let .mixedModels(c, f): return "\(c): checkpoint is another model than \(f)"
        case let .tokenOutsideVocabulary(t, id, e, v): return "\(t): token id \(id) (example \(e)) is outside the model's vocabulary of \(v)"
        }
    }

    public var hint: String {
        switch self {
        case .dataUnreadable: return "Check the path given to --data."
        case .notJSON: return "Give a JSON array of objects, JSONL (one object per line), or SQuAD's published JSON."
        case .invalidUTF8: return "Convert the file to UTF-8 (e.g. iconv -t UTF-8)."
        case .unknownFormat: return "Pass --format alpaca|squad|fields (fields needs --instruction-field and --response-field)."
        case .rowNotObject: return "Every row must be an object with the instruction, context and response fields."
        case .missingField: return "Fix the row, or name the fields with --format fields --instruction-field … --response-field …"
        case .fieldNotString: return "Instruction, context and response fields must be strings."
        case .noExamples: return "Add examples; see docs/criticality.md for the formats."
        case .templateFile: return "A template file is a JSON object with with_context, without_context and separator (docs/criticality.md)."
        case .badPercent: return "Write the share to remove as a percentage, e.g. --filter-lowest 25%."
        case .filterNeedsContext: return "Filtering removes examples with a context; check --context-field or the data's input field."
        case .outputExists: return "Pass --force to overwrite it, or --resume to finish an interrupted run."
        case .writeFailed: return "Check free disk space and permissions; completed checkpoints are kept and --resume continues."
        case .resumeMismatch: return "Resume with the same data, template, settings and checkpoints, or start again with --force."
        case .notACriticalityFile: return "Pass a file written by `cpiscope criticality`."
        case .emptyShard: return "Use fewer shards than checkpoints or scoring batches, or a smaller --batch-tokens for more batches."
        case .filterInShard: return "Merge the shards (cpiscope merge), then filter: the same criticality command on the merged file with --resume --filter-lowest P% --write-filtered FILE."
        case .outputFolderMissing: return "Create the folder first, or choose another path."
        case .unknownCheckpoint: return "Name a checkpoint of the run (its folder name or its step)."
        case .noTokenizer: return "Pass --tokenizer PATH (a tokenizer.json or a folder holding one)."
        case .tokenizerMismatch: return "Give every checkpoint the same tokenizer, or pass --tokenizer PATH."
        case .mixedModels: return "A trajectory holds checkpoints of one model; select a subset with --checkpoints."
        case .tokenOutsideVocabulary: return "Use the model's own tokenizer (--tokenizer)."
        }
    }
}

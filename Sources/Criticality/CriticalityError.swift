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
    case resumeMismatch(path: String, detail: String)
    case notACriticalityFile(path: String, detail: String)
    case filterInShard(shard: String)
    case filteredWriteFailed(path: String, detail: String)
    case unknownCheckpoint(String, available: [String])
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
        case let .resumeMismatch(p, d): return "\(p): cannot resume: \(d)"
        case let .notACriticalityFile(p, d): return "\(p): not a cpiscope criticality file: \(d)"
        case let .filteredWriteFailed(p, d): return "\(p): writing the filtered data failed: \(d)"
        case let .filterInShard(s): return "shard \(s): --write-filtered needs every example's score, which one shard does not have"
        case let .unknownCheckpoint(k, names): return "--filter-checkpoint '\(k)' is none of the run's checkpoints (\(names.joined(separator: ", ")))"
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
        case .resumeMismatch: return "Resume with the same data, template, settings and checkpoints, or start again with --force."
        case .notACriticalityFile: return "Pass a file written by `cpiscope criticality`."
        case .filteredWriteFailed: return "Check free disk space and permissions; the scores are in the run file, and the same command with --resume writes the filtered data again."
        case .filterInShard: return "Merge the shards (cpiscope merge), then filter: the same criticality command on the merged file with --resume --filter-lowest P% --write-filtered FILE."
        case .unknownCheckpoint: return "Name a checkpoint of the run (its folder name or its step)."
        case .tokenOutsideVocabulary: return "Use the model's own tokenizer (--tokenizer)."
        }
    }
}

// The one error type of the Checkpoints module.
//
// Every case names the file at fault (a path) and, where one is involved, the tensor; `description`
// is one line and `hint` suggests a fix. The rules behind the safetensors cases are listed in
// docs/safetensors.md, each with the case it raises.

/// Everything that can go wrong while reading checkpoints: safetensors files, shard indexes,
/// checkpoint folders, trajectories and `--checkpoints` selections.
public enum CheckpointError: Error, CustomStringConvertible, Sendable {
    // MARK: file access
    /// The file could not be opened, inspected or mapped.
    case unreadable(file: String, reason: String)

    // MARK: safetensors header
    /// The file is shorter than the 8-byte header-length prefix.
    case fileTooSmall(file: String, size: Int)
    /// The declared header length exceeds `limit` (the Rust crate's `MAX_HEADER_SIZE`).
    case headerTooLarge(file: String, declared: UInt64, limit: Int)
    /// The declared header length runs past the end of the file.
    case headerPastEndOfFile(file: String, declared: UInt64, fileSize: Int)
    /// The header bytes are not valid UTF-8; `byteOffset` counts from the start of the header.
    case headerNotUTF8(file: String, byteOffset: Int)
    /// The header is not valid JSON.
    case headerBadJSON(file: String, reason: String)
    /// The header is valid JSON but not an object.
    case headerNotObject(file: String, found: String)
    /// `__metadata__` is not an object mapping strings to strings.
    case invalidMetadata(file: String, key: String?, reason: String)
    /// The header names the same tensor twice.
    case duplicateTensorInHeader(file: String, tensor: String)
    /// A tensor entry lacks `dtype`, `shape` or `data_offsets`.
    case missingField(file: String, tensor: String, field: String)
    /// A tensor entry has a field of the wrong type or value.
    case invalidField(file: String, tensor: String, field: String, reason: String)
    /// A tensor's dtype is not one the safetensors format defines.
    case unknownDType(file: String, tensor: String, dtype: String)
    /// element count × dtype size does not fit in a machine integer.
    case sizeOverflow(file: String, tensor: String, shape: [Int], dtype: SafeTensorsDType)
    /// A packed sub-byte tensor (F4, F6_*) whose bits do not fill whole bytes.
    case subByteMisaligned(file: String, tensor: String, dtype: SafeTensorsDType, elements: Int)
    /// `data_offsets` has end < start.
    case invertedOffsets(file: String, tensor: String, start: Int, end: Int)
    /// A tensor starts before the previous tensor (in offset order) ends.
    case overlappingOffsets(file: String, tensor: String, previous: String, start: Int, previousEnd: Int)
    /// Bytes between two tensors (or before the first) belong to no tensor.
    case gappedOffsets(file: String, tensor: String, previous: String?, gapStart: Int, gapEnd: Int)
    /// The tensor's byte length differs from element count × dtype size.
    case byteLengthMismatch(file: String, tensor: String, dtype: SafeTensorsDType, shape: [Int],
                            expected: Int, actual: Int)
    /// The data buffer ends before `tensor` does: the file was cut short.
    case truncated(file: String, tensor: String, end: Int, dataLength: Int)
    /// The data buffer continues past the last tensor.
    case trailingBytes(file: String, extra: Int, lastTensor: String?)

    // MARK: tensor access
    /// No tensor of that name in the file or store (`source` is the file or folder searched).
    case tensorNotFound(source: String, tensor: String)
    /// The tensor's dtype cannot be converted to Float32 (integer, bool, 8/6/4-bit float, complex).
    case unsupportedDType(file: String, tensor: String, dtype: SafeTensorsDType)

    // MARK: shard index
    /// `model.safetensors.index.json` is unreadable or malformed.
    case badIndex(file: String, reason: String)
    /// The index names a shard file that does not exist.
    case missingShard(index: String, shard: String, tensor: String)
    /// The index maps a tensor to a shard that does not contain it.
    case tensorAbsentFromShard(index: String, shard: String, tensor: String)
    /// A shard contains a tensor that the index does not list.
    case tensorNotInIndex(index: String, shard: String, tensor: String)
    /// The same tensor is stored in two files.
    case duplicateTensor(tensor: String, first: String, second: String)

    // MARK: folders and trajectories
    /// A folder expected to hold weights holds none; `found` lists what it does hold.
    case noWeights(directory: String, expected: String, found: [String])
    /// The path is neither a checkpoint folder nor a folder of `checkpoint-N` folders.
    case notCheckpointFolder(path: String, reason: String)
    /// `trainer_state.json` exists but is unreadable or malformed.
    case badTrainerState(file: String, reason: String)
    /// A `--checkpoints` selection that does not parse.
    case invalidSelection(spec: String, reason: String)
    /// A `--checkpoints` term naming no checkpoint; `available` lists the names.
    case unknownCheckpoint(spec: String, term: String, available: [String])
    /// A `--checkpoints` selection that parses but matches nothing.
    case emptySelection(spec: String, available: [String])

    // MARK: PEFT adapters (docs/lora.md)
    /// An adapter folder (it holds adapter_model.safetensors) without adapter_config.json.
    case missingAdapterConfig(directory: String)
    /// adapter_config.json is unreadable, not JSON, or `field` is missing or has the wrong type or value.
    case badAdapterConfig(file: String, field: String, reason: String)
    /// A PEFT feature cpiscope does not implement: another `peft_type`, DoRA, bias training, ….
    case unsupportedAdapter(file: String, field: String, value: String, reason: String)
    /// The adapter's `target_modules` (with `exclude_modules`, `layers_to_transform`) select no linear layer of the base.
    case adapterTargetsNothing(file: String, field: String, targets: String, base: String)
    /// An adapter tensor that no targeted module or `modules_to_save` entry accounts for.
    case adapterTensorUnmatched(file: String, tensor: String, reason: String)
    /// A targeted module whose `lora_A` or `lora_B` tensor is absent from the adapter file.
    case adapterTensorMissing(file: String, tensor: String, module: String)
    /// An adapter tensor whose shape disagrees with the base weight or with the configured rank.
    case adapterShapeMismatch(file: String, tensor: String, expected: [Int], found: [Int], reason: String)
    /// The adapter was made for another architecture than the base it is applied to.
    case adapterBaseMismatch(file: String, field: String, adapter: String, base: String, basePath: String)
    /// The base model of an adapter cannot be found (`reference` is base_model_name_or_path, if any).
    case adapterBaseNotFound(file: String, reference: String?, reason: String)

    // MARK: PyTorch checkpoints (docs/torch-bin.md)
    /// A `pytorch_model.bin` / `*.pt` file the safe reader refuses (container, pickle or storages).
    case torchFile(TorchFileError)

    /// One line naming the file and, where involved, the tensor. Control characters coming from
    /// untrusted names are escaped and very long text is clipped, so the line stays one line.
    public var description: String { Self.oneLine(rawDescription) }

    private var rawDescription: String {
        switch self {
        case let .unreadable(file, reason):
            return "\(file): cannot read file: \(reason)"
        case let .fileTooSmall(file, size):
            return "\(file): file is \(size) bytes, shorter than the 8-byte safetensors header length"
        case let .headerTooLarge(file, declared, limit):
            return "\(file): header length \(declared) exceeds the \(limit)-byte limit"
        case let .headerPastEndOfFile(file, declared, fileSize):
            return "\(file): header length \(declared) runs past the end of the \(fileSize)-byte file"
        case let .headerNotUTF8(file, offset):
            return "\(file): header is not valid UTF-8 (invalid byte at header offset \(offset))"
        case let .headerBadJSON(file, reason):
            return "\(file): header is not valid JSON: \(reason)"
        case let .headerNotObject(file, found):
            return "\(file): header is a JSON \(found), expected an object"
        case let .invalidMetadata(file, key, reason):
            return "\(file): __metadata__\(key.map { "[\"\($0)\"]" } ?? "") \(reason)"
        case let .duplicateTensorInHeader(file, tensor):
            return "\(file): tensor '\(tensor)' appears twice in the header"
        case let .missingField(file, tensor, field):
            return "\(file): tensor '\(tensor)' has no '\(field)' field"
        case let .invalidField(file, tensor, field, reason):
            return "\(file): tensor '\(tensor)' field '\(field)' \(reason)"
        case let .unknownDType(file, tensor, dtype):
            return "\(file): tensor '\(tensor)' has unknown dtype '\(dtype)'"
        case let .sizeOverflow(file, tensor, shape, dtype):
            return "\(file): tensor '\(tensor)' size overflows: shape \(shape) × \(dtype.rawValue)"
        case let .subByteMisaligned(file, tensor, dtype, elements):
            return "\(file): tensor '\(tensor)' of \(elements) \(dtype.rawValue) elements does not fill whole bytes"
        case let .invertedOffsets(file, tensor, start, end):
            return "\(file): tensor '\(tensor)' data_offsets [\(start), \(end)] end before they start"
        case let .overlappingOffsets(file, tensor, previous, start, previousEnd):
            return "\(file): tensor '\(tensor)' starts at \(start), overlapping '\(previous)' which ends at \(previousEnd)"
        case let .gappedOffsets(file, tensor, previous, gapStart, gapEnd):
            let before = previous.map { "after '\($0)'" } ?? "at the start of the data buffer"
            return "\(file): tensor '\(tensor)' leaves a gap of \(gapEnd - gapStart) byte(s), from byte \(gapStart) to byte \(gapEnd) (exclusive), \(before)"
        case let .byteLengthMismatch(file, tensor, dtype, shape, expected, actual):
            return "\(file): tensor '\(tensor)' has \(actual) bytes but shape \(shape) × \(dtype.rawValue) needs \(expected)"
        case let .truncated(file, tensor, end, dataLength):
            return "\(file): file is truncated: tensor '\(tensor)' ends at data byte \(end) but the data buffer has \(dataLength) bytes"
        case let .trailingBytes(file, extra, last):
            return "\(file): \(extra) trailing bytes after the last tensor\(last.map { " '\($0)'" } ?? "")"
        case let .tensorNotFound(source, tensor):
            return "\(source): no tensor named '\(tensor)'"
        case let .unsupportedDType(file, tensor, dtype):
            return "\(file): tensor '\(tensor)' has dtype \(dtype.rawValue), which cannot be read as float32"
        case let .badIndex(file, reason):
            return "\(file): invalid shard index: \(reason)"
        case let .missingShard(index, shard, tensor):
            return "\(index): shard '\(shard)' (holding tensor '\(tensor)') does not exist"
        case let .tensorAbsentFromShard(index, shard, tensor):
            return "\(index): tensor '\(tensor)' is mapped to shard '\(shard)', which does not contain it"
        case let .tensorNotInIndex(index, shard, tensor):
            return "\(index): shard '\(shard)' contains tensor '\(tensor)', which the index does not list"
        case let .duplicateTensor(tensor, first, second):
            return "tensor '\(tensor)' is stored twice: in \(first) and in \(second)"
        case let .noWeights(directory, expected, found):
            let listing = found.isEmpty ? "the folder is empty" : "found: " + Self.shortList(found)
            return "\(directory): no weights (\(expected)) in folder; \(listing)"
        case let .notCheckpointFolder(path, reason):
            return "\(path): not a checkpoint folder: \(reason)"
        case let .badTrainerState(file, reason):
            return "\(file): invalid trainer state: \(reason)"
        case let .invalidSelection(spec, reason):
            return "--checkpoints '\(spec)': \(reason)"
        case let .unknownCheckpoint(spec, term, available):
            return "--checkpoints '\(spec)': no checkpoint '\(term)'; available: \(Self.shortList(available))"
        case let .emptySelection(spec, available):
            return "--checkpoints '\(spec)' selects no checkpoint; available: \(Self.shortList(available))"
        case let .missingAdapterConfig(directory):
            return "\(directory): adapter_model.safetensors without adapter_config.json"
        case let .badAdapterConfig(file, field, reason):
            return "\(file): field '\(field)' \(reason)"
        case let .unsupportedAdapter(file, field, value, reason):
            return "\(file): \(field) = \(value) is not supported: \(reason)"
        case let .adapterTargetsNothing(file, field, targets, base):
            return "\(file): \(field) \(targets) matches no linear layer of the base model \(base)"
        case let .adapterTensorUnmatched(file, tensor, reason):
            return "\(file): tensor '\(tensor)' matches no adapted module: \(reason)"
        case let .adapterTensorMissing(file, tensor, module):
            return "\(file): no tensor '\(tensor)' for targeted module '\(module)'"
        case let .adapterShapeMismatch(file, tensor, expected, found, reason):
            return "\(file): tensor '\(tensor)' has shape \(found), expected \(expected) (\(reason))"
        case let .adapterBaseMismatch(file, field, adapter, base, basePath):
            return "\(file): \(field) is \(adapter) but the base model \(basePath) is \(base)"
        case let .adapterBaseNotFound(file, reference, reason):
            let ref = reference.map { "base_model_name_or_path '\($0)'" } ?? "no base model"
            return "\(file): \(ref): \(reason)"
        case let .torchFile(e):
            return e.rawDescription
        }
    }

    /// A suggestion for fixing the problem.
    public var hint: String {
        switch self {
        case .unreadable:
            return "Check that the path exists, is a regular file and is readable by you."
        case .fileTooSmall, .headerPastEndOfFile, .truncated:
            return "The file is incomplete, probably an interrupted download or save; download or save it again."
        case .headerTooLarge:
            return "This is not a safetensors file, or it is corrupt; safetensors headers are at most 100 MB."
        case .headerNotUTF8, .headerBadJSON, .headerNotObject:
            return "The header is corrupt or this is not a safetensors file; re-save it with the `safetensors` library."
        case .invalidMetadata:
            return "__metadata__ must map strings to strings; re-save the file with string metadata values."
        case .duplicateTensorInHeader, .missingField, .invalidField, .sizeOverflow, .subByteMisaligned,
             .invertedOffsets, .overlappingOffsets, .gappedOffsets, .byteLengthMismatch, .trailingBytes:
            return "The header does not describe the data buffer exactly; the file is corrupt or was written by a buggy tool. Re-save it with the `safetensors` library."
        case .unknownDType:
            return "Known dtypes: " + SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ") + ". Re-save the tensor in one of them (F32, F16 or BF16 for weights)."
        case .tensorNotFound:
            return "Check the tensor name against the checkpoint (WeightStore.names lists them); the model family may use another prefix."
        case .unsupportedDType:
            return "Only F32, F16, BF16 and F64 tensors can be read as weights; convert the checkpoint to one of them (e.g. with torch `.to(torch.float32)`)."
        case .badIndex:
            return "The index must be a JSON object whose \"weight_map\" maps tensor names to shard file names in the same folder; re-save the checkpoint with `save_pretrained`."
        case .missingShard:
            return "Download the missing shard file into the checkpoint folder, or re-save the checkpoint."
        case .tensorAbsentFromShard, .tensorNotInIndex:
            return "The index and the shards disagree, probably shards from two different saves are mixed; re-download or re-save the checkpoint."
        case .duplicateTensor:
            return "Each tensor must live in exactly one file; remove the stale file or re-save the checkpoint."
        case .noWeights:
            return "Save the model with `save_pretrained(...)` to get model.safetensors; PyTorch weights are read only as pytorch_model.bin (or its shard index), see docs/torch-bin.md. For a PEFT adapter, the folder needs adapter_model.safetensors."
        case .notCheckpointFolder:
            return "Point at a folder holding model.safetensors (or model.safetensors.index.json, or adapter_model.safetensors), or at a training output folder holding checkpoint-N subfolders."
        case .badTrainerState:
            return "trainer_state.json must be a JSON object whose \"global_step\" is a non-negative integer; fix or delete the file (the step then comes from the checkpoint-N folder name)."
        case .invalidSelection:
            return "Use \"every:K\", \"steps:A-B\" (either side may be open, e.g. \"steps:100-\"), step numbers or checkpoint names, combined with commas, e.g. \"every:2,steps:1000-\"."
        case .unknownCheckpoint, .emptySelection:
            return "Pick names or steps from the available list; run without --checkpoints to use all of them."
        case .missingAdapterConfig:
            return "Copy adapter_config.json from the training run next to adapter_model.safetensors (PEFT's save_pretrained writes both)."
        case .badAdapterConfig:
            return "adapter_config.json must be what PEFT's save_pretrained wrote (a JSON object with peft_type, r, lora_alpha, target_modules, …); re-save the adapter or fix the field."
        case .unsupportedAdapter:
            return "cpiscope applies plain LoRA (W + scale·B·A, optional rsLoRA, rank/alpha patterns, modules_to_save). Merge the adapter with PEFT (`merge_and_unload().save_pretrained(...)`) and pass the merged folder instead."
        case .adapterTargetsNothing:
            return "Check target_modules (and exclude_modules / layers_to_transform) against the base model's module names, or pass the right base with --base."
        case .adapterTensorUnmatched, .adapterTensorMissing:
            return "The adapter's tensors and adapter_config.json disagree, or the adapter belongs to another base; re-save the adapter with PEFT or pass the right base with --base."
        case .adapterShapeMismatch:
            return "The adapter was trained on a base of another size; pass the base it was trained on with --base."
        case .adapterBaseMismatch:
            return "Pass the base model the adapter was trained on with --base PATH."
        case .adapterBaseNotFound:
            return "Pass the base model folder with --base PATH (hub ids are not downloaded; a relative base_model_name_or_path is resolved against the adapter folder, then the current directory)."
        case let .torchFile(e):
            return e.hint
        }
    }

    static let maxDescriptionLength = 4000

    static func oneLine(_ s: String) -> String {
        var out = ""
        var count = 0
        for u in s.unicodeScalars {
            if count >= maxDescriptionLength { out += "…"; break }
            if u.value < 0x20 || u.value == 0x7F || u == "\u{2028}" || u == "\u{2029}" {
                out += u.escaped(asASCII: true)
            } else {
                out.unicodeScalars.append(u)
            }
            count += 1
        }
        return out
    }

    /// At most 12 items, then a count of the rest.
    static func shortList(_ items: [String]) -> String {
        if items.count <= 12 { return items.joined(separator: ", ") }
        return items.prefix(12).joined(separator: ", ") + ", … (\(items.count - 12) more)"
    }
}

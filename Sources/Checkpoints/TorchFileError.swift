// Errors of the PyTorch checkpoint reader (TorchZip.swift, TorchPickle.swift, TorchCheckpoint.swift).
// Reported through `CheckpointError.torchFile`; each case names the file and, where one is involved,
// the zip entry, the pickle offset or the tensor. docs/torch-bin.md lists the rules behind them.

/// Everything that can be wrong with a `pytorch_model.bin` / `*.pt` file.
public enum TorchFileError: Error, Sendable, Equatable {
    // MARK: container
    /// A pre-1.6 torch file (a bare pickle stream or a tar archive), which cannot be read without executing it.
    case legacyFormat(file: String, kind: String)
    /// Not a zip archive at all.
    case notZip(file: String, reason: String)
    /// A TorchScript archive (`torch.jit.save`): code, not a state dict.
    case torchScript(file: String)
    /// The zip structure is malformed.
    case badZip(file: String, entry: String?, reason: String)
    /// A compressed entry: torch.save stores everything uncompressed, and compressed data cannot be mapped.
    case compressedEntry(file: String, entry: String, method: Int, size: Int)
    /// An entry name that is absolute or climbs out of its folder.
    case unsafeEntryName(file: String, entry: String)
    /// An entry's data runs past the central directory or the end of the file.
    case entryOutOfBounds(file: String, entry: String, end: Int, limit: Int)
    /// Two entries share bytes.
    case overlappingEntries(file: String, entry: String, other: String)
    /// A record the format requires is absent.
    case missingRecord(file: String, entry: String)
    /// A record whose content is not what torch writes (byteorder, version, checksum).
    case badRecord(file: String, entry: String, reason: String)

    // MARK: pickle
    /// An opcode outside the accepted set.
    case forbiddenOpcode(file: String, entry: String, offset: Int, opcode: UInt8, name: String)
    /// A global (module.name) outside the accepted set.
    case forbiddenGlobal(file: String, entry: String, offset: Int, module: String, name: String)
    /// REDUCE of an accepted name that is not a constructor the reader knows (a storage type).
    case forbiddenCall(file: String, entry: String, offset: Int, callable: String)
    /// A malformed pickle stream (stack underflow, truncation, wrong argument types).
    case badPickle(file: String, entry: String, offset: Int, reason: String)
    /// A persistent id that is not a storage reference.
    case badPersistentID(file: String, offset: Int, reason: String)
    /// A size, count or depth over the reader's limits.
    case limit(file: String, what: String, value: Int, limit: Int)

    // MARK: state dict and storages
    /// The pickle's value is not a dict of tensors.
    case notStateDict(file: String, reason: String)
    /// A persistent id names a storage record that the archive does not hold.
    case missingStorage(file: String, tensor: String, storage: String, entry: String)
    /// A storage record whose byte length differs from its element count × element size.
    case storageSizeMismatch(file: String, storage: String, expected: Int, actual: Int)
    /// One storage key used with two dtypes or element counts.
    case storageConflict(file: String, storage: String, reason: String)
    /// A tensor view that reaches past the end of its storage.
    case storageTooShort(file: String, tensor: String, storage: String, needed: Int, available: Int)
    /// A tensor view with a negative offset or stride, or a size that overflows.
    case badTensor(file: String, tensor: String, reason: String)

    var rawDescription: String {
        switch self {
        case let .legacyFormat(file, kind):
            return "\(file): legacy PyTorch format (\(kind)) is not supported"
        case let .notZip(file, reason):
            return "\(file): not a PyTorch zip checkpoint: \(reason)"
        case let .torchScript(file):
            return "\(file): a TorchScript archive (torch.jit.save), not a saved state dict"
        case let .badZip(file, entry, reason):
            return "\(file): malformed zip\(entry.map { " entry '\($0)'" } ?? ""): \(reason)"
        case let .compressedEntry(file, entry, method, size):
            return "\(file): zip entry '\(entry)' is compressed (method \(method), \(size) bytes uncompressed); only stored entries are read"
        case let .unsafeEntryName(file, entry):
            return "\(file): zip entry name '\(entry)' is absolute or leaves its folder"
        case let .entryOutOfBounds(file, entry, end, limit):
            return "\(file): zip entry '\(entry)' ends at byte \(end), past the entry area that ends at \(limit)"
        case let .overlappingEntries(file, entry, other):
            return "\(file): zip entry '\(entry)' overlaps entry '\(other)'"
        case let .missingRecord(file, entry):
            return "\(file): no '\(entry)' record in the archive"
        case let .badRecord(file, entry, reason):
            return "\(file): record '\(entry)' \(reason)"
        case let .forbiddenOpcode(file, entry, offset, opcode, name):
            return "\(file): \(entry) byte \(offset): pickle opcode \(name) (0x\(String(opcode, radix: 16))) is not allowed"
        case let .forbiddenGlobal(file, entry, offset, module, name):
            return "\(file): \(entry) byte \(offset): global '\(module).\(name)' is not allowed (nothing is imported or called)"
        case let .forbiddenCall(file, entry, offset, callable):
            return "\(file): \(entry) byte \(offset): calling '\(callable)' is not allowed"
        case let .badPickle(file, entry, offset, reason):
            return "\(file): \(entry) byte \(offset): \(reason)"
        case let .badPersistentID(file, offset, reason):
            return "\(file): data.pkl byte \(offset): bad persistent id: \(reason)"
        case let .limit(file, what, value, limit):
            return "\(file): \(what) is \(value), over the limit of \(limit)"
        case let .notStateDict(file, reason):
            return "\(file): not a state dict of tensors: \(reason)"
        case let .missingStorage(file, tensor, storage, entry):
            return "\(file): tensor '\(tensor)' uses storage '\(storage)', but the archive has no '\(entry)'"
        case let .storageSizeMismatch(file, storage, expected, actual):
            return "\(file): storage '\(storage)' has \(actual) bytes, its persistent id declares \(expected)"
        case let .storageConflict(file, storage, reason):
            return "\(file): storage '\(storage)' \(reason)"
        case let .storageTooShort(file, tensor, storage, needed, available):
            return "\(file): tensor '\(tensor)' needs \(needed) elements of storage '\(storage)', which has \(available)"
        case let .badTensor(file, tensor, reason):
            return "\(file): tensor '\(tensor)' \(reason)"
        }
    }

    var hint: String {
        switch self {
        case .legacyFormat:
            return "Convert it once in a trusted Python: `torch.save(torch.load(p, weights_only=True), p2)` (zip format), or better `safetensors.torch.save_file(torch.load(p, weights_only=True), 'model.safetensors')`."
        case .torchScript:
            return "Save the weights instead: `torch.save(model.state_dict(), 'pytorch_model.bin')` or `model.save_pretrained(folder)`."
        case .compressedEntry:
            return "torch.save never compresses; the archive was rewritten by another tool. Re-save it with torch.save, or convert it to safetensors."
        case .forbiddenOpcode, .forbiddenGlobal, .forbiddenCall, .badPersistentID:
            return "cpiscope reads only plain state dicts of tensors and never runs code from a checkpoint; this file holds something else (possibly malicious). Re-save just the state dict, or convert it to safetensors, in a trusted Python."
        case .notStateDict:
            return "Pass a file holding `model.state_dict()` (what save_pretrained writes); for a training checkpoint dict, save its 'model' entry on its own."
        case .limit:
            return "The file is far larger or deeper than any real checkpoint; it is corrupt or crafted."
        default:
            return "The file is corrupt, truncated or crafted; download or save it again (torch.save, or save_pretrained), or convert it to safetensors."
        }
    }
}

// Errors raised while building a model from a checkpoint or running it.

public enum ModelError: Error, CustomStringConvertible, Sendable {
    case missingTensor(checkpoint: String, tensor: String)
    /// Every tensor that config.json implies and the weight files lack (`DecoderModel.checkWeights`).
    case missingTensors(checkpoint: String, tensors: [String])
    case wrongShape(checkpoint: String, tensor: String, expected: [Int], found: [Int])
    case unusedTensors(checkpoint: String, tensors: [String])
    case tokenOutOfRange(id: Int, vocab: Int)
    case sequenceTooLong(length: Int, maxPositions: Int)
    case emptyInput

    public var description: String {
        switch self {
        case let .missingTensor(c, t): return "\(c): missing tensor '\(t)'"
        case let .missingTensors(c, ts):
            let shown = ts.prefix(6).map { "'\($0)'" }.joined(separator: ", ")
            return "\(c): config.json implies \(ts.count) tensor(s) that the weight files lack: \(shown)\(ts.count > 6 ? ", …" : "")"
        case let .wrongShape(c, t, e, f): return "\(c): tensor '\(t)' has shape \(f), expected \(e)"
        case let .unusedTensors(c, ts):
            let shown = ts.prefix(5).joined(separator: ", ")
            return "\(c): \(ts.count) tensor(s) not used by the model: \(shown)\(ts.count > 5 ? ", …" : "")"
        case let .tokenOutOfRange(id, v): return "token id \(id) is outside the vocabulary (ids 0–\(v - 1))"
        case let .sequenceTooLong(n, m): return "sequence of \(n) tokens exceeds the model's \(m) positions"
        case .emptyInput: return "no input tokens"
        }
    }

    public var hint: String {
        switch self {
        case .missingTensor, .missingTensors, .wrongShape:
            return "The weights do not match config.json; check that both come from the same save_pretrained call."
        case .unusedTensors:
            return "The checkpoint holds tensors this architecture does not use; check config.json's model_type."
        case .tokenOutOfRange: return "Use ids from this model's tokenizer."
        case .sequenceTooLong: return "Shorten the prompt, or pass --max-tokens to skip over-long prompts."
        case .emptyInput: return "Pass at least one token id."
        }
    }
}

// TEMPORARY until the LoRA-aware CheckpointLoader lands in Models.
import Checkpoints
import Foundation
import Models

public struct LoadedCheckpointShim { public let model: DecoderModel; public let contentHash: String }

public final class CheckpointLoader {
    let base: URL?
    public init(base: URL? = nil) { self.base = base }
    public static func config(of url: URL, base: URL?) throws -> ModelConfig { try ModelConfig.load(from: url) }
    public func load(_ url: URL) throws -> LoadedCheckpointShim {
        let store = try WeightStore(directory: url)
        let hash = ContentHash.sha256(files: store.files.map(\.url)) ?? ""
        return LoadedCheckpointShim(model: try DecoderModel.load(from: url), contentHash: hash)
    }
}

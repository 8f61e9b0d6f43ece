// The precision a checkpoint runs in when none is asked for (`--precision`). Measured choices, with
// the deviations behind them, are in docs/precision.md.
import Checkpoints
import Foundation
import TensorCore

extension Precision {
    /// bf16 when most of the weight bytes are stored BF16 (the products then read the weights where
    /// they lie, and the result deviates from the float32 pass about as much as transformers' bf16 pass
    /// does); fp32 otherwise: F32 checkpoints, and F16 ones, whose 10-bit mantissas bf16 would cut to 7
    /// (and oneDNN 2.6 has no f16 matmul on this class of CPU, so each block would be converted per
    /// product). Also fp32 when oneDNN cannot run a bf16 product here.
    public static func `default`(for store: WeightStore) -> Precision {
        var bytes: [SafeTensorsDType: Int] = [:]
        for name in store.names { if let info = store.info(name) { bytes[info.dtype, default: 0] += info.byteCount } }
        let dominant = bytes.max { $0.value < $1.value || ($0.value == $1.value && $0.key.rawValue < $1.key.rawValue) }?.key
        return dominant == .BF16 && bf16Available ? .bf16 : .fp32
    }
}

extension CheckpointLoader {
    /// The default precision of the checkpoint at `path` (an adapter's: its base model's).
    public func defaultPrecision(for path: URL) throws -> Precision {
        let folder = Trajectory.isAdapter(path) ? try baseFolder(for: path) : path
        return Precision.default(for: try WeightStore(directory: folder))
    }
}

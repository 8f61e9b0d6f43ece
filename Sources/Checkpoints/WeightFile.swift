// One file of a checkpoint's weights, whatever its format: what `WeightStore` needs from it.
//
// Two formats implement it: safetensors (`SafeTensorsFile`) and PyTorch zip checkpoints
// (`TorchZipFile`: `pytorch_model.bin`, `*.pt`). Both are memory-mapped; both describe each tensor with
// a `SafeTensorInfo` (dtype, shape, and the byte length of its row-major bytes) and hand out those
// bytes by pointer, so the model code reads either format the same way.

import Foundation
import TensorCore

/// The on-disk format of a weight file (recorded in probe runs: `checkpoint_weight_formats`).
public enum WeightFileFormat: String, Sendable, Codable {
    case safetensors
    /// A PyTorch zip checkpoint read by the restricted unpickler (docs/torch-bin.md).
    case torchZip = "pytorch-zip"
}

/// A mapped, validated weight file.
public protocol WeightFile: StorageOwner {
    var url: URL { get }
    var format: WeightFileFormat { get }
    /// Size of the file in bytes.
    var fileSize: Int { get }
    /// Every tensor of the file by name.
    var tensors: [String: SafeTensorInfo] { get }
    /// Tensor names in the file's order.
    var namesInFileOrder: [String] { get }
    /// Free-form string metadata (safetensors `__metadata__`; empty for torch files).
    var metadata: [String: String] { get }
    /// The tensor's row-major bytes (valid while the file is alive). `info` must come from `tensors`.
    func rawBytes(_ info: SafeTensorInfo) -> UnsafeRawBufferPointer
    /// The tensor as Float32 with its shape.
    func floatTensor(_ info: SafeTensorInfo) throws(CheckpointError) -> Tensor
    /// True when `pointer` lies inside this file's mapping.
    func contains(pointer: UnsafeRawPointer) -> Bool
    /// Other names of the same bytes (tied weights saved twice); empty when none.
    func aliases(of name: String) -> [String]
}

extension SafeTensorsFile: WeightFile {
    public var format: WeightFileFormat { .safetensors }
    /// safetensors refuses overlapping tensors, so no tensor has an alias.
    public func aliases(of name: String) -> [String] { [] }
}

/// Opens a weight file by its name: `*.safetensors` as safetensors, `*.bin` / `*.pt` / `*.pth` as a
/// PyTorch zip checkpoint.
public func openWeightFile(_ url: URL) throws(CheckpointError) -> any WeightFile {
    if TorchZipFile.handles(url) { return try TorchZipFile(url: url) }
    return try SafeTensorsFile(url: url)
}

/// Converts a tensor's row-major bytes to a Float32 tensor. Aligned little-endian F32 is borrowed from
/// `owner` without a copy; F16, BF16 and F64 are decoded into a new buffer; other dtypes throw
/// `unsupportedDType`.
func decodeFloatTensor(_ info: SafeTensorInfo, bytes: UnsafeRawBufferPointer, owner: any StorageOwner,
                 file: String) throws(CheckpointError) -> Tensor {
    guard info.dtype.isReadableAsFloat else {
        throw .unsupportedDType(file: file, tensor: info.name, dtype: info.dtype)
    }
    let n = info.elementCount
    guard n > 0, let src = bytes.baseAddress else { return Tensor(zeros: info.shape) }
    let t: Tensor
    switch info.dtype {
    case .F32:
        #if _endian(little)
        if Int(bitPattern: src) % MemoryLayout<Float>.alignment == 0 {
            let p = UnsafeMutablePointer(mutating: src.assumingMemoryBound(to: Float.self))
            return Tensor(shape: info.shape, storage: TensorStorage(borrowing: p, count: n, owner: owner))
        }
        #endif
        t = Tensor(zeros: info.shape)
        decodeF32(src, count: n, into: t.pointer)
    case .F16:
        t = Tensor(zeros: info.shape)
        decodeF16(src, count: n, into: t.pointer)
    case .BF16:
        t = Tensor(zeros: info.shape)
        decodeBF16(src, count: n, into: t.pointer)
    case .F64:
        t = Tensor(zeros: info.shape)
        for i in 0..<n {
            let bits = src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian
            t.pointer[i] = Float(Double(bitPattern: bits))
        }
    default:
        throw .unsupportedDType(file: file, tensor: info.name, dtype: info.dtype)
    }
    return t
}

// Tensor: a shaped, row-major Float32 buffer.
//
// Shape legend used in doc comments across cpiscope:
//   pos       token positions of one sequence      head      attention heads (query heads)
//   kv_head   key/value heads (GQA)                d_model   residual width
//   d_head    per-head width                       d_mlp     MLP hidden width
//   d_vocab   vocabulary size                      query_pos / key_pos  positions in attention
//
// A tensor either owns its memory (allocated, zero-initialised) or borrows memory
// owned by someone else (e.g. a memory-mapped safetensors file), in which case it keeps
// that owner alive. Borrowed tensors are read-only by convention.

/// Keeps memory alive for borrowed tensors (e.g. an mmap region).
public protocol StorageOwner: AnyObject, Sendable {}

/// The buffer behind a `Tensor`.
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    private let owner: (any StorageOwner)?
    private let owns: Bool

    /// Allocates `count` zeroed floats, 64-byte aligned.
    public init(zeroed count: Int) {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
        self.pointer = raw.assumingMemoryBound(to: Float.self)
        self.count = count
        self.owner = nil
        self.owns = true
    }

    /// Borrows `count` floats at `pointer`, keeping `owner` alive for the tensor's lifetime.
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: any StorageOwner) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
        self.owns = false
    }

    deinit {
        if owns { UnsafeMutableRawPointer(pointer).deallocate() }
    }
}

/// A row-major float32 tensor.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: TensorStorage

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        self.shape = shape
        self.storage = TensorStorage(zeroed: shape.reduce(1, *))
    }

    /// A tensor over existing storage. `storage.count` must equal the product of `shape`.
    public init(shape: [Int], storage: TensorStorage) {
        precondition(shape.reduce(1, *) == storage.count, "shape \(shape) does not match storage of \(storage.count)")
        self.shape = shape
        self.storage = storage
    }

    /// A tensor copied from an array.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        self.init(zeros: shape)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    /// The elements as an array (copies).
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    /// Element access by flat index (bounds-checked).
    public subscript(flat i: Int) -> Float {
        get { precondition(i >= 0 && i < count); return pointer[i] }
        nonmutating set { precondition(i >= 0 && i < count); pointer[i] = newValue }
    }

    /// A row of a rank-2 tensor, as a pointer to `shape[1]` floats.
    public func row(_ r: Int) -> UnsafeMutablePointer<Float> {
        precondition(rank == 2 && r >= 0 && r < shape[0])
        return pointer + r * shape[1]
    }

    /// A deep copy that owns its memory.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.pointer.update(from: pointer, count: count)
        return t
    }
}

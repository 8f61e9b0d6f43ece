// Data-parallel loops over disjoint work (e.g. attention heads writing disjoint buffers).
import Dispatch

/// A value handed to worker threads whose safety the caller guarantees (disjoint writes).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

/// Runs `body(i)` for i in 0..<n on up to n threads and waits. `body` must only touch disjoint memory per i.
public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    if n <= 1 { for i in 0..<n { body(i) }; return }
    withoutActuallyEscaping(body) { escapable in
        let box = UncheckedSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
    }
}

// Threads: cpiscope runs its own data-parallel loops, sized by a `ComputeContext` that travels with
// each call. There is no process-global compute state: OpenBLAS is single-threaded in every call
// (set once, never toggled; MatMul.swift), and two passes with different contexts can run at the same
// time in one process (two models of a patching experiment, say).
import Dispatch
import Foundation

/// A value handed to worker threads whose safety the caller guarantees (disjoint writes).
public struct UncheckedSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

/// How many threads a pass may use. Passed to every parallel operation; never stored globally.
public struct ComputeContext: Sendable, Equatable, CustomStringConvertible {
    /// Threads for the pass's parallel loops (matrix products split by output columns, attention
    /// heads, activations); at least 1.
    public let threads: Int

    public init(threads: Int) { self.threads = max(1, threads) }

    /// One thread per core of this machine.
    public static var allCores: ComputeContext { ComputeContext(threads: ProcessInfo.processInfo.activeProcessorCount) }
    /// One thread: strictly sequential.
    public static let serial = ComputeContext(threads: 1)

    public var description: String { "\(threads) thread\(threads == 1 ? "" : "s")" }

    /// Runs `body(i)` for i in 0..<n on up to `threads` threads and waits. `body` must only touch
    /// disjoint memory per i.
    public func parallel(_ n: Int, _ body: (Int) -> Void) {
        if n <= 1 || threads <= 1 { for i in 0..<n { body(i) }; return }
        parallelFor(n, body)
    }

    /// Splits 0..<count into at most `threads` contiguous ranges whose bounds are multiples of `align`
    /// (except the last), and runs them in parallel. Work below `minimumPerThread` units per extra
    /// thread stays on one thread.
    public func parallelRanges(_ count: Int, align: Int = 1, work: Int = .max, minimumPerThread: Int = 1 << 16,
                               _ body: (Range<Int>) -> Void) {
        let byWork = work == .max ? threads : max(1, work / max(minimumPerThread, 1))
        let byCount = (count + align - 1) / max(align, 1)
        let parts = max(1, min(threads, byWork, byCount))
        if parts == 1 { if count > 0 { body(0..<count) }; return }
        var per = (count + parts - 1) / parts
        per = (per + align - 1) / align * align
        let chunks = (count + per - 1) / per
        parallelFor(chunks) { c in
            let lo = c * per, hi = min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// Runs `body(i)` for i in 0..<n on up to n threads and waits. `body` must only touch disjoint memory per i.
public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
    if n <= 1 { for i in 0..<n { body(i) }; return }
    withoutActuallyEscaping(body) { escapable in
        let box = UncheckedSendable(escapable)
        DispatchQueue.concurrentPerform(iterations: n) { box.value($0) }
    }
}

// The machine's roofline for a model's passes (issue 26): the best matrix-product rate at the model's
// shape and the rate at which its weights stream from memory, both measured in the running process, and
// the lower bound they give to a piece of work.
//
// A pass of t token rows through weights of W bytes with F FLOPs per row cannot take less than
// max(t·F / ceiling, W / bandwidth): its products must be computed, and every weight byte read once. A
// phase made of several passes is bounded below by max(ΣFLOPs / ceiling, Σbytes / bandwidth), which is
// what `bound(flops:bytes:)` returns (a sum of per-pass maxima would be tighter; the phases' totals are
// what the job records).
//
// The ceiling is the better of two rates at the model's shape [rows × d_model] · [d_model × d_mlp]:
// cpiscope's own product (column tiles fixed by the shape, one single-threaded library call per tile,
// `linear` / `linearBF16`), and the library's own multi-threaded product of the whole matrix (OpenBLAS
// sgemm with its threads; oneDNN's matmul with OpenMP threads, what torch's F.linear runs). The bandwidth
// is a read of the given memory (the model's weights) split into one contiguous share per thread.
import Dispatch
import Foundation

/// Product ceiling and streaming bandwidth of this machine for one model shape and precision.
public struct Roofline: Sendable, Equatable, CustomStringConvertible {
    /// The best matrix-product rate at the model's shape, FLOP/s.
    public var ceilingFLOPs: Double
    /// The rate at which the weights stream from memory, bytes/s.
    public var bandwidth: Double
    /// cpiscope's own tiled product at that shape, FLOP/s (nil when not measured).
    public var tiledFLOPs: Double?
    /// The library's multi-threaded whole product at that shape, FLOP/s (nil when not measured).
    public var libraryFLOPs: Double?

    public init(ceilingFLOPs: Double, bandwidth: Double, tiledFLOPs: Double? = nil, libraryFLOPs: Double? = nil) {
        self.ceilingFLOPs = ceilingFLOPs
        self.bandwidth = bandwidth
        self.tiledFLOPs = tiledFLOPs
        self.libraryFLOPs = libraryFLOPs
    }

    /// Seconds that `flops` of products and `bytes` of weight reads take at least: the larger of
    /// flops / ceiling and bytes / bandwidth.
    public func bound(flops: Double, bytes: Double) -> Double {
        max(flops / ceilingFLOPs, bytes / bandwidth)
    }

    /// A job's lower bound in the form: its prompt tokens compute-bound (`flopsPerToken` each), its
    /// decoding steps (and other one-token passes) each reading the weights once:
    /// promptTokens · flopsPerToken / ceiling + decodeSteps · weightBytes / bandwidth.
    public func bound(promptTokens: Int, decodeSteps: Int, weightBytes: Int, flopsPerToken: Double) -> Double {
        Double(promptTokens) * flopsPerToken / ceilingFLOPs + Double(decodeSteps) * Double(weightBytes) / bandwidth
    }

    /// The lower bound of one pass of `tokens` rows: max(tokens · flopsPerToken / ceiling, weightBytes / bandwidth).
    public func passBound(tokens: Int, weightBytes: Int, flopsPerToken: Double) -> Double {
        bound(flops: Double(tokens) * flopsPerToken, bytes: Double(weightBytes))
    }

    public var description: String {
        var s = String(format: "ceiling %.1f GFLOP/s", ceilingFLOPs / 1e9)
        if let t = tiledFLOPs, let l = libraryFLOPs {
            s += String(format: " (cpiscope's tiled product %.1f, the library's whole product %.1f)", t / 1e9, l / 1e9)
        }
        return s + String(format: ", bandwidth %.1f GB/s", bandwidth / 1e9)
    }

    /// Measures the roofline: the product ceiling at [rows × k] · [k × n] in `compute`'s precision (median
    /// of `runs` after a warm-up, both ways; the better one is the ceiling) and the streaming bandwidth over
    /// `weights` (median of `runs` reads after one that brings them into memory).
    public static func measure(k: Int, n: Int, rows: Int = 128, compute: ComputeContext,
                               weights: [UnsafeRawBufferPointer], runs: Int = 3) -> Roofline {
        let (tiled, library) = measureCeiling(k: k, n: n, rows: rows, compute: compute, runs: runs)
        let bw = measureBandwidth(weights, compute: compute, runs: runs)
        return Roofline(ceilingFLOPs: max(tiled, library ?? 0), bandwidth: bw, tiledFLOPs: tiled, libraryFLOPs: library)
    }

    /// FLOP/s of cpiscope's product and of the library's whole multi-threaded product (nil where the
    /// library cannot run it) at [rows × k] · [k × n], weights stored [n, k] as in a checkpoint, with
    /// synthetic values; medians of `runs` after a warm-up.
    public static func measureCeiling(k: Int, n: Int, rows: Int, compute: ComputeContext, runs: Int = 3) -> (tiled: Double, library: Double?) {
        let flops = 2.0 * Double(rows) * Double(k) * Double(n)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: rows * k), y = UnsafeMutablePointer<Float>.allocate(capacity: rows * n)
        defer { x.deallocate(); y.deallocate() }
        for i in 0..<(rows * k) { x[i] = Float(i % 7) * 0.01 }
        func median(_ body: () -> Void) -> Double {
            body()
            var t: [Double] = []
            for _ in 0..<max(1, runs) {
                let t0 = DispatchTime.now()
                body()
                t.append(Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9)
            }
            t.sort()
            return flops / t[t.count / 2]
        }
        switch compute.precision {
        case .bf16:
            let w = UnsafeMutablePointer<UInt16>.allocate(capacity: n * k)
            defer { w.deallocate() }
            for i in 0..<(n * k) { w[i] = 0x3C00 | UInt16(i % 5) }   // small bf16 values near 0.0078
            let tiled = median {
                linearBF16(x, rows: rows, inFeatures: k, weight: .bf16(w), layout: .outIn, outFeatures: n, bias: nil, into: y,
                           compute: compute, kernel: .oneDNN)
            }
            var library: Double? = nil
            if bf16WholeProductAvailable(rows: rows, k: k, n: n, threads: compute.threads) {
                library = median { bf16WholeProduct(x, rows: rows, k: k, weights: w, n: n, into: y, threads: compute.threads) }
            }
            return (tiled, library)
        case .fp32:
            let w = UnsafeMutablePointer<Float>.allocate(capacity: n * k)
            defer { w.deallocate() }
            for i in 0..<(n * k) { w[i] = Float(i % 5) * 0.01 }
            let tiled = median {
                linear(x, rows: rows, inFeatures: k, weight: w, layout: .outIn, outFeatures: n, bias: nil, into: y, compute: compute)
            }
            let library = median {
                withBLASThreads(compute.threads) {
                    sgemm(m: rows, n: n, k: k, a: x, lda: k, b: w, ldb: k, transB: true, c: y, ldc: n)
                }
            }
            return (tiled, library)
        }
    }

    /// Bytes/s of reading every byte of `regions` once, the total cut into one contiguous share per thread
    /// of `compute`; the median of `runs` reads after a first one (which also faults mapped pages in).
    public static func measureBandwidth(_ regions: [UnsafeRawBufferPointer], compute: ComputeContext, runs: Int = 3) -> Double {
        let parts = regions.filter { $0.count > 0 && $0.baseAddress != nil }
        let total = parts.reduce(0) { $0 + $1.count }
        guard total > 0 else { return .infinity }
        // Start offset of each region in the concatenation.
        var starts: [Int] = []
        var at = 0
        for p in parts { starts.append(at); at += p.count }
        let threads = max(1, compute.threads)
        let sums = UnsafeMutablePointer<UInt64>.allocate(capacity: threads)
        defer { sums.deallocate() }
        sums.initialize(repeating: 0, count: threads)
        let shared = UncheckedSendable((parts, starts, sums))
        func readAll() -> Double {
            let t0 = DispatchTime.now()
            parallelFor(threads) { t in
                let (parts, starts, sums) = shared.value
                // This thread's share [lo, hi) of the concatenation, in 4 KiB units.
                let lo = (total / 4096) * t / threads * 4096, hi = t == threads - 1 ? total : (total / 4096) * (t + 1) / threads * 4096
                var h: UInt64 = 0
                for (i, p) in parts.enumerated() {
                    let a = max(lo, starts[i]), b = min(hi, starts[i] + p.count)
                    if a < b { h &+= streamRead(p.baseAddress! + (a - starts[i]), count: b - a) }
                }
                sums[t] &+= h
            }
            return Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
        }
        _ = readAll()
        var t: [Double] = []
        for _ in 0..<max(1, runs) { t.append(readAll()) }
        t.sort()
        return Double(total) / t[t.count / 2]
    }
}

// `cpiscope bench`: micro-benchmarks (never run as tests). Figures go to BENCHMARKS.md.
import ArgumentParser
import Checkpoints
import Dispatch
import Foundation
import Instrumentation
import Models
import TensorCore

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure forward-pass throughput against the machine's matrix-product ceiling (OpenBLAS sgemm or oneDNN bf16).",
        discussion: """
        Runs prefill passes of random token ids at each --tokens length, --runs times, and prints the \
        median, min and max time, tokens/s and achieved GFLOP/s (matrix products + attention), next to \
        the ceiling of the pass's precision measured in the same run: OpenBLAS sgemm on a \
        [512 × 768] · [768 × 3072] product (fp32), or oneDNN's bf16 matmul on [128 × 4096] · [4096 × 11008] \
        (bf16), with the pass's threads.

        Example:
          python3 Benchmarks/make_models.py          # random-weight GPT-2-small / Llama-160M
          cpiscope bench Benchmarks/models/gpt2-small --tokens 128,512 --runs 5
        """)

    @Argument(help: "A checkpoint folder.")
    var path: String

    @Option(help: "Comma-separated prompt lengths.")
    var tokens: String = "128,512"

    @Option(help: "Timed runs per length (after one warm-up).")
    var runs: Int = 5

    @Option(help: "Logits for: all positions, or only the last (what the probe job needs).")
    var logits: String = "last"

    @Option(help: "Threads for the pass (default: all cores; 1 = sequential). The ceiling uses as many threads.")
    var threads: Int = 0

    @OptionGroup var precision: PrecisionOption

    @Option(help: "Also time one decoding step of this many sequences (one new token each over 8 cached positions) against reading every weight byte once (0: skip).")
    var decodeRows: Int = 0

    @Option(help: "Also time a bf16 [rows × 4096] · [4096 × 11008] product (weights [out, in], as in a checkpoint) at each of these comma-separated row counts with oneDNN and with the direct AVX512-BF16 kernel, round-robin, side by side (empty: skip).")
    var bf16Kernels: String = ""

    func run() throws {
        let compute = (threads > 0 ? ComputeContext(threads: threads) : .allCores)
            .with(try precision.resolve(for: URL(fileURLWithPath: path)))
        let lengths = try parseIDs(tokens)
        let loadStart = DispatchTime.now()
        let model = try DecoderModel.load(from: URL(fileURLWithPath: path))
        let loadMs = elapsedMs(since: loadStart)
        let weightBytes = try WeightStore(directory: URL(fileURLWithPath: path)).files.map(\.fileSize).reduce(0, +)
        let c = model.config
        let request: LogitsRequest = logits == "all" ? .all : .last
        let ceilingName = compute.precision == .bf16
            ? "oneDNN bf16 matmul [128x4096]·[4096x11008] (\(bf16Implementation ?? "?"), split over \(compute.threads) threads)"
            : "OpenBLAS sgemm [512x768]·[768x3072] on \(compute.threads) OpenBLAS threads"
        let firstCeiling = measureCeiling(compute)
        print("model: \(c.modelType), \(c.layers) layers, d_model \(c.dModel), \(c.heads) heads/\(c.kvHeads) kv, vocab \(c.vocab); load \(String(format: "%.0f", loadMs)) ms")
        print("threads: \(compute.threads) (cpiscope's own; OpenBLAS/oneDNN single-threaded inside them); precision: \(compute.precision.rawValue); logits: \(logits)")
        print("ceiling: \(ceilingName): \(String(format: "%.1f", firstCeiling)) GFLOP/s; OpenBLAS kernels: \(blasCoreName)")
        if blasCoreName == "Prescott" {
            print("note: OpenBLAS chose its generic Prescott kernels for this CPU; fp32 products run 4-5× below the hardware's rate. Set OPENBLAS_CORETYPE (e.g. SkylakeX, Haswell, Zen) to the CPU's family.")
        }
        print("none = plain prefill; capture = + span-attention mass at the last position (7 spans) and the residual")
        print("at every layer; lens = + logit-lens scores for two answers at every lens layer (the probe job's pass)")
        print("tokens | pass    | median ms |  min ms |  max ms | tokens/s | GFLOP/s | % of ceiling")
        var rng = SystemRandomNumberGenerator()
        for n in lengths {
            let ids = (0..<n).map { _ in Int.random(in: 0..<c.vocab, using: &rng) }
            let passes: [() throws -> Void] = (0..<3).map { variant in
                {
                    if variant > 0 {
                        let spans: [[Int]?] = (0..<7).map { s in Array(stride(from: s, to: n, by: 7)) }
                        let span = SpanAttentionRecorder(queryPosition: n - 1, spans: spans, layers: c.layers, heads: c.heads)
                        let resid = ResidualRecorder(position: n - 1, layers: c.layers, dModel: c.dModel)
                        _ = try model.forward(ids, logits: request, observer: ObserverGroup([span, resid]), compute: compute)
                        if variant == 2 {
                            _ = LogitLens.scores(model: model, residuals: resid.residuals, lensLayers: c.layers + 1, targets: [1, 2],
                                                 compute: compute)
                        }
                    } else {
                        _ = try model.forward(ids, logits: request, compute: compute)
                    }
                }
            }
            // One warm-up each, then the three variants round-robin, so that a slower or faster spell of a
            // shared machine falls on all of them alike; the ceiling is re-measured between rounds.
            for pass in passes { try pass() }
            var times = [[Double]](repeating: [], count: 3)
            var ceilings: [Double] = []
            for _ in 0..<max(1, runs) {
                for (variant, pass) in passes.enumerated() {
                    let t0 = DispatchTime.now()
                    try pass()
                    times[variant].append(elapsedMs(since: t0))
                }
                ceilings.append(measureCeiling(compute))
            }
            ceilings.sort()
            let ceiling = ceilings[ceilings.count / 2]
            var medians: [Double] = []
            for variant in 0..<3 {
                let t = times[variant].sorted()
                let median = t[t.count / 2]
                medians.append(median)
                let gflop = forwardFLOPs(model, tokens: n, logitRows: request == .all ? n : 1) / 1e9
                print(String(format: "%6d | %-7@ | %9.1f | %7.1f | %7.1f | %8.0f | %7.1f | %7.0f%%", n, ["none", "capture", "lens"][variant] as NSString, median,
                             t.first!, t.last!, Double(n) / median * 1000, gflop / median * 1000, gflop / median * 1000 / ceiling * 100))
            }
            print(String(format: "       at %d tokens: capture overhead %+.1f%%; capture + logit lens %+.1f%%; ceiling median %.1f GFLOP/s over the rounds", n,
                         (medians[1] / medians[0] - 1) * 100, (medians[2] / medians[0] - 1) * 100, ceiling))
        }
        if !bf16Kernels.isEmpty { try compareBF16Kernels(try parseIDs(bf16Kernels), compute: compute) }
        if decodeRows > 0 { try measureDecode(model, rows: decodeRows, store: try WeightStore(directory: URL(fileURLWithPath: path)), compute: compute) }
        print(String(format: "peak RSS: %.0f MiB; weight files: %.0f MiB", peakRSSMiB(), Double(weightBytes) / 1048576))
    }

    /// One decoding step of `rows` sequences (one new token each, after 8 cached positions), median of
    /// `runs`, against the time to read every byte of the weight files once on `compute`'s threads.
    func measureDecode(_ model: DecoderModel, rows: Int, store: WeightStore, compute: ComputeContext) throws {
        let c = model.config
        let caches = (0..<rows).map { _ in KVCache(layers: c.layers, kvHeads: c.kvHeads, dHead: c.dHead, capacity: 8 + runs + 1) }
        let prompt = (0..<8).map { ($0 * 31 + 7) % c.vocab }
        _ = try model.forward(caches.map { SequenceInput(ids: prompt, cache: $0) }, compute: compute)
        var steps: [Double] = [], streams: [Double] = []
        for r in 0...max(1, runs) {
            let t0 = DispatchTime.now()
            _ = try model.forward(caches.map { SequenceInput(ids: [(r * 17 + 3) % c.vocab], cache: $0) }, compute: compute)
            let t1 = DispatchTime.now()
            // One partial sum per chunk (chunks are equal, so lowerBound·threads/words tells them apart).
            let sums = UnsafeMutablePointer<UInt64>.allocate(capacity: compute.threads + 1)
            defer { sums.deallocate() }
            sums.initialize(repeating: 0, count: compute.threads + 1)
            let shared = UncheckedSendable(sums)
            for name in store.names {
                let (_, raw) = try store.rawBytes(name)
                let words = raw.count / 8, base = UncheckedSendable(raw.baseAddress!)
                compute.parallelRanges(words, align: 512, work: words, minimumPerThread: 1 << 16) { range in
                    var s: UInt64 = 0
                    for i in range { s &+= base.value.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self) }
                    shared.value[range.lowerBound * compute.threads / max(words, 1)] &+= s
                }
            }
            if r > 0 {
                steps.append(Double(t1.uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6)
                streams.append(elapsedMs(since: t1))
            }
            if (0...compute.threads).reduce(0, { $0 &+ sums[$1] }) == 42 { print("") }   // keeps the reads
        }
        steps.sort(); streams.sort()
        let step = steps[steps.count / 2], stream = streams[streams.count / 2]
        if compute.precision == .bf16 {
            print("decoding step products: \(directBF16KernelAvailable && rows <= directBF16MaxRows ? "direct AVX512-BF16 kernel" : "oneDNN \(bf16Implementation ?? "?")")")
        }
        print(String(format: "decoding step, %d sequences × 1 token: median %.1f ms; reading every weight byte once: %.1f ms (%.1f GB/s); step / read = %.2f",
                     rows, step, stream, Double(store.totalBytes) / stream / 1e6, step / stream))
    }

    /// oneDNN against the direct kernel on a 7B MLP-shaped bf16 product at each row count, split over
    /// `compute`'s threads as the pass splits it: medians of `runs` (at least 5) alternating calls.
    func compareBF16Kernels(_ rowCounts: [Int], compute: ComputeContext) throws {
        guard bf16Available else { print("bf16 kernels: oneDNN bf16 matmul unavailable"); return }
        guard directBF16KernelAvailable else { print("bf16 kernels: this CPU lacks AVX512-BF16; every product uses oneDNN"); return }
        let k = 4096, n = 11008, maxRows = rowCounts.max() ?? 1
        let x = Tensor(zeros: [maxRows, k]), out = Tensor(zeros: [maxRows, n])
        for i in 0..<x.count { x.pointer[i] = Float(i % 7) * 0.01 }
        let w = UnsafeMutablePointer<UInt16>.allocate(capacity: n * k)
        defer { w.deallocate() }
        for i in 0..<(n * k) { w[i] = 0x3C00 | UInt16(i % 5) }
        print("bf16 product [rows x 4096]·[4096 x 11008] (90 MB of weights), \(compute.threads) threads; automatic uses the direct kernel up to \(directBF16MaxRows) rows")
        print("  rows | oneDNN ms | direct ms | oneDNN / direct | direct GB/s of weights")
        for m in rowCounts where m > 0 {
            var times: [[Double]] = [[], []]
            for r in 0...max(5, runs) {
                for (i, kernel) in [BF16Kernel.oneDNN, .direct].enumerated() {
                    let t0 = DispatchTime.now()
                    linearBF16(x.pointer, rows: m, inFeatures: k, weight: .bf16(w), layout: .outIn, outFeatures: n, bias: nil,
                               into: out.pointer, compute: compute, kernel: kernel)
                    if r > 0 { times[i].append(elapsedMs(since: t0)) }
                }
            }
            let med = times.map { $0.sorted()[$0.count / 2] }
            print(String(format: "  %4d | %9.2f | %9.2f | %15.2f | %6.1f", m, med[0], med[1], med[0] / med[1], Double(2 * n * k) / med[1] / 1e6))
        }
    }

    /// The ceiling of `compute`'s precision, in GFLOP/s.
    func measureCeiling(_ compute: ComputeContext) -> Double {
        compute.precision == .bf16 ? measureBF16(compute) : measureSGEMM(threads: compute.threads)
    }

    /// oneDNN bf16 matmul GFLOP/s on a 7B MLP-shaped product [128 × 4096] · [4096 × 11008] (weights
    /// [out, in], as in a checkpoint), split over `compute`'s threads as the pass splits it; median of 5.
    func measureBF16(_ compute: ComputeContext) -> Double {
        let m = 128, k = 4096, n = 11008
        let x = Tensor(zeros: [m, k]), out = Tensor(zeros: [m, n])
        for i in 0..<x.count { x.pointer[i] = Float(i % 7) * 0.01 }
        let w = UnsafeMutablePointer<UInt16>.allocate(capacity: n * k)
        defer { w.deallocate() }
        for i in 0..<(n * k) { w[i] = 0x3C00 | UInt16(i % 5) }   // small bf16 values near 0.0078
        var times: [Double] = []
        for r in 0..<6 {
            let t0 = DispatchTime.now()
            linearBF16(x.pointer, rows: m, inFeatures: k, weight: .bf16(w), layout: .outIn, outFeatures: n, bias: nil,
                       into: out.pointer, compute: compute)
            if r > 0 { times.append(elapsedMs(since: t0)) }
        }
        times.sort()
        return 2.0 * Double(m * n * k) / (times[times.count / 2] / 1000) / 1e9
    }

    /// sgemm GFLOP/s on a representative product with OpenBLAS's own `threads` threads, median of 7.
    func measureSGEMM(threads: Int) -> Double {
        let m = 512, k = 768, n = 3072
        let a = Tensor(zeros: [m, k]), b = Tensor(zeros: [k, n]), out = Tensor(zeros: [m, n])
        for i in 0..<a.count { a.pointer[i] = Float(i % 7) * 0.01 }
        for i in 0..<b.count { b.pointer[i] = Float(i % 5) * 0.01 }
        var times: [Double] = []
        for r in 0..<8 {
            let t0 = DispatchTime.now()
            withBLASThreads(threads) {
                TensorCore.sgemm(m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: n, c: out.pointer, ldc: n)
            }
            if r > 0 { times.append(elapsedMs(since: t0)) }
        }
        times.sort()
        return 2.0 * Double(m * n * k) / (times[times.count / 2] / 1000) / 1e9
    }
}

/// FLOPs cpiscope performs in one prefill pass: projections and MLP (read from the model's own linear
/// layers, so every family counts what it runs), causal attention (scores and weighted values over the
/// n(n+1)/2 visible query-key pairs), and the unembedding for `logitRows` rows; with one logit row, the
/// last block's skipped rows are not counted.
func forwardFLOPs(_ model: DecoderModel, tokens n: Int, logitRows: Int) -> Double {
    let c = model.config
    let d = Double(c.dModel), dh = Double(c.dHead), H = Double(c.heads), KV = Double(c.kvHeads)
    func mac(_ l: Linear) -> Double { Double(l.inFeatures) * Double(l.outFeatures) }
    var perToken = 0.0
    for l in model.blocks.first?.linears ?? [] { perToken += mac(l) }
    perToken *= 2
    let pairs = Double(n) * Double(n + 1) / 2
    let attention = 2 * 2 * pairs * H * dh
    var total = Double(c.layers) * (perToken * Double(n) + attention) + 2 * d * Double(c.vocab) * Double(logitRows)
    if logitRows == 1, n > 1 {
        // The last block runs only the last query row (plus keys and values for every row): take off
        // the work it skips for the other n − 1 rows.
        let kv = 2 * d * 2 * KV * dh
        total -= (perToken - kv) * Double(n - 1) + 2 * 2 * (pairs - Double(n)) * H * dh
    }
    return total
}

func elapsedMs(since t0: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e6
}

/// Peak resident set size of this process (getrusage ru_maxrss, KiB on Linux).
func peakRSSMiB() -> Double {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Double(u.ru_maxrss) / 1024
}

// `cpiscope bench`: micro-benchmarks (never run as tests). Figures go to BENCHMARKS.md.
import ArgumentParser
import Checkpoints
import Dispatch
import Foundation
import Instrumentation
import Models
import ProbeRun
import TensorCore
import TrajectoryJob

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure forward passes against the machine's roofline: the best product rate at the model's shape and the weights' streaming bandwidth.",
        discussion: """
        Measures the roofline first, in the same run: the product ceiling at the model's shape \
        [128 × d_model] · [d_model × d_mlp] in the pass's precision (the better of cpiscope's tiled product \
        and the library's own multi-threaded product of the whole matrix: OpenBLAS sgemm for fp32, oneDNN \
        matmul for bf16), and the bandwidth of reading every weight byte once on the pass's threads. \
        Then runs prefill passes of random token ids at each --tokens length, --runs times, and prints the \
        median, min and max time, tokens/s, achieved GFLOP/s (matrix products + attention), and beside \
        each its lower bound, max(FLOPs / ceiling, weight bytes / bandwidth), and the measured time over \
        that bound. --decode-rows does the same for decoding steps (one new token per sequence).

        Example:
          python3 Benchmarks/make_models.py          # random-weight GPT-2-small / Llama-160M
          cpiscope bench Benchmarks/models/gpt2-small --tokens 128,512 --runs 5
          cpiscope bench Benchmarks/models/llama-7b-bf16 --tokens 128 --decode-rows 1,8,16
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

    @Option(help: "Also time one decoding step of each of these comma-separated numbers of sequences (one new token each over 8 cached positions) against reading every weight byte once (empty or 0: skip).")
    var decodeRows: String = ""

    @Option(help: "A second checkpoint folder (the next checkpoint of a trajectory): after the measurements above, time loading it and its first 128-token pass and decoding step, from wherever its weights are (a cold page cache is the caller's to arrange).")
    var next: String?

    @Flag(help: "With --next: read the next checkpoint's weights into the page cache in the background (WeightPrefetch) while this one is measured, up to what the cache holds beside it, and the rest once it becomes the current one — the overlap a trajectory job gets.")
    var prefetchNext = false

    @Option(help: "Also time a bf16 [rows × 4096] · [4096 × 11008] product (weights [out, in], as in a checkpoint) at each of these comma-separated row counts with oneDNN and with the direct AVX512-BF16 kernel, round-robin, side by side (empty: skip).")
    var bf16Kernels: String = ""

    func run() throws {
        let compute = (threads > 0 ? ComputeContext(threads: threads) : .allCores)
            .with(try precision.resolve(for: URL(fileURLWithPath: path)))
        let lengths = try parseIDs(tokens)
        let decodeCounts = decodeRows.isEmpty ? [] : try parseIDs(decodeRows).filter { $0 > 0 }
        let loadStart = DispatchTime.now()
        // One mapping of the weight files: the model reads it and the bandwidth read streams it (a second
        // mapping would count every resident page twice in the peak RSS).
        let folder = URL(fileURLWithPath: path)
        let store = try WeightStore(directory: folder)
        let model = try DecoderModel.load(config: try ModelConfig.load(from: folder), store: store, checkpoint: path)
        let loadMs = elapsedMs(since: loadStart)
        let weightBytes = store.files.map(\.fileSize).reduce(0, +)
        // The next checkpoint's prefetch starts as this one's work starts, limited to what the page cache
        // holds beside this checkpoint (MemAvailable counts this one's cached pages as reclaimable).
        let benchStart = DispatchTime.now()
        var prefetch: WeightPrefetch? = nil
        if let next, prefetchNext {
            // Leave an eighth of physical memory (at least 2 GiB) to everything else: MemAvailable also counts
            // other files' cache and the pass's own buffers grow while it runs.
            let available = BatchMemory.availableMemoryBytes() ?? 0
            let reserve = max(2 << 30, BatchMemory.physicalMemoryBytes() / 8)
            let limit = max(0, available - weightBytes - reserve)
            prefetch = try WeightPrefetch.start(checkpoint: URL(fileURLWithPath: next), limitBytes: limit)
            print(String(format: "prefetch of %@: up to %.0f MiB of %.0f MiB while this checkpoint is measured (MemAvailable %.0f MiB)",
                         next, Double(limit) / 1048576, Double(prefetch!.totalBytes) / 1048576, Double(available) / 1048576))
        }
        let c = model.config
        let request: LogitsRequest = logits == "all" ? .all : .last
        let sizes = ModelWeightSizes(model)
        // Every tensor's bytes, in address order: what the bandwidth read streams.
        let regions = try store.names.map { try store.rawBytes($0).1 }.sorted { UInt(bitPattern: $0.baseAddress) < UInt(bitPattern: $1.baseAddress) }
        let shapeN = model.blocks.first?.linears.map(\.outFeatures).max() ?? c.dModel
        print("model: \(c.modelType), \(c.layers) layers, d_model \(c.dModel), \(c.heads) heads/\(c.kvHeads) kv, vocab \(c.vocab); load \(String(format: "%.0f", loadMs)) ms")
        print("threads: \(compute.threads) (cpiscope's own; OpenBLAS/oneDNN single-threaded inside them); precision: \(compute.precision.rawValue); logits: \(logits)")
        let roof = Roofline.measure(k: c.dModel, n: shapeN, rows: 128, compute: compute, weights: regions, runs: 3)
        let library = compute.precision == .bf16 ? "oneDNN \(bf16Implementation ?? "?") matmul, \(compute.threads) OpenMP threads" : "OpenBLAS sgemm, \(compute.threads) OpenBLAS threads"
        print(String(format: "roofline: product [128x%d]·[%dx%d] %@: cpiscope's tiled product %.1f GFLOP/s, the library's whole product (%@) %.1f GFLOP/s → ceiling %.1f GFLOP/s",
                     c.dModel, c.dModel, shapeN, compute.precision.rawValue as NSString, (roof.tiledFLOPs ?? 0) / 1e9, library as NSString,
                     (roof.libraryFLOPs ?? 0) / 1e9, roof.ceilingFLOPs / 1e9))
        print(String(format: "roofline: reading every weight byte once (%.0f MiB, %d threads): %.1f GB/s → %.1f ms per weight pass (the products' %.0f MiB: %.1f ms)",
                     Double(weightBytes) / 1048576, compute.threads, roof.bandwidth / 1e9, Double(weightBytes) / roof.bandwidth * 1000,
                     sizes.passBytes / 1048576, sizes.passBytes / roof.bandwidth * 1000))
        print("OpenBLAS kernels: \(blasCoreName)")
        if blasCoreName == "Prescott" {
            print("note: OpenBLAS chose its generic Prescott kernels for this CPU; fp32 products run 4-5× below the hardware's rate. Set OPENBLAS_CORETYPE (e.g. SkylakeX, Haswell, Zen) to the CPU's family.")
        }
        print("none = plain prefill; capture = + span-attention mass at the last position (7 spans) and the residual")
        print("at every layer; lens = + logit-lens scores for two answers at every lens layer (the probe job's pass)")
        print("bound = max(FLOPs / ceiling, weight bytes / bandwidth) of the plain pass; time / bound: 1.00 is the roofline")
        print("tokens | pass    | median ms |  min ms |  max ms | tokens/s | GFLOP/s | bound ms | time / bound")
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
            // shared machine falls on all of them alike.
            for pass in passes { try pass() }
            var times = [[Double]](repeating: [], count: 3)
            for _ in 0..<max(1, runs) {
                for (variant, pass) in passes.enumerated() {
                    let t0 = DispatchTime.now()
                    try pass()
                    times[variant].append(elapsedMs(since: t0))
                }
            }
            let flops = forwardFLOPs(model, tokens: n, logitRows: request == .all ? n : 1)
            let boundMs = roof.bound(flops: flops, bytes: sizes.passBytes) * 1000
            var medians: [Double] = []
            for variant in 0..<3 {
                let t = times[variant].sorted()
                let median = t[t.count / 2]
                medians.append(median)
                print(String(format: "%6d | %-7@ | %9.1f | %7.1f | %7.1f | %8.0f | %7.1f | %8.1f | %6.2f", n, ["none", "capture", "lens"][variant] as NSString, median,
                             t.first!, t.last!, Double(n) / median * 1000, flops / 1e9 / median * 1000, boundMs, median / boundMs))
            }
            print(String(format: "       at %d tokens: capture overhead %+.1f%%; capture + logit lens %+.1f%%; the plain pass at %.0f%% of the roofline", n,
                         (medians[1] / medians[0] - 1) * 100, (medians[2] / medians[0] - 1) * 100, boundMs / medians[0] * 100))
        }
        if !bf16Kernels.isEmpty { try compareBF16Kernels(try parseIDs(bf16Kernels), compute: compute) }
        for rows in decodeCounts { try measureDecode(model, rows: rows, regions: regions, sizes: sizes, roof: roof, compute: compute) }
        if let next { try measureNext(URL(fileURLWithPath: next), prefetch: prefetch, since: benchStart, compute: compute) }
        print(String(format: "peak RSS: %.0f MiB; weight files: %.0f MiB", peakRSSMiB(), Double(weightBytes) / 1048576))
    }

    /// The switch to the next checkpoint of a trajectory: its load, first 128-token pass and first decoding
    /// step of 8 rows, timed from wherever its weights are; with `prefetch`, the rest of its weights is read
    /// ahead from the moment it becomes current.
    func measureNext(_ url: URL, prefetch: WeightPrefetch?, since start: DispatchTime, compute: ComputeContext) throws {
        if let p = prefetch {
            print(String(format: "next checkpoint: %.0f of %.0f MiB prefetched during the %.1f s of measurements above",
                         Double(p.bytesRead) / 1048576, Double(p.totalBytes) / 1048576, elapsedMs(since: start) / 1000))
            p.raiseLimit(to: .max)
        }
        let t0 = DispatchTime.now()
        let model = try DecoderModel.load(from: url)
        let load = elapsedMs(since: t0)
        let c = model.config
        let ids = (0..<128).map { ($0 * 131 + 17) % c.vocab }
        let t1 = DispatchTime.now()
        _ = try model.forward(ids, logits: .last, compute: compute)
        let first = elapsedMs(since: t1)
        let caches = (0..<8).map { _ in KVCache(layers: c.layers, kvHeads: c.kvHeads, dHead: c.dHead, capacity: 16) }
        _ = try model.forward(caches.map { SequenceInput(ids: [1, 2, 3], cache: $0) }, compute: compute)
        let t2 = DispatchTime.now()
        _ = try model.forward(caches.map { SequenceInput(ids: [4], cache: $0) }, compute: compute)
        let step = elapsedMs(since: t2)
        let t3 = DispatchTime.now()
        _ = try model.forward(ids, logits: .last, compute: compute)
        let warm = elapsedMs(since: t3)
        print(String(format: "next checkpoint%@: load %.0f ms; first 128-token pass %.0f ms (the same pass warm: %.0f ms); then a decoding step of 8 rows %.0f ms; total %.1f s",
                     prefetch == nil ? "" : " (prefetched)", load, first, warm, step, (load + first) / 1000))
        if let p = prefetch { p.cancel() }
    }

    /// One decoding step of `rows` sequences (one new token each, after 8 cached positions), median of
    /// `runs`, against the time to read every weight byte once on `compute`'s threads (measured alternating
    /// with the steps) and the step's roofline bound.
    func measureDecode(_ model: DecoderModel, rows: Int, regions: [UnsafeRawBufferPointer], sizes: ModelWeightSizes, roof: Roofline,
                       compute: ComputeContext) throws {
        let c = model.config
        let caches = (0..<rows).map { _ in KVCache(layers: c.layers, kvHeads: c.kvHeads, dHead: c.dHead, capacity: 8 + runs + 2) }
        let prompt = (0..<8).map { ($0 * 31 + 7) % c.vocab }
        _ = try model.forward(caches.map { SequenceInput(ids: prompt, cache: $0) }, compute: compute)
        let total = regions.reduce(0) { $0 + $1.count }
        var steps: [Double] = [], streams: [Double] = []
        for r in 0...max(1, runs) {
            let t0 = DispatchTime.now()
            _ = try model.forward(caches.map { SequenceInput(ids: [(r * 17 + 3) % c.vocab], cache: $0) }, compute: compute)
            let step = elapsedMs(since: t0)
            let bw = Roofline.measureBandwidth(regions, compute: compute, runs: 1)
            if r > 0 {
                steps.append(step)
                streams.append(Double(total) / bw * 1000)
            }
        }
        steps.sort(); streams.sort()
        let step = steps[steps.count / 2], stream = streams[streams.count / 2]
        let bound = roof.bound(flops: Double(rows) * (sizes.flopsPerToken + 2 * sizes.unembeddingParams), bytes: sizes.passBytes) * 1000
        if compute.precision == .bf16 {
            print("decoding step products: \(directBF16KernelAvailable && rows <= directBF16MaxRows ? "direct AVX512-BF16 kernel" : "oneDNN \(bf16Implementation ?? "?")")")
        }
        print(String(format: "decoding step, %2d sequences × 1 token: median %.1f ms [%.1f–%.1f]; reading every weight byte once: median %.1f ms (%.1f GB/s); step / read = %.2f; bound %.1f ms, step / bound = %.2f",
                     rows, step, steps.first!, steps.last!, stream, Double(total) / stream / 1e6, step / stream, bound, step / bound))
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

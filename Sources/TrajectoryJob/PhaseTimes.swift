// Where a job's time goes: wall seconds per phase (the probe job's prompt passes, lens, answers and
// generation; criticality's scoring passes), summed over the run, with the work each phase did (FLOPs of
// its products, bytes of weights it read) and, once a roofline is set, each phase's lower bound and the
// measured time as a % of it (issue 26). With CPISCOPE_TIMING=1 the job layer measures the roofline on the
// first checkpoint it measures and the commands print the report (used by BENCHMARKS.md; off otherwise).
import Checkpoints
import Foundation
import Models
import TensorCore

/// A named phase of a job; each job declares its own (`JobPhase.promptPass`, `JobPhase.scoring`, ...).
/// The report lists phases in the order they were first timed.
public struct JobPhase: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    public init(_ name: String) { self.name = name }
    public var description: String { name }
}

/// The work of a phase, for its roofline bound: FLOPs of its weight products and bytes of weights read.
public struct PhaseWork: Sendable, Equatable {
    public var flops: Double
    public var bytes: Double

    public init(flops: Double = 0, bytes: Double = 0) {
        self.flops = flops
        self.bytes = bytes
    }

    public static let zero = PhaseWork()

    public static func + (a: PhaseWork, b: PhaseWork) -> PhaseWork { PhaseWork(flops: a.flops + b.flops, bytes: a.bytes + b.bytes) }

    /// `passes` passes through every block of `model` with `tokens` token rows in all (summed over the
    /// passes) and `logitRows` rows unembedded in all: 2 FLOPs per weight per row, every block weight and the
    /// unembedding read once per pass. Attention's own FLOPs and the norms are left out (a lower bound).
    public static func forward(_ model: DecoderModel, tokens: Int, logitRows: Int, passes: Int) -> PhaseWork {
        let s = ModelWeightSizes(model)
        return PhaseWork(flops: 2 * (Double(tokens) * s.blockParams + Double(logitRows) * s.unembeddingParams),
                         bytes: Double(passes) * (s.blockBytes + s.unembeddingBytes))
    }

    /// `rows` rows unembedded in `passes` products (the logit lens): the unembedding only.
    public static func unembedding(_ model: DecoderModel, rows: Int, passes: Int) -> PhaseWork {
        let s = ModelWeightSizes(model)
        return PhaseWork(flops: 2 * Double(rows) * s.unembeddingParams, bytes: Double(passes) * s.unembeddingBytes)
    }
}

/// Weight counts and bytes of a model's products, in the form its passes read them (16-bit weights in
/// place, float32 ones as float32).
public struct ModelWeightSizes: Sendable, Equatable {
    /// Weights of every block's linear layers (LoRA factors left out).
    public var blockParams: Double
    /// Bytes of those weights as stored.
    public var blockBytes: Double
    /// vocab × d_model.
    public var unembeddingParams: Double
    /// Its bytes, taken at the blocks' element size.
    public var unembeddingBytes: Double

    public init(_ model: DecoderModel) {
        var params = 0.0, bytes = 0.0
        for block in model.blocks {
            for l in block.linears {
                let n = Double(l.inFeatures) * Double(l.outFeatures)
                params += n
                bytes += n * (l.half != nil ? 2 : 4)
            }
        }
        blockParams = params
        blockBytes = bytes
        unembeddingParams = Double(model.config.vocab) * Double(model.config.dModel)
        unembeddingBytes = unembeddingParams * (params > 0 ? bytes / params : 4)
    }

    /// FLOPs of one token row through every block (2 per weight).
    public var flopsPerToken: Double { 2 * blockParams }
    /// Bytes of one weight pass: every block weight and the unembedding.
    public var passBytes: Double { blockBytes + unembeddingBytes }
}

public enum PhaseTimes {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var order: [JobPhase] = []
    nonisolated(unsafe) private static var totals: [JobPhase: Double] = [:]
    nonisolated(unsafe) private static var work: [JobPhase: PhaseWork] = [:]
    nonisolated(unsafe) private static var roofline: Roofline? = nil

    /// Whether this process reports its phases: CPISCOPE_TIMING=1.
    public static let enabled = ProcessInfo.processInfo.environment["CPISCOPE_TIMING"] == "1"

    /// Adds `seconds` and `w` to `phase`.
    public static func add(_ phase: JobPhase, _ seconds: Double, _ w: PhaseWork = .zero) {
        lock.lock()
        if totals[phase] == nil { order.append(phase) }
        totals[phase, default: 0] += seconds
        work[phase, default: .zero] = work[phase, default: .zero] + w
        lock.unlock()
    }

    /// Adds work to a phase without time (for a caller that times the phase elsewhere).
    public static func addWork(_ phase: JobPhase, _ w: PhaseWork) { add(phase, 0, w) }

    /// Seconds and work per phase since the start of the process, in the order the phases were first timed.
    public static var snapshot: [(phase: JobPhase, seconds: Double, work: PhaseWork)] {
        lock.lock(); defer { lock.unlock() }
        return order.map { ($0, totals[$0] ?? 0, work[$0] ?? .zero) }
    }

    /// The roofline the report measures against (nil: none set; the report then shows times only).
    public static var currentRoofline: Roofline? {
        get { lock.lock(); defer { lock.unlock() }; return roofline }
        set { lock.lock(); roofline = newValue; lock.unlock() }
    }

    /// Measures the roofline for `model` on `compute` (a product at [512 × d_model] · [d_model × d_mlp] in
    /// its precision, the stream of its weight files' bytes `weights`) and keeps it for `report`, once per
    /// process: later calls return the first measurement. About 1 s at 7B (a 13 GB read and a few products).
    @discardableResult
    public static func measureRoofline(for model: DecoderModel, weights: [UnsafeRawBufferPointer], compute: ComputeContext) -> Roofline {
        if let r = currentRoofline { return r }
        let k = model.config.dModel
        let n = model.blocks.first?.linears.map(\.outFeatures).max() ?? model.config.dModel
        // 512 rows: a probe group's prompts run as one pass (hundreds of rows), where the products run faster
        // than at 128 rows; a ceiling measured lower than what the job reaches would put phases above 100%.
        let r = Roofline.measure(k: k, n: n, rows: 512, compute: compute, weights: weights, runs: 3)
        currentRoofline = r
        return r
    }

    /// The same for a loaded checkpoint: the weight files the model reads (an adapter's base's) are streamed
    /// where the model maps them.
    @discardableResult
    public static func measureRoofline(for loaded: LoadedCheckpoint, compute: ComputeContext) -> Roofline {
        if let r = currentRoofline { return r }
        let store = loaded.weights
        let regions = store.names.compactMap { try? store.rawBytes($0).1 }
        return measureRoofline(for: loaded.model, weights: regions, compute: compute)
    }

    /// One line per phase: seconds, and where a roofline is set and the phase has work, its bound and the
    /// bound as a % of the time (100% = at the roofline); then the total. The lines CPISCOPE_TIMING=1 prints.
    public static func report() -> [String] {
        let roof = currentRoofline
        var lines: [String] = []
        if let roof { lines.append("timing: roofline: \(roof)") }
        var total = 0.0, totalBound = 0.0
        for (phase, seconds, w) in snapshot {
            total += seconds
            var line = String(format: "timing: %-28@ %8.2f s", phase.name as NSString, seconds)
            if let roof, w.flops > 0 || w.bytes > 0 {
                let b = roof.bound(flops: w.flops, bytes: w.bytes)
                totalBound += b
                line += String(format: "   bound %7.2f s (%@)   at %3.0f%% of the roofline",
                               b, (w.flops / roof.ceilingFLOPs >= w.bytes / roof.bandwidth ? "compute" : "memory") as NSString,
                               seconds > 0 ? b / seconds * 100 : 0)
            }
            lines.append(line)
        }
        if let _ = roof, totalBound > 0 {
            lines.append(String(format: "timing: %-28@ %8.2f s   bound %7.2f s             at %3.0f%% of the roofline",
                                "all phases" as NSString, total, totalBound, totalBound / max(total, 1e-9) * 100))
        }
        return lines
    }
}

/// Measures consecutive phases on the monotonic clock.
public struct PhaseClock {
    private var last = DispatchTime.now().uptimeNanoseconds

    public init() {}

    /// Ends the current phase: its time since the previous lap, and the work it did (for its bound).
    /// Returns the phase's seconds.
    @discardableResult
    public mutating func lap(_ phase: JobPhase, work: PhaseWork = .zero) -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        let seconds = Double(now - last) / 1e9
        PhaseTimes.add(phase, seconds, work)
        last = now
        return seconds
    }
}

// Where a probe job's time goes: wall seconds per phase of `ProbeMeasurer.measureBatch`, summed over the
// run. `cpiscope probe` prints them when CPISCOPE_TIMING=1 (used by BENCHMARKS.md; off otherwise).
import Foundation

public enum ProbePhase: String, CaseIterable, Sendable {
    case promptPass = "instrumented prompt passes"
    case attribution = "direct logit attribution"
    case logitLens = "logit lens"
    case answers = "teacher-forced answers"
    case generation = "greedy generation"
}

public enum PhaseTimes {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var totals: [ProbePhase: Double] = [:]

    static func add(_ phase: ProbePhase, _ seconds: Double) {
        lock.lock(); totals[phase, default: 0] += seconds; lock.unlock()
    }

    /// Seconds per phase since the start of the process.
    public static var snapshot: [(ProbePhase, Double)] {
        lock.lock(); defer { lock.unlock() }
        return ProbePhase.allCases.map { ($0, totals[$0] ?? 0) }
    }
}

/// Measures consecutive phases on the monotonic clock.
struct PhaseClock {
    private var last = DispatchTime.now().uptimeNanoseconds

    mutating func lap(_ phase: ProbePhase) {
        let now = DispatchTime.now().uptimeNanoseconds
        PhaseTimes.add(phase, Double(now - last) / 1e9)
        last = now
    }
}

// PhaseTimes with a roofline (issue 26): each phase's bound and % of the roofline in the report.
import ProbeRun
import Testing
import TensorCore
import TrajectoryJob

@Suite("phase times against the roofline")
struct PhaseTimesTests {
    @Test("the report gives a phase with work its bound (compute- or memory-bound) and the total")
    func reportWithRoofline() {
        PhaseTimes.currentRoofline = Roofline(ceilingFLOPs: 1e12, bandwidth: 1e10)
        defer { PhaseTimes.currentRoofline = nil }
        PhaseTimes.addWork(.generation, PhaseWork(flops: 1e9, bytes: 5e10))   // memory: 5 s
        let lines = PhaseTimes.report()
        #expect(lines.first?.contains("roofline") == true)
        let generation = lines.first { $0.contains(JobPhase.generation.name) }
        #expect(generation?.contains("(memory)") == true, "\(lines)")
        #expect(lines.last?.contains("all phases") == true)
        #expect(PhaseWork(flops: 1, bytes: 2) + PhaseWork(flops: 3, bytes: 4) == PhaseWork(flops: 4, bytes: 6))
    }
}

// Two runs compared (two templates, full finetuning vs LoRA, ...). They must hold the same probe
// ids and the same complete checkpoints (same steps, and the same names where a step is unknown);
// probes are paired by id. Each headline measure's difference B − A at each checkpoint is a paired
// bootstrap estimate across probes, and each run's trajectories are analysed on the same pairing.

/// One measure in two runs.
public struct MeasureComparison: Sendable {
    public let measure: Measure
    /// Per checkpoint: B − A, paired over probes.
    public let difference: [Estimate]
    public let trajectoryA: MeasureTrajectory
    public let trajectoryB: MeasureTrajectory
}

/// Two matched runs compared.
public struct RunComparison: Sendable {
    public let pathA: String
    public let pathB: String
    public let checkpoints: [String]
    public let steps: [Int64]
    public let probes: Int
    public let measures: [MeasureComparison]

    /// Checks that the runs match, then compares every headline measure.
    /// - Throws: `unmatchedRuns` naming what differs.
    public init(_ a: RunData, _ b: RunData, measuresA: RunMeasures, measuresB: RunMeasures, bootstrap: Bootstrap) throws {
        let order = try Self.match(a, b)
        pathA = a.path; pathB = b.path
        checkpoints = a.checkpoints; steps = a.steps
        let C = a.checkpoints.count, P = a.probes.count
        probes = P
        measures = try Measure.allCases.map { measure in
            let xa = measuresA.perProbe[measure] ?? []
            let raw = measuresB.perProbe[measure] ?? []
            var xb = [Double](repeating: .nan, count: C * P)
            for c in 0..<C { for p in 0..<P { xb[c * P + p] = raw[c * P + order[p]] } }
            let diff = try (0..<C).map { c in
                try bootstrap.paired(from: Array(xa[(c * P)..<((c + 1) * P)]), to: Array(xb[(c * P)..<((c + 1) * P)]))
            }
            return MeasureComparison(
                measure: measure, difference: diff,
                trajectoryA: try MeasureTrajectory(id: measure.rawValue, label: measure.label, unit: measure.unit, perProbe: xa,
                                                   checkpoints: C, probes: P, minimumEffect: measure.minimumEffect, bootstrap: bootstrap),
                trajectoryB: try MeasureTrajectory(id: measure.rawValue, label: measure.label, unit: measure.unit, perProbe: xb,
                                                   checkpoints: C, probes: P, minimumEffect: measure.minimumEffect, bootstrap: bootstrap))
        }
    }

    /// For each probe of `a`, its index in `b`. - Throws: `unmatchedRuns`.
    static func match(_ a: RunData, _ b: RunData) throws -> [Int] {
        func refuse(_ detail: String) -> AnalysisError { .unmatchedRuns(path: a.path, other: b.path, detail: detail) }
        let indexB = Dictionary(b.probes.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        guard Set(a.probes).count == a.probes.count, indexB.count == b.probes.count else {
            throw refuse("probe ids are not unique, so probes cannot be paired")
        }
        let onlyA = a.probes.filter { indexB[$0] == nil }
        let setA = Set(a.probes)
        let onlyB = b.probes.filter { !setA.contains($0) }
        if !onlyA.isEmpty || !onlyB.isEmpty {
            throw refuse("their probes differ (\(onlyA.count) only in the first, e.g. \(AnalysisError.list(Array(onlyA.prefix(3)))); \(onlyB.count) only in the second, e.g. \(AnalysisError.list(Array(onlyB.prefix(3)))))")
        }
        if a.steps != b.steps {
            throw refuse("their complete checkpoints differ (steps \(Self.steps(a.steps)) vs \(Self.steps(b.steps)))")
        }
        for (i, s) in a.steps.enumerated() where s < 0 && a.checkpoints[i] != b.checkpoints[i] {
            throw refuse("checkpoint \(i) has no step and its names differ (\(a.checkpoints[i]) vs \(b.checkpoints[i]))")
        }
        return a.probes.map { indexB[$0] ?? 0 }
    }

    static func steps(_ s: [Int64]) -> String {
        s.count <= 6 ? "[" + s.map(String.init).joined(separator: ", ") + "]"
            : "[" + s.prefix(3).map(String.init).joined(separator: ", ") + ", …, " + s.suffix(2).map(String.init).joined(separator: ", ") + "] (\(s.count))"
    }
}

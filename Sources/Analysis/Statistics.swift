// Statistics used by diff, trajectory analysis and reports. Definitions (docs/analysis.md):
//   mean over probes   — the arithmetic mean of the finite values; NaN (a span that was not found,
//                        an undefined M_C) is left out, and a mean over no values is NaN.
//   paired bootstrap   — Efron & Tibshirani, "An Introduction to the Bootstrap" (1993), ch. 13
//                        (percentile interval). Per-probe differences d_1..d_n (probes with a finite
//                        value at both ends); resample r draws n indices uniformly with replacement
//                        from Xoshiro256StarStar(seed:) (`index(below: n)`, resample by resample,
//                        index by index) and takes the mean of the drawn d; the interval is the
//                        2.5th and 97.5th percentiles of the resample means.
//   ratio of means     — Σ_i a_i / Σ_i b_i over the probes finite in both (a ratio estimator; Cochran,
//                        "Sampling Techniques", 3rd ed. 1977, ch. 6), with the same paired resamples:
//                        resample r's ratio is Σ a[idx_{r,i}] / Σ b[idx_{r,i}], both sums over the same
//                        drawn probes; the interval is the percentiles of the resample ratios. Resamples
//                        whose denominator is 0 give ±∞ (0/0 is left out).
//   percentile         — Hyndman & Fan (1996) definition 7 (numpy's default "linear").
//   Spearman's rho     — Pearson's correlation of the average ranks (ties share the mean of the
//                        ranks they span), as scipy.stats.spearmanr; NaN when either side is constant.

/// A confidence interval.
public struct Interval: Sendable, Equatable {
    public var low: Double
    public var high: Double

    public init(low: Double, high: Double) {
        self.low = low
        self.high = high
    }

    /// Half the width, (high − low) / 2.
    public var halfWidth: Double { (high - low) / 2 }
    /// Whether 0 lies outside the interval.
    public var excludesZero: Bool { low > 0 || high < 0 }

    public static let undefined = Interval(low: .nan, high: .nan)
}

/// The mean of paired per-probe differences with its bootstrap interval.
public struct Estimate: Sendable, Equatable {
    /// Mean of the differences (equals mean(to) − mean(from) over the same probes).
    public var value: Double
    public var interval: Interval
    /// Probes with a finite value at both ends.
    public var n: Int

    public init(value: Double, interval: Interval, n: Int) {
        self.value = value
        self.interval = interval
        self.n = n
    }

    public static let undefined = Estimate(value: .nan, interval: .undefined, n: 0)
}

/// Spearman's rank correlation and the number of pairs it used.
public struct Correlation: Sendable, Equatable {
    public var rho: Double
    public var n: Int
}

public enum Stats {
    /// Mean of the finite values and how many there were (NaN, 0 when none).
    public static func nanMean<S: Sequence>(_ xs: S) -> (mean: Double, count: Int) where S.Element == Double {
        var sum = 0.0, n = 0
        for x in xs where x.isFinite { sum += x; n += 1 }
        return (n > 0 ? sum / Double(n) : .nan, n)
    }

    /// Percentile `q` in [0, 1] of ascending `sorted` values (Hyndman & Fan definition 7).
    public static func quantile(sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let h = Double(sorted.count - 1) * min(max(q, 0), 1)
        let lo = Int(h.rounded(.down))
        let hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
    }

    /// Average ranks (1-based); tied values share the mean of the ranks they span.
    public static func averageRanks(_ xs: [Double]) -> [Double] {
        let order = xs.indices.sorted { xs[$0] < xs[$1] || (xs[$0] == xs[$1] && $0 < $1) }
        var ranks = [Double](repeating: 0, count: xs.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && xs[order[j + 1]] == xs[order[i]] { j += 1 }
            let rank = Double(i + j) / 2 + 1  // mean of ranks i+1 ... j+1
            for k in i...j { ranks[order[k]] = rank }
            i = j + 1
        }
        return ranks
    }

    /// Pearson's correlation; NaN when fewer than 2 pairs or either side is constant.
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double {
        precondition(x.count == y.count, "pearson needs equally long inputs")
        guard x.count >= 2 else { return .nan }
        let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
            syy += (b - my) * (b - my)
        }
        guard sxx > 0, syy > 0 else { return .nan }
        return max(-1, min(1, sxy / (sxx * syy).squareRoot()))
    }

    /// Spearman's rho over the pairs where both values are finite.
    public static func spearman(_ x: [Double], _ y: [Double]) -> Correlation {
        precondition(x.count == y.count, "spearman needs equally long inputs")
        var xs: [Double] = [], ys: [Double] = []
        for (a, b) in zip(x, y) where a.isFinite && b.isFinite { xs.append(a); ys.append(b) }
        return Correlation(rho: pearson(averageRanks(xs), averageRanks(ys)), n: xs.count)
    }
}

/// Paired bootstrap with a fixed seed. Every statistic over n probes uses the same n-probe
/// resamples (drawn once per n and cached), so results do not depend on which statistics are
/// computed or in what order, and heads, layers and measures are resampled jointly.
public final class Bootstrap {
    public let seed: UInt64
    public let resamples: Int
    /// Coverage of the interval (0.95).
    public let level: Double
    /// The most resamples × probes one plan may hold (2^28 indices, 1 GiB).
    public static let maxDraws = 1 << 28

    private var plans: [Int: [Int32]] = [:]

    /// - Throws: `invalidOption` when `resamples` is not in 1...1_000_000.
    public init(seed: UInt64, resamples: Int, level: Double = 0.95) throws {
        guard (1...1_000_000).contains(resamples) else {
            throw AnalysisError.invalidOption(option: "--resamples", detail: "\(resamples) is outside 1...1000000")
        }
        self.seed = seed
        self.resamples = resamples
        self.level = level
    }

    /// The drawn indices for n probes: `[resample, n]`, row-major.
    func plan(_ n: Int) throws -> [Int32] {
        if let p = plans[n] { return p }
        let (draws, overflow) = resamples.multipliedReportingOverflow(by: n)
        guard !overflow, draws <= Self.maxDraws, n <= Int(Int32.max) else {
            throw AnalysisError.invalidOption(option: "--resamples",
                                              detail: "\(resamples) resamples × \(n) probes exceeds \(Self.maxDraws) draws")
        }
        var rng = Xoshiro256StarStar(seed: seed)
        var p = [Int32](repeating: 0, count: draws)
        for k in 0..<draws { p[k] = Int32(rng.index(below: n)) }
        plans[n] = p
        return p
    }

    /// The estimate of the mean of `d` (all finite).
    public func estimate(_ d: [Double]) throws -> Estimate {
        try estimates(matrix: d, rows: d.count, columns: 1)[0]
    }

    /// Paired estimate of mean(to − from) over the probes finite at both ends.
    public func paired(from a: [Double], to b: [Double]) throws -> Estimate {
        precondition(a.count == b.count, "paired needs equally long inputs")
        var d: [Double] = []
        for (x, y) in zip(a, b) where x.isFinite && y.isFinite { d.append(y - x) }
        return try estimate(d)
    }

    /// Resample r's mean of every column of `d` (`[rows, columns]`, row-major, n > 0): `[resample, column]`,
    /// (Σ_i d[idx_{r,i}, j]) / n summed in draw order; and the point means.
    func resampleMeans(matrix d: [Double], rows n: Int, columns m: Int) throws -> (means: [Double], point: [Double]) {
        let idx = try plan(n)
        var point = [Double](repeating: 0, count: m)
        for i in 0..<n { for j in 0..<m { point[j] += d[i * m + j] } }
        var means = [Double](repeating: 0, count: resamples * m)  // [resample, column]
        var acc = [Double](repeating: 0, count: m)
        for r in 0..<resamples {
            for j in 0..<m { acc[j] = 0 }
            let base = r * n
            for i in 0..<n {
                let row = Int(idx[base + i]) * m
                for j in 0..<m { acc[j] += d[row + j] }
            }
            for j in 0..<m { means[r * m + j] = acc[j] / Double(n) }
        }
        return (means, point.map { $0 / Double(n) })
    }

    /// The ratio of means Σ a / Σ b over the probes where both are finite, with the percentile interval
    /// of the same ratio over the paired resamples (both sums over the same drawn probes). `n` counts
    /// those probes; the value is NaN when Σ b is 0 or no probe has both.
    public func ratio(_ a: [Double], _ b: [Double]) throws -> Estimate {
        precondition(a.count == b.count, "ratio needs equally long inputs")
        var d: [Double] = []
        for (x, y) in zip(a, b) where x.isFinite && y.isFinite { d += [x, y] }
        let n = d.count / 2
        guard n > 0 else { return .undefined }
        let (means, point) = try resampleMeans(matrix: d, rows: n, columns: 2)
        var ratios: [Double] = []
        ratios.reserveCapacity(resamples)
        for r in 0..<resamples {
            let q = means[r * 2] / means[r * 2 + 1]
            if !q.isNaN { ratios.append(q) }
        }
        ratios.sort()
        let value = point[1] == 0 ? Double.nan : point[0] / point[1]
        let lowQ = (1 - level) / 2, highQ = 1 - (1 - level) / 2
        let interval = ratios.isEmpty || !value.isFinite ? Interval.undefined
            : Interval(low: Stats.quantile(sorted: ratios, lowQ), high: Stats.quantile(sorted: ratios, highQ))
        return Estimate(value: value, interval: interval, n: n)
    }

    /// Estimates for every column of `d` (`[rows, columns]`, row-major, all finite), sharing the
    /// resamples: resample r's mean for column j is (Σ_i d[idx_{r,i}, j]) / n, summed in draw order.
    public func estimates(matrix d: [Double], rows n: Int, columns m: Int) throws -> [Estimate] {
        precondition(d.count == n * m, "matrix size")
        guard n > 0 else { return [Estimate](repeating: .undefined, count: m) }
        let (means, _) = try resampleMeans(matrix: d, rows: n, columns: m)
        var point = [Double](repeating: 0, count: m)
        for i in 0..<n { for j in 0..<m { point[j] += d[i * m + j] } }
        let lowQ = (1 - level) / 2, highQ = 1 - (1 - level) / 2
        var out: [Estimate] = []
        out.reserveCapacity(m)
        var column = [Double](repeating: 0, count: resamples)
        for j in 0..<m {
            for r in 0..<resamples { column[r] = means[r * m + j] }
            column.sort()
            out.append(Estimate(value: point[j] / Double(n),
                                interval: Interval(low: Stats.quantile(sorted: column, lowQ),
                                                   high: Stats.quantile(sorted: column, highQ)),
                                n: n))
        }
        return out
    }

    /// Estimates of the mean of every column of `x` (`[probe, column]`) over its finite values: the
    /// paired estimate against zero, so columns with the same probes share one resample pass.
    public func means(_ x: [Double], probes p: Int, columns m: Int) throws -> [Estimate] {
        try paired(from: [Double](repeating: 0, count: x.count), to: x, probes: p, columns: m)
    }

    /// Per checkpoint, the interval of the mean over probes (finite values) of `x` (`[checkpoint, probe]`):
    /// the 95% band of a trajectory.
    public func bands(_ x: [Double], checkpoints C: Int, probes P: Int) throws -> [Interval] {
        precondition(x.count == C * P, "per-probe matrix size")
        return try (0..<C).map { c in try estimate(x[(c * P)..<((c + 1) * P)].filter(\.isFinite)).interval }
    }

    /// Paired estimates for every column of `from` and `to` (`[probe, column]`). Probes are paired
    /// per column (finite at both ends); columns sharing one set of valid probes are computed together.
    public func paired(from a: [Double], to b: [Double], probes p: Int, columns m: Int) throws -> [Estimate] {
        precondition(a.count == p * m && b.count == p * m, "matrix size")
        // Group columns by their valid-probe mask so each group is one shared-resample pass.
        var groups: [[Bool]: [Int]] = [:]
        var order: [[Bool]] = []
        for j in 0..<m {
            let mask = (0..<p).map { a[$0 * m + j].isFinite && b[$0 * m + j].isFinite }
            if groups[mask] == nil { order.append(mask) }
            groups[mask, default: []].append(j)
        }
        var out = [Estimate](repeating: .undefined, count: m)
        for mask in order {
            let cols = groups[mask] ?? []
            let rows = (0..<p).filter { mask[$0] }
            var d = [Double](repeating: 0, count: rows.count * cols.count)
            for (ri, pi) in rows.enumerated() {
                for (ci, j) in cols.enumerated() { d[ri * cols.count + ci] = b[pi * m + j] - a[pi * m + j] }
            }
            let est = try estimates(matrix: d, rows: rows.count, columns: cols.count)
            for (ci, j) in cols.enumerated() { out[j] = est[ci] }
        }
        return out
    }
}

import Foundation

/// Student's t distribution: the CDF through the regularised incomplete beta function and its two-sided 95%
/// quantile (docs/STATISTICS.md). Used for intervals across training seeds, where n is small (3-10) and the normal
/// quantile 1.96 would be far too narrow (df = 2: 4.30).
public enum StudentT {
    /// P(T <= t) for T ~ t(df): for t >= 0, 1 - I_x(df/2, 1/2) / 2 with x = df / (df + t^2); symmetric below 0.
    /// - Precondition: df > 0.
    public static func cdf(_ t: Double, degreesOfFreedom df: Double) -> Double {
        precondition(df > 0, "[student-t] degrees of freedom \(df) must be > 0")
        guard t.isFinite else { return t > 0 ? 1 : 0 }
        let tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), a: df / 2, b: 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The quantile q with P(T <= q) = p, by bisection on the CDF (monotone) to the last bit of a Double.
    /// - Precondition: 0 < p < 1, df > 0.
    public static func quantile(_ p: Double, degreesOfFreedom df: Double) -> Double {
        precondition(p > 0 && p < 1, "[student-t] probability \(p) must be in (0, 1)")
        if p == 0.5 { return 0 }
        if p < 0.5 { return -quantile(1 - p, degreesOfFreedom: df) }
        var lo = 0.0, hi = 1.0
        while cdf(hi, degreesOfFreedom: df) < p { lo = hi; hi *= 2 }
        for _ in 0..<200 {
            let mid = 0.5 * (lo + hi)
            if mid <= lo || mid >= hi { break }
            if cdf(mid, degreesOfFreedom: df) < p { lo = mid } else { hi = mid }
        }
        return 0.5 * (lo + hi)
    }

    /// t_{0.975, df}: the multiplier of a two-sided 95% interval (12.706 at df 1, 4.303 at 2, 2.045 at 29).
    public static func quantile975(degreesOfFreedom df: Int) -> Double {
        quantile(0.975, degreesOfFreedom: Double(df))
    }

    /// I_x(a, b), the regularised incomplete beta function, by its continued fraction (evaluated with the modified
    /// Lentz method) on the side where it converges fast: x < (a + 1) / (a + b + 2), else 1 - I_{1-x}(b, a).
    static func regularizedIncompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logBeta: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * log(x) + b * log(1 - x)
        let logFront = logBeta + logPowers
        if x < (a + 1) / (a + b + 2) {
            return exp(logFront) * betaContinuedFraction(x, a: a, b: b) / a
        }
        return 1 - exp(logFront) * betaContinuedFraction(1 - x, a: b, b: a) / b
    }

    /// The continued fraction 1 / (1 + d_1 / (1 + d_2 / (1 + ...))) of I_x(a, b) with
    /// d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)), d_{2m} = m (b - m) x / ((a + 2m - 1)(a + 2m)).
    private static func betaContinuedFraction(_ x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300, eps = 1e-16
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...10_000 {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < eps { break }
        }
        return h
    }
}

/// A figure over training seeds: each seed's value (its mean over the same evaluation episodes), their mean and the
/// 95% interval of that mean across seeds, mean +- t_{0.975, n-1} * s / sqrt(n) with s the sample standard
/// deviation of the n per-seed values (docs/STATISTICS.md). With one seed there is no spread to estimate: `std`,
/// `t` and `ci95` are nil (and the report says so).
public struct SeedSummary: Codable, Sendable, Equatable {
    /// The number of training seeds n.
    public var seeds: Int
    /// The mean of the per-seed values.
    public var mean: Double
    /// Sample standard deviation of the per-seed values (n - 1); nil for one seed.
    public var std: Double?
    /// t_{0.975, n-1}; nil for one seed.
    public var t: Double?
    /// Half-width of the 95% interval across seeds: t * std / sqrt(n); nil for one seed.
    public var ci95: Double?
    /// Each seed's value, in the order of the seeds.
    public var perSeed: [Double]

    enum CodingKeys: String, CodingKey {
        case seeds, mean, std, t, ci95
        case perSeed = "per_seed"
    }

    /// Summarises per-seed values. - Precondition: at least one value.
    public init(_ values: [Double]) {
        precondition(!values.isEmpty, "[seed summary] no seeds")
        let n = values.count
        seeds = n
        perSeed = values
        // Summed in seed order: the figure does not depend on how the seeds were run.
        let m = values.reduce(0, +) / Double(n)
        mean = m
        guard n > 1 else { std = nil; t = nil; ci95 = nil; return }
        let s = (values.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(n - 1)).squareRoot()
        let q = StudentT.quantile975(degreesOfFreedom: n - 1)
        std = s
        t = q
        ci95 = q * s / Double(n).squareRoot()
    }

    /// "71.20 +- 1.35" in percent, or "71.20 (1 seed: no interval)".
    public var percentString: String {
        guard let ci95 else { return String(format: "%.2f (1 seed: no interval)", mean * 100) }
        return String(format: "%.2f +- %.2f", mean * 100, ci95 * 100)
    }

    /// This summary in percent as a group of `SVGChart.seedSpread`.
    public func chartGroup(_ label: String) -> SVGChart.SeedGroup {
        SVGChart.SeedGroup(label: label, perSeed: perSeed.map { $0 * 100 }, mean: mean * 100,
                           halfWidth: ci95.map { $0 * 100 })
    }

    /// The per-seed values in percent: "70.1, 71.9, 71.6".
    public var perSeedPercentString: String {
        perSeed.map { String(format: "%.2f", $0 * 100) }.joined(separator: ", ")
    }
}

/// Paired comparison of two methods over training seeds: within each seed the per-episode differences a - b on the
/// very same episodes are averaged (the seed's paired difference), then the seeds' differences are combined as a
/// `SeedSummary` (their mean, with a t interval across seeds).
/// - Parameters: a, b: per seed, the per-episode values of the two methods (same seeds, same episodes).
/// - Precondition: the same number of seeds (>= 1) and, within each seed, of episodes.
public func pairedDifferenceAcrossSeeds(_ a: [[Double]], _ b: [[Double]]) -> SeedSummary {
    precondition(a.count == b.count, "[paired seeds] \(a.count) seeds vs \(b.count): compare the same seeds")
    return SeedSummary(zip(a, b).map { pairedDifference($0, $1).mean })
}

extension AccuracySummary {
    /// The summary of all the episodes of several summaries pooled into one sample (e.g. every seed's episodes):
    /// N = sum n_i, mean = sum n_i m_i / N, std^2 = (sum (n_i - 1) s_i^2 + sum n_i (m_i - mean)^2) / (N - 1),
    /// ci95 = 1.96 std / sqrt(N). Equal (to rounding) to `AccuracySummary` of the concatenated values, so a pooled
    /// figure needs only each part's summary. Parts with no episodes are left out; none at all gives count 0.
    public static func pooled(_ parts: [AccuracySummary]) -> AccuracySummary {
        let parts = parts.filter { $0.count > 0 }
        let n = parts.reduce(0) { $0 + $1.count }
        guard n > 0 else { return AccuracySummary([]) }
        let mean = parts.reduce(0.0) { $0 + Double($1.count) * $1.mean } / Double(n)
        guard n > 1 else { return AccuracySummary(count: 1, mean: mean, std: 0, ci95: 0) }
        let ss = parts.reduce(0.0) { sum, p in
            let within = p.count > 1 ? Double(p.count - 1) * p.std * p.std : 0
            return sum + within + Double(p.count) * (p.mean - mean) * (p.mean - mean)
        }
        let std = (ss / Double(n - 1)).squareRoot()
        return AccuracySummary(count: n, mean: mean, std: std, ci95: 1.96 * std / Double(n).squareRoot())
    }
}

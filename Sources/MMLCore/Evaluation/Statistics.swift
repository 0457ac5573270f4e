import Foundation

/// Mean accuracy over episodes with its 95% confidence interval (METHOD.md section 5).
public struct AccuracySummary: Sendable, Equatable, Codable {
    /// Number of episodes.
    public let count: Int
    /// Mean accuracy in [0, 1].
    public let mean: Double
    /// Sample standard deviation (n - 1).
    public let std: Double
    /// Half-width of the 95% interval: 1.96 * std / sqrt(n).
    public let ci95: Double

    /// Summarise per-episode values (accuracies or paired differences). An empty list gives count 0 and NaNs.
    public init(_ values: [Double]) {
        count = values.count
        guard !values.isEmpty else { mean = .nan; std = .nan; ci95 = .nan; return }
        let m = values.reduce(0, +) / Double(values.count)
        mean = m
        if values.count > 1 {
            let ss = values.reduce(0) { $0 + ($1 - m) * ($1 - m) }
            std = (ss / Double(values.count - 1)).squareRoot()
        } else {
            std = 0
        }
        ci95 = 1.96 * std / Double(values.count).squareRoot()
    }

    /// A summary with the given values (e.g. decoded from a report).
    public init(count: Int, mean: Double, std: Double, ci95: Double) {
        self.count = count
        self.mean = mean
        self.std = std
        self.ci95 = ci95
    }

    /// "98.71 +- 0.21" in percent.
    public var percentString: String { String(format: "%.2f +- %.2f", mean * 100, ci95 * 100) }
}

/// Paired comparison of two methods on the very same episodes: the mean of per-episode differences a - b
/// and its own 95% interval.
public func pairedDifference(_ a: [Double], _ b: [Double]) -> AccuracySummary {
    precondition(a.count == b.count, "[paired] \(a.count) episodes vs \(b.count): compare on the same episodes")
    return AccuracySummary(zip(a, b).map { $0 - $1 })
}

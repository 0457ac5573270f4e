import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// The statistics over training seeds (docs/STATISTICS.md) against known values and brute force, and the seed list's
/// errors.
final class SeedStatisticsTests: XCTestCase {
    /// t_{0.975, df} from published tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), to 9 digits.
    let known: [(df: Int, t: Double)] = [
        (1, 12.706204736), (2, 4.302652730), (3, 3.182446305), (4, 2.776445105), (5, 2.570581836),
        (6, 2.446911851), (9, 2.262157163), (10, 2.228138852), (30, 2.042272456), (100, 1.983971519),
    ]

    func testTQuantilesMatchTables() {
        for (df, t) in known {
            XCTAssertEqual(StudentT.quantile975(degreesOfFreedom: df), t, accuracy: 5e-9, "df \(df)")
        }
        // Large df approaches the normal quantile 1.959964.
        XCTAssertEqual(StudentT.quantile975(degreesOfFreedom: 100_000), 1.959964, accuracy: 1e-4)
        // Symmetry and other probabilities: t_{0.95, 1} = tan(0.45 pi) (Cauchy), t_{0.9, 2} = 1.885618.
        XCTAssertEqual(StudentT.quantile(0.95, degreesOfFreedom: 1), tan(0.45 * Double.pi), accuracy: 1e-9)
        XCTAssertEqual(StudentT.quantile(0.9, degreesOfFreedom: 2), 1.885618083, accuracy: 1e-8)
        XCTAssertEqual(StudentT.quantile(0.025, degreesOfFreedom: 3), -3.182446305, accuracy: 5e-9)
    }

    /// The CDF against a brute-force integral of the density
    /// f(x) = Gamma((v+1)/2) / (sqrt(v pi) Gamma(v/2)) (1 + x^2/v)^(-(v+1)/2), by Simpson's rule from 0.
    func testTCDFMatchesIntegratedDensity() {
        for v in [1.0, 2, 3, 7, 25] {
            let c = exp(lgamma((v + 1) / 2) - lgamma(v / 2)) / (v * Double.pi).squareRoot()
            func density(_ x: Double) -> Double { c * pow(1 + x * x / v, -(v + 1) / 2) }
            for t in [0.3, 1.0, 2.5, 6.0] {
                let n = 20_000, h = t / Double(n)
                var sum = density(0) + density(t)
                for i in 1..<n { sum += density(Double(i) * h) * (i % 2 == 1 ? 4 : 2) }
                let integral = 0.5 + sum * h / 3
                XCTAssertEqual(StudentT.cdf(t, degreesOfFreedom: v), integral, accuracy: 1e-10, "v \(v) t \(t)")
                XCTAssertEqual(StudentT.cdf(-t, degreesOfFreedom: v), 1 - integral, accuracy: 1e-10)
            }
        }
    }

    /// Mean, sample std and t interval across seeds against explicit loops; one seed has no interval.
    func testSeedSummaryAgainstBruteForce() {
        var rng = TestRNG(seed: 11)
        for n in 2...6 {
            let values = (0..<n).map { _ in 0.5 + 0.3 * Double(rng.uniform()) }
            let s = SeedSummary(values)
            var sum = 0.0
            for v in values { sum += v }
            let mean = sum / Double(n)
            var ss = 0.0
            for v in values { ss += (v - mean) * (v - mean) }
            let std = (ss / Double(n - 1)).squareRoot()
            let t = known.first { $0.df == n - 1 }?.t ?? StudentT.quantile975(degreesOfFreedom: n - 1)
            XCTAssertEqual(s.seeds, n)
            XCTAssertEqual(s.perSeed, values)
            XCTAssertEqual(s.mean, mean, accuracy: 1e-15)
            XCTAssertEqual(try XCTUnwrap(s.std), std, accuracy: 1e-15)
            XCTAssertEqual(try XCTUnwrap(s.t), t, accuracy: 1e-8)
            XCTAssertEqual(try XCTUnwrap(s.ci95), t * std / Double(n).squareRoot(), accuracy: 1e-9)
        }
        // Three seeds 0.70, 0.72, 0.74: std 0.02, interval 4.3027 x 0.02 / sqrt(3) = 0.049683.
        XCTAssertEqual(SeedSummary([0.70, 0.72, 0.74]).ci95!, 0.0496827, accuracy: 1e-6)
        let one = SeedSummary([0.7])
        XCTAssertEqual(one.mean, 0.7)
        XCTAssertNil(one.std); XCTAssertNil(one.t); XCTAssertNil(one.ci95)
        XCTAssertTrue(one.percentString.contains("1 seed: no interval"), one.percentString)
        // One seed encodes without NaN (JSON has none): the interval is absent.
        let json = String(decoding: try! JSONEncoder().encode(one), as: UTF8.self)
        XCTAssertFalse(json.contains("ci95"), json)
    }

    /// Pooling summaries equals summarising the concatenated episodes.
    func testPooledSummaryEqualsConcatenatedEpisodes() {
        var rng = TestRNG(seed: 5)
        let parts = [7, 1, 12, 4].map { n in (0..<n).map { _ in Double(Int(rng.uniform() * 5)) / 4 } }
        let pooled = AccuracySummary.pooled(parts.map { AccuracySummary($0) })
        let direct = AccuracySummary(parts.flatMap { $0 })
        XCTAssertEqual(pooled.count, direct.count)
        XCTAssertEqual(pooled.mean, direct.mean, accuracy: 1e-14)
        XCTAssertEqual(pooled.std, direct.std, accuracy: 1e-13)
        XCTAssertEqual(pooled.ci95, direct.ci95, accuracy: 1e-13)
    }

    /// Paired differences per seed (per episode within a seed), combined across seeds, against loops.
    func testPairedDifferencesAcrossSeedsAgainstBruteForce() {
        var rng = TestRNG(seed: 3)
        let seeds = 4, episodes = 9
        let a = (0..<seeds).map { _ in (0..<episodes).map { _ in Double(rng.uniform()) } }
        let b = (0..<seeds).map { _ in (0..<episodes).map { _ in Double(rng.uniform()) } }
        var perSeed: [Double] = []
        for s in 0..<seeds {
            var d = 0.0
            for e in 0..<episodes { d += a[s][e] - b[s][e] }
            perSeed.append(d / Double(episodes))
        }
        let r = pairedDifferenceAcrossSeeds(a, b)
        XCTAssertEqual(r.seeds, seeds)
        for (x, y) in zip(r.perSeed, perSeed) { XCTAssertEqual(x, y, accuracy: 1e-15) }
        let m = perSeed.reduce(0, +) / Double(seeds)
        let sd = (perSeed.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(seeds - 1)).squareRoot()
        XCTAssertEqual(r.mean, m, accuracy: 1e-15)
        XCTAssertEqual(r.ci95!, 3.182446305 * sd / 2, accuracy: 1e-9)
    }

    /// The combined ablation table over seeds: every row's figures against brute force over per-seed rows.
    func testSeedAblationCombinationAgainstBruteForce() throws {
        var rng = TestRNG(seed: 9)
        let names = ["pixel+part+distribution", "pixel", "part"], episodes = 5
        let perSeedValues = (0..<3).map { _ in
            names.map { _ in (0..<episodes).map { _ in Double(Int(rng.uniform() * 4)) / 3 } }
        }
        // AblationRunResult has no public memberwise initialiser: built through its JSON, as ablation.json holds it.
        let seeds = try perSeedValues.enumerated().map { k, rows -> SeedAblationRunResult.Seed in
            let encodedRows = try zip(names, rows).map { name, acc -> Any in
                let row = AblationRow(name: name, levels: [.pixel], accuracy: AccuracySummary(acc),
                                      differenceToFull: pairedDifference(acc, rows[0]), perEpisode: acc, weights: nil)
                return try JSONSerialization.jsonObject(with: try JSONEncoder().encode(row))
            }
            let object: [String: Any] = ["way": 3, "shot": 1, "query": 2, "episodes": episodes, "seed": 0,
                                         "mode": "test", "rows": encodedRows]
            let r = try JSONDecoder().decode(AblationRunResult.self,
                                             from: try JSONSerialization.data(withJSONObject: object))
            return .init(seed: UInt64(k + 1), checkpoint: "c\(k)", report: r)
        }
        let combined = try SeedAblationRunResult(seeds: seeds)
        XCTAssertEqual(combined.rows.map(\.name), names)
        for (i, row) in combined.rows.enumerated() {
            var seedMeans: [Double] = [], seedDiffs: [Double] = [], allAcc: [Double] = [], allDiff: [Double] = []
            for s in 0..<3 {
                var acc = 0.0, diff = 0.0
                for e in 0..<episodes {
                    acc += perSeedValues[s][i][e]
                    diff += perSeedValues[s][i][e] - perSeedValues[s][0][e]
                    allAcc.append(perSeedValues[s][i][e])
                    allDiff.append(perSeedValues[s][i][e] - perSeedValues[s][0][e])
                }
                seedMeans.append(acc / Double(episodes))
                seedDiffs.append(diff / Double(episodes))
            }
            let t2 = 4.302652730
            func check(_ s: SeedSummary, _ v: [Double]) {
                let m = v.reduce(0, +) / 3
                let sd = (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 2).squareRoot()
                XCTAssertEqual(s.mean, m, accuracy: 1e-14)
                XCTAssertEqual(s.ci95!, t2 * sd / 3.0.squareRoot(), accuracy: 1e-8)
            }
            check(row.accuracy, seedMeans)
            check(row.differenceToFull, seedDiffs)
            XCTAssertEqual(row.pooled.mean, AccuracySummary(allAcc).mean, accuracy: 1e-14)
            XCTAssertEqual(row.pooled.ci95, AccuracySummary(allAcc).ci95, accuracy: 1e-13)
            XCTAssertEqual(row.pooledDifference.ci95, AccuracySummary(allDiff).ci95, accuracy: 1e-13)
        }
        XCTAssertTrue(combined.markdown.contains("| pixel |"), combined.markdown)
        XCTAssertTrue(combined.svg.hasPrefix("<svg") && combined.svg.contains("<circle"))
        // Seeds ablated on other episodes are refused.
        var other = seeds
        other[1].report.seed = 7
        XCTAssertThrowsError(try SeedAblationRunResult(seeds: other)) { e in
            XCTAssertTrue("\(e)".contains("every seed must be ablated on the same episodes"), "\(e)")
        }
    }

    func testSeedListParsingAndErrors() throws {
        XCTAssertEqual(try SeedStudy.parse("1,2,3"), [1, 2, 3])
        XCTAssertEqual(try SeedStudy.parse(" 7 , 0"), [7, 0])
        let cases: [(String, String)] = [
            ("", "seeds is empty"), ("  ", "seeds is empty"), ("1,,2", "has an empty entry"),
            ("1,x", "'x' is not a seed"), ("1.5", "'1.5' is not a seed"), ("1,-2", "-2 is negative"),
            ("3,1,3", "seed 3 is listed twice"), ("99999999999999999999999", "is not a seed"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try SeedStudy.parse(text), text) { e in
                XCTAssertTrue("\(e)".contains(message), "'\(text)': \(e)")
            }
        }
        let run = EpisodicTrainingRunConfiguration(dataset: DatasetSource(path: "synthetic"))
        XCTAssertThrowsError(try SeedTrainingRun(SeedTrainingRunConfiguration(run: run, seeds: [1, 2], seedIndex: 2))) {
            XCTAssertTrue("\($0)".contains("seedIndex 2: the 2 seeds [1, 2] have indices 0..<2"), "\($0)")
        }
        XCTAssertThrowsError(try SeedTrainingRun(SeedTrainingRunConfiguration(run: run, seeds: []))) {
            XCTAssertTrue("\($0)".contains("seeds is empty: give at least one"), "\($0)")
        }
        // A job array of the wrong size is refused; the right one picks its seed.
        let env = ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"]
        XCTAssertEqual(try SeedStudy.indexFromSLURM(environment: env, seeds: [4, 5]), 1)
        XCTAssertNil(try SeedStudy.indexFromSLURM(environment: [:], seeds: [4, 5]))
        XCTAssertThrowsError(try SeedStudy.indexFromSLURM(environment: env, seeds: [4, 5, 6])) {
            XCTAssertTrue("\($0)".contains("has 2 tasks"), "\($0)")
        }
        // Each seed's run is `mml train --seed s` into study/seed-<s>.
        let c = SeedTrainingRunConfiguration(run: run, seeds: [3, 8]).configuration(seed: 8)
        XCTAssertEqual(c.training.seed, 8)
        XCTAssertEqual(c.backbone, run.backbone)
        XCTAssertTrue(c.out.hasSuffix("/seed-8"), c.out)
        let w = SeedTrainingRunConfiguration(run: run, seeds: [3, 8], seedInitialWeights: true).configuration(seed: 8)
        XCTAssertEqual(w.backbone.seed, 8)
    }
}

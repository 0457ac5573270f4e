import Foundation
import MMLCore

/// `mml-bench api [--calls N] [--rounds R]`: the Swift API's own cost per call, the baseline of the Python
/// package's overhead (Benchmarks/python_overhead.py runs the same two calls through `import mml`):
/// - a tiny episode (2-way 1-shot, 1 query, 4 channels of 1 x 1 maps, pixel level K = 1) scored with
///   `EpisodeScorer.score` (what `mml_score_episode` calls), median over `calls` calls;
/// - the 5-way 5-shot pixel-level episode (25 + 75 maps of 64 x 21 x 21, K = 3), median over `rounds`.
func runApiBench(json: Bool, arguments: [String]) {
    let calls = intOption(arguments, "--calls", 2000), rounds = intOption(arguments, "--rounds", 7)
    var rng = SeededRNG(seed: 1)
    func maps(_ n: Int, _ c: Int, _ side: Int) -> Tensor {
        // leaky-ReLU-like features, as a backbone's output
        Tensor(shape: [n, c, side, side], data: (0..<(n * c * side * side)).map { _ in
            let x = rng.nextFloat() - 0.5
            return max(0.2 * x, x)
        })
    }
    func median(_ times: [Double]) -> Double { times.sorted()[times.count / 2] }
    var rows: [BenchRow] = []
    do {
        let tiny = try EpisodeScorer(metric: MetricConfiguration(levels: [.pixel]))
        let ts = maps(2, 4, 1), tq = maps(1, 4, 1)
        _ = try tiny.score(support: ts, labels: [0, 1], query: tq)
        var times: [Double] = []
        for _ in 0..<calls {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try tiny.score(support: ts, labels: [0, 1], query: tq)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        rows.append(BenchRow(name: "api tiny episode (2-way 1-shot 1 query, 4 x 1 x 1, pixel K=1), per call",
                             seconds: median(times), gflops: nil, ratio: nil))
        let pixel = try EpisodeScorer(metric: MetricConfiguration(levels: [.pixel], pixelNeighbours: 3))
        let s = maps(25, 64, 21), q = maps(75, 64, 21)
        let labels = (0..<25).map { $0 / 5 }
        _ = try pixel.score(support: s, labels: labels, query: q)
        times = []
        for _ in 0..<rounds {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try pixel.score(support: s, labels: labels, query: q)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        rows.append(BenchRow(name: "api pixel level 5-way 5-shot 75 queries 64 x 21 x 21, K=3 (EpisodeScorer)",
                             seconds: median(times), gflops: nil, ratio: nil, peer: "dn4_score/5shot/batched"))
    } catch {
        fputs("mml-bench api: \(error)\n", stderr)
        exit(1)
    }
    printRows(rows, json: json)
}

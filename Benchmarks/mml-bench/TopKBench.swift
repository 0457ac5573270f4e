import COpenBLAS
import Foundation
import MMLCore
import MMLKernels

/// Rows of `mml-bench kernels` for the grouped top-K similarity (pixel level), next to plain sgemm.
func topKBenchRows(arguments: [String]) -> [BenchRow] {
    var rows: [BenchRow] = []
    for (name, way, shot) in [("pixel 5-way 5-shot", 5, 5), ("pixel 5-way 1-shot", 5, 1)] {
        let m = way * 15 * 441, perGroup = shot * 441, n = way * perGroup, d = 64
        var rng = SplitMix64(seed: 1)
        let q = (0..<(m * d)).map { _ in rng.nextFloat() - 0.5 }
        let r = (0..<(n * d)).map { _ in rng.nextFloat() - 0.5 }
        var c = [Float](repeating: 0, count: m * n)
        let flops = 2.0 * Double(m) * Double(n) * Double(d)
        let sg = measure(repeats: 5) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(d), 1, q, Int32(d),
                        r, Int32(d), 0, &c, Int32(n))
        }
        rows.append(BenchRow(name: "\(name) cblas_sgemm \(m)x\(n)x\(d)", seconds: sg, gflops: flops / sg / 1e9,
                             ratio: nil))
    }
    return rows
}

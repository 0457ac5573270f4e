import COpenBLAS
import Foundation

extension BLASRuntime {
    /// Measure single-precision matrix multiply throughput: a `size` x `size` x `size` product, best of `repeats`.
    /// - Returns: GFLOP/s (2 * size^3 flops per product).
    public static func measureSGEMM(size: Int = 1536, repeats: Int = 5) -> Double {
        let n = size
        var a = [Float](repeating: 0, count: n * n), b = a, c = a
        for i in 0..<(n * n) { a[i] = Float(i % 13) * 0.01; b[i] = Float(i % 7) * 0.02 }
        var best = Double.infinity
        for _ in 0..<(repeats + 1) {  // the first product warms up thread pools and caches
            let t0 = DispatchTime.now().uptimeNanoseconds
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n),
                        1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            best = min(best, dt)
        }
        return 2.0 * Double(n * n * n) / best / 1e9
    }
}

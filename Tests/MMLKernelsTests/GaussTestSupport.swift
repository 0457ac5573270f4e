import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// A random orthogonal d x d matrix (Gram-Schmidt on a Gaussian matrix), row-major.
func randomOrthogonal(_ d: Int, _ rng: inout TestRNG) -> [Double] {
    var q = (0..<(d * d)).map { _ in rng.normal() }
    for i in 0..<d {
        for _ in 0..<2 {  // twice for orthogonality to working precision
            for j in 0..<i {
                var dot = 0.0
                for k in 0..<d { dot += q[i * d + k] * q[j * d + k] }
                for k in 0..<d { q[i * d + k] -= dot * q[j * d + k] }
            }
        }
        var n = 0.0
        for k in 0..<d { n += q[i * d + k] * q[i * d + k] }
        n = sqrt(n)
        for k in 0..<d { q[i * d + k] /= n }
    }
    return q
}

/// Q diag(eigenvalues) Q^T rounded to float and made exactly symmetric (lower triangle mirrored).
func spdFloat(eigenvalues: [Double], basis q: [Double]) -> [Float] {
    let d = eigenvalues.count
    var s = [Float](repeating: 0, count: d * d)
    for i in 0..<d {
        for j in 0...i {
            var v = 0.0
            for k in 0..<d { v += q[k * d + i] * eigenvalues[k] * q[k * d + j] }
            s[i * d + j] = Float(v)
            s[j * d + i] = Float(v)
        }
    }
    return s
}

/// n random SPD d x d matrices; `condition` is the ratio of the largest to the smallest eigenvalue (log-spaced).
func randomSPD(count n: Int, d: Int, condition: Double, scale: Double = 1, _ rng: inout TestRNG) -> [Float] {
    var out: [Float] = []
    for _ in 0..<n {
        let q = randomOrthogonal(d, &rng)
        let jitter = 0.5 + rng.uniform()
        let ev = (0..<d).map { i -> Double in
            let t = d == 1 ? rng.uniform() : Double(i) / Double(d - 1)
            return scale * jitter * pow(condition, -t)
        }
        out += spdFloat(eigenvalues: ev, basis: q)
    }
    return out
}

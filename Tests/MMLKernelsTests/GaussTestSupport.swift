import Foundation
import MMLKernels
import XCTest

/// Deterministic generator for the Gaussian kernel tests (explicit seed, no global state).
struct GaussRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// Standard normal (Box-Muller).
    mutating func normal() -> Double {
        let u = max(uniform(), 1e-300), v = uniform()
        return sqrt(-2 * log(u)) * cos(2 * Double.pi * v)
    }
    mutating func floats(_ n: Int, scale: Double = 1) -> [Float] { (0..<n).map { _ in Float(normal() * scale) } }
}

/// A random orthogonal d x d matrix (Gram-Schmidt on a Gaussian matrix), row-major.
func randomOrthogonal(_ d: Int, _ rng: inout GaussRNG) -> [Double] {
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
func randomSPD(count n: Int, d: Int, condition: Double, scale: Double = 1, _ rng: inout GaussRNG) -> [Float] {
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

/// |a - b| <= atol + rtol * |ref| elementwise, with the worst offender in the message.
func assertClose(_ a: [Float], _ ref: [Double], atol: Double, rtol: Double, _ what: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, ref.count, "\(what): counts", file: file, line: line)
    var worst = 0.0, at = -1
    for i in 0..<min(a.count, ref.count) {
        let err = abs(Double(a[i]) - ref[i]) - (atol + rtol * abs(ref[i]))
        if !(err <= 0) && (at < 0 || !(err <= worst)) { worst = err; at = i }
    }
    if at >= 0 {
        XCTFail("\(what): element \(at) is \(a[at]), expected \(ref[at]) (atol \(atol), rtol \(rtol))",
                file: file, line: line)
    }
}

/// Bitwise equality of two float arrays (for thread-count independence).
func assertBitwiseEqual(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for i in 0..<min(a.count, b.count) where a[i].bitPattern != b[i].bitPattern {
        XCTFail("\(what): element \(i) differs: \(a[i]) vs \(b[i])", file: file, line: line)
        return
    }
}

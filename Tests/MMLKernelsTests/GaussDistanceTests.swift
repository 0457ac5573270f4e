import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// W2, KL and mmlv1 against their naive double twins, closed forms and identities, and thread-count independence.
final class GaussDistanceTests: XCTestCase {
    enum Kind { case w2, kl(mml_kl_direction), mmlv1 }
    static let allKinds: [Kind] = [.w2, .kl(MML_KL_QUERY_CLASS), .kl(MML_KL_CLASS_QUERY), .kl(MML_KL_SYMMETRIC), .mmlv1]

    struct Set {
        var mu: [Float], sigma: [Float], n: Int
    }

    static func randomSet(_ n: Int, _ d: Int, condition: Double, _ rng: inout TestRNG) -> Set {
        Set(mu: rng.normals(n * d, scale: 0.5), sigma: randomSPD(count: n, d: d, condition: condition, &rng), n: n)
    }

    static func fast(_ k: Kind, _ a: Set, _ b: Set, _ d: Int, threads: Int32 = 2) -> (Int32, [Float]) {
        var out = [Float](repeating: .nan, count: a.n * b.n)
        let st: Int32
        switch k {
        case .w2: st = mml_gaussian_w2_f32(&out, a.mu, a.sigma, Int64(a.n), b.mu, b.sigma, Int64(b.n), Int64(d), threads)
        case .kl(let dir):
            st = mml_gaussian_kl_f32(&out, a.mu, a.sigma, Int64(a.n), b.mu, b.sigma, Int64(b.n), Int64(d), dir, threads)
        case .mmlv1:
            st = mml_gaussian_mmlv1_f32(&out, a.mu, a.sigma, Int64(a.n), b.mu, b.sigma, Int64(b.n), Int64(d), threads)
        }
        return (st, out)
    }

    static func naive(_ k: Kind, _ a: Set, _ b: Set, _ d: Int) -> (Int32, [Double]) {
        var out = [Double](repeating: .nan, count: a.n * b.n)
        let st: Int32
        switch k {
        case .w2: st = mml_gaussian_w2_naive(&out, a.mu, a.sigma, Int64(a.n), b.mu, b.sigma, Int64(b.n), Int64(d))
        case .kl(let dir):
            st = mml_gaussian_kl_naive(&out, a.mu, a.sigma, Int64(a.n), b.mu, b.sigma, Int64(b.n), Int64(d), dir)
        case .mmlv1: st = mml_gaussian_mmlv1_naive(&out, a.mu, a.sigma, Int64(a.n), b.mu, b.sigma, Int64(b.n), Int64(d))
        }
        return (st, out)
    }

    func testDistancesMatchNaive() {
        var rng = TestRNG(seed: 21)
        for d in [1, 2, 7, 64] {
            for condition in [3.0, 1e4] {
                let a = Self.randomSet(5, d, condition: condition, &rng), b = Self.randomSet(3, d, condition: condition, &rng)
                for k in Self.allKinds {
                    let (s1, f) = Self.fast(k, a, b, d), (s2, n) = Self.naive(k, a, b, d)
                    XCTAssertEqual(s1, Int32(MML_OK))
                    XCTAssertEqual(s2, Int32(MML_OK))
                    // Scale-aware absolute tolerance: the terms that cancel are as large as the traces.
                    let scale = 1.0 + Double(d)
                    assertClose(f, n, atol: 2e-6 * scale, rtol: 2e-5, "\(k) d=\(d) cond=\(condition)")
                }
            }
        }
    }

    /// d = 1, by hand: N(1, 4) and N(3, 1).
    func testScalarClosedForms() {
        let a = Set(mu: [1], sigma: [4], n: 1), b = Set(mu: [3], sigma: [1], n: 1)
        // W2 = (1-3)^2 + (sqrt 4 - sqrt 1)^2 = 4 + 1 = 5
        XCTAssertEqual(Double(Self.fast(.w2, a, b, 1).1[0]), 5, accuracy: 1e-5)
        XCTAssertEqual(Self.naive(.w2, a, b, 1).1[0], 5, accuracy: 1e-12)
        // KL(a||b) = 1/2 (4/1 + 4/1 - 1 + ln 1 - ln 4) = (7 - ln 4)/2
        let ab = (7 - log(4.0)) / 2
        // KL(b||a) = 1/2 (1/4 + 4/4 - 1 + ln 4 - ln 1) = (1/4 + ln 4)/2
        let ba = (0.25 + log(4.0)) / 2
        XCTAssertEqual(Double(Self.fast(.kl(MML_KL_QUERY_CLASS), a, b, 1).1[0]), ab, accuracy: 1e-5)
        XCTAssertEqual(Double(Self.fast(.kl(MML_KL_CLASS_QUERY), a, b, 1).1[0]), ba, accuracy: 1e-5)
        XCTAssertEqual(Double(Self.fast(.kl(MML_KL_SYMMETRIC), a, b, 1).1[0]), (ab + ba) / 2, accuracy: 1e-5)
        XCTAssertEqual(Self.naive(.kl(MML_KL_QUERY_CLASS), a, b, 1).1[0], ab, accuracy: 1e-12)
        // mmlv1 = |1-3|/1 + |4-1|/1 = 5
        XCTAssertEqual(Double(Self.fast(.mmlv1, a, b, 1).1[0]), 5, accuracy: 1e-5)
    }

    /// Commuting covariances (shared eigenbasis Q): W2 = ||dmu||^2 + sum (sqrt a_i - sqrt b_i)^2 and
    /// KL = 1/2 sum (a_i/b_i + (Q^T dmu)_i^2 / b_i - 1 + ln b_i - ln a_i); diagonal when Q = I.
    func testCommutingAndDiagonalClosedForms() {
        var rng = TestRNG(seed: 22)
        for d in [3, 16] {
            for rotate in [false, true] {
                var q = [Double](repeating: 0, count: d * d)
                for i in 0..<d { q[i * d + i] = 1 }
                if rotate { q = randomOrthogonal(d, &rng) }
                let ea = (0..<d).map { _ in 0.05 + 3 * rng.uniform() }, eb = (0..<d).map { _ in 0.05 + 3 * rng.uniform() }
                let a = Set(mu: rng.normals(d), sigma: spdFloat(eigenvalues: ea, basis: q), n: 1)
                let b = Set(mu: rng.normals(d), sigma: spdFloat(eigenvalues: eb, basis: q), n: 1)
                var w2 = 0.0, kl = 0.0
                for i in 0..<d {
                    var proj = 0.0  // (Q dmu)_i with Q's rows as the eigenvectors
                    for k in 0..<d { proj += q[i * d + k] * (Double(b.mu[k]) - Double(a.mu[k])) }
                    w2 += proj * proj + (ea[i].squareRoot() - eb[i].squareRoot()) * (ea[i].squareRoot() - eb[i].squareRoot())
                    kl += 0.5 * (ea[i] / eb[i] + proj * proj / eb[i] - 1 + log(eb[i]) - log(ea[i]))
                }
                // Float rounding of the matrices perturbs the eigenvalues by ~1e-7 relative.
                XCTAssertEqual(Double(Self.fast(.w2, a, b, d).1[0]), w2, accuracy: 1e-4 * (1 + w2), "d=\(d) rot=\(rotate)")
                XCTAssertEqual(Double(Self.fast(.kl(MML_KL_QUERY_CLASS), a, b, d).1[0]), kl, accuracy: 1e-4 * (1 + kl))
            }
        }
    }

    func testIdentities() {
        var rng = TestRNG(seed: 23)
        for d in [1, 7, 64] {
            let a = Self.randomSet(4, d, condition: 100, &rng), b = Self.randomSet(3, d, condition: 100, &rng)
            let scale = 1.0 + Double(d)
            // D(A, A) ~ 0 on the diagonal of the pairwise matrix.
            for k in Self.allKinds {
                let (st, self_) = Self.fast(k, a, a, d)
                XCTAssertEqual(st, Int32(MML_OK))
                for i in 0..<a.n { XCTAssertEqual(Double(self_[i * a.n + i]), 0, accuracy: 1e-5 * scale, "\(k) d=\(d)") }
            }
            // KL >= 0 in every direction, also between different Gaussians.
            for dir in [MML_KL_QUERY_CLASS, MML_KL_CLASS_QUERY, MML_KL_SYMMETRIC] {
                for v in Self.fast(.kl(dir), a, b, d).1 { XCTAssertGreaterThan(v, 0) }
            }
            // Symmetric KL and W2 are symmetric in their arguments; KL(a||b) = KL(b||a) with the sides swapped.
            for k in [Kind.kl(MML_KL_SYMMETRIC), .w2, .mmlv1] {
                let ab = Self.fast(k, a, b, d).1, ba = Self.fast(k, b, a, d).1
                for i in 0..<a.n {
                    for j in 0..<b.n {
                        XCTAssertEqual(ab[i * b.n + j], ba[j * a.n + i], accuracy: Float(2e-5 * scale) * max(1, abs(ab[i * b.n + j])), "\(k)")
                    }
                }
            }
            let qc = Self.fast(.kl(MML_KL_QUERY_CLASS), a, b, d).1, cq = Self.fast(.kl(MML_KL_CLASS_QUERY), b, a, d).1
            for i in 0..<a.n { for j in 0..<b.n { XCTAssertEqual(qc[i * b.n + j], cq[j * a.n + i], accuracy: 1e-4 * max(1, qc[i * b.n + j])) } }
        }
    }

    func testThreadCountDoesNotChangeResults() {
        var rng = TestRNG(seed: 24)
        let d = 19
        let a = Self.randomSet(7, d, condition: 50, &rng), b = Self.randomSet(5, d, condition: 50, &rng)
        for k in Self.allKinds {
            let one = Self.fast(k, a, b, d, threads: 1).1
            assertBitwiseEqual(one, Self.fast(k, a, b, d, threads: 2).1, "\(k) 2 threads")
            assertBitwiseEqual(one, Self.fast(k, a, b, d, threads: 0).1, "\(k) all cores")
            assertBitwiseEqual(one, Self.fast(k, a, b, d, threads: 64).1, "\(k) more threads than pairs")
        }
    }

    func testErrorCodes() {
        var rng = TestRNG(seed: 25)
        let d = 4
        let a = Self.randomSet(2, d, condition: 10, &rng), b = Self.randomSet(3, d, condition: 10, &rng)
        for k in Self.allKinds {
            var noA = a
            noA.n = 0
            XCTAssertEqual(Self.fast(k, noA, b, d).0, Int32(MML_ERR_ARGUMENT), "\(k)")
            XCTAssertEqual(Self.naive(k, noA, b, d).0, Int32(MML_ERR_ARGUMENT), "\(k)")
            XCTAssertEqual(Self.fast(k, a, b, 0).0, Int32(MML_ERR_ARGUMENT), "\(k)")
            var nanMu = b
            nanMu.mu[nanMu.mu.count - 1] = .nan
            XCTAssertEqual(Self.fast(k, a, nanMu, d).0, Int32(MML_ERR_NONFINITE), "\(k)")
            XCTAssertEqual(Self.naive(k, a, nanMu, d).0, Int32(MML_ERR_NONFINITE), "\(k)")
            var infSigma = a
            infSigma.sigma[0] = -.infinity
            XCTAssertEqual(Self.fast(k, infSigma, b, d).0, Int32(MML_ERR_NONFINITE), "\(k)")
            // Not positive definite: eigenvalue -1 in the last class (w2, kl fail; mmlv1 does not factor).
            var notPD = b
            let q = randomOrthogonal(d, &rng)
            notPD.sigma.replaceSubrange((2 * d * d)..<(3 * d * d), with: spdFloat(eigenvalues: [1, 2, -1, 3], basis: q))
            let (st, out) = Self.fast(k, a, notPD, d)
            if case .mmlv1 = k {
                XCTAssertEqual(st, Int32(MML_OK))
            } else {
                XCTAssertEqual(st, Int32(MML_ERR_LAPACK), "\(k)")
                XCTAssertEqual(Self.naive(k, a, notPD, d).0, Int32(MML_ERR_LAPACK), "\(k)")
                XCTAssertTrue(out.allSatisfy { $0 == 0 }, "\(k): output must be zeroed, not NaN")
            }
            // A non-PD query is rejected as well.
            XCTAssertEqual(Self.fast(k, notPD, a, d).0, {
                if case .mmlv1 = k { return Int32(MML_OK) } else { return Int32(MML_ERR_LAPACK) }
            }(), "\(k)")
        }
        var out = [Float](repeating: 0, count: 6), outN = [Double](repeating: 0, count: 6)
        let badDir = mml_kl_direction(rawValue: 7)
        XCTAssertEqual(mml_gaussian_kl_f32(&out, a.mu, a.sigma, 2, b.mu, b.sigma, 3, Int64(d), badDir, 1),
                       Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_gaussian_kl_naive(&outN, a.mu, a.sigma, 2, b.mu, b.sigma, 3, Int64(d), badDir),
                       Int32(MML_ERR_ARGUMENT))
        XCTAssertEqual(mml_gaussian_w2_f32(nil, a.mu, a.sigma, 2, b.mu, b.sigma, 3, Int64(d), 1), Int32(MML_ERR_ARGUMENT))
    }

    func testDiagnoseFindsTheCulprit() {
        var rng = TestRNG(seed: 26)
        let d = 5
        var s = Self.randomSet(4, d, condition: 10, &rng)
        var idx: Int64 = 0, detail: Int64 = 0
        XCTAssertEqual(mml_gaussian_diagnose_f32(&idx, &detail, s.mu, s.sigma, 4, Int64(d)), Int32(MML_OK))
        // Leading 3x3 block PD, the 4x4 block singular: Cholesky fails at column 3.
        var m = [Float](repeating: 0, count: d * d)
        for i in 0..<d { m[i * d + i] = 1 }
        m[3 * d + 3] = 0
        s.sigma.replaceSubrange((2 * d * d)..<(3 * d * d), with: m)
        XCTAssertEqual(mml_gaussian_diagnose_f32(&idx, &detail, s.mu, s.sigma, 4, Int64(d)), Int32(MML_ERR_LAPACK))
        XCTAssertEqual(idx, 2)
        XCTAssertEqual(detail, 3)
        s.sigma[1 * d * d + 7] = .nan
        XCTAssertEqual(mml_gaussian_diagnose_f32(&idx, &detail, s.mu, s.sigma, 4, Int64(d)), Int32(MML_ERR_NONFINITE))
        XCTAssertEqual(idx, 1)
        XCTAssertEqual(detail, 7)
        s.mu[0] = .infinity
        XCTAssertEqual(mml_gaussian_diagnose_f32(&idx, &detail, s.mu, s.sigma, 4, Int64(d)), Int32(MML_ERR_NONFINITE))
        XCTAssertEqual(idx, 0)
        XCTAssertEqual(detail, -1)
        XCTAssertEqual(mml_gaussian_diagnose_f32(&idx, &detail, s.mu, s.sigma, 0, Int64(d)), Int32(MML_ERR_ARGUMENT))
    }
}

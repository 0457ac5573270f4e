import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// Backward passes of W2, KL (3 directions) and mmlv1 against central finite differences of the naive double
/// forward, for all four gradient arguments; covariance entries are perturbed as symmetric pairs.
final class GaussGradientTests: XCTestCase {
    typealias Set = GaussDistanceTests.Set
    typealias Kind = GaussDistanceTests.Kind

    func backward(_ k: Kind, _ dout: [Float], _ a: Set, _ b: Set, _ d: Int, threads: Int32,
                  start: Float = 0) -> (Int32, [[Float]]) {
        var dma = [Float](repeating: start, count: a.mu.count), dsa = [Float](repeating: start, count: a.sigma.count)
        var dmb = [Float](repeating: start, count: b.mu.count), dsb = [Float](repeating: start, count: b.sigma.count)
        let st: Int32
        switch k {
        case .w2:
            st = mml_gaussian_w2_backward_f32(&dma, &dsa, &dmb, &dsb, dout, a.mu, a.sigma, Int64(a.n), b.mu, b.sigma,
                                              Int64(b.n), Int64(d), threads)
        case .kl(let dir):
            st = mml_gaussian_kl_backward_f32(&dma, &dsa, &dmb, &dsb, dout, a.mu, a.sigma, Int64(a.n), b.mu, b.sigma,
                                              Int64(b.n), Int64(d), dir, threads)
        case .mmlv1:
            st = mml_gaussian_mmlv1_backward_f32(&dma, &dsa, &dmb, &dsb, dout, a.mu, a.sigma, Int64(a.n), b.mu,
                                                 b.sigma, Int64(b.n), Int64(d), threads)
        }
        return (st, [dma, dsa, dmb, dsb])
    }

    /// Finite-difference gradient of sum dout * naive(a, b) w.r.t. argument `which` (0 mu_a, 1 sigma_a, 2 mu_b, 3 sigma_b).
    func numeric(_ k: Kind, _ dout: [Float], _ a: Set, _ b: Set, _ d: Int, _ which: Int) -> [Double] {
        func loss(_ a: Set, _ b: Set) -> Double {
            let (st, out) = GaussDistanceTests.naive(k, a, b, d)
            XCTAssertEqual(st, Int32(MML_OK))
            return zip(out, dout).map { $0 * Double($1) }.reduce(0, +)
        }
        let base = which < 2 ? a : b
        let x = which % 2 == 0 ? base.mu : base.sigma
        var g = [Double](repeating: 0, count: x.count)
        for e in 0..<x.count {
            var partner = e  // a covariance entry moves together with its mirror image
            if which % 2 == 1 {
                let m = e / (d * d), r = (e % (d * d)) / d, c = e % d
                if c < r { continue }
                partner = m * d * d + c * d + r
            }
            let h = 1e-4 * max(1, abs(Double(x[e])))  // well below the smallest eigenvalue tested
            var p = x, m = x
            p[e] = Float(Double(x[e]) + h); p[partner] = p[e]
            m[e] = Float(Double(x[e]) - h); m[partner] = m[e]
            func with(_ v: [Float]) -> (Set, Set) {
                var s = base
                if which % 2 == 0 { s.mu = v } else { s.sigma = v }
                return which < 2 ? (s, b) : (a, s)
            }
            let (pa, pb) = with(p), (ma, mb) = with(m)
            let fd = (loss(pa, pb) - loss(ma, mb)) / (Double(p[e]) - Double(m[e]))
            if partner == e {
                g[e] = fd
            } else {  // the pair derivative is G_rc + G_cr = 2 G_rc for a symmetric gradient
                g[e] = fd / 2
                g[partner] = fd / 2
            }
        }
        return g
    }

    func checkGradients(_ k: Kind, d: Int, seed: UInt64, condition: Double, meanShift: Float = 0) {
        var rng = TestRNG(seed: seed)
        var a = GaussDistanceTests.randomSet(2, d, condition: condition, &rng)
        var b = GaussDistanceTests.randomSet(3, d, condition: condition, &rng)
        a.mu = a.mu.map { $0 + meanShift }
        b.mu = b.mu.map { $0 + meanShift }
        var dout = rng.normals(a.n * b.n)
        dout[1] = 0  // a zero weight must contribute nothing
        let (st, g) = backward(k, dout, a, b, d, threads: 2, start: 0.5)
        XCTAssertEqual(st, Int32(MML_OK))
        for which in 0..<4 {
            let ref = numeric(k, dout, a, b, d, which).map { $0 + 0.5 }  // accumulation onto 0.5
            let scale = ref.map { abs($0) }.max() ?? 1
            assertClose(g[which], ref, atol: 2e-5 * scale, rtol: 2e-4, "\(k) d=\(d) arg \(which)")
        }
    }

    func testW2Gradients() {
        checkGradients(.w2, d: 1, seed: 31, condition: 1)
        checkGradients(.w2, d: 4, seed: 32, condition: 5)
        checkGradients(.w2, d: 6, seed: 33, condition: 200)
    }

    func testKLGradients() {
        for dir in [MML_KL_QUERY_CLASS, MML_KL_CLASS_QUERY, MML_KL_SYMMETRIC] {
            checkGradients(.kl(dir), d: 1, seed: 34, condition: 1)
            checkGradients(.kl(dir), d: 5, seed: 35, condition: 20)
            // the backward expands (mu_o - mu_s)(mu_o - mu_s)^T: means far from 0 (large terms that cancel), more
            // dimensions than Gaussians per side
            checkGradients(.kl(dir), d: 9, seed: 38, condition: 10, meanShift: 6)
        }
    }

    func testMMLv1Gradients() {
        checkGradients(.mmlv1, d: 1, seed: 36, condition: 1)
        checkGradients(.mmlv1, d: 5, seed: 37, condition: 20)
    }

    /// At zero distance the mmlv1 norms have no derivative: the kernel returns the zero subgradient, never NaN.
    func testMMLv1ZeroDistanceSubgradient() {
        var rng = TestRNG(seed: 38)
        let a = GaussDistanceTests.randomSet(1, 3, condition: 5, &rng)
        let (st, g) = backward(.mmlv1, [1], a, a, 3, threads: 1)
        XCTAssertEqual(st, Int32(MML_OK))
        for arr in g { for v in arr { XCTAssertEqual(v, 0, accuracy: 0) } }
    }

    func testBackwardThreadCountDoesNotChangeResults() {
        var rng = TestRNG(seed: 39)
        let d = 9
        let a = GaussDistanceTests.randomSet(7, d, condition: 30, &rng), b = GaussDistanceTests.randomSet(4, d, condition: 30, &rng)
        let dout = rng.normals(a.n * b.n)
        for k in GaussDistanceTests.allKinds {
            let one = backward(k, dout, a, b, d, threads: 1).1, two = backward(k, dout, a, b, d, threads: 2).1
            for w in 0..<4 { assertBitwiseEqual(one[w], two[w], "\(k) arg \(w)") }
        }
    }

    func testBackwardSkipsNullOutputsAndChecksInputs() {
        var rng = TestRNG(seed: 40)
        let d = 4
        let a = GaussDistanceTests.randomSet(2, d, condition: 5, &rng), b = GaussDistanceTests.randomSet(2, d, condition: 5, &rng)
        let dout = rng.normals(4)
        let full = backward(.w2, dout, a, b, d, threads: 1).1
        var dsb = [Float](repeating: 0, count: b.sigma.count)
        XCTAssertEqual(mml_gaussian_w2_backward_f32(nil, nil, nil, &dsb, dout, a.mu, a.sigma, 2, b.mu, b.sigma, 2,
                                                    Int64(d), 1), Int32(MML_OK))
        assertBitwiseEqual(dsb, full[3], "w2 dsigma_b alone")
        var dma = [Float](repeating: 0, count: a.mu.count)
        XCTAssertEqual(mml_gaussian_kl_backward_f32(&dma, nil, nil, nil, dout, a.mu, a.sigma, 2, b.mu, b.sigma, 2,
                                                    Int64(d), MML_KL_SYMMETRIC, 1), Int32(MML_OK))
        XCTAssertEqual(backward(.kl(MML_KL_SYMMETRIC), dout, a, b, d, threads: 1).1[0], dma)
        var badOut = dout
        badOut[3] = .nan
        for k in GaussDistanceTests.allKinds {
            XCTAssertEqual(backward(k, badOut, a, b, d, threads: 1).0, Int32(MML_ERR_NONFINITE), "\(k)")
            XCTAssertEqual(backward(k, dout, a, b, 0, threads: 1).0, Int32(MML_ERR_ARGUMENT), "\(k)")
        }
        var notPD = b
        notPD.sigma.replaceSubrange(0..<(d * d), with: spdFloat(eigenvalues: [1, -2, 1, 1], basis: randomOrthogonal(d, &rng)))
        XCTAssertEqual(backward(.w2, dout, a, notPD, d, threads: 1).0, Int32(MML_ERR_LAPACK))
        XCTAssertEqual(backward(.kl(MML_KL_QUERY_CLASS), dout, notPD, b, d, threads: 1).0, Int32(MML_ERR_LAPACK))
        XCTAssertEqual(backward(.kl(MML_KL_QUERY_CLASS), dout, a, b, d, threads: 1).0, Int32(MML_OK))
    }
}

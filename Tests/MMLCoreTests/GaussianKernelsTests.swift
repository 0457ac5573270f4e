import MMLCore
import MMLKernels
import XCTest

/// The Swift wrappers of the Gaussian kernels: results against the naive C twins and every user-facing message.
final class GaussianKernelsTests: XCTestCase {
    struct Gen {
        var s: UInt64
        mutating func next() -> Float {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(s >> 40) / Float(1 << 24) - 0.5
        }
    }

    func makeMaps(_ n: Int, _ c: Int, _ h: Int, _ w: Int, seed: UInt64) -> Tensor {
        var g = Gen(s: seed)
        return Tensor(shape: [n, c, h, w], data: (0..<(n * c * h * w)).map { _ in g.next() })
    }

    func testFitAndDistancesMatchNaiveTwins() throws {
        let maps = makeMaps(6, 5, 3, 4, seed: 1)
        let sets = [[0], [1], [2], [3, 4, 5], [5, 0]]
        let fitted = try GaussianKernels.fit(maps: maps, sets: sets, eps: 0.01, threads: 2)
        XCTAssertEqual(fitted.mean.shape, [5, 5])
        XCTAssertEqual(fitted.covariance.shape, [5, 5, 5])
        var mu = [Double](repeating: 0, count: 25), sigma = [Double](repeating: 0, count: 125)
        let index: [Int64] = [0, 1, 2, 3, 4, 5, 5, 0], offsets: [Int64] = [0, 1, 2, 3, 6, 8]
        XCTAssertEqual(mml_gaussian_fit_maps_naive(&mu, &sigma, maps.data, 6, 5, 12, index, offsets, 5, 0.01), Int32(MML_OK))
        for k in 0..<125 { XCTAssertEqual(Double(fitted.covariance.data[k]), sigma[k], accuracy: 1e-6 + 1e-5 * abs(sigma[k])) }
        for k in 0..<25 { XCTAssertEqual(Double(fitted.mean.data[k]), mu[k], accuracy: 1e-6) }

        let q = GaussianKernels.Gaussians(mean: Tensor(shape: [3, 5], data: Array(fitted.mean.data[0..<15])),
                                          covariance: Tensor(shape: [3, 5, 5], data: Array(fitted.covariance.data[0..<75])))
        let c = GaussianKernels.Gaussians(mean: Tensor(shape: [2, 5], data: Array(fitted.mean.data[15...])),
                                          covariance: Tensor(shape: [2, 5, 5], data: Array(fitted.covariance.data[75...])))
        let kinds: [GaussianKernels.Distance] = [.wasserstein2, .kl(.queryClass), .kl(.classQuery), .kl(.symmetric), .mmlv1]
        for kind in kinds {
            let out = try GaussianKernels.distances(kind, queries: q, classes: c, threads: 2)
            XCTAssertEqual(out.shape, [3, 2])
            var ref = [Double](repeating: 0, count: 6)
            let (qm, qs, cm, cs) = (q.mean.data, q.covariance.data, c.mean.data, c.covariance.data)
            switch kind {
            case .wasserstein2: _ = mml_gaussian_w2_naive(&ref, qm, qs, 3, cm, cs, 2, 5)
            case .kl(.queryClass): _ = mml_gaussian_kl_naive(&ref, qm, qs, 3, cm, cs, 2, 5, MML_KL_QUERY_CLASS)
            case .kl(.classQuery): _ = mml_gaussian_kl_naive(&ref, qm, qs, 3, cm, cs, 2, 5, MML_KL_CLASS_QUERY)
            case .kl(.symmetric): _ = mml_gaussian_kl_naive(&ref, qm, qs, 3, cm, cs, 2, 5, MML_KL_SYMMETRIC)
            case .mmlv1: _ = mml_gaussian_mmlv1_naive(&ref, qm, qs, 3, cm, cs, 2, 5)
            }
            for k in 0..<6 { XCTAssertEqual(Double(out.data[k]), ref[k], accuracy: 1e-5 + 1e-4 * abs(ref[k]), "\(kind)") }
            // Backward through the wrapper equals the C kernel's.
            let dout = Tensor(shape: [3, 2], data: [1, -2, 0.5, 0, 3, -1])
            let grads = try GaussianKernels.distancesBackward(kind, outputGradient: dout, queries: q, classes: c, threads: 1)
            var dqs = [Float](repeating: 0, count: 75)
            switch kind {
            case .wasserstein2: _ = mml_gaussian_w2_backward_f32(nil, &dqs, nil, nil, dout.data, qm, qs, 3, cm, cs, 2, 5, 1)
            case .kl(let dir):
                let cd = dir == .queryClass ? MML_KL_QUERY_CLASS : dir == .classQuery ? MML_KL_CLASS_QUERY : MML_KL_SYMMETRIC
                _ = mml_gaussian_kl_backward_f32(nil, &dqs, nil, nil, dout.data, qm, qs, 3, cm, cs, 2, 5, cd, 1)
            case .mmlv1: _ = mml_gaussian_mmlv1_backward_f32(nil, &dqs, nil, nil, dout.data, qm, qs, 3, cm, cs, 2, 5, 1)
            }
            XCTAssertEqual(grads.queries.covariance.data, dqs, "\(kind)")
        }
        var dmaps = Tensor(shape: maps.shape)
        try GaussianKernels.fitBackward(maps: maps, sets: sets, fitted: fitted, meanGradient: fitted.mean,
                                        covarianceGradient: nil, into: &dmaps)
        // dmu / n per column: image 1 (set 1 only, n = 12) gets mean/12 in every position of channel 0.
        XCTAssertEqual(dmaps.data[1 * 60], fitted.mean.data[1 * 5] / 12, accuracy: 1e-7)
    }

    func assertThrows(_ body: @autoclosure () throws -> Any, kind: MMLError.Kind, contains parts: [String],
                      file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected an MMLError", file: file, line: line)
        } catch let e as MMLError {
            XCTAssertEqual(e.kind, kind, e.message, file: file, line: line)
            for p in parts { XCTAssertTrue(e.message.contains(p), "'\(e.message)' lacks '\(p)'", file: file, line: line) }
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
    }

    func testFitErrorMessages() {
        let maps = makeMaps(3, 2, 1, 1, seed: 2)
        assertThrows(try GaussianKernels.fit(maps: maps, sets: [[0, 1], [2]], eps: 0.01), kind: .datasetTooSmall,
                     contains: ["set 1 has 1 image(s) x 1 position(s) = 1 descriptor(s)", "at least 2"])
        assertThrows(try GaussianKernels.fit(maps: maps, sets: [[0, 3]], eps: 0.01), kind: .invalidArgument,
                     contains: ["set 0 refers to image 3", "3 images"])
        assertThrows(try GaussianKernels.fit(maps: maps, sets: [[0, 1]], eps: -1), kind: .invalidArgument,
                     contains: ["eps must be finite and >= 0, got -1.0"])
        assertThrows(try GaussianKernels.fit(maps: maps, sets: [], eps: 0.01), kind: .invalidArgument, contains: ["no sets"])
        var bad = makeMaps(2, 3, 2, 2, seed: 3)
        bad.data[1 * 12 + 2 * 4 + 3] = .nan
        assertThrows(try GaussianKernels.fit(maps: bad, sets: [[0], [1]], eps: 0.01), kind: .numerical,
                     contains: ["NaN at image 1, channel 2, position 3"])
    }

    func testDistanceErrorMessages() throws {
        let maps = makeMaps(4, 3, 2, 3, seed: 4)
        let fitted = try GaussianKernels.fit(maps: maps, sets: [[0], [1], [2], [3]], eps: 0.01)
        var q = fitted
        // Query 1: identity with a zero in position (2, 2): Cholesky fails at column 2.
        for k in 0..<9 { q.covariance.data[9 + k] = k % 4 == 0 ? 1 : 0 }
        q.covariance.data[9 + 8] = 0
        for kind: GaussianKernels.Distance in [.wasserstein2, .kl(.queryClass)] {
            assertThrows(try GaussianKernels.distances(kind, queries: q, classes: fitted), kind: .numerical,
                         contains: ["covariance of query 1 is not positive definite (Cholesky failed at column 2); raise eps"])
        }
        var c = fitted
        c.mean.data[3 * 3 + 1] = .infinity
        assertThrows(try GaussianKernels.distances(.mmlv1, queries: fitted, classes: c), kind: .numerical,
                     contains: ["mean of class 3 holds NaN/Inf"])
        c = fitted
        c.covariance.data[2 * 9 + 5] = .nan
        assertThrows(try GaussianKernels.distances(.kl(.symmetric), queries: fitted, classes: c), kind: .numerical,
                     contains: ["covariance of class 2 at (1, 2) holds NaN/Inf"])
        let dout = Tensor(shape: [4, 4], data: [Float](repeating: .nan, count: 16))
        assertThrows(try GaussianKernels.distancesBackward(.wasserstein2, outputGradient: dout, queries: fitted, classes: fitted),
                     kind: .numerical, contains: ["output gradient holds NaN/Inf"])
        assertThrows(try GaussianKernels.distancesBackward(.kl(.queryClass), outputGradient: Tensor(shape: [4, 4]),
                                                           queries: q, classes: fitted),
                     kind: .numerical, contains: ["covariance of query 1 is not positive definite"])
    }
}

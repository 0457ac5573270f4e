import MMLKernels
import MMLTestSupport
import XCTest

/// The Gaussian fit from channel-major maps against its naive double twin, its backward against finite
/// differences, and its error codes.
final class GaussFitTests: XCTestCase {
    struct Case {
        var nImages: Int, d: Int, hw: Int
        var index: [Int64]?
        var offsets: [Int64]
    }

    func fitBoth(_ maps: [Float], _ c: Case, eps: Float, threads: Int32) -> ([Float], [Float], [Double], [Double]) {
        let ns = c.offsets.count - 1
        var mu = [Float](repeating: 0, count: ns * c.d), sigma = [Float](repeating: 0, count: ns * c.d * c.d)
        var muN = [Double](repeating: 0, count: ns * c.d), sigmaN = [Double](repeating: 0, count: ns * c.d * c.d)
        let st = mml_gaussian_fit_maps_f32(&mu, &sigma, maps, Int64(c.nImages), Int64(c.d), Int64(c.hw), c.index,
                                           c.offsets, Int64(ns), eps, threads)
        XCTAssertEqual(st, Int32(MML_OK))
        let sn = mml_gaussian_fit_maps_naive(&muN, &sigmaN, maps, Int64(c.nImages), Int64(c.d), Int64(c.hw), c.index,
                                             c.offsets, Int64(ns), Double(eps))
        XCTAssertEqual(sn, Int32(MML_OK))
        return (mu, sigma, muN, sigmaN)
    }

    func testFitMatchesNaive() {
        var rng = TestRNG(seed: 11)
        for d in [1, 3, 17, 64] {
            for hw in [1, 5, 441] {
                let nImages = 7
                // Query-like singletons, a permuted multi-image class, and a set that shares images with others.
                var index: [Int64] = [2, 0, 5, 1, 3]
                var offsets: [Int64] = hw > 1 ? [0, 1, 2, 5] : [0, 2, 5]  // hw = 1: several images per set
                if hw > 1 { index += [6]; offsets.append(6) }  // a single image is a valid set only when hw >= 2
                index += [4, 2, 6, 0]
                offsets.append(Int64(index.count))
                let maps = rng.normals(nImages * d * hw).enumerated().map { $0.element + Float($0.offset % 3) }
                let c = Case(nImages: nImages, d: d, hw: hw, index: index, offsets: offsets)
                let (mu, sigma, muN, sigmaN) = fitBoth(maps, c, eps: 0.01, threads: 2)
                assertClose(mu, muN, atol: 1e-5, rtol: 1e-5, "mu d=\(d) hw=\(hw)")
                assertClose(sigma, sigmaN, atol: 2e-5, rtol: 1e-4, "sigma d=\(d) hw=\(hw)")
                // Symmetric and with eps on the diagonal (naive includes it too, so check one entry by hand).
                for i in 0..<d { for j in 0..<d { XCTAssertEqual(sigma[i * d + j], sigma[j * d + i]) } }
            }
        }
    }

    func testFitDefaultIndexAndExtremes() {
        // image_index NULL means 0, 1, 2, ...; a spike at the first and last position of the last image.
        var rng = TestRNG(seed: 12)
        let d = 5, hw = 3, nImages = 4
        var maps = rng.normals(nImages * d * hw)
        maps[0] = 1000
        maps[maps.count - 1] = -1000
        let c = Case(nImages: nImages, d: d, hw: hw, index: nil, offsets: [0, 1, 4])
        let (mu, sigma, muN, sigmaN) = fitBoth(maps, c, eps: 0.5, threads: 1)
        assertClose(mu, muN, atol: 1e-4, rtol: 1e-5, "mu")
        assertClose(sigma, sigmaN, atol: 1e-2, rtol: 1e-5, "sigma")
        // Hand check of one variance: set 0 is image 0, channel 1 has the 3 values maps[3..<6].
        let x = maps[3..<6].map(Double.init), m = x.reduce(0, +) / 3
        let v = x.map { ($0 - m) * ($0 - m) }.reduce(0, +) / 2 + 0.5
        XCTAssertEqual(Double(sigma[1 * d + 1]), v, accuracy: 1e-4 * max(1, v))
    }

    func testFitThreadCountDoesNotChangeResults() {
        var rng = TestRNG(seed: 13)
        let d = 17, hw = 29, nImages = 9
        let maps = rng.normals(nImages * d * hw)
        let c = Case(nImages: nImages, d: d, hw: hw, index: [8, 1, 2, 3, 4, 5, 6, 7, 0, 3, 5],
                     offsets: [0, 1, 2, 3, 4, 5, 6, 7, 8, 11])
        let one = fitBoth(maps, c, eps: 0.01, threads: 1), two = fitBoth(maps, c, eps: 0.01, threads: 2)
        assertBitwiseEqual(one.0, two.0, "mu")
        assertBitwiseEqual(one.1, two.1, "sigma")
        let many = fitBoth(maps, c, eps: 0.01, threads: 0)
        assertBitwiseEqual(one.1, many.1, "sigma, all cores")
    }

    /// L = sum dmu . mu + sum dsigma . sigma is quadratic in the maps, so central differences are exact up to
    /// rounding; the naive double forward gives the reference.
    func testFitBackwardMatchesFiniteDifferences() {
        var rng = TestRNG(seed: 14)
        let d = 3, hw = 4, nImages = 4
        let maps = rng.normals(nImages * d * hw)
        let index: [Int64] = [1, 3, 0, 1, 2]  // image 1 is shared by two sets
        let offsets: [Int64] = [0, 2, 3, 5]
        let ns = 3
        let dmu = rng.normals(ns * d), dsigma = rng.normals(ns * d * d)  // not symmetric on purpose
        var mu = [Float](repeating: 0, count: ns * d), sigma = [Float](repeating: 0, count: ns * d * d)
        XCTAssertEqual(mml_gaussian_fit_maps_f32(&mu, &sigma, maps, Int64(nImages), Int64(d), Int64(hw), index, offsets,
                                                 Int64(ns), 0.01, 1), Int32(MML_OK))
        for (useMu, useSigma) in [(true, true), (true, false), (false, true)] {
            var dmaps = [Float](repeating: 0.25, count: maps.count)  // += semantics: starts non-zero
            let st = mml_gaussian_fit_maps_backward_f32(&dmaps, useMu ? dmu : nil, useSigma ? dsigma : nil, maps, mu,
                                                        Int64(nImages), Int64(d), Int64(hw), index, offsets,
                                                        Int64(ns), 2)
            XCTAssertEqual(st, Int32(MML_OK))
            func loss(_ m: [Float]) -> Double {
                var muN = [Double](repeating: 0, count: ns * d), sN = [Double](repeating: 0, count: ns * d * d)
                _ = mml_gaussian_fit_maps_naive(&muN, &sN, m, Int64(nImages), Int64(d), Int64(hw), index, offsets,
                                                Int64(ns), 0.01)
                var l = 0.0
                if useMu { for k in 0..<muN.count { l += Double(dmu[k]) * muN[k] } }
                if useSigma { for k in 0..<sN.count { l += Double(dsigma[k]) * sN[k] } }
                return l
            }
            var fd = [Double](repeating: 0, count: maps.count)
            for k in 0..<maps.count {
                var p = maps, m = maps
                p[k] += 0.0625
                m[k] -= 0.0625
                fd[k] = (loss(p) - loss(m)) / (Double(p[k]) - Double(m[k])) + 0.25
            }
            assertClose(dmaps, fd, atol: 1e-5, rtol: 1e-4, "dmaps mu=\(useMu) sigma=\(useSigma)")
        }
    }

    func testFitBackwardThreadCountDoesNotChangeResults() {
        var rng = TestRNG(seed: 15)
        let d = 7, hw = 11, nImages = 5, ns = 4
        let maps = rng.normals(nImages * d * hw)
        let index: [Int64] = [0, 1, 2, 2, 3, 4, 0, 2]
        let offsets: [Int64] = [0, 1, 3, 6, 8]
        var mu = [Float](repeating: 0, count: ns * d), sigma = [Float](repeating: 0, count: ns * d * d)
        _ = mml_gaussian_fit_maps_f32(&mu, &sigma, maps, Int64(nImages), Int64(d), Int64(hw), index, offsets,
                                      Int64(ns), 0.01, 1)
        let dmu = rng.normals(ns * d), dsigma = rng.normals(ns * d * d)
        var a = [Float](repeating: 0, count: maps.count), b = a
        _ = mml_gaussian_fit_maps_backward_f32(&a, dmu, dsigma, maps, mu, Int64(nImages), Int64(d), Int64(hw), index,
                                               offsets, Int64(ns), 1)
        _ = mml_gaussian_fit_maps_backward_f32(&b, dmu, dsigma, maps, mu, Int64(nImages), Int64(d), Int64(hw), index,
                                               offsets, Int64(ns), 2)
        assertBitwiseEqual(a, b, "dmaps")
    }

    func testFitErrorCodes() {
        let d = 2, hw = 3
        var maps = [Float](repeating: 1, count: 2 * d * hw)
        maps[1] = 2
        var mu = [Float](repeating: 0, count: 2 * d), sigma = [Float](repeating: 0, count: 2 * d * d)
        var muN = [Double](repeating: 0, count: 2 * d), sigmaN = [Double](repeating: 0, count: 2 * d * d)
        let ok: [Int64] = [0, 1, 2]
        func fast(_ m: [Float], _ nImg: Int64, _ dd: Int64, _ h: Int64, _ idx: [Int64]?, _ off: [Int64], _ ns: Int64,
                  _ eps: Float = 0.01) -> Int32 {
            mml_gaussian_fit_maps_f32(&mu, &sigma, m, nImg, dd, h, idx, off, ns, eps, 1)
        }
        func naive(_ m: [Float], _ nImg: Int64, _ dd: Int64, _ h: Int64, _ idx: [Int64]?, _ off: [Int64],
                   _ ns: Int64, _ eps: Double = 0.01) -> Int32 {
            mml_gaussian_fit_maps_naive(&muN, &sigmaN, m, nImg, dd, h, idx, off, ns, eps)
        }
        XCTAssertEqual(fast(maps, 2, 2, 3, nil, ok, 2), Int32(MML_OK))
        let arg = Int32(MML_ERR_ARGUMENT)
        XCTAssertEqual(fast(maps, 2, 0, 3, nil, ok, 2), arg)
        XCTAssertEqual(fast(maps, 2, 2, -1, nil, ok, 2), arg)
        XCTAssertEqual(fast(maps, 2, 2, 3, nil, ok, 0), arg)
        XCTAssertEqual(fast(maps, 2, 2, 3, [0, 2], ok, 2), arg)  // image id out of range
        XCTAssertEqual(fast(maps, 2, 2, 3, nil, [0, 2, 1], 2), arg)  // decreasing offsets
        XCTAssertEqual(fast(maps, 2, 2, 3, nil, ok, 2, -1), arg)  // negative eps
        XCTAssertEqual(naive(maps, 2, 2, 3, [0, -1], ok, 2), arg)
        XCTAssertEqual(mml_gaussian_fit_maps_f32(nil, &sigma, maps, 2, 2, 3, nil, ok, 2, 0.01, 1), arg)
        let empty = Int32(MML_ERR_EMPTY_GROUP)
        XCTAssertEqual(fast(maps, 2, 2, 3, nil, [0, 0, 2], 2), empty)  // no image
        XCTAssertEqual(fast(maps, 2, 2, 1, nil, [0, 1, 2], 2), empty)  // one descriptor
        XCTAssertEqual(naive(maps, 2, 2, 1, nil, [0, 1, 2], 2), empty)
        var bad = maps
        bad[bad.count - 1] = .nan
        XCTAssertEqual(fast(bad, 2, 2, 3, nil, ok, 2), Int32(MML_ERR_NONFINITE))
        XCTAssertEqual(naive(bad, 2, 2, 3, nil, ok, 2), Int32(MML_ERR_NONFINITE))
        bad[bad.count - 1] = .infinity
        XCTAssertEqual(fast(bad, 2, 2, 3, nil, ok, 2), Int32(MML_ERR_NONFINITE))
        var dmaps = [Float](repeating: 0, count: maps.count)
        XCTAssertEqual(mml_gaussian_fit_maps_backward_f32(&dmaps, mu, nil, maps, mu, 2, 2, 3, [0, 5], ok, 2, 1), arg)
        XCTAssertEqual(mml_gaussian_fit_maps_backward_f32(&dmaps, mu, nil, maps, nil, 2, 2, 3, nil, ok, 2, 1), arg)
        XCTAssertEqual(mml_gaussian_fit_maps_backward_f32(&dmaps, mu, nil, maps, mu, 2, 2, 1, nil, ok, 2, 1), empty)
    }
}

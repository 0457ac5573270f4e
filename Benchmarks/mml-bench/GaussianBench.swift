import Foundation
import MMLCore
import MMLKernels

/// Rows of `mml-bench kernels` for the Gaussian statistics and distances (distribution level), on one 5-way
/// 5-shot episode with 15 queries per class at Conv-64F size: 75 query maps and 25 support maps of 64 x 21 x 21.
/// Each fast kernel is timed next to its naive double twin (ratio = naive / fast).
func gaussianBenchRows(arguments: [String]) -> [BenchRow] {
    let d = 64, hw = 441, nq = 75, way = 5, shot = 5
    let nImages = nq + way * shot
    var rng = SeededRNG(seed: 7)
    let maps = (0..<(nImages * d * hw)).map { _ in max(0, rng.nextFloat() * 2 - 0.5) }  // ReLU-like features
    // Sets 0..<75: one query image each; sets 75..<80: the five support images of a class.
    let index = (0..<nImages).map(Int64.init)
    let offsets = (0...nq).map(Int64.init) + (1...way).map { Int64(nq + $0 * shot) }
    let nSets = nq + way
    var mu = [Float](repeating: 0, count: nSets * d), sigma = [Float](repeating: 0, count: nSets * d * d)
    var muN = [Double](repeating: 0, count: nSets * d), sigmaN = [Double](repeating: 0, count: nSets * d * d)
    var rows: [BenchRow] = []

    let fitFlops = 2.0 * Double(d * d) * Double(nImages * hw)
    let tFit = measure(repeats: 11) {
        _ = mml_gaussian_fit_maps_f32(&mu, &sigma, maps, Int64(nImages), Int64(d), Int64(hw), index, offsets,
                                      Int64(nSets), 0.01, 0)
    }
    let tFitNaive = measure(repeats: 1) {
        _ = mml_gaussian_fit_maps_naive(&muN, &sigmaN, maps, Int64(nImages), Int64(d), Int64(hw), index, offsets,
                                        Int64(nSets), 0.01)
    }
    rows.append(BenchRow(name: "gauss fit episode 80 sets d=64 (75x441, 5x2205)", seconds: tFit,
                         gflops: fitFlops / tFit / 1e9, ratio: tFitNaive / tFit,
                         peer: "dist_score/fp32/5shot/fit_gaussians"))
    rows.append(BenchRow(name: "gauss fit episode, naive double", seconds: tFitNaive, gflops: nil, ratio: nil))

    let muA = Array(mu[0..<(nq * d)]), sigA = Array(sigma[0..<(nq * d * d)])
    let muB = Array(mu[(nq * d)...]), sigB = Array(sigma[(nq * d * d)...])
    var out = [Float](repeating: 0, count: nq * way), outN = [Double](repeating: 0, count: nq * way)
    func row(_ name: String, peer: String? = nil, fast: @escaping () -> Void, naive: @escaping () -> Void) {
        let t = measure(repeats: 11, fast), tn = measure(repeats: 2, naive)
        rows.append(BenchRow(name: name, seconds: t, gflops: nil, ratio: tn / t, peer: peer))
        rows.append(BenchRow(name: name + ", naive double", seconds: tn, gflops: nil, ratio: nil))
    }
    let (na, nb, dd) = (Int64(nq), Int64(way), Int64(d))
    row("gauss w2 75x5 d=64", peer: "dist_score/fp32/5shot/w2_eigh", fast: { _ = mml_gaussian_w2_f32(&out, muA, sigA, na, muB, sigB, nb, dd, 0) },
        naive: { _ = mml_gaussian_w2_naive(&outN, muA, sigA, na, muB, sigB, nb, dd) })
    for (dir, label) in [(MML_KL_QUERY_CLASS, "query||class"), (MML_KL_CLASS_QUERY, "class||query"),
                         (MML_KL_SYMMETRIC, "symmetric")] {
        row("gauss kl \(label) 75x5 d=64", peer: dir == MML_KL_QUERY_CLASS ? "dist_score/fp32/5shot/kl_chol" : nil,
            fast: { _ = mml_gaussian_kl_f32(&out, muA, sigA, na, muB, sigB, nb, dd, dir, 0) },
            naive: { _ = mml_gaussian_kl_naive(&outN, muA, sigA, na, muB, sigB, nb, dd, dir) })
    }
    row("gauss mmlv1 75x5 d=64", fast: { _ = mml_gaussian_mmlv1_f32(&out, muA, sigA, na, muB, sigB, nb, dd, 0) },
        naive: { _ = mml_gaussian_mmlv1_naive(&outN, muA, sigA, na, muB, sigB, nb, dd) })
    row("gauss w2 + kl(query||class) 75x5 d=64 (target <= 15 ms)",
        fast: {
            _ = mml_gaussian_w2_f32(&out, muA, sigA, na, muB, sigB, nb, dd, 0)
            _ = mml_gaussian_kl_f32(&out, muA, sigA, na, muB, sigB, nb, dd, MML_KL_QUERY_CLASS, 0)
        },
        naive: {
            _ = mml_gaussian_w2_naive(&outN, muA, sigA, na, muB, sigB, nb, dd)
            _ = mml_gaussian_kl_naive(&outN, muA, sigA, na, muB, sigB, nb, dd, MML_KL_QUERY_CLASS)
        })

    // The same W2 + KL as CPU seconds (all threads) per call: on a shared machine this is steadier than wall time,
    // and CPU / cores is the wall time an idle machine would give with perfect scaling.
    var usage = rusage()
    func cpuSeconds() -> Double {
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) * 1e-6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) * 1e-6
    }
    let c0 = cpuSeconds()
    for _ in 0..<10 {
        _ = mml_gaussian_w2_f32(&out, muA, sigA, na, muB, sigB, nb, dd, 0)
        _ = mml_gaussian_kl_f32(&out, muA, sigA, na, muB, sigB, nb, dd, MML_KL_QUERY_CLASS, 0)
    }
    rows.append(BenchRow(name: "gauss w2 + kl(query||class), CPU time of all threads", seconds: (cpuSeconds() - c0) / 10,
                         gflops: nil, ratio: nil))

    // Backward passes (training), no naive twin: reference is the forward of the same distance.
    let dout = (0..<(nq * way)).map { _ in rng.nextFloat() - 0.5 }
    var dma = [Float](repeating: 0, count: muA.count), dsa = [Float](repeating: 0, count: sigA.count)
    var dmb = [Float](repeating: 0, count: muB.count), dsb = [Float](repeating: 0, count: sigB.count)
    let tW2b = measure(repeats: 5) {
        _ = mml_gaussian_w2_backward_f32(&dma, &dsa, &dmb, &dsb, dout, muA, sigA, na, muB, sigB, nb, dd, 0)
    }
    rows.append(BenchRow(name: "gauss w2 backward 75x5 d=64", seconds: tW2b, gflops: nil, ratio: nil))
    let tKLb = measure(repeats: 5) {
        _ = mml_gaussian_kl_backward_f32(&dma, &dsa, &dmb, &dsb, dout, muA, sigA, na, muB, sigB, nb, dd,
                                         MML_KL_SYMMETRIC, 0)
    }
    rows.append(BenchRow(name: "gauss kl symmetric backward 75x5 d=64", seconds: tKLb, gflops: nil, ratio: nil))
    var dmaps = [Float](repeating: 0, count: maps.count)
    let dsig = (0..<sigma.count).map { _ in rng.nextFloat() - 0.5 }
    let tFitb = measure(repeats: 5) {
        _ = mml_gaussian_fit_maps_backward_f32(&dmaps, mu, dsig, maps, mu, Int64(nImages), Int64(d), Int64(hw),
                                               index, offsets, Int64(nSets), 0)
    }
    rows.append(BenchRow(name: "gauss fit backward episode", seconds: tFitb, gflops: 2 * fitFlops / tFitb / 1e9,
                         ratio: nil))
    rows += lowRankKLRows()
    return rows
}

/// Evaluation's KL at ResNet-12's shape (5-way 1-shot and 5-shot, 15 queries per class, 640 x 5 x 5 maps): the
/// low-rank form from the maps (`mml_gaussian_kl_maps_lowrank_f32`, what `DistributionLevel` scores with there)
/// against the dense fit + KL it replaces (ratio = dense / low-rank), all threads; then training's backward to the
/// maps the same way (`mml_gaussian_kl_maps_lowrank_backward_f32` against KL backward + two fit backwards).
func lowRankKLRows() -> [BenchRow] {
    let d = 640, hw = 25, nq = 75, way = 5
    var rng = SeededRNG(seed: 8)
    var rows: [BenchRow] = []
    for shot in [1, 5] {
        let nImages = nq + way * shot
        let maps = (0..<(nImages * d * hw)).map { _ in max(0, rng.nextFloat() * 2 - 0.5) }
        let qOff = (0...nq).map(Int64.init), cOff = (0...way).map { Int64($0 * shot) }
        var muQ = [Float](repeating: 0, count: nq * d), sgQ = [Float](repeating: 0, count: nq * d * d)
        var muC = [Float](repeating: 0, count: way * d), sgC = [Float](repeating: 0, count: way * d * d)
        var out = [Float](repeating: 0, count: nq * way)
        let classMaps = Array(maps[(nq * d * hw)...])
        let tDense = measure(repeats: quickBench ? 1 : 3) {
            _ = mml_gaussian_fit_maps_f32(&muQ, &sgQ, maps, Int64(nq), Int64(d), Int64(hw), nil, qOff, Int64(nq), 0.01, 0)
            _ = mml_gaussian_fit_maps_f32(&muC, &sgC, classMaps, Int64(way * shot), Int64(d), Int64(hw), nil, cOff,
                                          Int64(way), 0.01, 0)
            _ = mml_gaussian_kl_f32(&out, muQ, sgQ, Int64(nq), muC, sgC, Int64(way), Int64(d), MML_KL_QUERY_CLASS, 0)
        }
        let tLow = measure(repeats: quickBench ? 1 : 7) {
            _ = mml_gaussian_kl_maps_lowrank_f32(&out, maps, Int64(nq), nil, qOff, Int64(nq), classMaps,
                                                 Int64(way * shot), nil, cOff, Int64(way), Int64(d), Int64(hw), 0.01,
                                                 MML_KL_QUERY_CLASS, 0)
        }
        rows.append(BenchRow(name: "gauss kl low-rank from maps 75x5 d=640 n=25/\(25 * shot) (\(shot)-shot)",
                             seconds: tLow, gflops: nil, ratio: tDense / tLow))
        rows.append(BenchRow(name: "gauss fit + kl dense, the same sets", seconds: tDense, gflops: nil, ratio: nil))
        // training's backward: dL/dmaps given dL/dKL, the dense chain (KL backward, two fit backwards; the forward's
        // fits above are its inputs) against the low-rank backward (which refits in n x n form)
        let dout = (0..<(nq * way)).map { _ in rng.nextFloat() - 0.5 }
        var dmQ = [Float](repeating: 0, count: nq * d), dsQ = [Float](repeating: 0, count: nq * d * d)
        var dmC = [Float](repeating: 0, count: way * d), dsC = [Float](repeating: 0, count: way * d * d)
        var gQ = [Float](repeating: 0, count: nq * d * hw), gC = [Float](repeating: 0, count: way * shot * d * hw)
        let tDenseBack = measure(repeats: quickBench ? 1 : 3) {
            _ = mml_gaussian_kl_backward_f32(&dmQ, &dsQ, &dmC, &dsC, dout, muQ, sgQ, Int64(nq), muC, sgC, Int64(way),
                                             Int64(d), MML_KL_QUERY_CLASS, 0)
            _ = mml_gaussian_fit_maps_backward_f32(&gQ, dmQ, dsQ, maps, muQ, Int64(nq), Int64(d), Int64(hw), nil, qOff,
                                                   Int64(nq), 0)
            _ = mml_gaussian_fit_maps_backward_f32(&gC, dmC, dsC, classMaps, muC, Int64(way * shot), Int64(d),
                                                   Int64(hw), nil, cOff, Int64(way), 0)
        }
        let tLowBack = measure(repeats: quickBench ? 1 : 7) {
            _ = mml_gaussian_kl_maps_lowrank_backward_f32(&gQ, &gC, dout, maps, Int64(nq), nil, qOff, Int64(nq),
                                                          classMaps, Int64(way * shot), nil, cOff, Int64(way),
                                                          Int64(d), Int64(hw), 0.01, MML_KL_QUERY_CLASS, 0)
        }
        rows.append(BenchRow(name: "gauss kl low-rank backward to maps, the same sets (\(shot)-shot)",
                             seconds: tLowBack, gflops: nil, ratio: tDenseBack / tLowBack))
        rows.append(BenchRow(name: "gauss kl + fit backward dense, the same sets", seconds: tDenseBack, gflops: nil,
                             ratio: nil))
    }
    return rows
}

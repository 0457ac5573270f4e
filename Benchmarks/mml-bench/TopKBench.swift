import COpenBLAS
import Foundation
import MMLCore
import MMLKernels

/// Rows of `mml-bench kernels` for the grouped top-K similarity (pixel level), next to plain sgemm.
///
/// For the DN4 5-way 5-shot and 5-way 1-shot episode shapes (75 queries x 441 descriptors against 5 classes of
/// shot x 441 descriptors, d = 64): plain cblas_sgemm of the whole product (the reference, ratio column blank),
/// the fused kernel for k = 3 (DN4) and k = 1 (MML), and sgemm followed by a separate top-k pass over the
/// stored product; ratios are GFLOP/s relative to the sgemm row of the same shape in the same run. A second
/// sgemm row computes the same product in row slices into a reused buffer, as a compute-bound reference.
/// The bf16 rows (k = 3, the opt-in evaluation precisions of issue 17 item 3) are the exception: their ratio is to
/// the fused fp32 top-3 row just above them (the target is >= 1.7), and each appears only where its fast
/// path runs (the portable twins are not timed: two fmaf calls per pair, slow):
///  - `fused top-3 bf16 (avx512bf16, vs f32)`, `mml_group_topk_sim_bf16`: VDPBF16PS. On Intel Emerald Rapids it
///    is SLOWER than fp32 (0.6-0.7x, busy machine): one zmm VDPBF16PS (32 multiply-adds) issues every 2 cycles
///    against two zmm FMAs (16 each) per cycle, so bf16 peaks at half the fp32 multiply-add rate; the 1.7x target
///    is for CPUs whose VDPBF16PS runs at the FMA rate (AMD Zen 5).
///  - `fused top-3 bf16amx (amx, vs f32)`, `mml_group_topk_sim_bf16amx`: AMX TDPBF16PS, 16 query rows x 16
///    columns x 16 pairs per instruction (CPUs with AMX-BF16, e.g. Sapphire / Emerald Rapids). A precision of its
///    own, not a path of bf16: TDPBF16PS adds a pair's products in two chains (even and odd elements) per 16-pair
///    block, so its bits are not VDPBF16PS's (scripts/check-amx-bf16.c: about a third of d = 64 unit-descriptor
///    dot products differ in the last bits). Not yet measured on an idle machine (written on a busy one).
/// Both are checked against the fp32 sums (within the bf16 rounding bound) before their row is printed.
func topKBenchRows(arguments: [String]) -> [BenchRow] {
    var rows: [BenchRow] = []
    for (name, way, shot) in [("pixel 5-way 5-shot", 5, 5), ("pixel 5-way 1-shot", 5, 1)] {
        let m = way * 15 * 441, perGroup = shot * 441, n = way * perGroup, d = 64
        var rng = SeededRNG(seed: 1)
        let q = (0..<(m * d)).map { _ in rng.nextFloat() - 0.5 }
        let r = (0..<(n * d)).map { _ in rng.nextFloat() - 0.5 }
        let group = (0..<n).map { Int32($0 / perGroup) }
        var c = [Float](repeating: 0, count: m * n)
        let flops = 2.0 * Double(m) * Double(n) * Double(d)
        let sg = measure(repeats: 5) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(d), 1, q, Int32(d),
                        r, Int32(d), 0, &c, Int32(n))
        }
        rows.append(BenchRow(name: "\(name) cblas_sgemm \(m)x\(n)x\(d)", seconds: sg, gflops: flops / sg / 1e9,
                             ratio: nil))
        let sgGflops = flops / sg / 1e9
        // The same product in 256-row slices into one reused, cache-resident C (compute-bound sgemm: the full
        // product above also pays for writing m x n floats to memory). Its ratio is to the full sgemm.
        let slice = 256
        var cs = [Float](repeating: 0, count: slice * n)
        let sgb = measure(repeats: 5) {
            q.withUnsafeBufferPointer { qb in
                for i0 in stride(from: 0, to: m, by: slice) {
                    let rows = min(slice, m - i0)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(n), Int32(d), 1,
                                qb.baseAddress! + i0 * d, Int32(d), r, Int32(d), 0, &cs, Int32(n))
                }
            }
        }
        rows.append(BenchRow(name: "\(name) cblas_sgemm in \(slice)-row slices, C reused", seconds: sgb,
                             gflops: flops / sgb / 1e9, ratio: flops / sgb / 1e9 / sgGflops))
        for k in [3, 1] {
            var out = [Float](repeating: 0, count: m * way)
            var status: Int32 = 0
            let fused = measure(repeats: 5) {
                status = mml_group_topk_sim_f32(&out, nil, nil, q, Int64(m), r, Int64(n), Int64(d), group,
                                                Int32(way), Int32(k), 0)
            }
            precondition(status == 0, "[bench] fused top-k failed with status \(status)")
            rows.append(BenchRow(name: "\(name) fused top-\(k) (\(BLASRuntime.kernelISA))", seconds: fused,
                                 gflops: flops / fused / 1e9, ratio: flops / fused / 1e9 / sgGflops,
                                 peer: k == 3 ? "dn4_score/\(shot)shot/batched" : nil))
            // The bf16 precisions' fast paths (the portable ones are not timed: two fmaf calls per pair), each
            // against the fp32 fused top-3 just above.
            let bf16Rows: [(String, Bool, TopKKernelFunction)] = [
                ("bf16 (avx512bf16", SimilarityKernels.bf16Path == "avx512bf16", mml_group_topk_sim_bf16),
                ("bf16amx (amx", SimilarityKernels.bf16amxPath == "amx", mml_group_topk_sim_bf16amx),
            ]
            for (label, fast, kernel) in bf16Rows where k == 3 && fast {
                var outb = [Float](repeating: 0, count: m * way)
                let bf = measure(repeats: 5) {
                    status = kernel(&outb, nil, nil, q, Int64(m), r, Int64(n), Int64(d), group, Int32(way), 3, 0)
                }
                precondition(status == 0, "[bench] \(label)) fused top-3 failed with status \(status)")
                rows.append(BenchRow(name: "\(name) fused top-3 \(label), vs f32)", seconds: bf,
                                     gflops: flops / bf / 1e9, ratio: fused / bf))
                // bf16 rounding moves each product by at most ~2^-8 of sum |q_p r_p| (<= d / 4 here), a top-3
                // sum by 3 times that
                let worst = zip(out, outb).map { abs($0 - $1) }.max() ?? 0
                precondition(worst <= 3 * Float(d) / 4 / 256 + 1e-3,
                             "[bench] \(label)) and f32 top-3 differ by \(worst)")
            }
            var out2 = [Float](repeating: 0, count: m * way)
            let twoPass = measure(repeats: 3) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(d), 1, q, Int32(d),
                            r, Int32(d), 0, &c, Int32(n))
                topKPass(&out2, c, m: m, n: n, groups: way, perGroup: perGroup, k: k)
            }
            rows.append(BenchRow(name: "\(name) sgemm + top-\(k) pass", seconds: twoPass,
                                 gflops: flops / twoPass / 1e9, ratio: flops / twoPass / 1e9 / sgGflops))
            // the two must agree (a benchmark of a wrong kernel is worthless)
            let worst = zip(out, out2).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            precondition(worst < 1e-3, "[bench] fused and two-pass top-\(k) differ by \(worst)")
        }
        if shot == 1 {  // the portable fallback, for scale (slow: one shape, k = 3)
            setenv("MML_KERNELS_ISA", "portable", 1)
            var out = [Float](repeating: 0, count: m * way)
            let t = measure(repeats: 3) {
                _ = mml_group_topk_sim_f32(&out, nil, nil, q, Int64(m), r, Int64(n), Int64(d), group, Int32(way), 3, 0)
            }
            unsetenv("MML_KERNELS_ISA")
            rows.append(BenchRow(name: "\(name) fused top-3 (portable C)", seconds: t, gflops: flops / t / 1e9,
                                 ratio: flops / t / 1e9 / sgGflops))
        }
    }
    rows += smallGroupRows()
    return rows
}

/// The small-group path (topk_lanes_avx512.c) against the panel path on an Omniglot training episode's pixel level:
/// 60-way 1-shot 5 queries at 28 x 28 (7 x 7 maps: 300 x 49 query rows against 60 classes of 49), k = 3, all
/// threads; ratio = panel time / lanes time; the two must give the same bits.
private func smallGroupRows() -> [BenchRow] {
    let way = 60, perGroup = 49, m = way * 5 * 49, n = way * perGroup, d = 64
    var rng = SeededRNG(seed: 2)
    let q = (0..<(m * d)).map { _ in rng.nextFloat() - 0.5 }
    let r = (0..<(n * d)).map { _ in rng.nextFloat() - 0.5 }
    let group = (0..<n).map { Int32($0 / perGroup) }
    let flops = 2.0 * Double(m) * Double(n) * Double(d)
    var results: [String: [Float]] = [:]
    var times: [String: Double] = [:]
    for mode in ["off", "auto"] {
        setenv("MML_TOPK_LANES", mode, 1)
        var out = [Float](repeating: 0, count: m * way)
        var status: Int32 = 0
        times[mode] = measure(repeats: 5) {
            status = mml_group_topk_sim_f32(&out, nil, nil, q, Int64(m), r, Int64(n), Int64(d), group, Int32(way), 3, 0)
        }
        precondition(status == 0, "[bench] small-group top-3 (\(mode)) failed with status \(status)")
        results[mode] = out
    }
    unsetenv("MML_TOPK_LANES")
    precondition(results["off"]!.map(\.bitPattern) == results["auto"]!.map(\.bitPattern),
                 "[bench] the lanes and panel paths differ")
    let name = "pixel 60-way 1-shot 28px fused top-3"
    return [BenchRow(name: "\(name), panel path", seconds: times["off"]!, gflops: flops / times["off"]! / 1e9,
                     ratio: nil),
            BenchRow(name: "\(name), lanes path (vs panels)", seconds: times["auto"]!,
                     gflops: flops / times["auto"]! / 1e9, ratio: times["off"]! / times["auto"]!)]
}

/// The C signature of the grouped top-K kernels (mml_group_topk_sim_f32 / _bf16 / _bf16amx).
private typealias TopKKernelFunction = @convention(c) (
    UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?,
    Int64, UnsafePointer<Float>?, Int64, Int64, UnsafePointer<Int32>?, Int32, Int32, Int32) -> Int32

/// A raw pointer shared with concurrentPerform's workers, each writing disjoint rows.
private struct SharedPointer<T>: @unchecked Sendable { let p: UnsafeMutablePointer<T> }
private struct SharedConst<T>: @unchecked Sendable { let p: UnsafePointer<T> }

/// The plain reference: for each stored row of the product and each contiguous group, a running top-k with a
/// threshold, rows split over the online cores.
private func topKPass(_ out: inout [Float], _ c: [Float], m: Int, n: Int, groups: Int, perGroup: Int, k: Int) {
    let cores = ProcessInfo.processInfo.activeProcessorCount
    out.withUnsafeMutableBufferPointer { ob in
        c.withUnsafeBufferPointer { cb in
            let o = SharedPointer(p: ob.baseAddress!), src = SharedConst(p: cb.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: cores) { w in
                var best = [Float](repeating: 0, count: k)
                for i in stride(from: w, to: m, by: cores) {
                    let row = src.p + i * n
                    for g in 0..<groups {
                        for t in 0..<k { best[t] = -.infinity }
                        for j in (g * perGroup)..<((g + 1) * perGroup) where row[j] > best[k - 1] {
                            var pos = k - 1
                            while pos > 0 && best[pos - 1] < row[j] { best[pos] = best[pos - 1]; pos -= 1 }
                            best[pos] = row[j]
                        }
                        var s = 0.0
                        for t in 0..<k { s += Double(best[t]) }
                        o.p[i * groups + g] = Float(s)
                    }
                }
            }
        }
    }
}

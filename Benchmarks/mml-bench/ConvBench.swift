import Foundation
import MMLCore
import MMLKernels

/// `mml-bench conv [--json] [--threads N] [--batch B (inference blocks, default 80)]`: the 3x3 stride-1 pad-1 convolution of the Conv-64F / Conv-4 blocks
/// (batch 80, 64 -> 64 channels at 42x42 and 21x21), im2col + packed SGEMM (mml_conv2d_*) against Winograd
/// F(2x2, 3x3) (mml_conv3x3_winograd_*) and F(4x4, 3x3) (the *_tile_* entry points with tile 4), forward and
/// backward data, each with a preallocated workspace as the layers use them. GFLOP/s count the direct
/// convolution's 2 * n * cout * c * 9 * h * w for all; ratio is the im2col time over the Winograd time. Then the
/// first layer in training (C = 3 at 84x84, C = 1 at 28x28): forward and weight gradient, im2col against the
/// direct kernels; and the inference blocks.
func runConvBench(json: Bool, arguments: [String]) {
    let threads = Int32(intOption(arguments, "--threads", 0))
    var rows: [BenchRow] = []
    var r = ConvBenchRng(state: 7)
    let firstLayerOnly = arguments.contains("--first-layer")
    if firstLayerOnly && arguments.contains("--batch") {
        fputs("mml-bench conv: --batch sets the inference blocks' batch, and --first-layer does not run them; drop one\n",
              stderr)
        exit(2)
    }
    for (n, c, h, w, co) in firstLayerOnly ? [] : [(80, 64, 42, 42, 64), (80, 64, 21, 21, 64)] {
        let (N, C, H, W, CO) = (Int64(n), Int64(c), Int64(h), Int64(w), Int64(co))
        let x = (0..<n * c * h * w).map { _ in r.float() }, wt = (0..<co * c * 9).map { _ in r.float() * 0.05 }
        let dy = (0..<n * co * h * w).map { _ in r.float() }
        var y = [Float](repeating: 0, count: dy.count), dx = [Float](repeating: 0, count: x.count)
        let needI = mml_conv2d_workspace_floats(N, C, H, W, CO, 3, 3, 1, 1, threads)
        let needW = mml_conv3x3_winograd_workspace_floats(N, C, H, W, CO, threads)
        let need4 = mml_conv3x3_winograd_tile_workspace_floats(N, C, H, W, CO, 4, threads)
        var wsI = [Float](repeating: 0, count: Int(needI)), wsW = [Float](repeating: 0, count: Int(needW))
        var ws4 = [Float](repeating: 0, count: Int(need4))
        let flops = 2.0 * Double(n * co * c * 9 * h * w)
        let shape = "\(n)x\(c)x\(h)x\(w)->\(co)"
        let repeats = 5
        let fi = measure(repeats: repeats) {
            _ = mml_conv2d_forward_f32(&y, x, wt, nil, N, C, H, W, CO, 3, 3, 1, 1, &wsI, needI, threads)
        }
        let fw = measure(repeats: repeats) {
            _ = mml_conv3x3_winograd_forward_f32(&y, x, wt, N, C, H, W, CO, &wsW, needW, threads)
        }
        let bi = measure(repeats: repeats) {
            _ = mml_conv2d_backward_f32(&dx, nil, nil, dy, x, wt, N, C, H, W, CO, 3, 3, 1, 1, &wsI, needI, threads)
        }
        let bw = measure(repeats: repeats) {
            _ = mml_conv3x3_winograd_backward_data_f32(&dx, dy, wt, N, C, H, W, CO, &wsW, needW, threads)
        }
        let f4 = measure(repeats: repeats) {
            _ = mml_conv3x3_winograd_tile_forward_f32(&y, x, wt, N, C, H, W, CO, 4, &ws4, need4, threads)
        }
        let b4 = measure(repeats: repeats) {
            _ = mml_conv3x3_winograd_tile_backward_data_f32(&dx, dy, wt, N, C, H, W, CO, 4, &ws4, need4, threads)
        }
        for (direction, im2col, winograd) in [("fwd", fi, [fw, f4]), ("bwd-data", bi, [bw, b4])] {
            rows.append(BenchRow(name: "conv3x3 \(direction) im2col+sgemm \(shape)", seconds: im2col,
                                 gflops: flops / im2col / 1e9, ratio: nil, items: n))
            for (tile, t) in zip(["F(2x2,3x3)", "F(4x4,3x3)"], winograd) {
                rows.append(BenchRow(name: "conv3x3 \(direction) winograd \(tile) \(shape)", seconds: t,
                                     gflops: flops / t / 1e9, ratio: im2col / t, items: n))
            }
        }
    }
    // The first layer in training (3x3 pad 1 over C = 3 at 84x84, batch 80, and C = 1 at 28x28, batch 120 as in
    // 20-way 1-shot Omniglot episodes with 5 queries): the forward (conv output only, as Conv2D.forward in training)
    // and the weight gradient, im2col + SGEMM against the direct kernels Conv2D uses there (the conv-block kernel
    // with an identity tail; mml_conv3x3_direct_backward_weight_f32) and the Winograd weight gradient; ratio =
    // im2col time / that row's time.
    for (n, c, h, co) in [(80, 3, 84, 64), (120, 1, 28, 64)] {
        let (N, C, H, W, CO) = (Int64(n), Int64(c), Int64(h), Int64(h), Int64(co))
        let x = (0..<n * c * h * h).map { _ in r.float() }, wt = (0..<co * c * 9).map { _ in r.float() * 0.05 }
        let dy = (0..<n * co * h * h).map { _ in r.float() }
        var y = [Float](repeating: 0, count: dy.count), dw = [Float](repeating: 0, count: wt.count)
        let ones = [Float](repeating: 1, count: co), zeros = [Float](repeating: 0, count: co)
        let needI = mml_conv2d_workspace_floats(N, C, H, W, CO, 3, 3, 1, 1, threads)
        let needB = mml_conv_block_workspace_floats(C, H, W, CO, 3, 1, N, threads)
        let needD = mml_conv3x3_direct_wgrad_workspace_floats(N, C, H, W, CO, threads)
        let needW = mml_conv3x3_wgrad_workspace_floats(N, C, H, W, CO, threads)
        var wsI = [Float](repeating: 0, count: Int(needI)), wsB = [Float](repeating: 0, count: Int(needB))
        var wsD = [Float](repeating: 0, count: Int(needD)), wsW = [Float](repeating: 0, count: Int(needW))
        let flops = 2.0 * Double(n * co * c * 9 * h * h)
        let shape = "\(n)x\(c)x\(h)x\(h)->\(co)"
        let fi = measure(repeats: 7) {
            _ = mml_conv2d_forward_f32(&y, x, wt, nil, N, C, H, W, CO, 3, 3, 1, 1, &wsI, needI, threads)
        }
        let fd = measure(repeats: 7) {
            _ = mml_conv_block_forward_f32(&y, x, wt, ones, zeros, N, C, H, W, CO, 3, 1, 1, 0, &wsB, needB, threads)
        }
        let gi = measure(repeats: 7) {
            _ = mml_conv2d_backward_f32(nil, &dw, nil, dy, x, wt, N, C, H, W, CO, 3, 3, 1, 1, &wsI, needI, threads)
        }
        let gw = measure(repeats: 7) {
            _ = mml_conv3x3_winograd_backward_weight_f32(&dw, dy, x, N, C, H, W, CO, &wsW, needW, threads)
        }
        let gd = measure(repeats: 7) {
            _ = mml_conv3x3_direct_backward_weight_f32(&dw, dy, x, N, C, H, W, CO, &wsD, needD, threads)
        }
        for (name, t, base) in [("first-layer fwd im2col+sgemm", fi, Double?.none), ("first-layer fwd direct", fd, fi),
                                ("first-layer dW im2col+sgemm", gi, nil), ("first-layer dW winograd", gw, gi),
                                ("first-layer dW direct", gd, gi)] {
            rows.append(BenchRow(name: "\(name) \(shape)", seconds: t, gflops: flops / t / 1e9,
                                 ratio: base.map { $0 / t }, items: n))
        }
    }
    // The inference blocks of Conv-64F at 84x84, batch 80, as ConvBlock runs them: conv + folded BN + leaky ReLU
    // (+ 2x2 max-pool), block 1 (C = 3) on the direct kernel (AVX-512; elsewhere the im2col-free GEMM in row
    // bands), blocks 2-4 on Winograd with the tail in the output transform, both tiles (ConvBlock picks
    // mml_conv3x3_winograd_preferred_tile: F(4x4) at 42x42, F(2x2) at 21x21).
    for (c, h, pool) in firstLayerOnly ? [] : [(3, 84, true), (64, 42, true), (64, 21, false)] {
        let co = 64
        let n = intOption(arguments, "--batch", 80)
        let (N, C, H, W, CO) = (Int64(n), Int64(c), Int64(h), Int64(h), Int64(co))
        let x = (0..<n * c * h * h).map { _ in r.float() }, wt = (0..<co * c * 9).map { _ in r.float() * 0.05 }
        let scale = (0..<co).map { _ in r.float() }, shift = (0..<co).map { _ in r.float() }
        var y = [Float](repeating: 0, count: n * co * (pool ? (h / 2) * (h / 2) : h * h))
        let flops = 2.0 * Double(n * co * c * 9 * h * h)
        let shape = "\(n)x\(c)x\(h)x\(h)->\(co)\(pool ? " +pool" : "")"
        if c < 16 {
            let need = mml_conv_block_workspace_floats(C, H, W, CO, 3, 1, N, threads)
            var ws = [Float](repeating: 0, count: Int(need))
            let t = measure(repeats: 7) {
                _ = mml_conv_block_forward_f32(&y, x, wt, scale, shift, N, C, H, W, CO, 3, 1, 0.2, pool ? 1 : 0, &ws,
                                               need, threads)
            }
            rows.append(BenchRow(name: "inference direct \(shape)", seconds: t, gflops: flops / t / 1e9,
                                 ratio: nil, items: n))
            continue
        }
        for tile in [Int32(2), 4] {
            let need = mml_conv3x3_winograd_tile_workspace_floats(N, C, H, W, CO, tile, threads)
            var ws = [Float](repeating: 0, count: Int(need))
            let t = measure(repeats: 7) {
                _ = mml_conv3x3_winograd_tile_forward_affine_leaky_f32(&y, x, wt, scale, shift, 0.2, pool ? 1 : 0, N, C,
                                                                       H, W, CO, tile, &ws, need, threads)
            }
            let picked = mml_conv3x3_winograd_preferred_tile(H, W) == tile ? " [used]" : ""
            rows.append(BenchRow(name: "inference winograd F(\(tile)x\(tile)) \(shape)\(picked)", seconds: t,
                                 gflops: flops / t / 1e9, ratio: nil, items: n))
        }
    }
    if !json {
        print("threads \(threads == 0 ? "all" : String(threads)); mml kernels \(String(cString: mml_kernels_isa())); "
              + "GFLOP/s as direct convolution FLOPs; ratio = im2col time / winograd time")
    }
    printRows(rows, json: json)
}

/// Benchmark inputs uniform in [-1, 1) from MMLCore's seeded generator.
private struct ConvBenchRng {
    var generator: SeededRNG
    init(state: UInt64) { generator = SeededRNG(state: state) }
    mutating func float() -> Float { generator.nextFloat() * 2 - 1 }
}

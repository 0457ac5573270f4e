import Foundation
import MMLCore

/// `mml-bench backbone --breakdown [--threads N] [--size S --batch B --in-channels C]`: where a Conv-64F training
/// step spends its time (default batch 80 of 84x84x3; `--size 28 --batch 360 --in-channels 1` is a 60-way 1-shot
/// 5-query Omniglot episode), layer by layer: each block's conv forward, BatchNorm+LeakyReLU forward, max-pool forward, and the
/// matching backward passes (conv: dL/dx and dL/dW; the first conv: dL/dW only), medians of 5 runs.
func runLayerBreakdown(threads: Int, size: Int = 84, batch: Int = 80, inputChannels: Int = 3) {
    var g = SeededRNG(state: 3)
    // (input channels, spatial size, pool after)
    let blocks: [(c: Int, size: Int, pool: Bool)] = [(inputChannels, size, true), (64, size / 2, true),
                                                     (64, size / 4, false), (64, size / 4, false)]
    print("Conv-64F layers, batch \(batch) of \(size)x\(size)x\(inputChannels), threads \(threads == 0 ? "all" : String(threads)): median ms of 5 runs")
    print("layer".padding(toLength: 34, withPad: " ", startingAt: 0) + "  forward  backward")
    var totalF = 0.0, totalB = 0.0
    for (i, b) in blocks.enumerated() {
        let conv = Conv2D(inputChannels: b.c, outputChannels: 64, kernelSize: 3, padding: 1, generator: &g)
        conv.threads = threads
        let bn = BatchNorm2D(channels: 64, generator: &g)
        bn.threads = threads
        let x = Tensor(shape: [batch, b.c, b.size, b.size], normalMean: 0, std: 1, generator: &g)
        var (y, cc) = conv.forward(x, training: true)
        let tf = measure(repeats: 5) { (y, cc) = conv.forward(x, training: true) }
        let dy = Tensor(shape: y.shape, normalMean: 0, std: 1, generator: &g)
        let tb = measure(repeats: 5) { _ = conv.backward(dy, cache: cc, inputGradient: i > 0) }
        var (a, bc) = bn.forward(y, training: true, leakySlope: 0.2)
        let bf = measure(repeats: 5) { (a, bc) = bn.forward(y, training: true, leakySlope: 0.2) }
        let bb = measure(repeats: 5) { _ = bn.backward(dy, cache: bc) }
        func row(_ name: String, _ f: Double, _ b: Double) {
            totalF += f; totalB += b
            print(name.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: " %8.1f %9.1f", f * 1e3, b * 1e3))
        }
        row("block\(i + 1) conv \(b.c)->64 \(b.size)x\(b.size)", tf, tb)
        row("block\(i + 1) batchnorm+leaky", bf, bb)
        if b.pool {
            let pool = MaxPool2D(kernelSize: 2)
            pool.threads = threads
            var (p, pc) = pool.forward(a, training: true)
            let pf = measure(repeats: 5) { (p, pc) = pool.forward(a, training: true) }
            let dp = Tensor(shape: p.shape, normalMean: 0, std: 1, generator: &g)
            let pb = measure(repeats: 5) { _ = pool.backward(dp, cache: pc) }
            row("block\(i + 1) maxpool 2x2", pf, pb)
        }
    }
    print("total".padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: " %8.1f %9.1f", totalF * 1e3, totalB * 1e3))
}

/// DropBlock (Ghiasi, Lin & Le, NeurIPS 2018): drops contiguous `blockSize x blockSize` squares of a feature map
/// during training, as used in ResNet-12 training (MetaOptNet, neg-margin, MML v4).
///
/// `x: (N, C, H, W) -> (N, C, H, W)`. Training: block seeds are drawn independently per (image, channel) at the
/// (H - b + 1) x (W - b + 1) positions where a whole block fits, with probability
///     gamma = rate / b^2 * (H W) / ((H - b + 1)(W - b + 1)),
/// each seed zeroes the block whose top-left corner it is, and the kept values are scaled by
/// (elements) / (kept elements) so the expected sum is unchanged. Inference, or rate 0: the identity.
/// The masks come from the layer's own generator, seeded at construction, so a run is reproducible.
public final class DropBlock: ParameterFreeLayer {
    public let blockSize: Int
    /// The fraction of units to drop; may be changed between steps (a linear ramp is common).
    public var rate: Float
    private var generator: SeededRNG

    /// What backward needs: the mask already multiplied by the scale (nil when nothing was dropped).
    public struct Cache { public let scaledMask: [Float]? }

    /// - Parameters: block side, drop rate in [0, 1), seed of the mask generator.
    public init(blockSize: Int, rate: Float, seed: UInt64) {
        precondition(blockSize > 0 && rate >= 0 && rate < 1, "[dropblock] bad block \(blockSize) or rate \(rate)")
        self.blockSize = blockSize
        self.rate = rate
        self.generator = SeededRNG(state: seed)
    }

    /// Restarts the mask generator from `seed` (trainers reseed per episode so a resumed run draws the same masks).
    public func reseed(_ seed: UInt64) { generator = SeededRNG(state: seed) }

    /// `(N, C, H, W) -> (N, C, H, W)`.
    public func forward(_ x: Tensor, training: Bool) -> (output: Tensor, cache: Cache) {
        guard training, rate > 0 else { return (x, Cache(scaledMask: nil)) }
        let d = x.nchw
        let b = min(blockSize, d.h, d.w)
        let vh = d.h - b + 1, vw = d.w - b + 1
        let gamma = Double(rate) / Double(b * b) * Double(d.h * d.w) / Double(vh * vw)
        let hw = d.h * d.w
        var mask = [Float](repeating: 1, count: x.count)
        for p in 0..<(d.n * d.c) {
            for sy in 0..<vh {
                for sx in 0..<vw where Double(generator.nextFloat()) < gamma {
                    for i in sy..<(sy + b) {
                        for j in sx..<(sx + b) { mask[p * hw + i * d.w + j] = 0 }
                    }
                }
            }
        }
        let kept = mask.reduce(0, +)
        let scale: Float = kept > 0 ? Float(mask.count) / kept : 0
        var y = x
        for i in 0..<mask.count {
            mask[i] *= scale
            y.data[i] *= mask[i]
        }
        return (y, Cache(scaledMask: mask))
    }

    /// dL/dx = dy * mask * scale (the identity when nothing was dropped).
    public func backward(_ dy: Tensor, cache: Cache) -> Tensor {
        guard let m = cache.scaledMask else { return dy }
        precondition(m.count == dy.count, "[dropblock] dy shape \(dy.shape) does not match the forward input")
        var dx = dy
        for i in 0..<m.count { dx.data[i] *= m[i] }
        return dx
    }
}

/// Elementwise updates over flat float buffers: tensor sums and the optimiser steps. Plain Swift loops over the
/// buffers' storage (no bounds checks, no copy-on-write checks inside the loop); the float operations are those of
/// the formulas in the order written, so results are bit-for-bit reproducible.
extension NNKernels {
    /// `r[i] += b[i]`; equal counts.
    static func add(_ b: [Float], into r: inout [Float]) {
        precondition(r.count == b.count, "[add] \(r.count) floats += \(b.count) floats")
        r.withUnsafeMutableBufferPointer { rp in
            b.withUnsafeBufferPointer { bp in
                for i in 0..<rp.count { rp[i] += bp[i] }
            }
        }
    }

    /// `r[i] += scale * b[i]`; equal counts.
    static func add(_ b: [Float], scaledBy scale: Float, into r: inout [Float]) {
        precondition(r.count == b.count, "[add] \(r.count) floats += scale * \(b.count) floats")
        r.withUnsafeMutableBufferPointer { rp in
            b.withUnsafeBufferPointer { bp in
                for i in 0..<rp.count { rp[i] += scale * bp[i] }
            }
        }
    }

    /// Sets every element to zero, keeping the storage.
    static func zero(_ r: inout [Float]) {
        r.withUnsafeMutableBufferPointer { p in
            guard let base = p.baseAddress else { return }
            base.update(repeating: 0, count: p.count)
        }
    }

    /// One Adam step (PyTorch's `torch.optim.Adam`, or AdamW with `decoupled`) over a parameter's values `w`,
    /// gradient `g` and moments `m`, `v` (all of one count); `c1 = 1 - beta1^t`, `c2 = 1 - beta2^t`:
    ///
    ///     g = grad + wd w  (Adam)   or   w = w (1 - lr wd)  (AdamW)
    ///     m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,  w = w - lr (m / c1) / (sqrt(v / c2) + eps)
    static func adamStep(values w: inout [Float], gradient g: [Float], m: inout [Float], v: inout [Float],
                         learningRate lr: Float, beta1 b1: Float, beta2 b2: Float, epsilon eps: Float,
                         weightDecay wd: Float, decoupled: Bool, c1: Float, c2: Float) {
        let n = w.count
        precondition(g.count == n && m.count == n && v.count == n,
                     "[adam] values \(n), gradient \(g.count), moments \(m.count), \(v.count)")
        w.withUnsafeMutableBufferPointer { w in
            g.withUnsafeBufferPointer { gr in
                m.withUnsafeMutableBufferPointer { mp in
                    v.withUnsafeMutableBufferPointer { vp in
                        for i in 0..<n {
                            var g = gr[i]
                            if decoupled { w[i] *= 1 - lr * wd } else { g += wd * w[i] }
                            mp[i] = b1 * mp[i] + (1 - b1) * g
                            vp[i] = b2 * vp[i] + (1 - b2) * g * g
                            w[i] -= lr * (mp[i] / c1) / ((vp[i] / c2).squareRoot() + eps)
                        }
                    }
                }
            }
        }
    }

    /// One SGD step (PyTorch's `torch.optim.SGD`) over values `w`, gradient and momentum buffer `b` (one count):
    ///
    ///     g = grad + wd w;  b = g (first step) or mu b + (1 - dampening) g;  g = g + mu b (Nesterov) or b;
    ///     w = w - lr g      (the buffer is untouched when mu == 0)
    static func sgdStep(values w: inout [Float], gradient: [Float], buffer: inout [Float], firstStep: Bool,
                        learningRate lr: Float, momentum mu: Float, dampening damp: Float, weightDecay wd: Float,
                        nesterov nest: Bool) {
        let n = w.count
        precondition(gradient.count == n && buffer.count == n,
                     "[sgd] values \(n), gradient \(gradient.count), buffer \(buffer.count)")
        w.withUnsafeMutableBufferPointer { w in
            gradient.withUnsafeBufferPointer { gr in
                buffer.withUnsafeMutableBufferPointer { b in
                    for i in 0..<n {
                        var g = gr[i] + wd * w[i]
                        if mu != 0 {
                            b[i] = firstStep ? g : mu * b[i] + (1 - damp) * g
                            g = nest ? g + mu * b[i] : b[i]
                        }
                        w[i] -= lr * g
                    }
                }
            }
        }
    }
}

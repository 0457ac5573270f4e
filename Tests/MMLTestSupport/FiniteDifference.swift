import MMLCore
import XCTest

/// The finite-difference gradient checker of the layer, backbone, loss and checkpoint tests.
///
/// The loss is L = sum_i w_i y_i with fixed random weights w, accumulated in double, so dL/dy = w.
/// Central differences in float with eps = 1e-2 on inputs of order 1; tolerance |a - b| <= 2e-3 + 3e-2 |b|
/// (float rounding of a sum over up to a few thousand terms divided by 2 eps).
public enum LayerFD {
    /// The central-difference step.
    nonisolated(unsafe) public static var eps: Float = 1e-2
    /// Absolute and relative tolerance of a probe.
    nonisolated(unsafe) public static var atol = 2e-3
    nonisolated(unsafe) public static var rtol = 3e-2

    /// Standard normal weights w of the loss, shaped like `t`.
    public static func weights(like t: Tensor, seed: UInt64) -> Tensor {
        var g = SeededRNG(state: seed)
        return Tensor(shape: t.shape, normalMean: 0, std: 1, generator: &g)
    }

    /// sum_i a_i b_i in double.
    public static func dot(_ a: Tensor, _ b: Tensor) -> Double {
        var s = 0.0
        for i in 0..<a.count { s += Double(a.data[i]) * Double(b.data[i]) }
        return s
    }

    /// Indices to probe: first, last and a few random ones.
    public static func probes(_ count: Int, _ k: Int, seed: UInt64) -> [Int] {
        var g = SeededRNG(state: seed)
        var idx = [0, count - 1]
        for _ in 0..<k { idx.append(Int(g.next() % UInt64(count))) }
        return idx
    }

    /// Checks analytic vs central-difference derivatives of `loss` with respect to `values[i]` at the probes.
    /// With several `epsilons` the probe passes when any of them agrees: a deep piecewise-linear network (ReLU
    /// kinks, max-pool switches) makes some central differences jump across a kink, and a different step avoids it;
    /// a wrong analytic value agrees with none.
    public static func check(_ name: String, analytic: Tensor, probes: [Int], get: (Int) -> Float,
                             set: (Int, Float) -> Void, loss: () -> Double, epsilons: [Float]? = nil,
                             file: StaticString = #filePath, line: UInt = #line) {
        for i in probes {
            let v = get(i)
            let a = Double(analytic.data[i])
            var best = (excess: Double.infinity, num: 0.0)
            for e in epsilons ?? [eps] {
                set(i, v + e)
                let lp = loss()
                set(i, v - e)
                let lm = loss()
                set(i, v)
                let num = (lp - lm) / (2 * Double(e))
                let excess = abs(a - num) - (atol + rtol * abs(num))
                if excess < best.excess { best = (excess, num) }
            }
            XCTAssertLessThanOrEqual(best.excess, 0, "\(name)[\(i)]: analytic \(a) vs numeric \(best.num)",
                                     file: file, line: line)
        }
    }

    /// A normal tensor with mean 0 and standard deviation `std`.
    public static func random(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
        var g = SeededRNG(state: seed)
        return Tensor(shape: shape, normalMean: 0, std: std, generator: &g)
    }
}

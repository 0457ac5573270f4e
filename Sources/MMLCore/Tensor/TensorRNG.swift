/// A small, fast, seedable generator (SplitMix64) for parameter initialisation, DropBlock masks and tests.
///
/// There is no global random state in mml: everything random takes a generator, and the same seed gives the same
/// numbers on any machine and thread count.
public struct TensorRNG: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator whose whole sequence is fixed by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform float in [0, 1) with 24 random bits.
    public static func uniform<G: RandomNumberGenerator>(using g: inout G) -> Float {
        Float(g.next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal sample by the Box-Muller transform (one sample per two uniforms, in double).
    public static func normal<G: RandomNumberGenerator>(using g: inout G) -> Float {
        // u1 in (0, 1] so that log(u1) is finite.
        let u1 = (Double(g.next() >> 11) + 1) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(g.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2))
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#else
import Foundation
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
#endif

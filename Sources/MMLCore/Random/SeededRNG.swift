import Foundation

/// A small, fast, seeded random number generator (SplitMix64, Steele, Lea & Flood 2014).
///
/// mml keeps no global random state: everything random takes one of these, created from an explicit seed.
/// Streams are counter-based: `SeededRNG(seed: s, stream: i)` hashes (s, i) into an independent state, so the
/// i-th episode, batch or augmentation is a pure function of (seed, i), whatever order or thread computes it.
/// `SeededRNG(state: s)` starts from the raw state `s` (no mixing): parameter initialisation, DropBlock masks and
/// test inputs use it, so a backbone's weights are fixed by its configuration seed.
/// The same seed gives the same numbers on any machine and thread count.
///
///     var rng = SeededRNG(seed: 42, stream: UInt64(episodeIndex))
///     let picks = rng.sample(5, from: 64)      // 5 distinct indices in 0..<64
public struct SeededRNG: RandomNumberGenerator, Sendable {
    /// The internal 64-bit state; advanced by the golden-ratio increment on every draw.
    public var state: UInt64

    /// A generator that starts from the raw state `state`: its first draw is `mix(state)`.
    public init(state: UInt64) {
        self.state = state
    }

    /// A generator whose sequence is fully determined by `seed` (the state is `mix(seed)`).
    public init(seed: UInt64) {
        state = SeededRNG.mix(seed)
    }

    /// A generator for stream `stream` of `seed`: a pure function of both, independent across streams.
    public init(seed: UInt64, stream: UInt64) {
        state = SeededRNG.mix(SeededRNG.mix(seed) ^ SeededRNG.mix(stream &+ 0x632B_E59B_D9B4_E019))
    }

    /// A generator for a path of indices, e.g. `(seed, [classID, imageIndex])`.
    public init(seed: UInt64, path: [UInt64]) {
        var s = SeededRNG.mix(seed)
        for p in path { s = SeededRNG.mix(s ^ SeededRNG.mix(p &+ 0x632B_E59B_D9B4_E019)) }
        state = s
    }

    /// The SplitMix64 finaliser: a bijective avalanche hash of 64 bits
    /// (z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31).
    @inlinable public static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next 64 random bits.
    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<bound` without modulo bias (Lemire's multiply-and-reject); `bound > 0`.
    @inlinable public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "[rng] bound must be positive, got \(bound)")
        let b = UInt64(bound)
        var m = next().multipliedFullWidth(by: b)
        if m.low < b {
            let t = (0 &- b) % b
            while m.low < t { m = next().multipliedFullWidth(by: b) }
        }
        return Int(m.high)
    }

    /// A uniform Double in [0, 1) with 53 random bits.
    @inlinable public mutating func nextDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A uniform Float in [lo, hi).
    @inlinable public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * nextFloat()
    }

    /// A standard normal deviate in Double (Box-Muller with u1 = max(nextDouble(), 1e-300); one of the pair is
    /// discarded). `nextNormal()` is the Float sampler the tensors and layers draw from.
    public mutating func nextGaussian() -> Double {
        let u1 = max(nextDouble(), 1e-300), u2 = nextDouble()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// `count` distinct indices from `0..<n` in random order (partial Fisher-Yates); `count <= n`.
    public mutating func sample(_ count: Int, from n: Int) -> [Int] {
        precondition(count >= 0 && count <= n, "[rng] cannot draw \(count) distinct values from \(n)")
        if count == 0 { return [] }
        if count * 4 < n {
            // Sparse draw: Fisher-Yates over a virtual array, remembering only the swapped slots.
            var swapped: [Int: Int] = [:]
            var out = [Int]()
            out.reserveCapacity(count)
            for i in 0..<count {
                let j = i + nextInt(below: n - i)
                let vj = swapped[j] ?? j, vi = swapped[i] ?? i
                out.append(vj)
                swapped[j] = vi
            }
            return out
        }
        var a = Array(0..<n)
        for i in 0..<count {
            let j = i + nextInt(below: n - i)
            a.swapAt(i, j)
        }
        return Array(a[0..<count])
    }

    /// Shuffles `array` in place (Fisher-Yates).
    public mutating func shuffle<T>(_ array: inout [T]) {
        if array.count < 2 { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            array.swapAt(i, nextInt(below: i + 1))
        }
    }
}

/// Uniform and normal samples from any generator (the tensor and layer initialisers are generic over it).
extension RandomNumberGenerator {
    /// A uniform Float in [0, 1) with 24 random bits.
    @inlinable public mutating func nextFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal Float by the Box-Muller transform in Double (one sample per two draws, the sine discarded):
    /// u1 = (bits53 + 1) / 2^53 in (0, 1] so that log(u1) is finite, u2 = bits53 / 2^53.
    public mutating func nextNormal() -> Float {
        let u1 = (Double(next() >> 11) + 1) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

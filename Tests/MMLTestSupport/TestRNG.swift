import Foundation
import MMLCore

/// The tests' seeded generator: MMLCore's SplitMix64 `SeededRNG` with the draws the tests use. An explicit
/// seed, no global state; the same seed gives the same values in every test target.
public struct TestRNG {
    /// The wrapped MMLCore generator.
    public var generator: SeededRNG

    /// A generator whose whole sequence is fixed by `seed`.
    public init(seed: UInt64) { generator = SeededRNG(state: seed) }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 { generator.next() }
    /// Uniform in [-1, 1) (24 random bits).
    public mutating func float() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
    /// Uniform in 0 ..< n.
    public mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    /// `count` values uniform in [-1, 1).
    public mutating func floats(_ count: Int) -> [Float] { (0..<count).map { _ in float() } }
    /// Uniform in [0, 1) (53 random bits).
    public mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// Standard normal (Box-Muller).
    public mutating func normal() -> Double {
        let u = max(uniform(), 1e-300), v = uniform()
        return sqrt(-2 * log(u)) * cos(2 * Double.pi * v)
    }
    /// `n` values normal with mean 0 and standard deviation `scale`.
    public mutating func normals(_ n: Int, scale: Double = 1) -> [Float] {
        (0..<n).map { _ in Float(normal() * scale) }
    }
    /// A tensor of the given shape with values `float() * scale + offset`.
    public mutating func tensor(_ shape: [Int], scale: Float = 1, offset: Float = 0) -> Tensor {
        Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in float() * scale + offset })
    }
}

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// A learning-rate schedule: the rate at step (or epoch) t, 0-based, from a base rate.
public indirect enum LearningRateSchedule: Sendable, Equatable {
    /// The base rate throughout.
    case constant
    /// Step decay: base * factor^floor(t / every) (MML v1 halves the rate every 10 epochs: every 10, factor 0.5).
    case step(every: Int, factor: Float)
    /// Cosine annealing from base at t = 0 to `minimum` at t = total (held after):
    /// minimum + (base - minimum) (1 + cos(pi t / total)) / 2.
    case cosine(total: Int, minimum: Float)
    /// Linear warm-up: base * (t + 1) / steps for t < steps, then `then` evaluated at t - steps.
    case warmup(steps: Int, then: LearningRateSchedule)

    /// The learning rate at step `t`.
    public func learningRate(base: Float, step t: Int) -> Float {
        let t = max(t, 0)
        switch self {
        case .constant:
            return base
        case .step(let every, let factor):
            return base * Float(pow(Double(factor), Double(t / max(every, 1))))
        case .cosine(let total, let minimum):
            let x = Double(min(t, max(total, 1))) / Double(max(total, 1))
            return minimum + (base - minimum) * Float((1 + cos(Double.pi * x)) / 2)
        case .warmup(let steps, let then):
            if t < steps { return base * Float(t + 1) / Float(steps) }
            return then.learningRate(base: base, step: t - steps)
        }
    }

    /// Checks the schedule's numbers. - Throws: `MMLError(.config)` naming the bad one.
    public func validate() throws {
        switch self {
        case .constant: return
        case .step(let every, let factor):
            guard every > 0, factor.isFinite, factor > 0 else {
                throw MMLError(.config, "step schedule: every = \(every) must be > 0 and factor = \(factor) > 0")
            }
        case .cosine(let total, let minimum):
            guard total > 0, minimum.isFinite, minimum >= 0 else {
                throw MMLError(.config, "cosine schedule: total = \(total) must be > 0 and minimum = \(minimum) >= 0")
            }
        case .warmup(let steps, let then):
            guard steps > 0 else { throw MMLError(.config, "warm-up schedule: steps = \(steps) must be > 0") }
            try then.validate()
        }
    }
}

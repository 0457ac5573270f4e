import Foundation

/// Where episodic training spends its time (`mml train --profile`): wall time per phase, measured on the training
/// thread around each phase (the kernels inside a phase may use every core). Measuring reads the clock twice per
/// phase and changes no result. Not thread-safe: one trainer records into one profile.
public final class PhaseProfile: @unchecked Sendable {
    /// The phases of a training episode and of the run around it, in the order they happen.
    public enum Phase: String, CaseIterable, Codable, Sendable {
        /// Sampling the episode and building its image tensors (decoding on a cold cache, augmentation).
        case data
        case backboneForward = "backbone-forward"
        case pixelForward = "pixel-forward"
        case partForward = "part-forward"
        case distributionForward = "distribution-forward"
        case fusionForward = "fusion-forward"
        /// Cross-entropy on the fused logits and its gradient.
        case loss
        case fusionBackward = "fusion-backward"
        case pixelBackward = "pixel-backward"
        case partBackward = "part-backward"
        case distributionBackward = "distribution-backward"
        case backboneBackward = "backbone-backward"
        /// Adding the episode's gradient to the step's sum (and zeroing it).
        case gradientSum = "gradient-sum"
        /// The per-step exchange between processes (`mpirun`).
        case exchange
        /// The optimiser step and the running-statistics updates.
        case optimizer
        case validation
        /// Checkpoints and log lines.
        case checkpoint
    }

    /// Seconds spent in each phase so far.
    public private(set) var seconds: [Phase: Double] = [:]
    /// Times each phase was entered.
    public private(set) var counts: [Phase: Int] = [:]
    /// Training episodes recorded (`episodeDone()`).
    public private(set) var episodes = 0

    public init() {}

    /// Runs `body`, adding its wall time to `phase`.
    @inline(__always)
    public func time<T>(_ phase: Phase, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            seconds[phase, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            counts[phase, default: 0] += 1
        }
        return try body()
    }

    /// Counts one finished training episode.
    public func episodeDone(_ n: Int = 1) { episodes += n }

    /// The sum over all phases.
    public var totalSeconds: Double { seconds.values.reduce(0, +) }

    /// One row per phase entered, in phase order: (phase, seconds, milliseconds per training episode, share of the
    /// phases' sum). A phase with no work in a run (validation without a validation split, the exchange in one
    /// process, a disabled level) is not entered, so it has no row here nor in `report`.
    public var rows: [(phase: Phase, seconds: Double, perEpisodeMilliseconds: Double, share: Double)] {
        let total = max(totalSeconds, 1e-12), n = Double(max(episodes, 1))
        return Phase.allCases.compactMap { p in
            guard let s = seconds[p] else { return nil }
            return (p, s, s * 1e3 / n, s / total)
        }
    }

    /// The profile as JSON-ready values (`profile.json`).
    public struct Report: Codable, Sendable, Equatable {
        public struct Row: Codable, Sendable, Equatable {
            public var phase: Phase
            public var seconds: Double
            public var perEpisodeMilliseconds: Double
            public var share: Double
            public var count: Int
        }
        public var episodes: Int
        public var seconds: Double
        public var phases: [Row]
    }

    public var report: Report {
        Report(episodes: episodes, seconds: totalSeconds, phases: rows.map {
            .init(phase: $0.phase, seconds: $0.seconds, perEpisodeMilliseconds: $0.perEpisodeMilliseconds,
                  share: $0.share, count: counts[$0.phase] ?? 0)
        })
    }
}

/// `profile.time(phase, body)` when there is a profile, else just `body()`.
@inline(__always)
func measured<T>(_ profile: PhaseProfile?, _ phase: PhaseProfile.Phase, _ body: () throws -> T) rethrows -> T {
    guard let profile else { return try body() }
    return try profile.time(phase, body)
}

import ArgumentParser
import Foundation
import MMLCore

/// The settings of the cosine-classifier protocol (defaults: the official negative-margin ones,
/// `CosineClassifierProtocolOptions()`).
struct CosineClassifierOptions: ParsableArguments {
    @Option(name: .customLong("classifier-passes"),
            help: "cosine-classifier: passes over the support set (default 100).")
    var passes: Int?
    @Option(name: .customLong("classifier-batch-size"),
            help: "cosine-classifier: support features per SGD step (default 4).")
    var batchSize: Int?
    @Option(name: .customLong("classifier-lr"), help: "cosine-classifier: SGD learning rate (default 0.01).")
    var lr: Float?
    @Option(name: .customLong("classifier-momentum"), help: "cosine-classifier: SGD momentum (default 0.9).")
    var momentum: Float?
    @Option(name: .customLong("classifier-dampening"), help: "cosine-classifier: SGD dampening (default 0.9).")
    var dampening: Float?
    @Option(name: .customLong("classifier-weight-decay"),
            help: "cosine-classifier: SGD weight decay (default 0.001).")
    var weightDecay: Float?
    @Option(name: .customLong("classifier-scale"), help: "cosine-classifier: logit scale s (default 5).")
    var scale: Float?
    @Option(name: .customLong("classifier-seed"),
            help: "cosine-classifier: seed of the classifier weights and shuffles (default: derived from the episodes' seed, --seed or the episode list's).")
    var seed: UInt64?

    /// The flags given on the command line.
    var given: [String] {
        var g: [String] = []
        if passes != nil { g.append("--classifier-passes") }
        if batchSize != nil { g.append("--classifier-batch-size") }
        if lr != nil { g.append("--classifier-lr") }
        if momentum != nil { g.append("--classifier-momentum") }
        if dampening != nil { g.append("--classifier-dampening") }
        if weightDecay != nil { g.append("--classifier-weight-decay") }
        if scale != nil { g.append("--classifier-scale") }
        if seed != nil { g.append("--classifier-seed") }
        return g
    }

    /// The classifier seed when `--classifier-seed` is not given: a stream of the episode seed, so the classifier
    /// does not share random numbers with the episodes.
    static func derivedSeed(episodeSeed: UInt64) -> UInt64 {
        SeededRNG(seed: episodeSeed, path: [0x636C_6173_7369_6669]).state
    }

    /// The protocol options, checked. - Throws: `MMLError(.invalidArgument)` naming the flag.
    func options(episodeSeed: UInt64) throws -> CosineClassifierProtocolOptions {
        var o = CosineClassifierProtocolOptions()
        if let passes { try requirePositive(passes, "--classifier-passes"); o.passes = passes }
        if let batchSize { try requirePositive(batchSize, "--classifier-batch-size"); o.batchSize = batchSize }
        func check(_ v: Float?, _ flag: String, _ ok: (Float) -> Bool, _ what: String) throws -> Float? {
            guard let v else { return nil }
            guard v.isFinite, ok(v) else { throw MMLError(.invalidArgument, "\(flag) must be \(what), got \(v)") }
            return v
        }
        o.learningRate = try check(lr, "--classifier-lr", { $0 > 0 }, "a number > 0") ?? o.learningRate
        o.momentum = try check(momentum, "--classifier-momentum", { $0 >= 0 && $0 < 1 }, "in [0, 1)") ?? o.momentum
        o.dampening = try check(dampening, "--classifier-dampening", { $0 >= 0 && $0 <= 1 }, "in [0, 1]")
            ?? o.dampening
        o.weightDecay = try check(weightDecay, "--classifier-weight-decay", { $0 >= 0 }, "a number >= 0")
            ?? o.weightDecay
        o.scale = try check(scale, "--classifier-scale", { $0 > 0 }, "a number > 0") ?? o.scale
        o.seed = seed ?? Self.derivedSeed(episodeSeed: episodeSeed)
        return o
    }
}

extension CosineClassifierProtocolOptions {
    /// For text output.
    var summary: String {
        "s \(scale), SGD lr \(learningRate) momentum \(momentum) dampening \(dampening) weight decay \(weightDecay), "
            + "\(passes) passes in batches of \(batchSize), seed \(seed)"
    }

    /// For JSON reports.
    var json: [String: Any] {
        ["scale": Double(scale), "learning_rate": Double(learningRate), "momentum": Double(momentum),
         "dampening": Double(dampening), "weight_decay": Double(weightDecay), "passes": passes,
         "batch_size": batchSize, "seed": seed]
    }
}

import ArgumentParser
import Foundation
import MMLCore

/// The settings of the cosine-classifier protocol (`CosineClassifierSettings`; defaults: the official
/// negative-margin ones, `CosineClassifierProtocolOptions()`).
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

    /// The core's settings (checked by the core, which names the fields; `FlagNames` spells them as these flags).
    var settings: CosineClassifierSettings {
        CosineClassifierSettings(passes: passes, batchSize: batchSize, learningRate: lr, momentum: momentum,
                                 dampening: dampening, weightDecay: weightDecay, scale: scale, seed: seed)
    }
}

import ArgumentParser
import Foundation
import MMLCore

/// The episodic training flags, shared by `mml train` and `mml ablate --retrain`. Every flag is nil when not given:
/// the defaults are `EpisodicTrainingConfiguration()`'s (shown in the help), or, with `mml train --config FILE`,
/// the saved run's. `configuration(over:)` applies the given ones.
struct TrainingOptions: ParsableArguments {
    private static let d = EpisodicTrainingConfiguration()
    private static func help(_ text: String, _ value: Any) -> ArgumentHelp { "\(text) (default: \(value))" }

    @Option(help: help("Validation split ('none' for no validation; the last epoch is then kept as best).", "val"))
    var valSplit: String?

    @Option(help: help("Classes per training episode.", d.way)) var way: Int?
    @Option(help: help("Support images per class.", d.shot)) var shot: Int?
    @Option(help: help("Query images per class.", d.query)) var query: Int?
    @Option(help: help("Episodes per epoch.", d.episodesPerEpoch)) var episodesPerEpoch: Int?
    @Option(help: help("Epochs.", d.epochs)) var epochs: Int?
    @Option(help: help("Episodes whose gradients are averaged into one optimiser step.", d.episodesPerStep))
    var episodesPerStep: Int?
    @Option(help: help("Optimiser: adam or sgd.", d.optimizer.rawValue)) var optimizer: String?
    @Option(help: help("Learning rate.", d.learningRate)) var lr: Float?
    @Option(help: help("Adam beta1.", d.beta1)) var beta1: Float?
    @Option(help: help("Adam beta2.", d.beta2)) var beta2: Float?
    @Option(help: help("SGD momentum.", d.momentum)) var momentum: Float?
    @Option(help: help("Weight decay.", d.weightDecay)) var weightDecay: Float?
    @Option(help: help("Schedule: step (x lr-factor every lr-step epochs), cosine or constant.", d.schedule.rawValue))
    var schedule: String?
    @Option(help: help("Epochs between learning-rate steps.", d.lrStepEpochs)) var lrStep: Int?
    @Option(help: help("Learning-rate step factor.", d.lrFactor)) var lrFactor: Float?
    @Option(help: help("Freeze BatchNorm statistics after this many epochs (0: never).", d.freezeBatchNormAfterEpochs))
    var freezeBnAfter: Int?
    @Option(help: help("Seed of the training episodes, augmentation and DropBlock masks.", d.seed)) var seed: UInt64?
    @Option(help: help("Validation episodes after each epoch.", d.validationEpisodes)) var valEpisodes: Int?
    @Option(help: "Validation n-way (default: --way).") var valWay: Int?
    @Option(help: "Validation k-shot (default: --shot).") var valShot: Int?
    @Option(help: help("Validation queries per class.", 15)) var valQuery: Int?
    @Option(help: help("Seed of the validation episodes.", d.validationSeed)) var valSeed: UInt64?
    @Option(help: help("Write last.safetensors every this many episodes.", d.checkpointEvery)) var checkpointEvery: Int?
    @Option(help: help("Log averages every this many episodes.", d.logEvery)) var logEvery: Int?

    /// The flags given on the command line, spelled as the user types them (for "cannot apply" errors).
    var givenFlags: [String] {
        let given: [(String, Bool)] = [
            ("--val-split", valSplit != nil), ("--way", way != nil), ("--shot", shot != nil), ("--query", query != nil),
            ("--episodes-per-epoch", episodesPerEpoch != nil), ("--epochs", epochs != nil),
            ("--episodes-per-step", episodesPerStep != nil), ("--optimizer", optimizer != nil), ("--lr", lr != nil),
            ("--beta1", beta1 != nil), ("--beta2", beta2 != nil), ("--momentum", momentum != nil),
            ("--weight-decay", weightDecay != nil), ("--schedule", schedule != nil), ("--lr-step", lrStep != nil),
            ("--lr-factor", lrFactor != nil), ("--freeze-bn-after", freezeBnAfter != nil), ("--seed", seed != nil),
            ("--val-episodes", valEpisodes != nil), ("--val-way", valWay != nil), ("--val-shot", valShot != nil),
            ("--val-query", valQuery != nil), ("--val-seed", valSeed != nil),
            ("--checkpoint-every", checkpointEvery != nil), ("--log-every", logEvery != nil),
        ]
        return given.filter(\.1).map(\.0)
    }

    /// `base` with every given flag applied. - Throws: `MMLError(.config)` for an unknown optimiser or schedule.
    func configuration(over base: EpisodicTrainingConfiguration = EpisodicTrainingConfiguration()) throws
        -> EpisodicTrainingConfiguration {
        var c = base
        func set<T>(_ value: T?, _ field: WritableKeyPath<EpisodicTrainingConfiguration, T>) {
            if let value { c[keyPath: field] = value }
        }
        set(way, \.way); set(shot, \.shot); set(query, \.query); set(episodesPerEpoch, \.episodesPerEpoch)
        set(epochs, \.epochs); set(episodesPerStep, \.episodesPerStep)
        set(try optimizer.map(OptimizerKind.parse), \.optimizer)
        set(lr, \.learningRate); set(beta1, \.beta1); set(beta2, \.beta2); set(momentum, \.momentum)
        set(weightDecay, \.weightDecay); set(try schedule.map(ScheduleKind.parse), \.schedule)
        set(lrStep, \.lrStepEpochs); set(lrFactor, \.lrFactor); set(freezeBnAfter, \.freezeBatchNormAfterEpochs)
        set(seed, \.seed); set(valEpisodes, \.validationEpisodes); set(valSeed, \.validationSeed)
        set(checkpointEvery, \.checkpointEvery); set(logEvery, \.logEvery)
        return c
    }

    /// The run configuration of `mml train` / `mml ablate --retrain` from these flags over `base`'s training
    /// settings (the validation split, way, shot and queries are not saved in checkpoints: flags or defaults).
    func apply(to run: inout EpisodicTrainingRunConfiguration) throws {
        run.training = try configuration(over: run.training)
        run.validationSplit = valSplit ?? "val"
        run.validationWay = valWay
        run.validationShot = valShot
        run.validationQuery = valQuery ?? 15
    }
}

extension MetricOptions {
    /// The metric for an optional `--way` (nil: the default way), as `mml ablate` builds it.
    func configuration(way: Int?) throws -> MetricConfiguration {
        try configuration(way: way ?? EpisodicTrainingConfiguration().way)
    }
}

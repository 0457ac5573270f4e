import ArgumentParser
import Foundation
import MMLCore

/// The episodic training flags, shared by `mml train` and `mml ablate --retrain`.
struct TrainingOptions: ParsableArguments {
    @Option(help: "Validation split ('none' for no validation; the last epoch is then kept as best).")
    var valSplit = "val"

    @Option(help: "Classes per training episode.") var way = 5
    @Option(help: "Support images per class.") var shot = 1
    @Option(help: "Query images per class.") var query = 15
    @Option(help: "Episodes per epoch.") var episodesPerEpoch = 10_000
    @Option(help: "Epochs.") var epochs = 30
    @Option(help: "Episodes whose gradients are averaged into one optimiser step.") var episodesPerStep = 4
    @Option(help: "Optimiser: adam or sgd.") var optimizer = "adam"
    @Option(help: "Learning rate.") var lr: Float = 1e-3
    @Option(help: "Adam beta1.") var beta1: Float = 0.5
    @Option(help: "Adam beta2.") var beta2: Float = 0.9
    @Option(help: "SGD momentum.") var momentum: Float = 0.9
    @Option(help: "Weight decay.") var weightDecay: Float = 0
    @Option(help: "Schedule: step (x lr-factor every lr-step epochs), cosine or constant.") var schedule = "step"
    @Option(help: "Epochs between learning-rate steps.") var lrStep = 10
    @Option(help: "Learning-rate step factor.") var lrFactor: Float = 0.5
    @Option(help: "Freeze BatchNorm statistics after this many epochs (0: never).") var freezeBnAfter = 1
    @Option(help: "Seed of the training episodes, augmentation and DropBlock masks.") var seed: UInt64 = 1
    @Option(help: "Validation episodes after each epoch.") var valEpisodes = 200
    @Option(help: "Validation n-way (default: --way).") var valWay: Int?
    @Option(help: "Validation k-shot (default: --shot).") var valShot: Int?
    @Option(help: "Validation queries per class.") var valQuery = 15
    @Option(help: "Seed of the validation episodes.") var valSeed: UInt64 = 2
    @Option(help: "Write last.safetensors every this many episodes.") var checkpointEvery = 1000
    @Option(help: "Log averages every this many episodes.") var logEvery = 50

    /// The configuration these flags give. - Throws: `MMLError(.config)`.
    func configuration() throws -> EpisodicTrainingConfiguration {
        let c = EpisodicTrainingConfiguration(
            way: way, shot: shot, query: query, episodesPerEpoch: episodesPerEpoch, epochs: epochs,
            episodesPerStep: episodesPerStep, optimizer: optimizer, learningRate: lr, beta1: beta1, beta2: beta2,
            momentum: momentum, weightDecay: weightDecay, schedule: schedule, lrStepEpochs: lrStep,
            lrFactor: lrFactor, freezeBatchNormAfterEpochs: freezeBnAfter, seed: seed,
            validationEpisodes: valSplit == "none" ? 0 : valEpisodes, validationSeed: valSeed,
            checkpointEvery: checkpointEvery, logEvery: logEvery)
        try c.validate()
        return c
    }
}

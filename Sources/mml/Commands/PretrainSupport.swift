import ArgumentParser
import Foundation
import MMLCore

extension ClassifierHeadKind: ExpressibleByArgument {}
extension EmbeddingLossKind: ExpressibleByArgument {}
extension PositiveSelection: ExpressibleByArgument {}
extension NegativeSelection: ExpressibleByArgument {}
extension FrozenFeatureProtocol: ExpressibleByArgument {}

/// What `mml pretrain` and `mml train-embedding` set up before their training loops: the training split, a fresh
/// model of `kind` built from the shared option groups with the supervised defaults (`BackboneSettings.Defaults`),
/// the loader of its training images and the optimiser named by `--optimizer`.
struct SupervisedTrainingSetup {
    let trainSplit: String
    let train: any FewShotDataset
    let model: FewShotModel
    /// Training images (with any `--augment`).
    let loader: EpisodeLoader
    /// The image configuration for validation and evaluation (no augmentation).
    let evalImage: ImageConfig
    let optimizer: any Optimizer

    init(kind: String, dataset: DatasetOptions, backbone: BackboneOptions, image: ImageOptions, seed: UInt64,
         threads: Int, optimizer name: String, learningRate: Float, weightDecay: Float) throws {
        trainSplit = dataset.split ?? "train"
        let data = dataset.with(split: trainSplit)
        train = try data.open()
        let config = try backbone.modelConfiguration(kind: kind, dataset: data, image: image,
                                                     defaults: .supervised(seed: seed))
        model = try FewShotModel(config, threads: threads)
        loader = try EpisodeLoader(dataset: train, config: config.image)
        evalImage = config.image.forEvaluation
        optimizer = try makeOptimizer(name, learningRate: learningRate, weightDecay: weightDecay)
    }
}

/// The frozen-feature few-shot episodes of pretrain and train-embedding (validation and final evaluation): 5-way
/// `shot`-shot with 15 queries per class, classes with too few images left out.
func fiveWayEpisodes(_ data: any FewShotDataset, shot: Int, seed: UInt64) throws -> EpisodeSampler {
    try EpisodeSampler(dataset: data, way: 5, shot: shot, query: 15, seed: seed, dropSmallClasses: true)
}

/// The optimiser named by `--optimizer` (sgd: momentum 0.9; adam), with weight decay.
func makeOptimizer(_ name: String, learningRate: Float, weightDecay: Float) throws -> any Optimizer {
    switch name {
    case "sgd": return try SGD(learningRate: learningRate, momentum: 0.9, weightDecay: weightDecay)
    case "adam": return try Adam(learningRate: learningRate, weightDecay: weightDecay)
    default:
        throw MMLError(.invalidArgument, "--optimizer '\(name)' is unknown; use sgd or adam")
    }
}

/// Linear warm-up over `warmup` steps then cosine annealing to 0 over the rest of `total` steps.
func warmupCosineSchedule(total: Int, warmup: Int) -> LearningRateSchedule {
    let rest = max(total - warmup, 1)
    return warmup > 0 ? .warmup(steps: warmup, then: .cosine(total: rest, minimum: 0)) : .cosine(total: rest, minimum: 0)
}

/// Images of `refs` as a tensor through `loader` in chunks, mapped by `body` and concatenated along dim 0.
func mapInChunks(_ refs: [ItemRef], loader: EpisodeLoader, chunk: Int = 256,
                 _ body: (Tensor) throws -> Tensor) throws -> Tensor {
    var out: Tensor?
    var start = 0
    while start < refs.count {
        let end = min(refs.count, start + chunk)
        let y = try body(try loader.tensor(for: Array(refs[start..<end])))
        if out == nil { out = Tensor(shape: [refs.count] + Array(y.shape.dropFirst())); out!.data = [] }
        out!.data += y.data
        start = end
    }
    return out ?? Tensor(shape: [0])
}

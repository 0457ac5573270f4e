import Foundation

/// What `PretrainingRun` and `EmbeddingTrainingRun` set up before their training loops: the training split, a fresh
/// model of `kind` with the supervised defaults (`BackboneSettings.Defaults.supervised`), the loader of its training
/// images and the optimiser.
struct SupervisedTrainingSetup {
    let trainSplit: String
    let train: any FewShotDataset
    let model: FewShotModel
    /// Training images (with any augmentation).
    let loader: EpisodeLoader
    /// The image configuration for validation and evaluation (no augmentation).
    let evalImage: ImageConfig
    let optimizer: any Optimizer

    init(kind: String, dataset: DatasetSource, backbone: BackboneSettings, image: ImageSettings, seed: UInt64,
         threads: Int, optimizer: OptimizerKind, learningRate: Float, weightDecay: Float) throws {
        trainSplit = dataset.split ?? "train"
        let data = dataset.with(split: trainSplit)
        train = try data.open()
        let config = try backbone.modelConfiguration(kind: kind, dataset: data, image: image,
                                                     defaults: .supervised(seed: seed))
        model = try FewShotModel(config, threads: threads)
        loader = try EpisodeLoader(dataset: train, config: config.image)
        evalImage = config.image.forEvaluation
        self.optimizer = try optimizer.makeSupervisedOptimizer(learningRate: learningRate, weightDecay: weightDecay)
    }

    /// Bytes of one checkpoint of the model with `extra` float values more (heads, embedding layers).
    func checkpointBytes(extra: Int) -> Int64 {
        OutputCheck.checkpointBytes(parameters: model.namedParameters().reduce(0) { $0 + $1.parameter.value.count }
                                        + extra, moments: 0)
    }
}

extension OptimizerKind {
    /// The optimiser of pre-training and embedding training: sgd with momentum 0.9, or adam (default betas).
    func makeSupervisedOptimizer(learningRate: Float, weightDecay: Float) throws -> any Optimizer {
        switch self {
        case .sgd: return try SGD(learningRate: learningRate, momentum: 0.9, weightDecay: weightDecay)
        case .adam: return try Adam(learningRate: learningRate, weightDecay: weightDecay)
        }
    }

    /// The kind named `name`, with the message pre-training and embedding training always gave.
    /// - Throws: `MMLError(.config)` naming `optimizer`.
    public static func parseSupervised(_ name: String) throws -> OptimizerKind {
        guard let kind = OptimizerKind(rawValue: name) else {
            throw MMLError(.config, "`optimizer` '\(name)' is unknown; use sgd or adam")
        }
        return kind
    }
}

/// The frozen-feature few-shot episodes of pre-training and embedding evaluation (validation and final
/// evaluation): 5-way `shot`-shot with 15 queries per class, classes with too few images left out.
func fiveWayEpisodes(_ data: any FewShotDataset, shot: Int, seed: UInt64) throws -> EpisodeSampler {
    try EpisodeSampler(dataset: data, way: 5, shot: shot, query: 15, seed: seed, dropSmallClasses: true)
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

/// Checks shared by the supervised configurations. - Throws: `MMLError(.config)` naming `field`.
func requireAtLeastOne(_ value: Int, _ field: String) throws {
    guard value >= 1 else { throw MMLError(.config, "`\(field)` must be >= 1, got \(value)") }
}

import ArgumentParser
import Foundation
import MMLCore

extension ClassifierHeadKind: ExpressibleByArgument {}
extension EmbeddingLossKind: ExpressibleByArgument {}
extension PositiveSelection: ExpressibleByArgument {}
extension NegativeSelection: ExpressibleByArgument {}
extension FrozenFeatureProtocol: ExpressibleByArgument {}

/// What `mml pretrain` and `mml train-embedding` set up before their training loops: the training split, a fresh
/// model of `kind` built from the shared option groups with the supervised defaults (`BackboneOptions.Defaults`),
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

/// Prints a line on standard output immediately (progress lines of long runs).
func progressLine(_ text: String) {
    print(text)
    fflush(stdout)
}

/// Prints a warning on standard error.
func warn(_ text: String) {
    FileHandle.standardError.write(Data("warning: \(text)\n".utf8))
}

/// Checks a positive integer option. - Throws: `MMLError(.invalidArgument)` naming the flag.
func requirePositive(_ value: Int, _ flag: String) throws {
    guard value >= 1 else { throw MMLError(.invalidArgument, "\(flag) must be >= 1, got \(value)") }
}

/// Checks a non-negative finite number option. - Throws: `MMLError(.invalidArgument)` naming the flag.
func requireNonNegative(_ value: Float, _ flag: String) throws {
    guard value.isFinite, value >= 0 else {
        throw MMLError(.invalidArgument, "\(flag) must be a number >= 0, got \(value)")
    }
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

/// Compact JSON of a dictionary (sorted keys), for JSONL logs and checkpoint state.
func jsonLine(_ object: [String: Any]) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    return String(decoding: data, as: UTF8.self)
}

/// A JSONL log rewritten atomically after every record.
final class JSONLLog {
    let path: String
    private var lines: [String] = []
    init(path: String) { self.path = path }

    /// Creates the output directory `dir` (and parents) and returns the log `dir/log.jsonl`.
    /// - Throws: `MMLError(.io)` saying why the directory cannot be created.
    static func inOutputDirectory(_ dir: String) throws -> JSONLLog {
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw MMLError(.io, "cannot create the output directory \(dir): \(error.localizedDescription); "
                           + "choose a writable --out")
        }
        return JSONLLog(path: dir + "/log.jsonl")
    }

    func append(_ object: [String: Any]) throws {
        lines.append(jsonLine(object))
        try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: path)
    }
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

import ArgumentParser
import Foundation
import MMLCore

extension ClassifierHeadKind: ExpressibleByArgument {}
extension EmbeddingLossKind: ExpressibleByArgument {}
extension PositiveSelection: ExpressibleByArgument {}
extension NegativeSelection: ExpressibleByArgument {}
extension FrozenFeatureProtocol: ExpressibleByArgument {}

/// Backbone and image options shared by `mml pretrain` and `mml train-embedding`.
struct BackboneImageOptions: ParsableArguments {
    @Option(help: "Backbone: conv4, conv64f or resnet12.")
    var backbone: BackboneKind = .conv4

    @Option(help: "Image side the network sees (28 for Omniglot, 84 for mini-ImageNet).")
    var imageSize = 84

    @Option(help: "Image channels (default: 1 for Omniglot layouts and 1-channel synthetic data, else 3).")
    var channels: Int?

    @Option(help: "Comma-separated channel widths per block / stage (default: the architecture's own).")
    var widths: String?

    /// The channel count for `dataset`.
    func resolvedChannels(_ dataset: DatasetOptions) -> Int {
        if let channels { return channels }
        if dataset.layout == .omniglot || dataset.layout == .omniglotVinyals { return 1 }
        if dataset.path == "synthetic" { return dataset.syntheticChannels ?? 3 }
        return 3
    }

    /// The parsed `--widths`. - Throws: `MMLError(.invalidArgument)` for a malformed list.
    func resolvedWidths() throws -> [Int]? {
        guard let widths else { return nil }
        let parts = widths.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw MMLError(.invalidArgument, "--widths '\(widths)' must be comma-separated positive integers, "
                           + "e.g. 64,64,64,64")
        }
        return parts.map { $0! }
    }

    /// A model configuration of `kind` for `dataset` (no metric).
    func configuration(kind: String, dataset: DatasetOptions, seed: UInt64) throws -> ModelConfiguration {
        let c = resolvedChannels(dataset)
        return ModelConfiguration(kind: kind, backbone: backbone, inputChannels: c, widths: try resolvedWidths(),
                                  initialization: .kaiming, seed: seed, image: ImageConfig(size: imageSize, channels: c),
                                  metric: nil)
    }
}

/// The same dataset options with another split.
func datasetOptions(_ options: DatasetOptions, split: String) -> DatasetOptions {
    var o = options
    o.split = split
    return o
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
    func append(_ object: [String: Any]) throws {
        lines.append(jsonLine(object))
        try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: path)
    }
}

/// Creates `dir` (and parents). - Throws: `MMLError(.io)` saying why not.
func makeOutputDirectory(_ dir: String) throws {
    do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
        throw MMLError(.io, "cannot create the output directory \(dir): \(error.localizedDescription); "
                       + "choose a writable --out")
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

import ArgumentParser
import Foundation
import MMLCore

/// `mml train-embedding`: metric learning with triplet / margin losses on P x K batches, with easy-positive
/// sampling (METHOD.md section 4; Levi et al. 2021), and retrieval evaluation on held-out classes.
struct TrainEmbeddingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-embedding",
        abstract: "Train an embedding with a triplet or margin loss on P x K batches (random, hardest or easy positives).",
        discussion: """
        Embedding = backbone output globally average-pooled, optionally a linear layer to --dim, L2-normalised; \
        distances are Euclidean on the normalised embeddings. Writes DIR/embedding.safetensors (kind "embedding"; \
        the linear layer as extra tensors embedding.weight / embedding.bias, the margin loss's beta as loss.beta) \
        DIR/last.safetensors (resumable: weights, layer, optimiser state and position, every --checkpoint-every \
        iterations and on SIGINT / SIGTERM / SIGHUP; --resume continues from it) and DIR/log.jsonl, then reports Recall@1/2/4/8, R-precision and MAP@R on the held-out split (every image \
        a query against all others) and 5-way 1-/5-shot nearest-prototype accuracy of the same embedding. \
        --eval-only CKPT evaluates a saved embedding.
        """
    )

    @OptionGroup var dataset: DatasetOptions
    @OptionGroup var backboneOptions: BackboneOptions
    @OptionGroup var image: ImageOptions

    @Option(help: "Loss: triplet or margin (Wu et al., learnable beta).")
    var loss: EmbeddingLossKind = .triplet
    @Option(help: "Positive selection: random, hardest or easy (EPS).")
    var positives: PositiveSelection = .easy
    @Option(help: "Negative selection: semi-hard or distance-weighted.")
    var negatives: NegativeSelection = .semiHard
    @Option(help: "Margin alpha.")
    var margin: Float = 0.2
    @Option(help: "Initial beta of the margin loss.")
    var beta0: Float = 1.2
    @Option(help: "Embedding size: a linear layer from the pooled features to this size (0: no layer).")
    var dim = 0
    @Option(name: .customLong("classes-per-batch"), help: "P: classes per batch.")
    var p = 16
    @Option(name: .customLong("images-per-class"), help: "K: images per class in a batch.")
    var k = 4
    @Option(help: "Training iterations (batches).")
    var iterations = 1000
    @Option(help: "Base learning rate (cosine schedule to 0).")
    var lr: Float = 1e-3
    @Option(help: "Optimiser: adam or sgd (momentum 0.9).")
    var optimizer = "adam"
    @Option(help: "Weight decay.")
    var weightDecay: Float = 0
    @Option(help: "Held-out split for the evaluation.")
    var evalSplit = "test"
    @Option(help: "Few-shot episodes of the evaluation (0: retrieval only).")
    var evalEpisodes = 600
    @Option(help: "Evaluate this embedding checkpoint instead of training.")
    var evalOnly: String?
    @Option(help: "Seed of weights, batches, tuple sampling and evaluation episodes.")
    var seed: UInt64 = 0
    @Option(help: "Threads for the layer kernels (0 = all cores).")
    var threads = 0
    @Option(help: "Print a progress line every N iterations.")
    var logEvery = 100
    @Option(help: "Output directory (required unless --eval-only).")
    var out: String?
    @Flag(help: "Continue the run in --out from its last.safetensors (the same options).")
    var resume = false
    @Option(help: "Write last.safetensors every N iterations (and at the end and when stopped).")
    var checkpointEvery = 100

    func run() throws {
        try runReportingErrors { try Signals.stoppable("train-embedding") {
            let run = try EmbeddingTrainingRun(configuration())
            run.stop = Signals.stop
            Signals.install(evalOnly == nil ? "finishing the current iteration, then saving \(out ?? "")/last.safetensors"
                            : "stopping after the current episode")
            let result = try run.run(events: SupervisedRunPrinter.print)
            progressLine(try SupervisedRunPrinter.resultLine(result.evaluation))
        } }
    }

    /// The core configuration these options give. - Throws: `MMLError(.config)` for an unknown name.
    func configuration() throws -> EmbeddingTrainingRunConfiguration {
        EmbeddingTrainingRunConfiguration(
            dataset: dataset.source, image: try image.settings(), backbone: try backboneOptions.settings(),
            loss: EmbeddingLossConfiguration(loss: loss, positives: positives, negatives: negatives, margin: margin),
            beta0: beta0, dim: dim, classesPerBatch: p, imagesPerClass: k, iterations: iterations, learningRate: lr,
            optimizer: try OptimizerKind.parseSupervised(optimizer), weightDecay: weightDecay, evalSplit: evalSplit,
            evalEpisodes: evalEpisodes, evalOnly: evalOnly, seed: seed, threads: threads, logEvery: logEvery, out: out,
            resume: resume, checkpointEvery: checkpointEvery)
    }
}

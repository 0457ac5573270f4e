import ArgumentParser
import Foundation
import MMLCore

/// `mml pretrain`: supervised pre-training of a backbone on all base classes with a (negative-)margin classifier
/// head (METHOD.md section 3; Liu et al. 2020).
struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pre-train a backbone as a classifier over all base classes (softmax, cosine, neg-cosine, neg-softmax).",
        discussion: """
        Mini-batches over every image of the training split; features are the backbone output globally \
        average-pooled. Learning rate: linear warm-up, then cosine annealing to 0 (per iteration). Each epoch the \
        backbone is validated by nearest-prototype few-shot episodes on the validation split. Writes \
        DIR/backbone.safetensors (last epoch, with the head as extra tensor head.weight), DIR/best.safetensors \
        (best validation accuracy), DIR/last.safetensors (resumable: weights, head, optimiser state and position, \
        at each epoch's end, every --checkpoint-every batches and on SIGINT / SIGTERM / SIGHUP) and DIR/log.jsonl. \
        --resume continues the run in --out exactly where it stopped.
        """
    )

    @OptionGroup var dataset: DatasetOptions
    @OptionGroup var backboneOptions: BackboneOptions
    @OptionGroup var image: ImageOptions

    @Option(help: "Classifier head and loss: softmax, cosine, neg-cosine or neg-softmax.")
    var loss: ClassifierHeadKind = .negCosine
    @Option(help: "Margin m of neg-cosine / neg-softmax (negative raises the target logit).")
    var margin: Float = 0
    @Option(help: "Scale s (default 30 for cosine heads, 5 for neg-softmax).")
    var scale: Float?
    @Option(help: "Epochs.")
    var epochs = 10
    @Option(help: "Images per mini-batch.")
    var batchSize = 128
    @Option(help: "Stop each epoch after this many batches (default: all).")
    var maxBatches: Int?
    @Option(help: "Base learning rate.")
    var lr: Float = 0.1
    @Option(help: "Epochs of linear learning-rate warm-up before the cosine schedule.")
    var warmupEpochs = 0
    @Option(help: "Optimiser: sgd (momentum 0.9) or adam.")
    var optimizer = "sgd"
    @Option(help: "Weight decay.")
    var weightDecay: Float = 5e-4
    @Option(help: "Validation split ('none' to skip validation).")
    var valSplit = "val"
    @Option(help: "Validation episodes per epoch (5-way 1-shot, 15 queries, nearest prototype).")
    var valEpisodes = 100
    @Option(help: "After training, evaluate the best-on-validation backbone (last without validation) on this many 5-way 1-shot and 5-shot episodes of --test-split (0: none).")
    var testEpisodes = 0
    @Option(help: "Split of the final few-shot evaluation.")
    var testSplit = "test"
    @Option(help: "Comma-separated protocols of the final evaluation: prototype, cosine-classifier.")
    var testProtocols = "prototype,cosine-classifier"
    @Option(help: "Seed of weights, batch order and validation episodes.")
    var seed: UInt64 = 0
    @Option(help: "Threads for the layer kernels (0 = all cores).")
    var threads = 0
    @Option(help: "Print a progress line every N batches (0: only per epoch).")
    var logEvery = 100
    @Option(help: "Output directory.")
    var out: String
    @Flag(help: "Continue the run in --out from its last.safetensors (the same options; stopped by a signal, killed, or finished and only the test left).")
    var resume = false
    @Option(help: "Also write last.safetensors every N batches (0: at each epoch's end and when stopped).")
    var checkpointEvery = 0

    func run() throws {
        try runReportingErrors { try Signals.stoppable("pretrain") {
            let run = try PretrainingRun(configuration())
            run.stop = Signals.stop
            Signals.install("finishing the current batch, then saving \(out)/last.safetensors")
            _ = try run.run(events: SupervisedRunPrinter.print)
        } }
    }

    /// The core configuration these options give. - Throws: `MMLError(.config)` for an unknown name.
    func configuration() throws -> PretrainingRunConfiguration {
        PretrainingRunConfiguration(
            dataset: dataset.source, image: try image.settings(), backbone: try backboneOptions.settings(), loss: loss,
            margin: margin, scale: scale, epochs: epochs, batchSize: batchSize, maxBatches: maxBatches,
            learningRate: lr, warmupEpochs: warmupEpochs, optimizer: try OptimizerKind.parseSupervised(optimizer),
            weightDecay: weightDecay, validationSplit: valSplit == "none" ? nil : valSplit,
            validationEpisodes: valEpisodes, testEpisodes: testEpisodes, testSplit: testSplit,
            testProtocols: try PretrainingRunConfiguration.parseProtocols(testProtocols), seed: seed,
            threads: threads, logEvery: logEvery, out: out, resume: resume, checkpointEvery: checkpointEvery)
    }
}

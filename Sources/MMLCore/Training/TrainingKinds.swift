import Foundation

/// The optimiser of a training run. Encoded as its raw value (`adam`, `sgd`), as checkpoints' training states
/// always held it.
public enum OptimizerKind: String, Codable, Sendable, CaseIterable, NamedChoice {
    /// Adam (betas from the run's configuration).
    case adam
    /// SGD with momentum.
    case sgd

    /// The configuration field named in parse errors.
    public static let field = "optimizer"
}

/// The learning-rate schedule of episodic training. Encoded as its raw value (`step`, `cosine`, `constant`).
public enum ScheduleKind: String, Codable, Sendable, CaseIterable, NamedChoice {
    /// Times `lrFactor` every `lrStepEpochs` epochs.
    case step
    /// Cosine annealing to 0 over all optimiser steps.
    case cosine
    /// The base rate throughout.
    case constant

    /// The configuration field named in parse errors.
    public static let field = "schedule"
}

/// What `PretrainingRun`, `EmbeddingTrainingRun` and `RetrievalEvaluationRun` report while they work
/// (`RunEvent.supervised`). Numbers are raw (fractions, seconds); front ends format them.
public enum SupervisedTrainingEvent: Sendable {
    /// Pre-training, every `logEvery` batches: the epoch's running means so far.
    case batch(epoch: Int, batch: Int, batches: Int, loss: Double, accuracy: Double, learningRate: Float,
               seconds: Double)
    /// Pre-training, at an epoch's end: its means, the validation accuracy (nil without validation) and whether it
    /// is the best so far (`best.safetensors` was written).
    case epoch(epoch: Int, epochs: Int, loss: Double, accuracy: Double, seconds: Double,
               validation: AccuracySummary?, isBest: Bool)
    /// Pre-training, after the last epoch: the checkpoints written (`best` nil without validation).
    case checkpoints(last: String, best: String?)
    /// Pre-training's final evaluation: one protocol on `episodes` 5-way `shot`-shot episodes of `split`.
    case test(split: String, shot: Int, protocol: FrozenFeatureProtocol, episodes: Int, summary: AccuracySummary,
              seconds: Double)
    /// Embedding training, every `logEvery` iterations and at the last: the window's means.
    case iteration(iteration: Int, iterations: Int, loss: Double, activeFraction: Double, beta: Float,
                   learningRate: Float, seconds: Double)
    /// Retrieval evaluation: the metrics on `classes` held-out classes of `dataset` (its name) and `split`.
    case retrieval(dataset: String, split: String, classes: Int, metrics: RetrievalMetrics, seconds: Double)
    /// Retrieval evaluation's few-shot part: nearest-prototype accuracy on `episodes` 5-way `shot`-shot episodes.
    case fewShot(shot: Int, episodes: Int, summary: AccuracySummary)
}

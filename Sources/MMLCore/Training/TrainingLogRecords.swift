import Foundation

/// The records the training runs write to their `log.jsonl` (one compact JSON object per line, sorted keys), as
/// Codable types with the log's key names. Learning rates are stored as the Double of the Float the optimiser used.

/// Episodic training: the mean loss and accuracy of a log window (`"event": "train"`).
public struct EpisodicTrainLogRecord: Codable, Sendable, Equatable {
    public var event = "train"
    public var episode: Int
    public var epoch: Int
    public var loss: Double
    public var accuracy: Double
    public var lr: Double
    public var elapsed: Double
}

/// Episodic training: an epoch's validation (`"event": "validation"`), per-level accuracies as `accuracy_<level>`.
public struct EpisodicValidationLogRecord: Codable, Sendable, Equatable {
    public var event = "validation"
    public var episode: Int
    public var epoch: Int
    public var accuracy: Double
    public var ci95: Double
    public var best: Bool
    /// Accuracy of each level's own scores, by level name.
    public var levels: [String: Double]

    init(episode: Int, epoch: Int, accuracy: Double, ci95: Double, best: Bool, levels: [String: Double]) {
        (self.episode, self.epoch, self.accuracy, self.ci95, self.best, self.levels) =
            (episode, epoch, accuracy, ci95, best, levels)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: FlatKey.self)
        try c.encode(event, forKey: FlatKey("event"))
        try c.encode(episode, forKey: FlatKey("episode"))
        try c.encode(epoch, forKey: FlatKey("epoch"))
        try c.encode(accuracy, forKey: FlatKey("accuracy"))
        try c.encode(ci95, forKey: FlatKey("ci95"))
        try c.encode(best, forKey: FlatKey("best"))
        for (k, v) in levels { try c.encode(v, forKey: FlatKey("accuracy_" + k)) }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: FlatKey.self)
        event = try c.decode(String.self, forKey: FlatKey("event"))
        episode = try c.decode(Int.self, forKey: FlatKey("episode"))
        epoch = try c.decode(Int.self, forKey: FlatKey("epoch"))
        accuracy = try c.decode(Double.self, forKey: FlatKey("accuracy"))
        ci95 = try c.decode(Double.self, forKey: FlatKey("ci95"))
        best = try c.decode(Bool.self, forKey: FlatKey("best"))
        levels = [:]
        for key in c.allKeys where key.stringValue.hasPrefix("accuracy_") {
            levels[String(key.stringValue.dropFirst("accuracy_".count))] = try c.decode(Double.self, forKey: key)
        }
    }
}

/// Pre-training: an epoch's training means and validation accuracy (absent without validation).
public struct PretrainingEpochLogRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    public var loss: Double
    public var accuracy: Double
    public var lr: Double
    public var seconds: Double
    public var validationAccuracy: Double?
    public var validationCI95: Double?

    enum CodingKeys: String, CodingKey {
        case epoch, loss, accuracy, lr, seconds
        case validationAccuracy = "val_accuracy"
        case validationCI95 = "val_ci95"
    }
}

/// Pre-training's final evaluation: `<protocol>_5way_<shot>shot` and `..._ci95` for each protocol and shot.
public struct PretrainingTestLogRecord: Codable, Sendable, Equatable {
    public var testSplit: String
    public var checkpoint: String
    /// Accuracies (means and ci95s) by their log key.
    public var scores: [String: Double]

    init(testSplit: String, checkpoint: String, scores: [String: Double] = [:]) {
        (self.testSplit, self.checkpoint, self.scores) = (testSplit, checkpoint, scores)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: FlatKey.self)
        try c.encode(testSplit, forKey: FlatKey("test_split"))
        try c.encode(checkpoint, forKey: FlatKey("checkpoint"))
        for (k, v) in scores { try c.encode(v, forKey: FlatKey(k)) }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: FlatKey.self)
        testSplit = try c.decode(String.self, forKey: FlatKey("test_split"))
        checkpoint = try c.decode(String.self, forKey: FlatKey("checkpoint"))
        scores = [:]
        for key in c.allKeys where key.stringValue != "test_split" && key.stringValue != "checkpoint" {
            scores[key.stringValue] = try c.decode(Double.self, forKey: key)
        }
    }
}

/// Embedding training: the means of a log window of iterations.
public struct EmbeddingIterationLogRecord: Codable, Sendable, Equatable {
    public var iteration: Int
    public var loss: Double
    public var activeFraction: Double
    public var beta: Double
    public var lr: Double
    public var seconds: Double

    enum CodingKeys: String, CodingKey {
        case iteration, loss, beta, lr, seconds
        case activeFraction = "active_fraction"
    }
}

/// A coding key spelled at run time (records with per-level or per-protocol keys).
struct FlatKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

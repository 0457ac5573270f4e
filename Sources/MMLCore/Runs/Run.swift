/// A run's whole configuration: one Codable value that checks itself, naming the invalid field.
public protocol RunConfiguration: Codable, Sendable {
    /// - Throws: `MMLError` naming the invalid field.
    func validate() throws
}

/// What every run of MMLCore is built on: its configuration, validated once when the run is made. A run adds
/// `run(events:) throws -> Result`, reporting `RunEvent`s to the callback and returning a Codable result.
public class ConfiguredRun<Configuration: RunConfiguration> {
    /// The run's whole configuration (validated).
    public let configuration: Configuration

    /// - Throws: `MMLError` naming the invalid field of `configuration`.
    public init(_ configuration: Configuration) throws {
        try configuration.validate()
        self.configuration = configuration
    }
}

extension EpisodicTrainingRunConfiguration: RunConfiguration {}
extension PretrainingRunConfiguration: RunConfiguration {}
extension EmbeddingTrainingRunConfiguration: RunConfiguration {}
extension RetrievalEvaluationRunConfiguration: RunConfiguration {}
extension EvaluationRunConfiguration: RunConfiguration {}
extension AblationRunConfiguration: RunConfiguration {}
extension EpisodeScoringRunConfiguration: RunConfiguration {}

/// What a run reports while it works, for progress bars, log lines and library callbacks. Every run in
/// MMLCore (`EpisodicTrainingRun`, `PretrainingRun`, `EmbeddingTrainingRun`, `EvaluationRun`, `AblationRun`,
/// `RetrievalEvaluationRun`) takes one `(RunEvent) -> Void` callback; the CLI turns events into its progress bar and
/// lines, a harness gets the same events.
public enum RunEvent: Sendable {
    /// What the run is about to do, as key / value facts (`model`, `data`, `episodes`, ...), in order.
    case started(run: String, facts: [(key: String, value: String)])
    /// Progress through a phase (`training`, `validation`, `test episodes`, ...): `done` of `total` units.
    case progress(phase: String, done: Int, total: Int)
    /// An event of episodic training (episodes, log windows, validations, checkpoints).
    case training(TrainingEvent)
    /// A file the run wrote (checkpoint, log, report).
    case wrote(path: String, what: String)
    /// Something the user should know that does not stop the run.
    case warning(String)
    /// A line of information in the run's own words (the CLI prints it as it is).
    case note(String)

    // evaluation runs (`EvaluationRun`, `AblationRun`)
    /// An evaluation finished one (way, shot) setting: its accuracies, as they go into the result.
    case evaluated(EvaluationRunResult.Setting)
    /// An ablation's retraining of one level subset (`levels`) into `directory`: `reused` when a finished run was
    /// found there, else its training is about to start.
    case ablationSubsetStarted(levels: [MetricLevel], directory: String, reused: Bool)
    /// An ablation finished training one level subset: `episodes` training episodes in `seconds`.
    case ablationSubsetTrained(levels: [MetricLevel], episodes: Int, seconds: Double)

    // training runs (PretrainingRun, EmbeddingTrainingRun, RetrievalEvaluationRun)
    /// An event of pre-training, embedding training or retrieval evaluation.
    case supervised(SupervisedTrainingEvent)
}

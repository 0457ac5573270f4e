import ArgumentParser
import Foundation
import MMLCore

extension ClassifierHeadKind: ExpressibleByArgument {}
extension EmbeddingLossKind: ExpressibleByArgument {}
extension PositiveSelection: ExpressibleByArgument {}
extension NegativeSelection: ExpressibleByArgument {}
extension FrozenFeatureProtocol: ExpressibleByArgument {}

/// The lines `mml pretrain` and `mml train-embedding` print for the events of `PretrainingRun`,
/// `EmbeddingTrainingRun` and `RetrievalEvaluationRun` (standard output, flushed per line; warnings on stderr).
enum SupervisedRunPrinter {
    static func print(_ event: RunEvent) {
        switch event {
        case .started(let run, let facts):
            let f = Dictionary(facts, uniquingKeysWith: { a, _ in a })
            progressLine(run == "pretrain" ? pretrainHeader(f) : embeddingHeader(f))
        case .warning(let text):
            warn(text)
        case .wrote(let path, _):
            progressLine("wrote \(path)")
        case .note(let text):
            progressLine(text)
        case .supervised(let e):
            progressLine(line(e))
        case .progress, .training, .evaluated, .ablationSubsetStarted, .ablationSubsetTrained:
            break
        }
    }

    static func pretrainHeader(_ f: [String: String]) -> String {
        "pretrain \(f["data"]!) [\(f["split"]!)]: \(f["classes"]!) classes, \(f["images"]!) images, \(f["batches"]!) "
            + "batches of \(f["batchSize"]!) per epoch; \(f["backbone"]!) \(f["image"]!), head \(f["loss"]!) "
            + "s=\(f["scale"]!) m=\(f["margin"]!), \(f["optimizer"]!) lr \(f["learningRate"]!)"
    }

    static func embeddingHeader(_ f: [String: String]) -> String {
        "train-embedding \(f["data"]!): \(f["classes"]!) classes, P \(f["classesPerBatch"]!) x K \(f["imagesPerClass"]!), "
            + "\(f["loss"]!) loss (alpha \(f["margin"]!)), \(f["positives"]!) positives, \(f["negatives"]!) negatives, "
            + "\(f["backbone"]!), dim \(f["dim"]!), \(f["optimizer"]!) lr \(f["learningRate"]!)"
    }

    static func line(_ e: SupervisedTrainingEvent) -> String {
        switch e {
        case .batch(let epoch, let batch, let batches, let loss, let acc, let lr, let seconds):
            return String(format: "  epoch %d batch %d/%d  loss %.4f  acc %.2f%%  lr %.5f  %.1f s", epoch, batch,
                          batches, loss, acc * 100, lr, seconds)
        case .epoch(let epoch, let epochs, let loss, let acc, let seconds, let validation, let isBest):
            var line = String(format: "epoch %d/%d  loss %.4f  acc %.2f%%  %.1f s", epoch, epochs, loss, acc * 100,
                              seconds)
            if let validation { line += "  val 5-way 1-shot " + validation.percentString + "%" }
            return line + (isBest ? " (best)" : "")
        case .checkpoints(let last, let best):
            return "wrote \(last)" + (best.map { " and \($0)" } ?? "")
        case .test(let split, let shot, let proto, let episodes, let summary, let seconds):
            return "test \(split) 5-way \(shot)-shot \(proto.rawValue) (\(episodes) episodes): "
                + summary.percentString + String(format: "%%  (%.1f s)", seconds)
        case .iteration(let it, let iterations, let loss, let active, let beta, let lr, let seconds):
            return String(format: "  iter %d/%d  loss %.4f  active %.2f  beta %.3f  lr %.2e  %.1f s", it, iterations,
                          loss, active, beta, lr, seconds)
        case .retrieval(let name, let split, let classes, let m, let seconds):
            return "retrieval on \(name) [\(split)]: \(classes) classes, \(m.queries) queries: " + m.summary
                + String(format: "  (%.1f s)", seconds)
        case .fewShot(let shot, let episodes, let summary):
            return "few-shot 5-way \(shot)-shot (\(episodes) episodes, nearest prototype): " + summary.percentString + "%"
        }
    }

    /// The `result {...}` line: the evaluation's Codable result, compact with sorted keys.
    static func resultLine(_ r: RetrievalEvaluationRunResult) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return "result " + String(decoding: try enc.encode(r), as: UTF8.self)
    }
}

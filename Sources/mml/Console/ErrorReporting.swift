import ArgumentParser
import Foundation
import MMLCore

/// Runs `body`, printing an `MMLError` as "error: ..." (configuration fields spelled as this tool's flags) and
/// exiting non-zero.
func runReportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch let error where !(error is ExitCode || error is CleanExit) {
        // Any other error (a file-system one from Foundation) in words too: never an error domain and code.
        let e = error as? MMLError ?? MMLError(.io, MMLError.describe(error))
        // One rank of several: name it and end the whole job (the other ranks may be waiting for this one).
        if let mpi = Launch.mpi, mpi.size > 1 { mpi.abort(message: "error: \(FlagNames.render(e))") }
        FileHandle.standardError.write(Data("error: \(FlagNames.render(e))\n".utf8))
        Launch.finish()
        throw ExitCode(1)
    }
}

/// The one table from the core's configuration field names to the command-line flags that set them. A field not
/// listed is spelled by rule: `episodesPerEpoch` -> `--episodes-per-epoch`, and the last component of a dotted path
/// (`training.way` -> `--way`).
enum FlagNames {
    /// Fields whose flag does not follow the rule.
    static let exceptions: [String: String] = [
        "learningRate": "--lr",
        "lrStepEpochs": "--lr-step",
        "freezeBatchNormAfterEpochs": "--freeze-bn-after",
        "validationEpisodes": "--val-episodes",
        "validationSeed": "--val-seed",
        "validationSplit": "--val-split",
        "validationWay": "--val-way",
        "validationShot": "--val-shot",
        "validationQuery": "--val-query",
        "pixelNeighbours": "--pixel-k",
        "partNeighbours": "--part-k",
        "initSeed": "--init-seed",
        "initFrom": "--init",
        "classesPerBatch": "--classes-per-batch",
        "imagesPerClass": "--images-per-class",
        "augmentation": "--augment",
        "out": "--out",
        "output": "--out",
        "input": "INPUT",
        "image.size": "--image-size",
        "image.channels": "--channels",
        "image.preprocessing": "--ink/--resize-filter/--mean/--std",
        "backbone.kind": "--backbone",
        "backbone.seed": "--init-seed",
        // evaluation runs (`EvaluationRun`, `AblationRun`, `EpisodeScoringRun`): dotted paths are looked up whole.
        "evaluationProtocol": "--protocol",
        "ways": "--way",
        "shots": "--shot",
        "cosineClassifier.passes": "--classifier-passes",
        "cosineClassifier.batchSize": "--classifier-batch-size",
        "cosineClassifier.learningRate": "--classifier-lr",
        "cosineClassifier.momentum": "--classifier-momentum",
        "cosineClassifier.dampening": "--classifier-dampening",
        "cosineClassifier.weightDecay": "--classifier-weight-decay",
        "cosineClassifier.scale": "--classifier-scale",
        "cosineClassifier.seed": "--classifier-seed",
    ]

    /// The flag for a configuration field.
    static func flag(_ field: String) -> String {
        if let f = exceptions[field] { return f }  // a whole dotted path (evaluation runs)
        let name = field.split(separator: ".").last.map(String.init) ?? field
        if let f = exceptions[name] { return f }
        var out = "--"
        for ch in name {
            if ch.isUppercase { out += "-" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }

    /// The error's message with each field named by its flag.
    static func render(_ error: MMLError) -> String { error.rendered(naming: flag) }
}

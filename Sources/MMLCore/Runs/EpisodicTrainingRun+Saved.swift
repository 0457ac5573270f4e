import Foundation

/// The model and training settings of a saved episodic run: what a checkpoint's JSON sidecar (`last.json` /
/// `best.json` beside the safetensors, `Checkpoint.sidecarPath`) holds, to start a new run with the same settings.
public struct SavedEpisodicSettings: Sendable, Equatable {
    public var image: ImageSettings
    public var backbone: BackboneSettings
    public var metric: MetricConfiguration
    public var training: EpisodicTrainingConfiguration

    private struct Sidecar: Decodable {
        struct State: Decodable { var training: EpisodicTrainingConfiguration }
        var model: ModelConfiguration
        var state: State
    }

    /// Reads the sidecar at `path` (field `config` in messages), or the metadata of the checkpoint `path` names
    /// when it ends in `.safetensors`. A sidecar that disagrees with the checkpoint beside it (a write was
    /// interrupted between the two files) is refused.
    /// - Throws: `MMLError(.fileNotFound)` when there is no file, `MMLError(.config)` when it is not the sidecar of
    ///   an episodic training checkpoint; both name the file and say what to give instead.
    public init(contentsOf path: String) throws {
        let hint = "give the .json that mml train writes beside last.safetensors / best.safetensors (e.g. runs/mml/last.json)"
        let data: Data
        if path.hasSuffix(".safetensors") {
            // The checkpoint itself: its metadata is what its sidecar would say.
            data = Data(Checkpoint.sidecarText(checkpoint: path, metadata: try Safetensors.metadata(at: path)).utf8)
        } else {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw MMLError(.fileNotFound, "`config` \(path) does not exist or cannot be read; \(hint)")
            }
            try Checkpoint.verifySidecar(path, field: "config")
            data = contents
        }
        let sidecar: Sidecar
        try JSONInput.checkDepth(data, source: "`config` \(path)")
        do { sidecar = try JSONDecoder().decode(Sidecar.self, from: data) } catch {
            throw MMLError(.config, "`config` \(path) is not the settings of an episodic training run "
                           + "(\(Self.describe(error))); \(hint)")
        }
        let m = sidecar.model
        guard m.kind == "episodic", let metric = m.metric else {
            throw MMLError(.config, "`config` \(path) holds a '\(m.kind)' model, not an episodic one; \(hint)")
        }
        // Preprocessing that differs from every dataset default comes along (the defaults follow the data).
        let i = m.image
        let usualStatistics = (i.mean == [0] && i.std == [1])
            || (i.mean == ImageConfig.imagenetMean && i.std == ImageConfig.imagenetStd)
        let p = Preprocessing(ink: i.ink == .paperWhite ? nil : i.ink,
                              resizeFilter: i.resizeFilter == .triangle ? nil : i.resizeFilter,
                              mean: usualStatistics ? nil : i.mean, std: usualStatistics ? nil : i.std)
        image = ImageSettings(size: i.size, channels: i.channels,
                              augmentation: AugmentationKind(of: i.augmentation, side: i.size), preprocessing: p.isEmpty ? nil : p)
        backbone = BackboneSettings(kind: m.backbone, widths: m.widths, initialization: m.initialization, seed: m.seed)
        self.metric = metric
        training = sidecar.state.training
    }

    /// A short reason for a decoding error.
    private static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "no " + (context.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
        case DecodingError.dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON"
                : "bad value at " + context.codingPath.map(\.stringValue).joined(separator: ".")
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "bad value at " + context.codingPath.map(\.stringValue).joined(separator: ".")
        default:
            return MMLError.describe(error)
        }
    }
}

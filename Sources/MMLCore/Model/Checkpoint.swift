import Foundation

/// Model checkpoints: one safetensors file that PyTorch users can open with `safetensors` (tensors named
/// `backbone.block1.conv.weight`, `fusion.weight`, ...), whose metadata holds the model configuration as JSON
/// (`mml.model`) and, for training checkpoints, the training state (`mml.state`) and the optimiser's moments
/// (`optimizer.*` tensors). A JSON sidecar `<name>.json` repeats configuration and state for people and scripts.
/// Both files are written to a temporary name and renamed.
public enum Checkpoint {
    /// Metadata key of the format tag.
    public static let formatKey = "mml.format"
    /// The format tag of this version.
    public static let format = "mml-checkpoint/1"
    /// Metadata key of the model configuration JSON.
    public static let modelKey = "mml.model"
    /// Metadata key of the training state JSON.
    public static let stateKey = "mml.state"

    /// The sidecar JSON path of a checkpoint (`run/best.safetensors` -> `run/best.json`).
    public static func sidecarPath(_ path: String) -> String {
        (path.hasSuffix(".safetensors") ? String(path.dropLast(".safetensors".count)) : path) + ".json"
    }

    /// Saves `model` (all parameters and buffers), optional extra tensors (e.g. `optimizer.*`) and an optional
    /// training-state JSON string. - Throws: `MMLError(.io)`.
    public static func save(_ model: FewShotModel, extra: [(name: String, tensor: Tensor)] = [], state: String? = nil,
                            to path: String) throws {
        var tensors = model.namedParameters().map { (name: $0.name, tensor: $0.parameter.value) }
        tensors += extra
        var metadata = [formatKey: format, modelKey: model.configuration.jsonString()]
        if let state { metadata[stateKey] = state }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try Safetensors.write(tensors, metadata: metadata, to: path)
        let sidecar = "{\"model\":" + model.configuration.jsonString() + ",\"state\":" + (state ?? "null") + "}\n"
        try AtomicFile.write(sidecar, to: sidecarPath(path))
    }

    /// A loaded checkpoint.
    public struct Loaded {
        public let model: FewShotModel
        /// The training-state JSON, when the checkpoint came from training.
        public let state: String?
        /// Tensors in the file that are not the model's (optimiser moments, classifier heads), by name.
        public let extra: [(name: String, tensor: Tensor)]
    }

    /// Reads the model configuration of a checkpoint without loading its weights.
    /// - Throws: `MMLError` when the file is not an mml checkpoint.
    public static func configuration(at path: String) throws -> ModelConfiguration {
        try configuration(from: try Safetensors.read(contentsOf: path), path: path)
    }

    /// The model configuration in parsed checkpoint contents; `path` names the file in errors.
    public static func configuration(from contents: Safetensors.Contents, path: String) throws -> ModelConfiguration {
        guard let json = contents.metadata[modelKey] else {
            throw MMLError(.unsupportedFormat, "\(path) is a safetensors file without an mml model configuration "
                           + "(metadata '\(modelKey)'); it was not written by mml. Load plain weights with "
                           + "Safetensors.load(into:) or as an initialisation (`initFrom`) instead")
        }
        try JSONInput.checkDepth(Array(json.utf8), source: "\(path): the model configuration (metadata '\(modelKey)')")
        do {
            return try JSONDecoder().decode(ModelConfiguration.self, from: Data(json.utf8))
        } catch {
            throw MMLError(.corruptFile, "\(path): the model configuration in the metadata cannot be read (\(error)); "
                           + "the file may come from a newer mml")
        }
    }

    /// Loads a checkpoint: builds the model its configuration describes and fills every parameter and buffer,
    /// checking names, shapes and dtypes. - Throws: `MMLError` naming the file and the offending tensor.
    public static func load(_ path: String, threads: Int = 0) throws -> Loaded {
        let contents = try Safetensors.read(contentsOf: path)
        let config = try configuration(from: contents, path: path)
        let model = try FewShotModel(config, threads: threads)
        let own = model.namedParameters()
        let ownNames = Set(own.map(\.name))
        for (name, p) in own {
            guard let e = contents.entry(named: name) else {
                throw MMLError(.corruptFile, "\(path): tensor '\(name)' of the \(config.backbone.rawValue) model is "
                               + "missing; the file is incomplete or was edited")
            }
            guard e.dtype == "F32", e.shape == p.value.shape else {
                throw MMLError(.corruptFile, "\(path): tensor '\(name)' is \(e.dtype) \(e.shape), the model expects "
                               + "F32 \(p.value.shape)")
            }
        }
        for (name, p) in own { p.value = try contents.tensor(named: name) }
        var extra: [(name: String, tensor: Tensor)] = []
        for e in contents.entries where !ownNames.contains(e.name) {
            extra.append((name: e.name, tensor: try contents.tensor(named: e.name)))
        }
        return Loaded(model: model, state: contents.metadata[stateKey], extra: extra)
    }

    /// Copies the backbone weights (`backbone.*`) of a checkpoint into `model` (for `mml train --init`).
    /// - Returns: the number of tensors copied.
    /// - Throws: `MMLError` when the backbones differ (kind, widths, channels) or a tensor is missing.
    @discardableResult
    public static func loadBackbone(into model: FewShotModel, from path: String) throws -> Int {
        let contents = try Safetensors.read(contentsOf: path)
        if contents.metadata[modelKey] != nil {
            let other = try configuration(from: contents, path: path)
            let mine = model.configuration
            guard other.backbone == mine.backbone, other.inputChannels == mine.inputChannels,
                  other.backboneConfiguration.resolvedWidths == mine.backboneConfiguration.resolvedWidths else {
                throw MMLError(.invalidArgument, "\(path) holds a \(other.backbone.rawValue) backbone with "
                               + "\(other.inputChannels) input channel(s) and widths "
                               + "\(other.backboneConfiguration.resolvedWidths), but this model is "
                               + "\(mine.backbone.rawValue) with \(mine.inputChannels) and "
                               + "\(mine.backboneConfiguration.resolvedWidths); use the same `backbone` and data")
            }
        }
        try Safetensors.load(into: model.backbone, prefix: "backbone", from: path, allowExtra: true)
        return model.backbone.namedParameters().count
    }
}

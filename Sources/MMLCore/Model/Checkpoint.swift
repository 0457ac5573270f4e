import Foundation

/// Model checkpoints: one safetensors file that PyTorch users can open with `safetensors` (tensors named
/// `backbone.block1.conv.weight`, `fusion.weight`, ...), whose metadata holds the model configuration as JSON
/// (`mml.model`) and, for training checkpoints, the training state (`mml.state`) and the optimiser's moments
/// (`optimizer.*` tensors).
///
/// One commit point: the safetensors file is written to a temporary name and renamed; that rename commits the
/// checkpoint, whose metadata holds everything. The JSON sidecar `<name>.json` is a derived view for people and
/// scripts (`{"checkpoint": "<name>.safetensors", "model": ..., "state": ...}`, the very JSON of the metadata),
/// written after it. A process killed between the two renames leaves a sidecar that describes an older checkpoint
/// (or none): `repairSidecar(of:)` finds it by comparing it with the checkpoint's metadata and rewrites it, and
/// readers of a sidecar alone (`SavedEpisodicSettings`) refuse one that disagrees with the checkpoint beside it.
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

    /// The checkpoint a sidecar describes (`run/best.json` -> `run/best.safetensors`).
    public static func checkpointPath(ofSidecar path: String) -> String {
        (path.hasSuffix(".json") ? String(path.dropLast(".json".count)) : path) + ".safetensors"
    }

    /// The sidecar's text for the checkpoint at `path` with this metadata: a function of the metadata alone, so a
    /// sidecar agrees with its checkpoint exactly when it equals this text.
    public static func sidecarText(checkpoint path: String, metadata: [String: String]) -> String {
        let name = URL(fileURLWithPath: path).lastPathComponent
        let quoted = (try? JSONSerialization.data(withJSONObject: [name], options: []))
            .map { String(decoding: $0.dropFirst().dropLast(), as: UTF8.self) } ?? "\"\(name)\""
        return "{\"checkpoint\":" + quoted + ",\"model\":" + (metadata[modelKey] ?? "null") + ",\"state\":"
            + (metadata[stateKey] ?? "null") + "}\n"
    }

    /// Saves `model` (all parameters and buffers), optional extra tensors (e.g. `optimizer.*`) and an optional
    /// training-state JSON string, then its sidecar. - Throws: `MMLError(.io)`.
    public static func save(_ model: FewShotModel, extra: [(name: String, tensor: Tensor)] = [], state: String? = nil,
                            to path: String) throws {
        var tensors = model.namedParameters().map { (name: $0.name, tensor: $0.parameter.value) }
        tensors += extra
        var metadata = [formatKey: format, modelKey: model.configuration.jsonString()]
        if let state { metadata[stateKey] = state }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try Safetensors.write(tensors, metadata: metadata, to: path)
        try AtomicFile.write(sidecarText(checkpoint: path, metadata: metadata), to: sidecarPath(path))
    }

    /// What `repairSidecar(of:)` found.
    public enum SidecarStatus: Equatable, Sendable {
        /// The sidecar says what the checkpoint's metadata says.
        case agrees
        /// The sidecar was missing or described something else (e.g. the previous checkpoint) and was rewritten.
        case rewritten
        /// There is no checkpoint at the path (nothing to do).
        case noCheckpoint
    }

    /// Makes the sidecar of the checkpoint at `path` agree with it (rewriting it from the checkpoint's metadata
    /// when it is missing or stale). Reads only the checkpoint's header.
    /// - Throws: `MMLError` when the checkpoint is unreadable or the sidecar cannot be written.
    @discardableResult
    public static func repairSidecar(of path: String) throws -> SidecarStatus {
        guard FileManager.default.fileExists(atPath: path) else { return .noCheckpoint }
        let expected = sidecarText(checkpoint: path, metadata: try Safetensors.metadata(at: path))
        let side = sidecarPath(path)
        if let data = FileManager.default.contents(atPath: side), data == Data(expected.utf8) { return .agrees }
        try AtomicFile.write(expected, to: side)
        return .rewritten
    }

    /// Throws when `sidecar` (a `.json` beside a checkpoint) disagrees with the checkpoint beside it; nothing when
    /// there is no checkpoint beside it (a sidecar copied on its own). `field` names the option in the message.
    public static func verifySidecar(_ sidecar: String, field: String) throws {
        let ckpt = checkpointPath(ofSidecar: sidecar)
        guard FileManager.default.fileExists(atPath: ckpt),
              let data = FileManager.default.contents(atPath: sidecar) else { return }
        let metadata = try Safetensors.metadata(at: ckpt)
        guard data != Data(sidecarText(checkpoint: ckpt, metadata: metadata).utf8) else { return }
        // Sidecars of earlier versions (no `checkpoint` key) that say what the checkpoint says are fine too.
        let legacy = "{\"model\":" + (metadata[modelKey] ?? "null") + ",\"state\":" + (metadata[stateKey] ?? "null") + "}\n"
        guard data != Data(legacy.utf8) else { return }
        func episode(_ json: String?) -> String {
            guard let json, let o = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else {
                return "?"
            }
            let state = (o["state"] as? [String: Any]) ?? o
            return (state["episodesDone"] ?? state["epoch"] ?? state["iterations"]).map { "\($0)" } ?? "?"
        }
        throw MMLError(.config, "`\(field)` \(sidecar) does not describe the checkpoint beside it, \(ckpt) (the "
                       + "sidecar is at step \(episode(String(decoding: data, as: UTF8.self))), the checkpoint at "
                       + "step \(episode(metadata[stateKey])); a write was interrupted); give `\(field)` \(ckpt) "
                       + "itself, or run mml train --resume on its directory, which rewrites the sidecar")
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
            throw MMLError(.corruptFile, "\(path): the model configuration in the metadata cannot be read (\(MMLError.describe(error))); "
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

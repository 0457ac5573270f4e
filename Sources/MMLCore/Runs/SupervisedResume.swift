import Foundation

/// The resumable checkpoint of `PretrainingRun` and `EmbeddingTrainingRun`: `out/last.safetensors` holds the
/// model (weights and running statistics), the run's own tensors (the margin head, the embedding layer, the margin
/// loss's beta), the optimiser state (`optimizer.*`: SGD momentum, Adam moments and step counts) and, in its
/// metadata, the `State` JSON: the run's configuration and its position (epoch and batch, or iteration) with the
/// running sums a resumed run needs to continue exactly. Every random choice of these runs is a pure function of
/// (seed, epoch, batch) or (seed, iteration), so nothing else is needed.
struct SupervisedResume<Configuration: Codable & Sendable, Position: Codable & Sendable> {
    /// What `last.safetensors` says in its `mml.state` metadata.
    struct State: Codable, Sendable {
        var configuration: Configuration
        var position: Position
        /// The kernel paths the run trained on (`KernelPaths`); nil in checkpoints written before they were recorded.
        var kernelPaths: [String]?
    }

    /// Configuration fields a resumed run may change: they do not change the bits (where files go, threads,
    /// progress lines, checkpoint frequency).
    static var free: Set<String> { ["out", "resume", "threads", "logEvery", "checkpointEvery"] }

    /// `out/last.safetensors`.
    static func lastPath(_ out: String) -> String { URL(fileURLWithPath: out).appendingPathComponent("last.safetensors").path }

    /// Refuses `resume` with nothing to resume. - Throws: `MMLError(.fileNotFound)` naming `resume`.
    static func requireCheckpoint(_ out: String) throws {
        let path = lastPath(out)
        guard FileManager.default.fileExists(atPath: path) else {
            throw MMLError(.fileNotFound, "`resume`: \(path) does not exist, there is nothing to resume in \(out); start "
                           + "the run without `resume`")
        }
    }

    /// Refuses a fresh run (no `resume`) in an `out` that holds a run's checkpoints, which it would overwrite.
    /// - Throws: `MMLError(.invalidArgument)` naming the first checkpoint found, `resume` and `out`.
    static func refuseExistingRun(_ out: String, checkpoints: [String]) throws {
        for name in checkpoints {
            let path = URL(fileURLWithPath: out).appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let resumable = FileManager.default.fileExists(atPath: lastPath(out))
            throw MMLError(.invalidArgument, "\(out) already holds a run (\(name)); a new run would overwrite it: "
                           + (resumable ? "pass `resume` to continue it, or choose another `out`"
                                        : "choose another `out` (or move the old run away)"))
        }
    }

    /// Writes `last.safetensors`: `model`, the `extra` containers under their prefixes, the optimiser state and
    /// the state JSON, through the one commit point (`Checkpoint.save`: temporary file, rename, derived sidecar).
    static func save(_ model: FewShotModel, extra: [(prefix: String, container: any ParameterContainer)],
                     optimizer: any Optimizer, state: State, out: String) throws {
        var tensors = extra.flatMap { e in
            e.container.namedParameters(prefix: e.prefix).map { (name: $0.name, tensor: $0.parameter.value) }
        }
        tensors += optimizer.exportState().map { (name: "optimizer." + $0.name, tensor: $0.tensor) }
        try Checkpoint.save(model, extra: tensors, state: try jsonString(state), to: lastPath(out))
    }

    /// Reads `last.safetensors` into `model`, the `extra` containers and `optimizer`, after repairing its sidecar
    /// and checking that it was written with `configuration` (up to the `free` fields). Tells `events` when a sidecar
    /// was rewritten (a note) and when this process takes another kernel path than the run's last one (a warning).
    /// - Returns: the position and the kernel paths to record from now on (`KernelPaths.resumed`).
    /// - Throws: `MMLError` naming each differing field with both values, or for an unreadable checkpoint.
    static func restore(into model: FewShotModel, extra: [(prefix: String, container: any ParameterContainer)],
                        optimizer: any Optimizer, configuration: Configuration, out: String,
                        otherCheckpoints: [String], events: (RunEvent) -> Void) throws
        -> (position: Position, kernelPaths: [String]) {
        let path = lastPath(out)
        for p in [path] + otherCheckpoints where try Checkpoint.repairSidecar(of: p) == .rewritten {
            events(.note("rewrote \(Checkpoint.sidecarPath(p)) from \(p): it did not describe that checkpoint (a "
                         + "write was interrupted)"))
        }
        let contents = try Safetensors.read(contentsOf: path)
        guard let json = contents.metadata[Checkpoint.stateKey] else {
            throw MMLError(.corruptFile, "\(path) holds no training state; it is not a resumable checkpoint")
        }
        let state: State
        do { state = try JSONDecoder().decode(State.self, from: Data(json.utf8)) } catch {
            throw MMLError(.corruptFile, "`resume`: the training state in \(path) cannot be read "
                           + "(\(MMLError.describe(error))); was it written by another command?")
        }
        let diff = try differences(saved: state.configuration, now: configuration)
        if !diff.isEmpty {
            throw MMLError(.config, "`resume`: the checkpoint was trained with different settings: "
                           + diff.map { "`\($0.field)` \($0.saved) (checkpoint) vs \($0.now) (now)" }.joined(separator: "; ")
                           + "; resume with the same options or start a new `out` directory")
        }
        var targets = model.namedParameters().map { (name: $0.name, parameter: $0.parameter) }
        for e in extra { targets += e.container.namedParameters(prefix: e.prefix).map { (name: $0.name, parameter: $0.parameter) } }
        for (name, p) in targets {
            guard let e = contents.entry(named: name), e.dtype == "F32", e.shape == p.value.shape else {
                throw MMLError(.corruptFile, "\(path): tensor '\(name)' is missing or not F32 \(p.value.shape); the "
                               + "file is incomplete or was edited")
            }
            p.value = try contents.tensor(named: name)
        }
        let prefix = "optimizer."
        try optimizer.importState(try contents.entries.filter { $0.name.hasPrefix(prefix) }
            .map { (name: String($0.name.dropFirst(prefix.count)), tensor: try contents.tensor(named: $0.name)) })
        let paths = KernelPaths.resumed(state.kernelPaths)
        if let w = paths.warning { events(.warning(w)) }
        return (state.position, paths.record)
    }

    /// The fields (dotted JSON paths) whose values differ, with both values as JSON, the `free` ones left out.
    static func differences(saved: Configuration, now: Configuration) throws -> [(field: String, saved: String, now: String)] {
        let (a, b) = (try flattened(saved), try flattened(now))
        return Set(a.keys).union(b.keys).sorted().compactMap { key in
            guard !free.contains(key), a[key] != b[key] else { return nil }
            return (key, a[key] ?? "none", b[key] ?? "none")
        }
    }

    /// A value's JSON as dotted paths -> JSON text of the leaves (arrays are leaves).
    static func flattened(_ value: some Encodable) throws -> [String: String] {
        let data = try JSONEncoder().encode(value)
        var out: [String: String] = [:]
        func walk(_ o: Any, _ path: String) {
            if let d = o as? [String: Any] {
                for (k, v) in d { walk(v, path.isEmpty ? k : path + "." + k) }
            } else {
                let text = (try? JSONSerialization.data(withJSONObject: o, options: [.fragmentsAllowed, .sortedKeys]))
                    .map { String(decoding: $0, as: UTF8.self) } ?? "\(o)"
                out[path] = text
            }
        }
        walk(try JSONSerialization.jsonObject(with: data), "")
        return out
    }

    static func jsonString(_ state: State) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try e.encode(state), as: UTF8.self)
    }
}

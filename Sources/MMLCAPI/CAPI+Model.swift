import Foundation
import MMLCore

// Models (a checkpoint's backbone and metric), tensors, and whole runs from JSON: mml_model_*, mml_tensor_*,
// mml_default_configuration, mml_episodes, mml_evaluate.

/// A model handle. The backbone's layers are not safe for concurrent forwards, so `mml_model_features` takes this
/// handle's lock (calls on one model run one at a time; different models run in parallel).
final class ModelHandle: Handle {
    override class var kind: String { "model" }
    let model: FewShotModel
    let path: String
    let lock = NSLock()
    init(_ model: FewShotModel, path: String) { self.model = model; self.path = path }
}

/// A tensor result: shape and float32 data in memory that stays put until `mml_tensor_free`.
final class TensorHandle: Handle {
    override class var kind: String { "tensor" }
    let shape: UnsafeMutableBufferPointer<Int64>
    let data: UnsafeMutableBufferPointer<Float>
    init(_ t: Tensor) {
        shape = .allocate(capacity: t.shape.count)
        _ = shape.initialize(from: t.shape.map(Int64.init))
        data = .allocate(capacity: max(t.data.count, 1))
        _ = data.initialize(from: t.data)
    }
    deinit { shape.deallocate(); data.deallocate() }
}

@_cdecl("mml_model_load")
public func mml_model_load(_ path: UnsafePointer<CChar>?, _ threads: Int32,
                           _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (mml_model **)")
        let path = try string(path, "path")
        guard threads >= 0 else { throw CAPIError(.invalidArgument, "threads is \(threads); give 0 (all cores) or more") }
        let loaded = try Checkpoint.load(path, threads: Int(threads))
        out.pointee = Registry.register(ModelHandle(loaded.model, path: path))
    }
}

@_cdecl("mml_model_describe")
public func mml_model_describe(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (char **)")
        let m = try Registry.lookup(model, as: ModelHandle.self, role: "model")
        out.pointee = try cString(ConfigurationJSON.text(m.model.configuration))
    }
}

@_cdecl("mml_model_features")
public func mml_model_features(_ model: OpaquePointer?, _ images: UnsafePointer<Float>?,
                               _ imageShape: UnsafePointer<Int64>?, _ rank: Int32,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (mml_tensor **)")
        let m = try Registry.lookup(model, as: ModelHandle.self, role: "model")
        let dims = try shape(imageShape, rank: rank, "image_shape", ranks: 4...4)
        let x = try tensor(images, shape: dims, "images")
        if let i = x.data.firstIndex(where: { !$0.isFinite }) {
            throw MMLError(.numerical, "images: element \(i) (shape \(dims)) is \(x.data[i]); "
                           + "images must be finite")
        }
        m.lock.lock()
        defer { m.lock.unlock() }
        out.pointee = Registry.register(TensorHandle(try m.model.features(x)))
    }
}

@_cdecl("mml_model_metric")
public func mml_model_metric(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (mml_metric **)")
        let m = try Registry.lookup(model, as: ModelHandle.self, role: "model")
        out.pointee = Registry.register(MetricHandle(try EpisodeScorer(model: m.model, source: m.path)))
    }
}

@_cdecl("mml_model_free")
public func mml_model_free(_ model: OpaquePointer?) -> Int32 {
    guarded { try Registry.release(model, as: ModelHandle.self, role: "model") }
}

@_cdecl("mml_tensor_rank")
public func mml_tensor_rank(_ t: OpaquePointer?) -> Int32 {
    var r: Int32 = -1
    _ = guarded { r = Int32(try Registry.lookup(t, as: TensorHandle.self, role: "tensor").shape.count) }
    return r
}

@_cdecl("mml_tensor_shape")
public func mml_tensor_shape(_ t: OpaquePointer?) -> UnsafePointer<Int64>? {
    var p: UnsafePointer<Int64>?
    _ = guarded { p = UnsafePointer(try Registry.lookup(t, as: TensorHandle.self, role: "tensor").shape.baseAddress) }
    return p
}

@_cdecl("mml_tensor_data")
public func mml_tensor_data(_ t: OpaquePointer?) -> UnsafePointer<Float>? {
    var p: UnsafePointer<Float>?
    _ = guarded { p = UnsafePointer(try Registry.lookup(t, as: TensorHandle.self, role: "tensor").data.baseAddress) }
    return p
}

@_cdecl("mml_tensor_free")
public func mml_tensor_free(_ t: OpaquePointer?) -> Int32 {
    guarded { try Registry.release(t, as: TensorHandle.self, role: "tensor") }
}

// MARK: - Runs from JSON

@_cdecl("mml_default_configuration")
public func mml_default_configuration(_ kind: UnsafePointer<CChar>?,
                                      _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (char **)")
        let kind = try string(kind, "kind")
        let text: String
        switch kind {
        case "metric": text = try ConfigurationJSON.text(MetricConfiguration())
        case "episodes": text = try ConfigurationJSON.text(EpisodeListingConfiguration())
        case "evaluation": text = try ConfigurationJSON.text(EvaluationRunConfiguration(checkpoint: ""))
        default:
            throw CAPIError(.invalidArgument, "unknown configuration kind '\(kind)'; use metric, episodes or evaluation")
        }
        out.pointee = try cString(text)
    }
}

@_cdecl("mml_episodes")
public func mml_episodes(_ json: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (char **)")
        let config = try ConfigurationJSON.decode(EpisodeListingConfiguration.self, from: try string(json, "json"),
                                                  over: EpisodeListingConfiguration(), what: "episode configuration")
        let list = try EpisodeListingRun(config).run()
        out.pointee = try cString(String(decoding: try list.jsonData(), as: UTF8.self))
    }
}

@_cdecl("mml_evaluate")
public func mml_evaluate(_ json: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (char **)")
        let config = try ConfigurationJSON.decode(EvaluationRunConfiguration.self, from: try string(json, "json"),
                                                  over: EvaluationRunConfiguration(checkpoint: ""),
                                                  what: "evaluation configuration")
        guard !config.checkpoint.isEmpty else {
            throw MMLError(.config, "`checkpoint` is missing from the evaluation configuration; give the checkpoint path")
        }
        let result = try EvaluationRun(config).run()
        out.pointee = try cString(ConfigurationJSON.text(result))
    }
}

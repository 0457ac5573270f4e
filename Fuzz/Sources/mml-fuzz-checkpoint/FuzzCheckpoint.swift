import Foundation
import FuzzSupport
import MMLCore

/// libFuzzer entry point: arbitrary bytes as an mml checkpoint's metadata. The input is split at its first NUL byte:
/// the part before is the model configuration (`mml.model`), the rest the training state (`mml.state`); both are
/// written into a safetensors header (so the metadata path, quoting included, is exercised) and read back as
/// `Checkpoint.configuration` and as a trainer's `restore(state:)` would. Every input must be accepted or throw an
/// `MMLError`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCheckpoint(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzReader(data, size, reader: "Checkpoint metadata") { bytes in
        let cut = bytes.firstIndex(of: 0) ?? bytes.count
        let model = String(decoding: bytes[..<cut], as: UTF8.self)
        let state = cut < bytes.count ? String(decoding: bytes[(cut + 1)...], as: UTF8.self) : ""
        let file = Safetensors.encode([("w", Tensor(shape: [1], data: [0]))],
                                      metadata: ["mml.model": model, "mml.state": state])
        let contents = try Safetensors.parse(file, source: "fuzz.safetensors")
        precondition(contents.metadata["mml.model"] == model, "metadata round trip")
        do { _ = try Checkpoint.configuration(from: contents, path: "fuzz.safetensors") } catch is MMLError {}
        _ = try EpisodicTrainingState(metadata: state)
    }
}

@main
struct FuzzMain {
    static func main() { runFuzzerDriver { data, size in fuzzCheckpoint(data, size) } }
}

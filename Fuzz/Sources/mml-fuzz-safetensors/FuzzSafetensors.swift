import FuzzSupport
import MMLCore

/// libFuzzer entry point: parse arbitrary bytes as a safetensors file and read every tensor. Every input must
/// either parse or throw an `MMLError`; a trap, crash or sanitizer report is a bug in `Safetensors.parse`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzReader(data, size, reader: "Safetensors.parse") { bytes in
        let c = try Safetensors.parse(bytes, source: "fuzz.safetensors")
        for e in c.entries { _ = try? c.tensor(named: e.name) }
    }
}

@main
struct FuzzMain {
    static func main() { runFuzzerDriver { data, size in fuzzSafetensors(data, size) } }
}

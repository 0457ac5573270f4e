import FuzzSupport
import MMLCore

/// libFuzzer entry point: decode arbitrary bytes as a `.npy` file. Every input must either decode or throw an
/// `MMLError`; a trap, crash or sanitizer report is a bug in `NPY.decode`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzReader(data, size, reader: "NPY.decode") { bytes in
        let a = try NPY.decode(bytes, source: "fuzz.npy")
        // Exercise the element accessors the CLI uses on decoded arrays.
        if a.count <= 1 << 20 {
            _ = a.floats()
            _ = try? a.ints(source: "fuzz.npy")
        }
    }
}

@main
struct FuzzMain {
    static func main() { runFuzzerDriver { data, size in fuzzNPY(data, size) } }
}

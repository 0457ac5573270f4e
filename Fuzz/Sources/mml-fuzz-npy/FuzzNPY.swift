import Foundation
import MMLCore

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// libFuzzer entry point: decode arbitrary bytes as a `.npy` file. Every input must either decode or throw an
/// `MMLError`; a trap, crash or sanitizer report is a bug in `NPY.decode`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNPY(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let a = try NPY.decode(bytes, source: "fuzz.npy")
        // Exercise the element accessors the CLI uses on decoded arrays.
        if a.count <= 1 << 20 {
            _ = a.floats()
            _ = try? a.ints(source: "fuzz.npy")
        }
    } catch is MMLError {
    } catch {
        fatalError("NPY.decode threw a non-MMLError: \(error)")
    }
    return 0
}

/// SwiftPM gives every executable its own `main`, which shadows libFuzzer's (linked whole-archive); this one hands the command
/// line to libFuzzer's driver with the entry point above.
@main
struct FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { data, size in fuzzNPY(data, size) }))
    }
}

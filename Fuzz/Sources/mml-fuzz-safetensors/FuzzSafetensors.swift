import Foundation
import MMLCore

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// libFuzzer entry point: parse arbitrary bytes as a safetensors file and read every tensor. Every input must
/// either parse or throw an `MMLError`; a trap, crash or sanitizer report is a bug in `Safetensors.parse`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let c = try Safetensors.parse(bytes, source: "fuzz.safetensors")
        for e in c.entries { _ = try? c.tensor(named: e.name) }
    } catch is MMLError {
    } catch {
        fatalError("Safetensors.parse threw a non-MMLError: \(error)")
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
        exit(LLVMFuzzerRunDriver(&argc, &argv, { data, size in fuzzSafetensors(data, size) }))
    }
}

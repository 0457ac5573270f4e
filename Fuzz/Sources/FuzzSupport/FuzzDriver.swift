import Foundation
import MMLCore

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// A libFuzzer entry point (`LLVMFuzzerTestOneInput`): one input's bytes and their count; returns 0.
public typealias FuzzEntryPoint = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs one fuzz input through a file reader: `body` gets the input's bytes and must either accept them or throw an
/// `MMLError`. Any other error is a bug in `reader` and stops the fuzzer (a trap, crash or sanitizer report stops it
/// by itself). Returns 0, what libFuzzer expects.
public func fuzzReader(_ data: UnsafePointer<UInt8>?, _ size: Int, reader: String,
                       _ body: ([UInt8]) throws -> Void) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    do {
        try body(bytes)
    } catch is MMLError {
    } catch {
        fatalError("\(reader) threw a non-MMLError: \(error)")
    }
    return 0
}

/// Hands the command line to libFuzzer's driver with `entry`, and exits with its status. SwiftPM gives every
/// executable its own `main`, which shadows libFuzzer's (linked whole-archive); each target's `@main` calls this.
public func runFuzzerDriver(_ entry: FuzzEntryPoint) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, entry))
}

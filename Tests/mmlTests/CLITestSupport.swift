import Foundation
import XCTest

/// Runs the built `mml` binary (beside the test bundle) and returns (exit code, stdout, stderr).
func runMML(_ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, String, String) {
    try runProcess(mmlBinaryPath, arguments, environment: environment)
}

/// The `mml` binary built beside this test bundle.
var mmlBinaryPath: String {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("mml").path
}

/// Runs `executable arguments` to its end: (exit status, stdout, stderr).
func runProcess(_ executable: String, _ arguments: [String],
                environment: [String: String]? = nil) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Runs `mml args` and asserts that it fails with `message` on stderr and without a trap. With `reported`, also that
/// it is an error mml reported itself: exit code 1 and an `error: ` line (argument-parser's own errors are not).
func assertMMLFails(_ args: [String], _ message: String, reported: Bool = false, file: StaticString = #filePath,
                    line: UInt = #line) throws {
    let (code, out, err) = try runMML(args)
    XCTAssertNotEqual(code, 0, "stdout: \(out)", file: file, line: line)
    XCTAssertTrue(err.contains(message), "expected '\(message)' in: \(err)", file: file, line: line)
    XCTAssertFalse(err.contains("Fatal error"), err, file: file, line: line)
    if reported {
        XCTAssertEqual(code, 1, "stdout: \(out) stderr: \(err)", file: file, line: line)
        XCTAssertTrue(err.contains("error: "), "stderr: \(err)", file: file, line: line)
    }
}

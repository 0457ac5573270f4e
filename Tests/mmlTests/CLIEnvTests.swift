import Foundation
import XCTest

/// Runs the built `mml` binary (beside the test bundle) and returns (exit code, stdout, stderr).
func runMML(_ arguments: [String], environment: [String: String]? = nil) throws -> (Int32, String, String) {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    let binary = exe.deletingLastPathComponent().appendingPathComponent("mml")
    let p = Process()
    p.executableURL = binary
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

final class CLIEnvTests: XCTestCase {
    func testEnvJSON() throws {
        let (code, out, err) = try runMML(["env", "--json", "--sgemm-size", "256"])
        XCTAssertEqual(code, 0, err)
        let obj = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: String]
        XCTAssertNotNil(obj, out)
        XCTAssertFalse(obj?["blas_core"]?.isEmpty ?? true)
        XCTAssertGreaterThan(Double(obj?["sgemm_gflops"] ?? "0") ?? 0, 0.1)
    }

    func testUnknownSubcommandFails() throws {
        let (code, _, err) = try runMML(["no-such-command"])
        XCTAssertNotEqual(code, 0)
        XCTAssertFalse(err.isEmpty)
    }
}

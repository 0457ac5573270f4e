import Foundation
import XCTest

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

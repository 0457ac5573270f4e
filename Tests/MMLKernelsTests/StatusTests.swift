import MMLKernels
import XCTest

final class StatusTests: XCTestCase {
    func testEveryStatusHasAMessage() {
        for s in [MML_OK, MML_ERR_ARGUMENT, MML_ERR_K_TOO_LARGE, MML_ERR_NONFINITE, MML_ERR_NOMEM, MML_ERR_LAPACK,
                  MML_ERR_EMPTY_GROUP] {
            let msg = String(cString: mml_status_string(Int32(s)))
            XCTAssertFalse(msg.isEmpty)
            XCTAssertNotEqual(msg, "unknown status", "status \(s)")
        }
        XCTAssertEqual(String(cString: mml_status_string(-999)), "unknown status")
    }
}

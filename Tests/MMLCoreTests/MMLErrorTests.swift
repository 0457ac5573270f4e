import MMLCore
import XCTest

/// The core names configuration fields, front ends render them in their own words.
final class MMLErrorTests: XCTestCase {
    func testFieldsAreRenderedByTheFrontEnd() {
        let e = MMLError(.config, "`episodesPerEpoch` 0 and `training.way` 1 must be at least 1; see `README`-style `x`")
        XCTAssertEqual(e.fields, ["episodesPerEpoch", "training.way", "README", "x"])
        XCTAssertEqual(e.message, "episodesPerEpoch 0 and training.way 1 must be at least 1; see README-style x")
        XCTAssertEqual(e.rendered { "--" + $0.uppercased() },
                       "--EPISODESPEREPOCH 0 and --TRAINING.WAY 1 must be at least 1; see --README-style --X")
    }

    func testTextThatIsNotAFieldStaysAsWritten() {
        // Unpaired backquotes, spaces and leading digits are not field names.
        let e = MMLError(.io, "cannot read `my file.png` or `2x` and a lone ` stays")
        XCTAssertEqual(e.fields, [])
        XCTAssertEqual(e.message, "cannot read `my file.png` or `2x` and a lone ` stays")
        XCTAssertEqual(MMLError(.io, "plain").rendered { _ in "X" }, "plain")
    }
}

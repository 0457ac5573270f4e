import MMLCore
import XCTest

/// `SeededRNG(state:)` replaced MMLCore's former `TensorRNG(seed:)`: the values below were printed by that generator
/// before it was removed, so weights, DropBlock masks and test inputs stay bit-identical.
final class SeededRNGTests: XCTestCase {
    func testRawStateGivesTheFormerTensorRNGSequence() {
        var g = SeededRNG(state: 42)
        XCTAssertEqual((0..<3).map { _ in g.next() }, [0xBDD7_3226_2FEB_6E95, 0x28EF_E333_B266_F103, 0x4752_6757_130F_9F52])
    }

    func testRawStateUniformAndNormalMatchTheFormerHelpers() {
        var g = SeededRNG(state: 7)
        XCTAssertEqual((0..<3).map { _ in g.nextFloat().bitPattern }, [1_053_267_906, 1_015_646_080, 1_063_688_256])
        XCTAssertEqual((0..<3).map { _ in g.nextNormal().bitPattern }, [3_212_717_584, 3_218_145_229, 1_065_228_049])
    }

    func testSeedInitialiserMixesTheSeedIntoTheState() {
        XCTAssertEqual(SeededRNG(seed: 42).state, SeededRNG.mix(42))
        var a = SeededRNG(seed: 42), b = SeededRNG(state: SeededRNG.mix(42))
        XCTAssertEqual(a.next(), b.next())
    }
}

import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// The core's bounds, overflow-checked products, memory estimate and error descriptions (what the C ABI and the
/// Python package get through the same `validate()`).
final class LimitsTests: XCTestCase {
    func testProductOverflowNamesTheFactors() {
        XCTAssertEqual(try Limits.product([("a", 3), ("b", 4)], in: 1...100, "things"), 12)
        XCTAssertThrowsError(try Limits.product([("a", Int.max), ("b", 2)], in: 1...100, "things")) { e in
            XCTAssertEqual((e as? MMLError)?.template, "`a` \(Int.max) x `b` 2 makes more than \(Int.max) things, out "
                           + "of range 1...100; lower `a` or `b`")
        }
        XCTAssertThrowsError(try Limits.product([("a", 11), ("b", 10)], in: 1...100, "things")) { e in
            XCTAssertEqual((e as? MMLError)?.fields, ["a", "b", "a", "b"])
        }
    }

    func testRealNumbersMustBeFinite() {
        for v: Float in [.nan, .infinity, -.infinity] {
            XCTAssertThrowsError(try Limits.check(v, "beta1", "in [0, 1)") { $0 >= 0 && $0 < 1 }) { e in
                XCTAssertEqual((e as? MMLError)?.template, "`beta1` \(v) is not allowed: it must be a finite number in [0, 1)")
            }
        }
        XCTAssertNoThrow(try Limits.check(Float(0.5), "beta1", "in [0, 1)") { $0 >= 0 && $0 < 1 })
    }

    func testMemoryEstimateRefusesWithTheFigure() {
        var m = MemoryEstimate()
        m.addEpisodes(1_000_000, imagesPerEpisode: 80, way: 5, what: "episodes")
        m.addImages(80, side: 84, channels: 3, firstWidth: 64, training: false, what: "one episode")
        // 1e6 x (8 x 80 + 80 x 5 + 256) bytes + 80 x 4 x 84^2 x (3 + 64) bytes
        XCTAssertEqual(m.total, 1e6 * 1296 + 80 * 4 * 7056 * 67, accuracy: 1)
        XCTAssertNoThrow(try m.check(lower: ["episodes"], available: 2e9))
        XCTAssertThrowsError(try m.check(lower: ["episodes", "way"], available: 1e9)) { e in
            XCTAssertEqual((e as? MMLError)?.template, "this run needs about 1.4 GB of memory (1000000 episodes of 80 "
                           + "images: 1.3 GB; one episode: 80 images of 3 x 84 x 84: 151 MB) but this machine has 1.0 GB; "
                           + "lower `episodes`, `way`")
        }
        XCTAssertGreaterThan(MemoryEstimate.physicalMemory, 1e8)
    }

    /// The C ABI's and Python's configurations reach the same bounds.
    func testConfigurationsFromJSONAreBounded() throws {
        let eval = try ConfigurationJSON.decode(EvaluationRunConfiguration.self, from: #"{"episodes": 1000000000000}"#,
                                                over: EvaluationRunConfiguration(checkpoint: "x"), what: "evaluation")
        XCTAssertThrowsError(try eval.validate()) { e in
            XCTAssertEqual((e as? MMLError)?.fields, ["episodes"])
        }
        var list = EpisodeListingConfiguration()
        list.way = Int.max
        XCTAssertThrowsError(try list.validate()) { e in XCTAssertEqual((e as? MMLError)?.fields.first, "way") }
        var training = EpisodicTrainingConfiguration()
        (training.episodesPerEpoch, training.epochs) = (Int.max, 2)
        XCTAssertThrowsError(try training.validate())
        var run = EpisodicTrainingRunConfiguration(dataset: DatasetSource())
        run.threads = -1
        XCTAssertThrowsError(try run.validate()) { e in
            XCTAssertEqual((e as? MMLError)?.template, "`threads` -1 is out of range: kernel threads (0: all cores) must "
                           + "be in 0...1024")
        }
        XCTAssertThrowsError(try FewShotModel(ModelConfiguration(backbone: .conv4, inputChannels: 1, seed: 0,
                                                                 image: ImageConfig(size: 28, channels: 1), metric: nil),
                                              threads: Int.max))
    }

    func testErrorsAreDescribedInWords() throws {
        let missing = CocoaError(.fileReadNoSuchFile)
        XCTAssertEqual(MMLError.describe(missing), "no such file or directory")
        let posix = NSError(domain: NSPOSIXErrorDomain, code: Int(ENOSPC))
        XCTAssertEqual(MMLError.describe(posix), String(cString: strerror(ENOSPC)))
        do {
            _ = try FileManager.default.contentsOfDirectory(atPath: "/nonexistent-\(UUID())")
            XCTFail("listed a missing directory")
        } catch {
            let text = MMLError.describe(error)
            XCTAssertFalse(text.contains("Domain") || text.contains("error 260") || text.contains("Code="), text)
        }
        struct S: Decodable { let a: Int }
        do {
            _ = try JSONDecoder().decode(S.self, from: Data(#"{"a": "x"}"#.utf8))
            XCTFail("decoded a string as an integer")
        } catch {
            XCTAssertEqual(MMLError.describe(error), "'a' is not an integer")
        }
        do {
            _ = try JSONDecoder().decode(S.self, from: Data("{}".utf8))
        } catch {
            XCTAssertEqual(MMLError.describe(error), "'a' is missing")
        }
    }
}

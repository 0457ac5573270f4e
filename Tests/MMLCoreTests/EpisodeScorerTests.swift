import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// EpisodeScorer (what `mml score`, the C ABI and the Python package share), EpisodeListingRun (`mml data episodes`,
/// `mml.episodes`) and ConfigurationJSON (partial JSON over defaults, as the C ABI takes configurations).
final class EpisodeScorerTests: XCTestCase {
    func testArbitraryLabelsAreColumnsInOrderOfFirstAppearance() throws {
        var rng = TestRNG(seed: 5)
        let s = rng.tensor([6, 8, 3, 3]), q = rng.tensor([4, 8, 3, 3])
        let raw = [40, -3, 7, 40, -3, 7]
        let config = MetricConfiguration(levels: [.pixel, .distribution], pixelNeighbours: 2)
        let r = try EpisodeScorer(metric: config, threads: 1).score(support: s, labels: raw, query: q, way: 3)
        XCTAssertEqual(r.classes, [40, -3, 7])
        var c3 = config
        c3.way = 3
        let want = try scoreEpisode(metric: c3.makeMetric(threads: 1), support: s, labels: [0, 1, 2, 0, 1, 2],
                                    query: q, way: 3, fusionStatistics: .episode)
        XCTAssertEqual(r.scores.fused, want.fused)
        for l in want.levels { XCTAssertEqual(r.scores.levelScores[l], want.levelScores[l]) }
        XCTAssertEqual(r.predictions, want.predictions.map { [40, -3, 7][$0] })
        XCTAssertEqual(try EpisodeScorer.queryColumns([7, 40], classes: r.classes, source: "q"), [2, 0])
    }

    func testScorerErrors() throws {
        var rng = TestRNG(seed: 6)
        let s = rng.tensor([4, 8, 3, 3]), q = rng.tensor([2, 8, 3, 3])
        let scorer = try EpisodeScorer(metric: MetricConfiguration(levels: [.pixel]))
        assertThrows(try scorer.score(support: s, labels: [1, 2, 1], query: q),
                     contains: "3 support labels for 4 support items")
        assertThrows(try scorer.score(support: s, labels: [1, 2, 1, 2], query: q, way: 3),
                     contains: "2 distinct values [1, 2] but way is 3")
        assertThrows(try EpisodeScorer.queryColumns([1, 9], classes: [1, 2], source: "labels.npy"),
                     contains: "labels.npy: query 1 has label 9, which no support item has")
        assertThrows(try EpisodeScorer(metric: MetricConfiguration(levels: [])), contains: "levels")
        let model = try FewShotModel(ModelConfiguration(kind: "pretrained", backbone: .conv4, inputChannels: 1,
                                                        widths: [4, 4, 4, 4], seed: 1,
                                                        image: ImageConfig(size: 20, channels: 1), metric: nil))
        assertThrows(try EpisodeScorer(model: model, source: "m.safetensors"),
                     contains: "m.safetensors is a pretrained model without a metric head")
        assertThrows(try EpisodeScorer(checkpoint: "/nonexistent/c.safetensors"), contains: "/nonexistent/c.safetensors")
    }

    func testEpisodeListingIsTheSamplersListAndWritesIt() throws {
        let dir = try makeTempDir(self, prefix: "mml-listing")
        let source = DatasetSource(path: "synthetic", split: "test", syntheticSize: 8, syntheticImages: 6)
        let config = EpisodeListingConfiguration(dataset: source, way: 3, shot: 2, query: 1, episodes: 4, seed: 9,
                                                 out: dir + "/list.json")
        var wrote: [String] = []
        let list = try EpisodeListingRun(config).run { if case .wrote(let p, _) = $0 { wrote.append(p) } }
        let sampler = try EpisodeSampler(dataset: source.open(), way: 3, shot: 2, query: 1, seed: 9)
        XCTAssertEqual(list, EpisodeList(episodes: sampler.episodes(4), sampler: sampler, split: "test"))
        XCTAssertEqual(wrote, [dir + "/list.json"])
        XCTAssertEqual(try EpisodeList.read(from: dir + "/list.json"), list)
        var other = config
        other.seed = 10
        XCTAssertNotEqual(try EpisodeListingRun(other).run().episodes, list.episodes)
        other.episodes = 0
        assertThrows(try EpisodeListingRun(other), contains: "episodes must be >= 1")
        other.episodes = 1
        other.way = 500
        assertThrows(try EpisodeListingRun(other).run(), contains: "500")
    }

    func testConfigurationJSONLaysFieldsOverDefaults() throws {
        let m = try ConfigurationJSON.decode(MetricConfiguration.self, from: #"{"levels": ["pixel"], "pixelNeighbours": 3, "fixedWeights": null}"#,
                                             over: MetricConfiguration(), what: "metric configuration")
        var want = MetricConfiguration(levels: [.pixel])
        want.pixelNeighbours = 3
        XCTAssertEqual(m, want)
        XCTAssertEqual(try ConfigurationJSON.decode(MetricConfiguration.self, from: "{}", over: MetricConfiguration(),
                                                    what: "m"), MetricConfiguration())
        let e = try ConfigurationJSON.decode(EpisodeListingConfiguration.self,
                                             from: #"{"dataset": {"split": "val"}, "way": 2}"#,
                                             over: EpisodeListingConfiguration(), what: "episode configuration")
        XCTAssertEqual(e.dataset, DatasetSource(path: "synthetic", split: "val"))
        XCTAssertEqual(e.way, 2)
        XCTAssertEqual(e.shot, EpisodeListingConfiguration().shot)
        let decode = { (text: String) in
            try ConfigurationJSON.decode(EpisodeListingConfiguration.self, from: text,
                                         over: EpisodeListingConfiguration(), what: "episode configuration")
        }
        assertThrows(try decode("{"), contains: "the episode configuration is not valid JSON")
        assertThrows(try decode("[]"), contains: "must be a JSON object")
        assertThrows(try decode(#"{"wya": 3}"#), contains: "has no field wya; known fields: dataset, dropSmallClasses")
        assertThrows(try decode(#"{"dataset": {"pth": "x"}}"#), contains: "has no field dataset.pth")
        assertThrows(try decode(#"{"way": "five"}"#), contains: "way in the episode configuration must be an integer")
        assertThrows(try decode(#"{"dataset": {"syntheticImages": 1.5}}"#), contains: "the episode configuration cannot be read")
        assertThrows(try ConfigurationJSON.decode(MetricConfiguration.self, from: #"{"fusion": "sum"}"#,
                                                  over: MetricConfiguration(), what: "metric configuration"),
                     contains: "unknown fusion 'sum'")
    }
}

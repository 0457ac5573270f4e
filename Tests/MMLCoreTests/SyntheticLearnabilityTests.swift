import MMLCore
import XCTest

/// The built-in synthetic dataset must be learnable and not trivial: an untrained Conv-4 embedding with
/// prototype scoring does clearly worse than the same network after a short episodic ProtoNet training, on
/// held-out (test-split) classes and the very same episodes. This is also the smallest end-to-end training run:
/// data -> backbone -> head -> cross-entropy -> backward -> Adam, with the loss falling.
final class SyntheticLearnabilityTests: XCTestCase {
    func accuracy(_ backbone: any Backbone, sampler: EpisodeSampler, loader: EpisodeLoader, episodes: Int) throws -> Double {
        let head = PrototypeHead(distance: .squaredEuclidean)
        var correct = 0, total = 0
        for i in 0..<episodes {
            let b = try loader.batch(for: sampler.episode(i))
            let s = backbone.forward(b.support, training: false).output
            let q = backbone.forward(b.query, training: false).output
            let (scores, _) = head.forward(support: s, labels: b.supportLabels, query: q, way: sampler.way)
            for r in 0..<scores.shape[0] {
                let row = scores.data[(r * sampler.way)..<((r + 1) * sampler.way)]
                if row.firstIndex(of: row.max()!)! - row.startIndex == b.queryLabels[r] { correct += 1 }
                total += 1
            }
        }
        return Double(correct) / Double(total)
    }

    func testTrainedBackboneBeatsUntrainedOnSyntheticData() throws {
        let opts = SyntheticDataset.Options(seed: 0, imagesPerClass: 30, size: 28, channels: 3)
        let config = ImageConfig(size: 28, channels: 3, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25])
        let train = try SyntheticDataset(options: opts, split: "train")
        let test = try SyntheticDataset(options: opts, split: "test")
        let trainLoader = try EpisodeLoader(dataset: train, config: config)
        let testLoader = try EpisodeLoader(dataset: test, config: config)
        let trainSampler = try EpisodeSampler(dataset: train, way: 5, shot: 5, query: 5, seed: 1)
        let testSampler = try EpisodeSampler(dataset: test, way: 5, shot: 1, query: 10, seed: 2)

        let backbone = try makeBackbone(BackboneConfiguration(kind: .conv4, inputChannels: 3, seed: 3))
        let untrained = try accuracy(backbone, sampler: testSampler, loader: testLoader, episodes: 40)

        let optimizer = try Adam(learningRate: 1e-3)
        let head = PrototypeHead(distance: .squaredEuclidean)
        var losses: [Double] = []
        for i in 0..<150 {
            let b = try trainLoader.batch(for: trainSampler.episode(i))
            let n = b.support.shape[0]
            var x = b.support
            x.shape[0] += b.query.shape[0]
            x.data += b.query.data
            backbone.zeroGradients()
            let (f, cache) = backbone.forward(x, training: true)
            let per = f.count / f.shape[0]
            let s = Tensor(shape: [n] + Array(f.shape.dropFirst()), data: Array(f.data[0..<(n * per)]))
            let q = Tensor(shape: [f.shape[0] - n] + Array(f.shape.dropFirst()), data: Array(f.data[(n * per)...]))
            let (scores, hc) = head.forward(support: s, labels: b.supportLabels, query: q, way: 5)
            let out = try SoftmaxCrossEntropy.forward(logits: scores, labels: b.queryLabels)
            losses.append(out.loss)
            let (ds, dq) = head.backward(SoftmaxCrossEntropy.backward(out), cache: hc)
            _ = backbone.backward(Tensor(shape: f.shape, data: ds.data + dq.data), cache: cache, inputGradient: false)
            optimizer.step(backbone)
        }
        let trained = try accuracy(backbone, sampler: testSampler, loader: testLoader, episodes: 40)
        let early = losses.prefix(20).reduce(0, +) / 20, late = losses.suffix(20).reduce(0, +) / 20
        print("synthetic 5-way 1-shot on test classes: untrained \(untrained), trained \(trained); loss \(early) -> \(late)")
        XCTAssertLessThan(late, early * 0.8, "training loss should fall")
        XCTAssertGreaterThan(trained, untrained + 0.08, "training should clearly help on held-out classes")
        XCTAssertGreaterThan(trained, 0.2 + 0.15, "trained accuracy should clearly beat chance (20%)")
    }
}

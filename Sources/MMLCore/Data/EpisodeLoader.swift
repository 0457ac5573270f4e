import Foundation

/// The tensors of one episode.
public struct EpisodeBatch: Sendable {
    /// Support images, (way * shot, C, H, W), class-major (label 0's shots first).
    public var support: Tensor
    /// Query images, (way * query, C, H, W), class-major.
    public var query: Tensor
    /// Episode labels 0..<way of the support rows.
    public var supportLabels: [Int]
    /// Episode labels of the query rows.
    public var queryLabels: [Int]
    /// Dataset class index of each episode label.
    public var classes: [Int]
}

/// Turns episodes and item lists into normalised (N, C, H, W) tensors, through an `ImageCache` so that 600
/// evaluation episodes decode each file at most once.
///
///     let loader = try EpisodeLoader(dataset: ds, config: ImageConfig(size: 84, channels: 3))
///     let batch = try loader.batch(for: sampler.episode(i))          // support (5*1, 3, 84, 84)
public final class EpisodeLoader: @unchecked Sendable {
    public let dataset: any FewShotDataset
    public let config: ImageConfig
    public let cache: ImageCache

    /// - Parameter cacheFile: optional binary cache file (mapped if valid for this dataset and configuration;
    ///   write it with `cache.write(file:)`).
    /// - Throws: `MMLError(.config)` for an invalid configuration.
    public init(dataset: any FewShotDataset, config: ImageConfig, cacheFile: String? = nil) throws {
        try config.validate()
        self.dataset = dataset
        self.config = config
        self.cache = try ImageCache(dataset: dataset, side: config.baseSize, channels: config.channels,
                                    filter: config.resizeFilter, file: cacheFile)
    }

    /// Decodes every image the episodes use, in parallel on all cores (each file once), so that loading the
    /// episodes afterwards only normalises.
    public func prefetch(_ episodes: [Episode]) throws {
        var refs: [ItemRef] = []
        for e in episodes {
            for (c, items) in zip(e.classes, zip(e.support, e.query).map { $0 + $1 }) {
                for i in items { refs.append(ItemRef(classIndex: c, item: i)) }
            }
        }
        try cache.prefetch(refs)
    }

    /// The support and query tensors of `episode`. With augmentation on, image j's random choices come from
    /// `SeededRNG(seed: augmentationSeed, path: [episode.index, j])`.
    public func batch(for episode: Episode, augmentationSeed: UInt64 = 0) throws -> EpisodeBatch {
        let s = zip(episode.classes, episode.support).flatMap { c, items in items.map { ItemRef(classIndex: c, item: $0) } }
        let q = zip(episode.classes, episode.query).flatMap { c, items in items.map { ItemRef(classIndex: c, item: $0) } }
        try cache.prefetch(s + q)
        let st = try tensor(for: s, augmentationSeed: augmentationSeed, stream: [UInt64(episode.index), 0])
        let qt = try tensor(for: q, augmentationSeed: augmentationSeed, stream: [UInt64(episode.index), 1])
        return EpisodeBatch(support: st, query: qt, supportLabels: episode.supportLabels,
                            queryLabels: episode.queryLabels, classes: episode.classes)
    }

    /// The (N, C, size, size) tensor of `items`, in order. Image j's augmentation uses
    /// `SeededRNG(seed: augmentationSeed, path: stream + [j])`.
    public func tensor(for items: [ItemRef], augmentationSeed: UInt64 = 0, stream: [UInt64] = []) throws -> Tensor {
        try cache.prefetch(items)
        let c = config.channels, s = config.size, per = c * s * s
        var data = [Float](repeating: 0, count: items.count * per)
        let cfg = config
        data.withUnsafeMutableBufferPointer { out in
            let box = UnsafeSendableBuffer(out)
            let work = { (j: Int) in
                var rng = SeededRNG(seed: augmentationSeed, path: stream + [UInt64(j)])
                let img = self.cache.image(unchecked: items[j])
                ImageTransform.apply(img, config: cfg, rng: &rng,
                                     into: UnsafeMutableBufferPointer(rebasing: box.buffer[(j * per)..<((j + 1) * per)]))
            }
            if items.count < 8 { for j in items.indices { work(j) } }
            else { DispatchQueue.concurrentPerform(iterations: items.count, execute: work) }
        }
        return Tensor(shape: [items.count, c, s, s], data: data)
    }
}

/// A raw buffer handed to concurrent workers that write disjoint ranges.
struct UnsafeSendableBuffer: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Float>
    init(_ b: UnsafeMutableBufferPointer<Float>) { buffer = b }
}

extension ImageCache {
    /// The cached image of a prefetched item.
    func image(unchecked ref: ItemRef) -> PixelImage {
        withBytes(ref) { PixelImage(width: side, height: side, channels: channels, pixels: Array($0)) }
    }
}

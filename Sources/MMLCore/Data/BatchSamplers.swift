/// A (class index, item index) pair of a dataset.
public struct ItemRef: Sendable, Hashable, Codable {
    public var classIndex: Int
    public var item: Int
    public init(classIndex: Int, item: Int) {
        self.classIndex = classIndex
        self.item = item
    }
}

/// Mini-batches over every item of every (base) class, for pre-training a classifier: each epoch is a
/// permutation of all items, a pure function of (seed, epoch).
public struct BatchSampler: Sendable {
    public let itemCounts: [Int]
    public let batchSize: Int
    public let seed: UInt64
    /// Drop the last, smaller batch of an epoch.
    public let dropLast: Bool

    /// Throws `MMLError(.invalidArgument)` for a batch size < 1 and `.datasetTooSmall` for an empty dataset.
    public init(itemCounts: [Int], batchSize: Int, seed: UInt64, dropLast: Bool = true) throws {
        guard batchSize >= 1 else { throw MMLError(.invalidArgument, "batch size must be >= 1, got \(batchSize)") }
        let total = itemCounts.reduce(0, +)
        guard total >= (dropLast ? batchSize : 1) else {
            throw MMLError(.datasetTooSmall, "the dataset has \(total) images, fewer than one batch of \(batchSize)")
        }
        self.itemCounts = itemCounts
        self.batchSize = batchSize
        self.seed = seed
        self.dropLast = dropLast
    }

    /// Batches per epoch.
    public var batchesPerEpoch: Int {
        let total = itemCounts.reduce(0, +)
        return dropLast ? total / batchSize : (total + batchSize - 1) / batchSize
    }

    /// The batches of epoch `epoch` (every item exactly once, except a dropped remainder).
    public func epoch(_ epoch: Int) -> [[ItemRef]] {
        var all: [ItemRef] = []
        for (c, n) in itemCounts.enumerated() { for i in 0..<n { all.append(ItemRef(classIndex: c, item: i)) } }
        var rng = SeededRNG(seed: seed, stream: UInt64(epoch))
        rng.shuffle(&all)
        return (0..<batchesPerEpoch).map { b in Array(all[(b * batchSize)..<min(all.count, (b + 1) * batchSize)]) }
    }
}

/// P classes x K images per batch for metric-learning losses (triplet, margin; METHOD.md section 4):
/// batch b is a pure function of (seed, b); classes distinct within a batch, images distinct within a class.
public struct PKSampler: Sendable {
    public let classesPerBatch: Int
    public let imagesPerClass: Int
    public let seed: UInt64
    /// Items per class of the classes eligible (those with at least K images).
    public let itemCounts: [Int]
    /// Dataset class index of each eligible class.
    public let eligibleClasses: [Int]
    /// Classes left out for having fewer than K images.
    public let warnings: [String]

    /// - Throws: `MMLError(.datasetTooSmall)` when fewer than P classes have at least K images (numbers given).
    public init(dataset: any FewShotDataset, classesPerBatch p: Int, imagesPerClass k: Int, seed: UInt64) throws {
        guard p >= 1, k >= 1 else {
            throw MMLError(.invalidArgument, "P x K batches need P >= 1 and K >= 1, got P \(p), K \(k)")
        }
        let counts = dataset.itemCounts
        let ok = counts.indices.filter { counts[$0] >= k }
        let small = counts.indices.filter { counts[$0] < k }
        guard ok.count >= p else {
            throw MMLError(.datasetTooSmall, "\(dataset.name) has \(ok.count) class(es) with at least \(k) images, "
                           + "but P x K batches need \(p); lower P or K")
        }
        classesPerBatch = p
        imagesPerClass = k
        self.seed = seed
        eligibleClasses = ok
        itemCounts = ok.map { counts[$0] }
        warnings = small.isEmpty ? [] : ["left out \(small.count) class(es) with fewer than \(k) images: "
            + small.prefix(10).map { "'\(dataset.classNames[$0])' (\(counts[$0]))" }.joined(separator: ", ")]
    }

    /// Batch `index`: P x K items, class-major.
    public func batch(_ index: Int) -> [ItemRef] {
        var rng = SeededRNG(seed: seed, stream: UInt64(index))
        var out: [ItemRef] = []
        for e in rng.sample(classesPerBatch, from: eligibleClasses.count) {
            for i in rng.sample(imagesPerClass, from: itemCounts[e]) {
                out.append(ItemRef(classIndex: eligibleClasses[e], item: i))
            }
        }
        return out
    }
}

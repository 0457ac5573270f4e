import Foundation

/// Training augmentation of a run's images.
public enum AugmentationKind: String, Codable, Sendable, CaseIterable, NamedChoice {
    /// No augmentation.
    case none
    /// MML's: resize to 100/84 of the size, random crop, horizontal flip, colour jitter 0.4.
    case mml
    /// Random translations of up to 1/14 of the side (2 pixels at 28 x 28), edges replicated; nothing else
    /// (`Augmentation.shift(side:)`), for characters whose size and handedness matter.
    case shift

    /// The kind of a model's saved training augmentation (`.none` for any other combination than these two
    /// presets at `side`).
    public init(of augmentation: Augmentation, side: Int) {
        if augmentation == .mml { self = .mml } else if augmentation == .shift(side: side) { self = .shift } else { self = .none }
    }

    /// The configuration field named in parse errors.
    public static let field = "augmentation"
}

/// Image size, channels and augmentation of a run, with defaults that follow the dataset (the part of a run's
/// configuration that becomes the model's `ImageConfig`).
public struct ImageSettings: Codable, Sendable, Equatable {
    /// Image side in pixels (nil: 28 for Omniglot, the synthetic size, else 84).
    public var size: Int?
    /// Image channels, 1 or 3 (nil: 1 for Omniglot, the synthetic channels, else 3).
    public var channels: Int?
    /// Training augmentation.
    public var augmentation: AugmentationKind
    /// Ink convention, resize filter, mean and std (nil or unset fields: paper-white, triangle, and the dataset's
    /// normalisation below).
    public var preprocessing: Preprocessing?

    public init(size: Int? = nil, channels: Int? = nil, augmentation: AugmentationKind = .none,
                preprocessing: Preprocessing? = nil) {
        self.size = size
        self.channels = channels
        self.augmentation = augmentation
        self.preprocessing = preprocessing
    }

    /// Checks the numbers (the image configurations check them again with the dataset's defaults).
    /// - Throws: `MMLError` naming the field and its range.
    public func validate() throws {
        try Limits.check(size, "image.size", in: Limits.imageSide, "the image side in pixels")
        if let channels, channels != 1 && channels != 3 {
            throw MMLError(.invalidArgument, "`image.channels` \(channels): images have 1 (grey) or 3 (colour) channels")
        }
    }

    /// The training (with augmentation) and evaluation (without) image configurations for `dataset`. Mean and std
    /// default to ImageNet's for colour images of folder / CSV datasets and to 0 / 1 otherwise; `preprocessing`
    /// overrides them.
    /// - Throws: `MMLError(.config)` for an invalid size, channel count, mean or std.
    public func configurations(for dataset: DatasetSource) throws -> (train: ImageConfig, eval: ImageConfig) {
        let layout = dataset.resolvedLayout
        let omniglot = layout == .omniglot || layout == .omniglotVinyals
        let size = self.size ?? (omniglot ? 28 : layout == .synthetic ? dataset.syntheticSize ?? 84 : 84)
        let ch = channels ?? (omniglot ? 1 : layout == .synthetic ? dataset.syntheticChannels ?? 3 : 3)
        let natural = ch == 3 && !omniglot && layout != .synthetic
        var eval = ImageConfig(size: size, channels: ch, mean: natural ? ImageConfig.imagenetMean : [0],
                               std: natural ? ImageConfig.imagenetStd : [1])
        if let preprocessing { eval = try preprocessing.applied(to: eval) }
        var train = eval
        switch augmentation {
        case .mml:
            train.resize = Int((Double(size) * 100 / 84).rounded())
            train.augmentation = .mml
        case .shift: train.augmentation = .shift(side: size)
        case .none: break
        }
        try eval.validate()
        try train.validate()
        return (train, eval)
    }
}

/// The backbone of a fresh model: kind, widths, initialisation and seed. Nil fields take the run's defaults
/// (`BackboneSettings.Defaults`), which differ between episodic and supervised training.
public struct BackboneSettings: Codable, Sendable, Equatable {
    /// Backbone kind (nil: the run's default).
    public var kind: BackboneKind?
    /// Channel widths, 4 values (nil: the architecture's own).
    public var widths: [Int]?
    /// Weight initialisation (nil: the run's default).
    public var initialization: BackboneInitialization?
    /// Seed of the initial weights (nil: the run's default).
    public var seed: UInt64?

    public init(kind: BackboneKind? = nil, widths: [Int]? = nil, initialization: BackboneInitialization? = nil,
                seed: UInt64? = nil) {
        self.kind = kind; self.widths = widths; self.initialization = initialization; self.seed = seed
    }

    /// Checks the widths. - Throws: `MMLError` naming `widths` and the range of a width.
    public func validate() throws {
        if let widths, widths.count != 4 || widths.contains(where: { !Limits.width.contains($0) }) {
            throw MMLError(.invalidArgument, "`widths` \(widths) must be 4 channel counts in "
                           + "\(Limits.width.lowerBound)...\(Limits.width.upperBound), e.g. 64,64,64,64")
        }
    }

    /// The defaults of the fields above that differ between runs.
    public struct Defaults: Sendable {
        public var kind: BackboneKind
        public var initialization: BackboneInitialization
        public var seed: UInt64

        public init(kind: BackboneKind, initialization: BackboneInitialization, seed: UInt64) {
            self.kind = kind
            self.initialization = initialization
            self.seed = seed
        }

        /// Episodic training (and its ablation retraining): Conv-64F, MML's N(0, 0.02) initialisation, seed 0.
        public static let episodic = Defaults(kind: .conv64F, initialization: .mml, seed: 0)

        /// Pre-training and embedding training: Conv-4, Kaiming initialisation, weights seeded by the run's seed.
        public static func supervised(seed: UInt64) -> Defaults {
            Defaults(kind: .conv4, initialization: .kaiming, seed: seed)
        }
    }

    /// The configuration of a fresh model of `kind` (`episodic`, `pretrained`, `embedding`) for `dataset`, with
    /// `image` and `metric`. Its image configuration is the training one; evaluate with `.forEvaluation`.
    /// - Throws: `MMLError(.config)` for invalid widths or image settings.
    public func modelConfiguration(kind modelKind: String, dataset: DatasetSource, image: ImageSettings,
                                   defaults: Defaults, metric: MetricConfiguration? = nil) throws -> ModelConfiguration {
        if let widths, widths.count != 4 || widths.contains(where: { $0 < 1 }) {
            throw MMLError(.config, "`widths` \(widths) must be 4 positive channel counts, e.g. 64,64,64,64")
        }
        let images = try image.configurations(for: dataset)
        return ModelConfiguration(kind: modelKind, backbone: kind ?? defaults.kind, inputChannels: images.eval.channels,
                                  widths: widths, initialization: initialization ?? defaults.initialization,
                                  seed: seed ?? defaults.seed, image: images.train, metric: metric)
    }
}

extension ImageConfig {
    /// The same configuration without training augmentation (and without the larger resize it crops from).
    public var forEvaluation: ImageConfig {
        var c = self
        c.augmentation = .none
        c.resize = nil
        return c
    }
}

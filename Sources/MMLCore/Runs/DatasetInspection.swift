import Foundation

/// What `mml data inspect` reports about a dataset: classes, image counts, the image sizes found and every problem
/// (unreadable or corrupt files, empty classes), without training anything.
public struct DatasetInspectionConfiguration: Codable, Sendable, Equatable {
    public var dataset: DatasetSource
    /// Decode every image (finds corrupt files; slower) instead of reading headers only.
    public var decode: Bool
    /// Write the first image of up to 10 classes as PNGs into this directory.
    public var samplesDirectory: String?

    public init(dataset: DatasetSource, decode: Bool = false, samplesDirectory: String? = nil) {
        self.dataset = dataset
        self.decode = decode
        self.samplesDirectory = samplesDirectory
    }
}

/// The result of a `DatasetInspection`.
public struct DatasetInspectionReport: Codable, Sendable, Equatable {
    /// One kind of image found and how many images are of it (`84x84 png 3ch 8-bit`).
    public struct ImageKind: Codable, Sendable, Equatable {
        public var description: String
        public var count: Int
    }
    public var name: String
    public var classNames: [String]
    public var imagesPerClass: [Int]
    /// Image kinds, most frequent first (for generated data: sampled from two images per class).
    public var imageKinds: [ImageKind]
    public var sampled: Bool
    public var skippedFiles: Int
    /// The dataset's own warnings, then one message per unreadable image, then empty classes (configuration fields
    /// in backquotes, as in `MMLError.template`).
    public var problems: [String]
    /// Where sample PNGs were written, when asked.
    public var samplesDirectory: String?

    public var classCount: Int { classNames.count }
    public var imageCount: Int { imagesPerClass.reduce(0, +) }
}

/// Inspects a dataset: `DatasetInspection(configuration).run()`.
public final class DatasetInspection {
    public let configuration: DatasetInspectionConfiguration

    public init(_ configuration: DatasetInspectionConfiguration) { self.configuration = configuration }

    /// Reads every image's header (or decodes it) and collects the report; a bad image is a problem in the report,
    /// not an error. Reports `.progress(phase: "classes", ...)` per class.
    /// - Throws: `MMLError` when the dataset cannot be opened or a sample cannot be written.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> DatasetInspectionReport {
        let ds = try configuration.dataset.open()
        let counts = ds.itemCounts
        let generated = ds is SyntheticDataset
        var kinds: [String: Int] = [:]
        var problems: [String] = []
        for c in 0..<ds.classCount {
            for i in 0..<counts[c] {
                do {
                    let key: String
                    if generated || configuration.decode {
                        let img = try ds.loadImage(ofClass: c, item: i, channels: 3)
                        key = "\(img.width)x\(img.height)"
                    } else {
                        let path = ds.itemPath(ofClass: c, item: i)
                        let info = try ImageCodec.probe(try ImageCodec.readFile(path), source: path,
                                                        maxPixels: configuration.dataset.resolvedMaxImagePixels)
                        key = "\(info.width)x\(info.height) \(info.format.rawValue) \(info.channels)ch \(info.bitDepth)-bit"
                    }
                    kinds[key, default: 0] += 1
                } catch let e as MMLError { problems.append(e.template) }
                if generated && i >= 1 { break } // generated: the size is the same for all
            }
            events(.progress(phase: "classes", done: c + 1, total: ds.classCount))
        }
        let empty = counts.indices.filter { counts[$0] == 0 }.map { ds.classNames[$0] }
        if !empty.isEmpty {
            problems.append("\(empty.count) class(es) have no images: \(empty.prefix(10).joined(separator: ", "))")
        }
        if let dir = configuration.samplesDirectory {
            for c in 0..<min(10, ds.classCount) where counts[c] > 0 {
                let img = try ds.loadImage(ofClass: c, item: 0, channels: 3)
                let path = "\(dir)/class\(c).png"
                try ImageCodec.write(img, to: path)
                events(.wrote(path: path, what: "sample of class \(ds.classNames[c])"))
            }
        }
        let sortedKinds = kinds.map { DatasetInspectionReport.ImageKind(description: $0.key, count: $0.value) }
            .sorted { $0.count != $1.count ? $0.count > $1.count : $0.description < $1.description }
        return DatasetInspectionReport(name: ds.name, classNames: ds.classNames, imagesPerClass: counts,
                                       imageKinds: sortedKinds, sampled: generated, skippedFiles: ds.skippedFiles.count,
                                       problems: ds.warnings + problems,
                                       samplesDirectory: configuration.samplesDirectory)
    }
}

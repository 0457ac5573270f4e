import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a run will hold in memory at once, estimated from its configuration before anything is allocated, and the
/// check that it fits: a run that cannot fit is refused with the figure and the fields to lower, instead of dying in
/// an allocation failure hours later (or at once, with a backtrace).
///
/// The estimate counts what grows with the user's numbers: stored episodes and their records, one episode's or
/// batch's images as floats with the first block's activations (the largest feature map), and the training caches.
/// It is deliberately rough (the constants are upper-side guesses, within a factor of about two); it exists to
/// refuse the impossible, not to plan the possible.
public struct MemoryEstimate: Sendable {
    /// The parts, in words, and their bytes.
    public private(set) var parts: [(what: String, bytes: Double)] = []

    public init() {}

    /// The bytes of all parts.
    public var total: Double { parts.reduce(0) { $0 + $1.bytes } }

    /// Adds a part.
    public mutating func add(_ what: String, bytes: Double) { parts.append((what, bytes)) }

    /// Adds `count` stored episodes of `images` images each (the sampled index lists and one record each).
    public mutating func addEpisodes(_ count: Int, imagesPerEpisode images: Int, way: Int, what: String) {
        add("\(count) \(what) of \(images) images", bytes: Double(count) * Self.episodeBytes(images: images, way: way))
    }

    /// Adds `count` images of `side` x `side` x `channels` as they pass through the backbone: the input floats and
    /// the first block's output (`firstWidth` channels at full resolution); `training` keeps every block's cache
    /// for the backward pass (about three times the first block's output).
    public mutating func addImages(_ count: Int, side: Int, channels: Int, firstWidth: Int, training: Bool,
                                   what: String) {
        let pixels = Double(side) * Double(side)
        let perImage = 4 * pixels * (Double(channels) + Double(firstWidth) * (training ? 3 : 1))
        add("\(what): \(count) images of \(channels) x \(side) x \(side)", bytes: Double(count) * perImage)
    }

    /// The bytes of one stored episode: the class, support and query index lists and its per-episode record.
    static func episodeBytes(images: Int, way: Int) -> Double { 8 * Double(images) + 80 * Double(way) + 256 }

    /// This machine's physical memory in bytes (sysconf; ProcessInfo where sysconf does not say).
    public static var physicalMemory: Double {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        if pages > 0, size > 0 { return Double(pages) * Double(size) }
        return Double(ProcessInfo.processInfo.physicalMemory)
    }

    /// Refuses a run that needs more than the machine's physical memory.
    /// - Parameters:
    ///   - lower: the fields whose values to lower (in backquotes in the message).
    ///   - available: the memory to fit in (default: the physical memory).
    /// - Throws: `MMLError(.invalidArgument)` with the estimate, its largest parts, the memory and what to lower.
    public func check(lower: [String], available: Double = MemoryEstimate.physicalMemory) throws {
        guard total > available else { return }
        let largest = parts.sorted { $0.bytes > $1.bytes }.prefix(2)
            .map { "\($0.what): \(Self.format($0.bytes))" }.joined(separator: "; ")
        throw MMLError(.invalidArgument, "this run needs about \(Self.format(total)) of memory (\(largest)) but this "
                       + "machine has \(Self.format(available)); lower "
                       + lower.map { "`\($0)`" }.joined(separator: ", "))
    }

    /// Bytes in words: "1.5 GB", "12 TB".
    public static func format(_ bytes: Double) -> String {
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        var v = bytes, u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        if u == units.count - 1 && v >= 1000 { return String(format: "%.3g %@", bytes, "bytes") }
        return u == 0 ? "\(Int(v)) bytes" : String(format: v < 10 ? "%.1f %@" : "%.0f %@", v, units[u])
    }
}

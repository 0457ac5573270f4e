import Foundation

/// FNV-1a, 64 bits: a small stable hash of bytes (the same on every machine and Swift version), used to identify
/// episodes and checkpoint files in per-episode files and the image cache's contents. Not a cryptographic hash: it detects mistakes (another
/// seed, split or checkpoint), not forgeries.
public struct FNV1a64: Sendable {
    /// The hash so far.
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    public init() {}

    /// Adds bytes.
    public mutating func add(bytes: UnsafeRawBufferPointer) {
        var h = value
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        value = h
    }

    /// Adds the UTF-8 bytes of `text`.
    public mutating func add(_ text: String) {
        var t = text
        t.withUTF8 { add(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// The hash as 16 lower-case hex digits.
    public var hex: String { String(format: "%016llx", value) }

    /// The hash of a file's bytes, `fnv1a64:<hex>`.
    /// - Throws: `MMLError(.fileNotFound)` naming the file when it cannot be read.
    public static func ofFile(_ path: String) throws -> String {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw MMLError(.fileNotFound, "cannot read \(path) to hash it")
        }
        var h = FNV1a64()
        data.withUnsafeBytes { h.add(bytes: $0) }
        return "fnv1a64:" + h.hex
    }
}

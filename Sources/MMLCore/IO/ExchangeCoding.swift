import Foundation

#if !(arch(x86_64) || arch(arm64))
#error("the exchange format assumes a little-endian host")
#endif

/// Little-endian packing of the values the trainer exchanges (Float, Double, counts), and their reading back.
struct ExchangeWriter {
    private(set) var bytes: [UInt8] = []
    mutating func append(_ v: Int) { append(UInt64(bitPattern: Int64(v))) }
    mutating func append(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func append(_ v: Double) { append(v.bitPattern) }
    /// The count, then the floats' bytes as they lie in memory (little-endian, checked above).
    mutating func append(_ v: [Float]) {
        append(v.count)
        v.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }
    /// Several float arrays as one: the total count, then each array's bytes in turn (read back by `floats()`).
    mutating func append(_ parts: [[Float]]) {
        append(parts.reduce(0) { $0 + $1.count })
        for v in parts { v.withUnsafeBytes { bytes.append(contentsOf: $0) } }
    }
    mutating func append(_ v: [Double]) {
        append(v.count)
        v.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }
}

struct ExchangeReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var atEnd: Bool { offset == bytes.count }

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard offset + n <= bytes.count else {
            throw MMLError(.corruptFile, "a rank's exchange message ends early (\(bytes.count) bytes)")
        }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }
    mutating func uint64() throws -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }
    mutating func int() throws -> Int { Int(Int64(bitPattern: try uint64())) }
    mutating func double() throws -> Double { Double(bitPattern: try uint64()) }
    mutating func doubles() throws -> [Double] {
        let n = try int()
        guard n >= 0 else { throw MMLError(.corruptFile, "a rank's exchange message holds a negative count") }
        let raw = try take(8 * n)
        var out = [Double](repeating: 0, count: n)
        out.withUnsafeMutableBytes { dst in raw.withUnsafeBytes { dst.copyMemory(from: $0) } }
        return out
    }
    mutating func floats() throws -> [Float] {
        let n = try int()
        guard n >= 0 else { throw MMLError(.corruptFile, "a rank's exchange message holds a negative count") }
        let raw = try take(4 * n)
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBytes { dst in raw.withUnsafeBytes { dst.copyMemory(from: $0) } }
        return out
    }
}

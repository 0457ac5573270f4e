import Foundation
import MMLCore

/// Small files whose headers lie, for the tests of hostile input (shared by the core and CLI tests).
public enum HostileFiles {
    /// The CRC-32 of PNG chunks (ISO 3309, reflected polynomial 0xEDB88320), bit by bit.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }

    static func be32(_ v: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8((v >> $0) & 0xFF) } }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let td = Array(type.utf8) + data
        return be32(data.count) + td + be32(Int(crc32(td)))
    }

    /// A ~2 KB RGB PNG whose IHDR declares `width` x `height` pixels: valid signature, IHDR and CRCs, then one IDAT
    /// of 2000 zero bytes in an unfinished stored zlib block (far less data than the header promises) and IEND.
    public static func oversizedPNG(width: Int = 30000, height: Int = 30000) -> [UInt8] {
        let sig: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        let ihdr = be32(width) + be32(height) + [8, 2, 0, 0, 0]
        let n = 2000
        let idat: [UInt8] = [0x78, 0x01, 0x00, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            + [UInt8](repeating: 0, count: n)
        return sig + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", [])
    }

    /// A small baseline JPEG (16 x 16 grey) whose SOF0 frame header is patched to declare `width` x `height`.
    public static func oversizedJPEG(width: Int = 30000, height: Int = 30000) throws -> [UInt8] {
        var b = try ImageCodec.encodeJPEG(PixelImage(width: 16, height: 16, channels: 1, value: 128), quality: 90)
        guard let sof = (0..<(b.count - 9)).first(where: { b[$0] == 0xFF && b[$0 + 1] == 0xC0 }) else {
            throw MMLError(.corruptFile, "no SOF0 marker in the encoded JPEG")
        }
        b[sof + 5] = UInt8(height >> 8); b[sof + 6] = UInt8(height & 0xFF)
        b[sof + 7] = UInt8(width >> 8); b[sof + 8] = UInt8(width & 0xFF)
        return b
    }
}

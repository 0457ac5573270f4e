import Foundation
import MMLImageIO

/// What an image file's header says, without decoding the pixels.
public struct ImageInfo: Sendable, Equatable {
    /// The container format.
    public enum Format: String, Sendable { case png, jpeg }
    public let width: Int
    public let height: Int
    /// Native channels after expansion to 8 bits: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
    public let channels: Int
    /// The stored bit depth (PNG 1, 2, 4, 8, 16; JPEG 8).
    public let bitDepth: Int
    public let format: Format
}

/// PNG and JPEG decoding and encoding (libpng, libjpeg-turbo through the MMLImageIO C target).
///
/// Every failure is an `MMLError` naming the file (or `source` label) and the library's reason; a corrupt or
/// truncated file never crashes, exits or hangs.
public enum ImageCodec {
    /// The file extensions the dataset scanners treat as images (lower case).
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg"]

    /// The default limit on an image's declared width x height (8192 x 8192, 192 MB as 8-bit RGB): a larger image
    /// is refused from its header, before any pixel memory is allocated (`DatasetSource.maxImagePixels` raises it).
    public static let defaultMaxPixels = 1 << 26

    /// Decodes a PNG or JPEG held in memory.
    /// - Parameters:
    ///   - bytes: the file contents.
    ///   - channels: 1 (grey), 3 (RGB) or nil for the native channel count (1-4).
    ///   - source: the file name used in error messages.
    ///   - maxPixels: the largest width x height accepted; checked on the header (PNG IHDR, JPEG SOF) before the
    ///     pixel buffer is allocated.
    /// - Throws: `MMLError(.unsupportedFormat)` for anything but PNG/JPEG or an image over `maxPixels`,
    ///   `.corruptFile` when the library rejects it.
    public static func decode(_ bytes: [UInt8], channels: Int? = nil, source: String = "<memory>",
                              maxPixels: Int = defaultMaxPixels) throws -> PixelImage {
        precondition(channels == nil || channels == 1 || channels == 3, "[decode] channels must be 1, 3 or nil")
        var info = mml_image_info()
        var err = [CChar](repeating: 0, count: 256)
        let rc0 = bytes.withUnsafeBufferPointer { mml_image_probe($0.baseAddress, $0.count, &info, &err, err.count) }
        if rc0 != MML_IMG_OK { throw error(rc0, err, source) }
        try checkSize(width: Int(info.width), height: Int(info.height), maxPixels: maxPixels, source: source)
        let c = channels ?? Int(info.channels)
        let n = Int(info.width) * Int(info.height) * c
        var rc: Int32 = 0
        let pixels = [UInt8](unsafeUninitializedCapacity: n) { buf, count in
            rc = bytes.withUnsafeBufferPointer {
                mml_image_decode($0.baseAddress, $0.count, Int32(channels ?? 0), buf.baseAddress, n, nil, &err, err.count)
            }
            if rc != MML_IMG_OK { buf.initialize(repeating: 0) }
            count = n
        }
        if rc != MML_IMG_OK { throw error(rc, err, source) }
        return PixelImage(width: Int(info.width), height: Int(info.height), channels: c, pixels: pixels)
    }

    /// Reads and decodes an image file. Throws `.fileNotFound` when it cannot be read, else as `decode`.
    public static func decodeFile(_ path: String, channels: Int? = nil,
                                  maxPixels: Int = defaultMaxPixels) throws -> PixelImage {
        try decode(readFile(path), channels: channels, source: path, maxPixels: maxPixels)
    }

    /// The header facts of an image held in memory.
    /// - Parameter maxPixels: when given, an image whose header declares more pixels is refused as by `decode`.
    public static func probe(_ bytes: [UInt8], source: String = "<memory>", maxPixels: Int? = nil) throws -> ImageInfo {
        var info = mml_image_info()
        var err = [CChar](repeating: 0, count: 256)
        let rc = bytes.withUnsafeBufferPointer { mml_image_probe($0.baseAddress, $0.count, &info, &err, err.count) }
        if rc != MML_IMG_OK { throw error(rc, err, source) }
        if let maxPixels {
            try checkSize(width: Int(info.width), height: Int(info.height), maxPixels: maxPixels, source: source)
        }
        return ImageInfo(width: Int(info.width), height: Int(info.height), channels: Int(info.channels),
                         bitDepth: Int(info.bit_depth), format: info.format == MML_IMG_FORMAT_PNG ? .png : .jpeg)
    }

    /// The bytes of a file. Throws `MMLError(.fileNotFound)` naming the path.
    public static func readFile(_ path: String) throws -> [UInt8] {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw MMLError(.fileNotFound, "cannot read image file \(path): it does not exist or is not readable")
        }
        defer { try? fh.close() }
        guard let data = try? fh.readToEnd() else { return [] }
        return [UInt8](data)
    }

    /// Encodes an 8-bit image (1-4 channels) as PNG.
    public static func encodePNG(_ image: PixelImage) throws -> [UInt8] {
        var err = [CChar](repeating: 0, count: 256)
        var out: UnsafeMutablePointer<UInt8>? = nil
        var len = 0
        let rc = image.pixels.withUnsafeBufferPointer {
            mml_png_encode($0.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels), &out, &len,
                           &err, err.count)
        }
        return try take(rc, out, len, err, "PNG encoding")
    }

    /// Encodes raw PNG samples with an explicit colour type (0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA) and
    /// bit depth (1, 2, 4, 8, 16), for tests of every decoder path.
    /// - Parameters:
    ///   - samples: `width * height * samplesPerPixel` values (palette: one index per pixel), each `< 2^bitDepth`.
    ///   - palette: RGB triples, flattened (colour type 3 only). `transparency`: alpha of the first palette entries.
    ///   - interlaced: Adam7 interlacing.
    public static func encodePNG(samples: [UInt16], width: Int, height: Int, colorType: Int, bitDepth: Int,
                                 palette: [UInt8] = [], transparency: [UInt8] = [],
                                 interlaced: Bool = false) throws -> [UInt8] {
        var err = [CChar](repeating: 0, count: 256)
        var out: UnsafeMutablePointer<UInt8>? = nil
        var len = 0
        let rc = samples.withUnsafeBufferPointer { s in
            palette.withUnsafeBufferPointer { p in
                transparency.withUnsafeBufferPointer { t in
                    mml_png_encode_raw(s.baseAddress, Int32(width), Int32(height), Int32(colorType), Int32(bitDepth),
                                       p.baseAddress, Int32(palette.count / 3), t.baseAddress, Int32(transparency.count),
                                       interlaced ? 1 : 0, &out, &len, &err, err.count)
                }
            }
        }
        return try take(rc, out, len, err, "PNG encoding")
    }

    /// Encodes an 8-bit image (1 or 3 channels) as a baseline JPEG of the given quality (1...100).
    public static func encodeJPEG(_ image: PixelImage, quality: Int = 90) throws -> [UInt8] {
        var err = [CChar](repeating: 0, count: 256)
        var out: UnsafeMutablePointer<UInt8>? = nil
        var len = 0
        let rc = image.pixels.withUnsafeBufferPointer {
            mml_jpeg_encode($0.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                            Int32(quality), &out, &len, &err, err.count)
        }
        return try take(rc, out, len, err, "JPEG encoding")
    }

    /// Writes an image file (PNG, or JPEG for a .jpg/.jpeg path) atomically: a temporary name, then rename.
    public static func write(_ image: PixelImage, to path: String, jpegQuality: Int = 90) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        let bytes = ext == "jpg" || ext == "jpeg" ? try encodeJPEG(image, quality: jpegQuality) : try encodePNG(image)
        try AtomicFile.write(Data(bytes), to: path)
    }

    /// Refuses an image whose header declares more than `maxPixels` pixels, naming the file, both numbers and the
    /// field that raises the limit.
    static func checkSize(width: Int, height: Int, maxPixels: Int, source: String) throws {
        guard width * height > maxPixels else { return }
        throw MMLError(.unsupportedFormat,
                       "\(source): the header declares \(width) x \(height) = \(width * height) pixels, more than the "
                       + "limit of \(maxPixels) (`maxImagePixels`); decoding it would need \(width * height * 3 / 1_000_000) "
                       + "MB. Raise `maxImagePixels` if the image is genuine, else remove or replace the file")
    }

    private static func take(_ rc: Int32, _ out: UnsafeMutablePointer<UInt8>?, _ len: Int, _ err: [CChar],
                             _ what: String) throws -> [UInt8] {
        guard rc == MML_IMG_OK, let out else {
            throw MMLError(.invalidArgument, "\(what) failed: \(message(err)) (code \(rc))")
        }
        defer { mml_image_free(out) }
        return [UInt8](UnsafeBufferPointer(start: out, count: len))
    }

    private static func message(_ err: [CChar]) -> String {
        String(decoding: err.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func error(_ rc: Int32, _ err: [CChar], _ source: String) -> MMLError {
        let why = message(err)
        switch Int(rc) {
        case Int(MML_IMG_ERR_UNSUPPORTED):
            return MMLError(.unsupportedFormat, "cannot decode \(source): \(why); only PNG and JPEG are supported")
        case Int(MML_IMG_ERR_TOO_LARGE):
            return MMLError(.unsupportedFormat, "cannot decode \(source): larger than \(MML_IMG_MAX_SIDE) pixels a side")
        case Int(MML_IMG_ERR_NOMEM):
            return MMLError(.io, "cannot decode \(source): out of memory")
        default:
            return MMLError(.corruptFile,
                            "cannot decode \(source): \(why.isEmpty ? "invalid data" : why) (corrupt or truncated "
                            + "image; re-download or remove it)")
        }
    }
}

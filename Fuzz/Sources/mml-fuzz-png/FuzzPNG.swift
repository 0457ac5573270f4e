import FuzzSupport
import MMLCore

/// libFuzzer entry point: decode arbitrary bytes as an image (the seeds are PNG files, so most inputs take the
/// PNG path) under a 2^20-pixel limit, natively, as grey and as RGB. Every input must either decode or throw an
/// `MMLError`; a trap, crash, exit or sanitizer report is a bug in ImageCodec / MMLImageIO.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPNG(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzReader(data, size, reader: "ImageCodec.decode (png)") { bytes in
        do { _ = try ImageCodec.probe(bytes, source: "fuzz.png", maxPixels: 1 << 20) } catch is MMLError {}
        for channels in [nil, 1, 3] as [Int?] {
            let img = try ImageCodec.decode(bytes, channels: channels, source: "fuzz.png", maxPixels: 1 << 20)
            precondition(img.pixels.count == img.width * img.height * img.channels, "pixel count")
        }
    }
}

@main
struct FuzzMain {
    static func main() { runFuzzerDriver { data, size in fuzzPNG(data, size) } }
}

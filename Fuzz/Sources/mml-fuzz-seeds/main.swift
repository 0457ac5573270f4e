import Foundation
import MMLCore

// mml-fuzz-seeds DIR: writes DIR/seed-{png,jpeg,csv,episodes,checkpoint}/ with valid inputs of every kind each
// target parses (every PNG colour type and bit depth, interlaced; grey and RGB JPEGs; CSV splits with a header,
// CRLF and commas in labels; an episode list; checkpoint metadata of a real model configuration and state).
// Built with the targets' flags (-sanitize=fuzzer), so libFuzzer's runtime is linked in and needs an entry point;
// this program's own main runs instead of libFuzzer's and never calls it.
@_cdecl("LLVMFuzzerTestOneInput")
public func unusedFuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { 0 }

let dir = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Fuzz/.build/corpus"
func write(_ kind: String, _ name: String, _ bytes: [UInt8]) throws {
    let d = "\(dir)/seed-\(kind)"
    try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    try Data(bytes).write(to: URL(fileURLWithPath: "\(d)/\(name)"))
}

let (w, h) = (7, 5)
for (ct, spp, depths) in [(0, 1, [1, 2, 4, 8, 16]), (2, 3, [8, 16]), (3, 1, [1, 2, 4, 8]), (4, 2, [8, 16]), (6, 4, [8, 16])] {
    for d in depths {
        for interlaced in [false, true] {
            let samples = (0..<(w * h * spp)).map { UInt16(($0 * 37) % (ct == 3 ? min(3, 1 << d) : 1 << d)) }
            let palette: [UInt8] = ct == 3 ? Array([0, 0, 0, 255, 0, 0, 0, 255, 0].prefix(3 * min(3, 1 << d))) : []
            let png = try ImageCodec.encodePNG(samples: samples, width: w, height: h, colorType: ct, bitDepth: d,
                                               palette: palette, transparency: ct == 3 ? [128] : [],
                                               interlaced: interlaced)
            try write("png", "ct\(ct)-d\(d)\(interlaced ? "-i" : "").png", png)
        }
    }
}
for c in [1, 3] {
    let img = PixelImage(width: 17, height: 9, channels: c,
                         pixels: (0..<(17 * 9 * c)).map { UInt8(($0 * 29) % 256) })
    for q in [30, 90] { try write("jpeg", "c\(c)-q\(q).jpg", try ImageCodec.encodeJPEG(img, quality: q)) }
}
try write("csv", "header.csv", Array("filename,label\nn01_0001.jpg,n01\nn01_0002.jpg,n01\nn02_0001.png,n02\n".utf8))
try write("csv", "crlf.csv", Array("a.png, x,y \r\n\r\nsub/b.jpg,z\r\n".utf8))
let list = #"{"dataset": "fuzz", "split": "test", "way": 2, "shot": 1, "query": 1, "seed": 3, "episodes": [{"index": 0, "classes": ["a", "b"], "support": [["a0"], ["b1"]], "query": [["a2"], ["b3"]]}, {"index": 1, "classes": ["c", "a"], "support": [["c0"], ["a1"]], "query": [["c1"], ["a1"]]}]}"#
try write("episodes", "list.json", Array(list.utf8))
let model = ModelConfiguration(kind: "episodic", backbone: .conv64F, inputChannels: 3, widths: [8, 8, 8, 8], seed: 5,
                               image: ImageConfig(size: 20, channels: 3), metric: MetricConfiguration())
let enc = JSONEncoder()
enc.outputFormatting = [.sortedKeys]
let state = EpisodicTrainingState(training: EpisodicTrainingConfiguration())
try write("checkpoint", "model-state", Array(try enc.encode(model)) + [0] + Array(try enc.encode(state)))
try write("checkpoint", "model-only", Array(try enc.encode(model)))
print("wrote seeds into \(dir)")

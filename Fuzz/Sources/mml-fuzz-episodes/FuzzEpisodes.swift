import Foundation
import FuzzSupport
import MMLCore

/// A fixed in-memory dataset the fuzzed lists resolve against: classes a, b, c with items a0..a3 etc.
struct FuzzDataset: FewShotDataset {
    let name = "fuzz"
    let classNames = ["a", "b", "c"]
    let skippedFiles: [String] = []
    let warnings: [String] = []
    func itemCount(ofClass c: Int) -> Int { 4 }
    func itemPath(ofClass c: Int, item i: Int) -> String { "\(classNames[c])\(i)" }
    func loadImage(ofClass c: Int, item i: Int, channels: Int) throws -> PixelImage {
        PixelImage(width: 1, height: 1, channels: channels)
    }
}

/// libFuzzer entry point: decode arbitrary bytes as an episode list and resolve it against a small dataset, with
/// and without `allowDuplicates`. Every input must either be accepted or throw an `MMLError`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEpisodes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzReader(data, size, reader: "EpisodeList.decode") { bytes in
        let list = try EpisodeList.decode(Data(bytes), source: "fuzz.json")
        var warnings: [String] = []
        let ds = FuzzDataset()
        do { _ = try list.resolve(in: ds) } catch is MMLError {}
        let episodes = try list.resolve(in: ds, allowDuplicates: true, warnings: &warnings)
        for e in episodes {
            precondition(e.classes.count == list.way && e.support.allSatisfy { $0.count == list.shot }
                         && e.query.allSatisfy { $0.count == list.query }, "counts")
        }
    }
}

@main
struct FuzzMain {
    static func main() { runFuzzerDriver { data, size in fuzzEpisodes(data, size) } }
}

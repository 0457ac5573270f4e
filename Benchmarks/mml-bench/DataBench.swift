import Foundation
import MMLCore

/// `mml-bench data`: decode + resize throughput (Omniglot PNGs to 28 and 84, generated 84x84 JPEGs), cold
/// (through a fresh cache, parallel on all cores) against single-threaded decoding and against cached loads,
/// and synthetic generation. Options: --images N (default 2000; 200 with --quick), --repeats R (default 3).
func runDataBench(json: Bool, arguments: [String]) {
    let n = intOption(arguments, "--images", quickBench ? 200 : 2000), repeats = intOption(arguments, "--repeats", 3)
    var rows: [DataBenchRow] = []
    do {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("../shared/datasets/omniglot").standardizedFileURL.path
        if FileManager.default.fileExists(atPath: root) {
            let ds = try Datasets.open(path: root, layout: .omniglot, split: "background")
            for size in [28, 84] {
                rows += try loaderRows(ds, label: "omniglot png 105->\(size) 1ch", size: size, channels: 1, n: n, repeats: repeats)
            }
            // 600 evaluation episodes (Vinyals test split, 5-way 1-shot 15 queries, 28x28): cold includes decoding.
            let vin = try Datasets.open(path: root, layout: .omniglotVinyals, split: "test")
            let sampler = try EpisodeSampler(dataset: vin, way: 5, shot: 1, query: 15, seed: 0)
            let eps = sampler.episodes(600)
            var loader = try EpisodeLoader(dataset: vin, config: ImageConfig(size: 28, channels: 1))
            let t0 = DispatchTime.now().uptimeNanoseconds
            try loader.prefetch(eps)
            for e in eps { _ = try loader.batch(for: e) }
            let cold = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            let warm = measure(repeats: repeats) { for e in eps { _ = try! loader.batch(for: e) } }
            rows.append(DataBenchRow(name: "600 episodes vinyals-test 5w1s15q 28x28, cold (\(loader.cache.decodes) decodes)",
                                     images: 600 * 80, seconds: cold, ratio: nil))
            rows.append(DataBenchRow(name: "600 episodes vinyals-test 5w1s15q 28x28, cached", images: 600 * 80,
                                     seconds: warm, ratio: cold / warm))
            loader = try EpisodeLoader(dataset: vin, config: ImageConfig(size: 28, channels: 1))
        } else {
            fputs("note: ../shared/datasets/omniglot not found; skipping the Omniglot rows\n", stderr)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mml-bench-jpeg-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let perClass = 50, classes = max(1, n / perClass)
        for c in 0..<classes {
            for i in 0..<perClass {
                let img = SyntheticDataset.render(seed: 1, classID: c, index: i, size: 84, channels: 3)
                try ImageCodec.write(img, to: "\(dir)/c\(c)/\(i).jpg", jpegQuality: 90)
            }
        }
        let jds = try Datasets.open(path: dir, layout: .folder)
        rows += try loaderRows(jds, label: "jpeg 84x84 3ch", size: 84, channels: 3, n: n, repeats: repeats)

        for (size, ch) in [(28, 1), (84, 3)] {
            let count = n
            let t = measure(repeats: repeats) {
                for i in 0..<count { _ = SyntheticDataset.render(seed: 0, classID: i % 64, index: i, size: size, channels: ch) }
            }
            rows.append(DataBenchRow(name: "synthetic generate \(size)x\(size)x\(ch) (1 thread)", images: count, seconds: t, ratio: nil))
        }
    } catch {
        fputs("error: \(error)\n", stderr)
        exit(1)
    }
    printDataRows(rows, json: json)
}

/// Rows for one dataset: single-thread decode+resize (reference), cold parallel cache fill, cached loads.
func loaderRows(_ ds: any FewShotDataset, label: String, size: Int, channels: Int, n: Int, repeats: Int) throws -> [DataBenchRow] {
    var items: [ItemRef] = []
    outer: for c in 0..<ds.classCount {
        for i in 0..<ds.itemCount(ofClass: c) {
            items.append(ItemRef(classIndex: c, item: i))
            if items.count == n { break outer }
        }
    }
    let single = measure(repeats: repeats) {
        for r in items.prefix(max(1, items.count / 4)) {
            let img = try! ds.loadImage(ofClass: r.classIndex, item: r.item, channels: channels)
            _ = ImageTransform.resized(img, width: size, height: size)
        }
    }
    let singleCount = max(1, items.count / 4)
    var cold: [Double] = []
    for _ in 0..<repeats {
        let cache = try ImageCache(dataset: ds, side: size, channels: channels)
        let t0 = DispatchTime.now().uptimeNanoseconds
        try cache.prefetch(items)
        cold.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
    }
    cold.sort()
    let loader = try EpisodeLoader(dataset: ds, config: ImageConfig(size: size, channels: channels))
    try loader.cache.prefetch(items)
    // Episode-sized tensors (80 images = 5-way, 1 shot + 15 queries), as evaluation asks for them.
    let cached = measure(repeats: repeats) {
        for start in stride(from: 0, to: items.count, by: 80) {
            _ = try! loader.tensor(for: Array(items[start..<min(items.count, start + 80)]))
        }
    }
    let refRate = Double(singleCount) / single
    return [
        DataBenchRow(name: "\(label) decode+resize, 1 thread (reference)", images: singleCount, seconds: single, ratio: 1),
        DataBenchRow(name: "\(label) cold cache fill, all cores", images: items.count, seconds: cold[cold.count / 2],
                     ratio: Double(items.count) / cold[cold.count / 2] / refRate),
        DataBenchRow(name: "\(label) cached -> normalised tensors of 80", images: items.count, seconds: cached,
                     ratio: Double(items.count) / cached / refRate),
    ]
}

struct DataBenchRow {
    var name: String
    var images: Int
    var seconds: Double
    var ratio: Double?
    var rate: Double { Double(images) / seconds }
}

func printDataRows(_ rows: [DataBenchRow], json: Bool) {
    if json {
        let items = rows.map { r -> String in
            var f = ["\"name\": \"\(r.name)\"", "\"images\": \(r.images)", "\"seconds\": \(r.seconds)",
                     "\"images_per_second\": \(r.rate)"]
            if let x = r.ratio { f.append("\"ratio\": \(x)") }
            return "  {" + f.joined(separator: ", ") + "}"
        }
        print("[\n" + items.joined(separator: ",\n") + "\n]")
    } else {
        print("benchmark".padding(toLength: 62, withPad: " ", startingAt: 0) + "  images   median ms       img/s   ratio")
        for r in rows {
            let x = r.ratio.map { String(format: "%7.2f", $0) } ?? ""
            print(r.name.padding(toLength: 62, withPad: " ", startingAt: 0)
                  + String(format: " %7d %11.1f %11.0f ", r.images, r.seconds * 1e3, r.rate) + x)
        }
    }
}

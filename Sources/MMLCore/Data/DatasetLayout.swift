import Foundation

/// The on-disk layouts mml reads, and the built-in synthetic dataset.
public enum DatasetLayout: String, Sendable, CaseIterable, Codable {
    /// root/<class>/<image files> (or root/<split>/<class>/... when a split folder exists).
    case folder
    /// root/images/ plus root/{train,val,test}.csv with `filename,label` rows (mini-ImageNet, Ravi & Larochelle).
    case csv
    /// Lake's Omniglot: root/images_background (split background|train) and root/images_evaluation
    /// (evaluation|test), classes Alphabet/characterNN.
    case omniglot
    /// Omniglot with the Vinyals split files root/splits/vinyals/{train,val,test,trainval}.txt, one class per
    /// character and rotation (Alphabet/characterNN/rotDDD).
    case omniglotVinyals = "omniglot-vinyals"
    /// The procedurally generated dataset (no files).
    case synthetic

    /// Guesses the layout of `path`: "synthetic" -> synthetic; images_background/ -> omniglot (vinyals when its
    /// split files exist and a split other than background/evaluation is asked); train.csv -> csv; else folder.
    public static func detect(path: String, split: String?) -> DatasetLayout {
        if path == "synthetic" || path.hasPrefix("synthetic:") { return .synthetic }
        let fm = FileManager.default
        let root = URL(fileURLWithPath: path)
        if fm.fileExists(atPath: root.appendingPathComponent("images_background").path)
            || fm.fileExists(atPath: root.appendingPathComponent("images_evaluation").path) {
            let lake = ["background", "evaluation", "all", nil].contains(split)
            let hasVinyals = fm.fileExists(atPath: root.appendingPathComponent("splits/vinyals").path)
            return !lake && hasVinyals ? .omniglotVinyals : .omniglot
        }
        for s in ["train", "val", "test"] where fm.fileExists(atPath: root.appendingPathComponent("\(s).csv").path) {
            return .csv
        }
        return .folder
    }
}

/// Opening datasets by layout.
public enum Datasets {
    /// Opens the dataset at `path` in `layout` (detected when nil), restricted to `split`.
    /// - Parameters:
    ///   - split: folder: a subfolder name (or nil for the root); csv: train|val|test; omniglot:
    ///     background|evaluation|all (train = background, test = evaluation); omniglot-vinyals:
    ///     train|val|test|trainval; synthetic: train|val|test.
    ///   - synthetic: the options of the synthetic dataset (used when the layout is synthetic).
    /// - Throws: `MMLError(.fileNotFound)` for a missing root, split file or image named by a CSV/split row;
    ///   `.invalidArgument` for an unknown split.
    ///   - maxImagePixels: the largest width x height of an image file accepted when decoding.
    ///   - allowDuplicates: accept an image named twice (`DatasetHygiene`) with a warning instead of refusing it.
    public static func open(path: String, layout: DatasetLayout? = nil, split: String? = nil,
                            synthetic: SyntheticDataset.Options = .init(),
                            maxImagePixels: Int = ImageCodec.defaultMaxPixels,
                            allowDuplicates: Bool = false) throws -> any FewShotDataset {
        let layout = layout ?? DatasetLayout.detect(path: path, split: split)
        if layout == .synthetic {
            return try SyntheticDataset(options: synthetic, split: split ?? "train")
        }
        var files = try openFiles(path: path, layout: layout, split: split)
        files.maxImagePixels = maxImagePixels
        return try DatasetHygiene.checked(files, allowDuplicates: allowDuplicates)
    }

    private static func openFiles(path: String, layout: DatasetLayout, split: String?) throws -> FileImageDataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw MMLError(.fileNotFound, "dataset root \(path) does not exist or is not a directory; check the path "
                           + "(for the built-in data use `layout` synthetic)")
        }
        let root = URL(fileURLWithPath: path).standardizedFileURL.path
        switch layout {
        case .folder: return try openFolder(root: root, split: split)
        case .csv: return try openCSV(root: root, split: split ?? "train")
        case .omniglot: return try openOmniglot(root: root, split: split ?? "background")
        case .omniglotVinyals: return try openVinyals(root: root, split: split ?? "train")
        case .synthetic: fatalError("unreachable")
        }
    }

    /// Lists the sorted entries of a directory (hidden ones excluded).
    static func list(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    static func isDirectory(_ path: String) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &d) && d.boolValue
    }

    static func isImageFile(_ name: String) -> Bool {
        ImageCodec.imageExtensions.contains((name as NSString).pathExtension.lowercased())
    }

    /// root/<class>/<files>; files that are not PNG/JPEG are skipped and counted.
    static func openFolder(root: String, split: String?) throws -> FileImageDataset {
        var base = root
        if let split {
            base = root + "/" + split
            guard isDirectory(base) else {
                throw MMLError(.fileNotFound, "split folder \(base) does not exist; the folder layout reads "
                               + "root/<class>/... or root/<split>/<class>/...")
            }
        }
        var classes: [FileClass] = [], skipped: [String] = []
        for name in list(base) {
            let dir = base + "/" + name
            guard isDirectory(dir) else {
                skipped.append(dir)
                continue
            }
            var files: [String] = []
            for f in list(dir) {
                if isImageFile(f) { files.append(dir + "/" + f) } else { skipped.append(dir + "/" + f) }
            }
            classes.append(FileClass(name: name, files: files))
        }
        return FileImageDataset(name: "folder:\(split ?? "all") at \(root)", classes: classes, skippedFiles: skipped,
                                warnings: skippedWarning(skipped))
    }

    static func skippedWarning(_ skipped: [String]) -> [String] {
        skipped.isEmpty ? [] : ["skipped \(skipped.count) file(s) that are not PNG/JPEG images, e.g. \(skipped[0])"]
    }

    /// root/images/ + root/<split>.csv with `filename,label` rows (a `filename,label` header is optional).
    static func openCSV(root: String, split: String) throws -> FileImageDataset {
        let csv = root + "/" + split + ".csv"
        var order: [String] = [], byLabel: [String: [String]] = [:], skipped: [String] = []
        for row in try CSVSplit.read(csv) {
            let path = root + "/images/" + row.filename
            guard FileManager.default.fileExists(atPath: path) else {
                throw MMLError(.fileNotFound, "\(csv) line \(row.line) names '\(row.filename)' but \(path) does not "
                               + "exist; put the images in \(root)/images/ or fix the row")
            }
            if !isImageFile(row.filename) { skipped.append(path); continue }
            if byLabel[row.label] == nil { order.append(row.label) }
            byLabel[row.label, default: []].append(path)
        }
        let classes = order.map { FileClass(name: $0, files: byLabel[$0]!) }
        return FileImageDataset(name: "csv:\(split) at \(root)", classes: classes, skippedFiles: skipped,
                                warnings: skippedWarning(skipped))
    }

    /// Lake's layout: images_background / images_evaluation, classes Alphabet/characterNN.
    static func openOmniglot(root: String, split: String) throws -> FileImageDataset {
        let parts: [String]
        switch split {
        case "background", "train": parts = ["images_background"]
        case "evaluation", "test": parts = ["images_evaluation"]
        case "all": parts = ["images_background", "images_evaluation"]
        default:
            throw MMLError(.invalidArgument, "unknown Omniglot split '\(split)'; use background (train), evaluation "
                           + "(test) or all (or `layout` omniglot-vinyals for train/val/test)")
        }
        var classes: [FileClass] = [], skipped: [String] = []
        for part in parts {
            let base = root + "/" + part
            guard isDirectory(base) else {
                throw MMLError(.fileNotFound, "Omniglot folder \(base) does not exist; unzip \(part).zip into \(root)")
            }
            for alphabet in list(base) where isDirectory(base + "/" + alphabet) {
                for ch in list(base + "/" + alphabet) where isDirectory(base + "/" + alphabet + "/" + ch) {
                    let dir = base + "/" + alphabet + "/" + ch
                    var files: [String] = []
                    for f in list(dir) {
                        if isImageFile(f) { files.append(dir + "/" + f) } else { skipped.append(dir + "/" + f) }
                    }
                    classes.append(FileClass(name: alphabet + "/" + ch, files: files))
                }
            }
        }
        return FileImageDataset(name: "omniglot:\(split) at \(root)", classes: classes, skippedFiles: skipped,
                                warnings: skippedWarning(skipped))
    }

    /// The Vinyals split: each line `Alphabet/characterNN/rotDDD` is a class, the character's images rotated.
    static func openVinyals(root: String, split: String) throws -> FileImageDataset {
        let file = root + "/splits/vinyals/" + split + ".txt"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw MMLError(.fileNotFound, "Vinyals split file \(file) does not exist; splits are train, val, test, "
                           + "trainval in \(root)/splits/vinyals/")
        }
        let lake = try openOmniglot(root: root, split: "all")
        var byName: [String: [String]] = [:]
        for c in lake.classes { byName[c.name] = c.files }
        var classes: [FileClass] = []
        for (n, raw) in text.split(whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let comps = line.split(separator: "/").map(String.init)
            guard comps.count == 3, comps[2].hasPrefix("rot"), let deg = Int(comps[2].dropFirst(3)), deg % 90 == 0 else {
                throw MMLError(.corruptFile, "\(file) line \(n + 1): expected Alphabet/characterNN/rotDDD, got '\(line)'")
            }
            let character = comps[0] + "/" + comps[1]
            guard let files = byName[character] else {
                throw MMLError(.fileNotFound, "\(file) line \(n + 1) names character '\(character)', which is in neither "
                               + "images_background nor images_evaluation under \(root)")
            }
            classes.append(FileClass(name: line, files: files, quarterTurns: deg / 90))
        }
        return FileImageDataset(name: "omniglot-vinyals:\(split) at \(root)", classes: classes,
                                skippedFiles: lake.skippedFiles, warnings: lake.warnings)
    }
}

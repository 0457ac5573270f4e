#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Refuses a dataset or an episode that names one image twice: a file listed twice in a class, a file in two
/// classes, or an image that is both support and query of an episode. Such data trains and evaluates on copies
/// without a word (an episode whose query is also its support is solved by a lookup).
///
/// "The same image" means the same file after resolving the path (`realpath`: `.`/`..`, repeated slashes and
/// symbolic links), at the same quarter turns: the Vinyals Omniglot classes `X/rot000` and `X/rot090` read one file
/// at two rotations, which are two images. Files with identical contents but different paths are not refused: the
/// real Omniglot has such a pair (images_background/Braille/character01/0192_03.png and 0192_19.png are
/// byte-identical drawings by two drawers), and refusing by content would refuse the standard dataset.
///
/// With `allowDuplicates` the data is used as it is, with a warning that starts with `warningPrefix`.
public enum DatasetHygiene {
    /// The start of every warning about duplicates that were allowed.
    public static let warningPrefix = "duplicate images allowed"

    /// The resolved identity of a file path (the path itself when it cannot be resolved).
    static func resolved(_ path: String, cache: inout [String: String]) -> String {
        if let r = cache[path] { return r }
        var r = path
        if path.hasPrefix("/"), let p = realpath(path, nil) {
            r = String(cString: p)
            free(p)
        }
        cache[path] = r
        return r
    }

    /// One image named more than once: its resolved path and where (class name and position) it was named.
    struct Duplicate {
        let path: String
        let places: [String]
    }

    /// `dataset` when no image is named twice; otherwise throws, or (with `allowDuplicates`) returns it with a
    /// warning added.
    /// - Throws: `MMLError(.invalidArgument)` naming the first duplicates, the classes that hold them, and
    ///   `allowDuplicates`.
    static func checked(_ dataset: FileImageDataset, allowDuplicates: Bool) throws -> FileImageDataset {
        var cache: [String: String] = [:]
        var first: [String: String] = [:]  // "turns|resolved path" -> where it was first named
        var dups: [String: Duplicate] = [:], order: [String] = []
        for cls in dataset.classes {
            for (i, f) in cls.files.enumerated() {
                let key = "\(cls.quarterTurns)|" + resolved(f, cache: &cache)
                let place = "class '\(cls.name)' image \(i + 1)"
                guard let before = first[key] else { first[key] = place; continue }
                if dups[key] == nil { order.append(key); dups[key] = Duplicate(path: f, places: [before]) }
                dups[key] = Duplicate(path: dups[key]!.path, places: dups[key]!.places + [place])
            }
        }
        if order.isEmpty { return dataset }
        let listed = order.prefix(5).map { k in "\(dups[k]!.path) (\(dups[k]!.places.joined(separator: ", ")))" }
        let more = order.count > 5 ? " and \(order.count - 5) more" : ""
        let what = "\(order.count) image(s) of \(dataset.name) are named more than once: "
            + listed.joined(separator: "; ") + more
        if !allowDuplicates {
            throw MMLError(.invalidArgument, what + ". A repeated file would be support and query of one episode or "
                           + "in two classes at once; remove the repeated rows (or split files), or pass "
                           + "`allowDuplicates` to use the data as it is")
        }
        var d = dataset
        d.warnings.append("\(warningPrefix) (`allowDuplicates`): " + what
                          + "; an episode may use one image as both support and query")
        return d
    }

    /// The repeated images of one episode (support and query together), or nil when every image is distinct.
    /// - Returns: a description naming each repeated file and its roles, e.g. "a.png (support of class 'x' and
    ///   query of class 'x')".
    static func repeatedImages(in episode: Episode, of dataset: any FewShotDataset,
                               cache: inout [String: String]) -> String? {
        var first: [String: String] = [:], repeats: [String] = []
        for (role, items) in [("support", episode.support), ("query", episode.query)] {
            for (j, c) in episode.classes.enumerated() where j < items.count {
                for i in items[j] {
                    let path = dataset.itemPath(ofClass: c, item: i)
                    let key = "\(dataset.quarterTurns(ofClass: c))|" + resolved(path, cache: &cache)
                    let place = "\(role) of class '\(dataset.classNames[c])'"
                    if let before = first[key] { repeats.append("\(path) (\(before) and \(place))") } else {
                        first[key] = place
                    }
                }
            }
        }
        if repeats.isEmpty { return nil }
        return repeats.prefix(5).joined(separator: "; ") + (repeats.count > 5 ? " and \(repeats.count - 5) more" : "")
    }
}

import Foundation

/// The rows of a CSV split file (`filename,label`, an optional `filename,label` header), parsed from its bytes with
/// every size bounded before anything is allocated for it: the file, each field, and the text (UTF-8, no NUL).
public enum CSVSplit {
    /// One `filename,label` row and its 1-based line number.
    public struct Row: Sendable, Equatable {
        public let line: Int
        public let filename: String
        public let label: String

        public init(line: Int, filename: String, label: String) {
            self.line = line; self.filename = filename; self.label = label
        }
    }

    /// The largest split file read (mini-ImageNet's largest, train.csv, is 1.5 MB; 38 400 rows).
    public static let maxFileBytes = 256 << 20
    /// The longest field (Linux's PATH_MAX).
    public static let maxFieldBytes = 4096

    /// Reads and parses a split file. Throws `MMLError(.fileNotFound)` when it cannot be read, else as `parse`.
    public static func read(_ path: String) throws -> [Row] {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
        guard let size else {
            throw MMLError(.fileNotFound, "split file \(path) does not exist; the CSV layout needs root/images/ and "
                           + "root/{train,val,test}.csv")
        }
        guard size <= maxFileBytes else {
            throw MMLError(.corruptFile, "split file \(path) is \(size) bytes, more than the \(maxFileBytes)-byte limit "
                           + "for a CSV split (a `filename,label` row per image); check that it is the right file")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MMLError(.fileNotFound, "split file \(path) is not readable; check its permissions")
        }
        return try parse([UInt8](data), source: path)
    }

    /// Parses the bytes of a split file; `source` names it in errors.
    /// - Throws: `MMLError(.corruptFile)` naming the line for a row that is not `filename,label`, a field longer
    ///   than `maxFieldBytes`, a NUL byte, text that is not UTF-8, or more than `maxFileBytes` bytes.
    public static func parse(_ bytes: [UInt8], source: String) throws -> [Row] {
        guard bytes.count <= maxFileBytes else {
            throw MMLError(.corruptFile, "\(source) is \(bytes.count) bytes, more than the \(maxFileBytes)-byte limit "
                           + "for a CSV split; check that it is the right file")
        }
        if let z = bytes.firstIndex(of: 0) {
            let line = bytes[..<z].reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            throw MMLError(.corruptFile, "\(source) line \(line): a NUL byte; a CSV split is text (`filename,label` "
                           + "rows), this looks like a binary file")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw MMLError(.corruptFile, "\(source) is not UTF-8 text; save it as UTF-8 with `filename,label` rows")
        }
        var rows: [Row] = []
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || (n == 0 && line.lowercased().hasPrefix("filename")) { continue }
            let parts = line.split(separator: ",", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw MMLError(.corruptFile, "\(source) line \(n + 1): expected `filename,label`, got "
                               + "'\(line.prefix(200))\(line.utf8.count > 200 ? "..." : "")'")
            }
            for (what, field) in [("filename", parts[0]), ("label", parts[1])] where field.utf8.count > maxFieldBytes {
                throw MMLError(.corruptFile, "\(source) line \(n + 1): the \(what) is \(field.utf8.count) bytes, longer "
                               + "than \(maxFieldBytes); a row is `filename,label` with a file name under images/")
            }
            rows.append(Row(line: n + 1, filename: parts[0], label: parts[1]))
        }
        return rows
    }
}

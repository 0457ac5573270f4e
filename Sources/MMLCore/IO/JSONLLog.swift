import Foundation

/// A run's `log.jsonl`: one compact JSON object per line (sorted keys), appended as the run goes. Every run writes
/// its log through this type.
public final class JSONLLog {
    /// The log file.
    public let path: String

    /// A log at `path`. With `fresh`, an existing file is replaced (a new run); otherwise records are appended to it
    /// (a resumed run).
    /// - Throws: `MMLError(.io)` when the file's directory cannot be created or the file cannot be written.
    public init(path: String, fresh: Bool) throws {
        self.path = path
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw MMLError(.io, "cannot create the output directory \(dir): \(MMLError.describe(error)); "
                           + "choose a writable `out` directory")
        }
        if fresh || !FileManager.default.fileExists(atPath: path) { try AtomicFile.write(Data(), to: path) }
    }

    /// The compact JSON text of `object` (sorted keys), as a log line holds it.
    public static func line(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }


    /// Appends one Codable record, encoded compactly with sorted keys (the same text `line(_:)` gives).
    /// - Throws: `MMLError(.io)` when the record cannot be encoded or the file cannot be written.
    public func append<Record: Encodable>(encoded record: Record) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(record) else { throw MMLError(.io, "cannot encode a record of \(path)") }
        try append(line: String(decoding: data, as: UTF8.self))
    }

    private func append(line: String) throws {
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw MMLError(.io, "cannot append to the log \(path); check that its directory is writable")
        }
        defer { try? h.close() }
        h.seekToEndOfFile()
        h.write(Data((line + "\n").utf8))
    }

    /// The records of the log, in order (lines that are not JSON objects are skipped).
    public func records() -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    /// Keeps only the lines for which `keep` holds on their record (atomically): a resumed run drops the records
    /// written after the checkpoint it continues from.
    public func retain(where keep: ([String: Any]) -> Bool) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        let lines = text.split(separator: "\n").filter { line in
            guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return false }
            return keep(o)
        }
        try AtomicFile.write(lines.map { $0 + "\n" }.joined(), to: path)
    }
}

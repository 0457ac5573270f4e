import Foundation

/// Atomic file writing: the bytes go to a temporary file in the same directory, which is then renamed over the
/// target, so a reader never sees a half-written file.
public enum AtomicFile {
    /// Writes `data` to `path` atomically, creating the parent directory if needed.
    /// Throws `MMLError(.io)` naming the path when the directory or file cannot be written.
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(ProcessInfo.processInfo.globallyUniqueString)")
            try data.write(to: tmp)
            if rename(tmp.path, url.path) != 0 {
                let e = errno
                try? FileManager.default.removeItem(at: tmp)
                throw MMLError(.io, "cannot write \(path): rename failed (\(String(cString: strerror(e))))")
            }
        } catch let e as MMLError {
            throw e
        } catch {
            throw MMLError(.io, "cannot write \(path): \(MMLError.describe(error))")
        }
    }

    /// Writes a UTF-8 string to `path` atomically.
    public static func write(_ string: String, to path: String) throws {
        try write(Data(string.utf8), to: path)
    }
}

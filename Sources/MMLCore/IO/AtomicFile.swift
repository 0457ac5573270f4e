import Foundation

/// Writing files so that a reader (or a crash) never sees a half-written file: write to a temporary name in the
/// same directory, then rename over the target.
public enum AtomicFile {
    /// Write `data` to `path` atomically.
    /// - Throws: `MMLError(.io)` naming the path and the system's reason.
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do {
            try data.write(to: tmp)
        } catch {
            throw MMLError(.io, "cannot write \(path): \(error.localizedDescription) (is the directory \(dir.path) there and writable?)")
        }
        if rename(tmp.path, url.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw MMLError(.io, "cannot move the new file into place at \(path): \(reason)")
        }
    }

    /// Write a UTF-8 string to `path` atomically.
    public static func write(_ string: String, to path: String) throws {
        try write(Data(string.utf8), to: path)
    }
}

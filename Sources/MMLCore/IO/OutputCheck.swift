import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks before work: every run that writes files checks their place before its first episode, so an unwritable,
/// missing-parent or full output is reported at once (what, where, what to do) and not at the first checkpoint.
public enum OutputCheck {
    /// The free bytes of the file system holding `path` (nil when unknown). A test may replace it to simulate a
    /// full disk; the default asks statvfs.
    nonisolated(unsafe) public static var freeBytes: (String) -> Int64? = { path in
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }

    /// Bytes of one checkpoint of `parameters` float32 values (parameters and buffers) with `moments` optimiser
    /// tensors per value (Adam 2, SGD with momentum 1), plus room for the header, sidecar and log lines.
    public static func checkpointBytes(parameters: Int, moments: Int) -> Int64 {
        Int64(parameters) * 4 * Int64(1 + moments) + 1 << 20
    }

    /// Makes `directory` ready for a run's outputs: creates it (and its parents), removes temporary files of
    /// interrupted writes whose writer is gone, writes and removes a probe file, and checks that `bytesNeeded` are
    /// free. `field` names the configuration field in messages (e.g. `out`).
    /// - Throws: `MMLError(.io)` saying what failed, where, and what to do.
    public static func prepare(directory: String, bytesNeeded: Int64 = 0, field: String = "out",
                               what: String = "outputs") throws {
        let dir = directory.isEmpty ? "." : directory
        try prepare(dir, subject: "`\(field)` \(dir)", bytesNeeded: bytesNeeded, field: field, what: what)
    }

    /// Checks the directory an output file `path` goes into (creating it), as `prepare(directory:)` does.
    public static func prepare(file path: String, field: String, bytesNeeded: Int64 = 0) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw MMLError(.io, "`\(field)` \(path) is a directory; give a file path")
        }
        let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try prepare(parent, subject: "`\(field)` \(path): the directory \(parent)", bytesNeeded: bytesNeeded,
                    field: field, what: "file")
    }

    private static func prepare(_ dir: String, subject: String, bytesNeeded: Int64, field: String,
                                what: String) throws {
        try makeDirectories(dir, subject: subject)
        AtomicFile.removeStaleTemporaries(in: dir)
        let probe = AtomicFile.temporaryPath(for: URL(fileURLWithPath: dir).appendingPathComponent("write-check").path)
        do {
            try [UInt8(0)].withUnsafeBytes { try AtomicFile.writeSynced($0, to: probe, target: probe) }
        } catch let e as MMLError {
            throw MMLError(.io, "\(subject) cannot hold the \(what): " + e.message
                .replacingOccurrences(of: "cannot write \(probe): ", with: ""))
        }
        unlink(probe)
        try checkRoom(dir, bytesNeeded: bytesNeeded, subject: subject, field: field, what: what)
    }

    /// Throws when the file system of `dir` has less than `bytesNeeded` free.
    public static func checkRoom(_ dir: String, bytesNeeded: Int64, field: String = "out",
                                 what: String = "outputs") throws {
        try checkRoom(dir, bytesNeeded: bytesNeeded, subject: "`\(field)` \(dir)", field: field, what: what)
    }

    private static func checkRoom(_ dir: String, bytesNeeded: Int64, subject: String, field: String,
                                  what: String) throws {
        guard bytesNeeded > 0, let free = freeBytes(dir), free < bytesNeeded else { return }
        throw MMLError(.io, "\(subject) has \(megabytes(free)) free, the \(what) need about "
                       + "\(megabytes(bytesNeeded)); free some space or choose another `\(field)` on a disk with room")
    }

    /// Creates `dir` and its missing parents, naming the first component that cannot be a directory.
    static func makeDirectories(_ dir: String, subject: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw MMLError(.io, "\(subject) is a file, not a directory; give a directory path")
            }
            return
        }
        var path = ""
        for component in URL(fileURLWithPath: dir).standardized.pathComponents where component != "/" {
            path += "/" + component
            if mkdir(path, 0o755) == 0 { continue }
            let e = errno
            if e == EEXIST, FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                guard isDir.boolValue else {
                    throw MMLError(.io, "\(subject) cannot be created: \(path) is a file, not a directory; "
                                   + "give a path under a directory")
                }
                continue
            }
            throw MMLError(.io, "\(subject) cannot be created: mkdir \(path) failed "
                           + "(\(String(cString: strerror(e)))); \(advice(errno: e))")
        }
    }

    /// What to do after a failed write with system error `e`.
    static func advice(errno e: Int32) -> String {
        switch e {
        case ENOSPC, EDQUOT: return "the disk (or quota) is full: free some space or write to another disk"
        case EROFS: return "the file system is read-only: choose a writable location"
        case EACCES, EPERM: return "no permission to write there: choose a writable location"
        case ENOTDIR: return "a component of the path is a file, not a directory: fix the path"
        default: return "choose a writable location"
        }
    }

    /// The system's reason inside a Foundation error, when there is one.
    static func reason(_ error: Error) -> String { MMLError.describe(error) }

    /// "3.4 MB".
    static func megabytes(_ bytes: Int64) -> String {
        String(format: "%.1f MB", Double(bytes) / 1e6)
    }
}

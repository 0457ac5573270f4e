import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Atomic file writing: the bytes go to a temporary file in the same directory, which is flushed to disk and then
/// renamed over the target, so a reader never sees a half-written file; the rename is the commit point.
///
/// Temporary names are `.NAME.tmp-PID@HOST-RANDOM`: a writer killed before its rename (kill -9, power loss) leaves
/// one behind, and `removeStaleTemporaries(in:)` (called by every run before it writes into a directory) removes
/// those whose writer process is gone, never another live run's (two runs may share a directory; on a shared file
/// system only temporaries of this host are judged).
public enum AtomicFile {
    /// The marker between a target's name and its writer's identity in a temporary name.
    static let marker = ".tmp-"

    /// This process's host name, as temporary names record it (`@` and `/` replaced).
    static let host: String = {
        var buf = [CChar](repeating: 0, count: 256)
        let name = gethostname(&buf, buf.count) == 0 ? String(cString: buf) : "localhost"
        return String(name.map { $0 == "@" || $0 == "/" ? "_" : $0 })
    }()

    /// A fresh temporary path beside `path` (`dir/.NAME.tmp-PID@HOST-RANDOM`).
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let random = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        return url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent)\(marker)\(getpid())@\(host)-\(random)").path
    }

    /// Writes `data` to `path` atomically, creating the parent directory if needed.
    /// Throws `MMLError(.io)` naming the path when the directory or file cannot be written.
    public static func write(_ data: Data, to path: String) throws {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw MMLError(.io, "cannot write \(path): cannot create the directory \(dir) "
                           + "(\(OutputCheck.reason(error))); choose a writable location")
        }
        let tmp = temporaryPath(for: path)
        try data.withUnsafeBytes { try writeSynced($0, to: tmp, target: path) }
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw MMLError(.io, "cannot write \(path): rename failed (\(String(cString: strerror(e))))")
        }
    }

    /// Writes a UTF-8 string to `path` atomically.
    public static func write(_ string: String, to path: String) throws {
        try write(Data(string.utf8), to: path)
    }

    /// Writes `bytes` to the new file `tmp` and flushes it to disk; removes it and throws on any failure.
    static func writeSynced(_ bytes: UnsafeRawBufferPointer, to tmp: String, target: String) throws {
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let e = errno
            throw MMLError(.io, "cannot write \(target): cannot create a file in its directory "
                           + "(\(String(cString: strerror(e)))); \(OutputCheck.advice(errno: e))")
        }
        var offset = 0
        while offset < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let e = n < 0 ? errno : EIO
                close(fd); unlink(tmp)
                throw MMLError(.io, "cannot write \(target): writing failed after \(offset) of \(bytes.count) bytes "
                               + "(\(String(cString: strerror(e)))); \(OutputCheck.advice(errno: e))")
            }
            offset += n
        }
        if fsync(fd) != 0 {
            let e = errno
            close(fd); unlink(tmp)
            throw MMLError(.io, "cannot write \(target): flushing to disk failed (\(String(cString: strerror(e)))); "
                           + OutputCheck.advice(errno: e))
        }
        close(fd)
    }

    /// The writer of a temporary file named `name` (a file name, no directory): its process id and host, or nil
    /// when `name` is not one of ours. Names of older versions (`.NAME.tmp-UUID`, `NAME.tmp-PID`) give pid nil.
    static func writer(ofTemporary name: String) -> (pid: Int32?, host: String?)? {
        guard let range = name.range(of: marker, options: .backwards) else { return nil }
        let tail = name[range.upperBound...]
        if let at = tail.firstIndex(of: "@"), let dash = tail.lastIndex(of: "-"), at < dash,
           let pid = Int32(tail[..<at]) {
            return (pid, String(tail[tail.index(after: at)..<dash]))
        }
        if !name.hasPrefix("."), let pid = Int32(tail) { return (pid, nil) }  // Safetensors' former `NAME.tmp-PID`
        return name.hasPrefix(".") ? (nil, nil) : nil
    }

    /// Whether process `pid` is alive on this host.
    static func isAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    /// Removes the temporary files of interrupted writes in `directory` (not recursively): ours whose writing
    /// process on this host is gone, and older versions' nameless ones when untouched for an hour.
    /// - Returns: the removed paths.
    @discardableResult
    public static func removeStaleTemporaries(in directory: String, olderThan age: TimeInterval = 3600) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names {
            guard let w = writer(ofTemporary: name) else { continue }
            let path = URL(fileURLWithPath: directory).appendingPathComponent(name).path
            let stale: Bool
            if let pid = w.pid, w.host == nil || w.host == host {
                stale = pid != getpid() && !isAlive(pid)
            } else {
                let modified = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate]) as? Date
                stale = modified.map { Date().timeIntervalSince($0) > age } ?? false
            }
            if stale, unlink(path) == 0 { removed.append(path) }
        }
        return removed
    }
}

/// The system's write(2) (AtomicFile's own `write` hides the name inside the type).
private func systemWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buffer, count)
    #else
    return Darwin.write(fd, buffer, count)
    #endif
}

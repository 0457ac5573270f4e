import Foundation
import MMLCore

// The C ABI's plumbing: status codes, the thread-local last error, the handle registry and checked reads of caller
// buffers. Every exported function (`@_cdecl`, declared in include/mml.h) goes through `guarded`, which catches
// every error, so nothing thrown crosses into C and nothing a caller passes can trap.

/// Status codes (`mml_status` in mml.h).
enum Status: Int32 {
    case ok = 0
    case invalidArgument = 1
    case config = 2
    case file = 3
    case numerical = 4
    case invalidHandle = 5
    case internalError = 6

    init(_ kind: MMLError.Kind) {
        switch kind {
        case .invalidArgument, .datasetTooSmall: self = .invalidArgument
        case .config: self = .config
        case .fileNotFound, .corruptFile, .unsupportedFormat, .io: self = .file
        case .numerical, .kernel: self = .numerical
        }
    }
}

/// An error of the C ABI itself (a null pointer, a bad size, a freed handle).
struct CAPIError: Error {
    let status: Status
    let message: String
    init(_ status: Status, _ message: String) { self.status = status; self.message = message }
}

// MARK: - The last error, one per thread

/// One malloc'ed (message, template) pair per thread, freed by the key's destructor when the thread ends.
private final class LastError {
    var message: UnsafeMutablePointer<CChar>?
    var template: UnsafeMutablePointer<CChar>?
    deinit { free(message); free(template) }
}

private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { p in
        guard let p else { return }
        Unmanaged<AnyObject>.fromOpaque(p).release()
    }
    return key
}()

private func lastErrorSlot() -> LastError {
    if let p = pthread_getspecific(lastErrorKey) {
        return Unmanaged<LastError>.fromOpaque(p).takeUnretainedValue()
    }
    let e = LastError()
    pthread_setspecific(lastErrorKey, Unmanaged.passRetained(e).toOpaque())
    return e
}

func setLastError(_ message: String, template: String? = nil) {
    let slot = lastErrorSlot()
    free(slot.message); free(slot.template)
    slot.message = strdup(message)
    slot.template = strdup(template ?? message)
}

func clearLastError() {
    let slot = lastErrorSlot()
    free(slot.message); free(slot.template)
    slot.message = nil
    slot.template = nil
}

private let emptyString: UnsafeMutablePointer<CChar> = strdup("")

@_cdecl("mml_last_error")
public func mml_last_error() -> UnsafePointer<CChar>? {
    UnsafePointer(lastErrorSlot().message ?? emptyString)
}

@_cdecl("mml_last_error_template")
public func mml_last_error_template() -> UnsafePointer<CChar>? {
    UnsafePointer(lastErrorSlot().template ?? emptyString)
}

private let versionString: UnsafeMutablePointer<CChar> = strdup(mmlABIVersion)
let mmlABIVersion = "1.1"

@_cdecl("mml_version")
public func mml_version() -> UnsafePointer<CChar>? { UnsafePointer(versionString) }

@_cdecl("mml_environment")
public func mml_environment(_ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        let out = try checkedOut(out, "out (char **)")
        out.pointee = try cString(try RuntimeFacts.current().jsonString())
    }
}

/// Runs `body`, turning every error into a status and the thread's last error.
func guarded(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return Status.ok.rawValue
    } catch let e as CAPIError {
        setLastError(e.message)
        return e.status.rawValue
    } catch let e as MMLError {
        setLastError(e.message, template: e.template)
        return Status(e.kind).rawValue
    } catch {
        setLastError("unexpected error: " + MMLError.describe(error))
        return Status.internalError.rawValue
    }
}

// MARK: - Handles

/// What every opaque handle points at; the registry holds it strongly until its free function is called.
class Handle {
    class var kind: String { "handle" }
}

/// Live handles by id: every handle is a fresh, never reused number (shown to C as an opaque pointer), so a call
/// with a freed (or never created) handle is refused with `invalidHandle`, not undefined behaviour, however many
/// handles were made since. A call looks its handle up under the lock and keeps a strong reference while it runs,
/// so freeing a handle while another thread uses it is safe (the object goes once that call returns).
enum Registry {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var live: [UInt: Handle] = [:]
    /// The last id handed out; ids step by 16 so that they look like aligned pointers to debuggers.
    nonisolated(unsafe) private static var lastID: UInt = 0x6d6d_6c00_0000

    static func register(_ h: Handle) -> OpaquePointer {
        lock.lock()
        lastID += 16
        let id = lastID
        live[id] = h
        lock.unlock()
        return OpaquePointer(bitPattern: id)!
    }

    static func lookup<H: Handle>(_ p: OpaquePointer?, as expected: H.Type, role: String) throws -> H {
        guard let p else { throw CAPIError(.invalidArgument, "\(role) is NULL; pass a handle made by mml_\(H.kind)_*") }
        let id = UInt(bitPattern: p)
        lock.lock(); let h = live[id]; lock.unlock()
        guard let h else {
            throw CAPIError(.invalidHandle, "\(role) \(p) is not a live handle (already freed, or not made by mml); "
                            + "do not use a handle after its free function")
        }
        guard let typed = h as? H else {
            throw CAPIError(.invalidHandle, "\(role) \(p) is a \(type(of: h).kind) handle, not a \(H.kind) handle")
        }
        return typed
    }

    static func release<H: Handle>(_ p: OpaquePointer?, as expected: H.Type, role: String) throws {
        _ = try lookup(p, as: expected, role: role)
        lock.lock(); let removed = live.removeValue(forKey: UInt(bitPattern: p)); lock.unlock()
        guard removed != nil else { throw CAPIError(.invalidHandle, "\(role) was freed by another thread meanwhile") }
    }
}

// MARK: - Checked reads of caller memory

/// Checks an out-pointer and sets it to NULL (so a failing call leaves a defined value).
func checkedOut<T>(_ p: UnsafeMutablePointer<T?>?, _ role: String) throws -> UnsafeMutablePointer<T?> {
    guard let p else { throw CAPIError(.invalidArgument, "\(role) is NULL; pass the address of a variable") }
    p.pointee = nil
    return p
}

func string(_ p: UnsafePointer<CChar>?, _ role: String) throws -> String {
    guard let p else { throw CAPIError(.invalidArgument, "\(role) is NULL; pass a NUL-terminated UTF-8 string") }
    return String(cString: p)
}

/// A shape of `rank` dimensions, each >= 1, whose element count fits in memory (checked for overflow).
func shape(_ p: UnsafePointer<Int64>?, rank: Int32, _ role: String, ranks: ClosedRange<Int32>) throws -> [Int] {
    guard ranks.contains(rank) else {
        let allowed = ranks.lowerBound == ranks.upperBound ? "\(ranks.lowerBound)" : "\(ranks.lowerBound) or \(ranks.upperBound)"
        throw CAPIError(.invalidArgument, "\(role) has rank \(rank); it must be \(allowed)")
    }
    guard let p else { throw CAPIError(.invalidArgument, "\(role) is NULL; pass \(rank) dimensions") }
    let dims = (0..<Int(rank)).map { Int(p[$0]) }
    if let i = dims.firstIndex(where: { $0 < 1 }) {
        throw CAPIError(.invalidArgument, "\(role) \(dims): dimension \(i) is \(dims[i]); every dimension must be at least 1")
    }
    _ = try elementCount(dims, role)
    return dims
}

/// The product of `dims`, refused when it (or its size in bytes) overflows.
func elementCount(_ dims: [Int], _ role: String) throws -> Int {
    var n = 1
    for d in dims {
        let (m, o) = n.multipliedReportingOverflow(by: d)
        guard !o, m <= Int.max / 8 else {
            throw CAPIError(.invalidArgument, "\(role) \(dims) has too many elements (the size overflows)")
        }
        n = m
    }
    return n
}

/// A tensor read (copied once into the engine's storage) from `count` floats at `p`.
func tensor(_ p: UnsafePointer<Float>?, shape dims: [Int], _ role: String) throws -> Tensor {
    guard let p else { throw CAPIError(.invalidArgument, "\(role) data is NULL") }
    let n = try elementCount(dims, role)
    return Tensor(shape: dims, data: Array(UnsafeBufferPointer(start: p, count: n)))
}

func labels(_ p: UnsafePointer<Int64>?, count: Int, _ role: String) throws -> [Int] {
    guard let p else { throw CAPIError(.invalidArgument, "\(role) is NULL; pass one label per support item") }
    return (0..<count).map { Int(p[$0]) }
}

/// A malloc'ed copy of `text` for an out-string (freed with `mml_string_free`).
func cString(_ text: String) throws -> UnsafeMutablePointer<CChar> {
    guard let p = strdup(text) else { throw CAPIError(.internalError, "out of memory copying a result string") }
    return p
}

@_cdecl("mml_string_free")
public func mml_string_free(_ p: UnsafeMutablePointer<CChar>?) { free(p) }

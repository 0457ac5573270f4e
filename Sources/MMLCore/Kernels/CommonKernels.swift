import MMLKernels

/// What every kernel wrapper shares (the C side's common/ family): status checks, the allocator hook and
/// uninitialised storage for outputs a kernel overwrites completely.
enum CommonKernels {
    /// Traps with the op name when a layer kernel rejects its arguments: the Swift side checks shapes first, so a
    /// failing status is a broken internal contract, never user input.
    @inline(__always) static func require(_ status: Int32, _ op: String) {
        precondition(status == 0, "[\(op)] kernel failed: \(String(cString: mml_status_string(status)))")
    }

    /// `count` floats whose values are not initialised: for outputs a kernel overwrites completely (saves a pass
    /// over memory and the page faults of zero-filling a large buffer).
    static func uninitializedFloats(_ count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// `count` argmax slots, not initialised (the pooling kernels write every one).
    static func uninitializedIndices(_ count: Int) -> [Int32] {
        [Int32](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// Returns the memory glibc malloc keeps for reuse to the system now (`mml_release_freed_memory`).
    static func releaseFreedMemory() { mml_release_freed_memory() }

    /// Grows `workspace` to at least `floats` (a negative size is the kernel's verdict on bad sizes) and returns
    /// its size as the kernels take it.
    static func ensure(_ workspace: inout [Float], floats: Int64, _ op: String, _ sizes: @autoclosure () -> String)
        -> Int64 {
        precondition(floats >= 0, "[\(op)] bad sizes \(sizes())")
        if workspace.count < Int(floats) { workspace = [Float](repeating: 0, count: Int(floats)) }
        return Int64(workspace.count)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import MMLKernels

/// glibc malloc tuning for training loops.
///
/// By default glibc serves every allocation above 128 KiB (adaptively up to 32 MiB) with a fresh `mmap` and returns
/// it with `munmap`, so each step's feature maps, im2col buffers and gradients are page-faulted in anew: measured on
/// Omniglot 20-way episodes, 60% of the run was kernel time (2.0 episodes/s). Keeping freed memory in the heap
/// (no mmap-backed blocks, no trimming below 1 GiB, 64 MiB top pad) removes those faults (3.5 episodes/s, kernel
/// time ~5%; a 32 MiB mmap threshold alone left 30% kernel time, the larger temporaries still being mapped; glibc
/// refuses thresholds above 32 MiB). `mml` and `mml-bench` call `apply()` at start; harnesses embedding MMLCore
/// may call it too. The cost is that freed memory stays with the process (its peak is kept).
public enum AllocatorTuning {
    /// Whether `apply()` has run in this process.
    nonisolated(unsafe) public private(set) static var isApplied = false

    /// Applies the settings unless the user set any `MALLOC_*` variable (their choice wins). Idempotent.
    public static func apply() {
        #if canImport(Glibc)
        guard !isApplied else { return }
        isApplied = true
        let env = ProcessInfo_environmentKeys()
        if env.contains(where: { $0.hasPrefix("MALLOC_") }) || env.contains("GLIBC_TUNABLES") { return }
        _ = mml_tune_allocator(0, 1 << 30, 64 << 20)
        #endif
    }
}

/// The names of the process's environment variables (without Foundation).
private func ProcessInfo_environmentKeys() -> [String] {
    var out: [String] = []
    var p = environ
    while let entry = p.pointee {
        let s = String(cString: entry)
        if let eq = s.firstIndex(of: "=") { out.append(String(s[..<eq])) }
        p = p.advanced(by: 1)
    }
    return out
}

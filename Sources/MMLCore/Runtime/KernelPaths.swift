/// Which of mml's kernel paths trained a run (`BLASRuntime.kernelISA`: "avx512", "avx2" or "portable"), kept in every
/// resumable training checkpoint's state (`kernelPaths`) so that a resume on another path is noticed. The AVX2 paths
/// of the GEMM and the top-K similarity give the AVX-512 paths' bits, but the Gaussian kernels' builds round
/// differently, so a run that changes path on resume is a valid run but not the bits of a run on one path.
public enum KernelPaths {
    /// Stands for the training done before a checkpoint recorded its paths (written before 2026-12-07).
    public static let unrecorded = "unrecorded"

    /// What a run that changes path is told: why its result is valid but not the bits of a run on one path.
    static let roundsDifferently = "some kernels round differently there (the Gaussian kernels do), so the result "
        + "will not be the bits of a run on one path"

    /// The record of a fresh run: the path this process takes.
    public static var fresh: [String] { [BLASRuntime.kernelISA] }

    /// The record to keep after resuming a run whose checkpoint says `saved` (nil: it predates the records), and a
    /// warning when this process takes another path than the run's last one.
    public static func resumed(_ saved: [String]?, current: String = BLASRuntime.kernelISA,
                               best: String = BLASRuntime.bestKernelISA) -> (record: [String], warning: String?) {
        let before = saved ?? [unrecorded]
        guard let last = before.last, last != current else { return (before, nil) }
        if last == unrecorded { return (before + [current], nil) }
        let how = rank(last) > rank(best)
            ? "resume it on a CPU with \(last == "avx512" ? "AVX-512" : "AVX2 and FMA") to continue on the same path"
            : last == best ? "unset MML_KERNELS_ISA to continue on the same path"
            : "set MML_KERNELS_ISA=\(last) to continue on the same path"
        return (before + [current], "this run trained on the \(last) kernel path and now continues on the \(current) "
                + "one: \(roundsDifferently) (the checkpoint records both); \(how)")
    }

    /// The paths of several reports (shards, seeds) in order of first appearance; nil when none recorded any.
    public static func union(_ lists: [[String]?]) -> [String]? {
        var out: [String] = []
        for p in lists.compactMap({ $0 }).joined() where !out.contains(p) { out.append(p) }
        return lists.contains { $0 != nil } ? out : nil
    }

    private static func rank(_ path: String) -> Int { ["portable": 0, "avx2": 1, "avx512": 2][path] ?? -1 }
}

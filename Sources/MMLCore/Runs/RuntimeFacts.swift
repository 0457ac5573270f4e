import Foundation

/// What this process computes with: the CPU, OpenBLAS's kernels and mml's own kernel paths. `mml env` prints it (with
/// a measured sgemm rate), `mml_environment` in the C ABI and `mml.environment()` in Python return it as JSON, so that
/// a harness can log which kernels produced its figures (the Gaussian kernels' paths round differently; see
/// `KernelPaths`).
public struct RuntimeFacts: Codable, Sendable, Equatable {
    /// The CPU's brand string.
    public var cpu: String
    /// The CPU features mml checks, as `mml env` lists them (e.g. "sse3 avx avx2 fma").
    public var cpuFeatures: String
    /// Online cores.
    public var cores: Int
    /// OpenBLAS's build configuration, the core type it chose, why ("detected by OpenBLAS", "set in the environment
    /// (Haswell)", "set by mml (re-executed)"), the best core type for this CPU and its thread count.
    public var blasConfig: String
    public var blasCore: String
    public var blasCoreSource: String
    public var blasBestCore: String
    public var blasThreads: Int
    /// mml's kernel path in this process ("avx512", "avx2" or "portable"), the CPU's best, and MML_KERNELS_ISA
    /// when it is set.
    public var kernels: String
    public var kernelsBest: String
    public var kernelsSetting: String?
    /// The bf16 precisions' paths ("avx512bf16" / "amx" or "portable") and, for the portable ones, why.
    public var bf16Similarity: String
    public var bf16SimilarityReason: String?
    public var bf16amxSimilarity: String
    public var bf16amxSimilarityReason: String?
    /// OpenBLAS's core check (`BLASRuntime.check`): a warning when it chose slower kernels than the CPU allows.
    public var blasWarning: String?

    /// This process's facts.
    public static func current() -> RuntimeFacts {
        let env = BLASRuntime.processEnvironment()
        let source: String
        if env[BLASRuntime.reexecMarker] != nil { source = "set by mml (re-executed)" }
        else if let v = env[BLASRuntime.coretypeVariable], !v.isEmpty { source = "set in the environment (\(v))" }
        else { source = "detected by OpenBLAS" }
        let setting = env["MML_KERNELS_ISA"]
        return RuntimeFacts(
            cpu: BLASRuntime.cpuBrand, cpuFeatures: CPUFeatures.current.description,
            cores: ProcessInfo.processInfo.activeProcessorCount, blasConfig: BLASRuntime.config,
            blasCore: BLASRuntime.corename, blasCoreSource: source,
            blasBestCore: BLASRuntime.bestCore(for: .current) ?? "default", blasThreads: BLASRuntime.threads,
            kernels: BLASRuntime.kernelISA, kernelsBest: BLASRuntime.bestKernelISA,
            kernelsSetting: setting?.isEmpty == false ? setting : nil,
            bf16Similarity: SimilarityPrecision.bf16HasFastPath ? "avx512bf16" : "portable",
            bf16SimilarityReason: SimilarityPrecision.bf16PortableReason,
            bf16amxSimilarity: SimilarityPrecision.bf16amxHasFastPath ? "amx" : "portable",
            bf16amxSimilarityReason: SimilarityPrecision.bf16amxPortableReason,
            blasWarning: BLASRuntime.check().warning)
    }

    /// Compact JSON with sorted keys (absent optional facts left out).
    public func jsonString() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }
}

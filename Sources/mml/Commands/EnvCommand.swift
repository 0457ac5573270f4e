import ArgumentParser
import Foundation
import MMLCore

/// `mml env`: what this machine and the BLAS in use are, and how fast a matrix product runs.
struct EnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Print the BLAS library, its kernels and threads, the CPU's features and a measured sgemm GFLOP/s."
    )

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(help: "Matrix size for the sgemm measurement (0 skips it).")
    var sgemmSize = 1536

    func run() throws {
        let env = BLASRuntime.processEnvironment()
        let decision = BLASRuntime.check()
        let gflops = sgemmSize > 0 ? BLASRuntime.measureSGEMM(size: sgemmSize) : 0
        let source: String
        if env[BLASRuntime.reexecMarker] != nil { source = "set by mml (re-executed)" }
        else if let v = env[BLASRuntime.coretypeVariable], !v.isEmpty { source = "set in the environment (\(v))" }
        else { source = "detected by OpenBLAS" }
        let isaSetting = ProcessInfo.processInfo.environment["MML_KERNELS_ISA"] ?? ""
        let fields: [(String, String)] = [
            ("cpu", BLASRuntime.cpuBrand),
            ("cpu_features", CPUFeatures.current.description),
            ("cores", String(ProcessInfo.processInfo.activeProcessorCount)),
            ("blas_config", BLASRuntime.config),
            ("blas_core", BLASRuntime.corename),
            ("blas_core_source", source),
            ("blas_best_core", BLASRuntime.bestCore(for: .current) ?? "default"),
            ("blas_threads", String(BLASRuntime.threads)),
            ("mml_kernels", BLASRuntime.kernelISA == BLASRuntime.bestKernelISA ? BLASRuntime.kernelISA
                : "\(BLASRuntime.kernelISA) (MML_KERNELS_ISA=\(isaSetting); this CPU supports "
                    + "\(BLASRuntime.bestKernelISA))"),
            ("bf16_similarity", SimilarityPrecision.bf16HasFastPath
                ? "avx512bf16 (--precision bf16 has its fast path)"
                : "portable (\(SimilarityPrecision.bf16PortableReason ?? ""): --precision bf16 gives the same results, "
                    + "slower than fp32)"),
            ("bf16amx_similarity", SimilarityPrecision.bf16amxHasFastPath
                ? "amx (--precision bf16amx has its fast path)"
                : "portable (\(SimilarityPrecision.bf16amxPortableReason ?? ""): --precision bf16amx gives the same "
                    + "results, slower than fp32)"),
            ("sgemm_size", String(sgemmSize)),
            ("sgemm_gflops", String(format: "%.1f", gflops)),
            ("warning", decision.warning ?? ""),
        ]
        if json {
            let body = fields.map { "  \"\($0.0)\": \(jsonQuoted($0.1))" }.joined(separator: ",\n")
            print("{\n\(body)\n}")
        } else {
            for (k, v) in fields where !(k == "warning" && v.isEmpty) {
                print(k.padding(toLength: 20, withPad: " ", startingAt: 0) + v)
            }
        }
    }
}


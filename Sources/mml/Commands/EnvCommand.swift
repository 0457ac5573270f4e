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
        let f = RuntimeFacts.current()
        let gflops = sgemmSize > 0 ? BLASRuntime.measureSGEMM(size: sgemmSize) : 0
        let fields: [(String, String)] = [
            ("cpu", f.cpu),
            ("cpu_features", f.cpuFeatures),
            ("cores", String(f.cores)),
            ("blas_config", f.blasConfig),
            ("blas_core", f.blasCore),
            ("blas_core_source", f.blasCoreSource),
            ("blas_best_core", f.blasBestCore),
            ("blas_threads", String(f.blasThreads)),
            ("mml_kernels", f.kernels == f.kernelsBest ? f.kernels
                : "\(f.kernels) (MML_KERNELS_ISA=\(f.kernelsSetting ?? ""); this CPU supports \(f.kernelsBest))"),
            ("bf16_similarity", f.bf16SimilarityReason == nil
                ? "\(f.bf16Similarity) (--precision bf16 has its fast path)"
                : "portable (\(f.bf16SimilarityReason ?? ""): --precision bf16 gives the same results, slower than "
                    + "fp32)"),
            ("bf16amx_similarity", f.bf16amxSimilarityReason == nil
                ? "\(f.bf16amxSimilarity) (--precision bf16amx has its fast path)"
                : "portable (\(f.bf16amxSimilarityReason ?? ""): --precision bf16amx gives the same results, slower "
                    + "than fp32)"),
            ("sgemm_size", String(sgemmSize)),
            ("sgemm_gflops", String(format: "%.1f", gflops)),
            ("warning", f.blasWarning ?? ""),
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


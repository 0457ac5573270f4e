import Foundation
import MMLKernels

/// `mml-bench peak [--threads V]`: the fp32 FMA rate of this machine (`mml_fp32_fma_probe`: 24 independent FMA chains
/// per thread in registers), on one thread and on `--threads` (default all cores), medians of 7 runs. The ceiling of
/// the compute-bound kernels: the fused top-K similarity and the convolutions' GEMMs can at best reach it, so their
/// GFLOP/s read against it say how much room is left on this machine.
func runPeakBench(json: Bool, arguments: [String]) {
    let threads = Int32(intOption(arguments, "--threads", 0))
    let iterations: Int64 = quickBench ? 100_000 : 10_000_000
    let isa = String(cString: mml_fp32_fma_probe_isa())
    var rows: [BenchRow] = []
    var single = 0.0
    for t in threads == 1 ? [Int32(1)] : [1, threads] {
        var flops = 0.0, checksum: Float = 0, used: Int32 = 0
        var status: Int32 = 0
        let seconds = measure(repeats: 7) { status = mml_fp32_fma_probe(iterations, t, &flops, &used, &checksum) }
        guard status == 0, checksum.isFinite else {
            fputs("mml-bench peak: the probe failed (status \(status), checksum \(checksum))\n", stderr)
            exit(1)
        }
        let rate = flops / seconds / 1e9
        if t == 1 { single = rate }
        rows.append(BenchRow(name: "fp32 FMA peak, \(used) thread\(used == 1 ? "" : "s") (\(isa))", seconds: seconds,
                             gflops: rate, ratio: t == 1 ? nil : rate / single))
    }
    printRows(rows, json: json)
}

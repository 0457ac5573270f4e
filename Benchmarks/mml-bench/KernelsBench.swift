import COpenBLAS
import Foundation
import MMLCore
import MMLKernels

/// `mml-bench kernels`: the fused grouped top-K similarity against plain sgemm on the same shapes, and the
/// Gaussian distances, in one run.
func runKernelsBench(json: Bool, arguments: [String]) {
    let rows = topKBenchRows(arguments: arguments) + gaussianBenchRows(arguments: arguments)
    printRows(rows, json: json)
}

/// One benchmark result line.
struct BenchRow {
    var name: String
    var seconds: Double
    var gflops: Double?
    var ratio: Double?
    /// The matching result in the PyTorch peer benchmark's JSON (e.g. "dn4_score/5shot/batched"), for
    /// Benchmarks/side_by_side.py.
    var peer: String? = nil
    /// Peak memory in bytes, where measured.
    var peakBytes: Int? = nil
    /// Images (or other items) processed per measured call, for an items/s figure.
    var items: Int? = nil
}

/// `--quick` (every section): one repeat per measurement and smaller counts, to check a pipeline in seconds; its
/// figures are not measurements.
let quickBench = CommandLine.arguments.contains("--quick")

/// Median wall time of `repeats` runs of `body` (one with `--quick`), after one warm-up run.
func measure(repeats: Int, _ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    for _ in 0..<(quickBench ? 1 : repeats) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
    }
    times.sort()
    return times[times.count / 2]
}

func printRows(_ rows: [BenchRow], json: Bool) {
    if json {
        let items = rows.map { r -> String in
            var f = ["\"name\": \"\(r.name)\"", "\"seconds\": \(r.seconds)"]
            if let g = r.gflops { f.append("\"gflops\": \(g)") }
            if let x = r.ratio { f.append("\"ratio\": \(x)") }
            if let p = r.peer { f.append("\"peer\": \"\(p)\"") }
            if let b = r.peakBytes { f.append("\"peak_bytes\": \(b)") }
            if let n = r.items { f.append("\"items_per_s\": \(Double(n) / r.seconds)") }
            return "  {" + f.joined(separator: ", ") + "}"
        }
        print("[\n" + items.joined(separator: ",\n") + "\n]")
    } else {
        print("benchmark".padding(toLength: 58, withPad: " ", startingAt: 0) + "   median ms   GFLOP/s   ratio")
        for r in rows {
            let g = r.gflops.map { String(format: "%9.1f", $0) } ?? "         "
            let x = r.ratio.map { String(format: "%7.2f", $0) } ?? ""
            let mem = r.peakBytes.map { String(format: "   peak %.0f MiB", Double($0) / 1048576) } ?? ""
            print(r.name.padding(toLength: 58, withPad: " ", startingAt: 0)
                  + String(format: " %11.2f ", r.seconds * 1e3) + g + " " + x + mem)
        }
    }
}

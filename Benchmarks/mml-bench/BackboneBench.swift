import Foundation
import MMLCore

/// `mml-bench backbone [--json] [--threads N] [--quick]`: each backbone at 84x84 — inference forward img/s at batch
/// 80 and 100, training step (forward, backward of mean(feature^2), SGD momentum step) img/s at batch 80 — with the
/// peak resident memory of each measurement (VmHWM, reset through /proc/self/clear_refs before it).
/// Ratios compare with the PyTorch 2.13 CPU figures measured on this machine (tuned: tcmalloc + channels_last;
/// see shared/peers/torch_fewshot_bench.py), which cannot run inside this process.
func runBackboneBench(json: Bool, arguments: [String]) {
    var threads = 0
    if let i = arguments.firstIndex(of: "--threads"), i + 1 < arguments.count, let t = Int(arguments[i + 1]) { threads = t }
    let quick = arguments.contains("--quick")
    TensorMemory.keepFreedMemoryForReuse()
    // PyTorch tuned reference, img/s: (forward b80, forward b100, train b80). Conv-4 and ResNet-12 have none.
    let torchTuned: [BackboneKind: (Double, Double, Double)] = [.conv64F: (740, 740, 170)]
    struct Row { var name: String; var ms: Double; var imagesPerSecond: Double; var peakMiB: Double; var ratio: Double? }
    var rows: [Row] = []
    let kinds: [BackboneKind] = [.conv64F, .conv4, .resnet12]
    for kind in kinds {
        guard let backbone = try? makeBackbone(BackboneConfiguration(kind: kind, seed: 1)),
              let opt = try? SGD(learningRate: 0.01, momentum: 0.9) else { continue }
        backbone.threads = threads
        let repeats = quick || kind == .resnet12 ? 3 : 7
        for batch in [80, 100] {
            var g = TensorRNG(seed: 2)
            let x = Tensor(shape: [batch, 3, 84, 84], normalMean: 0, std: 1, generator: &g)
            resetPeakMemory()
            let t = measure(repeats: repeats) { _ = backbone.forward(x, training: false) }
            let ref = torchTuned[kind].map { batch == 80 ? $0.0 : $0.1 }
            let ips = Double(batch) / t
            rows.append(Row(name: "\(kind.rawValue) forward (inference) b\(batch)", ms: t * 1e3, imagesPerSecond: ips,
                            peakMiB: peakMemoryMiB(), ratio: ref.map { ips / $0 }))
            guard batch == 80 else { continue }
            resetPeakMemory()
            let ts = measure(repeats: repeats) {
                backbone.zeroGradients()
                let (y, cache) = backbone.forward(x, training: true)
                // loss = mean(y^2): dL/dy = 2 y / count
                var dy = y
                let s = 2 / Float(y.count)
                for i in 0..<dy.count { dy.data[i] *= s }
                _ = backbone.backward(dy, cache: cache, inputGradient: false)
                opt.step(backbone)
            }
            let ipsT = Double(batch) / ts
            rows.append(Row(name: "\(kind.rawValue) train step (fwd+bwd+SGD) b\(batch)", ms: ts * 1e3,
                            imagesPerSecond: ipsT, peakMiB: peakMemoryMiB(), ratio: torchTuned[kind].map { ipsT / $0.2 }))
        }
    }
    let sgemm = BLASRuntime.measureSGEMM(size: 1536, repeats: 3)
    if json {
        var items = rows.map { r -> String in
            var f = ["\"name\": \"\(r.name)\"", "\"ms\": \(r.ms)", "\"images_per_s\": \(r.imagesPerSecond)",
                     "\"peak_mib\": \(r.peakMiB)"]
            if let x = r.ratio { f.append("\"ratio_vs_torch_tuned\": \(x)") }
            return "  {" + f.joined(separator: ", ") + "}"
        }
        items.append("  {\"name\": \"openblas sgemm 1536 (\(BLASRuntime.corename), \(BLASRuntime.threads) threads)\", \"gflops\": \(sgemm)}")
        print("[\n" + items.joined(separator: ",\n") + "\n]")
    } else {
        print("threads \(threads == 0 ? "all" : String(threads)); mml kernels \(BLASRuntime.kernelISA); "
              + "OpenBLAS \(BLASRuntime.corename) sgemm 1536^3: \(String(format: "%.0f", sgemm)) GFLOP/s (not used by the convs)")
        print("benchmark".padding(toLength: 46, withPad: " ", startingAt: 0)
              + "   median ms     img/s   peak MiB   vs torch tuned")
        for r in rows {
            print(r.name.padding(toLength: 46, withPad: " ", startingAt: 0)
                  + String(format: " %11.1f %9.1f %10.0f", r.ms, r.imagesPerSecond, r.peakMiB)
                  + (r.ratio.map { String(format: "   %6.2fx", $0) } ?? ""))
        }
    }
}

/// Resets the kernel's peak-RSS counter of this process (Linux: writing 5 to /proc/self/clear_refs).
private func resetPeakMemory() {
    TensorMemory.releaseFreedMemory()
    if let f = fopen("/proc/self/clear_refs", "w") { fputs("5", f); fclose(f) }
}

/// The peak resident set (VmHWM) since the last reset, in MiB; getrusage's maxrss when /proc is unavailable.
private func peakMemoryMiB() -> Double {
    if let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
       let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
       let kb = Double(line.split(separator: " ").dropFirst().first ?? "") {
        return kb / 1024
    }
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_maxrss) / 1024
}

import Foundation
import MMLCore

/// `mml-bench backbone [--json] [--threads N] [--quick] [--kinds conv64f,conv4,resnet12] [--breakdown] [--forward-only]`: each backbone at 84x84 — inference forward img/s at batch
/// 80 and 100, training step (forward, backward of mean(feature^2), SGD momentum step) img/s at batch 80 — with the
/// peak resident memory of each measurement (VmHWM, reset through /proc/self/clear_refs before it).
/// Rows name their PyTorch peer result (Conv-64F / Conv-4: ../shared/peers/torch_fewshot_bench.py; ResNet-12:
/// Benchmarks/peer_resnet12.py, the same network with DropBlock in training), so
/// `python3 Benchmarks/side_by_side.py backbone` runs the peer(s) right after and prints the ratios.
func runBackboneBench(json: Bool, arguments: [String]) {
    let threads = intOption(arguments, "--threads", 0)
    let quick = arguments.contains("--quick")
    if !arguments.contains("--breakdown"), ["--size", "--batch", "--in-channels"].contains(where: arguments.contains) {
        fputs("mml-bench backbone: --size, --batch and --in-channels go with --breakdown (the other rows are at batch "
              + "80 / 100 of 84 x 84 x 3)\n", stderr)
        exit(2)
    }
    if arguments.contains("--breakdown") {
        let size = intOption(arguments, "--size", 84), batch = intOption(arguments, "--batch", 80)
        let channels = intOption(arguments, "--in-channels", 3)
        guard size % 4 == 0, size >= 8 else {
            fputs("mml-bench backbone: --size takes a multiple of 4 of at least 8, got \(size) (e.g. --size 28 --batch "
                  + "360 --in-channels 1)\n", stderr)
            exit(2)
        }
        runLayerBreakdown(threads: threads, size: size, batch: batch, inputChannels: channels)
        return
    }
    TensorMemory.keepFreedMemoryForReuse()
    // The peers' model names: the shared peer's Conv-64F / Conv-4, Benchmarks/peer_resnet12.py's ResNet-12.
    let peerName: [BackboneKind: String] = [.conv64F: "dn4_conv64f_21x21", .conv4: "classic_conv4_5x5",
                                            .resnet12: "resnet12_5x5"]
    struct Row { var name: String; var ms: Double; var imagesPerSecond: Double; var peakMiB: Double; var peer: String?; var batch: Int }
    var rows: [Row] = []
    var kinds: [BackboneKind] = [.conv64F, .conv4, .resnet12]
    if let i = arguments.firstIndex(of: "--kinds"), i + 1 < arguments.count {  // checked in main.swift
        kinds = arguments[i + 1].split(separator: ",").compactMap { BackboneKind(rawValue: String($0)) }
    }
    for kind in kinds {
        guard let backbone = try? makeBackbone(BackboneConfiguration(kind: kind, seed: 1)),
              let opt = try? SGD(learningRate: 0.01, momentum: 0.9) else { continue }
        backbone.threads = threads
        let repeats = quick || kind == .resnet12 ? 3 : 7
        for batch in [80, 100] {
            var g = SeededRNG(state: 2)
            let x = Tensor(shape: [batch, 3, 84, 84], normalMean: 0, std: 1, generator: &g)
            resetPeakMemory()
            let t = measure(repeats: repeats) { _ = backbone.forward(x, training: false) }
            let ips = Double(batch) / t
            rows.append(Row(name: "\(kind.rawValue) forward (inference) b\(batch)", ms: t * 1e3, imagesPerSecond: ips,
                            peakMiB: peakMemoryMiB(), peer: peerName[kind].map { "backbone/\($0)/fwd_eval/b\(batch)" },
                            batch: batch))
            guard batch == 80, !arguments.contains("--forward-only") else { continue }
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
                            imagesPerSecond: ipsT, peakMiB: peakMemoryMiB(),
                            peer: peerName[kind].map { "backbone/\($0)/train_backbone_only/b\(batch)" }, batch: batch))
        }
    }
    let sgemm = BLASRuntime.measureSGEMM(size: 1536, repeats: 3)
    if json {
        var out = rows.map { r in
            BenchRow(name: r.name, seconds: r.ms / 1e3, gflops: nil, ratio: nil, peer: r.peer,
                     peakBytes: Int(r.peakMiB * 1024 * 1024), items: r.batch)
        }
        out.append(BenchRow(name: "openblas sgemm 1536 (\(BLASRuntime.corename), \(BLASRuntime.threads) threads)",
                            seconds: 2 * pow(1536, 3) / sgemm / 1e9, gflops: sgemm, ratio: nil))
        printRows(out, json: true)
    } else {
        print("threads \(threads == 0 ? "all" : String(threads)); mml kernels \(BLASRuntime.kernelISA); "
              + "OpenBLAS \(BLASRuntime.corename) sgemm 1536^3: \(String(format: "%.0f", sgemm)) GFLOP/s (not used by the convs)")
        print("benchmark".padding(toLength: 46, withPad: " ", startingAt: 0)
              + "   median ms     img/s   peak MiB")
        for r in rows {
            print(r.name.padding(toLength: 46, withPad: " ", startingAt: 0)
                  + String(format: " %11.1f %9.1f %10.0f", r.ms, r.imagesPerSecond, r.peakMiB))
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

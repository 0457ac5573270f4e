import Foundation
import MMLCore

/// `mml-bench episode [--episodes N]` (20; 2 with --quick): whole evaluation episodes end to end from decoded images — 5-way 1-shot and
/// 5-shot, 15 queries, Conv-64F at 84 x 84 x 3 (built-in synthetic images, cached after the first decode), all three
/// levels (pixel top-3, part Grid-3,2 top-1, distribution KL) and the learned fusion — and the peak memory. It runs
/// the path of `mml eval` (a `FewShotModel` and `evaluateModel`). The PyTorch peer's row ("eval600") times its
/// eval-mode Conv-64F forward + DN4 (k = 3) + Gaussian fit + W2 + KL on the same shapes. Where the CPU has
/// AVX512-BF16, each setting also gets a row with `--precision bf16`, and where it runs AMX tiles one with
/// `--precision bf16amx` (the same episodes, the same peer row). `--breakdown` adds, per setting and precision, the
/// mean per episode of each phase (`PhaseProfile`: building the episode's tensors,
/// the backbone, each level, the fusion), measured in one more pass over the same episodes.
func runEpisodeBench(json: Bool, arguments: [String]) {
    let episodes = intOption(arguments, "--episodes", quickBench ? 2 : 20)
    let breakdown = arguments.contains("--breakdown")
    var rows: [BenchRow] = []
    do {
        let data = try SyntheticDataset(options: .init(seed: 0, imagesPerClass: 40, size: 84, channels: 3), split: "test")
        let loader = try EpisodeLoader(dataset: data, config: ImageConfig(size: 84, channels: 3))
        let model = try FewShotModel(ModelConfiguration(
            backbone: .conv64F, inputChannels: 3, seed: 1, image: ImageConfig(size: 84, channels: 3),
            metric: MetricConfiguration(pixelNeighbours: 3, partForm: .grid([3, 2]), partNeighbours: 1, distance: .kl)))
        for shot in [1, 5] {
            let sampler = try EpisodeSampler(dataset: data, way: 5, shot: shot, query: 15, seed: 1)
            try loader.prefetch(sampler.episodes(episodes))  // decode once; the timing is the model's
            _ = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 1)
            let r = try evaluateModel(model, loader: loader, sampler: sampler, episodes: episodes)
            let per = r.seconds / Double(episodes)
            rows.append(BenchRow(name: "episode 5-way \(shot)-shot 15q conv64f 84x84, 3 levels (per episode)",
                                 seconds: per, gflops: nil, ratio: nil, peer: "eval600/\(shot)shot_b\(shot == 1 ? 80 : 100)",
                                 peakBytes: peakResidentBytes()))
            rows.append(BenchRow(name: "  -> 600 episodes (extrapolated from \(episodes))", seconds: per * 600,
                                 gflops: nil, ratio: nil))
            if breakdown { rows += try phaseRows(model, loader, sampler, episodes, .fp32) }
            // The opt-in bf16 precisions (the pixel and part levels' similarity from bf16-rounded descriptors; README
            // "bf16 similarity in evaluation"), each only where its fast path runs (AVX512-BF16 for bf16, AMX tiles for
            // bf16amx): the portable paths give the same bits several times slower.
            for (precision, fast) in [(SimilarityPrecision.bf16, SimilarityPrecision.bf16HasFastPath),
                                      (.bf16amx, SimilarityPrecision.bf16amxHasFastPath)] where fast {
                _ = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 1, precision: precision)
                let rb = try evaluateModel(model, loader: loader, sampler: sampler, episodes: episodes,
                                           precision: precision)
                let pb = rb.seconds / Double(episodes)
                rows.append(BenchRow(name: "episode 5-way \(shot)-shot 3 levels \(precision.rawValue) (vs fp32)",
                                     seconds: pb, gflops: nil, ratio: per / pb,
                                     peer: "eval600/\(shot)shot_b\(shot == 1 ? 80 : 100)", peakBytes: peakResidentBytes()))
                if breakdown { rows += try phaseRows(model, loader, sampler, episodes, precision) }
            }
        }
    } catch {
        fputs("mml-bench episode: \(error)\n", stderr)
        exit(1)
    }
    printRows(rows, json: json)
}

/// One row per phase of evaluating `episodes` episodes once more with a `PhaseProfile`: milliseconds per episode.
private func phaseRows(_ model: FewShotModel, _ loader: EpisodeLoader, _ sampler: EpisodeSampler, _ episodes: Int,
                       _ precision: SimilarityPrecision) throws -> [BenchRow] {
    let profile = PhaseProfile()
    _ = try evaluateModel(model, loader: loader, sampler: sampler, episodes: episodes, precision: precision,
                          profile: profile)
    return profile.rows.map { r in
        BenchRow(name: "    \(precision.rawValue) \(r.phase.rawValue) (\(String(format: "%.0f", r.share * 100))%)",
                 seconds: r.perEpisodeMilliseconds / 1e3, gflops: nil, ratio: nil)
    }
}

/// Peak resident memory of this process so far (VmHWM), in bytes.
func peakResidentBytes() -> Int? {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
    return kb * 1024
}

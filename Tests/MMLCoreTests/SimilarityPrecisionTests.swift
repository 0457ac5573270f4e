import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// The evaluation precision setting (`SimilarityPrecision`, issue 17 item 3): it reaches the bf16 (and bf16amx)
/// grouped top-K kernel from the pixel and part heads, the multi-level metric, the model and the evaluation runs
/// (results equal to direct kernel calls and different from fp32 where they must be), it parses and round-trips
/// through JSON, fp32 stays the default with unchanged results, and the portable paths run with a warning and the
/// same results.
final class SimilarityPrecisionTests: XCTestCase {
    let data = DatasetSource(path: "synthetic", syntheticSize: 20, syntheticImages: 12)

    func fields(_ body: () throws -> Void) -> [String] {
        do { try body(); return [] } catch { return (error as? MMLError)?.fields ?? ["not an MMLError: \(error)"] }
    }

    /// Runs `body` with `MML_KERNELS_ISA` set to `value` (nil: unset), restoring the variable afterwards (make test
    /// runs some tests with it set to portable).
    func withISA<T>(_ value: String?, _ body: () throws -> T) rethrows -> T {
        let saved = getenv("MML_KERNELS_ISA").map { String(cString: $0) }
        defer { if let saved { setenv("MML_KERNELS_ISA", saved, 1) } else { unsetenv("MML_KERNELS_ISA") } }
        if let value { setenv("MML_KERNELS_ISA", value, 1) } else { unsetenv("MML_KERNELS_ISA") }
        return try body()
    }

    /// `scores[i, j] = sum_p sums[(i, p), j]`, parts in order (as the heads add them).
    func sumOverParts(_ sums: [Float], queries: Int, parts: Int, way: Int) -> [Float] {
        var out = [Float](repeating: 0, count: queries * way)
        for i in 0..<queries { for p in 0..<parts { for j in 0..<way { out[i * way + j] += sums[(i * parts + p) * way + j] } } }
        return out
    }

    /// Some entry of `a` differs from `b` by more than `atol` (the bf16 and fp32 results must not be the same).
    func assertDiffer(_ a: [Float], _ b: [Float], atol: Float, _ what: String, file: StaticString = #filePath,
                      line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        XCTAssertTrue(zip(a, b).contains { abs($0 - $1) > atol }, "\(what): bf16 equals fp32 to within \(atol)",
                      file: file, line: line)
    }

    func episode(_ seed: UInt64, way: Int = 3, shot: Int = 2, queries: Int = 5, c: Int = 24, h: Int = 4)
        -> (support: Tensor, labels: [Int], query: Tensor) {
        var rng = TestRNG(seed: seed)
        let labels = (0..<(way * shot)).map { $0 % way }
        return (rng.tensor([way * shot, c, h, h]), labels, rng.tensor([queries, c, h, h]))
    }

    // MARK: the heads and the metric

    func testPixelLevelBF16IsTheBF16KernelAndDiffersFromFP32() throws {
        let (support, labels, query) = episode(1)
        let way = 3, c = 24, m = 16, ns = support.shape[0], nq = query.shape[0]
        let head = PixelLevel(neighbours: 3, threads: 1)
        let bf16 = try head.forward(support: support, labels: labels, query: query, way: way, precision: .bf16).scores
        let fp32 = try head.forward(support: support, labels: labels, query: query, way: way).scores
        // The default is fp32, bit for bit.
        let explicit = try head.forward(support: support, labels: labels, query: query, way: way, precision: .fp32)
        assertBitwiseEqual(explicit.scores.data, fp32.data, "explicit fp32 vs default")
        // Direct kernel calls on the normalised descriptors.
        let q = try SimilarityKernels.mapsToRows(query.data, count: nq, dimension: c, positions: m, normalize: true).rows
        let s = try SimilarityKernels.mapsToRows(support.data, count: ns, dimension: c, positions: m, normalize: true).rows
        let groups = (0..<(ns * m)).map { Int32(labels[$0 / m]) }
        func direct(_ p: SimilarityKernels.Precision) throws -> [Float] {
            let r = try SimilarityKernels.groupTopK(queries: q, rows: nq * m, references: s, referenceRows: ns * m,
                                                    dimension: c, groups: groups, groupCount: way, k: 3, precision: p,
                                                    threads: 1)
            return sumOverParts(r.sums, queries: nq, parts: m, way: way)
        }
        assertBitwiseEqual(bf16.data, try direct(.bf16), "pixel bf16 vs direct bf16 kernel")
        assertBitwiseEqual(fp32.data, try direct(.f32), "pixel fp32 vs direct fp32 kernel")
        assertDiffer(bf16.data, fp32.data, atol: 1e-5, "pixel scores")
        XCTAssertTrue(zip(bf16.data, fp32.data).allSatisfy { abs($0 - $1) < 0.05 }, "bf16 far from fp32")
    }

    func testPartLevelBothFormsUseTheBF16Kernel() throws {
        let (support, labels, query) = episode(2)
        let way = 3, c = 24, h = 4, m = h * h, ns = support.shape[0], nq = query.shape[0]
        // Grid-2,1: pooled regions (summed in the head's order), L2-normalised, then the kernel.
        func regions(_ t: Tensor, _ n: Int) -> [Float] {
            // Laid out image-major: (n, regions, c).
            var laid = [Float](repeating: 0, count: n * 5 * c)
            for img in 0..<n {
                var region = 0
                for g in [2, 1] {
                    for gy in 0..<g {
                        for gx in 0..<g {
                            let ys = (gy * h / g)..<(((gy + 1) * h + g - 1) / g)
                            let xs = (gx * h / g)..<(((gx + 1) * h + g - 1) / g)
                            let inv = 1 / Float(ys.count * xs.count)
                            for ch in 0..<c {
                                var sum: Float = 0
                                for y in ys { for x in xs { sum += t.data[(img * c + ch) * m + y * h + x] } }
                                laid[(img * 5 + region) * c + ch] = sum * inv
                            }
                            region += 1
                        }
                    }
                }
            }
            return laid
        }
        let grid = PartLevel(form: .grid([2, 1]), neighbours: 1, threads: 1)
        let gq = try SimilarityKernels.l2NormalizeRows(regions(query, nq), rows: nq * 5, dimension: c).y
        let gs = try SimilarityKernels.l2NormalizeRows(regions(support, ns), rows: ns * 5, dimension: c).y
        let gGroups = (0..<(ns * 5)).map { Int32(labels[$0 / 5]) }
        // Channel parts: descriptors normalised over C, each channel's M-vector a part (dimension M).
        let cq = try SimilarityKernels.mapsToRows(query.data, count: nq, dimension: c, positions: m, normalize: true).rows
        let cs = try SimilarityKernels.mapsToRows(support.data, count: ns, dimension: c, positions: m, normalize: true).rows
        func transpose(_ rows: [Float], _ n: Int) -> [Float] {
            var out = [Float](repeating: 0, count: rows.count)
            for img in 0..<n { for p in 0..<m { for ch in 0..<c { out[(img * c + ch) * m + p] = rows[(img * m + p) * c + ch] } } }
            return out
        }
        let channels = PartLevel(form: .channels, neighbours: 2, threads: 1)
        let cGroups = (0..<(ns * c)).map { Int32(labels[$0 / c]) }
        for (head, qp, sp, grp, per, dim) in [(grid, gq, gs, gGroups, 5, c),
                                              (channels, transpose(cq, nq), transpose(cs, ns), cGroups, c, m)] {
            let bf16 = try head.forward(support: support, labels: labels, query: query, way: way, precision: .bf16)
            let fp32 = try head.forward(support: support, labels: labels, query: query, way: way)
            let r = try SimilarityKernels.groupTopK(queries: qp, rows: nq * per, references: sp, referenceRows: ns * per,
                                                    dimension: dim, groups: grp, groupCount: way, k: head.neighbours,
                                                    precision: .bf16, threads: 1)
            assertBitwiseEqual(bf16.scores.data, sumOverParts(r.sums, queries: nq, parts: per, way: way),
                               "part \(head.form) bf16 vs direct bf16 kernel")
            assertDiffer(bf16.scores.data, fp32.scores.data, atol: 1e-6, "part \(head.form) scores")
        }
    }

    func testMultiLevelMetricPrecisionReachesPixelAndPartOnly() throws {
        let (support, labels, query) = episode(3, way: 4, shot: 2, queries: 6)
        let pixel = PixelLevel(neighbours: 3, threads: 1), part = PartLevel(form: .grid([2]), neighbours: 1, threads: 1)
        var metric = try MultiLevelMetric(levels: [.pixel, .part, .distribution], pixel: pixel, part: part, way: 4)
        let (bf16, _) = try metric.forward(support: support, labels: labels, query: query, way: 4, training: false,
                                           precision: .bf16)
        let (fp32, _) = try metric.forward(support: support, labels: labels, query: query, way: 4, training: false)
        let pixelBF16 = try pixel.forward(support: support, labels: labels, query: query, way: 4, precision: .bf16)
        let partBF16 = try part.forward(support: support, labels: labels, query: query, way: 4, precision: .bf16)
        assertBitwiseEqual(bf16.levelScores[.pixel]!.data, pixelBF16.scores.data, "metric pixel")
        assertBitwiseEqual(bf16.levelScores[.part]!.data, partBF16.scores.data, "metric part")
        assertBitwiseEqual(bf16.levelScores[.distribution]!.data, fp32.levelScores[.distribution]!.data,
                           "the distribution level stays fp32")
        assertDiffer(bf16.levelScores[.pixel]!.data, fp32.levelScores[.pixel]!.data, atol: 1e-5, "metric pixel")
        assertDiffer(bf16.logits.data, fp32.logits.data, atol: 1e-7, "fused logits")
    }

    // MARK: configuration

    func testParsingJSONRoundTripsAndDefaults() throws {
        XCTAssertEqual(try SimilarityPrecision.parse("fp32"), .fp32)
        XCTAssertEqual(try SimilarityPrecision.parse("bf16"), .bf16)
        XCTAssertEqual(try SimilarityPrecision.parse("bf16amx"), .bf16amx)
        for bad in ["f32", "BF16", "fp16", "", "amx", "bf16-amx"] {
            XCTAssertThrowsError(try SimilarityPrecision.parse(bad)) { e in
                XCTAssertEqual((e as? MMLError)?.template, "`precision` \(bad): use fp32, bf16 or bf16amx")
            }
        }
        XCTAssertEqual(SimilarityPrecision.fp32.kernel, .f32)
        XCTAssertEqual(SimilarityPrecision.bf16.kernel, .bf16)
        XCTAssertEqual(SimilarityPrecision.bf16amx.kernel, .bf16amx)
        // The defaults are fp32, and the JSON carries the field.
        let eval = EvaluationRunConfiguration(checkpoint: "m.safetensors")
        XCTAssertEqual(eval.precision, .fp32)
        XCTAssertEqual(AblationRunConfiguration().precision, .fp32)
        let text = try ConfigurationJSON.text(eval)
        XCTAssertTrue(text.contains("\"precision\":\"fp32\""), text)
        // Round trips.
        var e = eval
        e.precision = .bf16
        let back = try JSONDecoder().decode(EvaluationRunConfiguration.self, from: JSONEncoder().encode(e))
        XCTAssertEqual(back, e)
        XCTAssertEqual(back.precision, .bf16)
        let a = AblationRunConfiguration(checkpoint: "m.safetensors", refitEpisodes: 3, way: 2, episodes: 4,
                                         shard: ShardSpec(index: 1, count: 2), episodesOut: "x/", trainingSeed: 5,
                                         precision: .bf16)
        XCTAssertEqual(try JSONDecoder().decode(AblationRunConfiguration.self, from: JSONEncoder().encode(a)), a)
        // Older configurations (no field) read as fp32.
        func without(_ value: some Encodable) throws -> Data {
            var o = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: Any])
            XCTAssertNotNil(o.removeValue(forKey: "precision"))
            return try JSONSerialization.data(withJSONObject: o)
        }
        XCTAssertEqual(try JSONDecoder().decode(EvaluationRunConfiguration.self, from: without(e)).precision, .fp32)
        XCTAssertEqual(try JSONDecoder().decode(AblationRunConfiguration.self, from: without(a)).precision, .fp32)
        // The C ABI's and Python's way in: JSON laid over the defaults.
        let laid = try ConfigurationJSON.decode(EvaluationRunConfiguration.self,
                                                from: #"{"checkpoint": "m.safetensors", "precision": "bf16"}"#,
                                                over: EvaluationRunConfiguration(checkpoint: ""),
                                                what: "evaluation configuration")
        XCTAssertEqual(laid.precision, .bf16)
        XCTAssertThrowsError(try ConfigurationJSON.decode(EvaluationRunConfiguration.self,
                                                          from: #"{"checkpoint": "m", "precision": "bf17"}"#,
                                                          over: EvaluationRunConfiguration(checkpoint: ""),
                                                          what: "evaluation configuration")) { e in
            XCTAssertEqual((e as? MMLError)?.template, "`precision` bf17: use fp32, bf16 or bf16amx")
        }
    }

    /// Configuration files as written before `precision` existed, and with it: both run configurations read them
    /// (absent or null: fp32; `preprocessing` absent: the checkpoint's own), write `precision` always (so an older
    /// file comes back with the field added and nothing else changed), and refuse a wrong value with the field's
    /// parse error, read directly or laid over the defaults.
    func testConfigurationFilesWithAndWithoutPrecision() throws {
        let dataset = #""dataset":{"path":"synthetic","syntheticImages":100,"syntheticSeed":0}"#
        let evalOld = #"{"checkpoint":"m.safetensors","cosineClassifier":{},\#(dataset),"episodes":600,"query":15,"#
            + #""seed":0,"shots":[1],"threads":0,"ways":[5]}"#
        let ablationOld = #"{"checkpoint":"m.safetensors",\#(dataset),"episodes":4,"out":"runs\/ablation","query":15,"#
            + #""refitEpisodes":3,"refitSplit":"val","retrain":false,"seed":0,"shot":1,"threads":0,"way":2}"#
        /// `old` with `"precision": value` at its place in sorted keys (before "query"; `value` may carry the
        /// evaluation's "preprocessing", which sorts between them).
        func with(_ old: String, precision value: String) -> String {
            let cut = old.range(of: #","query""#)!
            return String(old[..<cut.lowerBound]) + #","precision":\#(value)"# + String(old[cut.lowerBound...])
        }
        let sorted = JSONEncoder()
        sorted.outputFormatting = [.sortedKeys]
        func text(_ value: some Encodable) throws -> String { String(decoding: try sorted.encode(value), as: UTF8.self) }
        func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
            try JSONDecoder().decode(T.self, from: Data(text.utf8))
        }

        let eval = EvaluationRunConfiguration(checkpoint: "m.safetensors")
        let ablation = AblationRunConfiguration(checkpoint: "m.safetensors", refitEpisodes: 3, way: 2, episodes: 4)
        // Without the field: fp32 (and no `preprocessing`: empty), written back with `precision` only added.
        XCTAssertEqual(try decode(EvaluationRunConfiguration.self, evalOld), eval)
        XCTAssertEqual(try decode(AblationRunConfiguration.self, ablationOld), ablation)
        let evalFP32 = with(evalOld, precision: #""fp32","preprocessing":{}"#)
        XCTAssertEqual(try text(eval), evalFP32)
        XCTAssertEqual(try text(ablation), with(ablationOld, precision: #""fp32""#))
        // With it.
        var evalBF16 = eval, ablationBF16 = ablation
        evalBF16.precision = .bf16
        ablationBF16.precision = .bf16
        let evalBF16Text = with(evalOld, precision: #""bf16","preprocessing":{}"#)
        XCTAssertEqual(try decode(EvaluationRunConfiguration.self, evalBF16Text), evalBF16)
        XCTAssertEqual(try decode(AblationRunConfiguration.self, with(ablationOld, precision: #""bf16""#)), ablationBF16)
        XCTAssertEqual(try text(evalBF16), evalBF16Text)
        XCTAssertEqual(try text(ablationBF16), with(ablationOld, precision: #""bf16""#))
        // null is absent.
        XCTAssertEqual(try decode(EvaluationRunConfiguration.self, with(evalOld, precision: "null")), eval)
        XCTAssertEqual(try decode(AblationRunConfiguration.self, with(ablationOld, precision: "null")), ablation)
        // A wrong value: the field's parse error, read directly or laid over the defaults.
        for (what, bad) in [("evaluation", with(evalOld, precision: #""bf17""#)),
                            ("ablation", with(ablationOld, precision: #""bf17""#))] {
            let reads: [() throws -> Void] = what == "evaluation"
                ? [{ _ = try decode(EvaluationRunConfiguration.self, bad) },
                   { _ = try ConfigurationJSON.decode(EvaluationRunConfiguration.self, from: bad, over: eval,
                                                      what: "evaluation configuration") }]
                : [{ _ = try decode(AblationRunConfiguration.self, bad) },
                   { _ = try ConfigurationJSON.decode(AblationRunConfiguration.self, from: bad, over: ablation,
                                                      what: "ablation configuration") }]
            for read in reads {
                XCTAssertThrowsError(try read(), what) { e in
                    XCTAssertEqual((e as? MMLError)?.template, "`precision` bf17: use fp32, bf16 or bf16amx", what)
                }
            }
        }
        // A value of the wrong type is the decoder's error naming the field.
        XCTAssertThrowsError(try decode(AblationRunConfiguration.self, with(ablationOld, precision: "3"))) { e in
            XCTAssertEqual(MMLError.describe(e), "'precision' is not a string")
        }
    }

    // MARK: the runs

    /// A small untrained checkpoint (Conv-64F of width 8 at 20 x 20: 5 x 5 maps) with all three levels.
    func saveModel(_ path: String, levels: [MetricLevel] = [.pixel, .part, .distribution]) throws -> FewShotModel {
        let config = ModelConfiguration(kind: "episodic", backbone: .conv64F, inputChannels: 1, widths: [8, 8, 8, 8],
                                        initialization: .kaiming, seed: 3, image: ImageConfig(size: 20, channels: 1),
                                        metric: MetricConfiguration(levels: Set(levels), partForm: .grid([2])))
        let model = try FewShotModel(config, threads: 1)
        try Checkpoint.save(model, to: path)
        return model
    }

    /// Per measure ("accuracy" and the level names), every query's prediction of a per-episode file, in order.
    func predictions(_ path: String) throws -> [String: [Int]] {
        let file = try EpisodeFile<EvaluationRunResult>.read(path)
        var out: [String: [Int]] = [:]
        for r in file.records {
            for (k, v) in try XCTUnwrap(r.predictions) { out[k, default: []] += v }
        }
        return out
    }

    func testEvaluationRunBF16EqualsTheLibrarysBF16AndChangesPredictions() throws {
        let dir = try makeTempDir(self, prefix: "mml-precision")
        let model = try saveModel(dir + "/m.safetensors")
        var config = EvaluationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data, ways: [5],
                                                shots: [1], query: 4, episodes: 12, seed: 3, threads: 1,
                                                episodesOut: dir + "/fp32.jsonl")
        var facts: [String] = [], warnings: [String] = []
        let fp32 = try EvaluationRun(config).run { if case .warning(let w) = $0 { warnings.append(w) } }
        config.precision = .bf16
        config.episodesOut = dir + "/bf16.jsonl"
        let bf16 = try withISA(nil) {
            try EvaluationRun(config).run { event in
                if case .started(_, let f) = event { facts = f.map(\.key) }
                if case .warning(let w) = event { warnings.append(w) }
            }
        }
        XCTAssertEqual(facts, ["checkpoint", "data", "protocol", "precision"])
        // The report says bf16 (mml eval --json); an fp32 report has no such key, as before.
        XCTAssertEqual(bf16.precision, .bf16)
        XCTAssertNil(fp32.precision)
        let text16 = try bf16.jsonText(), text32 = try fp32.jsonText()
        XCTAssertTrue(text16.contains("\"precision\" : \"bf16\""), text16)
        XCTAssertFalse(text32.contains("\"precision\" :"), text32)
        // The same episodes through the library, each precision.
        let ds = try data.with(split: "test").open(image: model.configuration.image)
        let loader = try EpisodeLoader(dataset: ds, config: model.configuration.image.forEvaluation)
        let sampler = try EpisodeSampler(dataset: ds, way: 5, shot: 1, query: 4, seed: 3)
        let lib32 = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 12)
        let lib16 = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 12, precision: .bf16)
        XCTAssertEqual(fp32.results[0].accuracy, .init(lib32.fused))
        XCTAssertEqual(bf16.results[0].accuracy, .init(lib16.fused))
        XCTAssertEqual(bf16.results[0].levels?["pixel"], .init(lib16.levels[.pixel]!))
        XCTAssertEqual(bf16.results[0].levels?["part"], .init(lib16.levels[.part]!))
        XCTAssertEqual(bf16.results[0].levels?["distribution"], fp32.results[0].levels?["distribution"])
        // Every query's prediction in the files is the library's of the same precision.
        let p32 = try predictions(dir + "/fp32.jsonl"), p16 = try predictions(dir + "/bf16.jsonl")
        XCTAssertEqual(p32["accuracy"], lib32.fusedPredictions.flatMap { $0 })
        XCTAssertEqual(p16["accuracy"], lib16.fusedPredictions.flatMap { $0 })
        for l in MetricLevel.allCases {
            XCTAssertEqual(p32[l.rawValue], lib32.levelPredictions[l]!.flatMap { $0 }, l.rawValue)
            XCTAssertEqual(p16[l.rawValue], lib16.levelPredictions[l]!.flatMap { $0 }, l.rawValue)
        }
        // On these near-ties (an untrained model) bf16 changes some pixel or part predictions, so the run's
        // predictions above could not equal the library's bf16 ones unless the setting reached the kernel.
        let changed = ["pixel", "part"].map { l in zip(p16[l]!, p32[l]!).filter { $0 != $1 }.count }
        XCTAssertGreaterThan(changed.reduce(0, +), 0, "the test needs episodes where bf16 changes a prediction")
        XCTAssertEqual(p16["distribution"], p32["distribution"])
        // mml compare counts them.
        let cmp = try EpisodeComparison(EpisodeFile<EvaluationRunResult>.read(dir + "/bf16.jsonl"), named: "bf16",
                                        EpisodeFile<EvaluationRunResult>.read(dir + "/fp32.jsonl"), named: "fp32")
        let measures = Dictionary(uniqueKeysWithValues: cmp.settings[0].measures.map { ($0.name, $0) })
        XCTAssertEqual(measures["pixel"]?.changedPredictions, changed[0])
        XCTAssertEqual(measures["part"]?.changedPredictions, changed[1])
        XCTAssertEqual(measures["distribution"]?.changedPredictions, 0)
        XCTAssertEqual(measures["accuracy"]?.comparedPredictions, 12 * 5 * 4)
        // The manifest says bf16; an fp32 file's manifest has no such entry (as before this setting existed).
        XCTAssertEqual(try EpisodeFile<EvaluationRunResult>.read(dir + "/bf16.jsonl").header.manifest["precision"], "bf16")
        XCTAssertNil(try EpisodeFile<EvaluationRunResult>.read(dir + "/fp32.jsonl").header.manifest["precision"])
        // With the fast path (this CPU has AVX512-BF16) there is no warning; an fp32 run never warns.
        if CPUFeatures.current.contains(.avx512bf16) && CPUFeatures.current.contains(.avx512f) {
            XCTAssertEqual(warnings, [])
        }
    }

    func testPortablePathWarnsAndGivesTheSameResults() throws {
        let dir = try makeTempDir(self, prefix: "mml-precision")
        _ = try saveModel(dir + "/m.safetensors")
        var config = EvaluationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data, ways: [3],
                                                shots: [1], query: 3, episodes: 4, seed: 1, threads: 1,
                                                precision: .bf16)
        func run(_ isa: String?, out: String) throws -> (EvaluationRunResult, [String]) {
            config.episodesOut = dir + "/" + out
            var warnings: [String] = []
            let r = try withISA(isa) {
                try EvaluationRun(config).run { if case .warning(let w) = $0 { warnings.append(w) } }
            }
            return (r, warnings)
        }
        let (portable, warned) = try run("portable", out: "portable.jsonl")
        XCTAssertEqual(warned.count, 1, "\(warned)")
        let w = try XCTUnwrap(warned.first)
        XCTAssertTrue(w.hasPrefix("`precision` bf16: MML_KERNELS_ISA=portable forces the portable kernels"), w)
        XCTAssertTrue(w.contains("the same results, bit for bit, but several times slower than `precision` fp32"), w)
        XCTAssertEqual(MMLError(.config, w).fields, ["precision", "precision"])
        let (native, _) = try run(nil, out: "native.jsonl")
        XCTAssertEqual(portable.results.map(\.accuracy), native.results.map(\.accuracy))
        XCTAssertEqual(portable.results[0].levels, native.results[0].levels)
        XCTAssertEqual(try predictions(dir + "/portable.jsonl"), try predictions(dir + "/native.jsonl"))
        // The note exists exactly when bf16 has no fast path.
        withISA("portable") {
            XCTAssertFalse(SimilarityPrecision.bf16HasFastPath)
            XCTAssertNotNil(SimilarityPrecision.bf16.portableNote)
            XCTAssertNil(SimilarityPrecision.fp32.portableNote)
        }
        withISA(nil) {
            XCTAssertEqual(SimilarityPrecision.bf16HasFastPath, SimilarityKernels.bf16Path == "avx512bf16")
            XCTAssertEqual(SimilarityPrecision.bf16.portableNote == nil, SimilarityPrecision.bf16HasFastPath)
            if !SimilarityPrecision.bf16HasFastPath {
                XCTAssertTrue(SimilarityPrecision.bf16.portableNote!.contains("lacks AVX512-BF16")
                              || SimilarityPrecision.bf16.portableNote!.contains("not usable"))
            }
        }
    }

    func testPrecisionThatWouldChangeNothingIsRefused() throws {
        let dir = try makeTempDir(self, prefix: "mml-precision")
        _ = try saveModel(dir + "/m.safetensors")
        _ = try saveModel(dir + "/d.safetensors", levels: [.distribution])
        var config = EvaluationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data,
                                                evaluationProtocol: .prototype, ways: [3], shots: [1], query: 3,
                                                episodes: 2, threads: 1, precision: .bf16)
        XCTAssertEqual(fields { _ = try EvaluationRun(config).run() },
                       ["precision", "evaluationProtocol", "evaluationProtocol", "precision"])
        config.evaluationProtocol = nil
        config.checkpoint = dir + "/d.safetensors"
        XCTAssertEqual(fields { _ = try EvaluationRun(config).run() }, ["precision", "precision"])
        // fp32 is fine with either.
        config.precision = .fp32
        XCTAssertNoThrow(try EvaluationRun(config).run())
        config.checkpoint = dir + "/m.safetensors"
        config.evaluationProtocol = .prototype
        XCTAssertNoThrow(try EvaluationRun(config).run())
    }

    func testAblationRunScoresWithTheGivenPrecision() throws {
        let dir = try makeTempDir(self, prefix: "mml-precision")
        let model = try saveModel(dir + "/m.safetensors")
        let base = AblationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data, refitEpisodes: 3,
                                            way: 3, shot: 1, query: 3, episodes: 4, seed: 2, out: dir + "/fp32",
                                            threads: 1)
        var bf = base
        bf.precision = .bf16
        bf.out = dir + "/bf16"
        let r16 = try withISA(nil) { try AblationRun(bf).run() }
        let r32 = try AblationRun(base).run()
        XCTAssertTrue(r16.mode.hasSuffix(", bf16 similarity at the pixel and part levels"), r16.mode)
        XCTAssertFalse(r32.mode.contains("bf16"))
        // The single-level rows of pixel and part are re-fitted on and evaluated with bf16 scores: the test
        // episodes' scores through the library with bf16, fused by the row's weights, give the row's accuracies.
        let ds = try data.with(split: "test").open(image: model.configuration.image)
        let loader = try EpisodeLoader(dataset: ds, config: model.configuration.image.forEvaluation)
        let sampler = try EpisodeSampler(dataset: ds, way: 3, shot: 1, query: 3, seed: 2)
        let scores16 = try collectLevelScores(model, loader: loader, episodes: sampler.episodes(4), precision: .bf16)
        let scores32 = try collectLevelScores(model, loader: loader, episodes: sampler.episodes(4))
        XCTAssertTrue(zip(scores16, scores32).contains { $0.scores[.pixel]! != $1.scores[.pixel]! })
        for (row16, row32) in zip(r16.rows, r32.rows) where row16.levels == [.distribution] {
            XCTAssertEqual(row16.perEpisode, row32.perEpisode, "distribution alone does not depend on precision")
        }
        let file = try EpisodeFile<AblationRunResult>.read(dir + "/bf16/episodes.jsonl")
        XCTAssertEqual(file.header.manifest["precision"], "bf16")
        XCTAssertNil(try EpisodeFile<AblationRunResult>.read(dir + "/fp32/episodes.jsonl").header.manifest["precision"])
    }

    // MARK: bf16amx

    /// bf16amx reaches its own kernel from the heads and the metric (bit for bit the direct mml_group_topk_sim_bf16amx
    /// calls), its scores are not bf16's (another summation order) nor fp32's, and an evaluation run with it equals
    /// the library's bf16amx evaluation, says so (facts, report, manifest), and on the portable path warns and gives
    /// the same results.
    func testBF16AMXReachesItsKernelAndRunsOnBothPaths() throws {
        let (support, labels, query) = episode(4, way: 3, shot: 2, queries: 6, c: 40)
        let way = 3, c = 40, m = 16, ns = support.shape[0], nq = query.shape[0]
        let head = PixelLevel(neighbours: 3, threads: 1)
        let amx = try head.forward(support: support, labels: labels, query: query, way: way, precision: .bf16amx)
        let bf16 = try head.forward(support: support, labels: labels, query: query, way: way, precision: .bf16)
        let fp32 = try head.forward(support: support, labels: labels, query: query, way: way)
        let q = try SimilarityKernels.mapsToRows(query.data, count: nq, dimension: c, positions: m, normalize: true).rows
        let s = try SimilarityKernels.mapsToRows(support.data, count: ns, dimension: c, positions: m, normalize: true).rows
        let groups = (0..<(ns * m)).map { Int32(labels[$0 / m]) }
        let direct = try SimilarityKernels.groupTopK(queries: q, rows: nq * m, references: s, referenceRows: ns * m,
                                                     dimension: c, groups: groups, groupCount: way, k: 3,
                                                     precision: .bf16amx, threads: 1)
        assertBitwiseEqual(amx.scores.data, sumOverParts(direct.sums, queries: nq, parts: m, way: way),
                           "pixel bf16amx vs direct bf16amx kernel")
        XCTAssertNotEqual(amx.scores.data.map(\.bitPattern), bf16.scores.data.map(\.bitPattern),
                          "bf16amx gave bf16's bits on every score")
        assertDiffer(amx.scores.data, fp32.scores.data, atol: 1e-5, "pixel bf16amx scores")
        let part = PartLevel(form: .grid([2]), neighbours: 1, threads: 1)
        var metric = try MultiLevelMetric(levels: [.pixel, .part, .distribution], pixel: head, part: part, way: way)
        let (out, _) = try metric.forward(support: support, labels: labels, query: query, way: way, training: false,
                                          precision: .bf16amx)
        assertBitwiseEqual(out.levelScores[.pixel]!.data, amx.scores.data, "metric pixel")
        assertBitwiseEqual(out.levelScores[.part]!.data,
                           try part.forward(support: support, labels: labels, query: query, way: way,
                                            precision: .bf16amx).scores.data, "metric part")

        // The evaluation run, on the fast path where there is one and on the portable path.
        let dir = try makeTempDir(self, prefix: "mml-precision")
        let model = try saveModel(dir + "/m.safetensors")
        var config = EvaluationRunConfiguration(checkpoint: dir + "/m.safetensors", dataset: data, ways: [5],
                                                shots: [1], query: 4, episodes: 6, seed: 3, threads: 1,
                                                precision: .bf16amx)
        func run(_ isa: String?, _ out: String) throws -> (EvaluationRunResult, [String: String], [String]) {
            config.episodesOut = dir + "/" + out
            var facts: [String: String] = [:], warnings: [String] = []
            let r = try withISA(isa) {
                try EvaluationRun(config).run { event in
                    if case .started(_, let f) = event { for x in f { facts[x.key] = x.value } }
                    if case .warning(let w) = event { warnings.append(w) }
                }
            }
            return (r, facts, warnings)
        }
        let (native, nativeFacts, nativeWarnings) = try run(nil, "native.jsonl")
        let (portable, portableFacts, portableWarnings) = try run("portable", "portable.jsonl")
        XCTAssertEqual(native.precision, .bf16amx)
        XCTAssertTrue(try native.jsonText().contains("\"precision\" : \"bf16amx\""))
        XCTAssertEqual(try EpisodeFile<EvaluationRunResult>.read(dir + "/native.jsonl").header.manifest["precision"],
                       "bf16amx")
        let fast = SimilarityKernels.bf16amxPath == "amx"
        XCTAssertEqual(nativeFacts["precision"], "bf16amx similarity at the pixel and part levels ("
                       + (fast ? "AMX" : "portable path, slower than fp32") + ")")
        XCTAssertEqual(portableFacts["precision"],
                       "bf16amx similarity at the pixel and part levels (portable path, slower than fp32)")
        XCTAssertEqual(nativeWarnings.isEmpty, fast, "\(nativeWarnings)")
        XCTAssertEqual(portableWarnings.count, 1, "\(portableWarnings)")
        XCTAssertTrue(portableWarnings.first?.hasPrefix("`precision` bf16amx: MML_KERNELS_ISA=portable forces the "
                                                        + "portable kernels, so the pixel and part levels' bf16amx "
                                                        + "similarity runs on the portable path: the same results, "
                                                        + "bit for bit") ?? false, "\(portableWarnings)")
        XCTAssertEqual(native.results.map(\.accuracy), portable.results.map(\.accuracy))
        XCTAssertEqual(native.results[0].levels, portable.results[0].levels)
        XCTAssertEqual(try predictions(dir + "/native.jsonl"), try predictions(dir + "/portable.jsonl"))
        // The run's predictions are the library's bf16amx ones.
        let ds = try data.with(split: "test").open(image: model.configuration.image)
        let loader = try EpisodeLoader(dataset: ds, config: model.configuration.image.forEvaluation)
        let sampler = try EpisodeSampler(dataset: ds, way: 5, shot: 1, query: 4, seed: 3)
        let lib = try evaluateModel(model, loader: loader, sampler: sampler, episodes: 6, precision: .bf16amx)
        XCTAssertEqual(native.results[0].accuracy, .init(lib.fused))
        XCTAssertEqual(try predictions(dir + "/native.jsonl")["pixel"], lib.levelPredictions[.pixel]!.flatMap { $0 })
        // The note and the reason exist exactly without the fast path.
        withISA(nil) {
            XCTAssertEqual(SimilarityPrecision.bf16amxHasFastPath, fast)
            XCTAssertEqual(SimilarityPrecision.bf16amx.portableNote == nil, fast)
            XCTAssertEqual(SimilarityPrecision.bf16amx.hasFastPath, fast)
            if !fast {
                let why = SimilarityPrecision.bf16amxPortableReason ?? ""
                XCTAssertTrue(["lacks AMX-BF16", "AMX's tile", "not usable"].contains { why.contains($0) }, why)
            }
        }
        withISA("portable") {
            XCTAssertFalse(SimilarityPrecision.bf16amxHasFastPath)
            XCTAssertEqual(SimilarityPrecision.bf16amxPortableReason, "MML_KERNELS_ISA=portable forces the portable kernels")
        }
    }

    // MARK: predictions and comparisons

    func testPredictionsAndChangedPredictionCounts() throws {
        // argmax per row, the first maximum on ties; accuracy as before.
        let scores = Tensor(shape: [3, 3], data: [0, 2, 2, 5, 1, 5, -1, -2, -3])
        XCTAssertEqual(MMLCore.predictions(of: scores), [1, 0, 0])
        XCTAssertEqual(accuracy(of: scores, labels: [1, 2, 0]), 2.0 / 3.0)
        func file(_ preds: [[Int]]?, accuracy: [Double]) -> EpisodeFile<IgnoredReport> {
            let records = accuracy.indices.map { i in
                EpisodeRecord(way: 2, shot: 1, index: i, hash: "h\(i)", accuracy: accuracy[i],
                              levels: ["pixel": accuracy[i]],
                              predictions: preds.map { ["accuracy": $0[i], "pixel": $0[i]] })
            }
            let header = EpisodeFileHeader(command: "eval", manifest: [:],
                                           settings: [EpisodeSetting(way: 2, shot: 1, query: 2, episodes: 2)],
                                           shard: nil, seconds: 1, facts: [], report: IgnoredReport())
            return EpisodeFile(header: header, records: records)
        }
        let a = file([[0, 1, 1, 0], [1, 1, 0, 0]], accuracy: [1, 0.5])
        let b = file([[0, 1, 0, 0], [0, 1, 0, 1]], accuracy: [0.75, 0.25])
        let cmp = try EpisodeComparison(a, named: "A", b, named: "B")
        let m = cmp.settings[0].measures
        XCTAssertEqual(m.map(\.name), ["accuracy", "pixel"])
        XCTAssertEqual(m.map(\.changedPredictions), [3, 3])
        XCTAssertEqual(m.map(\.comparedPredictions), [8, 8])
        XCTAssertEqual(m[0].changedFraction, 3.0 / 8.0)
        XCTAssertTrue(cmp.text.contains("predictions changed"), cmp.text)
        XCTAssertTrue(cmp.text.contains("3 of 8 (37.500%)"), cmp.text)
        // Without predictions in one file: no count, and the text as before.
        let none = try EpisodeComparison(a, named: "A", file(nil, accuracy: [0.75, 0.25]), named: "B")
        XCTAssertEqual(none.settings[0].measures.map(\.changedPredictions), [nil, nil])
        XCTAssertFalse(none.text.contains("predictions changed"), none.text)
        let json = try none.jsonText()
        XCTAssertFalse(json.contains("changedPredictions"), json)
    }
}

import Foundation

/// What `TorchImportRun` (`mml import`) imports: a PyTorch `state_dict` saved as safetensors, the backbone it
/// holds, how its tensors are named, the metric to attach and the image preprocessing the model expects.
public struct TorchImportConfiguration: RunConfiguration, Equatable {
    /// The safetensors file (`safetensors.torch.save_file(model.state_dict(), path)`).
    public var input: String
    /// The architecture (its activation and pooling are mml's: Conv-64F LeakyReLU(0.2) with pools after blocks 1-2,
    /// Conv-4 ReLU with pools after every block, ResNet-12 LeakyReLU(0.1)); widths and input channels are read
    /// from the tensors.
    public var backbone: BackboneKind
    /// The tensor names' convention (ignored when `nameMap` is given).
    public var convention: TorchNameConvention
    /// A JSON file `{"<mml name>": "<source name>", ...}` for other code bases (docs/IMPORT.md).
    public var nameMap: String?
    /// The metric to attach (nil: a backbone-only checkpoint, evaluated with the frozen-feature protocols).
    public var metric: MetricConfiguration?
    /// Image side the model expects (nil: 84).
    public var imageSize: Int?
    /// Ink, resize filter, mean and std the model was trained with (unset: paper-white, triangle, ImageNet's
    /// statistics for 3 channels, 0 / 1 for 1 channel).
    public var preprocessing: Preprocessing
    /// Import even when the file holds tensors nothing maps (a classifier head, an optimiser); they are listed.
    public var allowUnused: Bool
    /// The checkpoint to write (`.safetensors`, with its `.json` sidecar).
    public var output: String

    public init(input: String, backbone: BackboneKind, convention: TorchNameConvention = .auto,
                nameMap: String? = nil, metric: MetricConfiguration? = nil, imageSize: Int? = nil,
                preprocessing: Preprocessing = Preprocessing(), allowUnused: Bool = false, output: String) {
        self.input = input; self.backbone = backbone; self.convention = convention; self.nameMap = nameMap
        self.metric = metric; self.imageSize = imageSize; self.preprocessing = preprocessing
        self.allowUnused = allowUnused; self.output = output
    }

    /// - Throws: `MMLError(.config)` naming the field.
    public func validate() throws {
        if input.isEmpty { throw MMLError(.config, "`input` is empty; give the safetensors file to import") }
        if output.isEmpty { throw MMLError(.config, "`output` is empty; give the checkpoint to write") }
        if let s = imageSize, s < 1 || s > 4096 {
            throw MMLError(.config, "`imageSize` \(s) is out of range 1...4096")
        }
        if let metric, metric.way < 1 {
            throw MMLError(.invalidArgument, "`way` \(metric.way) of the attached metric must be at least 1")
        }
        if nameMap != nil && convention != .auto {
            throw MMLError(.config, "give either `nameMap` or `convention` \(convention.rawValue), not both")
        }
        try metric?.validate()
    }
}

/// What `TorchImportRun` did; encoded it is `mml import --json`.
public struct TorchImportResult: Codable, Sendable {
    /// One imported tensor.
    public struct Mapping: Codable, Sendable, Equatable {
        /// The name in the file (with its prefix).
        public var source: String
        /// The mml name.
        public var target: String
        /// The file's dtype (converted to F32).
        public var dtype: String
        public var shape: [Int]
    }

    public var input: String
    public var output: String
    /// The convention used (`dn4`, `mml`, `libfewshot`, `protonet`) or `name-map`.
    public var convention: String
    /// The prefix the file's names carry (`module.`, `emb_func.`, ...), empty when none.
    public var prefix: String
    /// The written checkpoint's configuration.
    public var model: ModelConfiguration
    /// Every tensor copied, in mml's order.
    public var mapped: [Mapping]
    /// Convolution biases folded into the next BatchNorm's running mean (mml's convolutions before BatchNorm have
    /// none; `BN(conv(x) + b)` equals BN with running mean `mu - b`).
    public var foldedBiases: [String]
    /// Where the learned fusion came from: `imported (...)`, `defaults (...)` or `none`.
    public var fusion: String
    /// Tensors skipped on purpose (BatchNorm's `num_batches_tracked`).
    public var ignored: [String]
    /// Tensors nothing mapped (allowed only with `allowUnused`).
    public var unused: [String]

    enum CodingKeys: String, CodingKey {
        case input, output, convention, prefix, model, mapped, fusion, ignored, unused
        case foldedBiases = "folded_biases"
    }
}

/// Turns a PyTorch Conv-64F / Conv-4 / ResNet-12 `state_dict` (safetensors) into an mml checkpoint, so a model
/// trained in PyTorch gets mml's episodes, intervals, protocols and ablations (docs/IMPORT.md).
///
/// Names come from a built-in convention (DN4, the official MML code, LibFewShot, ProtoNet; `auto` finds which) or
/// a JSON name map; a missing tensor, a wrong shape or an unusable dtype is an error naming the tensor; tensors
/// nothing maps are refused unless `allowUnused`. PyTorch's conv weight layout (out, in, kh, kw) is mml's.
/// BatchNorm running statistics come along; conv biases are folded into them. The official MML fusion layer
/// (`classifier.Norm_layer` + `classifier.FC_layer`) becomes mml's per-position learned fusion, exactly.
///
/// Events: `started` (facts `input`, `backbone`, `convention`), `warning` for unused tensors, `wrote`.
public final class TorchImportRun: ConfiguredRun<TorchImportConfiguration> {
    /// Imports and writes the checkpoint. - Throws: `MMLError` naming the file, the tensor and what to do.
    public func run(events: (RunEvent) -> Void = { _ in }) throws -> TorchImportResult {
        let c = configuration
        // Checks before work: the checkpoint's directory is writable (created if missing) and has room for it.
        try OutputCheck.prepare(file: c.output, field: "output",
                                bytesNeeded: Int64((try? FileManager.default.attributesOfItem(atPath: c.input)[.size])
                                                    as? Int ?? 0))
        let file = try TorchStateDict(contentsOf: c.input)
        let names = Set(file.entries.map(\.name))

        // 1. mml name -> source name
        let (table, convention, prefix) = try resolveNames(file: file, names: names)
        func source(_ target: String) -> String? { table[target].map { prefix + $0 } }

        // 2. the architecture's sizes, from the first convolution of each block
        let firstConv = c.backbone == .resnet12 ? "conv1" : "conv"
        var widths: [Int] = [], inputChannels = 0
        for i in 1...4 {
            let target = "backbone.block\(i).\(firstConv).weight"
            guard let s = source(target), let e = file.entry(s) else {
                throw MMLError(.invalidArgument, "\(c.input): the \(c.backbone.rawValue) weight '\(target)' maps to "
                               + "'\(source(target) ?? "nothing")', which is not in the file; check `backbone` and "
                               + "`convention`, or give a `nameMap`")
            }
            guard e.shape.count == 4 else {
                throw MMLError(.invalidArgument, "\(c.input): tensor '\(s)' (mml '\(target)') has shape \(e.shape); a "
                               + "convolution weight is (out, in, kh, kw)")
            }
            widths.append(e.shape[0])
            if i == 1 { inputChannels = e.shape[1] }
        }
        guard inputChannels == 1 || inputChannels == 3 else {
            throw MMLError(.invalidArgument, "\(c.input): the first convolution takes \(inputChannels) input channels; "
                           + "mml's backbones take 1 (grey) or 3 (colour)")
        }

        // 3. the fusion in the file (official MML code), if any
        let norm = prefix + TorchNameConvention.mmlFusionNames.norm, fc = prefix + TorchNameConvention.mmlFusionNames.fc
        let fileHasFusion = c.nameMap == nil && names.contains(norm + ".weight") && names.contains(fc)
        var metric = c.metric
        var fusionNote = metric == nil ? "none (no metric attached)" : "defaults (weights 1, statistics 0 / 1)"
        var useFileFusion = false
        if fileHasFusion, var m = metric {
            guard let e = file.entry(norm + ".running_mean"), e.shape.count == 1, e.shape[0] % 3 == 0, e.shape[0] > 0 else {
                throw MMLError(.invalidArgument, "\(c.input): '\(norm).running_mean' must be a vector of 3 x way "
                               + "values (BatchNorm1d over the [kl, pixel, part] scores)")
            }
            if m.levels.count == 3 && m.fusion == .learned {
                m.fusionNormalization = .perPosition
                m.way = e.shape[0] / 3
                metric = m
                useFileFusion = true
            } else if !c.allowUnused {
                throw MMLError(.invalidArgument, "\(c.input) holds the official MML fusion layer over 3 levels, but the "
                               + "attached metric has `levels` \(m.levels.map(\.rawValue).joined(separator: ",")) with "
                               + "\(m.fusion.rawValue) fusion; attach all three levels with learned fusion, or pass "
                               + "`allowUnused` to start the fusion from its defaults")
            }
        }

        // 4. the model
        let defaultWidths = BackboneConfiguration(kind: c.backbone).resolvedWidths
        var image = ImageConfig(size: c.imageSize ?? 84, channels: inputChannels,
                                mean: inputChannels == 3 ? ImageConfig.imagenetMean : [0],
                                std: inputChannels == 3 ? ImageConfig.imagenetStd : [1])
        image = try c.preprocessing.applied(to: image)
        let config = ModelConfiguration(kind: "imported", backbone: c.backbone, inputChannels: inputChannels,
                                        widths: widths == defaultWidths ? nil : widths, initialization: .mml, seed: 0,
                                        image: image, metric: metric)
        let model = try FewShotModel(config, threads: 1)

        // 5. the backbone's tensors
        var used = Set<String>(), mapped: [TorchImportResult.Mapping] = [], missing: [String] = []
        var values: [(Parameter, Tensor)] = []
        for (target, p) in model.backbone.namedParameters(prefix: "backbone") {
            guard let s = source(target), names.contains(s) else {
                missing.append("'\(source(target) ?? "?")' (mml '\(target)')")
                continue
            }
            let e = file.entry(s)!
            guard e.shape == p.value.shape else {
                throw MMLError(.invalidArgument, "\(c.input): tensor '\(s)' (mml '\(target)') has shape \(e.shape), the "
                               + "\(c.backbone.rawValue) with widths \(widths) expects \(p.value.shape); check "
                               + "`backbone` and the name mapping")
            }
            values.append((p, try file.floatTensor(s)))
            used.insert(s)
            mapped.append(.init(source: s, target: target, dtype: e.dtype, shape: e.shape))
        }
        if !missing.isEmpty {
            throw MMLError(.invalidArgument, "\(c.input): \(missing.count) tensor(s) of the \(c.backbone.rawValue) are "
                           + "missing from the file: \(missing.prefix(8).joined(separator: ", "))"
                           + (missing.count > 8 ? ", ..." : "") + "; check `backbone` and `convention`, or give a "
                           + "`nameMap` (mml import --list-names shows the names)")
        }
        for (p, v) in values { p.value = v }

        // 6. conv biases folded into the next BatchNorm: BN(z + b) with mean mu is BN(z) with mean mu - b
        var folded: [String] = []
        let own = Dictionary(uniqueKeysWithValues: model.backbone.namedParameters(prefix: "backbone")
            .map { ($0.name, $0.parameter) })
        for (target, src) in table.sorted(by: { $0.key < $1.key }) where target.hasSuffix(".bias") {
            guard let convName = Self.convName(ofBias: target), own[target] == nil else { continue }
            let s = prefix + src
            guard names.contains(s) else { continue }
            guard let meanName = Self.batchNormMean(afterConv: convName), let mean = own[meanName],
                  own[convName + ".weight"] != nil else {
                throw MMLError(.invalidArgument, "\(c.input): '\(target)' names no convolution followed by a "
                               + "BatchNorm in the \(c.backbone.rawValue)")
            }
            let e = file.entry(s)!
            guard e.shape == mean.value.shape else {
                throw MMLError(.invalidArgument, "\(c.input): bias '\(s)' (mml '\(target)') has shape \(e.shape), "
                               + "expected \(mean.value.shape)")
            }
            let b = try file.floatTensor(s)
            for i in 0..<b.count { mean.value.data[i] -= b.data[i] }
            used.insert(s)
            folded.append(s)
            mapped.append(.init(source: s, target: target + " (folded into \(meanName))", dtype: e.dtype, shape: e.shape))
        }

        // 7. the fusion
        if let metric = model.metric, metric.fixedFusion == nil {
            if useFileFusion {
                try importOfficialFusion(file: file, norm: norm, fc: fc, into: metric.fusion, levels: metric.levels)
                for n in [norm + ".weight", norm + ".bias", norm + ".running_mean", norm + ".running_var", fc] {
                    used.insert(n)
                    let e = file.entry(n)!
                    mapped.append(.init(source: n, target: "fusion", dtype: e.dtype, shape: e.shape))
                }
                fusionNote = "imported from the official MML fusion layer (\(norm), \(fc)) as per-position fusion, "
                    + "way \(metric.fusion.way)"
            } else if c.nameMap != nil {
                var n = 0
                var fusionParameters: [(String, Parameter)] = []
                metric.fusion.visitParameters(prefix: "fusion") { fusionParameters.append(($0, $1)) }
                for (target, p) in fusionParameters {
                    guard let src = table[target] else { continue }
                    guard let e = file.entry(src) else {
                        throw MMLError(.invalidArgument, "\(c.input): the name map's '\(src)' (mml '\(target)') is "
                                       + "not in the file")
                    }
                    guard e.shape.reduce(1, *) == p.value.count else {
                        throw MMLError(.invalidArgument, "\(c.input): tensor '\(src)' (mml '\(target)') has shape "
                                       + "\(e.shape), the fusion expects \(p.value.count) values")
                    }
                    p.value = Tensor(shape: p.value.shape, data: try file.floatTensor(src).data)
                    used.insert(src)
                    mapped.append(.init(source: src, target: target, dtype: e.dtype, shape: e.shape))
                    n += 1
                }
                if n > 0 { fusionNote = "imported from the name map (\(n) tensor(s))" }
            }
        }

        // 8. what was left
        let ignored = file.entries.map(\.name).filter { $0.hasSuffix("num_batches_tracked") && !used.contains($0) }
        let unused = file.entries.map(\.name).filter { !used.contains($0) && !ignored.contains($0) }
        if !unused.isEmpty {
            let list = unused.prefix(10).map { "'\($0)'" }.joined(separator: ", ") + (unused.count > 10 ? ", ..." : "")
            guard c.allowUnused else {
                throw MMLError(.invalidArgument, "\(c.input): \(unused.count) tensor(s) map to nothing in the "
                               + "\(c.backbone.rawValue): \(list); pass `allowUnused` to import without them")
            }
            events(.warning("\(unused.count) tensor(s) of \(c.input) were not imported: \(list)"))
        }
        events(.started(run: "import", facts: [
            ("input", "\(c.input) (\(file.entries.count) tensors)"),
            ("backbone", "\(c.backbone.rawValue), \(inputChannels) input channel(s), widths \(widths)"),
            ("convention", convention + (prefix.isEmpty ? "" : " (prefix '\(prefix)')")),
            ("metric", metric?.summary ?? "none"),
            ("fusion", fusionNote),
        ]))
        try Checkpoint.save(model, to: c.output)
        events(.wrote(path: c.output, what: "checkpoint"))
        return TorchImportResult(input: c.input, output: c.output, convention: convention, prefix: prefix,
                                 model: config, mapped: mapped, foldedBiases: folded, fusion: fusionNote,
                                 ignored: ignored, unused: unused)
    }

    /// The mml -> source name table, the convention's name and the file's prefix.
    private func resolveNames(file: TorchStateDict, names: Set<String>) throws
        -> (table: [String: String], convention: String, prefix: String) {
        let c = configuration
        if let path = c.nameMap { return (try Self.readNameMap(path), "name-map", "") }
        let candidates: [TorchNameConvention] = c.convention == .auto ? [.dn4, .libfewshot, .protonet] : [c.convention]
        var found: [(TorchNameConvention, [String: String], String)] = []
        var reasons: [String] = []
        for conv in candidates {
            guard let list = conv.backboneNames(c.backbone) else {
                if c.convention != .auto {
                    throw MMLError(.invalidArgument, "`convention` \(conv.rawValue) has no \(c.backbone.rawValue) "
                                   + "names (that code base names only its Conv-64F / Conv-4); use `convention` "
                                   + "libfewshot or a `nameMap`")
                }
                continue
            }
            let required = list.filter { !$0.target.hasSuffix("conv.bias") }
            let first = required[0].source
            let prefixes = names.compactMap { n -> String? in
                guard n == first || n.hasSuffix("." + first) else { return nil }
                return String(n.dropLast(first.count))
            }
            guard prefixes.count == 1, let prefix = prefixes.first else {
                if prefixes.count > 1 {
                    throw MMLError(.invalidArgument, "\(c.input): '\(first)' appears under several prefixes "
                                   + "(\(prefixes.sorted().map { "'\($0)'" }.joined(separator: ", "))); give a "
                                   + "`nameMap` naming the tensors to import")
                }
                if c.convention != .auto {
                    throw MMLError(.invalidArgument, "\(c.input): the \(c.backbone.rawValue) tensors in the "
                                   + "\(conv.rawValue) convention are missing: "
                                   + required.prefix(4).map { "'\($0.source)'" }.joined(separator: ", ")
                                   + ", ...; check `backbone` and `convention`, or give a `nameMap`")
                }
                reasons.append("\(conv.rawValue): no '\(first)'")
                continue
            }
            let absent = required.filter { !names.contains(prefix + $0.source) }.map { prefix + $0.source }
            if !absent.isEmpty {
                reasons.append("\(conv.rawValue): no " + absent.prefix(3).map { "'\($0)'" }.joined(separator: ", ")
                               + (absent.count > 3 ? " (\(absent.count) missing)" : ""))
                if c.convention != .auto {
                    throw MMLError(.invalidArgument, "\(c.input): \(absent.count) tensor(s) of the "
                                   + "\(c.backbone.rawValue) in the \(conv.rawValue) convention are missing: "
                                   + absent.prefix(8).map { "'\($0)'" }.joined(separator: ", ")
                                   + (absent.count > 8 ? ", ..." : "") + "; check `backbone` and `convention`, or "
                                   + "give a `nameMap`")
                }
                continue
            }
            found.append((conv, Dictionary(uniqueKeysWithValues: list.map { ($0.target, $0.source) }), prefix))
        }
        guard found.count == 1, let (conv, table, prefix) = found.first else {
            if found.isEmpty {
                throw MMLError(.invalidArgument, "\(c.input): no built-in convention names this "
                               + "\(c.backbone.rawValue) (\(reasons.joined(separator: "; "))); check `backbone`, or "
                               + "give a `nameMap`")
            }
            throw MMLError(.invalidArgument, "\(c.input): the names fit several conventions ("
                           + found.map(\.0.rawValue).joined(separator: ", ") + "); choose one with `convention`")
        }
        var name = conv.rawValue
        if conv == .dn4 && c.convention == .auto && names.contains(prefix + TorchNameConvention.mmlFusionNames.fc) {
            name = TorchNameConvention.mml.rawValue
        }
        return (table, name, prefix)
    }

    /// The official MML fusion as mml's per-position fusion. The official logit of class c is
    ///     sum_o w_o (gamma_oc (x_oc - mu_oc) / sqrt(var_oc + eps) + beta_oc),  o in [kl, pixel, part]
    /// (BatchNorm1d over the concatenated scores, then Conv1d(kernel 3, dilation way)). mml's is
    ///     sum_l w'_l (x_lc - mu'_lc) / sqrt(var'_lc + eps),
    /// equal for w'_l = w_l sign(gamma), mu' = mu - beta sqrt(var + eps) / gamma, var' = (var + eps) / gamma^2 - eps,
    /// which needs gamma != 0 and one sign of gamma per level.
    private func importOfficialFusion(file: TorchStateDict, norm: String, fc: String, into fusion: LearnedFusion,
                                      levels: [MetricLevel]) throws {
        let path = configuration.input
        let gamma = try file.floatTensor(norm + ".weight").data, beta = try file.floatTensor(norm + ".bias").data
        let mu = try file.floatTensor(norm + ".running_mean").data, variance = try file.floatTensor(norm + ".running_var").data
        let w = try file.floatTensor(fc).data
        let way = fusion.way, eps = fusion.eps
        guard gamma.count == 3 * way, beta.count == 3 * way, variance.count == 3 * way, w.count == 3 else {
            throw MMLError(.invalidArgument, "\(path): the MML fusion tensors do not fit 3 levels x way \(way) "
                           + "('\(norm).*' need \(3 * way) values, '\(fc)' 3)")
        }
        var weights = [Float](repeating: 0, count: 3)
        var mean = [Float](repeating: 0, count: 3 * way), vars = [Float](repeating: 1, count: 3 * way)
        for (l, level) in levels.enumerated() {
            let o = level == .distribution ? 0 : level == .pixel ? 1 : 2
            let signs = Set((0..<way).map { gamma[o * way + $0] > 0 })
            guard !(0..<way).contains(where: { gamma[o * way + $0] == 0 || !gamma[o * way + $0].isFinite }),
                  signs.count == 1 else {
                throw MMLError(.invalidArgument, "\(path): '\(norm).weight' for the \(level.rawValue) level has a zero "
                               + "or mixed-sign scale (\(Array(gamma[(o * way)..<(o * way + way)]))); mml's fusion "
                               + "cannot represent it exactly")
            }
            let sign: Float = signs.first! ? 1 : -1
            weights[l] = w[o] * sign
            for cl in 0..<way {
                let i = o * way + cl
                let sd = (Double(variance[i]) + Double(eps)).squareRoot()
                let g = Double(gamma[i])
                mean[l * way + cl] = Float(Double(mu[i]) - Double(beta[i]) * sd / g)
                vars[l * way + cl] = Float((Double(variance[i]) + Double(eps)) / (g * g) - Double(eps))
            }
        }
        fusion.weights = weights
        fusion.runningMean = mean
        fusion.runningVar = vars
    }
}

import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// `TorchImportRun`: every built-in convention, name maps, dtypes, bias folding, the official MML fusion, and every
/// user-facing error; an imported Conv-64F against a naive double-precision forward.
final class TorchImportTests: XCTestCase {
    // MARK: synthetic state_dicts

    /// A raw safetensors file with tensors in any dtype (the repo's writer writes F32 only).
    static func writeRaw(_ tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])], to path: String) throws {
        var header: [String] = [], offset = 0
        for t in tensors {
            header.append("\"\(t.name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
            offset += t.bytes.count
        }
        var h = Array(("{" + header.joined(separator: ",") + "}").utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out: [UInt8] = []
        for k in 0..<8 { out.append(UInt8((UInt64(h.count) >> (8 * UInt64(k))) & 0xFF)) }
        out += h
        for t in tensors { out += t.bytes }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    static func f32Bytes(_ v: [Float]) -> [UInt8] { v.flatMap { x in (0..<4).map { UInt8((x.bitPattern >> (8 * UInt32($0))) & 0xFF) } } }

    /// Conv-64F / Conv-4 tensors with `names(block) -> (conv, bn)` source prefixes; conv biases when `bias`.
    /// Returns the tensors by source name.
    static func convNetState(widths: [Int], inputChannels: Int, seed: UInt64, bias: Bool,
                             names: (Int) -> (conv: String, bn: String)) -> [(String, Tensor)] {
        var rng = TestRNG(seed: seed)
        var out: [(String, Tensor)] = []
        var c = inputChannels
        for (i, w) in widths.enumerated() {
            let (conv, bn) = names(i + 1)
            out.append((conv + ".weight", Tensor(shape: [w, c, 3, 3], data: rng.normals(w * c * 9, scale: 0.3))))
            if bias { out.append((conv + ".bias", rng.tensor([w], scale: 0.2))) }
            out.append((bn + ".weight", rng.tensor([w], scale: 0.3, offset: 1)))
            out.append((bn + ".bias", rng.tensor([w], scale: 0.2)))
            out.append((bn + ".running_mean", rng.tensor([w], scale: 0.3)))
            out.append((bn + ".running_var", rng.tensor([w], scale: 0.4, offset: 1)))
            c = w
        }
        return out
    }

    static let dn4Names: (Int) -> (conv: String, bn: String) = { i in
        let idx = [0, 4, 8, 11][i - 1]
        return ("features.\(idx)", "features.\(idx + 1)")
    }

    func write(_ tensors: [(String, Tensor)], extra: [(String, String, [Int], [UInt8])] = [], _ name: String) throws -> String {
        let dir = try makeTempDir(self, prefix: "mml-import")
        let path = dir + "/" + name
        try Self.writeRaw(tensors.map { ($0.0, "F32", $0.1.shape, Self.f32Bytes($0.1.data)) }
                          + extra.map { ($0.0, $0.1, $0.2, $0.3) }, to: path)
        return path
    }

    func importFile(_ path: String, backbone: BackboneKind = .conv64F, convention: TorchNameConvention = .auto,
                    nameMap: String? = nil, metric: MetricConfiguration? = nil, allowUnused: Bool = false,
                    imageSize: Int? = 20) throws -> (TorchImportResult, Checkpoint.Loaded) {
        let out = (path as NSString).deletingLastPathComponent + "/imported-\(UUID().uuidString).safetensors"
        let r = try TorchImportRun(TorchImportConfiguration(
            input: path, backbone: backbone, convention: convention, nameMap: nameMap, metric: metric,
            imageSize: imageSize, allowUnused: allowUnused, output: out)).run()
        return (r, try Checkpoint.load(out, threads: 1))
    }

    func assertThrows(_ body: () throws -> Void, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("expected an error containing '\(message)'", file: file, line: line)
        } catch let e as MMLError {
            XCTAssertTrue(e.message.contains(message), "'\(e.message)' lacks '\(message)'", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    // MARK: a naive double-precision Conv-64F / Conv-4

    /// conv3x3 (padding 1, optional bias) -> BatchNorm (eval, eps 1e-5) -> LeakyReLU(slope) -> optional 2x2 max-pool.
    static func referenceForward(_ x: [Double], n: Int, c: Int, h: Int, w: Int, state: [String: Tensor],
                                 names: (Int) -> (conv: String, bn: String), slope: Double,
                                 pools: [Bool]) -> (data: [Double], shape: [Int]) {
        var cur = x, (C, H, W) = (c, h, w)
        for block in 1...4 {
            let (conv, bn) = names(block)
            let wt = state[conv + ".weight"]!, co = wt.shape[0]
            let b = state[conv + ".bias"]
            let g = state[bn + ".weight"]!.data, be = state[bn + ".bias"]!.data
            let mu = state[bn + ".running_mean"]!.data, va = state[bn + ".running_var"]!.data
            var y = [Double](repeating: 0, count: n * co * H * W)
            for img in 0..<n {
                for o in 0..<co {
                    for i in 0..<H {
                        for j in 0..<W {
                            var s = Double(b?.data[o] ?? 0)
                            for ci in 0..<C {
                                for di in 0..<3 {
                                    for dj in 0..<3 {
                                        let ii = i + di - 1, jj = j + dj - 1
                                        guard ii >= 0, ii < H, jj >= 0, jj < W else { continue }
                                        s += Double(wt.data[((o * C + ci) * 3 + di) * 3 + dj])
                                            * cur[((img * C + ci) * H + ii) * W + jj]
                                    }
                                }
                            }
                            var v = Double(g[o]) * (s - Double(mu[o])) / (Double(va[o]) + 1e-5).squareRoot() + Double(be[o])
                            if v < 0 { v *= slope }
                            y[((img * co + o) * H + i) * W + j] = v
                        }
                    }
                }
            }
            C = co
            if pools[block - 1] {
                let (h2, w2) = (H / 2, W / 2)
                var p = [Double](repeating: 0, count: n * C * h2 * w2)
                for img in 0..<n {
                    for ch in 0..<C {
                        for i in 0..<h2 {
                            for j in 0..<w2 {
                                var m = -Double.infinity
                                for di in 0..<2 { for dj in 0..<2 { m = max(m, y[((img * C + ch) * H + 2 * i + di) * W + 2 * j + dj]) } }
                                p[((img * C + ch) * h2 + i) * w2 + j] = m
                            }
                        }
                    }
                }
                (cur, H, W) = (p, h2, w2)
            } else {
                cur = y
            }
        }
        return (cur, [n, C, H, W])
    }

    // MARK: conventions and the reference forward

    func testDN4Conv64FFeaturesMatchNaiveReference() throws {
        let widths = [16, 12, 16, 20]
        let state = Self.convNetState(widths: widths, inputChannels: 3, seed: 1, bias: false, names: Self.dn4Names)
        let bnCounters = [1, 5, 9, 12].map { ("features.\($0).num_batches_tracked", "I64", [Int](), [UInt8](repeating: 0, count: 8)) }
        let path = try write(state, extra: bnCounters, "dn4.safetensors")
        let (r, loaded) = try importFile(path)
        XCTAssertEqual(r.convention, "dn4")
        XCTAssertEqual(r.prefix, "")
        XCTAssertEqual(r.ignored.count, 4)
        XCTAssertEqual(r.unused, [])
        XCTAssertEqual(r.model.widths, widths)
        XCTAssertEqual(r.model.kind, "imported")
        XCTAssertEqual(r.mapped.count, 20)
        var rng = TestRNG(seed: 9)
        let x = rng.tensor([2, 3, 20, 20])
        let f = try loaded.model.features(x)
        let ref = Self.referenceForward(x.data.map(Double.init), n: 2, c: 3, h: 20, w: 20,
                                        state: Dictionary(uniqueKeysWithValues: state), names: Self.dn4Names, slope: 0.2,
                                        pools: [true, true, false, false])
        XCTAssertEqual(f.shape, ref.shape)
        assertClose(f.data, ref.data, atol: 1e-4, rtol: 1e-4, "imported Conv-64F features")
    }

    func testLibFewShotConv4WithBiasesAndPrefixMatchesReference() throws {
        let names: (Int) -> (conv: String, bn: String) = { ("emb_func.layer\($0).0", "emb_func.layer\($0).1") }
        let state = Self.convNetState(widths: [8, 8, 8, 8], inputChannels: 1, seed: 2, bias: true, names: names)
        let path = try write(state, "lfs.safetensors")
        let (r, loaded) = try importFile(path, backbone: .conv4, imageSize: 28)
        XCTAssertEqual(r.convention, "libfewshot")
        XCTAssertEqual(r.prefix, "emb_func.")
        XCTAssertEqual(r.foldedBiases.count, 4)
        XCTAssertEqual(r.model.inputChannels, 1)
        XCTAssertEqual(r.model.image.mean, [0])
        var rng = TestRNG(seed: 3)
        let x = rng.tensor([2, 1, 16, 16])
        let f = try loaded.model.features(x)
        let ref = Self.referenceForward(x.data.map(Double.init), n: 2, c: 1, h: 16, w: 16,
                                        state: Dictionary(uniqueKeysWithValues: state), names: names, slope: 0,
                                        pools: [true, true, true, true])
        XCTAssertEqual(f.shape, ref.shape)
        assertClose(f.data, ref.data, atol: 1e-4, rtol: 1e-4, "imported Conv-4 features (biases folded)")
    }

    func testProtoNetConventionAndExplicitChoice() throws {
        let names: (Int) -> (conv: String, bn: String) = { ("encoder.\($0 - 1).0", "encoder.\($0 - 1).1") }
        let state = Self.convNetState(widths: [8, 8, 8, 8], inputChannels: 1, seed: 4, bias: true, names: names)
        let path = try write(state, "protonet.safetensors")
        let (r, loaded) = try importFile(path, backbone: .conv4, convention: .protonet)
        XCTAssertEqual(r.convention, "protonet")
        XCTAssertEqual(loaded.model.backbone.namedParameters(prefix: "backbone").first { $0.name == "backbone.block2.conv.weight" }?
                        .parameter.value.data, state.first { $0.0 == "encoder.1.0.weight" }!.1.data)
        XCTAssertEqual(try importFile(path, backbone: .conv4).0.convention, "protonet")
    }

    func testLibFewShotResNet12NamesAndShapes() throws {
        let widths = [4, 6, 8, 10]
        var rng = TestRNG(seed: 5)
        var state: [(String, Tensor)] = []
        var c = 3
        for (i, w) in widths.enumerated() {
            let p = "layer\(i + 1).0"
            for k in 1...3 {
                state.append(("\(p).conv\(k).weight", rng.tensor([w, k == 1 ? c : w, 3, 3], scale: 0.3)))
                for f in ["weight", "bias", "running_mean"] { state.append(("\(p).bn\(k).\(f)", rng.tensor([w], scale: 0.2))) }
                state.append(("\(p).bn\(k).running_var", rng.tensor([w], scale: 0.2, offset: 1)))
            }
            state.append(("\(p).downsample.0.weight", rng.tensor([w, c, 1, 1], scale: 0.3)))
            for f in ["weight", "bias", "running_mean"] { state.append(("\(p).downsample.1.\(f)", rng.tensor([w], scale: 0.2))) }
            state.append(("\(p).downsample.1.running_var", rng.tensor([w], scale: 0.2, offset: 1)))
            c = w
        }
        let path = try write(state, "r12.safetensors")
        let (r, loaded) = try importFile(path, backbone: .resnet12)
        XCTAssertEqual(r.convention, "libfewshot")
        XCTAssertEqual(r.model.widths, widths)
        XCTAssertEqual(r.mapped.count, state.count)
        let own = Dictionary(uniqueKeysWithValues: loaded.model.namedParameters().map { ($0.name, $0.parameter.value.data) })
        XCTAssertEqual(own["backbone.block3.downsample.bn.running_var"], state.first { $0.0 == "layer3.0.downsample.1.running_var" }!.1.data)
        XCTAssertEqual(own["backbone.block4.conv2.weight"], state.first { $0.0 == "layer4.0.conv2.weight" }!.1.data)
        assertThrows({ _ = try self.importFile(path, backbone: .resnet12, convention: .dn4) }, "has no resnet12 names")
    }

    func testNameMapAndItsErrors() throws {
        let names: (Int) -> (conv: String, bn: String) = { ("net.c\($0)", "net.n\($0)") }
        let state = Self.convNetState(widths: [8, 8, 8, 8], inputChannels: 3, seed: 6, bias: false, names: names)
        let path = try write(state, "custom.safetensors")
        let dir = (path as NSString).deletingLastPathComponent
        var map: [String: String] = [:]
        for i in 1...4 {
            map["backbone.block\(i).conv.weight"] = "net.c\(i).weight"
            for f in ["weight", "bias", "running_mean", "running_var"] { map["backbone.block\(i).bn.\(f)"] = "net.n\(i).\(f)" }
        }
        let mapPath = dir + "/map.json"
        try JSONSerialization.data(withJSONObject: map).write(to: URL(fileURLWithPath: mapPath))
        let (r, loaded) = try importFile(path, nameMap: mapPath)
        XCTAssertEqual(r.convention, "name-map")
        XCTAssertEqual(loaded.model.namedParameters().first { $0.name == "backbone.block4.bn.running_mean" }!.parameter.value.data,
                       state.first { $0.0 == "net.n4.running_mean" }!.1.data)
        // without the map no convention fits
        assertThrows({ _ = try self.importFile(path) }, "no built-in convention names this conv64f")
        // a map missing one name
        map["backbone.block3.bn.running_var"] = nil
        try JSONSerialization.data(withJSONObject: map).write(to: URL(fileURLWithPath: mapPath))
        assertThrows({ _ = try self.importFile(path, nameMap: mapPath) }, "missing from the file: '?' (mml 'backbone.block3.bn.running_var')")
        // bad JSON, not an object, a non-string value, an unknown key, no file
        try Data("{\"backbone.block1.conv.weight\": ".utf8).write(to: URL(fileURLWithPath: mapPath))
        assertThrows({ _ = try self.importFile(path, nameMap: mapPath) }, "is not valid JSON")
        try Data("[1, 2]".utf8).write(to: URL(fileURLWithPath: mapPath))
        assertThrows({ _ = try self.importFile(path, nameMap: mapPath) }, "must be a JSON object")
        try Data("{\"backbone.block1.conv.weight\": 3}".utf8).write(to: URL(fileURLWithPath: mapPath))
        assertThrows({ _ = try self.importFile(path, nameMap: mapPath) }, "is not a string")
        try Data("{\"block1.conv.weight\": \"net.c1.weight\"}".utf8).write(to: URL(fileURLWithPath: mapPath))
        assertThrows({ _ = try self.importFile(path, nameMap: mapPath) }, "is not an mml tensor name")
        assertThrows({ _ = try self.importFile(path, nameMap: dir + "/none.json") }, "cannot be read")
        assertThrows({ _ = try self.importFile(path, convention: .dn4, nameMap: mapPath) }, "give either nameMap")
    }

    func testErrorsNameTheTensor() throws {
        var state = Self.convNetState(widths: [8, 8, 8, 8], inputChannels: 3, seed: 7, bias: false, names: Self.dn4Names)
        let good = try write(state, "good.safetensors")
        // file not found
        assertThrows({ _ = try self.importFile(good + ".nope") }, "cannot open safetensors file")
        // unknown convention (the CLI and config parse it with the core)
        XCTAssertThrowsError(try TorchNameConvention.parse("keras")) { e in
            XCTAssertTrue((e as! MMLError).message.contains("convention keras: use auto, dn4, mml, libfewshot or protonet"))
        }
        // a missing tensor, explicit convention
        let missing = try write(state.filter { $0.0 != "features.9.running_var" }, "missing.safetensors")
        assertThrows({ _ = try self.importFile(missing, convention: .dn4) }, "'features.9.running_var'")
        assertThrows({ _ = try self.importFile(missing) }, "dn4: no 'features.9.running_var'")
        // a wrong shape
        let i = state.firstIndex { $0.0 == "features.5.bias" }!
        state[i].1 = Tensor(shape: [9], repeating: 0)
        let badShape = try write(state, "shape.safetensors")
        assertThrows({ _ = try self.importFile(badShape) }, "tensor 'features.5.bias' (mml 'backbone.block2.bn.bias') has shape [9]")
        state[i].1 = Tensor(shape: [8], repeating: 0)
        // an unused tensor: refused, then allowed and listed
        let extra = try write(state + [("classifier.fc.weight", Tensor(shape: [5, 8], repeating: 1))], "extra.safetensors")
        assertThrows({ _ = try self.importFile(extra) }, "1 tensor(s) map to nothing in the conv64f: 'classifier.fc.weight'")
        var warnings: [String] = []
        let out = (extra as NSString).deletingLastPathComponent + "/allowed.safetensors"
        let r = try TorchImportRun(TorchImportConfiguration(input: extra, backbone: .conv64F, allowUnused: true, output: out))
            .run { if case .warning(let w) = $0 { warnings.append(w) } }
        XCTAssertEqual(r.unused, ["classifier.fc.weight"])
        XCTAssertEqual(warnings.count, 1)
        // an integer weight
        let intWeight = try write(state.filter { $0.0 != "features.0.weight" },
                                  extra: [("features.0.weight", "I32", [8, 3, 3, 3], [UInt8](repeating: 0, count: 8 * 27 * 4))],
                                  "int.safetensors")
        assertThrows({ _ = try self.importFile(intWeight) }, "tensor 'features.0.weight' has dtype I32")
        // an input of 2 channels
        let twoChannel = Self.convNetState(widths: [8, 8, 8, 8], inputChannels: 2, seed: 7, bias: false, names: Self.dn4Names)
        assertThrows({ _ = try self.importFile(try self.write(twoChannel, "two.safetensors")) }, "takes 2 input channels")
        // DataParallel's module. prefix twice under different prefixes is ambiguous
        let twice = try write(state + state.map { ("teacher." + $0.0, $0.1) }, "twice.safetensors")
        assertThrows({ _ = try self.importFile(twice, convention: .dn4) }, "appears under several prefixes")
    }

    func testHalfBFloatAndDoubleAreConverted() throws {
        let state = Self.convNetState(widths: [8, 8, 8, 8], inputChannels: 3, seed: 8, bias: false, names: Self.dn4Names)
        func f64(_ v: [Float]) -> [UInt8] { v.flatMap { x in (0..<8).map { UInt8((Double(x).bitPattern >> (8 * UInt64($0))) & 0xFF) } } }
        func bf16(_ v: [Float]) -> [UInt8] { v.flatMap { x -> [UInt8] in let b = x.bitPattern >> 16; return [UInt8(b & 0xFF), UInt8(b >> 8)] } }
        // exact halves: k / 64 for small k
        let halfValues: [Float] = (0..<8).map { Float($0 - 3) / 64 }
        func f16(_ v: [Float]) -> [UInt8] {
            v.flatMap { x -> [UInt8] in
                // encode exactly representable values by hand: sign, exponent, mantissa
                if x == 0 { return [0, 0] }
                let s: UInt16 = x < 0 ? 0x8000 : 0
                let a = abs(x), e = Int(floor(log2(a)))
                let m = UInt16(((a / pow(2, Float(e))) - 1) * 1024)
                let bits = s | UInt16(e + 15) << 10 | m
                return [UInt8(bits & 0xFF), UInt8(bits >> 8)]
            }
        }
        var tensors = state.map { ($0.0, "F32", $0.1.shape, Self.f32Bytes($0.1.data)) }
        let bf = state.first { $0.0 == "features.0.weight" }!.1.data.map { Float(bitPattern: $0.bitPattern & 0xFFFF_0000) }
        tensors = tensors.map { t -> (String, String, [Int], [UInt8]) in
            switch t.0 {
            case "features.0.weight": return (t.0, "BF16", t.2, bf16(bf))
            case "features.1.running_mean": return (t.0, "F16", t.2, f16(halfValues))
            case "features.5.running_var": return (t.0, "F64", t.2, f64(state.first { $0.0 == t.0 }!.1.data))
            default: return t
            }
        }
        let dir = try makeTempDir(self, prefix: "mml-import-dtypes")
        let path = dir + "/mixed.safetensors"
        try Self.writeRaw(tensors.map { (name: $0.0, dtype: $0.1, shape: $0.2, bytes: $0.3) }, to: path)
        let (r, loaded) = try importFile(path)
        XCTAssertEqual(Set(r.mapped.map(\.dtype)), ["F32", "F16", "BF16", "F64"])
        let own = Dictionary(uniqueKeysWithValues: loaded.model.namedParameters().map { ($0.name, $0.parameter.value.data) })
        XCTAssertEqual(own["backbone.block1.conv.weight"], bf)
        XCTAssertEqual(own["backbone.block1.bn.running_mean"], halfValues)
        XCTAssertEqual(own["backbone.block2.bn.running_var"], state.first { $0.0 == "features.5.running_var" }!.1.data)
    }

    func testOfficialMMLFusionImportsExactly() throws {
        let way = 5
        var rng = TestRNG(seed: 10)
        var state = Self.convNetState(widths: [8, 8, 8, 8], inputChannels: 3, seed: 11, bias: false, names: Self.dn4Names)
        // gamma positive for kl and part, negative for pixel (one sign per level)
        let gamma = (0..<(3 * way)).map { i -> Float in (i / way == 1 ? -1 : 1) * (0.5 + Float(rng.uniform())) }
        let beta = rng.floats(3 * way), mu = rng.floats(3 * way)
        let variance = (0..<(3 * way)).map { _ in 0.2 + Float(rng.uniform()) * 2 }
        let w = rng.floats(3)
        state += [("classifier.Norm_layer.weight", Tensor(shape: [3 * way], data: gamma)),
                  ("classifier.Norm_layer.bias", Tensor(shape: [3 * way], data: beta)),
                  ("classifier.Norm_layer.running_mean", Tensor(shape: [3 * way], data: mu)),
                  ("classifier.Norm_layer.running_var", Tensor(shape: [3 * way], data: variance)),
                  ("classifier.FC_layer.weight", Tensor(shape: [1, 1, 3], data: w))]
        let path = try write(state, extra: [("classifier.Norm_layer.num_batches_tracked", "I64", [], [UInt8](repeating: 0, count: 8))],
                             "mml.safetensors")
        // without a metric the fusion tensors are unused
        assertThrows({ _ = try self.importFile(path) }, "map to nothing")
        // with fewer levels: refused, naming the levels
        assertThrows({ _ = try self.importFile(path, metric: MetricConfiguration(levels: [.pixel])) },
                     "holds the official MML fusion layer over 3 levels")
        let (r, loaded) = try importFile(path, metric: MetricConfiguration(partForm: .channels, distance: .klClassQuery))
        XCTAssertEqual(r.convention, "mml")
        XCTAssertTrue(r.fusion.hasPrefix("imported"), r.fusion)
        XCTAssertEqual(r.unused, [])
        let metric = try XCTUnwrap(loaded.model.metric)
        XCTAssertEqual(metric.fusion.normalization, .perPosition)
        // the official logits of random level scores against mml's fusion on the same scores
        let q = 4
        var scores: [MetricLevel: [Double]] = [:]
        for l in MetricLevel.allCases { scores[l] = (0..<(q * way)).map { _ in rng.normal() * 3 } }
        var official = [Double](repeating: 0, count: q * way)
        for i in 0..<q {
            for c in 0..<way {
                for (o, level) in [MetricLevel.distribution, .pixel, .part].enumerated() {
                    let k = o * way + c, x = scores[level]![i * way + c]
                    let bn = Double(gamma[k]) * (x - Double(mu[k])) / (Double(variance[k]) + 1e-5).squareRoot() + Double(beta[k])
                    official[i * way + c] += Double(w[o]) * bn
                }
            }
        }
        var fusion = metric.fusion
        let input = metric.levels.map { l in Tensor(shape: [q, way], data: scores[l]!.map(Float.init)) }
        let (logits, _) = fusion.forward(input, training: false)
        assertClose(logits.data, official, atol: 1e-4, rtol: 1e-4, "fusion logits vs the official MML layer")
    }
}

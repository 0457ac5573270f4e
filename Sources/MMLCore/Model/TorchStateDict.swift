import Foundation

/// A PyTorch `state_dict` saved as safetensors (`safetensors.torch.save_file(model.state_dict(), path)`), read as
/// float tensors: F32 as is, F64 / F16 / BF16 converted to F32. Integer tensors (BatchNorm's `num_batches_tracked`)
/// are listed but not converted.
public struct TorchStateDict {
    /// The file's tensors, by name, in header order.
    public let entries: [Safetensors.Entry]
    let contents: Safetensors.Contents
    /// The file, for error messages.
    public let path: String

    /// Reads `path`. - Throws: `MMLError(.fileNotFound / .io / .corruptFile)` naming the file.
    public init(contentsOf path: String) throws {
        contents = try Safetensors.read(contentsOf: path)
        entries = contents.entries
        self.path = path
    }

    /// The entry named `name`, if any.
    public func entry(_ name: String) -> Safetensors.Entry? { contents.entry(named: name) }

    /// The tensor named `name` as F32.
    /// - Throws: `MMLError(.unsupportedFormat)` naming the tensor for a dtype other than F32, F64, F16, BF16.
    public func floatTensor(_ name: String) throws -> Tensor {
        guard let e = contents.entry(named: name) else {
            throw MMLError(.invalidArgument, "\(path): no tensor named '\(name)'")
        }
        let n = e.shape.reduce(1, *)
        let bytes = contents.data[e.byteRange]
        var out = [Float](repeating: 0, count: n)
        func u16(_ i: Int) -> UInt16 { UInt16(bytes[bytes.startIndex + 2 * i]) | UInt16(bytes[bytes.startIndex + 2 * i + 1]) << 8 }
        func u32(_ i: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<4 { v |= UInt32(bytes[bytes.startIndex + 4 * i + k]) << (8 * UInt32(k)) }
            return v
        }
        switch e.dtype {
        case "F32": for i in 0..<n { out[i] = Float(bitPattern: u32(i)) }
        case "F64":
            for i in 0..<n {
                var v: UInt64 = 0
                for k in 0..<8 { v |= UInt64(bytes[bytes.startIndex + 8 * i + k]) << (8 * UInt64(k)) }
                out[i] = Float(Double(bitPattern: v))
            }
        case "BF16": for i in 0..<n { out[i] = Float(bitPattern: UInt32(u16(i)) << 16) }
        case "F16": for i in 0..<n { out[i] = Self.halfToFloat(u16(i)) }
        default:
            throw MMLError(.unsupportedFormat, "\(path): tensor '\(name)' has dtype \(e.dtype); weights must be "
                           + "F32, F64, F16 or BF16 (save them with tensor.float())")
        }
        return Tensor(shape: e.shape, data: out)
    }

    /// IEEE half to float (subnormals, infinities and NaN included).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign: UInt32 = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F), mant = UInt32(h & 0x3FF)
        if exp == 0 {
            // zero or subnormal: mant * 2^-24
            let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }
}

/// The tensor names of the PyTorch code bases `mml import` knows (docs/IMPORT.md has the tables and sources).
public enum TorchNameConvention: String, Codable, Sendable, CaseIterable, NamedChoice {
    /// Try the conventions below and take the one whose names are all in the file (`mml` when it also holds the
    /// official MML fusion layer).
    case auto
    /// DN4 (WenbinLee/DN4, `Conv_64F`): `features.0.weight` (conv), `features.1.*` (BatchNorm), ... an
    /// `nn.Sequential` with pools after blocks 1 and 2.
    case dn4
    /// The official MML code (chenhaoxing/M2L): DN4's `features.N` plus the fusion layer
    /// `classifier.Norm_layer.*` (BatchNorm1d over 3 x way scores) and `classifier.FC_layer.weight`.
    case mml
    /// LibFewShot (RL-VIG/LibFewShot): `Conv64F` as `layerN.0.*` (conv, with bias) / `layerN.1.*` (BatchNorm);
    /// `ResNet12` as `layerN.0.conv1.weight`, `layerN.0.bn1.*`, ..., `layerN.0.downsample.0/1.*`. A model's
    /// `emb_func.` prefix is found automatically.
    case libfewshot
    /// Prototypical Networks (jakesnell/prototypical-networks): `encoder.K.0.*` (conv, with bias) / `encoder.K.1.*`.
    case protonet

    /// The configuration field named in parse errors.
    public static let field = "convention"
}

/// One mml tensor and where its value comes from.
struct TorchSlot {
    /// The mml name (`backbone.block1.conv.weight`).
    let target: String
    /// The source name without the file's prefix.
    let source: String
}

extension TorchNameConvention {
    /// The source names of `kind`'s backbone tensors, mml name -> source name (conv biases, which mml folds into
    /// the following BatchNorm, as `backbone.blockN.conv.bias`). Nil when the convention has no names for `kind`.
    func backboneNames(_ kind: BackboneKind) -> [(target: String, source: String)]? {
        let bnFields = ["weight", "bias", "running_mean", "running_var"]
        var out: [(String, String)] = []
        func convBlock(_ i: Int, conv: String, bn: String) {
            out.append(("backbone.block\(i).conv.weight", conv + ".weight"))
            out.append(("backbone.block\(i).conv.bias", conv + ".bias"))
            for f in bnFields { out.append(("backbone.block\(i).bn.\(f)", bn + "." + f)) }
        }
        switch (self, kind) {
        case (.auto, _): return nil
        case (.dn4, .conv64F), (.mml, .conv64F), (.dn4, .conv4), (.mml, .conv4):
            // nn.Sequential(conv, bn, act, [pool], ...): pools after blocks 1-2 (Conv-64F) or 1-4 (Conv-4)
            var index = 0
            for i in 1...4 {
                convBlock(i, conv: "features.\(index)", bn: "features.\(index + 1)")
                index += (kind == .conv4 || i <= 2) ? 4 : 3
            }
        case (.libfewshot, .conv64F), (.libfewshot, .conv4):
            for i in 1...4 { convBlock(i, conv: "layer\(i).0", bn: "layer\(i).1") }
        case (.protonet, .conv64F), (.protonet, .conv4):
            for i in 1...4 { convBlock(i, conv: "encoder.\(i - 1).0", bn: "encoder.\(i - 1).1") }
        case (.libfewshot, .resnet12):
            for i in 1...4 {
                let p = "layer\(i).0"
                for k in 1...3 {
                    out.append(("backbone.block\(i).conv\(k).weight", "\(p).conv\(k).weight"))
                    for f in bnFields { out.append(("backbone.block\(i).bn\(k).\(f)", "\(p).bn\(k).\(f)")) }
                }
                out.append(("backbone.block\(i).downsample.conv.weight", "\(p).downsample.0.weight"))
                for f in bnFields { out.append(("backbone.block\(i).downsample.bn.\(f)", "\(p).downsample.1.\(f)")) }
            }
        case (.dn4, .resnet12), (.mml, .resnet12), (.protonet, .resnet12):
            return nil
        }
        return out
    }

    /// The official MML code's fusion tensors (BatchNorm1d over the concatenated [kl, pixel, part] scores, then
    /// Conv1d(1, 1, kernel 3, dilation way) without bias).
    static let mmlFusionNames = (norm: "classifier.Norm_layer", fc: "classifier.FC_layer.weight")
}

import Foundation

/// Name maps and the conv-bias / BatchNorm name rules of `TorchImportRun`.
extension TorchImportRun {
    /// Reads a name map: a JSON object of mml names to source names.
    /// - Throws: `MMLError` naming the file and what is wrong.
    static func readNameMap(_ path: String) throws -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MMLError(.fileNotFound, "name map \(path) cannot be read (no such file?); give a JSON file "
                           + "{\"backbone.block1.conv.weight\": \"<name in the state_dict>\", ...}")
        }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data) } catch {
            throw MMLError(.invalidArgument, "name map \(path) is not valid JSON (\(MMLError.describe(error))); "
                           + "give an object {\"<mml name>\": \"<name in the state_dict>\", ...}")
        }
        guard let object = json as? [String: Any] else {
            throw MMLError(.invalidArgument, "name map \(path) must be a JSON object {\"<mml name>\": \"<name in the "
                           + "state_dict>\", ...}")
        }
        var out: [String: String] = [:]
        for (k, v) in object {
            guard let s = v as? String else {
                throw MMLError(.invalidArgument, "name map \(path): the value of '\(k)' is not a string; map each mml "
                               + "name to one tensor name")
            }
            guard k.hasPrefix("backbone.") || k.hasPrefix("fusion.") else {
                throw MMLError(.invalidArgument, "name map \(path): '\(k)' is not an mml tensor name (they start with "
                               + "backbone. or fusion.; mml import --list-names shows them)")
            }
            out[k] = s
        }
        return out
    }

    /// `backbone.block1.conv` for `backbone.block1.conv.bias` (conv, convK and downsample.conv biases).
    static func convName(ofBias name: String) -> String? {
        guard name.hasSuffix(".bias") else { return nil }
        let base = String(name.dropLast(".bias".count))
        let last = base.split(separator: ".").last.map(String.init) ?? ""
        return last.hasPrefix("conv") ? base : nil
    }

    /// The running mean of the BatchNorm after a convolution: `...conv` -> `...bn`, `...convK` -> `...bnK`.
    static func batchNormMean(afterConv conv: String) -> String? {
        var parts = conv.split(separator: ".").map(String.init)
        guard let last = parts.last, last.hasPrefix("conv") else { return nil }
        parts[parts.count - 1] = "bn" + last.dropFirst(4)
        return parts.joined(separator: ".") + ".running_mean"
    }
}

extension TorchImportConfiguration {
    /// The mml tensor names of this configuration's model (what a name map's keys are), with their shapes, for a
    /// model of `inputChannels` and `widths` (nil: the architecture's own).
    public static func targetNames(backbone: BackboneKind, inputChannels: Int = 3,
                                   widths: [Int]? = nil) throws -> [(name: String, shape: [Int])] {
        let b = try makeBackbone(BackboneConfiguration(kind: backbone, inputChannels: inputChannels, widths: widths))
        return b.namedParameters(prefix: "backbone").map { ($0.name, $0.parameter.value.shape) }
    }
}

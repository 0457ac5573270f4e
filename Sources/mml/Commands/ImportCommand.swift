import ArgumentParser
import Foundation
import MMLCore

extension TorchNameConvention: ExpressibleByArgument {}

/// `mml import`: a PyTorch state_dict (safetensors) becomes an mml checkpoint (`TorchImportRun`).
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import a PyTorch Conv-64F / Conv-4 / ResNet-12 state_dict (safetensors) as an mml checkpoint.",
        discussion: """
            Save the weights in PyTorch with safetensors.torch.save_file(model.state_dict(), "model.safetensors"). \
            --convention auto finds which built-in names the file uses (dn4: DN4's and the official MML code's \
            features.N; libfewshot: layerN.0/.1 and ResNet12's layerN.0.convK; protonet: encoder.K.0/.1; a \
            module. or emb_func. prefix is found); --name-map FILE.json maps mml names to the file's names for other \
            code (mml import --list-names --backbone KIND prints mml's names). Widths and input channels are read \
            from the tensors. Metric flags (--levels, --pixel-k, ...) attach a metric; without them the checkpoint \
            is backbone-only (evaluate it with --protocol prototype, protonet or cosine-classifier). The official \
            MML fusion layer in the file becomes mml's per-position fusion when all three levels are attached. \
            --ink, --resize-filter, --mean and --std record the preprocessing the model was trained with; \
            mml eval uses it. See docs/IMPORT.md.
            """
    )

    @Argument(help: "The safetensors file holding the state_dict.") var input: String?
    @Option(help: "Backbone: conv64f, conv4 or resnet12.") var backbone: BackboneKind = .conv64F
    @Option(help: "Tensor names: auto, dn4, mml, libfewshot or protonet.") var convention: TorchNameConvention = .auto
    @Option(help: "A JSON object mapping mml tensor names to the file's names (instead of --convention).")
    var nameMap: String?
    @OptionGroup(title: "Metric to attach (none given: a backbone-only checkpoint)") var metric: MetricOptions
    @Option(help: "The n-way of the attached metric (per-position fusion; the official MML fusion sets it).")
    var way = 5
    @Option(help: "Image side the model expects (default 84).") var imageSize: Int?
    @OptionGroup(title: "Preprocessing the model was trained with") var preprocessingOptions: PreprocessingOptions
    @Flag(help: "Import even when tensors in the file map to nothing (they are listed).") var allowUnused = false
    @Option(help: "The checkpoint to write.") var out: String?
    @Flag(help: "Print the import report (what mapped to what, unused tensors) as JSON.") var json = false
    @Flag(help: "Print mml's tensor names and shapes for --backbone (the keys of a name map) and exit.")
    var listNames = false
    @Option(help: "With --list-names: input channels (1 or 3).") var channels = 3

    func run() throws {
        try runReportingErrors {
            // --list-names prints mml's names and exits: the import's options cannot apply to it, and --channels
            // only to it (an import reads the input channels from the tensors).
            let importFlags = [("INPUT", input != nil), ("--convention", convention != .auto),
                               ("--name-map", nameMap != nil), ("--way", way != 5), ("--image-size", imageSize != nil),
                               ("--allow-unused", allowUnused), ("--out", out != nil), ("--json", json)]
                .filter(\.1).map(\.0) + metric.givenFlags
                + (try preprocessingOptions.preprocessing().isEmpty ? [] : ["--ink/--resize-filter/--mean/--std"])
            if listNames, !importFlags.isEmpty {
                throw MMLError(.invalidArgument, importFlags.joined(separator: ", ") + " cannot apply with "
                               + "--list-names, which only prints mml's tensor names for --backbone (and --channels); "
                               + "drop " + (importFlags.count == 1 ? "it" : "them") + " or --list-names")
            }
            if !listNames, channels != 3 {
                throw MMLError(.invalidArgument, "--channels only applies with --list-names: an import reads the input "
                               + "channels from the tensors; drop --channels")
            }
            if !listNames, way != 5, metric.givenFlags.isEmpty {
                throw MMLError(.invalidArgument, "--way sets the n-way of an attached metric, but no metric flag "
                               + "(--levels, --pixel-k, ...) attaches one; give the metric flags or drop --way")
            }
            if listNames {
                for (name, shape) in try TorchImportConfiguration.targetNames(backbone: backbone, inputChannels: channels) {
                    print("\(name) \(shape)")
                }
                return
            }
            guard let input else {
                throw MMLError(.invalidArgument, "give the safetensors file to import (mml import FILE --out CKPT)")
            }
            guard let out else { throw MMLError(.invalidArgument, "give the checkpoint to write with --out") }
            let attach = metric.givenFlags.isEmpty ? nil : try metric.configuration(way: way)
            let config = TorchImportConfiguration(
                input: input, backbone: backbone, convention: convention, nameMap: nameMap, metric: attach,
                imageSize: imageSize, preprocessing: try preprocessingOptions.preprocessing(),
                allowUnused: allowUnused, output: out)
            let result = try TorchImportRun(config).run { event in
                guard !json else { return }
                switch event {
                case .started(_, let facts):
                    for f in facts { print(f.key.padding(toLength: 12, withPad: " ", startingAt: 0) + f.value) }
                case .warning(let text): FileHandle.standardError.write(Data("warning: \(text)\n".utf8))
                case .wrote(let path, let what): print("wrote       \(path) (\(what))")
                default: break
                }
            }
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.sortedKeys, .prettyPrinted]
                print(String(decoding: try enc.encode(result), as: UTF8.self))
            } else {
                print("mapped      \(result.mapped.count) tensors"
                      + (result.foldedBiases.isEmpty ? "" : " (\(result.foldedBiases.count) conv biases folded into BatchNorm)")
                      + (result.ignored.isEmpty ? "" : ", \(result.ignored.count) num_batches_tracked ignored")
                      + (result.unused.isEmpty ? "" : ", \(result.unused.count) unused"))
            }
        }
    }
}

import Foundation
import MMLCore

// `mml-bench <section> [options] [--json]`: speed and memory, measured side by side with a reference in one run.
// `--quick` (kernels, backbone, data, episode) checks a section in seconds: one repeat, small counts, no measurement.
let args = Array(CommandLine.arguments.dropFirst())
let json = args.contains("--json")
/// Each section's options: name -> whether it takes a value.
let sectionOptions: [(section: String, options: [(String, Bool)], help: String)] = [
    ("kernels", [("--quick", false)], "pixel-level top-k and Gaussian (W2, KL) kernels against the naive / OpenBLAS references"),
    ("backbone", [("--kinds", true), ("--threads", true), ("--quick", false), ("--forward-only", false),
                  ("--breakdown", false), ("--size", true), ("--batch", true), ("--in-channels", true)],
     "Conv-64F / Conv-4 / ResNet-12 forward (batch 80, 100) and training step (batch 80); --kinds conv64f,conv4,"
         + "resnet12; --breakdown times each layer of a Conv-64F step (84x84x3 batch 80, or --size, --batch, "
         + "--in-channels)"),
    ("data", [("--images", true), ("--repeats", true), ("--quick", false)], "image decoding and episode assembly"),
    ("episode", [("--episodes", true), ("--quick", false), ("--breakdown", false)],
     "whole evaluation episodes (5-way 1-shot and 5-shot); --breakdown adds the time of each phase (data, backbone, "
     + "each level, fusion) per episode"),
    ("conv", [("--threads", true), ("--batch", true), ("--first-layer", false)],
     "the 3x3 convolution kernels (im2col, Winograd F(2x2) and F(4x4)), the first layer's direct training kernels "
         + "and the inference blocks; --first-layer runs only the first layer's rows"),
    ("peak", [("--threads", true), ("--quick", false)],
     "this machine's fp32 FMA rate on 1 thread and on --threads (default all cores): the ceiling of the "
         + "compute-bound kernels"),
    ("api", [("--calls", true), ("--rounds", true)],
     "the Swift API's cost per call (a tiny episode; the 5-way 5-shot pixel-level episode), the baseline of "
         + "Benchmarks/python_overhead.py"),
]
/// What is wrong with an option's value (what it takes), or nil: every value is checked here, before any measuring,
/// so that the sections read them knowing they are valid and none is ever ignored.
func optionValueProblem(_ option: String, _ value: String) -> String? {
    switch option {
    case "--threads":
        return Int32(value).map { $0 >= 0 } == true ? nil : "a non-negative integer (0: all cores)"
    case "--kinds":
        let names = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return names.allSatisfy({ BackboneKind(rawValue: $0) != nil })
            ? nil : "a comma-separated list of " + BackboneKind.allCases.map(\.rawValue).joined(separator: ", ")
    default:  // --batch, --size, --in-channels, --images, --repeats, --episodes, --calls, --rounds
        return Int32(value).map { $0 > 0 } == true ? nil : "a positive integer"
    }
}
/// The value of a checked integer option, or `fallback` when it is not given.
func intOption(_ arguments: [String], _ name: String, _ fallback: Int) -> Int {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let v = Int(arguments[i + 1]) else {
        return fallback
    }
    return v
}
func usage() -> String {
    var s = "usage: mml-bench <section> [options] [--json]\n"
    for (section, options, help) in sectionOptions {
        let opts = options.map { $0.1 ? "\($0.0) V" : $0.0 }.joined(separator: " ")
        s += "  \(section)\(opts.isEmpty ? "" : " [\(opts)]")\n      \(help)\n"
    }
    return s
}
if args.contains("--help") || args.contains("-h") {
    print(usage(), terminator: "")
    exit(0)
}
guard let section = args.first, let spec = sectionOptions.first(where: { $0.section == section }) else {
    fputs("mml-bench: the first argument must be a section\n" + usage(), stderr)
    exit(2)
}
var position = 1
while position < args.count {
    let a = args[position]
    if a == "--json" { position += 1; continue }
    guard let option = spec.options.first(where: { $0.0 == a }) else {
        fputs("mml-bench \(section): unknown argument '\(a)'; run mml-bench --help for the options\n", stderr)
        exit(2)
    }
    if args[..<position].contains(a) {
        fputs("mml-bench \(section): \(a) is given twice; give it once\n", stderr)
        exit(2)
    }
    if option.1 && position + 1 >= args.count {
        fputs("mml-bench \(section): \(a) needs a value\n", stderr)
        exit(2)
    }
    if option.1, let problem = optionValueProblem(a, args[position + 1]) {
        fputs("mml-bench \(section): \(a) takes \(problem), got '\(args[position + 1])'\n", stderr)
        exit(2)
    }
    position += option.1 ? 2 : 1
}
// Faster OpenBLAS kernels need OPENBLAS_CORETYPE before the process starts: run again with it (as `mml` does).
let blas = BLASRuntime.check()
_ = BLASRuntime.reexecPlan(for: blas)?.withCStrings { execve($0, $1, $2) }
BLASRuntime.warnIfUnchosen(blas)
AllocatorTuning.apply()
switch section {
case "kernels": runKernelsBench(json: json, arguments: args)
case "backbone": runBackboneBench(json: json, arguments: args)
case "data": runDataBench(json: json, arguments: args)
case "episode": runEpisodeBench(json: json, arguments: args)
case "conv": runConvBench(json: json, arguments: args)
case "api": runApiBench(json: json, arguments: args)
case "peak": runPeakBench(json: json, arguments: args)
default: break
}

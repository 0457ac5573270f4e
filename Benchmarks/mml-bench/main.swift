import Foundation
import MMLCore

// `mml-bench <section> [--json]`: speed and memory, measured side by side with a reference in one run.
let args = Array(CommandLine.arguments.dropFirst())
let json = args.contains("--json")
let sections = args.filter { !$0.hasPrefix("--") }
let known = ["kernels", "backbone", "data", "episode", "conv"]
guard let section = sections.first, known.contains(section) else {
    fputs("usage: mml-bench <\(known.joined(separator: "|"))> [--json]\n", stderr)
    exit(2)
}
BLASRuntime.reexecIfNeeded()
AllocatorTuning.apply()
switch section {
case "kernels": runKernelsBench(json: json, arguments: args)
case "backbone": runBackboneBench(json: json, arguments: args)
case "data": runDataBench(json: json, arguments: args)
case "episode": runEpisodeBench(json: json, arguments: args)
case "conv": runConvBench(json: json, arguments: args)
default: break
}

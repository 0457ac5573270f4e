import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import MMLCore

/// The `mml` command-line tool.
struct MML: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mml",
        abstract: "Few-shot image recognition by multi-level metric learning.",
        subcommands: [EnvCommand.self, DataCommand.self, TrainCommand.self, EvalCommand.self, AblateCommand.self,
                      PretrainCommand.self, TrainEmbeddingCommand.self, ScoreCommand.self, ImportCommand.self]
    )
}

// OpenBLAS picks its kernels when the library loads; re-execute with OPENBLAS_CORETYPE set when it chose
// slower kernels than this CPU supports (never when the user set the variable). execve returns only if it failed.
let blas = BLASRuntime.check()
_ = BLASRuntime.reexecPlan(for: blas)?.withCStrings { execve($0, $1, $2) }
BLASRuntime.warnIfUnchosen(blas)
AllocatorTuning.apply()
MML.main()

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
        discussion: "Also: mml eval merge DIR... and mml ablate merge DIR... (the report of a sharded run's files).",
        subcommands: [EnvCommand.self, DataCommand.self, TrainCommand.self, EvalCommand.self, AblateCommand.self,
                      CompareCommand.self, PretrainCommand.self, TrainEmbeddingCommand.self, ScoreCommand.self,
                      ImportCommand.self]
    )
}

// OpenBLAS picks its kernels when the library loads; re-execute with OPENBLAS_CORETYPE set when it chose
// slower kernels than this CPU supports (never when the user set the variable). execve returns only if it failed.
let blas = BLASRuntime.check()
_ = BLASRuntime.reexecPlan(for: blas)?.withCStrings { execve($0, $1, $2) }
BLASRuntime.warnIfUnchosen(blas)
AllocatorTuning.apply()
// Under mpirun: MPI starts here, only `mml train` runs distributed, and every rank leaves MPI before exiting.
Launch.start()
// `mml eval merge` / `mml ablate merge` are dispatched here: argument-parser decodes a parent command before its
// subcommands, and eval's and ablate's positional dataset path would take the word `merge`.
let argv = Array(CommandLine.arguments.dropFirst())
if argv.count >= 2, argv[1] == "merge", argv[0] == "eval" || argv[0] == "ablate" {
    Launch.refuseUnlessDistributed("\(argv[0]) merge")
    Launch.finish()
    if argv[0] == "eval" { EvalMergeCommand.main(Array(argv.dropFirst(2))) } else {
        AblateMergeCommand.main(Array(argv.dropFirst(2)))
    }
    exit(0)
}
let parsed: ParsableCommand
do { parsed = try MML.parseAsRoot() } catch {
    // Every rank parses the same arguments: only rank 0 prints the error (or the help).
    Launch.finish()
    if !Launch.isLeader { exit(MML.exitCode(for: error).rawValue) }
    MML.exit(withError: error)
}
Launch.refuseUnlessDistributed(type(of: parsed).configuration.commandName ?? "")
do {
    var command = parsed
    try command.run()
} catch {
    // One rank of several failed: name it and end the whole job (the others may be waiting for it).
    if let mpi = Launch.mpi, mpi.size > 1, MML.exitCode(for: error) != .success {
        mpi.abort(message: "error: " + MML.message(for: error))
    }
    Launch.finish()
    MML.exit(withError: error)
}
Launch.finish()

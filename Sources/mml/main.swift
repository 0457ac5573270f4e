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
                      PretrainCommand.self, TrainEmbeddingCommand.self, ScoreCommand.self]
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

import Foundation
import MMLCore
import MMLDistributed

/// How this `mml` was started: alone, or as one rank of an `mpirun` job (docs/DISTRIBUTED.md).
enum Launch {
    /// The job's processes when started by `mpirun` (nil otherwise: MPI is never initialised).
    nonisolated(unsafe) static var mpi: MPIProcessGroup?

    /// Initialises MPI when `mpirun` started this process.
    static func start() {
        guard MPIProcessGroup.launchedByMPI else { return }
        do { mpi = try MPIProcessGroup() } catch {
            FileHandle.standardError.write(Data("error: \(MMLError.describe(error))\n".utf8))
            exit(1)
        }
    }

    /// The group a run uses: the MPI job's, or this process alone.
    static var group: any ProcessGroup { mpi ?? SingleProcessGroup() }

    /// True on the rank that prints and writes (rank 0, or a process started without mpirun).
    static var isLeader: Bool { (mpi?.rank ?? 0) == 0 }

    /// The kernel threads of this process for `--threads given`: with 0 (all cores) under mpirun, the machine's
    /// cores divided by the ranks on this machine (`OMPI_COMM_WORLD_LOCAL_SIZE`), at least 1; else `given`.
    static func threads(_ given: Int) -> Int {
        guard given == 0, mpi != nil,
              let local = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init),
              local > 1 else { return given }
        return max(1, ProcessInfo.processInfo.activeProcessorCount / local)
    }

    /// Ends MPI before a normal exit.
    static func finish() { mpi?.finalize() }

    /// With more than one process: rank 0 prints `error: message`, every rank leaves MPI and exits with 1 (for an
    /// error every rank meets in the same way, so that it is printed once).
    static func failTogether(_ message: String) -> Never {
        if isLeader { FileHandle.standardError.write(Data("error: \(message)\n".utf8)) }
        finish()
        exit(1)
    }

    /// Refuses every command but `mml train` under an `mpirun` job of more than one process.
    static func refuseUnlessDistributed(_ command: ParsableCommandName) {
        guard let mpi, mpi.size > 1, command != "train" else { return }
        let why = command == "pretrain" || command == "train-embedding"
            ? "splitting its mini-batches across processes would compute BatchNorm's batch statistics over parts of "
              + "each batch, so the weights would differ from a run in one process"
            : "it is not distributed: every process would do the whole job and write the same files"
        failTogether("mml \(command) does not run under mpirun with \(mpi.size) processes: \(why); run it without "
                     + "mpirun (only mml train is distributed, see docs/DISTRIBUTED.md)")
    }

    /// Under mpirun with a process count that does not divide `episodesPerStep`: one message, every rank exits.
    static func checkSplit(_ configuration: EpisodicTrainingRunConfiguration) {
        guard let mpi, mpi.size > 1 else { return }
        do { try EpisodicTrainer.checkSplit(configuration.effectiveTraining, processes: mpi.size) } catch let e as MMLError {
            failTogether(FlagNames.render(e) + " (mpirun -np \(mpi.size))")
        } catch { failTogether(MMLError.describe(error)) }
    }
}

typealias ParsableCommandName = String

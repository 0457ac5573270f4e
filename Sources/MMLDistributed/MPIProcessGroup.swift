import CMPI
import Foundation
import MMLCore
#if canImport(Glibc)
import Glibc
#endif

/// The processes of an `mpirun` job (Open MPI's `MPI_COMM_WORLD`) as a `ProcessGroup`.
///
/// MPI is initialised only when the process was started by `mpirun` (`launchedByMPI`), so a plain `mml` never
/// touches it. Errors of MPI calls are returned (not fatal) and thrown as `MMLError`; the front end then ends the
/// whole job with `abort(rank:message:)`, which names the rank.
public final class MPIProcessGroup: ProcessGroup {
    public let rank: Int
    public let size: Int
    private let world: MPI_Comm
    private var gathers = 0
    /// A test-only fault: `MML_TEST_MPI_FAIL=RANK:EXCHANGE[:kill]` makes that rank fail (throw, or kill itself
    /// with SIGKILL) when it enters its EXCHANGE-th (1-based) `allGather`.
    private let fault: (rank: Int, exchange: Int, kill: Bool)?

    /// True when this process was started by Open MPI's `mpirun` (it sets `OMPI_COMM_WORLD_SIZE`).
    public static var launchedByMPI: Bool {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil
    }

    /// Initialises MPI (once per process). - Throws: `MMLError(.io)` when MPI cannot start.
    public init() throws {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            guard MPI_Init(nil, nil) == mml_mpi_success() else {
                throw MMLError(.io, "MPI_Init failed: start mml with Open MPI's mpirun, or without it")
            }
        }
        world = mml_mpi_comm_world()
        MPI_Comm_set_errhandler(world, mml_mpi_errors_return())
        var r: Int32 = 0, n: Int32 = 0
        MPI_Comm_rank(world, &r)
        MPI_Comm_size(world, &n)
        rank = Int(r); size = Int(n)
        let parts = (ProcessInfo.processInfo.environment["MML_TEST_MPI_FAIL"] ?? "").split(separator: ":")
        if parts.count >= 2, let fr = Int(parts[0]), let fe = Int(parts[1]) {
            fault = (fr, fe, parts.count > 2 && parts[2] == "kill")
        } else {
            fault = nil
        }
    }

    private func check(_ code: Int32, _ what: String) throws {
        guard code != mml_mpi_success() else { return }
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        throw MMLError(.io, "\(what) failed on rank \(rank): \(String(cString: text))")
    }

    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        gathers += 1
        if let fault, fault.rank == rank, fault.exchange == gathers {
            if fault.kill { raise(SIGKILL) }
            throw MMLError(.io, "test fault: rank \(rank) fails at exchange \(gathers) (MML_TEST_MPI_FAIL)")
        }
        var mine = Int64(bytes.count)
        var lengths = [Int64](repeating: 0, count: size)
        try check(MPI_Allgather(&mine, 1, mml_mpi_int64(), &lengths, 1, mml_mpi_int64(), world), "MPI_Allgather")
        let total = lengths.reduce(0, +)
        guard total <= Int64(Int32.max) else {
            throw MMLError(.invalidArgument, "one exchange of \(total) bytes exceeds MPI's 2 GiB message limit: use "
                           + "fewer episodes per step or a smaller model")
        }
        let counts = lengths.map { Int32($0) }
        var displacements = [Int32](repeating: 0, count: size)
        for i in 1..<size { displacements[i] = displacements[i - 1] + counts[i - 1] }
        var all = [UInt8](repeating: 0, count: Int(total))
        let code = bytes.withUnsafeBytes { src in
            all.withUnsafeMutableBytes { dst in
                MPI_Allgatherv(src.baseAddress, Int32(bytes.count), mml_mpi_byte(), dst.baseAddress, counts,
                               displacements, mml_mpi_byte(), world)
            }
        }
        try check(code, "MPI_Allgatherv")
        return (0..<size).map { r in
            let start = Int(displacements[r])
            return Array(all[start..<(start + Int(counts[r]))])
        }
    }

    public func barrier() throws { try check(MPI_Barrier(world), "MPI_Barrier") }

    /// Prints `rank R: message` on standard error and ends the whole job (every rank) with `code`.
    public func abort(message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("rank \(rank): \(message)\n".utf8))
        MPI_Abort(world, code)
        exit(code)
    }

    /// Ends MPI in this process (every rank calls it once before a normal exit).
    public func finalize() {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
    }
}

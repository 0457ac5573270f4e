import Foundation

/// The processes that train one model together (data parallelism): each has a rank in `0..<size`. The core only
/// needs to gather bytes from every rank in rank order; a front end supplies the transport (the `mml` tool uses MPI,
/// `MMLDistributed.MPIProcessGroup`). `SingleProcessGroup` is the group of one, with no communication at all.
///
/// Every rank must call the collective operations in the same order with the same meaning.
public protocol ProcessGroup: AnyObject {
    /// This process's rank, `0..<size`; rank 0 writes files and prints.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Every rank's `bytes` (lengths may differ), in rank order; the same result on every rank.
    /// - Throws: `MMLError` when the exchange fails.
    func allGather(_ bytes: [UInt8]) throws -> [[UInt8]]
    /// Returns once every rank has called it.
    func barrier() throws
}

/// The group of one process: `allGather` returns the caller's bytes; nothing is sent anywhere.
public final class SingleProcessGroup: ProcessGroup {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allGather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func barrier() throws {}
}

extension ProcessGroup {
    /// The part of `range` that `rank` works on: contiguous blocks in rank order, as equal as possible (rank r
    /// gets `lower + count * r / size ..< lower + count * (r + 1) / size`).
    public func share(of range: Range<Int>, rank r: Int? = nil) -> Range<Int> {
        let r = r ?? rank, n = range.count
        return (range.lowerBound + n * r / size)..<(range.lowerBound + n * (r + 1) / size)
    }
}

import Foundation

/// A request to stop a run early and cleanly, set from outside the run (the `mml` tool sets it on SIGINT, SIGTERM
/// or SIGHUP; a harness from another thread). Runs poll it at their safe points: training between optimiser steps
/// (then writes its resumable `last` checkpoint), evaluation between episodes. Thread-safe.
public final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var requested = false
    private var why: Int32 = 0

    public init() {}

    /// Asks every run polling this request to stop at its next safe point. `reason` is kept for the front end
    /// (the `mml` tool passes the signal number); the first request's reason is kept.
    public func request(reason: Int32 = 0) {
        lock.lock(); defer { lock.unlock() }
        if !requested { why = reason }
        requested = true
    }

    /// True once `request` was called.
    public var isRequested: Bool {
        lock.lock(); defer { lock.unlock() }
        return requested
    }

    /// The first request's `reason` (nil before any request).
    public var reason: Int32? {
        lock.lock(); defer { lock.unlock() }
        return requested ? why : nil
    }

    /// Throws `RunStopped` when a stop was requested: `done` of `total` units of `phase` were finished.
    public func check(done: Int, total: Int, phase: String) throws {
        if isRequested { throw RunStopped(done: done, total: total, phase: phase) }
    }
}

/// Thrown by a run that stopped on a `StopRequest` between units of work. Evaluation and ablation: nothing they
/// would have written at their end was written. Pre-training and embedding training: `checkpoint` (their
/// `last.safetensors`) holds every finished optimiser step, and the run continues from it with `resume`. `description` says how far it got ("stopped after 212 of 600 episodes of
/// 5-way 1-shot").
public struct RunStopped: Error, CustomStringConvertible, Sendable {
    /// Units finished (episodes, batches) and the phase's total.
    public var done: Int
    public var total: Int
    /// What the units are: "test episodes", "episodes of 5-way 1-shot", ...
    public var phase: String
    /// Further context, e.g. which ablation subset was being trained.
    public var detail: String?
    /// The checkpoint a run started again with `resume` continues from (nil: the run does not resume).
    public var checkpoint: String?

    public init(done: Int, total: Int, phase: String, detail: String? = nil, checkpoint: String? = nil) {
        self.done = done; self.total = total; self.phase = phase; self.detail = detail; self.checkpoint = checkpoint
    }

    public var description: String {
        "stopped after \(done) of \(total) \(phase)" + (detail.map { "; \($0)" } ?? "")
    }
}

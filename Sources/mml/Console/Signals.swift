import ArgumentParser
import Dispatch
import Foundation
import MMLCore

/// SIGINT, SIGTERM and SIGHUP for the commands that stop cleanly (train, pretrain, train-embedding, eval, ablate).
/// The first signal sets the core's `StopRequest`, which the run polls between optimiser steps or episodes (training
/// then writes `last.safetensors` and the command prints how to resume); the second exits at once. Every file is
/// written to a temporary name and renamed, so exiting at once leaves no torn file, only a temporary one that the
/// next run in that directory removes. The exit code is 128 + the signal number (130, 143, 129), as a shell's.
enum Signals {
    /// The request the runs of this process poll.
    static let stop = StopRequest()
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    private static let queue = DispatchQueue(label: "mml.signals")

    /// The signal's name (`SIGINT`).
    static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGHUP: return "SIGHUP"
        default: return "signal \(signal)"
        }
    }

    /// The exit code after `signal` stopped the command: 128 + its number.
    static func exitCode(_ signal: Int32?) -> Int32 { 128 + (signal ?? SIGINT) }

    /// Installs the handlers; `what` says what happens on the first signal ("finishing the current optimiser step").
    static func install(_ what: String) {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { received(sig, count: Int(source.data), what: what) }
            source.resume()
            sources.append(source)
        }
    }

    private static func received(_ sig: Int32, count: Int, what: String) {
        if stop.isRequested || count > 1 {
            if Launch.isLeader {
                let text = "\nmml: \(name(sig)) again: exiting now (the files written so far are whole; an unfinished "
                    + "write leaves only a temporary file)\n"
                FileHandle.standardError.write(Data(text.utf8))
            }
            _exit(exitCode(stop.reason ?? sig))
        }
        stop.request(reason: sig)
        if Launch.isLeader {
            FileHandle.standardError.write(Data("\nmml: \(name(sig)) received: \(what); send it again to exit at once\n"
                .utf8))
        }
    }

    /// The command line that continues this run: this one with `--resume`. Under mpirun the process does not see
    /// mpirun's own options (`--allow-run-as-root`, `--hostfile`, ...), so it says to repeat the mpirun command
    /// with this command line instead of guessing one.
    static func resumeCommand() -> String {
        var args = CommandLine.arguments
        if !args.contains("--resume") { args.append("--resume") }
        let line = args.map(shellQuoted).joined(separator: " ")
        if let mpi = Launch.mpi, mpi.size > 1 {
            return "your mpirun command (\(mpi.size) processes, the same options) with: " + line
        }
        return line
    }

    /// `text` as one shell word.
    static func shellQuoted(_ text: String) -> String {
        let plain = !text.isEmpty && text.allSatisfy { $0.isLetter || $0.isNumber || "-_./=,:+@%".contains($0) }
        return plain ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Runs `body`; when the run stopped on a signal (`RunStopped`), prints how far it got and exits with 128 + the
    /// signal number.
    static func stoppable(_ command: String, _ body: () throws -> Void) throws {
        do { try body() } catch let stopped as RunStopped {
            let sig = stop.reason
            if stopped.checkpoint != nil {
                // Resumable (pre-training, embedding training): like `mml train`, what was saved and how to go on.
                let how = "after \(stopped.done) of \(stopped.total) \(stopped.phase) (\(name(sig ?? SIGINT)))"
                print("stopped     " + how + (stopped.detail.map { "; " + $0 } ?? ""))
                print("resume      \(resumeCommand())")
                fflush(stdout)
                throw ExitCode(exitCode(sig))
            }
            FileHandle.standardError.write(Data("mml \(command): \(stopped) (\(name(sig ?? SIGINT)))\n".utf8))
            throw ExitCode(exitCode(sig))
        }
    }
}

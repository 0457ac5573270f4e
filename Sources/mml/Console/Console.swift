import Foundation
import MMLCore

/// Parses `1,5` or `5` into integers. - Throws: `MMLError(.config)` naming the option.
func parseIntList(_ text: String, option: String) throws -> [Int] {
    let v = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) >= 1 }) else {
        throw MMLError(.config, "\(option) '\(text)': give positive integers separated by commas")
    }
    return v.map { $0! }
}

/// Writes to standard error.
func printError(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

/// Formats seconds as 1h02m, 3m12s or 42s.
func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
    if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
    return "\(t)s"
}

/// A one-line progress display: redrawn in place on a terminal, plain lines every `plainEvery` updates otherwise.
final class ProgressLine {
    let isTTY = isatty(fileno(stderr)) != 0
    let plainEvery: Int
    var updates = 0
    init(plainEvery: Int) { self.plainEvery = plainEvery }

    func update(done: Int, total: Int, text: String, force: Bool = false) {
        updates += 1
        if isTTY {
            let width = 24
            let filled = total > 0 ? min(width, done * width / total) : 0
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(done)/\(total) \(text)\u{1B}[K".utf8))
        } else if force || updates % plainEvery == 0 {
            FileHandle.standardError.write(Data("\(done)/\(total) \(text)\n".utf8))
        }
    }

    func finish() { if isTTY { FileHandle.standardError.write(Data("\n".utf8)) } }
}

/// Prints a line on standard output immediately (progress lines of long runs).
func progressLine(_ text: String) {
    print(text)
    fflush(stdout)
}

/// Prints a warning on standard error, configuration fields in backquotes spelled as flags (`FlagNames`).
func warn(_ text: String) {
    FileHandle.standardError.write(Data("warning: \(FlagNames.render(MMLError(.config, text)))\n".utf8))
}

/// Checks a positive integer option. - Throws: `MMLError(.invalidArgument)` naming the flag.
func requirePositive(_ value: Int, _ flag: String) throws {
    guard value >= 1 else { throw MMLError(.invalidArgument, "\(flag) must be >= 1, got \(value)") }
}

/// Checks a non-negative finite number option. - Throws: `MMLError(.invalidArgument)` naming the flag.
func requireNonNegative(_ value: Float, _ flag: String) throws {
    guard value.isFinite, value >= 0 else {
        throw MMLError(.invalidArgument, "\(flag) must be a number >= 0, got \(value)")
    }
}

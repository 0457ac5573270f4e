import Foundation
import MMLTestSupport
import XCTest

/// README.md's figures and the scripts that reproduce them: every table of figures names its script (or `make demo`)
/// in its section, every figure row of a table that names scripts row by row (the Status table) names one, every
/// section of results and every Benchmarks subsection names one, every script the README names exists and is
/// executable, and the "Reproducing the figures" table lists each of them with its time.
final class ReadmeScriptsTests: XCTestCase {
    func testEveryFigureOfTheReadmeNamesAnExecutableScript() throws {
        let root = packageRoot()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let problems = ReadmeFigures(readme).problems(root: root.path)
        XCTAssertEqual(problems, [], problems.joined(separator: "\n"))
    }

    /// The checker finds each kind of fault (so the test above can fail).
    func testTheCheckerFindsMissingAndBrokenReferences() throws {
        let root = packageRoot()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(readme.contains("### Data (`mml-bench data`, `scripts/bench-data.sh`"))

        // A table whose section no longer names its script.
        let unnamed = readme.replacingOccurrences(of: "### Data (`mml-bench data`, `scripts/bench-data.sh`",
                                                  with: "### Data (`mml-bench data`")
        let p1 = ReadmeFigures(unnamed).problems(root: root.path)
        XCTAssertTrue(p1.contains { $0.contains("table") && $0.contains("Data") }, p1.joined(separator: "\n"))

        // A script that does not exist.
        let missing = readme.replacingOccurrences(of: "scripts/bench-data.sh", with: "scripts/bench-dat.sh")
        let p2 = ReadmeFigures(missing).problems(root: root.path)
        XCTAssertTrue(p2.contains { $0.contains("scripts/bench-dat.sh") && $0.contains("does not exist") },
                      p2.joined(separator: "\n"))

        // A script that is not executable.
        let dir = try makeTempDir(self)
        try FileManager.default.createDirectory(atPath: dir + "/scripts", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/scripts/plain.sh", contents: Data("#!/bin/sh\n".utf8),
                                       attributes: [.posixPermissions: 0o644])
        let small = """
            ## Results (`scripts/plain.sh`)

            | a | b |
            |---|---|
            | x | 1.5 ms |

            ## Reproducing the figures

            | script | reproduces | time | needs |
            |---|---|---|---|
            | `scripts/plain.sh` | Results | about 1 minute | |
            """
        let p3 = ReadmeFigures(small).problems(root: dir)
        XCTAssertEqual(p3, ["scripts/plain.sh is not executable"])

        // A Status-style table: a row with figures and no script of its own, while other rows name theirs.
        let status = small.replacingOccurrences(of: "| x | 1.5 ms |", with: "| x | 1.5 ms (`scripts/plain.sh`) |\n| y | 2.5x |")
        let p4 = ReadmeFigures(status).problems(root: dir)
        XCTAssertTrue(p4.contains { $0.contains("| y | 2.5x |") }, p4.joined(separator: "\n"))

        // A script missing from the "Reproducing the figures" table, and a row there without a time.
        let unlisted = small.replacingOccurrences(of: "| `scripts/plain.sh` | Results | about 1 minute | |",
                                                  with: "| `scripts/other.sh` | Results | | |")
        let p5 = ReadmeFigures(unlisted).problems(root: dir)
        XCTAssertTrue(p5.contains { $0.contains("scripts/plain.sh") && $0.contains("Reproducing the figures") },
                      p5.joined(separator: "\n"))
        XCTAssertTrue(p5.contains { $0.contains("scripts/other.sh") && $0.contains("time") }, p5.joined(separator: "\n"))

        // A results section without a table (a paragraph of figures) that names no script.
        let paragraph = small + "\n\n## More results\n\nEpisodes take 168 ms each.\n"
        let p6 = ReadmeFigures(paragraph).problems(root: dir)
        XCTAssertTrue(p6.contains { $0.contains("More results") }, p6.joined(separator: "\n"))
    }
}

/// README.md read as sections (from one heading to the next, outside code fences) and their Markdown tables.
struct ReadmeFigures {
    struct Section {
        var heading: String
        var level: Int
        var parent: String
        var lines: [String]
    }

    let sections: [Section]

    init(_ text: String) {
        var sections = [Section(heading: "", level: 0, parent: "", lines: [])]
        var inFence = false
        var topHeading = ""
        for line in text.components(separatedBy: "\n") {
            if line.hasPrefix("```") { inFence.toggle() }
            if !inFence, line.hasPrefix("#") {
                let level = line.prefix { $0 == "#" }.count
                let heading = line.dropFirst(level).trimmingCharacters(in: .whitespaces)
                if level <= 2 { topHeading = heading }
                sections.append(Section(heading: heading, level: level, parent: level > 2 ? topHeading : "", lines: []))
            } else {
                sections[sections.count - 1].lines.append(line)
            }
        }
        self.sections = sections
    }

    /// Scripts named in a text: `scripts/NAME.sh` (or `.py`), and `make demo`.
    static func references(_ text: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: #"scripts/[A-Za-z0-9_.-]+\.(sh|py)|make demo"#)
        let range = NSRange(text.startIndex..., in: text)
        return pattern.matches(in: text, range: range).map { String(text[Range($0.range, in: text)!]) }
    }

    /// Whether a table row holds measured figures: decimals, times, ratios, sizes, rates.
    static func hasFigures(_ row: String) -> Bool {
        row.range(of: #"\d\.\d|\d ?(ms|us)\b|\dx\b|\d ?(MiB|GB|img/s)|\d[kM]\b"#, options: .regularExpression) != nil
    }

    static let indexHeading = "Reproducing the figures"

    func problems(root: String) -> [String] {
        var problems: [String] = []
        var named: [String] = []
        for section in sections where section.heading != Self.indexHeading {
            let tables = Self.tables(section.lines)
            let text = ([section.heading] + section.lines).joined(separator: "\n")
            for table in tables {
                let body = table.rows.dropFirst(2)
                guard body.contains(where: Self.hasFigures) else { continue }
                let inRows = body.contains { !Self.references($0).isEmpty }
                if inRows {
                    for row in body where Self.hasFigures(row) && Self.references(row).isEmpty {
                        problems.append("\(section.heading): a row with figures names no script: \(row)")
                    }
                } else {
                    let context = ([section.heading] + section.lines[..<table.end]).joined(separator: "\n")
                    if Self.references(context).isEmpty {
                        problems.append("\(section.heading): the table \(table.rows[0]) names no script in its section")
                    }
                }
            }
            let isResults = section.heading.lowercased().contains("results")
                || (section.level > 2 && section.parent == "Benchmarks")
            if isResults && Self.references(text).isEmpty {
                problems.append("\(section.heading): a section of figures that names no script")
            }
            named += Self.references(text)
        }
        // Every script the README names exists and is executable.
        var seen = Set<String>()
        for ref in named where ref.hasPrefix("scripts/") && seen.insert(ref).inserted {
            let path = root + "/" + ref
            if !FileManager.default.fileExists(atPath: path) {
                problems.append("\(ref) does not exist")
            } else if !FileManager.default.isExecutableFile(atPath: path) {
                problems.append("\(ref) is not executable")
            }
        }
        // The index: every script named next to figures is listed, each row with a time.
        guard let index = sections.first(where: { $0.heading == Self.indexHeading }),
              let table = Self.tables(index.lines).first else {
            return problems + ["no \"## \(Self.indexHeading)\" section with a table"]
        }
        var listed = Set<String>()
        for row in table.rows.dropFirst(2) {
            let cells = row.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let refs = Self.references(row)
            listed.formUnion(refs)
            if cells.count < 4 || cells[3].isEmpty {
                problems.append("\(refs.first ?? row): its row in \"\(Self.indexHeading)\" gives no time")
            }
            for ref in refs where ref.hasPrefix("scripts/") && !FileManager.default.fileExists(atPath: root + "/" + ref) {
                problems.append("\(ref) does not exist")
            }
        }
        for ref in seen.sorted() where ref.hasSuffix(".sh") && !listed.contains(ref) && !Self.helpers.contains(ref) {
            problems.append("\(ref) is named in the README but not in \"\(Self.indexHeading)\"")
        }
        return problems
    }

    /// Scripts the README names that reproduce no figures (set-up and tools).
    static let helpers: Set<String> = ["scripts/install-deps.sh", "scripts/fuzz.sh", "scripts/lib.sh"]

    /// The Markdown tables of a section: their rows and the index of the line after each.
    static func tables(_ lines: [String]) -> [(rows: [String], end: Int)] {
        var out: [(rows: [String], end: Int)] = []
        var current: [String] = []
        for (i, line) in lines.enumerated() {
            if line.hasPrefix("|") {
                current.append(line)
            } else if !current.isEmpty {
                out.append((current, i))
                current = []
            }
        }
        if !current.isEmpty { out.append((current, lines.count)) }
        return out
    }
}

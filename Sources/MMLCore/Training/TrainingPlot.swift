import Foundation

/// Training curves from a run's `log.jsonl`: loss, and training / validation accuracy, against episodes.
public enum TrainingPlot {
    /// The SVG document for the log at `logPath`. - Throws: `MMLError` when the log is missing or empty.
    public static func svg(logPath: String) throws -> String {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else {
            throw MMLError(.fileNotFound, "cannot read the training log \(logPath); plot a run directory that has one")
        }
        var loss: [(x: Double, y: Double)] = [], acc: [(x: Double, y: Double)] = [], val: [(x: Double, y: Double)] = []
        for line in text.split(separator: "\n") {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let e = (o["episode"] as? NSNumber)?.doubleValue, let kind = o["event"] as? String,
                  let a = (o["accuracy"] as? NSNumber)?.doubleValue else { continue }
            if kind == "train", let l = (o["loss"] as? NSNumber)?.doubleValue {
                loss.append((e, l)); acc.append((e, a * 100))
            } else if kind == "validation" {
                val.append((e, a * 100))
            }
        }
        guard !loss.isEmpty else {
            throw MMLError(.invalidArgument, "the training log \(logPath) has no training entries yet")
        }
        let w = 560, h = 360
        let left = SVGChart.lines(title: "training loss", xLabel: "episode", yLabel: "cross-entropy",
                                  series: [.init(name: "train loss", points: loss)], width: w, height: h)
        var accSeries = [SVGChart.Series(name: "train accuracy", points: acc)]
        if !val.isEmpty { accSeries.append(.init(name: "validation accuracy", points: val)) }
        let right = SVGChart.lines(title: "accuracy", xLabel: "episode", yLabel: "accuracy (%)", series: accSeries,
                                   width: w, height: h)
        return SVGChart.stack([left, right], width: w, height: h)
    }

    /// Writes the SVG for `logPath` to `path` atomically.
    public static func write(logPath: String, to path: String) throws {
        try AtomicFile.write(try svg(logPath: logPath), to: path)
    }
}

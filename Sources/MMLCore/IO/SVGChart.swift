import Foundation

/// Minimal SVG charts (line charts for training curves, bar charts with 95% intervals for ablations), written
/// without any plotting library. Each function returns a complete `<svg>` document; `stack` places several side by
/// side.
public enum SVGChart {
    /// A named series of (x, y) points.
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public init(name: String, points: [(x: Double, y: Double)]) { self.name = name; self.points = points }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    static func label(_ v: Double) -> String {
        let a = abs(v)
        if a != 0 && (a >= 1e5 || a < 1e-3) { return String(format: "%.1e", v) }
        if a >= 100 || v == v.rounded() { return String(format: "%.0f", v) }
        return String(format: a >= 10 ? "%.1f" : "%.3g", v)
    }

    /// "Nice" tick values covering lo...hi.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? raw
        var t = ceil(lo / step) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(t); t += step }
        return out
    }

    /// A line chart of several series.
    public static func lines(title: String, xLabel: String, yLabel: String, series: [Series], width: Int = 560,
                             height: Int = 360) -> String {
        let pts = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let (ml, mr, mt, mb) = (64.0, 16.0, 36.0, 48.0)
        let pw = Double(width) - ml - mr, ph = Double(height) - mt - mb
        var x0 = pts.map(\.x).min() ?? 0, x1 = pts.map(\.x).max() ?? 1
        var y0 = pts.map(\.y).min() ?? 0, y1 = pts.map(\.y).max() ?? 1
        if x1 <= x0 { x1 = x0 + 1 }
        if y1 <= y0 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        if x0 > 0 && x0 < (x1 - x0) * 0.2 { x0 = 0 }
        func sx(_ x: Double) -> Double { ml + (x - x0) / (x1 - x0) * pw }
        func sy(_ y: Double) -> Double { mt + (1 - (y - y0) / (y1 - y0)) * ph }
        var s = header(width: width, height: height, title: title)
        s += axes(ml: ml, mt: mt, pw: pw, ph: ph, xLabel: xLabel, yLabel: yLabel, height: height)
        for t in ticks(x0, x1) {
            s += "<text x=\"\(f(sx(t)))\" y=\"\(f(mt + ph + 16))\" text-anchor=\"middle\">\(label(t))</text>\n"
        }
        s += yGrid(y0, y1, ml: ml, pw: pw, sy: sy)
        for (i, se) in series.enumerated() {
            let color = palette[i % palette.count]
            let p = se.points.filter { $0.x.isFinite && $0.y.isFinite }
            if p.count > 1 {
                let d = p.map { "\(f(sx($0.x))),\(f(sy($0.y)))" }.joined(separator: " ")
                s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(d)\"/>\n"
            }
            for q in p where p.count <= 60 {
                s += "<circle cx=\"\(f(sx(q.x)))\" cy=\"\(f(sy(q.y)))\" r=\"2.5\" fill=\"\(color)\"/>\n"
            }
            let ly = mt + 14 + Double(i) * 16
            s += "<rect x=\"\(f(ml + pw - 150))\" y=\"\(f(ly - 9))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            s += "<text x=\"\(f(ml + pw - 136))\" y=\"\(f(ly))\">\(escape(se.name))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// A bar chart with symmetric error bars (e.g. mean accuracy +- 95% CI).
    public static func bars(title: String, yLabel: String, labels: [String], values: [Double], errors: [Double],
                            width: Int = 640, height: Int = 380) -> String {
        precondition(labels.count == values.count && values.count == errors.count, "[svg] bars: counts differ")
        let (ml, mr, mt, mb) = (64.0, 16.0, 36.0, 90.0)
        let pw = Double(width) - ml - mr, ph = Double(height) - mt - mb
        let hiVals = zip(values, errors).map { $0 + $1 }.filter(\.isFinite)
        let loVals = zip(values, errors).map { $0 - $1 }.filter(\.isFinite)
        var y1 = hiVals.max() ?? 1, y0 = min(0, loVals.min() ?? 0)
        if y1 <= y0 { y1 = y0 + 1 }
        // Zoom in when all bars are high (accuracies): start the axis below the lowest bar.
        if let lo = loVals.min(), lo > 0, lo > 0.5 * y1 { y0 = max(0, lo - (y1 - lo) * 0.5) }
        y1 += (y1 - y0) * 0.05
        func sy(_ y: Double) -> Double { mt + (1 - (y - y0) / (y1 - y0)) * ph }
        var s = header(width: width, height: height, title: title)
        s += axes(ml: ml, mt: mt, pw: pw, ph: ph, xLabel: "", yLabel: yLabel, height: height)
        s += yGrid(y0, y1, ml: ml, pw: pw, sy: sy)
        let slot = pw / Double(max(values.count, 1))
        for (i, v) in values.enumerated() where v.isFinite {
            let cx = ml + slot * (Double(i) + 0.5), bw = slot * 0.6
            let top = sy(v), base = sy(max(y0, 0))
            s += "<rect x=\"\(f(cx - bw / 2))\" y=\"\(f(min(top, base)))\" width=\"\(f(bw))\" height=\"\(f(abs(base - top)))\" "
                + "fill=\"\(palette[i % palette.count])\" opacity=\"0.85\"/>\n"
            if errors[i].isFinite && errors[i] > 0 {
                let a = sy(v - errors[i]), b = sy(v + errors[i])
                s += "<line x1=\"\(f(cx))\" x2=\"\(f(cx))\" y1=\"\(f(a))\" y2=\"\(f(b))\" stroke=\"#000\"/>"
                s += "<line x1=\"\(f(cx - 6))\" x2=\"\(f(cx + 6))\" y1=\"\(f(a))\" y2=\"\(f(a))\" stroke=\"#000\"/>"
                s += "<line x1=\"\(f(cx - 6))\" x2=\"\(f(cx + 6))\" y1=\"\(f(b))\" y2=\"\(f(b))\" stroke=\"#000\"/>\n"
            }
            s += "<text x=\"\(f(cx))\" y=\"\(f(top - 6 - (errors[i].isFinite ? abs(sy(v) - sy(v + errors[i])) : 0)))\" "
                + "text-anchor=\"middle\">\(label(v))</text>\n"
            s += "<text transform=\"translate(\(f(cx)),\(f(mt + ph + 12))) rotate(30)\">\(escape(labels[i]))</text>\n"
        }
        return s + "</svg>\n"
    }

    /// Several complete charts side by side in one document.
    public static func stack(_ charts: [String], width: Int, height: Int) -> String {
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width * charts.count)\" height=\"\(height)\">\n"
        for (i, c) in charts.enumerated() {
            let inner = c.replacingOccurrences(of: "<svg xmlns=\"http://www.w3.org/2000/svg\" ",
                                               with: "<svg x=\"\(i * width)\" y=\"0\" ")
            s += inner
        }
        return s + "</svg>\n"
    }

    static func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// The y axis's tick labels with a light grid line at each tick (`sy` maps a value to its pixel row).
    static func yGrid(_ y0: Double, _ y1: Double, ml: Double, pw: Double, sy: (Double) -> Double) -> String {
        var s = ""
        for t in ticks(y0, y1) {
            s += "<line x1=\"\(f(ml))\" x2=\"\(f(ml + pw))\" y1=\"\(f(sy(t)))\" y2=\"\(f(sy(t)))\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(f(ml - 6))\" y=\"\(f(sy(t) + 4))\" text-anchor=\"end\">\(label(t))</text>\n"
        }
        return s
    }

    static func header(width: Int, height: Int, title: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" font-family=\"sans-serif\" "
            + "font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
            + "<text x=\"\(width / 2)\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">\(escape(title))</text>\n"
    }

    static func axes(ml: Double, mt: Double, pw: Double, ph: Double, xLabel: String, yLabel: String,
                     height: Int) -> String {
        "<line x1=\"\(f(ml))\" x2=\"\(f(ml))\" y1=\"\(f(mt))\" y2=\"\(f(mt + ph))\" stroke=\"#000\"/>\n"
            + "<line x1=\"\(f(ml))\" x2=\"\(f(ml + pw))\" y1=\"\(f(mt + ph))\" y2=\"\(f(mt + ph))\" stroke=\"#000\"/>\n"
            + "<text x=\"\(f(ml + pw / 2))\" y=\"\(height - 8)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
            + "<text transform=\"translate(14,\(f(mt + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
    }
}

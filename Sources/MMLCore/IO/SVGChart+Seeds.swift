import Foundation

extension SVGChart {
    /// One group of a seed-spread chart: each seed's value, their mean and the half-width of its interval (nil: no
    /// interval, e.g. one seed).
    public struct SeedGroup {
        public var label: String
        public var perSeed: [Double]
        public var mean: Double
        public var halfWidth: Double?

        public init(label: String, perSeed: [Double], mean: Double, halfWidth: Double?) {
            self.label = label; self.perSeed = perSeed; self.mean = mean; self.halfWidth = halfWidth
        }
    }

    /// A chart of values over training seeds: per group, one hollow dot per seed (spread sideways so equal values
    /// stay visible) and the mean as a bar with its interval drawn as a whisker. Values as given (e.g. percent).
    public static func seedSpread(title: String, yLabel: String, groups: [SeedGroup], width: Int = 640,
                                  height: Int = 380) -> String {
        let (ml, mr, mt, mb) = (64.0, 16.0, 36.0, 90.0)
        let pw = Double(width) - ml - mr, ph = Double(height) - mt - mb
        var all = groups.flatMap(\.perSeed)
        for g in groups {
            all.append(g.mean)
            if let h = g.halfWidth, h.isFinite { all += [g.mean - h, g.mean + h] }
        }
        all = all.filter(\.isFinite)
        var y0 = all.min() ?? 0, y1 = all.max() ?? 1
        if y1 <= y0 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.08
        y0 -= pad; y1 += pad
        func sy(_ y: Double) -> Double { mt + (1 - (y - y0) / (y1 - y0)) * ph }
        var s = header(width: width, height: height, title: title)
        s += axes(ml: ml, mt: mt, pw: pw, ph: ph, xLabel: "", yLabel: yLabel, height: height)
        s += yGrid(y0, y1, ml: ml, pw: pw, sy: sy)
        let slot = pw / Double(max(groups.count, 1))
        for (i, g) in groups.enumerated() {
            let cx = ml + slot * (Double(i) + 0.5), color = palette[i % palette.count]
            if g.mean.isFinite {
                // The mean: a short horizontal bar, its interval a whisker.
                s += "<line x1=\"\(f(cx - slot * 0.25))\" x2=\"\(f(cx + slot * 0.25))\" y1=\"\(f(sy(g.mean)))\" "
                    + "y2=\"\(f(sy(g.mean)))\" stroke=\"\(color)\" stroke-width=\"3\"/>\n"
                if let h = g.halfWidth, h.isFinite, h > 0 {
                    let a = sy(g.mean - h), b = sy(g.mean + h)
                    s += "<line x1=\"\(f(cx))\" x2=\"\(f(cx))\" y1=\"\(f(a))\" y2=\"\(f(b))\" stroke=\"#000\"/>"
                    s += "<line x1=\"\(f(cx - 6))\" x2=\"\(f(cx + 6))\" y1=\"\(f(a))\" y2=\"\(f(a))\" stroke=\"#000\"/>"
                    s += "<line x1=\"\(f(cx - 6))\" x2=\"\(f(cx + 6))\" y1=\"\(f(b))\" y2=\"\(f(b))\" stroke=\"#000\"/>\n"
                }
                s += "<text x=\"\(f(cx + slot * 0.27))\" y=\"\(f(sy(g.mean) + 4))\">\(label(g.mean))</text>\n"
            }
            // One dot per seed, spread over the middle of the slot.
            let n = g.perSeed.count
            for (k, v) in g.perSeed.enumerated() where v.isFinite {
                let dx = n > 1 ? (Double(k) / Double(n - 1) - 0.5) * slot * 0.3 : 0
                s += "<circle cx=\"\(f(cx + dx))\" cy=\"\(f(sy(v)))\" r=\"3.5\" fill=\"none\" stroke=\"\(color)\" "
                    + "stroke-width=\"1.5\"/>\n"
            }
            s += "<text transform=\"translate(\(f(cx)),\(f(mt + ph + 12))) rotate(30)\">\(escape(g.label))</text>\n"
        }
        s += "<text x=\"\(f(ml + 4))\" y=\"\(f(mt + 12))\" fill=\"#555\">o one training seed; bar: mean; whisker: "
            + "95% interval across seeds (t, n-1 df)</text>\n"
        return s + "</svg>\n"
    }
}

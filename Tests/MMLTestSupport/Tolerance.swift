import XCTest

/// |a - b| <= atol + rtol * |b|.
public func isClose(_ a: Double, _ b: Double, atol: Double, rtol: Double) -> Bool {
    abs(a - b) <= atol + rtol * abs(b)
}

/// |a - ref| <= atol + rtol * |ref| elementwise (NaN fails), with the worst offender in the message.
public func assertClose(_ a: [Float], _ ref: [Double], atol: Double, rtol: Double, _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, ref.count, "\(what): counts", file: file, line: line)
    var worst = 0.0, at = -1
    for i in 0..<min(a.count, ref.count) {
        let err = abs(Double(a[i]) - ref[i]) - (atol + rtol * abs(ref[i]))
        if !(err <= 0) && (at < 0 || !(err <= worst)) { worst = err; at = i }
    }
    if at >= 0 {
        XCTFail("\(what): element \(at) is \(a[at]), expected \(ref[at]) (atol \(atol), rtol \(rtol))",
                file: file, line: line)
    }
}

/// Bitwise equality of two float arrays (for thread-count independence).
public func assertBitwiseEqual(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath,
                               line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for i in 0..<min(a.count, b.count) where a[i].bitPattern != b[i].bitPattern {
        XCTFail("\(what): element \(i) differs: \(a[i]) vs \(b[i])", file: file, line: line)
        return
    }
}

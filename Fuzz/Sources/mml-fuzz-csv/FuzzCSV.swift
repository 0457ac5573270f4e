import FuzzSupport
import MMLCore

/// libFuzzer entry point: parse arbitrary bytes as a CSV split (`filename,label` rows). Every input must either
/// parse or throw an `MMLError`; a trap, crash or sanitizer report is a bug in `CSVSplit.parse`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSV(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzReader(data, size, reader: "CSVSplit.parse") { bytes in
        for row in try CSVSplit.parse(bytes, source: "fuzz.csv") {
            precondition(row.line >= 1 && !row.filename.isEmpty && !row.label.isEmpty, "row \(row)")
        }
    }
}

@main
struct FuzzMain {
    static func main() { runFuzzerDriver { data, size in fuzzCSV(data, size) } }
}

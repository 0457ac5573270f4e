import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// Runs `body` once per kernel path: the dispatched one (AVX-512 or AVX2, what the CPU has), the AVX2 one (the
/// dispatched one again on a CPU without AVX-512; left out with `avx2: false`, for the bf16 precisions, which have
/// no AVX2 path) and the portable one, by setting MML_KERNELS_ISA, which the top-K kernels read at every call.
func forEachISA(avx2: Bool = true, _ body: (String) throws -> Void) rethrows {
    for isa in avx2 ? ["auto", "avx2", "portable"] : ["auto", "portable"] {
        if isa == "auto" { unsetenv("MML_KERNELS_ISA") } else { setenv("MML_KERNELS_ISA", isa, 1) }
        defer { unsetenv("MML_KERNELS_ISA") }
        try body(isa)
    }
}

struct TopKResult {
    var status: Int32
    var out: [Float]
    var idx: [Int32]
    var val: [Float]
}

struct TopKNaive {
    var status: Int32
    var out: [Double]
    var idx: [Int32]
    var val: [Double]
}

/// A grouped top-K similarity kernel of mml_topk.h: mml_group_topk_sim_f32, _bf16 or _bf16amx (the same signature).
typealias TopKKernel = @convention(c) (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Int32>?,
                                       UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int64,
                                       UnsafePointer<Float>?, Int64, Int64, UnsafePointer<Int32>?, Int32, Int32,
                                       Int32) -> Int32

/// The precisions of the grouped top-K similarity, for the tests that run the same body on each.
enum TopKPrecision: String, CaseIterable {
    case f32, bf16, bf16amx

    var kernel: TopKKernel {
        switch self {
        case .f32: return mml_group_topk_sim_f32
        case .bf16: return mml_group_topk_sim_bf16
        case .bf16amx: return mml_group_topk_sim_bf16amx
        }
    }
}

/// Runs `kernel` (the f32 one unless told) with the selections; outputs start as NaN / -7 so that anything left
/// unwritten shows.
func runTopK(_ q: [Float], _ m: Int, _ r: [Float], _ n: Int, _ d: Int, _ group: [Int32], _ g: Int, _ k: Int,
             threads: Int = 0, kernel: TopKKernel = mml_group_topk_sim_f32) -> TopKResult {
    var out = [Float](repeating: .nan, count: max(1, m * g))
    var idx = [Int32](repeating: -7, count: max(1, m * g * k))
    var val = [Float](repeating: .nan, count: max(1, m * g * k))
    let s = kernel(&out, &idx, &val, q, Int64(m), r, Int64(n), Int64(d), group, Int32(g), Int32(k), Int32(threads))
    return TopKResult(status: s, out: out, idx: idx, val: val)
}

func runNaive(_ q: [Float], _ m: Int, _ r: [Float], _ n: Int, _ d: Int, _ group: [Int32], _ g: Int,
              _ k: Int) -> TopKNaive {
    var out = [Double](repeating: .nan, count: max(1, m * g))
    var idx = [Int32](repeating: -7, count: max(1, m * g * k))
    var val = [Double](repeating: .nan, count: max(1, m * g * k))
    let s = mml_group_topk_sim_naive(&out, &idx, &val, q, Int64(m), r, Int64(n), Int64(d), group, Int32(g),
                                     Int32(k))
    return TopKNaive(status: s, out: out, idx: idx, val: val)
}

func dotDouble(_ q: [Float], _ i: Int, _ r: [Float], _ j: Int, _ d: Int) -> Double {
    var s = 0.0
    for p in 0..<d { s += Double(q[i * d + p]) * Double(r[j * d + p]) }
    return s
}

/// Groups of the given sizes, contiguous (0,0,..,1,1,..) or shuffled with `rng`.
func makeGroups(_ sizes: [Int], shuffled: Bool, rng: inout TestRNG) -> [Int32] {
    var g: [Int32] = []
    for (i, s) in sizes.enumerated() { g += [Int32](repeating: Int32(i), count: s) }
    if shuffled {
        for i in stride(from: g.count - 1, to: 0, by: -1) { g.swapAt(i, rng.int(i + 1)) }
    }
    return g
}

/// Inputs of the bf16 kernels' tests (m x d queries, n x d references): kind 0 uniform in [-1, 1), 1 tiny (denormal
/// products and partial sums), 2 cancellation, 3 wide magnitudes.
func bf16TestInputs(_ m: Int, _ n: Int, _ d: Int, kind: Int, rng: inout TestRNG) -> ([Float], [Float]) {
    switch kind {
    case 1:  // tiny: entries 2^-67 .. 2^-60, products 2^-134 .. 2^-120 straddle FLT_MIN = 2^-126, so some
             // products and partial sums are denormal (flushed) and others not; a few fp32 inputs are denormal
        let tiny = { (x: Float, e: Int) in x * Float(sign: .plus, exponent: -60 - e, significand: 1) }
        var q = (0..<(m * d)).map { _ in tiny(rng.float(), rng.int(8)) }
        let r = (0..<(n * d)).map { _ in tiny(rng.float(), rng.int(8)) }
        for i in stride(from: 3, to: m * d, by: 11) { q[i] = Float(sign: .plus, exponent: -130, significand: 1) }
        return (q, r)
    case 2:  // cancellation: integer-valued entries, half of the references the negation of their neighbour
        let q = (0..<(m * d)).map { _ in Float(rng.int(9) - 4) * 0.5 }
        var r = (0..<(n * d)).map { _ in Float(rng.int(9) - 4) * 0.25 }
        for j in stride(from: 1, to: n, by: 2) { for p in 0..<d { r[j * d + p] = -r[(j - 1) * d + p] } }
        return (q, r)
    case 3:  // wide magnitudes: entries 2^-60 .. 2^60 with random signs (roundings at every scale)
        let q = (0..<(m * d)).map { _ in rng.float() * Float(sign: .plus, exponent: rng.int(121) - 60, significand: 1) }
        let r = (0..<(n * d)).map { _ in rng.float() * Float(sign: .plus, exponent: rng.int(121) - 60, significand: 1) }
        return (q, r)
    default:
        return (rng.floats(m * d), rng.floats(n * d))
    }
}

/// Runs `run` twice, first on the path dispatch picks (`isa()` must name `fastPath` then) and then with
/// MML_KERNELS_ISA=portable (`isa()` must name "portable"), and returns both results; the environment is left unset.
func fastAndPortable(isa: () -> UnsafePointer<CChar>?, fastPath: String, file: StaticString = #filePath,
                     line: UInt = #line, _ run: () -> TopKResult) -> (fast: TopKResult, portable: TopKResult) {
    unsetenv("MML_KERNELS_ISA")
    XCTAssertEqual(isa().map { String(cString: $0) }, fastPath, file: file, line: line)
    let fast = run()
    setenv("MML_KERNELS_ISA", "portable", 1)
    XCTAssertEqual(isa().map { String(cString: $0) }, "portable", file: file, line: line)
    let portable = run()
    unsetenv("MML_KERNELS_ISA")
    return (fast, portable)
}

/// Two runs of one kernel succeeded and gave the same bits: sums, selected indices and selected values.
func assertSameBits(_ a: TopKResult, _ b: TopKResult, _ what: String, file: StaticString = #filePath,
                    line: UInt = #line) {
    XCTAssertEqual(a.status, 0, what, file: file, line: line)
    XCTAssertEqual(b.status, 0, what, file: file, line: line)
    XCTAssertEqual(a.out.map(\.bitPattern), b.out.map(\.bitPattern), what, file: file, line: line)
    XCTAssertEqual(a.idx, b.idx, what, file: file, line: line)
    XCTAssertEqual(a.val.map(\.bitPattern), b.val.map(\.bitPattern), what, file: file, line: line)
}

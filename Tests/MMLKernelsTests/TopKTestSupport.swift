import Foundation
import MMLKernels
import MMLTestSupport
import XCTest

/// Runs `body` once per kernel path: the dispatched one (AVX-512 here) and the portable one, by setting
/// MML_KERNELS_ISA, which the kernels read at every call.
func forEachISA(_ body: (String) throws -> Void) rethrows {
    for isa in ["auto", "portable"] {
        if isa == "portable" { setenv("MML_KERNELS_ISA", "portable", 1) } else { unsetenv("MML_KERNELS_ISA") }
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

/// A grouped top-K similarity kernel of mml_topk.h: mml_group_topk_sim_f32 or mml_group_topk_sim_bf16 (the same
/// signature).
typealias TopKKernel = @convention(c) (UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Int32>?,
                                       UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int64,
                                       UnsafePointer<Float>?, Int64, Int64, UnsafePointer<Int32>?, Int32, Int32,
                                       Int32) -> Int32

/// The two precisions of the grouped top-K similarity, for the tests that run the same body on both.
enum TopKPrecision: String, CaseIterable {
    case f32, bf16

    var kernel: TopKKernel {
        switch self {
        case .f32: return mml_group_topk_sim_f32
        case .bf16: return mml_group_topk_sim_bf16
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

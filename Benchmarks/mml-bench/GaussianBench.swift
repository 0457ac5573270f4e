import Foundation
import MMLCore
import MMLKernels

/// Rows of `mml-bench kernels` for the Gaussian statistics and distances (distribution level).
func gaussianBenchRows(arguments: [String]) -> [BenchRow] {
    []
}

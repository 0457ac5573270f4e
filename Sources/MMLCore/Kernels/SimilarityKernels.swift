import MMLKernels

/// Thin wrappers over the C similarity kernels (grouped top-K similarity, row L2 normalisation, CHW maps to
/// descriptor rows). They check shapes (a mismatch is a programming error: `precondition`), call C, and turn a
/// bad status the user can cause (a class with too few descriptors, NaN in features) into a thrown `MMLError`
/// whose message names the numbers.
///
/// All matrices are flat row-major `[Float]`. The C kernels pick their AVX-512 or portable code at run time;
/// `MML_KERNELS_ISA=portable` in the environment forces the portable code.
public enum SimilarityKernels {
    /// The result of `groupTopK`.
    public struct GroupTopK: Sendable, Equatable {
        /// `rows x groupCount`: `sums[i * groupCount + g]` = sum of the k largest `<q_i, r_j>` over group g.
        public var sums: [Float]
        /// `rows x groupCount x k` selected reference row indices, largest value first (ties: smaller index
        /// first); nil unless selections were requested.
        public var selectedIndices: [Int32]?
        /// `rows x groupCount x k` the selected inner products, in the same order; nil unless requested.
        public var selectedValues: [Float]?
    }

    /// The arithmetic of `groupTopK`'s inner products.
    public enum Precision: String, Sendable, Codable, CaseIterable {
        /// fp32 products (`mml_group_topk_sim_f32`): the default, and the only one training uses.
        case f32
        /// Inputs rounded to bf16 (nearest even), products accumulated in fp32 with VDPBF16PS's exact
        /// arithmetic (`mml_group_topk_sim_bf16`): an opt-in for evaluation; AVX512-BF16 where the CPU has it, a
        /// portable path with the same bits elsewhere. Sums differ from `.f32` by ~1e-3 k on unit descriptors.
        case bf16
        /// The inputs rounded as `.bf16`, the products accumulated in fp32 in Intel AMX's TDPBF16PS order
        /// (`mml_group_topk_sim_bf16amx`: per block of 16 pairs, the even and the odd elements in two chains, their
        /// sum then added to the dot product): an opt-in for evaluation; AMX where the CPU and OS allow it, a
        /// portable path with the same bits elsewhere. Not `.bf16`'s bits: about a third of d = 64 dot products
        /// differ from them in the last bits (scripts/check-amx-bf16.c).
        case bf16amx
    }

    /// The code path `groupTopK(precision: .bf16)` takes now: "avx512bf16" or "portable" (slow).
    public static var bf16Path: String { String(cString: mml_group_topk_sim_bf16_isa()) }

    /// The code path `groupTopK(precision: .bf16amx)` takes now: "amx" or "portable" (slow).
    public static var bf16amxPath: String { String(cString: mml_group_topk_sim_bf16amx_isa()) }

    /// fp32 -> bf16 bits as the bf16 path rounds its inputs (nearest even; denormals to a signed zero; NaN kept
    /// and quietened); `Float(bitPattern: UInt32(bits) << 16)` is the rounded value.
    public static func bf16Bits(_ x: Float) -> UInt16 { mml_bf16_from_f32(x) }

    /// The DN4 image-to-class rule (METHOD.md 2.1): for every query row i and reference group g, the sum of
    /// the k largest inner products between query row i and the reference rows of group g.
    /// The `rows x referenceRows` product is never held in memory.
    /// - Parameters:
    ///   - queries: `rows x dimension` query descriptors.
    ///   - references: `referenceRows x dimension` reference descriptors.
    ///   - groups: `referenceRows` group ids in `0..<groupCount` (any order; contiguous is not required).
    ///   - k: neighbours per (query row, group), `1...` the smallest group's size.
    ///   - selections: also return the selected indices and values (for the backward pass).
    ///   - precision: `.f32` (default), `.bf16` or `.bf16amx` (see `Precision`; their selected values are the
    ///     bf16 products as computed).
    ///   - threads: worker threads; 0 = all online cores. Results do not depend on it.
    /// - Throws: `MMLError` (`.invalidArgument`) for empty inputs, a group id out of range, k < 1 or k larger
    ///   than some group; (`.numerical`) for NaN/Inf in the inputs or products that overflow Float (with
    ///   `.bf16` / `.bf16amx`, also inputs of magnitude >= 0x1.ffp127, which round to bf16 Inf).
    public static func groupTopK(queries: [Float], rows: Int, references: [Float], referenceRows: Int,
                                 dimension: Int, groups: [Int32], groupCount: Int, k: Int,
                                 selections: Bool = false, precision: Precision = .f32,
                                 threads: Int = 0) throws -> GroupTopK {
        try checkTopKArguments(rows: rows, referenceRows: referenceRows, dimension: dimension, groups: groups,
                               groupCount: groupCount, k: k)
        precondition(queries.count == rows * dimension,
                     "[groupTopK] queries hold \(queries.count) floats, expected rows \(rows) x dimension \(dimension)")
        precondition(references.count == referenceRows * dimension,
                     "[groupTopK] references hold \(references.count) floats, expected \(referenceRows) x \(dimension)")
        precondition(groups.count == referenceRows,
                     "[groupTopK] \(groups.count) group ids for \(referenceRows) reference rows")
        precondition(threads >= 0, "[groupTopK] threads = \(threads) must be >= 0")
        var sums = [Float](repeating: 0, count: rows * groupCount)
        var idx: [Int32]? = selections ? [Int32](repeating: 0, count: rows * groupCount * k) : nil
        var val: [Float]? = selections ? [Float](repeating: 0, count: rows * groupCount * k) : nil
        let status = sums.withUnsafeMutableBufferPointer { out in
            withOptionalMutablePointer(&idx) { ip in
                withOptionalMutablePointer(&val) { vp in
                    let kernel = switch precision {
                    case .f32: mml_group_topk_sim_f32
                    case .bf16: mml_group_topk_sim_bf16
                    case .bf16amx: mml_group_topk_sim_bf16amx
                    }
                    return kernel(out.baseAddress, ip, vp, queries, Int64(rows), references, Int64(referenceRows),
                                  Int64(dimension), groups, Int32(groupCount), Int32(k), Int32(threads))
                }
            }
        }
        if status != MML_OK {
            throw topKError(status: status, queries: queries, references: references, dimension: dimension)
        }
        return GroupTopK(sums: sums, selectedIndices: idx, selectedValues: val)
    }

    /// Backward of `groupTopK` with the selection held fixed:
    /// `dQ_i += sum_{g,t} dout[i,g] * r_{j(i,g,t)}` and `dR_j += sum_{(i,g,t): j(i,g,t)=j} dout[i,g] * q_i`.
    /// - Parameters:
    ///   - dQueries: `rows x dimension`, accumulated into (+=).
    ///   - dReferences: `referenceRows x dimension`, accumulated into (+=).
    ///   - dSums: `rows x groupCount` gradient of the loss with respect to `sums`.
    ///   - selectedIndices: `rows x groupCount x k` from `groupTopK(..., selections: true)`.
    ///   - threads: 0 for all cores; the bits do not depend on it.
    public static func groupTopKBackward(dQueries: inout [Float], dReferences: inout [Float], dSums: [Float],
                                         selectedIndices: [Int32], queries: [Float], rows: Int,
                                         references: [Float], referenceRows: Int, dimension: Int,
                                         groupCount: Int, k: Int, threads: Int = 0) {
        precondition(rows > 0 && referenceRows > 0 && dimension > 0 && groupCount > 0 && k > 0,
                     "[groupTopKBackward] sizes must be positive: rows \(rows), referenceRows \(referenceRows), "
                     + "dimension \(dimension), groupCount \(groupCount), k \(k)")
        precondition(dQueries.count == rows * dimension && queries.count == rows * dimension,
                     "[groupTopKBackward] dQueries/queries must hold \(rows) x \(dimension) floats")
        precondition(dReferences.count == referenceRows * dimension && references.count == referenceRows * dimension,
                     "[groupTopKBackward] dReferences/references must hold \(referenceRows) x \(dimension) floats")
        precondition(dSums.count == rows * groupCount, "[groupTopKBackward] dSums must hold \(rows) x \(groupCount)")
        precondition(selectedIndices.count == rows * groupCount * k,
                     "[groupTopKBackward] selectedIndices must hold \(rows) x \(groupCount) x \(k)")
        let status = mml_group_topk_sim_backward_f32(&dQueries, &dReferences, dSums, selectedIndices, queries,
                                                     Int64(rows), references, Int64(referenceRows),
                                                     Int64(dimension), Int32(groupCount), Int32(k),
                                                     Int32(clamping: threads))
        precondition(status == MML_OK, "[groupTopKBackward] a selected index is outside 0..<\(referenceRows)")
    }

    private static func checkTopKArguments(rows: Int, referenceRows: Int, dimension: Int, groups: [Int32],
                                           groupCount: Int, k: Int) throws {
        guard rows > 0, referenceRows > 0, dimension > 0, groupCount > 0 else {
            throw MMLError(.invalidArgument,
                           "group top-K similarity needs at least one query row, reference row, dimension and "
                           + "group; got \(rows) query rows, \(referenceRows) reference rows, dimension "
                           + "\(dimension), \(groupCount) groups")
        }
        guard k >= 1 else {
            throw MMLError(.invalidArgument, "k = \(k) neighbours; k must be at least 1")
        }
        var size = [Int](repeating: 0, count: groupCount)
        for (j, g) in groups.enumerated() {
            guard g >= 0, Int(g) < groupCount else {
                throw MMLError(.invalidArgument,
                               "reference row \(j) has group id \(g), outside 0..<\(groupCount); "
                               + "number the groups (classes) 0 to \(groupCount - 1)")
            }
            size[Int(g)] += 1
        }
        if let g = size.indices.first(where: { size[$0] < k }) {
            throw MMLError(.invalidArgument,
                           "k = \(k) but group \(g) has \(size[g]) reference rows; lower k or give every class "
                           + "at least \(k) descriptors")
        }
    }

    /// Turns a bad status into the error a user can act on; finds the first non-finite entry for the message.
    private static func topKError(status: Int32, queries: [Float], references: [Float], dimension: Int) -> MMLError {
        if status == MML_ERR_NONFINITE {
            if let i = queries.firstIndex(where: { !$0.isFinite }) {
                return MMLError(.numerical, "query row \(i / dimension), column \(i % dimension) is "
                                + "\(queries[i]); the features hold NaN or Inf (check the input images and the "
                                + "learning rate)")
            }
            if let i = references.firstIndex(where: { !$0.isFinite }) {
                return MMLError(.numerical, "reference row \(i / dimension), column \(i % dimension) is "
                                + "\(references[i]); the features hold NaN or Inf (check the input images and "
                                + "the learning rate)")
            }
            return MMLError(.numerical, "an inner product overflowed Float (features of magnitude ~1e19 or more, "
                            + "or ~3.4e38 with bf16 precision); L2-normalise the descriptors first")
        }
        if status == MML_ERR_NOMEM {
            return MMLError(.kernel, "group top-K similarity could not allocate its scratch memory")
        }
        return MMLError(.kernel, "group top-K similarity failed: \(String(cString: mml_status_string(status)))")
    }

    // MARK: row L2 normalisation

    /// `y_i = x_i / max(||x_i||, eps)` for the `rows` rows of length `dimension` (as `F.normalize`).
    /// - Returns: `y` (`rows x dimension`) and `norms` (`rows`, the norms `||x_i||` before clamping).
    /// - Throws: `MMLError(.numerical)` naming the first row that holds NaN or Inf;
    ///   `.invalidArgument` for empty inputs or `eps <= 0`.
    public static func l2NormalizeRows(_ x: [Float], rows: Int, dimension: Int,
                                       eps: Float = 1e-12) throws -> (y: [Float], norms: [Float]) {
        guard rows > 0, dimension > 0, eps > 0, eps.isFinite else {
            throw MMLError(.invalidArgument, "L2 normalisation needs rows > 0, dimension > 0 and a finite "
                           + "eps > 0; got rows \(rows), dimension \(dimension), eps \(eps)")
        }
        precondition(x.count == rows * dimension,
                     "[l2NormalizeRows] x holds \(x.count) floats, expected \(rows) x \(dimension)")
        var y = [Float](repeating: 0, count: x.count)
        var norms = [Float](repeating: 0, count: rows)
        let status = mml_l2_normalize_rows_f32(&y, &norms, x, Int64(rows), Int64(dimension), eps)
        if status != MML_OK { throw nonfiniteRowError(x, dimension: dimension, what: "row") }
        return (y, norms)
    }

    /// Backward of `l2NormalizeRows`: `dx_i = (dy_i - y_i <y_i, dy_i>) / ||x_i||` where `||x_i|| > eps`,
    /// else `dy_i / eps`. Shapes: `dy`, `y`: `rows x dimension`; `norms`: `rows`. Returns `dx`.
    public static func l2NormalizeRowsBackward(dy: [Float], y: [Float], norms: [Float], rows: Int, dimension: Int,
                                               eps: Float = 1e-12, threads: Int = 0) -> [Float] {
        precondition(rows > 0 && dimension > 0 && eps > 0 && dy.count == rows * dimension
                     && y.count == rows * dimension && norms.count == rows,
                     "[l2NormalizeRowsBackward] shapes: dy \(dy.count), y \(y.count), norms \(norms.count) for "
                     + "\(rows) x \(dimension), eps \(eps)")
        var status = Int32(MML_OK)
        let dx = [Float](unsafeUninitializedCapacity: dy.count) { buffer, initialized in
            status = mml_l2_normalize_rows_backward_f32(buffer.baseAddress, dy, y, norms, Int64(rows),
                                                        Int64(dimension), eps, Int32(clamping: threads))
            initialized = dy.count
        }
        precondition(status == Int32(MML_OK), "[l2NormalizeRowsBackward] status \(status)")
        return dx
    }

    /// Channel-major feature maps to descriptor rows: `count` images of `dimension x positions` floats (CHW)
    /// become `count * positions` rows of `dimension` (image-major, then position), L2-normalised when
    /// `normalize` is true. Returns the rows and each row's norm before normalisation.
    /// - Throws: `MMLError(.numerical)` naming the image, channel and position of a NaN/Inf.
    public static func mapsToRows(_ maps: [Float], count: Int, dimension: Int, positions: Int,
                                  normalize: Bool, eps: Float = 1e-12,
                                  threads: Int = 0) throws -> (rows: [Float], norms: [Float]) {
        guard count > 0, dimension > 0, positions > 0, eps > 0, eps.isFinite else {
            throw MMLError(.invalidArgument, "maps to rows needs count, dimension and positions > 0 and a "
                           + "finite eps > 0; got count \(count), dimension \(dimension), positions \(positions), eps \(eps)")
        }
        precondition(maps.count == count * dimension * positions,
                     "[mapsToRows] maps hold \(maps.count) floats, expected \(count) x \(dimension) x \(positions)")
        var out = [Float](repeating: 0, count: maps.count)
        var norms = [Float](repeating: 0, count: count * positions)
        let status = mml_maps_to_rows_f32(&out, &norms, maps, Int64(count), Int64(dimension), Int64(positions),
                                          normalize ? 1 : 0, eps, Int32(clamping: threads))
        if status != MML_OK {
            let i = maps.firstIndex(where: { !$0.isFinite }) ?? 0
            let per = dimension * positions
            throw MMLError(.numerical, "feature map \(i / per), channel \((i % per) / positions), position "
                           + "\(i % positions) is \(maps[i]); the features hold NaN or Inf (check the input "
                           + "images and the learning rate)")
        }
        return (out, norms)
    }

    /// The inverse of `mapsToRows`' layout change: `count * positions` rows of `dimension` floats back to `count`
    /// channel-major maps of `dimension x positions`.
    public static func rowsToMaps(_ rows: [Float], count: Int, dimension: Int, positions: Int,
                                  threads: Int = 0) -> [Float] {
        precondition(count > 0 && dimension > 0 && positions > 0 && rows.count == count * dimension * positions,
                     "[rowsToMaps] rows hold \(rows.count) floats, expected \(count) x \(positions) x \(dimension)")
        return [Float](unsafeUninitializedCapacity: rows.count) { buffer, initialized in
            _ = mml_rows_to_maps_f32(buffer.baseAddress, rows, Int64(count), Int64(dimension), Int64(positions),
                                     Int32(clamping: threads))
            initialized = rows.count
        }
    }

    /// The part level's region pooling: maps `(count, channels, height, width)` to `count x R` region vectors of
    /// `channels` (R = the sum of g * g over `grids`; adaptive bounds, grids in order, row-major inside a grid).
    public static func regionPool(_ maps: [Float], count: Int, channels: Int, height: Int, width: Int,
                                  grids: [Int], threads: Int = 0) -> [Float] {
        let per = grids.reduce(0) { $0 + $1 * $1 }
        precondition(count > 0 && channels > 0 && maps.count == count * channels * height * width && !grids.isEmpty
                     && grids.allSatisfy { $0 >= 1 && $0 <= min(height, width) },
                     "[regionPool] \(maps.count) floats for \([count, channels, height, width]), grids \(grids)")
        let g = grids.map { Int32($0) }
        return [Float](unsafeUninitializedCapacity: count * per * channels) { buffer, initialized in
            _ = mml_region_pool_f32(buffer.baseAddress, maps, Int64(count), Int64(channels), Int64(height),
                                    Int64(width), g, Int32(g.count), Int32(clamping: threads))
            initialized = count * per * channels
        }
    }

    /// Backward of `regionPool`: each region's gradient divided by its cells, added to them (a new array).
    public static func regionPoolBackward(_ dRegions: [Float], count: Int, channels: Int, height: Int, width: Int,
                                          grids: [Int], threads: Int = 0) -> [Float] {
        let per = grids.reduce(0) { $0 + $1 * $1 }
        precondition(count > 0 && channels > 0 && dRegions.count == count * per * channels && !grids.isEmpty
                     && grids.allSatisfy { $0 >= 1 && $0 <= min(height, width) },
                     "[regionPoolBackward] \(dRegions.count) floats for \(count) x \(per) x \(channels), grids \(grids)")
        let g = grids.map { Int32($0) }
        return [Float](unsafeUninitializedCapacity: count * channels * height * width) { buffer, initialized in
            _ = mml_region_pool_backward_f32(buffer.baseAddress, dRegions, Int64(count), Int64(channels),
                                             Int64(height), Int64(width), g, Int32(g.count), Int32(clamping: threads))
            initialized = count * channels * height * width
        }
    }

    private static func nonfiniteRowError(_ x: [Float], dimension: Int, what: String) -> MMLError {
        let i = x.firstIndex(where: { !$0.isFinite }) ?? 0
        return MMLError(.numerical, "\(what) \(i / dimension), column \(i % dimension) is \(x[i]); the features "
                        + "hold NaN or Inf (check the input images and the learning rate)")
    }
}

/// Calls `body` with the array's base address, or nil when the array is nil.
private func withOptionalMutablePointer<T, R>(_ a: inout [T]?, _ body: (UnsafeMutablePointer<T>?) -> R) -> R {
    if a == nil { return body(nil) }
    return a!.withUnsafeMutableBufferPointer { body($0.baseAddress) }
}

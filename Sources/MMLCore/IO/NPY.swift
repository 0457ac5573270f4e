import Foundation

/// Element types mml reads and writes in `.npy` files.
public enum NPYDType: String, Sendable, CaseIterable {
    case float32 = "<f4", float64 = "<f8", int32 = "<i4", int64 = "<i8"
    /// Bytes per element.
    public var size: Int { self == .float32 || self == .int32 ? 4 : 8 }
}

/// A decoded `.npy` array: shape, element type and the raw little-endian element bytes.
public struct NPYArray: Sendable {
    public let shape: [Int]
    public let dtype: NPYDType
    /// `count * dtype.size` little-endian bytes in C order.
    public let bytes: [UInt8]
    public var count: Int { shape.reduce(1, *) }

    /// The elements as Float (float32 exactly, float64 rounded; integers converted).
    public func floats() -> [Float] {
        var out = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<count {
                switch dtype {
                case .float32: out[i] = Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)
                case .float64: out[i] = Float(Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian))
                case .int32: out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                case .int64: out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                }
            }
        }
        return out
    }

    /// The elements as Int; floats must hold whole numbers.
    public func ints(source: String = "array") throws -> [Int] {
        var out = [Int](repeating: 0, count: count)
        switch dtype {
        case .int32, .int64:
            bytes.withUnsafeBytes { raw in
                for i in 0..<count {
                    out[i] = dtype == .int32
                        ? Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                        : Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                }
            }
        case .float32, .float64:
            for i in 0..<count {
                // Read at full precision: a float64 like 2^40 + 0.5 must not round to a whole Float.
                let v: Double = bytes.withUnsafeBytes { raw in
                    dtype == .float32
                        ? Double(Float(bitPattern: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian))
                        : Double(bitPattern: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian)
                }
                guard v.isFinite, v == v.rounded() else {
                    throw MMLError(.invalidArgument, "\(source): element \(i) is \(v), not a whole number; labels must be integers")
                }
                // Beyond 2^53 floats skip integers, and beyond Int.max the conversion would trap.
                guard abs(v) <= 9_007_199_254_740_992 else {
                    throw MMLError(.invalidArgument, "\(source): element \(i) is \(v), too large for an integer label "
                                   + "(at most 2^53 in magnitude); save labels as int64")
                }
                out[i] = Int(v)
            }
        }
        return out
    }
}

/// Reading and writing NumPy `.npy` files (format versions 1.0, 2.0 and 3.0): little-endian float32/float64/int32/
/// int64 in C order. Anything else is refused with a message that says how to convert it in NumPy.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"
    /// Headers longer than this are refused (NumPy itself caps them at 10 kB by default).
    public static let maxHeaderLength = 1 << 16

    /// Read and decode a file.
    /// - Throws: `MMLError` naming the file and what is wrong with it.
    public static func read(_ path: String) throws -> NPYArray {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MMLError(.fileNotFound, "cannot read \(path): no such file or not readable")
        }
        return try decode([UInt8](data), source: path)
    }

    /// Read a float array (float32 or float64) and check every element is finite.
    public static func readTensor(_ path: String, checkFinite: Bool = true) throws -> Tensor {
        let a = try read(path)
        guard a.dtype == .float32 || a.dtype == .float64 else {
            throw MMLError(.unsupportedFormat, "\(path): dtype \(a.dtype.rawValue) where features must be float32 or float64; save with arr.astype(np.float32)")
        }
        let f = a.floats()
        if checkFinite, let i = f.firstIndex(where: { !$0.isFinite }) {
            throw MMLError(.numerical, "\(path): element \(i) (\(indexString(i, shape: a.shape))) is \(f[i]); features must be finite")
        }
        return Tensor(shape: a.shape, data: f)
    }

    /// "index (0, 3, 1)" for flat index `i` in C order.
    static func indexString(_ i: Int, shape: [Int]) -> String {
        var rest = i
        var idx = [Int](repeating: 0, count: shape.count)
        for d in stride(from: shape.count - 1, through: 0, by: -1) where shape[d] > 0 {
            idx[d] = rest % shape[d]
            rest /= shape[d]
        }
        return "index (" + idx.map(String.init).joined(separator: ", ") + ")"
    }

    /// Decode the bytes of a `.npy` file. `source` names it in errors.
    public static func decode(_ b: [UInt8], source: String) throws -> NPYArray {
        func fail(_ what: String) -> MMLError { MMLError(.corruptFile, "\(source): \(what)") }
        guard b.count >= 10, Array(b[0..<6]) == magic else {
            throw fail("not a .npy file (no \\x93NUMPY magic at the start); write it with numpy.save")
        }
        let major = b[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(b[8]) | Int(b[9]) << 8
            headerStart = 10
        case 2, 3:
            guard b.count >= 12 else { throw fail("truncated in the header length field (\(b.count) bytes)") }
            headerLength = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24
            headerStart = 12
        default:
            throw fail("format version \(major).\(b[7]) is not supported (1.0, 2.0 and 3.0 are)")
        }
        guard headerLength <= maxHeaderLength else {
            throw fail("header length \(headerLength) bytes exceeds the limit of \(maxHeaderLength); the file is corrupt")
        }
        guard headerStart + headerLength <= b.count else {
            throw fail("truncated: the header claims \(headerLength) bytes but the file has \(b.count - headerStart) after the length field")
        }
        guard let header = String(bytes: b[headerStart..<(headerStart + headerLength)], encoding: .utf8) else {
            throw fail("the header is not text")
        }
        let (descr, fortran, shape) = try parseHeader(header, source: source)
        guard !fortran else {
            throw MMLError(.unsupportedFormat, "\(source): Fortran (column-major) order; save np.ascontiguousarray(arr) instead")
        }
        guard let dtype = NPYDType(rawValue: descr == "<f4" || descr == "=f4" ? "<f4" : descr == "=f8" ? "<f8" : descr) else {
            if descr.hasPrefix(">") {
                throw MMLError(.unsupportedFormat, "\(source): big-endian dtype \(descr); save arr.astype('<\(descr.dropFirst())') instead")
            }
            throw MMLError(.unsupportedFormat, "\(source): dtype \(descr) is not supported (float32 <f4, float64 <f8, int32 <i4, int64 <i8 are); convert with arr.astype(np.float32)")
        }
        var count = 1
        for s in shape {
            let (p, overflow) = count.multipliedReportingOverflow(by: s)
            guard !overflow, p <= Int(Int32.max) * 16 else { throw fail("shape \(shape) is too large") }
            count = p
        }
        let dataStart = headerStart + headerLength
        let need = count * dtype.size
        let have = b.count - dataStart
        guard have >= need else {
            throw fail("truncated: shape \(shape) of \(dtype.rawValue) needs \(need) data bytes, the file has \(have)")
        }
        guard have == need else {
            throw fail("\(have - need) unexpected bytes after the data of shape \(shape) (\(need) bytes); the file is corrupt")
        }
        return NPYArray(shape: shape, dtype: dtype, bytes: Array(b[dataStart..<(dataStart + need)]))
    }

    /// Parse the Python-literal header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
    static func parseHeader(_ h: String, source: String) throws -> (String, Bool, [Int]) {
        func fail(_ what: String) -> MMLError { MMLError(.corruptFile, "\(source): bad .npy header (\(what)): \(h.prefix(120))") }
        func value(of key: String) -> Substring? {
            for quote in ["'", "\""] {
                if let r = h.range(of: "\(quote)\(key)\(quote)") {
                    var rest = h[r.upperBound...].drop { $0 == " " }
                    guard rest.first == ":" else { return nil }
                    rest = rest.dropFirst().drop { $0 == " " }
                    return rest
                }
            }
            return nil
        }
        guard let d = value(of: "descr"), let q = d.first, q == "'" || q == "\"" else { throw fail("no 'descr'") }
        let dBody = d.dropFirst()
        guard let dEnd = dBody.firstIndex(of: q) else { throw fail("unterminated 'descr'") }
        let descr = String(dBody[..<dEnd])
        guard let f = value(of: "fortran_order") else { throw fail("no 'fortran_order'") }
        let fortran: Bool
        if f.hasPrefix("True") { fortran = true } else if f.hasPrefix("False") { fortran = false } else {
            throw fail("'fortran_order' is neither True nor False")
        }
        guard let s = value(of: "shape"), s.first == "(" else { throw fail("no 'shape' tuple") }
        guard let close = s.firstIndex(of: ")") else { throw fail("unterminated 'shape'") }
        let inner = s[s.index(after: s.startIndex)..<close]
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "L", with: "")
            if t.isEmpty { continue }
            guard let v = Int(t), v >= 0 else { throw fail("shape entry '\(t)' is not a non-negative integer") }
            shape.append(v)
        }
        return (descr, fortran, shape)
    }

    /// Encode an array: format 1.0 (2.0 when the header needs it), header padded so the data starts on 64 bytes.
    public static func encode(shape: [Int], dtype: NPYDType, bytes: [UInt8]) -> [UInt8] {
        precondition(bytes.count == shape.reduce(1, *) * dtype.size, "[npy] \(bytes.count) bytes for shape \(shape)")
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        let v1 = 10 + dict.utf8.count + 1 <= 65535 + 10
        let prefix = v1 ? 10 : 12
        let total = prefix + dict.utf8.count + 1
        dict += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out = magic + [v1 ? 1 : 2, 0]
        let n = dict.utf8.count
        out += v1 ? [UInt8(n & 0xFF), UInt8(n >> 8)] : [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)]
        out += Array(dict.utf8)
        return out + bytes
    }

    /// Write a float32 tensor to `path` (atomically).
    public static func write(_ t: Tensor, to path: String) throws {
        var bytes = [UInt8](repeating: 0, count: t.count * 4)
        bytes.withUnsafeMutableBytes { raw in
            for (i, v) in t.data.enumerated() { raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
        }
        try AtomicFile.write(Data(encode(shape: t.shape, dtype: .float32, bytes: bytes)), to: path)
    }

    /// Write integers as int64 to `path` (atomically).
    public static func write(ints: [Int], shape: [Int], to path: String) throws {
        precondition(ints.count == shape.reduce(1, *), "[npy] \(ints.count) integers for shape \(shape)")
        var bytes = [UInt8](repeating: 0, count: ints.count * 8)
        bytes.withUnsafeMutableBytes { raw in
            for (i, v) in ints.enumerated() { raw.storeBytes(of: Int64(v).littleEndian, toByteOffset: 8 * i, as: Int64.self) }
        }
        try AtomicFile.write(Data(encode(shape: shape, dtype: .int64, bytes: bytes)), to: path)
    }
}

import Foundation
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Model parameters as safetensors files (the format Hugging Face's `safetensors` reads and writes):
/// an 8-byte little-endian header length N, N bytes of JSON
/// `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}`,
/// then the raw little-endian tensor bytes, offsets relative to the start of that data.
///
/// Reading validates everything (header length, JSON, dtypes, shapes, offsets) and throws `MMLError(.corruptFile)`
/// for anything malformed, never traps. Writing goes to a temporary file renamed over the target.
public enum Safetensors {
    /// Largest accepted header (the reference implementation's limit is 100 MB).
    public static let maxHeaderBytes = 100_000_000

    /// One tensor's description in a file.
    public struct Entry: Equatable, Sendable {
        public let name: String
        /// "F32", "F16", "I64", ...
        public let dtype: String
        public let shape: [Int]
        /// Byte range inside the data section.
        public let byteRange: Range<Int>
    }

    /// A parsed file: its entries, metadata and data section.
    public struct Contents: Sendable {
        /// Entries in header order.
        public let entries: [Entry]
        /// The `__metadata__` string map (empty when absent).
        public let metadata: [String: String]
        let data: [UInt8]
        let source: String

        /// The entry with this name, if any.
        public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

        /// The F32 tensor with this name. - Throws: `MMLError` when absent or not F32.
        public func tensor(named name: String) throws -> Tensor {
            guard let e = entry(named: name) else {
                throw MMLError(.corruptFile, "\(source): no tensor named '\(name)'")
            }
            guard e.dtype == "F32" else {
                throw MMLError(.unsupportedFormat, "\(source): tensor '\(name)' has dtype \(e.dtype); only F32 is "
                               + "supported (convert it with tensor.float() before saving)")
            }
            var t = Tensor(shape: e.shape)
            t.data.withUnsafeMutableBytes { dst in
                data.withUnsafeBytes { src in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[e.byteRange]))
                }
            }
            #if _endian(big)
            for i in 0..<t.count { t.data[i] = Float(bitPattern: UInt32(littleEndian: t.data[i].bitPattern)) }
            #endif
            return t
        }
    }

    static let elementSizes: [String: Int] = [
        "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
        "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
    ]

    /// Parses a whole file's bytes. `source` names the file in error messages.
    /// - Throws: `MMLError(.corruptFile)` saying what is malformed.
    public static func parse(_ bytes: [UInt8], source: String = "safetensors data") throws -> Contents {
        func corrupt(_ m: String) -> MMLError {
            MMLError(.corruptFile, "\(source): \(m); the file is not a valid safetensors file (re-save it)")
        }
        guard bytes.count >= 8 else { throw corrupt("only \(bytes.count) bytes, shorter than the 8-byte header length") }
        var n: UInt64 = 0
        for k in 0..<8 { n |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        guard n <= UInt64(maxHeaderBytes) else { throw corrupt("header length \(n) exceeds the \(maxHeaderBytes)-byte limit") }
        let headerLength = Int(n)
        guard headerLength <= bytes.count - 8 else {
            throw corrupt("header length \(headerLength) runs past the end of the file (\(bytes.count) bytes; truncated?)")
        }
        let json: SafetensorsJSON
        do {
            json = try SafetensorsJSON.parse(Array(bytes[8..<(8 + headerLength)]))
        } catch let e as SafetensorsJSON.ParseError {
            throw corrupt("bad JSON header at byte \(8 + e.offset): \(e.message)")
        }
        guard case .object(let members) = json else { throw corrupt("the JSON header is not an object") }
        let dataStart = 8 + headerLength
        let dataCount = bytes.count - dataStart
        var entries: [Entry] = []
        var metadata: [String: String] = [:]
        var seen = Set<String>()
        for (name, value) in members {
            guard seen.insert(name).inserted else { throw corrupt("tensor name '\(name)' appears twice") }
            if name == "__metadata__" {
                guard case .object(let kv) = value else { throw corrupt("__metadata__ is not an object") }
                for (k, v) in kv {
                    guard case .string(let s) = v else { throw corrupt("__metadata__ value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            entries.append(try entry(name, value, dataCount: dataCount, corrupt))
        }
        // Tensors may be listed in any order, but their byte ranges must not overlap (writing one would change
        // another; the reference implementation lays them end to end). Empty tensors take no bytes.
        let byStart = entries.filter { !$0.byteRange.isEmpty }.sorted {
            ($0.byteRange.lowerBound, $0.name) < ($1.byteRange.lowerBound, $1.name)
        }
        for (a, b) in zip(byStart, byStart.dropFirst()) where b.byteRange.lowerBound < a.byteRange.upperBound {
            throw corrupt("the data of '\(a.name)' (bytes \(a.byteRange.lowerBound)..<\(a.byteRange.upperBound)) and "
                          + "'\(b.name)' (bytes \(b.byteRange.lowerBound)..<\(b.byteRange.upperBound)) overlap")
        }
        return Contents(entries: entries, metadata: metadata, data: Array(bytes[dataStart...]), source: source)
    }

    private static func entry(_ name: String, _ value: SafetensorsJSON, dataCount: Int,
                              _ corrupt: (String) -> MMLError) throws -> Entry {
        guard case .object(let fields) = value else { throw corrupt("entry '\(name)' is not an object") }
        var dtype: String?, shape: [Int]?, offsets: [Int]?
        for (k, v) in fields {
            switch k {
            case "dtype":
                guard case .string(let s) = v else { throw corrupt("'\(name)': dtype is not a string") }
                dtype = s
            case "shape", "data_offsets":
                guard case .array(let items) = v else { throw corrupt("'\(name)': \(k) is not an array") }
                var ints: [Int] = []
                for item in items {
                    guard case .integer(let x) = item, x >= 0 else {
                        throw corrupt("'\(name)': \(k) holds something other than a non-negative integer")
                    }
                    ints.append(x)
                }
                if k == "shape" { shape = ints } else { offsets = ints }
            default:
                throw corrupt("'\(name)': unknown field '\(k)'")
            }
        }
        guard let dtype, let shape, let offsets else {
            throw corrupt("'\(name)': needs dtype, shape and data_offsets")
        }
        guard let size = elementSizes[dtype] else { throw corrupt("'\(name)': unknown dtype '\(dtype)'") }
        guard offsets.count == 2, offsets[0] <= offsets[1] else {
            throw corrupt("'\(name)': data_offsets \(offsets) must be [begin, end] with begin <= end")
        }
        guard offsets[1] <= dataCount else {
            throw corrupt("'\(name)': data_offsets \(offsets) run past the \(dataCount)-byte data section (truncated?)")
        }
        var elements = 1
        for d in shape {
            let (m, o) = elements.multipliedReportingOverflow(by: d)
            guard !o else { throw corrupt("'\(name)': shape \(shape) overflows") }
            elements = m
        }
        let (bytes, o) = elements.multipliedReportingOverflow(by: size)
        guard !o, bytes == offsets[1] - offsets[0] else {
            throw corrupt("'\(name)': shape \(shape) of \(dtype) needs \(o ? "too many" : String(bytes)) bytes but "
                          + "data_offsets \(offsets) span \(offsets[1] - offsets[0])")
        }
        return Entry(name: name, dtype: dtype, shape: shape, byteRange: offsets[0]..<offsets[1])
    }

    /// The bytes of a safetensors file holding `tensors` (F32, in the given order) and `metadata`.
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]) -> [UInt8] {
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let kv = metadata.sorted { $0.key < $1.key }
                .map { jsonQuoted($0.key) + ":" + jsonQuoted($0.value) }
            parts.append("\"__metadata__\":{" + kv.joined(separator: ",") + "}")
        }
        var offset = 0
        for (name, t) in tensors {
            let end = offset + 4 * t.count
            parts.append(jsonQuoted(name) + ":{\"dtype\":\"F32\",\"shape\":["
                         + t.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += parts.joined(separator: ",") + "}"
        var hb = Array(header.utf8)
        while hb.count % 8 != 0 { hb.append(0x20) }  // pad so the data starts 8-byte aligned, as the reference does
        var out: [UInt8] = []
        out.reserveCapacity(8 + hb.count + offset)
        let n = UInt64(hb.count)
        for k in 0..<8 { out.append(UInt8((n >> (8 * UInt64(k))) & 0xFF)) }
        out += hb
        for (_, t) in tensors {
            for v in t.data { let b = v.bitPattern.littleEndian; for k in 0..<4 { out.append(UInt8((b >> (8 * UInt32(k))) & 0xFF)) } }
        }
        return out
    }

    /// Writes `tensors` to `path` through a temporary file in the same directory renamed over it.
    /// - Throws: `MMLError(.io)` naming the path and the system error.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
                             to path: String) throws {
        let bytes = encode(tensors, metadata: metadata)
        let tmp = AtomicFile.temporaryPath(for: path)
        try bytes.withUnsafeBytes { try AtomicFile.writeSynced($0, to: tmp, target: path) }
        guard rename(tmp, path) == 0 else {
            let err = String(cString: strerror(errno))
            unlink(tmp)
            throw MMLError(.io, "cannot rename \(tmp) to \(path): \(err)")
        }
    }

    /// The `__metadata__` of the file at `path`, reading only its header (not the tensors).
    /// - Throws: `MMLError(.fileNotFound / .io / .corruptFile)`.
    public static func metadata(at path: String) throws -> [String: String] {
        guard let f = fopen(path, "rb") else {
            let code = errno
            throw MMLError(code == ENOENT ? .fileNotFound : .io,
                           "cannot open safetensors file \(path): \(String(cString: strerror(code)))")
        }
        defer { fclose(f) }
        var lengthBytes = [UInt8](repeating: 0, count: 8)
        guard lengthBytes.withUnsafeMutableBytes({ fread($0.baseAddress, 1, 8, f) }) == 8 else {
            throw MMLError(.corruptFile, "\(path) is shorter than a safetensors header")
        }
        let n = lengthBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(maxHeaderBytes) else {
            throw MMLError(.corruptFile, "\(path): header length \(n) exceeds \(maxHeaderBytes) bytes")
        }
        var header = [UInt8](repeating: 0, count: Int(n))
        guard header.withUnsafeMutableBytes({ fread($0.baseAddress, 1, Int(n), f) }) == Int(n) else {
            throw MMLError(.corruptFile, "\(path) ends inside its safetensors header")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(header))) as? [String: Any] else {
            throw MMLError(.corruptFile, "\(path): the safetensors header is not a JSON object")
        }
        return (object["__metadata__"] as? [String: String]) ?? [:]
    }

    /// Reads and parses the file at `path`. - Throws: `MMLError(.fileNotFound / .io / .corruptFile)`.
    public static func read(contentsOf path: String) throws -> Contents {
        guard let f = fopen(path, "rb") else {
            let code = errno
            throw MMLError(code == ENOENT ? .fileNotFound : .io,
                           "cannot open safetensors file \(path): \(String(cString: strerror(code)))")
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let r = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if r > 0 { bytes += chunk[0..<r] }
            if r < chunk.count {
                if ferror(f) != 0 { throw MMLError(.io, "reading \(path) failed: \(String(cString: strerror(errno)))") }
                break
            }
        }
        return try parse(bytes, source: path)
    }

    /// Saves every parameter and buffer of `model` (names `prefix.block1.conv.weight`, ...) to `path`.
    public static func save(_ model: any ParameterContainer, prefix: String = "", metadata: [String: String] = [:],
                            to path: String) throws {
        let tensors = model.namedParameters(prefix: prefix).map { (name: $0.name, tensor: $0.parameter.value) }
        try write(tensors, metadata: metadata, to: path)
    }

    /// Loads every parameter and buffer of `model` from `path`, checking that names, shapes and dtypes match.
    /// Nothing is changed unless everything matches.
    /// - Parameter allowExtra: accept tensors in the file that the model does not have (e.g. a classifier head).
    /// - Throws: `MMLError` naming the first missing tensor, unexpected tensor, wrong dtype or wrong shape.
    /// - Returns: the file's metadata.
    @discardableResult
    public static func load(into model: any ParameterContainer, prefix: String = "", from path: String,
                            allowExtra: Bool = false) throws -> [String: String] {
        let contents = try read(contentsOf: path)
        let params = model.namedParameters(prefix: prefix)
        var values: [Tensor] = []
        for (name, p) in params {
            guard let e = contents.entry(named: name) else {
                throw MMLError(.invalidArgument, "\(path): the model's tensor '\(name)' is missing from the file; "
                               + "was it saved from a different backbone or with another prefix?")
            }
            guard e.dtype == "F32" else {
                throw MMLError(.unsupportedFormat, "\(path): tensor '\(name)' has dtype \(e.dtype), expected F32")
            }
            guard e.shape == p.value.shape else {
                throw MMLError(.invalidArgument, "\(path): tensor '\(name)' has shape \(e.shape) but the model expects "
                               + "\(p.value.shape); check the backbone kind, widths and input channels")
            }
            values.append(try contents.tensor(named: name))
        }
        if !allowExtra {
            let known = Set(params.map(\.name))
            if let extra = contents.entries.first(where: { !known.contains($0.name) }) {
                throw MMLError(.invalidArgument, "\(path): tensor '\(extra.name)' in the file has no counterpart in the "
                               + "model (\(params.count) tensors); pass allowExtra to ignore it")
            }
        }
        for (k, (_, p)) in params.enumerated() { p.value = values[k] }
        return contents.metadata
    }
}

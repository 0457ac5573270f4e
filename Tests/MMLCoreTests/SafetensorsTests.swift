import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// Safetensors: round trip, the exact byte layout, load-time checks and malformed input.
final class SafetensorsTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws { dir = try makeTempDir(self, prefix: "mml-st") }

    func testBackboneRoundTripWithBuffersAndMetadata() throws {
        let a = try makeBackbone(BackboneConfiguration(kind: .conv4, widths: [4, 5, 6, 7], seed: 1))
        _ = a.forward(LayerFD.random([2, 3, 16, 16], seed: 2), training: true)  // moves the running statistics
        let path = dir + "/model.safetensors"
        try Safetensors.save(a, prefix: "backbone", metadata: ["format": "pt", "kind": "conv4"], to: path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp-\(getpid())"), "temporary file renamed")
        let b = try makeBackbone(BackboneConfiguration(kind: .conv4, widths: [4, 5, 6, 7], seed: 99))
        let meta = try Safetensors.load(into: b, prefix: "backbone", from: path)
        XCTAssertEqual(meta, ["format": "pt", "kind": "conv4"])
        let pa = a.namedParameters(), pb = b.namedParameters()
        XCTAssertEqual(pa.map(\.name), pb.map(\.name))
        for (x, y) in zip(pa, pb) { XCTAssertEqual(x.parameter.value, y.parameter.value, x.name) }
        let contents = try Safetensors.read(contentsOf: path)
        XCTAssertNotNil(contents.entry(named: "backbone.block2.bn.running_var"))
        XCTAssertEqual(contents.entry(named: "backbone.block1.conv.weight")?.shape, [4, 3, 3, 3])
    }

    func testByteLayout() throws {
        let t = Tensor(shape: [2], data: [1, -2])
        let bytes = Safetensors.encode([("w", t)])
        let n = Int(bytes[0]) | Int(bytes[1]) << 8
        XCTAssertEqual(bytes[2..<8].allSatisfy { $0 == 0 }, true)
        XCTAssertEqual(n % 8, 0)
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self).trimmingCharacters(in: .whitespaces)
        XCTAssertEqual(header, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}")
        XCTAssertEqual(Array(bytes[(8 + n)...]), [0, 0, 0x80, 0x3F, 0, 0, 0, 0xC0])  // 1.0f, -2.0f little-endian
    }

    func testLoadNamesTheWrongTensor() throws {
        let path = dir + "/m.safetensors"
        let model = try makeBackbone(BackboneConfiguration(kind: .conv4, widths: [4, 4, 4, 4]))
        var tensors = model.namedParameters().map { (name: $0.name, tensor: $0.parameter.value) }
        // wrong shape
        tensors[0].tensor = Tensor(shape: [4, 3, 3, 2])
        try Safetensors.write(tensors, to: path)
        XCTAssertThrowsError(try Safetensors.load(into: model, from: path)) {
            XCTAssertTrue("\($0)".contains("'block1.conv.weight' has shape [4, 3, 3, 2] but the model expects [4, 3, 3, 3]"), "\($0)")
        }
        // missing
        tensors = model.namedParameters().map { (name: $0.name, tensor: $0.parameter.value) }
        try Safetensors.write(Array(tensors.dropLast()), to: path)
        XCTAssertThrowsError(try Safetensors.load(into: model, from: path)) {
            XCTAssertTrue("\($0)".contains("'block4.bn.running_var' is missing"), "\($0)")
        }
        // extra
        try Safetensors.write(tensors + [(name: "head.weight", tensor: Tensor(shape: [1]))], to: path)
        XCTAssertThrowsError(try Safetensors.load(into: model, from: path)) {
            XCTAssertTrue("\($0)".contains("'head.weight' in the file has no counterpart"), "\($0)")
        }
        XCTAssertNoThrow(try Safetensors.load(into: model, from: path, allowExtra: true))
        // wrong dtype: rewrite the header of a one-tensor file by hand
        let header = "{\"block1.conv.weight\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}"
        try rawFile(header: header, data: [UInt8](repeating: 0, count: 4)).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Safetensors.load(into: model, from: path)) {
            XCTAssertTrue("\($0)".contains("'block1.conv.weight' has dtype F16, expected F32"), "\($0)")
        }
        XCTAssertThrowsError(try Safetensors.read(contentsOf: dir + "/nope.safetensors")) {
            XCTAssertEqual(($0 as? MMLError)?.kind, .fileNotFound)
        }
    }

    func rawFile(header: String, data: [UInt8], length: UInt64? = nil) -> Data {
        let h = Array(header.utf8)
        let n = length ?? UInt64(h.count)
        var out: [UInt8] = (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xFF) }
        out += h + data
        return Data(out)
    }

    func expectCorrupt(_ bytes: [UInt8], _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Safetensors.parse(bytes, source: "t.safetensors"), file: file, line: line) { e in
            XCTAssertEqual((e as? MMLError)?.kind, .corruptFile, file: file, line: line)
            XCTAssertTrue("\(e)".contains(fragment), "\(e)", file: file, line: line)
        }
    }

    func testMalformedFilesGiveErrors() {
        let good = Safetensors.encode([("w", Tensor(shape: [3], data: [1, 2, 3]))])
        expectCorrupt(Array(good[0..<5]), "shorter than the 8-byte header length")
        expectCorrupt(Array(good.dropLast(4)), "run past the")
        expectCorrupt(Array(rawFile(header: "{}", data: [], length: 1 << 40)), "exceeds the")
        expectCorrupt(Array(rawFile(header: "{}", data: [], length: 50)), "runs past the end of the file")
        expectCorrupt(Array(rawFile(header: "{\"w\":{\"dtype\":\"F32\",", data: [])), "bad JSON header")
        expectCorrupt(Array(rawFile(header: "[1,2]", data: [])), "not an object")
        expectCorrupt(Array(rawFile(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,9]}}",
                                    data: [UInt8](repeating: 0, count: 8))), "run past the 8-byte data section")
        expectCorrupt(Array(rawFile(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
                                    data: [UInt8](repeating: 0, count: 8))), "needs 12 bytes")
        expectCorrupt(Array(rawFile(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,8]}}",
                                    data: [])), "non-negative integer")
        expectCorrupt(Array(rawFile(header: "{\"w\":{\"dtype\":\"X9\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                                    data: [UInt8](repeating: 0, count: 8))), "unknown dtype 'X9'")
        expectCorrupt(Array(rawFile(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}",
                                    data: [UInt8](repeating: 0, count: 8))), "overflows")
        expectCorrupt(Array(rawFile(header: String(repeating: "[", count: 10000), data: [])), "nested deeper")
        expectCorrupt(Array(rawFile(header: "{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999999]}}", data: [])), "integer too large")
    }

    /// Random corruptions of a valid file: every one must parse or throw, never trap.
    func testFuzzedBytesNeverTrap() {
        let good = Safetensors.encode([("a", LayerFD.random([3, 2], seed: 1)), ("b", LayerFD.random([4], seed: 2))],
                                      metadata: ["k": "v\u{1}\"é"])
        XCTAssertNoThrow(try Safetensors.parse(good))
        var g = SeededRNG(state: 42)
        var errors = 0
        for _ in 0..<3000 {
            var b = good
            let kind = g.next() % 3
            if kind == 0 {
                for _ in 0..<(1 + Int(g.next() % 4)) { b[Int(g.next() % UInt64(b.count))] = UInt8(g.next() & 0xFF) }
            } else if kind == 1 {
                b = Array(b.prefix(Int(g.next() % UInt64(b.count))))
            } else {
                b.insert(UInt8(g.next() & 0xFF), at: Int(g.next() % UInt64(b.count)))
            }
            do { _ = try Safetensors.parse(b) } catch { errors += 1 }
        }
        XCTAssertGreaterThan(errors, 1000, "most corruptions are detected")
    }
}

import Foundation
import MMLCore
import MMLTestSupport
import XCTest

/// Interchange files from other frameworks: NumPy-written `.npy` (committed fixtures and, when NumPy is installed,
/// generated in the test), the readers' error messages for every kind of bad file, and fuzzer regressions.
final class InteropFilesTests: XCTestCase {
    func testCommittedInteropFixtures() throws {
        let d = try NPY.readTensor(npyFixture("f4_nmc_2x3x4.npy"))
        XCTAssertEqual(d.shape, [2, 3, 4])
        XCTAssertEqual(d.data, (0..<24).map { Float($0) / 8 })
        let l = try NPY.read(npyFixture("i4_labels.npy"))
        XCTAssertEqual(l.dtype, .int32)
        XCTAssertEqual(try l.ints(), [3, -1, 7])
        assertThrows(try NPY.readTensor(npyFixture("f8_nonfinite.npy")), contains: "element 3 (index (1, 1)) is -inf")
    }

    /// NumPy writes arrays of every supported dtype, both layouts, a 0-d and an empty array and a version 2.0
    /// header; each is read back bit-exactly (float64 rounded to the nearest Float, as NumPy's astype does).
    func testNumpyWrittenArraysReadBackExactly() throws {
        let dir = try makeTempDir(self)
        try runNumpyScript("""
        d = sys.argv[1]
        rng = np.random.default_rng(7)
        a = rng.standard_normal((3, 4, 2, 5)).astype(np.float32)
        np.save(d + '/a.npy', a); a.tofile(d + '/a.raw')
        b = rng.standard_normal((2, 6, 3))
        np.save(d + '/b.npy', b); b.astype(np.float32).tofile(d + '/b.raw')
        np.save(d + '/c.npy', np.array([5, -2, 2**31 - 1], dtype=np.int32))
        np.save(d + '/e.npy', np.array([2**40, -7], dtype=np.int64))
        np.save(d + '/z.npy', np.zeros((0, 3), dtype=np.float32))
        np.save(d + '/s.npy', np.float64(0.1))
        np.lib.format.write_array(open(d + '/v2.npy', 'wb'), a, version=(2, 0))
        """, arguments: [dir])
        func raw(_ name: String) throws -> [Float] {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
            return data.withUnsafeBytes { r in (0..<(data.count / 4)).map { Float(bitPattern: r.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) } }
        }
        let a = try NPY.readTensor(dir + "/a.npy")
        XCTAssertEqual(a.shape, [3, 4, 2, 5])
        XCTAssertEqual(a.data.map(\.bitPattern), try raw("a.raw").map(\.bitPattern))
        let b = try NPY.readTensor(dir + "/b.npy")
        XCTAssertEqual(b.shape, [2, 6, 3])
        XCTAssertEqual(b.data.map(\.bitPattern), try raw("b.raw").map(\.bitPattern))
        XCTAssertEqual(try NPY.read(dir + "/c.npy").ints(), [5, -2, 2_147_483_647])
        XCTAssertEqual(try NPY.read(dir + "/e.npy").ints(), [1 << 40, -7])
        XCTAssertEqual(try NPY.readTensor(dir + "/z.npy").shape, [0, 3])
        let s = try NPY.readTensor(dir + "/s.npy")
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(s.data, [Float(0.1)])
        XCTAssertEqual(try NPY.readTensor(dir + "/v2.npy"), a)
    }

    func testNPYHeaderErrors() throws {
        let npyMagic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: npyFixture("f4_2x3.npy"))))
        // Truncated inside the header (length field says 118 bytes of header).
        assertThrows(try NPY.decode(Array(good.prefix(60)), source: "t.npy"), contains: "truncated: the header claims")
        // Version 2 with the 4-byte length field cut off.
        assertThrows(try NPY.decode(npyMagic + [2, 0, 5, 0], source: "t.npy"), contains: "truncated in the header length field")
        assertThrows(try NPY.decode(npyMagic + [9, 0, 5, 0, 0, 0], source: "t.npy"), contains: "format version 9.0")
        // Oversized v1 data: more bytes than the shape needs.
        assertThrows(try NPY.decode(good + [1], source: "t.npy"), contains: "1 unexpected bytes after the data")
        // A shape whose element count overflows.
        let header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 9), }\n".utf8)
        let huge = npyMagic + [1, 0, UInt8(header.count), 0] + header + [0, 0, 0, 0]
        assertThrows(try NPY.decode(huge, source: "t.npy"), contains: "is too large")
    }

    /// Found by scripts/fuzz.sh (mml-fuzz-npy): a float label of 1e30 passed the whole-number check and trapped in
    /// the Int conversion.
    func testFuzzRegressionHugeFloatLabel() throws {
        let a = try NPY.read(npyFixture("fuzz_crash_huge_float_label.npy"))
        assertThrows(try a.ints(source: "x.npy"), contains: "x.npy: element")
        let big = try NPY.decode(NPY.encode(shape: [2], dtype: .float64,
                                            bytes: [1, 1e300].flatMap { withUnsafeBytes(of: Double($0).bitPattern.littleEndian, Array.init) }),
                                 source: "l.npy")
        assertThrows(try big.ints(source: "l.npy"), contains: "l.npy: element 1 is 1e+300, too large for an integer label")
        // float64 just off a whole number is not rounded to one through Float.
        let half = try NPY.decode(NPY.encode(shape: [1], dtype: .float64,
                                             bytes: withUnsafeBytes(of: (1_099_511_627_776.5 as Double).bitPattern.littleEndian, Array.init)),
                                  source: "h.npy")
        assertThrows(try half.ints(source: "h.npy"), contains: "not a whole number")
    }

    func testSafetensorsOffsetAndDtypeErrors() throws {
        func file(_ header: String, _ data: [UInt8]) -> [UInt8] {
            let h = Array(header.utf8)
            return (0..<8).map { UInt8((UInt64(h.count) >> (8 * UInt64($0))) & 0xFF) } + h + data
        }
        let eight = [UInt8](repeating: 0, count: 8)
        assertThrows(try Safetensors.parse(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", eight), source: "t"),
                     contains: "data_offsets [8, 0] must be [begin, end] with begin <= end")
        assertThrows(try Safetensors.parse(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", eight), source: "t"),
                     contains: "must be [begin, end]")
        assertThrows(try Safetensors.parse(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", eight), source: "t"),
                     contains: "needs dtype, shape and data_offsets")
        let f16 = try Safetensors.parse(file("{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", eight), source: "t")
        assertThrows(try f16.tensor(named: "w"), contains: "tensor 'w' has dtype F16; only F32")
        assertThrows(try f16.tensor(named: "v"), contains: "no tensor named 'v'")
        assertThrows(try Safetensors.read(contentsOf: "/nonexistent/x.safetensors"), contains: "/nonexistent/x.safetensors")
    }
}

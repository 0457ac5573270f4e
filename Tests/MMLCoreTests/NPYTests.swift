import Foundation
import MMLCore
import MMLTestSupport
import XCTest

final class NPYTests: XCTestCase {
    func testCommittedNumpyFixturesReadExactly() throws {
        let a = try NPY.readTensor(npyFixture("f4_2x3.npy"))
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.data, [-1, -0.5, 0, 0.5, 1, 1.5])
        let b = try NPY.readTensor(npyFixture("f8_2x2x2.npy"))
        XCTAssertEqual(b.shape, [2, 2, 2])
        for i in 0..<8 { XCTAssertEqual(b.data[i], Float(Double(i) / 3)) }
        XCTAssertEqual(try NPY.read(npyFixture("i8_labels.npy")).ints(), [0, 1, 2, 1, 0])
        let s = try NPY.read(npyFixture("i4_scalar.npy"))
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(try s.ints(), [7])
        let v2 = try NPY.readTensor(npyFixture("f4_v2.npy"))
        XCTAssertEqual(v2.shape, [3, 1])
        XCTAssertEqual(v2.data, [1, 1, 1])
    }

    func testRoundTrip() throws {
        var rng = TestRNG(seed: 1)
        let t = rng.tensor([2, 3, 4, 5])
        let p = try makeTempDir(self) + "/rt.npy"
        try NPY.write(t, to: p)
        XCTAssertEqual(try NPY.readTensor(p), t)
        try NPY.write(ints: [3, -1, 2], shape: [3], to: p)
        XCTAssertEqual(try NPY.read(p).ints(), [3, -1, 2])
        // 1-D shape syntax "(n,)" and alignment of the data start on 64 bytes.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        XCTAssertEqual((bytes.count - 24) % 64, 0)
    }

    func testNumpyReadsWhatWeWriteAndWeReadWhatNumpyWrites() throws {
        let dir = try makeTempDir(self)
        let ours = dir + "/ours.npy", theirs = dir + "/theirs.npy"
        try NPY.write(Tensor(shape: [2, 2], data: [1.5, -2, 3.25, 4]), to: ours)
        try runNumpyScript("""
        a = np.load('\(ours)')
        assert a.dtype == np.float32 and a.shape == (2, 2) and a.tolist() == [[1.5, -2.0], [3.25, 4.0]], a
        np.save('\(theirs)', (np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7))
        """)
        let t = try NPY.readTensor(theirs)
        XCTAssertEqual(t.shape, [2, 3, 4])
        for i in 0..<24 { XCTAssertEqual(t.data[i], Float(Double(i) / 7)) }
    }

    func testBadInputsGiveClearErrors() throws {
        assertThrows(try NPY.read(npyFixture("f4_fortran.npy")), contains: "Fortran")
        assertThrows(try NPY.read(npyFixture("f4_bigendian.npy")), contains: "big-endian")
        assertThrows(try NPY.read(npyFixture("u1.npy")), contains: "not supported")
        assertThrows(try NPY.readTensor(npyFixture("i8_labels.npy")), contains: "float32 or float64")
        assertThrows(try NPY.read(npyFixture("missing.npy")), contains: "no such file")
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: npyFixture("f4_2x3.npy"))))
        assertThrows(try NPY.decode(Array(good.prefix(good.count - 3)), source: "t.npy"), contains: "truncated")
        assertThrows(try NPY.decode(Array(good.prefix(40)), source: "t.npy"), contains: "truncated")
        assertThrows(try NPY.decode(good + [0, 0, 0, 0], source: "t.npy"), contains: "unexpected bytes")
        assertThrows(try NPY.decode(Array("hello world".utf8), source: "t.npy"), contains: "not a .npy file")
        var huge = good
        huge[6] = 2; huge[7] = 0
        huge.insert(contentsOf: [0, 0], at: 10)
        huge[8] = 0xFF; huge[9] = 0xFF; huge[10] = 0xFF; huge[11] = 0x7F
        assertThrows(try NPY.decode(huge, source: "t.npy"), contains: "exceeds the limit")
        var badShape = good
        if let r = String(decoding: good, as: UTF8.self).range(of: "(2, 3)") {
            let off = String(decoding: good, as: UTF8.self).utf8.distance(from: String(decoding: good, as: UTF8.self).utf8.startIndex, to: r.lowerBound.samePosition(in: String(decoding: good, as: UTF8.self).utf8)!)
            badShape[off + 1] = UInt8(ascii: "x")
        }
        assertThrows(try NPY.decode(badShape, source: "t.npy"), contains: "bad .npy header")
        let p = try makeTempDir(self) + "/nan.npy"
        try NPY.write(Tensor(shape: [2, 2], data: [0, 1, .nan, 3]), to: p)
        assertThrows(try NPY.readTensor(p), contains: "index (1, 0)")
        try NPY.write(ints: [0, 1], shape: [2], to: p)
        XCTAssertNoThrow(try NPY.read(p).ints())
        try NPY.write(Tensor(shape: [2], data: [0.5, 1]), to: p)
        assertThrows(try NPY.read(p).ints(source: "labels.npy"), contains: "not a whole number")
    }
}

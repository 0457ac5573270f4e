import Foundation
import MMLCore
import XCTest

final class NPYTests: XCTestCase {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/npy").path

    func fixture(_ name: String) -> String { fixtures + "/" + name }

    func tempPath(_ name: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mml-npy-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    func assertThrows(_ body: @autoclosure () throws -> Any, contains text: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected an error containing '\(text)'", file: file, line: line)
        } catch let e as MMLError {
            XCTAssertTrue(e.message.contains(text), "message: \(e.message)", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
    }

    func testCommittedNumpyFixturesReadExactly() throws {
        let a = try NPY.readTensor(fixture("f4_2x3.npy"))
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.data, [-1, -0.5, 0, 0.5, 1, 1.5])
        let b = try NPY.readTensor(fixture("f8_2x2x2.npy"))
        XCTAssertEqual(b.shape, [2, 2, 2])
        for i in 0..<8 { XCTAssertEqual(b.data[i], Float(Double(i) / 3)) }
        XCTAssertEqual(try NPY.read(fixture("i8_labels.npy")).ints(), [0, 1, 2, 1, 0])
        let s = try NPY.read(fixture("i4_scalar.npy"))
        XCTAssertEqual(s.shape, [])
        XCTAssertEqual(try s.ints(), [7])
        let v2 = try NPY.readTensor(fixture("f4_v2.npy"))
        XCTAssertEqual(v2.shape, [3, 1])
        XCTAssertEqual(v2.data, [1, 1, 1])
    }

    func testRoundTrip() throws {
        var rng = TestRNG(1)
        let t = rng.tensor([2, 3, 4, 5])
        let p = tempPath("rt.npy")
        try NPY.write(t, to: p)
        XCTAssertEqual(try NPY.readTensor(p), t)
        try NPY.write(ints: [3, -1, 2], shape: [3], to: p)
        XCTAssertEqual(try NPY.read(p).ints(), [3, -1, 2])
        // 1-D shape syntax "(n,)" and alignment of the data start on 64 bytes.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
        XCTAssertEqual((bytes.count - 24) % 64, 0)
    }

    func testNumpyReadsWhatWeWriteAndWeReadWhatNumpyWrites() throws {
        let candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/python3" }
            + ["/usr/bin/python3", "/usr/local/bin/python3"]
        guard let python = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else { throw XCTSkip("python3 not found") }
        let ours = tempPath("ours.npy"), theirs = tempPath("theirs.npy")
        try NPY.write(Tensor(shape: [2, 2], data: [1.5, -2, 3.25, 4]), to: ours)
        let script = """
        import sys
        try:
            import numpy as np
        except ImportError:
            sys.exit(3)
        a = np.load('\(ours)')
        assert a.dtype == np.float32 and a.shape == (2, 2) and a.tolist() == [[1.5, -2.0], [3.25, 4.0]], a
        np.save('\(theirs)', (np.arange(24, dtype=np.float64).reshape(2, 3, 4) / 7))
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", script]
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus == 3 { throw XCTSkip("numpy is not installed for \(python)") }
        XCTAssertEqual(p.terminationStatus, 0)
        let t = try NPY.readTensor(theirs)
        XCTAssertEqual(t.shape, [2, 3, 4])
        for i in 0..<24 { XCTAssertEqual(t.data[i], Float(Double(i) / 7)) }
    }

    func testBadInputsGiveClearErrors() throws {
        assertThrows(try NPY.read(fixture("f4_fortran.npy")), contains: "Fortran")
        assertThrows(try NPY.read(fixture("f4_bigendian.npy")), contains: "big-endian")
        assertThrows(try NPY.read(fixture("u1.npy")), contains: "not supported")
        assertThrows(try NPY.readTensor(fixture("i8_labels.npy")), contains: "float32 or float64")
        assertThrows(try NPY.read(fixture("missing.npy")), contains: "no such file")
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture("f4_2x3.npy"))))
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
        let p = tempPath("nan.npy")
        try NPY.write(Tensor(shape: [2, 2], data: [0, 1, .nan, 3]), to: p)
        assertThrows(try NPY.readTensor(p), contains: "index (1, 0)")
        try NPY.write(ints: [0, 1], shape: [2], to: p)
        XCTAssertNoThrow(try NPY.read(p).ints())
        try NPY.write(Tensor(shape: [2], data: [0.5, 1]), to: p)
        assertThrows(try NPY.read(p).ints(source: "labels.npy"), contains: "not a whole number")
    }
}

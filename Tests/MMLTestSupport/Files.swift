import Foundation
import XCTest

/// A fresh temporary directory named `<prefix>-<UUID>`, removed when the test ends.
public func makeTempDir(_ test: XCTestCase, prefix: String = "mml") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
}

/// The package root, from this file's path (Tests/MMLTestSupport/Files.swift).
public func packageRoot() -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

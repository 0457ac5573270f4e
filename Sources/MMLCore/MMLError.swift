import Foundation

/// Every error a user can cause: a missing file, a corrupt image, a class with too few images, a singular
/// covariance, NaN in features. The message says what was wrong, where (file, class, numbers) and what to do.
///
/// The core knows no command line: a message names a configuration field in backquotes (`` `episodesPerEpoch` ``),
/// and a front end renders it in its own words with `rendered(naming:)` (the CLI as `--episodes-per-epoch`, a
/// Python binding as `episodes_per_epoch`). `message` itself shows the bare field names.
public struct MMLError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A coarse category, for programs that react to errors.
    public enum Kind: String, Sendable {
        case invalidArgument, fileNotFound, corruptFile, unsupportedFormat, datasetTooSmall
        case numerical, kernel, io, config
    }
    public let kind: Kind
    /// The message as written, configuration fields in backquotes.
    public let template: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.template = message
    }

    /// The full human-readable message: what, where, and what to do, with the bare names of the fields.
    public var message: String { rendered { $0 } }

    /// The configuration fields the message names, in order of appearance.
    public var fields: [String] {
        var out: [String] = []
        forEachField { out.append($0) }
        return out
    }

    /// The message with every backquoted field name replaced by `name(field)` (e.g. the command-line flag).
    public func rendered(naming name: (String) -> String) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "`") {
            let after = rest.index(after: open)
            guard let close = rest[after...].firstIndex(of: "`"), Self.isField(rest[after..<close]) else {
                out += rest[...open]
                rest = rest[after...]
                continue
            }
            out += rest[..<open] + name(String(rest[after..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    public var description: String { message }

    private func forEachField(_ body: (String) -> Void) {
        _ = rendered { body($0); return $0 }
    }

    /// A field name: a dotted path of identifiers (`training.way`, `pixelNeighbours`).
    private static func isField(_ s: Substring) -> Bool {
        !s.isEmpty && s.allSatisfy { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }
            && s.first!.isLetter
    }
}

/// A setting with a fixed set of names (its raw values), parsed once from text by the core: an unknown name is an
/// `MMLError` naming the configuration field, which each front end renders in its own words.
public protocol NamedChoice: RawRepresentable, CaseIterable where RawValue == String {
    /// The configuration field the choice sets (named in errors).
    static var field: String { get }
}

extension NamedChoice {
    /// The case named `text`. - Throws: `MMLError(.config)` naming `field` and the names to use.
    public static func parse(_ text: String) throws -> Self {
        guard let value = Self(rawValue: text) else {
            let names = allCases.map(\.rawValue)
            let list = names.count < 2 ? names.joined() : names.dropLast().joined(separator: ", ") + " or " + names.last!
            throw MMLError(.config, "`\(field)` \(text): use \(list)")
        }
        return value
    }
}

extension MMLError {
    /// Any error in the user's words, for a message: an `MMLError`'s own message, a JSON decoding error as what was
    /// expected where (`field.path`), a file-system error as the system's text ("No such file or directory") — never
    /// a Foundation error domain and code, a Swift type dump or a bare errno number.
    public static func describe(_ error: Error) -> String {
        switch error {
        case let e as MMLError:
            return e.message
        case DecodingError.keyNotFound(let key, let context):
            return "\(where_(context.codingPath + [key])) is missing"
        case DecodingError.valueNotFound(_, let context):
            return "\(where_(context.codingPath)) is null"
        case DecodingError.typeMismatch(let type, let context):
            return "\(where_(context.codingPath)) is not \(ConfigurationJSON.describe(type))"
        case DecodingError.dataCorrupted(let context):
            let why = context.underlyingError.map { describe($0) } ?? context.debugDescription
            return context.codingPath.isEmpty ? why : "\(where_(context.codingPath)): \(why)"
        default:
            break
        }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain, let text = strerrorText(Int32(ns.code)) { return text }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
           let text = strerrorText(Int32(underlying.code)) {
            return text
        }
        if ns.domain == NSCocoaErrorDomain {
            // JSONSerialization puts its reason here ("Unexpected end of file", "Badly formed object around line 1").
            if let debug = ns.userInfo["NSDebugDescription"] as? String, !debug.isEmpty { return debug }
            switch CocoaError.Code(rawValue: ns.code) {
            case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or directory"
            case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
            case .fileWriteOutOfSpace: return "no space left on the device"
            case .fileWriteVolumeReadOnly: return "the file system is read-only"
            case .fileWriteFileExists: return "a file of that name exists"
            case .fileReadCorruptFile, .propertyListReadCorrupt: return "the contents are malformed"
            case .fileReadInapplicableStringEncoding, .fileWriteInapplicableStringEncoding:
                return "the text is not valid UTF-8"
            case .fileReadTooLarge: return "the file is too large"
            default: return "the file operation failed"
            }
        }
        return "an unexpected failure (\(String(describing: type(of: error))))"
    }

    /// "'a.b.[2]'" for a coding path ("the value" for the top level); quoted, not backquoted: a key of a file is
    /// not a configuration field a front end would rename.
    private static func where_(_ path: [CodingKey]) -> String {
        path.isEmpty ? "the value" : "'" + ConfigurationJSON.path(path) + "'"
    }

    private static func strerrorText(_ code: Int32) -> String? {
        guard code > 0, let p = strerror(code) else { return nil }
        return String(cString: p)
    }
}

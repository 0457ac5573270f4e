import Foundation

// Configuration fields added after files were written: such a file lacks the field, and reading it must give the
// value the field had before it existed. A field says so with a property wrapper and keeps the synthesized
// Codable conformance of its type (no hand-written init(from:) repeating every other field):
//
//     @DefaultWhenAbsent public var precision: SimilarityPrecision     // absent or null: .fp32; always written
//     @OmittedWhenDefault public var ink: InkConvention                // absent or null: .paperWhite; written only
//                                                                      // when not the default, so files that
//                                                                      // leave it stay byte-identical to old ones
//
// The synthesized code calls `decode(_:forKey:)` / `encode(_:forKey:)` with the wrapper's type; the overloads
// below (more specific than the generic ones) see the key's absence, which the wrapper's own init(from:) could not.

/// A type whose configuration fields take `defaultWhenAbsent` when a file lacks them.
public protocol DefaultWhenAbsentValue: Codable, Equatable, Sendable {
    /// The value of an absent (or null) field: the field's value before it existed.
    static var defaultWhenAbsent: Self { get }
}

/// A Codable field that older files lack: absent or null, it decodes as `Value.defaultWhenAbsent`; it is always
/// written.
public typealias DefaultWhenAbsent<Value: DefaultWhenAbsentValue> = FieldWithDefault<Value, AlwaysWritten>

/// A Codable field that older files lack: absent or null, it decodes as `Value.defaultWhenAbsent`, and it is written
/// only when it differs from that value, so a file that leaves it at the default is byte-identical to one written
/// before the field existed.
public typealias OmittedWhenDefault<Value: DefaultWhenAbsentValue> = FieldWithDefault<Value, WrittenWhenNotDefault>

/// Whether a `FieldWithDefault` writes its value when it is the default.
public protocol DefaultWriting {
    static var writesDefault: Bool { get }
}

/// `DefaultWhenAbsent`'s writing: always.
public enum AlwaysWritten: DefaultWriting {
    public static var writesDefault: Bool { true }
}

/// `OmittedWhenDefault`'s writing: only a value that differs from the default.
public enum WrittenWhenNotDefault: DefaultWriting {
    public static var writesDefault: Bool { false }
}

/// The property wrapper behind `DefaultWhenAbsent` and `OmittedWhenDefault`: the value, read as the default when
/// its key is absent or null, and written as `Writing` says.
@propertyWrapper
public struct FieldWithDefault<Value: DefaultWhenAbsentValue, Writing: DefaultWriting>: Codable, Equatable, Sendable {
    public var wrappedValue: Value

    public init(wrappedValue: Value) { self.wrappedValue = wrappedValue }

    // Outside a keyed container (not used by the configurations) the wrapper is its value.
    public init(from decoder: Decoder) throws { wrappedValue = try Value(from: decoder) }
    public func encode(to encoder: Encoder) throws { try wrappedValue.encode(to: encoder) }
}

extension KeyedDecodingContainer {
    public func decode<V, W>(_ type: FieldWithDefault<V, W>.Type, forKey key: Key) throws -> FieldWithDefault<V, W> {
        FieldWithDefault(wrappedValue: try decodeIfPresent(V.self, forKey: key) ?? V.defaultWhenAbsent)
    }
}

extension KeyedEncodingContainer {
    public mutating func encode<V, W>(_ value: FieldWithDefault<V, W>, forKey key: Key) throws {
        if W.writesDefault || value.wrappedValue != V.defaultWhenAbsent { try encode(value.wrappedValue, forKey: key) }
    }
}

extension Bool: DefaultWhenAbsentValue {
    public static var defaultWhenAbsent: Bool { false }
}

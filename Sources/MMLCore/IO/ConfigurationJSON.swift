import Foundation

/// Configurations from JSON text written by people or other languages (the C ABI, the Python package): the fields
/// given are laid over a default configuration, nested objects field by field, so `{"levels": ["pixel"]}` is a
/// whole `MetricConfiguration`. A field the configuration does not have is an error, never ignored; `null` leaves
/// the default.
public enum ConfigurationJSON {
    /// Decodes `text` over `defaults`.
    /// - Parameter what: names the configuration in errors ("metric configuration").
    /// - Throws: `MMLError(.config)` for text that is not a JSON object, an unknown field (named with its path), or a
    ///   value of the wrong type (naming the field and what was expected); the type's own parse errors pass on.
    public static func decode<T: Codable>(_ type: T.Type, from text: String, over defaults: T,
                                          what: String) throws -> T {
        let given: [String: Any]
        try JSONInput.checkDepth(Array(text.utf8), source: "the \(what)")
        do {
            guard let o = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw MMLError(.config, "the \(what) must be a JSON object ({...}), got: \(text.prefix(80))")
            }
            given = o
        } catch let e as MMLError { throw e } catch {
            throw MMLError(.config, "the \(what) is not valid JSON (\(MMLError.describe(error))): \(text.prefix(80))")
        }
        let base = try JSONSerialization.jsonObject(with: JSONEncoder().encode(defaults)) as? [String: Any] ?? [:]
        let merged = laid(given, over: base)
        let value: T
        do {
            value = try JSONDecoder().decode(T.self, from: JSONSerialization.data(withJSONObject: merged))
        } catch let e as MMLError { throw e } catch let DecodingError.typeMismatch(t, ctx) {
            throw MMLError(.config, "`\(path(ctx.codingPath))` in the \(what) must be \(describe(t)); "
                           + ctx.debugDescription)
        } catch let DecodingError.valueNotFound(t, ctx) {
            throw MMLError(.config, "`\(path(ctx.codingPath))` in the \(what) must be \(describe(t)), not null")
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw MMLError(.config, "`\(path(ctx.codingPath + [key]))` is missing from the \(what); give it")
        } catch let DecodingError.dataCorrupted(ctx) where !ctx.codingPath.isEmpty {
            throw MMLError(.config, "`\(path(ctx.codingPath))` in the \(what): \(ctx.debugDescription)")
        } catch let DecodingError.dataCorrupted(ctx) {
            let why = ctx.underlyingError.map { " (\(MMLError.describe($0)))" } ?? ""
            throw MMLError(.config, "the \(what) cannot be read: \(ctx.debugDescription)\(why); check the types of "
                           + "its values (integers where integers are expected)")
        } catch {
            throw MMLError(.config, "the \(what) cannot be read: \(MMLError.describe(error))")
        }
        // Every given field must survive a round trip: one the type does not know is refused.
        let back = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as? [String: Any] ?? [:]
        if let unknown = unknownField(given, known: back, prefix: "") {
            throw MMLError(.config, "the \(what) has no field `\(unknown)`; known fields: "
                           + back.keys.sorted().joined(separator: ", "))
        }
        return value
    }

    /// The defaults of `value` as compact JSON with sorted keys (what a caller can edit and give back).
    public static func text<T: Encodable>(_ value: T) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try enc.encode(value), as: UTF8.self)
    }

    static func laid(_ given: [String: Any], over base: [String: Any]) -> [String: Any] {
        var out = base
        for (k, v) in given {
            if v is NSNull { continue }
            if let g = v as? [String: Any], let b = base[k] as? [String: Any] { out[k] = laid(g, over: b) } else { out[k] = v }
        }
        return out
    }

    static func unknownField(_ given: [String: Any], known: [String: Any], prefix: String) -> String? {
        for k in given.keys.sorted() where !(given[k] is NSNull) {
            guard let v = known[k] else { return prefix + k }
            if let g = given[k] as? [String: Any], let b = v as? [String: Any],
               let u = unknownField(g, known: b, prefix: prefix + k + ".") {
                return u
            }
        }
        return nil
    }

    static func path(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    static func describe(_ t: Any.Type) -> String {
        switch t {
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        case is Int.Type, is UInt64.Type, is Int64.Type, is Int32.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is [Any].Type: return "an array"
        case is [String: Any].Type: return "an object"
        default: return "a \(t)"
        }
    }
}

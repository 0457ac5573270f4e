import Foundation

/// Checks on JSON read from outside (episode lists, checkpoint metadata, sidecars, configuration files) made
/// before Foundation's decoders see it: they recurse once per nesting level, so a file of 100 000 `[` could
/// overflow the stack. `decode` scans the nesting depth first (no recursion) and turns every failure into an
/// `MMLError` naming the file.
public enum JSONInput {
    /// The deepest nesting accepted. mml's own files nest at most 8 levels (an episode list 4).
    public static let maxDepth = 64

    /// The deepest `[` / `{` nesting of `bytes`, outside strings, scanning iteratively; stops early (returning a
    /// value above `limit`) once `limit` is passed.
    public static func nestingDepth<C: Collection>(of bytes: C, limit: Int = maxDepth) -> Int where C.Element == UInt8 {
        var depth = 0, deepest = 0
        var inString = false, escaped = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
                continue
            }
            switch b {
            case 0x22: inString = true
            case 0x5B, 0x7B:
                depth += 1
                if depth > deepest {
                    deepest = depth
                    if deepest > limit { return deepest }
                }
            case 0x5D, 0x7D: depth = max(0, depth - 1)
            default: break
            }
        }
        return deepest
    }

    /// Throws `MMLError(.corruptFile)` naming `source` when `bytes` nest deeper than `maxDepth`.
    public static func checkDepth<C: Collection>(_ bytes: C, source: String) throws where C.Element == UInt8 {
        let d = nestingDepth(of: bytes)
        guard d <= maxDepth else {
            throw MMLError(.corruptFile, "\(source): JSON nested more than \(maxDepth) levels deep (arrays or objects "
                           + "inside each other); no mml file nests that deep, so the file is corrupt or hostile; "
                           + "regenerate it")
        }
    }

    /// Decodes `T` from `data` after the depth check; a decoding failure becomes `MMLError(.corruptFile)`
    /// "`source` is not valid `what`: reason".
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, source: String, what: String) throws -> T {
        try checkDepth(data, source: source)
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw MMLError(.corruptFile, "\(source) is not valid \(what): \(MMLError.describe(error))")
        }
    }
}

/// Every error a user can cause: a missing file, a corrupt image, a class with too few images, a singular
/// covariance, NaN in features. The message says what was wrong, where (file, class, numbers) and what to do.
public struct MMLError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A coarse category, for programs that react to errors.
    public enum Kind: String, Sendable {
        case invalidArgument, fileNotFound, corruptFile, unsupportedFormat, datasetTooSmall
        case numerical, kernel, io, config
    }
    public let kind: Kind
    /// The full human-readable message: what, where, and what to do.
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

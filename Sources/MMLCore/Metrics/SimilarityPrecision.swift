import Foundation

/// The arithmetic of the pixel and part levels' similarities (their grouped top-K inner products) when a model is
/// evaluated: `EvaluationRunConfiguration.precision` / `AblationRunConfiguration.precision`, `mml eval --precision`.
/// Training is always fp32 (`MultiLevelMetric.forward` refuses anything else with `training`); the distribution
/// level and the fusion are fp32 whatever this says.
public enum SimilarityPrecision: String, Codable, Sendable, CaseIterable, NamedChoice, DefaultWhenAbsentValue {
    /// fp32 products (`SimilarityKernels.Precision.f32`): the default.
    case fp32
    /// Descriptors rounded to bf16 (nearest even), products accumulated in fp32 with VDPBF16PS's arithmetic
    /// (`SimilarityKernels.Precision.bf16`): AVX512-BF16 where the CPU has it, elsewhere a portable path with the
    /// same bits (much slower than fp32). An opt-in: see the README's "bf16 similarity in evaluation".
    case bf16

    /// The configuration field named in parse errors.
    public static let field = "precision"

    /// Files written before the field existed evaluated in fp32.
    public static var defaultWhenAbsent: SimilarityPrecision { .fp32 }

    /// The kernel precision this selects.
    public var kernel: SimilarityKernels.Precision {
        switch self {
        case .fp32: return .f32
        case .bf16: return .bf16
        }
    }

    /// Decodes the name, refusing an unknown one with the field and the names to use (`NamedChoice.parse`).
    public init(from decoder: Decoder) throws {
        self = try Self.parse(try decoder.singleValueContainer().decode(String.self))
    }

    /// Whether `.bf16` runs on AVX512-BF16 (VDPBF16PS) in this process: the CPU has it and `MML_KERNELS_ISA` does
    /// not force the portable kernels.
    public static var bf16HasFastPath: Bool { SimilarityKernels.bf16Path == "avx512bf16" }

    /// Why `.bf16` takes the portable path in this process, in a few words; nil when it has the fast path.
    public static var bf16PortableReason: String? {
        if bf16HasFastPath { return nil }
        if let isa = getenv("MML_KERNELS_ISA"), String(cString: isa) == "portable" {
            return "MML_KERNELS_ISA=portable forces the portable kernels"
        }
        return CPUFeatures.current.contains(.avx512bf16) ? "this CPU's AVX-512 is not usable (no AVX512-BF16 path)"
            : "this CPU lacks AVX512-BF16"
    }

    /// The one-line note a run gives (as a `RunEvent.warning`) when `.bf16` is asked for on the portable path: the
    /// results are the fast path's, bit for bit, but slower than fp32. Nil for `.fp32` or with the fast path.
    public var portableNote: String? {
        guard self == .bf16, let why = Self.bf16PortableReason else { return nil }
        return "`precision` bf16: \(why), so the pixel and part levels' bf16 similarity runs on the portable path: "
            + "the same results, bit for bit, but several times slower than `precision` fp32"
    }

    /// What a run's start facts say about it: "bf16 similarity at the pixel and part levels (AVX512-BF16)".
    public var fact: String {
        switch self {
        case .fp32: return "fp32"
        case .bf16:
            return "bf16 similarity at the pixel and part levels ("
                + (Self.bf16HasFastPath ? "AVX512-BF16" : "portable path, slower than fp32") + ")"
        }
    }
}

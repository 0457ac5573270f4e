import Foundation
import MMLKernels

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
    /// The same bf16 descriptors, products accumulated in fp32 in Intel AMX's TDPBF16PS order
    /// (`SimilarityKernels.Precision.bf16amx`): AMX where the CPU and OS allow it, elsewhere a portable path with the
    /// same bits (much slower than fp32). Not bf16's bits (the additions come in another order). An opt-in: see the
    /// README's "bf16 similarity in evaluation".
    case bf16amx

    /// The configuration field named in parse errors.
    public static let field = "precision"

    /// Files written before the field existed evaluated in fp32.
    public static var defaultWhenAbsent: SimilarityPrecision { .fp32 }

    /// The kernel precision this selects.
    public var kernel: SimilarityKernels.Precision {
        switch self {
        case .fp32: return .f32
        case .bf16: return .bf16
        case .bf16amx: return .bf16amx
        }
    }

    /// Decodes the name, refusing an unknown one with the field and the names to use (`NamedChoice.parse`).
    public init(from decoder: Decoder) throws {
        self = try Self.parse(try decoder.singleValueContainer().decode(String.self))
    }

    /// Whether `.bf16` runs on AVX512-BF16 (VDPBF16PS) in this process: the CPU has it and `MML_KERNELS_ISA` does
    /// not force the portable kernels.
    public static var bf16HasFastPath: Bool { SimilarityKernels.bf16Path == "avx512bf16" }

    /// Whether `.bf16amx` runs on AMX (TDPBF16PS) in this process: the CPU has AMX-BF16 and AVX-512, the OS granted
    /// the tile data, and `MML_KERNELS_ISA` does not force the portable kernels.
    public static var bf16amxHasFastPath: Bool { SimilarityKernels.bf16amxPath == "amx" }

    /// Why `.bf16` takes the portable path in this process, in a few words; nil when it has the fast path.
    public static var bf16PortableReason: String? {
        if bf16HasFastPath { return nil }
        if let forced = portableForced { return forced }
        return CPUFeatures.current.contains(.avx512bf16) ? "this CPU's AVX-512 is not usable (no AVX512-BF16 path)"
            : "this CPU lacks AVX512-BF16"
    }

    /// Why `.bf16amx` takes the portable path in this process, in a few words; nil when it has the fast path.
    public static var bf16amxPortableReason: String? {
        if bf16amxHasFastPath { return nil }
        if let forced = portableForced { return forced }
        switch mml_amx_status() {
        case 0: return "this CPU lacks AMX-BF16"
        case -1: return "the OS does not enable AMX's tile state"
        case -2: return "the OS refused this process AMX's tile data (arch_prctl)"
        default: return "this CPU's AVX-512 is not usable (the AMX path selects with AVX-512)"
        }
    }

    private static var portableForced: String? {
        if let isa = getenv("MML_KERNELS_ISA"), String(cString: isa) == "portable" {
            return "MML_KERNELS_ISA=portable forces the portable kernels"
        }
        return nil
    }

    /// Whether this precision runs on its fast path in this process (fp32: always; its AVX-512 or portable kernels
    /// are the same for every precision setting).
    public var hasFastPath: Bool {
        switch self {
        case .fp32: return true
        case .bf16: return Self.bf16HasFastPath
        case .bf16amx: return Self.bf16amxHasFastPath
        }
    }

    /// Why this precision takes its portable path here; nil for `.fp32` or with the fast path.
    public var portableReason: String? {
        switch self {
        case .fp32: return nil
        case .bf16: return Self.bf16PortableReason
        case .bf16amx: return Self.bf16amxPortableReason
        }
    }

    /// The one-line note a run gives (as a `RunEvent.warning`) when `.bf16` or `.bf16amx` is asked for on its
    /// portable path: the results are the fast path's, bit for bit, but slower than fp32. Nil for `.fp32` or with
    /// the fast path.
    public var portableNote: String? {
        guard let why = portableReason else { return nil }
        return "`precision` \(rawValue): \(why), so the pixel and part levels' \(rawValue) similarity runs on the "
            + "portable path: the same results, bit for bit, but several times slower than `precision` fp32"
    }

    /// What a run's start facts say about it: "bf16 similarity at the pixel and part levels (AVX512-BF16)",
    /// "bf16amx similarity at the pixel and part levels (AMX)".
    public var fact: String {
        switch self {
        case .fp32: return "fp32"
        case .bf16, .bf16amx:
            return "\(rawValue) similarity at the pixel and part levels ("
                + (hasFastPath ? (self == .bf16 ? "AVX512-BF16" : "AMX") : "portable path, slower than fp32") + ")"
        }
    }
}

import MMLKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU features relevant to kernel selection, decoded from `mml_cpu_features()`.
public struct CPUFeatures: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let sse3 = CPUFeatures(rawValue: UInt32(MML_CPU_SSE3))
    public static let avx = CPUFeatures(rawValue: UInt32(MML_CPU_AVX))
    public static let avx2 = CPUFeatures(rawValue: UInt32(MML_CPU_AVX2))
    public static let fma = CPUFeatures(rawValue: UInt32(MML_CPU_FMA))
    public static let avx512f = CPUFeatures(rawValue: UInt32(MML_CPU_AVX512F))
    public static let avx512bw = CPUFeatures(rawValue: UInt32(MML_CPU_AVX512BW))
    public static let avx512vl = CPUFeatures(rawValue: UInt32(MML_CPU_AVX512VL))
    public static let avx512dq = CPUFeatures(rawValue: UInt32(MML_CPU_AVX512DQ))
    public static let avx512bf16 = CPUFeatures(rawValue: UInt32(MML_CPU_AVX512BF16))
    public static let avx512fp16 = CPUFeatures(rawValue: UInt32(MML_CPU_AVX512FP16))
    public static let amx = CPUFeatures(rawValue: UInt32(MML_CPU_AMX))
    public static let amxBF16 = CPUFeatures(rawValue: UInt32(MML_CPU_AMX_BF16))
    public static let osAMX = CPUFeatures(rawValue: UInt32(MML_CPU_OS_AMX))
    public static let osAVX512 = CPUFeatures(rawValue: UInt32(MML_CPU_OS_AVX512))
    public static let osAVX = CPUFeatures(rawValue: UInt32(MML_CPU_OS_AVX))

    /// The features of the CPU this process runs on.
    public static var current: CPUFeatures { CPUFeatures(rawValue: mml_cpu_features()) }

    private static let names: [(CPUFeatures, String)] = [
        (.sse3, "sse3"), (.avx, "avx"), (.avx2, "avx2"), (.fma, "fma"), (.avx512f, "avx512f"),
        (.avx512bw, "avx512bw"), (.avx512vl, "avx512vl"), (.avx512dq, "avx512dq"),
        (.avx512bf16, "avx512bf16"), (.avx512fp16, "avx512fp16"), (.amx, "amx"), (.amxBF16, "amxbf16"),
    ]
    /// Space-separated feature names, e.g. "sse3 avx avx2 fma avx512f ...".
    public var description: String {
        Self.names.filter { contains($0.0) }.map(\.1).joined(separator: " ")
    }
}

/// How OpenBLAS's kernel family should be chosen for this process, and why.
///
/// Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels when the library loads. On CPUs it does not
/// recognise it falls back to "Prescott" (SSE3) kernels, about 5x slower than its AVX-512 ones. The only fix is
/// `OPENBLAS_CORETYPE` in the environment *before* the process starts, so `mml` and `mml-bench` re-execute
/// themselves once with it set (`BLASRuntime.reexecPlan(for:)`; the library never re-executes a process). A value
/// the user set is never overridden.
public struct BLASCoreDecision: Equatable, Sendable {
    public enum Action: Equatable, Sendable {
        /// Leave things as they are.
        case keep
        /// Re-execute the process with `OPENBLAS_CORETYPE` set to this core name.
        case reexec(coretype: String)
    }
    public let action: Action
    /// A one-line warning for the user, when the running kernels are slower than the CPU allows.
    public let warning: String?
}

/// What an executable runs instead of itself to get faster OpenBLAS kernels: `execve(executable, arguments,
/// environment)`, the environment being this process's plus `OPENBLAS_CORETYPE` and the re-exec marker.
public struct BLASReexecPlan: Equatable, Sendable {
    /// The program to execute (this process's own executable).
    public let executable: String
    /// The full command line, program name first.
    public let arguments: [String]
    /// `NAME=value` entries, sorted by name.
    public let environment: [String]

    public init(executable: String, arguments: [String], environment: [String]) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }

    /// Calls `body` with the plan as C strings (path, NULL-terminated argv and envp), for `execve`; frees them
    /// afterwards, so when the exec fails the caller simply goes on.
    public func withCStrings<R>(_ body: (UnsafePointer<CChar>, UnsafePointer<UnsafeMutablePointer<CChar>?>,
                                         UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        let argv = arguments.map { strdup($0) } + [nil], envp = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        return executable.withCString { path in body(path, argv, envp) }
    }
}

/// OpenBLAS kernel selection and facts about the BLAS in use.
public enum BLASRuntime {
    /// The environment variable OpenBLAS reads.
    public static let coretypeVariable = "OPENBLAS_CORETYPE"
    /// Set on the re-executed child, so it never re-executes twice.
    public static let reexecMarker = "MML_BLAS_REEXEC"
    /// Set to 1 to forbid the re-execution.
    public static let optOutVariable = "MML_NO_BLAS_REEXEC"

    /// The capability rank of an OpenBLAS core name: 3 = AVX-512, 2 = AVX2, 1 = AVX, 0 = SSE-only or unknown.
    public static func rank(ofCore name: String) -> Int {
        switch name.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 3
        case "haswell", "zen", "skylake", "atomx": return 2  // AVX2 kernel families
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": return 1
        default: return 0  // prescott, core2, penryn, dunnington, nehalem, atom, barcelona, opteron, ...
        }
    }

    /// The best OpenBLAS 0.3.21 core name the CPU supports, or nil when nothing beats the default detection.
    public static func bestCore(for features: CPUFeatures) -> String? {
        let avx512: CPUFeatures = [.avx512f, .avx512bw, .avx512vl, .avx512dq, .osAVX512]
        if features.isSuperset(of: avx512) {
            return features.contains(.avx512bf16) ? "Cooperlake" : "SkylakeX"
        }
        if features.isSuperset(of: [.avx2, .fma, .osAVX]) { return "Haswell" }
        return nil
    }

    /// The decision logic, a pure function so that it can be tested.
    /// - Parameters:
    ///   - corename: what OpenBLAS reports it chose (`openblas_get_corename()`).
    ///   - features: the CPU's features.
    ///   - environment: the process environment (only the variables above are read).
    public static func decide(corename: String, features: CPUFeatures,
                              environment: [String: String]) -> BLASCoreDecision {
        guard let best = bestCore(for: features), rank(ofCore: best) > rank(ofCore: corename) else {
            return BLASCoreDecision(action: .keep, warning: nil)
        }
        let userValue = environment[coretypeVariable].flatMap { $0.isEmpty ? nil : $0 }
        if let userValue {
            return BLASCoreDecision(action: .keep, warning:
                "note: \(coretypeVariable)=\(userValue) is set in the environment, so OpenBLAS runs its \(corename) kernels; "
                + "this CPU supports the faster \(best) kernels. mml leaves your setting alone; "
                + "unset it or set \(coretypeVariable)=\(best) to use them.")
        }
        if environment[reexecMarker] != nil {
            return BLASCoreDecision(action: .keep, warning:
                "warning: OpenBLAS ignored \(coretypeVariable)=\(best) and runs \(corename) kernels; BLAS products will be slow.")
        }
        if environment[optOutVariable] == "1" {
            return BLASCoreDecision(action: .keep, warning:
                "warning: OpenBLAS chose \(corename) kernels on a CPU that supports \(best) (\(optOutVariable)=1 keeps them); "
                + "set \(coretypeVariable)=\(best) before starting for ~5x faster BLAS.")
        }
        return BLASCoreDecision(action: .reexec(coretype: best), warning:
            "warning: OpenBLAS chose \(corename) kernels on a CPU that supports \(best); "
            + "set \(coretypeVariable)=\(best) in the environment before starting for ~5x faster BLAS.")
    }

    /// The decision for this process.
    public static func check() -> BLASCoreDecision {
        decide(corename: corename, features: .current, environment: processEnvironment())
    }

    /// For library users: print the check's warning once to standard error, if there is one.
    /// Returns the warning printed, or nil.
    @discardableResult
    public static func warnIfSlow() -> String? {
        guard let w = check().warning else { return nil }
        warnOnce(w)
        return w
    }

    /// For executables: how to re-execute this process with `OPENBLAS_CORETYPE` set, when `decision` asks for it
    /// (nil otherwise). MMLCore never re-executes a process itself; the executable performs the `execve`:
    ///
    ///     let blas = BLASRuntime.check()
    ///     _ = BLASRuntime.reexecPlan(for: blas)?.withCStrings { execve($0, $1, $2) }  // returns only without exec
    ///     BLASRuntime.warnIfUnchosen(blas)
    /// - Parameters:
    ///   - arguments: the command line to run again (this process's by default).
    ///   - environment: the environment to extend (this process's by default).
    public static func reexecPlan(for decision: BLASCoreDecision, arguments: [String] = CommandLine.arguments,
                                  environment: [String: String] = processEnvironment()) -> BLASReexecPlan? {
        guard case .reexec(let core) = decision.action else { return nil }
        var env = environment
        env[coretypeVariable] = core
        env[reexecMarker] = "1"
        return BLASReexecPlan(executable: "/proc/self/exe", arguments: arguments,
                              environment: env.keys.sorted().map { "\($0)=\(env[$0]!)" })
    }

    /// For executables, after the re-execution did not happen (nothing to do, opted out, or exec failed): prints the
    /// decision's warning to standard error once when slow kernels remain that the user did not choose. A value the
    /// user chose is their business (`mml env` reports it). Returns the warning printed, or nil.
    @discardableResult
    public static func warnIfUnchosen(_ decision: BLASCoreDecision) -> String? {
        guard let w = decision.warning, w.hasPrefix("warning:") else { return nil }
        warnOnce(w)
        return w
    }

    /// The core name OpenBLAS chose when it loaded.
    public static var corename: String { String(cString: mml_blas_corename()) }
    /// OpenBLAS's build configuration string.
    public static var config: String { String(cString: mml_blas_config()) }
    /// OpenBLAS's thread count.
    public static var threads: Int { Int(mml_blas_num_threads()) }
    /// "avx512", "avx2" or "portable": which family of mml's own C kernels runs (MML_KERNELS_ISA=portable or =avx2
    /// in the environment forces or caps the choice).
    public static var kernelISA: String { String(cString: mml_kernels_isa()) }
    /// The kernel path this CPU supports at best, whatever MML_KERNELS_ISA says.
    public static var bestKernelISA: String { String(cString: mml_kernels_isa_best()) }
    /// The CPU brand string.
    public static var cpuBrand: String {
        var buf = [CChar](repeating: 0, count: 64)
        mml_cpu_brand(&buf, buf.count)
        return String(cString: buf)
    }

    nonisolated(unsafe) private static var warned = Set<String>()
    private static func warnOnce(_ message: String) {
        guard !warned.contains(message) else { return }
        warned.insert(message)
        fputs(message + "\n", stderr)
    }

    /// The process environment as a dictionary.
    public static func processEnvironment() -> [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") {
                env[String(s[..<eq])] = String(s[s.index(after: eq)...])
            }
            p += 1
        }
        return env
    }
}

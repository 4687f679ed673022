/// The environment an engine starts with: built from nothing, never a copy of the sidecar's.
/// The sidecar holds cloud and hub credentials, its auth token, and `PROMETHEUS_MULTIPROC_DIR`
/// (which AIBrix's engines inherited and had wiped under them); an engine gets the basics a
/// process needs, the accelerator and cache variables an engine reads, the names the operator
/// lists, and what the driver's plan and the runtime add.
enum EngineEnvironment {
    /// Passed through when the sidecar has them.
    static let basics = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR", "LD_LIBRARY_PATH"]
    /// Prefixes of accelerator and runtime variables engines read (never credentials).
    static let acceleratorPrefixes = ["CUDA_", "NVIDIA_", "NCCL_", "ROCR_", "HIP_", "HSA_", "OMP_"]
    /// Never passed, whatever the operator lists: the sidecar's own secrets and settings.
    static let refused = [
        "ENGINE_RUNTIME_AUTH_TOKEN", "INFERENCE_ENGINE_API_KEY", "INFERENCE_ENGINE_ADMIN_API_KEY", "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN", "TOS_SECRET_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GCS_SECRET_ACCESS_KEY",
        // Paths, not secrets, but they hand the sidecar's cloud identity to whoever reads them.
        "AWS_WEB_IDENTITY_TOKEN_FILE", "GOOGLE_APPLICATION_CREDENTIALS",
        "PROMETHEUS_MULTIPROC_DIR",
    ]

    static func build(
        sidecar: [String: String], passthrough: [String], plan: [String: String], runtime: [String: String], path: String?
    ) -> [String: String] {
        var environment: [String: String] = [:]
        for (name, value) in sidecar {
            if basics.contains(name) || acceleratorPrefixes.contains(where: { name.hasPrefix($0) }) { environment[name] = value }
        }
        for name in passthrough where !refused.contains(name) {
            if let value = sidecar[name] { environment[name] = value }
        }
        if let path { environment["PATH"] = path }
        for (name, value) in plan where !refused.contains(name) { environment[name] = value }
        for (name, value) in runtime { environment[name] = value }
        return environment
    }
}

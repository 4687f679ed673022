import EngineDriverKit
import PluginABI

/// How llama-server is started under the host's supervisor (single-model mode, engines.md
/// §1.3a).
enum LlamaCppLaunch {
    /// `--api-key`: the supervisor's probes and scrapes carry no key, and /metrics needs one.
    /// `--models-dir`/`--models-preset`: router mode serves many models, not the one planned.
    static let ownedFlags = [
        "-m", "--model", "-a", "--alias", "--host", "--port", "--metrics", "--api-key", "--api-key-file", "--models-dir",
        "--models-preset", "-hf", "--hf-repo", "-mu", "--model-url",
    ]

    static func plan(_ spec: LaunchSpec) throws(DriverFailure) -> LaunchPlan {
        try spec.refusingOwnedFlags(ownedFlags)
        let argv =
            spec.program(default: ["llama-server"])
            + ["-m", spec.modelPath, "--alias", spec.modelName, "--host", spec.host, "--port", String(spec.port), "--metrics"]
            + spec.argumentWords
        let boot = try spec.configInteger("boot_timeout_seconds", default: 600, range: 1...86_400)
        // A GGUF loads in milliseconds to minutes; probe often so a small model is routed at once.
        return LaunchPlan(argv: argv, readiness: .init(bootTimeoutSeconds: boot, probeIntervalMilliseconds: 200), ownedFlags: ownedFlags)
    }
}

let llamaCppPlanLaunch: ert_plan_launch_fn = { request, length, response, error in
    DriverExport.planLaunch(request, length, response, error, planner: LlamaCppLaunch.plan)
}

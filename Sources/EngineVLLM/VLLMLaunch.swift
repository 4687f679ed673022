import EngineDriverKit
import PluginABI

/// How vLLM is started under the host's supervisor (`vllm serve`, engines.md §7.1).
enum VLLMLaunch {
    /// Set by the plan, so operators cannot point probes, routing or the registry elsewhere.
    static let ownedFlags = ["--host", "--port", "--uds", "--served-model-name", "--model", "--enable-sleep-mode", "--headless"]

    static func plan(_ spec: LaunchSpec) throws(DriverFailure) -> LaunchPlan {
        try spec.refusingOwnedFlags(ownedFlags)
        // kvcached sizes the KV cache itself; a fixed fraction fights it (AIBrix refuses it too,
        // model_runtime.py:735-769).
        if spec.configBool("kvcached", default: true), spec.flagValue(["--gpu-memory-utilization"]) != nil {
            throw DriverFailure.invalidArgument("--gpu-memory-utilization is incompatible with kvcached; use the pool KV policy instead")
        }
        _ = try spec.parallelism(["--tensor-parallel-size", "-tp"])
        _ = try spec.parallelism(["--pipeline-parallel-size", "-pp"])
        let dataParallel = try spec.parallelism(["--data-parallel-size", "-dp"])
        guard dataParallel == 1 else {
            throw DriverFailure.invalidArgument("--data-parallel-size=\(dataParallel) is unsupported by fixed topology pools")
        }
        let argv =
            spec.program(default: ["vllm"])
            + ["serve", spec.modelPath, "--host", spec.host, "--port", String(spec.port), "--served-model-name", spec.modelName]
            + ["--enable-sleep-mode"] + spec.argumentWords
        // /sleep, /wake_up and the cache routes exist only in dev mode (vllm/envs.py:1468).
        let env = ["VLLM_SERVER_DEV_MODE": "1"]
        // vLLM waits up to VLLM_ENGINE_READY_TIMEOUT_S (600 s) for its engine core, then loads
        // weights and compiles: a large model needs more than that before /health answers.
        let boot = try spec.configInteger("boot_timeout_seconds", default: 1200, range: 1...86_400)
        return LaunchPlan(argv: argv, env: env, readiness: .init(bootTimeoutSeconds: boot, probeIntervalMilliseconds: 1000), ownedFlags: ownedFlags)
    }
}

let vllmPlanLaunch: ert_plan_launch_fn = { request, length, response, error in
    DriverExport.planLaunch(request, length, response, error, planner: VLLMLaunch.plan)
}

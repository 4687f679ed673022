import EngineDriverKit
import PluginABI

/// How SGLang is started under the host's supervisor (`python3 -m sglang.launch_server`,
/// engines.md §7.2).
enum SGLangLaunch {
    static let ownedFlags = ["--host", "--port", "--model-path", "--model", "--served-model-name", "--enable-memory-saver"]

    static func plan(_ spec: LaunchSpec) throws(DriverFailure) -> LaunchPlan {
        try spec.refusingOwnedFlags(ownedFlags)
        // The same reason as vLLM's --gpu-memory-utilization: kvcached owns the KV pool size.
        if spec.configBool("kvcached", default: true), spec.flagValue(["--mem-fraction-static"]) != nil {
            throw DriverFailure.invalidArgument("--mem-fraction-static is incompatible with kvcached; use the pool KV policy instead")
        }
        _ = try spec.parallelism(["--tp-size", "--tensor-parallel-size"])
        _ = try spec.parallelism(["--pp-size", "--pipeline-parallel-size"])
        let dataParallel = try spec.parallelism(["--dp-size", "--data-parallel-size"])
        guard dataParallel == 1 else {
            throw DriverFailure.invalidArgument("--dp-size=\(dataParallel) is unsupported by fixed topology pools")
        }
        var argv =
            spec.program(default: ["python3", "-m", "sglang.launch_server"])
            + ["--model-path", spec.modelPath, "--served-model-name", spec.modelName, "--host", spec.host, "--port", String(spec.port)]
            // Memory saver: release_memory_occupation (sleep) frees memory; metrics: the runtime's
            // standard series and the snapshot's activity come from /metrics.
            + ["--enable-memory-saver"]
        if spec.flagValue(["--enable-metrics"]) == nil { argv.append("--enable-metrics") }
        argv += spec.argumentWords
        // SGLang's warm-up (up to SGLANG_WARMUP_TIMEOUT, 600 s) gates readiness after loading.
        let boot = try spec.configInteger("boot_timeout_seconds", default: 1200, range: 1...86_400)
        return LaunchPlan(argv: argv, readiness: .init(bootTimeoutSeconds: boot, probeIntervalMilliseconds: 1000), ownedFlags: ownedFlags)
    }
}

let sglangPlanLaunch: ert_plan_launch_fn = { request, length, response, error in
    DriverExport.planLaunch(request, length, response, error, planner: SGLangLaunch.plan)
}

import Foundation
import TestSupport
import Testing

/// The Kubernetes examples parse, probe the right routes, carry the scrape annotations, and
/// pass the sidecar only flags the binary has.
@Suite struct DeploymentTests {
    static let python = TestPaths.packageRoot.appendingPathComponent(".build/tools/venv/bin/python").path

    @Test(arguments: ["vllm-with-engine-runtime.yaml", "sglang-with-engine-runtime.yaml"])
    func kubernetesExample(file: String) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "the tools venv is missing: run scripts/setup.sh")
        let path = TestPaths.packageRoot.appendingPathComponent("deploy/kubernetes/\(file)").path
        // Prints one line per fact about the sidecar container, read with PyYAML.
        let script = """
            import sys, yaml
            for doc in yaml.safe_load_all(open(sys.argv[1])):
                if doc.get("kind") != "Deployment": continue
                pod = doc["spec"]["template"]
                print("annotations", pod["metadata"]["annotations"]["prometheus.io/scrape"], pod["metadata"]["annotations"]["prometheus.io/port"])
                for c in pod["spec"]["containers"]:
                    if c["name"] != "aibrix-runtime": continue
                    print("liveness", c["livenessProbe"]["httpGet"]["path"], c["livenessProbe"]["httpGet"]["port"])
                    print("readiness", c["readinessProbe"]["httpGet"]["path"], c["readinessProbe"]["httpGet"]["port"])
                    print("args", " ".join(c["args"]))
                    print("env", " ".join(e["name"] for e in c["env"]))
            """
        let result = try await Program.run(Self.python, ["-c", script, path])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("annotations true 8080"))
        #expect(lines.contains("liveness /healthz 8080"))
        #expect(lines.contains("readiness /ready 8080"))
        let args = try #require(lines.first { $0.hasPrefix("args ") }).dropFirst(5).split(separator: " ").map(String.init)
        #expect(args.first == "serve")
        let help = try await Program.run(TestPaths.binary, ["serve", "--help"]).stdout
        for flag in args where flag.hasPrefix("--") {
            #expect(help.contains(flag), "engine-runtime serve has \(flag)")
        }
        let env = try #require(lines.first { $0.hasPrefix("env ") })
        #expect(env.contains("INFERENCE_ENGINE") && env.contains("INFERENCE_ENGINE_ENDPOINT"))
        for variable in env.dropFirst(4).split(separator: " ") {
            #expect(help.contains(variable), "serve --help documents \(variable)")
        }
    }

    /// The warm pool: the pool labels AIBrix's controller selects, /healthz for both probes (as
    /// AIBrix's pool), the model runtime on, and only flags and variables the binary documents.
    @Test func warmRuntimePoolExample() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "the tools venv is missing: run scripts/setup.sh")
        let path = TestPaths.packageRoot.appendingPathComponent("deploy/kubernetes/warm-runtime-pool.yaml").path
        let script = """
            import sys, yaml
            doc = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d.get("kind") == "Deployment")
            pod = doc["spec"]["template"]
            print("labels", pod["metadata"]["labels"]["pool.aibrix.ai/name"], pod["metadata"]["labels"]["pool.aibrix.ai/enabled"])
            print("grace", pod["spec"]["terminationGracePeriodSeconds"])
            (c,) = pod["spec"]["containers"]
            print("probes", c["livenessProbe"]["httpGet"]["path"], c["readinessProbe"]["httpGet"]["path"], c["readinessProbe"]["httpGet"]["port"])
            print("args", " ".join(c["args"]))
            print("env", " ".join(e["name"] for e in c["env"]))
            print("stopgrace", next(e["value"] for e in c["env"] if e["name"] == "ENGINE_RUNTIME_MODEL_STOP_GRACE"))
            """
        let result = try await Program.run(Self.python, ["-c", script, path])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("labels warm-pool-a100 true"))
        #expect(lines.contains("probes /healthz /healthz 8080"))
        let grace = Int(try #require(lines.first { $0.hasPrefix("grace ") }).dropFirst(6)) ?? 0
        let stopGrace = Int(try #require(lines.first { $0.hasPrefix("stopgrace ") }).dropFirst(10)) ?? 0
        #expect(grace > stopGrace + 10, "the pod's grace period covers the engines' stop grace and the API's drain")
        let args = try #require(lines.first { $0.hasPrefix("args ") }).dropFirst(5).split(separator: " ").map(String.init)
        #expect(args.first == "serve" && args.contains("--model-runtime"))
        let help = try await Program.run(TestPaths.binary, ["serve", "--help"]).stdout
        for flag in args where flag.hasPrefix("--") { #expect(help.contains(flag), "engine-runtime serve has \(flag)") }
        let env = try #require(lines.first { $0.hasPrefix("env ") }).dropFirst(4).split(separator: " ")
        for variable in env where variable != "HF_TOKEN" {
            // Per-kind variables are documented once, as ENGINE_RUNTIME_MODEL_<KIND>_...
            let documented = variable.replacingOccurrences(of: "_VLLM_", with: "_<KIND>_")
            #expect(help.contains(documented), "serve --help documents \(variable)")
        }
    }

    /// Every example is valid against the Kubernetes API's schemas (strict: no unknown field),
    /// checked offline by kubernetes-validate.
    @Test func everyExampleMatchesTheKubernetesSchemas() async throws {
        let validator = TestPaths.packageRoot.appendingPathComponent(".build/tools/venv/bin/kubernetes-validate").path
        try #require(FileManager.default.isExecutableFile(atPath: validator), "kubernetes-validate is missing: run scripts/setup.sh")
        let directory = TestPaths.packageRoot.appendingPathComponent("deploy/kubernetes").path
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 4)
        let result = try await Program.run(validator, ["--strict", "--no-warn"] + files.map { directory + "/" + $0 })
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        for file in files { #expect(result.stdout.contains("\(directory)/\(file) passed"), "\(file)") }
    }

    /// As AIBrix deploys it: the model.aibrix.ai labels its controllers select, the engine on
    /// the pod IP, the sidecar named aibrix-runtime started with the webhook's command, the
    /// adapter volume shared, no token (no AIBrix client sends one) and a NetworkPolicy instead.
    @Test func aibrixManagedExample() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "the tools venv is missing: run scripts/setup.sh")
        let path = TestPaths.packageRoot.appendingPathComponent("deploy/kubernetes/aibrix-managed-vllm.yaml").path
        let script = """
            import sys, yaml
            docs = list(yaml.safe_load_all(open(sys.argv[1])))
            deployment = next(d for d in docs if d["kind"] == "Deployment")
            pod = deployment["spec"]["template"]
            labels = pod["metadata"]["labels"]
            print("labels", labels["model.aibrix.ai/name"], labels["model.aibrix.ai/engine"], labels["model.aibrix.ai/port"], labels["model.aibrix.ai/metric-port"])
            containers = {c["name"]: c for c in pod["spec"]["containers"]}
            engine = containers["vllm"]["args"]
            print("engine-host", engine[engine.index("--host") + 1])
            runtime = containers["aibrix-runtime"]
            print("command", " ".join(runtime["command"]))
            print("port", runtime["ports"][0]["name"], runtime["ports"][0]["containerPort"])
            print("env", " ".join(f'{e["name"]}={e.get("value", "")}' for e in runtime["env"]))
            print("mounts", " ".join(m["mountPath"] for m in runtime["volumeMounts"]), "|", " ".join(m["mountPath"] for m in containers["vllm"]["volumeMounts"]))
            policy = next(d for d in docs if d["kind"] == "NetworkPolicy")
            print("policy", policy["spec"]["podSelector"]["matchLabels"]["model.aibrix.ai/name"])
            """
        let result = try await Program.run(Self.python, ["-c", script, path])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("labels llama-3-8b vllm 8000 8000"))
        #expect(lines.contains("engine-host 0.0.0.0"), "the gateway reaches the engine at podIP:8000")
        #expect(lines.contains("command aibrix_runtime --port 8080"))
        #expect(lines.contains("port metrics 8080"))
        #expect(lines.contains("env INFERENCE_ENGINE=vllm INFERENCE_ENGINE_ENDPOINT=http://localhost:8000"), "no token: \(lines)")
        #expect(lines.contains("mounts /tmp/aibrix/adapters | /tmp/aibrix/adapters"))
        #expect(lines.contains("policy llama-3-8b"))
    }
}

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
}

import Foundation
import Host
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `scripts/demo.sh` (what `scripts/run.sh --demo` runs after its build): a simulated vLLM
/// behind the runtime, the requests to try, and nothing left running after SIGTERM.
@Suite struct DemoScriptTests {
    @Test func theDemoServesAndStopsCleanly() async throws {
        let enginePort = try freeLoopbackPort()
        var candidate = try freeLoopbackPort()
        while candidate == enginePort { candidate = try freeLoopbackPort() }
        let port = candidate
        let script = TestPaths.packageRoot.appendingPathComponent("scripts/demo.sh").path
        let demo = try await TestThreadPool.shared.runIfActive {
            try ServerProcess(
                executable: "/bin/bash", arguments: [script, TestPaths.buildDirectory],
                environment: ["DEMO_ENGINE_PORT": "\(enginePort)", "DEMO_PORT": "\(port)"], marker: "engine-runtime is serving on",
                port: { line in
                    line.split(separator: " ").first { $0.hasPrefix("http://127.0.0.1:") }.flatMap { Int($0.split(separator: ":").last ?? "") }
                })
        }
        #expect(demo.port == port)
        #expect(demo.output.contains("curl -s localhost:\(port)/v1/models"))
        var ready = false
        for _ in 0..<100 where !ready {
            ready = try await demo.get("/ready").status == 200
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(ready, "the runtime sees its simulated engine")
        #expect(try await demo.get("/v1/models").text.contains("sim-model"))
        #expect(demo.terminate() == 0)
        for stopped in [port, enginePort] {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(descriptor) }
            var address = loopbackAddress(port: stopped)
            let connected = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            #expect(!connected, "nothing listens on \(stopped) after the demo stopped")
        }
    }
}

import Foundation
import Host
import Synchronization
import Testing
import TestSupport

/// Drivers in a host process of their own (`--isolated-drivers`, an engine's `"isolated": true`):
/// the real binary with a C driver that segfaults, aborts, hangs or allocates without bound on
/// request (Tests/Fixtures/faulty_driver.c), next to a second engine whose driver runs in the
/// sidecar. The same driver in process shows what isolation prevents.
@Suite struct IsolationTests {
    static let faultySource = TestPaths.packageRoot.appendingPathComponent("Tests/Fixtures/faulty_driver.c").path

    /// A directory with the faulty driver and the crafted one, and an engines file naming one
    /// engine of each (the faulty one isolated when `isolated`).
    static func setUp(isolated: Bool) async throws -> (TemporaryDirectory, config: String) {
        let directory = try TemporaryDirectory()
        _ = try await CDriverCompiler.build(faultySource, into: directory.path, name: "faulty.so")
        _ = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "crafted.so")
        let config = directory.path + "/engines.json"
        try #"""
        {"default_engine": "faulty", "engines": [
          {"name": "faulty", "engine": "faulty-engine", "endpoint": "http://127.0.0.1:9", "isolated": \#(isolated)},
          {"name": "other", "engine": "crafted-engine", "endpoint": "http://127.0.0.1:9"}]}
        """#.write(toFile: config, atomically: true, encoding: .utf8)
        return (directory, config)
    }

    static func arguments(_ directory: TemporaryDirectory, config: String) -> [String] {
        ["--driver-dir", directory.path, "--config", config, "--mutation-timeout", "5", "--driver-memory-limit-mb", "256", "--log-level", "info"]
    }

    /// Asks /healthz and the other engine every 50 ms until stopped; counts what failed.
    final class Watcher: Sendable {
        let answered = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        let stopped = Atomic<Bool>(false)

        func watch(_ runtime: ServerProcess) async {
            while !stopped.load(ordering: .relaxed) {
                for path in ["/healthz", "/v1/engines/other/ready"] {
                    do {
                        let answer = try await runtime.request("GET", path, timeout: 2)
                        if answer.status == 200 { answered.add(1, ordering: .relaxed) } else { failures.withLock { $0.append("\(path): \(answer.status)") } }
                    } catch {
                        failures.withLock { $0.append("\(path): \(error)") }
                    }
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    struct Isolation: Decodable {
        var pid: Int32?
        var restarts: Int
        var last_exit: String?
    }

    struct Described: Decodable {
        var name: String
        var isolation: Isolation?
    }

    static func isolation(_ runtime: ServerProcess) async throws -> Isolation? {
        struct List: Decodable { var data: [Described] }
        return try JSONCoding.decode(List.self, from: try await runtime.get("/v1/drivers").body).data.first { $0.name == "faulty" }?.isolation
    }

    /// Waits for the host process after `restarts` restarts.
    static func restarted(_ runtime: ServerProcess, restarts: Int) async throws -> Isolation {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let state = try await isolation(runtime), state.restarts == restarts, state.pid != nil { return state }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CocoaError(.featureUnsupported, userInfo: ["reason": "no restart \(restarts)"])
    }

    /// Every fault, in an operation and in an extension call: the call answers 502 or 504 with
    /// the cause in bounded time, the sidecar and the other engine answer throughout, the
    /// driver's host is restarted and the next call works, and /v1/drivers counts the restarts.
    @Test func eachFaultEndsOnlyTheDriversHost() async throws {
        let (directory, config) = try await Self.setUp(isolated: true)
        defer { directory.remove() }
        let runtime = try await ServerProcess.start(arguments: Self.arguments(directory, config: config))
        let first = try #require(try await Self.isolation(runtime))
        #expect(first.restarts == 0 && first.pid != nil)
        #expect(first.pid != runtime.pid)

        let watcher = Watcher()
        let watching = Task { await watcher.watch(runtime) }
        let faults: [(fault: String, status: Int, cause: String)] = [
            ("segv", 502, "killed by signal 11 (SIGSEGV)"), ("abort", 502, "killed by signal 6 (SIGABRT)"),
            ("hang", 504, "did not return from"), ("alloc", 502, "killed by signal 6 (SIGABRT)"),
        ]
        var restarts = 0
        var pid = first.pid
        for (fault, status, cause) in faults {
            for extensionCall in [false, true] {
                let (answer, took) =
                    extensionCall
                    ? try await runtime.timedRequest("POST", "/v1/engines/faulty/extensions/faulty.fault", body: #"{"kind":"\#(fault)"}"#)
                    : try await runtime.timedRequest("POST", "/v1/engines/faulty/sleep", body: #"{"mode":"\#(fault)"}"#)
                let what = "\(fault) in \(extensionCall ? "an extension call" : "sleep")"
                // Filling 256 MiB on a loaded machine may outlast the deadline: then the host is
                // ended as hung, which is the other bounded answer.
                let slowAlloc = fault == "alloc" && answer.status == 504
                let expected = slowAlloc ? (504, "did not return from") : (status, cause)
                #expect(answer.status == expected.0, "\(what): \(answer.text)")
                #expect(answer.envelope?.message.contains(expected.1) == true, "\(what): \(answer.text)")
                // The deadline is 5 s; a crash answers at once.
                #expect(took < .seconds(10), "\(what) took \(took)")
                restarts += 1
                let now = try await Self.restarted(runtime, restarts: restarts)
                #expect(now.pid != pid, "\(what): a new host process")
                pid = now.pid
                if expected.0 == 502 { #expect(now.last_exit?.contains(cause) == true, "\(what): \(now.last_exit ?? "-")") }
                if expected.0 == 504 { #expect(now.last_exit?.contains("ended by the sidecar") == true, "\(what): \(now.last_exit ?? "-")") }
                let wake = try await runtime.post("/v1/engines/faulty/wake", "{}")
                #expect(wake.status == 200, "after \(what): \(wake.text)")
                let fine = try await runtime.post("/v1/engines/faulty/extensions/faulty.fault", #"{"kind":"none"}"#)
                #expect(fine.status == 200 && fine.text == #"{"result":\#(pid ?? 0)}"#, "after \(what), the call runs in the new host: \(fine.text)")
            }
        }
        watcher.stopped.store(true, ordering: .relaxed)
        await watching.value
        #expect(watcher.failures.withLock { $0 }.isEmpty, "\(watcher.failures.withLock { $0 })")
        #expect(watcher.answered.load(ordering: .relaxed) > 20)
        #expect(runtime.output.contains("isolated driver's host process ended"))
        #expect(try await runtime.get("/healthz").status == 200)
        let status = try await runtime.timedTerminate().status
        #expect(status == 0, "\(runtime.output.suffix(2000))")
    }

    /// The same driver in the sidecar's own process: a segfault, an abort and an allocation
    /// without bound (under a data limit like the one isolation sets) end the whole sidecar,
    /// and a hang keeps the engine's queue of changes closed for good.
    @Test(arguments: ["segv", "abort", "alloc"])
    func inProcessAFaultEndsTheSidecar(fault: String) async throws {
        let (directory, config) = try await Self.setUp(isolated: false)
        defer { directory.remove() }
        let runtime = try await TestThreadPool.shared.runIfActive {
            // The data limit of the whole sidecar, as --driver-memory-limit-mb sets it for a host.
            try ServerProcess(
                executable: "/bin/sh",
                arguments: [
                    "-c", #"ulimit -d 262144 && exec "$0" "$@""#, TestPaths.binary, "serve", "--host", "127.0.0.1", "--port", "0",
                ] + Self.arguments(directory, config: config),
                marker: "engine-runtime listening")
        }
        #expect(try await Self.isolation(runtime) == nil)
        _ = try? await runtime.request("POST", "/v1/engines/faulty/sleep", body: #"{"mode":"\#(fault)"}"#, timeout: 10)
        let ended = try #require(try await runtime.ended(within: .seconds(20)), "the sidecar survived \(fault)")
        #expect(ended.signalled && ended.status == (fault == "segv" ? SIGSEGV : SIGABRT), "\(ended)")
        #expect((try? await runtime.request("GET", "/healthz", timeout: 2)) == nil, "nothing answers /healthz any more")
    }

    @Test func inProcessAHangHoldsTheEnginesChanges() async throws {
        let (directory, config) = try await Self.setUp(isolated: false)
        defer { directory.remove() }
        let runtime = try await ServerProcess.start(arguments: Self.arguments(directory, config: config))
        let hung = try await runtime.request("POST", "/v1/engines/faulty/sleep", body: #"{"mode":"hang"}"#, timeout: 30)
        #expect(hung.status == 504, "\(hung.text)")
        // The driver's thread never returns: every later change waits behind it until its deadline.
        let wake = try await runtime.request("POST", "/v1/engines/faulty/wake", body: "{}", timeout: 30)
        #expect(wake.status == 504 && wake.text.contains("waited for the engine's previous change"), "\(wake.text)")
        #expect(try await runtime.get("/healthz").status == 200)
        runtime.kill()
    }

    /// A driver that crashes while loading is a load failure with the cause, not a dead sidecar.
    @Test func aDriverThatFailsToLoadInItsHostIsReported() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "magic.so", defines: ["MAGIC=7u"])
        _ = try await CDriverCompiler.build(Self.faultySource, into: directory.path, name: "faulty.so")
        let list = try await Program.run(
            TestPaths.binary, ["drivers", "list", "--driver-dir", directory.path, "--isolated-drivers", "all", "--json"])
        #expect(list.status == 1)
        let drivers = try JSONCoding.decode(DriverList.self, from: Array(list.stdout.utf8))
        #expect(drivers.data.map(\.name) == ["faulty"])
        #expect(drivers.data.first?.isolation?.pid != nil)
        #expect(drivers.failures.first?.error.contains("bad magic") == true, "\(drivers.failures)")
    }

    /// `drivers check --isolated` serves the driver from a host process: the in-tree vLLM
    /// driver conforms there too, and a crash is a failed check naming the signal while the
    /// checks after it run against the restarted host.
    @Test func driversCheckServesTheDriverFromAHostProcess() async throws {
        let vllm = try await Program.run(TestPaths.binary, ["drivers", "check", "--isolated", TestPaths.buildDirectory + "/libEngineVLLM.so"])
        #expect(vllm.status == 0, "\(vllm.stdout)")
        #expect(vllm.stdout.contains("PASS  load and handshake: driver vllm") && vllm.stdout.contains("(in host process "), "\(vllm.stdout)")
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let crashing = try await CDriverCompiler.build(TestPaths.craftedSource, into: directory.path, name: "crash.so", defines: ["CRASH_HEALTH"])
        let check = try await Program.run(TestPaths.binary, ["drivers", "check", "--isolated", crashing])
        #expect(check.status == 1)
        #expect(check.stdout.contains("FAIL  health (valid request): the driver ended its host process: driver crafted's host process"), "\(check.stdout)")
        #expect(check.stdout.contains("(killed by signal 11 (SIGSEGV)) during health"), "\(check.stdout)")
        #expect(check.stdout.contains("PASS  readiness (valid request)"), "the checks go on in the restarted host: \(check.stdout)")
    }
}

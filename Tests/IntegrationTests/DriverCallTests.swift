import Foundation
import Host
import Hummingbird
import NIOCore
import NIOPosix
import Logging
import TestSupport
import Testing

/// Calls through the ABI: deadlines, serialization, and the host's HTTP service as drivers see it.
@Suite struct DriverCallTests {
    @Test func aDriverThatIgnoresTheDeadlineStillAnswersTimeoutOnTime() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(
            TestPaths.craftedSource, into: directory.path, name: "slow.so",
            defines: ["DRIVER_NAME=\"slow\"", "SLOW_MS=1500", "_POSIX_C_SOURCE=200809L"])
        let driver = try DriverLoader.load(path: path).get()
        try await withThreadPool(threads: 4) { (pool: WorkerPool) async throws in
            let instance = try await makeInstance(driver, engineKind: "crafted-engine", pool: pool)
            await #expect(throws: RuntimeError(.timeout, "the driver did not answer before the deadline")) {
                try await instance.invoke(.engineInfo, request: Array("{}".utf8), timeout: .milliseconds(100))
            }
            // Read operations are not held up by a slow one.
            let health = try await instance.invoke(.health, request: Array("{}".utf8), timeout: .seconds(1))
            #expect(String(decoding: health, as: UTF8.self).contains("\"healthy\":true"))
            await instance.shutdown()
        }
    }

    @Test func mutatingOperationsAreSerializedPerInstance() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(
            TestPaths.craftedSource, into: directory.path, name: "serial.so",
            defines: ["DRIVER_NAME=\"serial\"", "SLOW_MS=300", "_POSIX_C_SOURCE=200809L"])
        let driver = try DriverLoader.load(path: path).get()
        try await withThreadPool(threads: 4) { (pool: WorkerPool) async throws in
            let instance = try await makeInstance(driver, engineKind: "crafted-engine", pool: pool)
            let start = NIODeadline.now()
            async let first = instance.invoke(.sleep, request: Array("{}".utf8), timeout: .seconds(5))
            async let second = instance.invoke(.sleep, request: Array("{}".utf8), timeout: .seconds(5))
            _ = try await (first, second)
            // Two 300 ms calls one after the other take at least 600 ms; in parallel they would not.
            #expect(NIODeadline.now() - start >= .milliseconds(600))
            await instance.shutdown()
        }
    }

    /// A change queued behind one that hangs fails at its own deadline, counted from its arrival,
    /// instead of waiting for the gate and then getting a full deadline of its own.
    @Test func queuedMutationsFailAtTheirOwnDeadline() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(
            TestPaths.craftedSource, into: directory.path, name: "stuck.so",
            defines: ["DRIVER_NAME=\"stuck\"", "SLOW_MS=2000", "_POSIX_C_SOURCE=200809L"])
        let driver = try DriverLoader.load(path: path).get()
        try await withThreadPool(threads: 4) { (pool: WorkerPool) async throws in
            let instance = try await makeInstance(driver, engineKind: "crafted-engine", pool: pool)
            async let first = instance.invoke(.sleep, request: Array("{}".utf8), timeout: .seconds(10))
            // Let the first change take the gate (its driver call blocks for 2 s).
            try await Task.sleep(for: .milliseconds(500))
            let messages = await withTaskGroup(of: String.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        do throws(RuntimeError) {
                            _ = try await instance.invoke(.sleep, request: Array("{}".utf8), timeout: .milliseconds(300))
                            return "succeeded"
                        } catch {
                            return error.kind == .timeout ? error.message : "\(error.kind): \(error.message)"
                        }
                    }
                }
                var all: [String] = []
                for await message in group { all.append(message) }
                return all
            }
            _ = try await first
            let queued = messages.filter { $0.contains("waited for the engine's previous change") }
            #expect(queued.count >= 2, "\(messages)")
            #expect(!messages.contains("succeeded"))
            await instance.shutdown()
        }
    }

    /// The C template reaches the engine through the host's HTTP service, with the API key.
    /// Issue 12: shutdown racing reads and queued changes. No call reaches a destroyed
    /// instance (the driver counts any that do), every call ends (answered, or refused as
    /// shutting down), and the instance is destroyed exactly once per round.
    @Test(.timeLimit(.minutes(1))) func shutdownRacingReadsAndQueuedChangesNeverUsesADestroyedInstance() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(
            TestPaths.craftedSource, into: directory.path, name: "race.so",
            defines: ["DRIVER_NAME=\"race\"", "SLOW_MS=20", "_POSIX_C_SOURCE=200809L"])
        let driver = try DriverLoader.load(path: path).get()
        let library = try #require(dlopen(path, RTLD_NOW | RTLD_NOLOAD), "the loader keeps the driver open")
        defer { dlclose(library) }
        let misuse = try #require(dlsym(library, "crafted_uses_after_destroy")).assumingMemoryBound(to: Int32.self)
        let destroys = try #require(dlsym(library, "crafted_destroys")).assumingMemoryBound(to: Int32.self)
        let rounds = 20
        try await withThreadPool(threads: 8) { (pool: WorkerPool) async throws in
            for round in 0..<rounds {
                let instance = try await makeInstance(driver, engineKind: "crafted-engine", pool: pool)
                let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<40 {
                        group.addTask {
                            let operation: DriverOperation = index % 8 == 0 ? .sleep : .health
                            do {
                                _ = try await instance.invoke(operation, request: Array("{}".utf8), timeout: .seconds(30))
                                return "ok"
                            } catch {
                                return (error as? RuntimeError)?.kind == .unavailable ? "refused" : "other: \(error)"
                            }
                        }
                    }
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(Int64(round % 5) * 7))
                        let destroyed = await instance.shutdown(wait: .seconds(10))
                        return destroyed ? "destroyed" : "left"
                    }
                    var outcomes: [String] = []
                    for try await outcome in group { outcomes.append(outcome) }
                    return outcomes
                }
                #expect(outcomes.contains("destroyed"), "round \(round): \(outcomes)")
                #expect(outcomes.allSatisfy { ["ok", "refused", "destroyed"].contains($0) }, "round \(round): \(outcomes)")
                await #expect(throws: RuntimeError(.unavailable, "instance test is shutting down")) {
                    try await instance.invoke(.health, request: Array("{}".utf8), timeout: .seconds(1))
                }
            }
        }
        #expect(misuse.pointee == 0, "\(misuse.pointee) driver calls reached a destroyed instance")
        #expect(destroys.pointee == Int32(rounds))
    }

    @Test func driversUseTheHostHTTPServiceWithTheAPIKey() async throws {
        let router = Router()
        router.get("/v1/models") { request, _ -> Response in
            guard request.headers[.authorization] == "Bearer secret-key" else {
                return Response(status: .unauthorized, body: .init(byteBuffer: ByteBuffer(string: #"{"error":"Unauthorized"}"#)))
            }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"object":"list","data":[{"id":"m"}]}"#)))
        }
        router.get("/health") { _, _ in Response(status: .serviceUnavailable) }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(
            TestPaths.templateSource, into: directory.path, name: "libhttp.so", defines: ["TEMPLATE_DRIVER_NAME=\"http\""])
        let driver = try DriverLoader.load(path: path).get()
        try await LoopbackServer.with(router) { port in
            try await withThreadPool { (pool: WorkerPool) async throws in
                let endpoint = "http://127.0.0.1:\(port)"
                let keyed = try await makeInstance(driver, engineKind: "template-engine", endpoint: endpoint, apiKey: "secret-key", pool: pool)
                let models = try await keyed.invoke(.listModels, request: Array("{}".utf8), timeout: .seconds(20))
                #expect(String(decoding: models, as: UTF8.self) == #"{"object":"list","data":[{"id":"m"}]}"#)
                // The in-process server shares this process's two concurrency threads with every
                // other test; a probe it answered too late says nothing about the driver, so it is
                // asked again (at most three times) rather than failing the run.
                var health: [UInt8] = []
                for _ in 0..<3 {
                    health = try await keyed.invoke(.health, request: Array("{}".utf8), timeout: .seconds(20))
                    if !String(decoding: health, as: UTF8.self).contains("timed out") { break }
                }
                #expect(String(decoding: health, as: UTF8.self) == #"{"healthy":false,"reason":"engine /health answered HTTP 503"}"#)
                let anonymous = try await makeInstance(driver, engineKind: "template-engine", endpoint: endpoint, pool: pool)
                let refused = await #expect(throws: RuntimeError.self) {
                    try await anonymous.invoke(.listModels, request: Array("{}".utf8), timeout: .seconds(20))
                }
                #expect(refused?.kind == .upstream)
                #expect(refused?.upstreamHTTPStatus == 401)
                await keyed.shutdown()
                await anonymous.shutdown()
            }
        }
    }
}

/// Driver log lines go into swift-log with the driver and instance as metadata.
@Suite struct DriverLoggingTests {
    @Test func driverLogsCarryDriverAndInstance() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try await CDriverCompiler.build(
            TestPaths.templateSource, into: directory.path, name: "liblog.so", defines: ["TEMPLATE_DRIVER_NAME=\"logger\""])
        let driver = try DriverLoader.load(path: path).get()
        let store = CapturingLogHandler.Store()
        let logger = Logger(label: "test") { _ in CapturingLogHandler(store: store) }
        try await withThreadPool { (pool: WorkerPool) async throws in
            let instance = try await DriverInstance.create(
                driver: driver,
                configuration: InstanceConfiguration(name: "pod-engine", engineKind: "template-engine", endpoint: "http://127.0.0.1:9"),
                pool: pool, httpClient: CurlHTTPClient(), logger: logger)
            await instance.shutdown()
        }
        let record = try #require(store.all.first { $0.message == "template instance created" })
        #expect(record.level == .debug)
        #expect(record.metadata["driver"] == "logger")
        #expect(record.metadata["instance"] == "pod-engine")
    }
}

import Foundation
import HTTPTypes
import Host
import Hummingbird
import NIOCore
import TestSupport
import Testing

/// The host's libcurl client against a real HTTP server on loopback.
@Suite struct CurlHTTPClientTests {
    static func makeRouter(counter: RequestCounter) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/ok") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "hello")))
        }
        router.get("/slow") { request, _ in
            let milliseconds = Int(request.uri.queryParameters.get("ms") ?? "1000") ?? 1000
            try await Task.sleep(for: .milliseconds(milliseconds))
            return "late"
        }
        router.get("/big") { request, _ in
            let bytes = Int(request.uri.queryParameters.get("bytes") ?? "0") ?? 0
            return ByteBuffer(repeating: UInt8(ascii: "x"), count: bytes)
        }
        router.on("/flaky/{key}", method: .get) { _, context in
            let key = try context.parameters.require("key")
            return counter.record(key) < 3 ? Response(status: .serviceUnavailable) : Response(status: .ok)
        }
        router.on("/flaky/{key}", method: .post) { _, context in
            let key = try context.parameters.require("key")
            return counter.record(key) < 3 ? Response(status: .serviceUnavailable) : Response(status: .ok)
        }
        router.post("/echo") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 20)
            let type = request.headers[.contentType] ?? ""
            return Response(status: .created, headers: [.contentType: type], body: .init(byteBuffer: body))
        }
        return router
    }

    private func withServer<T: Sendable>(_ body: @Sendable (Int, RequestCounter) async throws -> T) async throws -> T {
        let counter = RequestCounter()
        return try await LoopbackServer.with(Self.makeRouter(counter: counter)) { port in try await body(port, counter) }
    }

    /// Blocking client calls run on a thread pool, as in the host: blocking the concurrency
    /// pool would starve the test server.
    private func perform(
        _ client: CurlHTTPClient, _ request: HTTPClientRequest, deadline: NIODeadline? = nil,
        isCancelled: @escaping @Sendable () -> Bool = { false }
    ) async -> Result<HTTPClientResponse, RuntimeError> {
        do {
            return try await TestThreadPool.shared.runIfActive {
                client.perform(request, deadline: deadline, isCancelled: isCancelled).mapError(RuntimeError.init)
            }
        } catch {
            return .failure(RuntimeError(.internalError, "thread pool: \(error)"))
        }
    }

    @Test func getReturnsStatusBodyAndContentTypeAndReusesTheConnection() async throws {
        try await withServer { (port: Int, _: RequestCounter) async throws in
            let client = CurlHTTPClient()
            let first = try await perform(client, HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/ok")).get()
            #expect(first.status == 200)
            #expect(String(decoding: first.body, as: UTF8.self) == "hello")
            #expect(first.contentType == "text/plain")
            #expect(first.newConnections == 1)
            let second = try await perform(client, HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/ok")).get()
            #expect(second.newConnections == 0, "the pooled connection is reused")
        }
    }

    @Test func postSendsBodyAndHeaders() async throws {
        try await withServer { (port: Int, _: RequestCounter) async throws in
            let request = HTTPClientRequest(
                method: "POST", url: "http://127.0.0.1:\(port)/echo", headers: ["Content-Type: application/json"],
                body: Array(#"{"a":1}"#.utf8))
            let response = try await perform(CurlHTTPClient(), request).get()
            #expect(response.status == 201)
            #expect(String(decoding: response.body, as: UTF8.self) == #"{"a":1}"#)
            #expect(response.contentType == "application/json")
        }
    }

    @Test func responseLargerThanTheCapFails() async throws {
        try await withServer { (port: Int, _: RequestCounter) async throws in
            let request = HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/big?bytes=5000", maxResponseBytes: 4096)
            let result = await perform(CurlHTTPClient(), request)
            guard case .failure(let error) = result else { Issue.record("accepted an oversize body"); return }
            #expect(error.kind == .upstream)
            #expect(error.message.contains("larger than 4096 bytes"))
            let fits = HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/big?bytes=4096", maxResponseBytes: 4096)
            #expect(try await perform(CurlHTTPClient(), fits).get().body.count == 4096)
        }
    }

    /// A scrape hands its text's array to the next one: the body lands in the same storage,
    /// old contents gone, and a handed array is taken once.
    @Test func aResponseIsWrittenOverAnEarlierBodysStorage() async throws {
        try await withServer { (port: Int, _: RequestCounter) async throws in
            let client = CurlHTTPClient()
            var earlier = [UInt8](repeating: UInt8(ascii: "o"), count: 300_000)
            earlier.removeAll(keepingCapacity: true)
            earlier.append(contentsOf: Array("old".utf8))
            let address = earlier.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
            var request = HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/big?bytes=200000")
            request.responseStorage = Handoff(earlier)
            earlier = []
            let body = try await perform(client, request).get().body
            #expect(body.count == 200_000 && body.allSatisfy { $0 == UInt8(ascii: "x") })
            #expect(body.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) } == address)
            #expect(request.responseStorage?.take() == nil, "the storage was taken by the first attempt")
        }
    }

    @Test func timeoutAndDeadline() async throws {
        try await withServer { (port: Int, _: RequestCounter) async throws in
            let client = CurlHTTPClient()
            let slow = HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/slow?ms=3000", timeout: .milliseconds(200))
            guard case .failure(let timedOut) = await perform(client, slow) else { Issue.record("no timeout"); return }
            #expect(timedOut.kind == .timeout)
            // A long per-request timeout is clamped to the call's deadline.
            let patient = HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/slow?ms=3000", timeout: .seconds(30))
            guard case .failure(let clamped) = await perform(client, patient, deadline: .now() + .milliseconds(200)) else {
                Issue.record("deadline ignored")
                return
            }
            #expect(clamped.kind == .timeout)
            guard case .failure(let expired) = await perform(client, patient, deadline: .now() - .seconds(1)) else {
                Issue.record("expired deadline ignored")
                return
            }
            #expect(expired.message == "the deadline passed before the request was sent")
        }
    }

    @Test func cancellationStopsTheTransfer() async throws {
        try await withServer { (port: Int, _: RequestCounter) async throws in
            let start = NIODeadline.now()
            let request = HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/slow?ms=5000")
            let result = await perform(CurlHTTPClient(), request) { NIODeadline.now() - start > .milliseconds(150) }
            guard case .failure(let error) = result else { Issue.record("not cancelled"); return }
            #expect(error.kind == .cancelled)
        }
    }

    @Test func idempotentRequestsAreRetriedOthersAreNot() async throws {
        try await withServer { (port: Int, counter: RequestCounter) async throws in
            let client = CurlHTTPClient()
            let get = HTTPClientRequest(method: "GET", url: "http://127.0.0.1:\(port)/flaky/get", idempotent: true)
            #expect(try await perform(client, get).get().status == 200)
            #expect(counter.count("get") == 3)
            let post = HTTPClientRequest(method: "POST", url: "http://127.0.0.1:\(port)/flaky/post")
            #expect(try await perform(client, post).get().status == 503)
            #expect(counter.count("post") == 1)
        }
    }

    @Test func refusedConnectionIsUnavailable() async {
        let result = await perform(CurlHTTPClient(), HTTPClientRequest(method: "GET", url: "http://127.0.0.1:9/health", idempotent: true))
        guard case .failure(let error) = result else { Issue.record("reached port 9"); return }
        #expect(error.kind == .unavailable)
        #expect(error.message.hasPrefix("cannot reach GET http://127.0.0.1:9/health"))
    }

    @Test func badRequestsAreRefusedBeforeSending() async {
        let client = CurlHTTPClient()
        for request in [
            HTTPClientRequest(method: "GET", url: "file:///etc/passwd"),
            HTTPClientRequest(method: "BREW", url: "http://127.0.0.1:9/"),
            HTTPClientRequest(method: "GET", url: "http://127.0.0.1:9/", headers: ["X-Bad: a\r\nInjected: b"]),
        ] {
            guard case .failure(let error) = await perform(client, request) else { Issue.record("sent \(request.url)"); continue }
            #expect(error.kind == .invalidArgument)
        }
    }
}

import HTTPTypes
import Hummingbird
import NIOCore

/// Applies the fault knobs to every engine route (not /_sim), counts requests, and enforces
/// the engine's API key the way the real engine does.
struct FaultMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let settings: SimulatorSettings
    let state: SimulatorState

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        if path.hasPrefix("/_sim/") { return try await next(request, context) }
        let knobs = state.withEngine { engine -> Knobs in
            engine.requestCounts["\(request.method.rawValue) \(path)", default: 0] += 1
            return engine.knobs
        }
        if knobs.hang {
            // Hung until the client gives up, or until a shutdown begins: SIGTERM ends a hung
            // simulator as it ends a real engine.
            let end = ContinuousClock.now + .seconds(3600)
            while !state.stopping.load(ordering: .relaxed), ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(20)) }
            return Response(status: .serviceUnavailable)
        }
        if knobs.latency_ms > 0, knobs.latency_path.map({ path.hasPrefix($0) }) ?? true {
            try await Task.sleep(for: .milliseconds(knobs.latency_ms))
        }
        if !authorized(path, request.headers[.authorization]) {
            return SimulatorRoutes.text(#"{"error":"Unauthorized"}"#, status: .unauthorized, contentType: "application/json")
        }
        if knobs.dead, !path.hasPrefix("/health"), !path.hasPrefix("/ready"), path != "/metrics" {
            // Every route that reaches a dead engine core raises EngineDeadError, which vLLM
            // answers 500 (serve/exception_handling/error_response.py:14-105); /health is 503
            // (serve/instrumentator/health.py:22-33) and SGLang's /ready 503, in the routes; the Prometheus app does
            // not touch the engine.
            return SimulatorRoutes.vllmError(
                settings, 500, "EngineDeadError", "EngineCore encountered an issue. See stack trace (above) for the root cause.")
        }
        if knobs.error_rate > 0, Double.random(in: 0..<1) < knobs.error_rate {
            return SimulatorRoutes.vllmError(settings, 500, "InternalServerError", "simulated engine failure")
        }
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound || error.status == .methodNotAllowed {
            // Both engines are FastAPI apps: an unknown route is {"detail":"Not Found"}.
            let detail = error.status == .notFound ? "Not Found" : "Method Not Allowed"
            return SimulatorRoutes.text(#"{"detail":"\#(detail)"}"#, status: error.status, contentType: "application/json")
        }
        if knobs.malformed, path != "/metrics", path != "/health" {
            return Response(status: response.status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"truncated\": [1, 2")))
        }
        return response
    }

    /// SGLang 0.5.23's management routes (`admin_optional`, `sglang/srt/utils/auth.py:20-35`).
    static let sglangManagementRoutes: Set<String> = [
        "/load_lora_adapter", "/unload_lora_adapter", "/flush_cache", "/release_memory_occupation", "/resume_memory_occupation",
        "/pause_generation", "/continue_generation", "/update_weights_from_disk", "/abort_request",
    ]

    /// vLLM guards only `/v1`, `/v2`, `/inference`, `/cohere` paths
    /// (`vllm/entrypoints/serve/middleware/authenticate.py:11`). SGLang 0.5.23 exempts
    /// `/health*`, `/ready*`, `/metrics*`; its management routes take the admin key when one is
    /// set (both set: only the admin key), the others the API key (`auth.py:98-151`). SGLang
    /// 0.5.4 had the API key only, on everything but health and metrics.
    private func authorized(_ path: String, _ header: String?) -> Bool {
        func bearer(_ key: String?) -> Bool { key.map { header == "Bearer \($0)" } ?? false }
        switch settings.profile {
        case .vllmCurrent, .vllmPrevious:
            guard let key = settings.apiKey, ["/v1", "/v2", "/inference", "/cohere"].contains(where: path.hasPrefix) else { return true }
            return bearer(key)
        case .sglangPrevious:
            guard let key = settings.apiKey, !path.hasPrefix("/health"), !path.hasPrefix("/metrics") else { return true }
            return bearer(key)
        case .sglangCurrent:
            if ["/health", "/ready", "/metrics"].contains(where: path.hasPrefix) { return true }
            if Self.sglangManagementRoutes.contains(path) {
                switch (settings.apiKey, settings.adminAPIKey) {
                case (nil, nil): return true
                case (let api?, nil): return bearer(api)
                case (_, let admin?): return bearer(admin)
                }
            }
            return settings.apiKey.map { bearer($0) } ?? true
        }
    }
}

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
            try await Task.sleep(for: .seconds(3600))
        }
        if knobs.latency_ms > 0, knobs.latency_path.map({ path.hasPrefix($0) }) ?? true {
            try await Task.sleep(for: .milliseconds(knobs.latency_ms))
        }
        if let key = settings.apiKey, requiresKey(path), request.headers[.authorization] != "Bearer \(key)" {
            return SimulatorRoutes.text(#"{"error":"Unauthorized"}"#, status: .unauthorized, contentType: "application/json")
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

    /// vLLM guards /v1 paths; SGLang guards everything but health and metrics.
    private func requiresKey(_ path: String) -> Bool {
        switch settings.flavor {
        case .vllm: path.hasPrefix("/v1")
        case .sglang: !path.hasPrefix("/health") && !path.hasPrefix("/metrics")
        }
    }
}

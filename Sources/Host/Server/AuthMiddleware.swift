import HTTPTypes
import Hummingbird

/// Optional bearer-token authentication for every route but liveness and readiness (probes
/// carry no credentials). The token comparison takes the same time wherever the first
/// difference is.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]
    static var openPaths: Set<String> { ["/healthz", "/ready"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if Self.openPaths.contains(request.uri.path) { return try await next(request, context) }
        guard let header = request.headers[.authorization], let credentials = Self.bearerCredentials(header),
            Self.constantTimeEqual(credentials, token)
        else {
            throw RuntimeError(.unauthorized, "a valid bearer token is required")
        }
        return try await next(request, context)
    }

    /// The token of a `Bearer` authorization. The scheme is case-insensitive (RFC 7235 §2.1:
    /// `bearer x` is as valid as `Bearer x`) and spaces may separate it from the token.
    static func bearerCredentials(_ header: String) -> [UInt8]? {
        let bytes = Array(header.utf8)
        guard let space = bytes.firstIndex(of: 0x20), String(decoding: bytes[..<space], as: UTF8.self).lowercased() == "bearer" else {
            return nil
        }
        return Array(bytes[space...].drop { $0 == 0x20 })
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            let left = index < a.count ? a[index] : 0
            let right = index < b.count ? b[index] : 0
            difference |= left ^ right
        }
        return difference == 0 && a.count == b.count
    }
}

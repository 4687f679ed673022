import HTTPTypes
import Hummingbird
import Synchronization

/// Answers a known path with an unsupported method 405 with `Allow` (RFC 9110 §15.5.6), where
/// the router alone would answer 404 as if the path did not exist.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Every route's path and methods, filled in once all routes are registered (middleware
    /// must be added before the routes it wraps).
    final class Table: Sendable {
        private let routes = Mutex<[(components: [Substring], methods: [String])]>([])

        func fill(_ descriptions: [Router<Context>.RouteDescription]) {
            var byPath: [String: Set<String>] = [:]
            for route in descriptions {
                byPath["\(route.path)", default: []].insert(route.method.rawValue)
                // The router adds HEAD for each GET when it builds its responder, after this.
                if route.method == .get { byPath["\(route.path)", default: []].insert("HEAD") }
            }
            routes.withLock { routes in
                routes = byPath.map { (path, methods) in (path.split(separator: "/"), methods.sorted()) }
            }
        }

        /// The methods some route accepts for `path`; empty when no route has this path.
        func methods(for path: String) -> [String] {
            let parts = path.split(separator: "/")
            return routes.withLock { routes in
                Array(Set(routes.filter { Self.matches($0.components, parts) }.flatMap(\.methods))).sorted()
            }
        }

        private static func matches(_ pattern: [Substring], _ parts: [Substring]) -> Bool {
            for (index, component) in pattern.enumerated() {
                if component == "**" { return true }
                guard index < parts.count else { return false }
                let isCapture = component == "*" || (component.hasPrefix("{") && component.hasSuffix("}")) || component.hasPrefix(":")
                if !isCapture && component != parts[index] { return false }
            }
            return pattern.count == parts.count
        }
    }

    let table: Table

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = table.methods(for: request.uri.path)
            guard !allowed.isEmpty else { throw error }
            var response = ErrorEnvelope.response(
                status: .methodNotAllowed, type: ErrorKind.methodNotAllowed.envelopeType,
                message: "\(request.uri.path) does not accept \(request.method.rawValue); it accepts \(allowed.joined(separator: ", "))")
            response.headers[.allow] = allowed.joined(separator: ", ")
            return response
        }
    }
}

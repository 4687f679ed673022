import HTTPTypes
import Hummingbird
import NIOCore

/// The one error shape of the API (OpenAI style): `{"object":"error","message","type","code"}`.
public struct ErrorEnvelope: Codable, Sendable, Equatable {
    public var object = "error"
    public var message: String
    public var type: String
    public var code: Int

    public init(message: String, type: String, code: Int) {
        self.message = message
        self.type = type
        self.code = code
    }
}

/// An error a route throws; rendered as the envelope with its HTTP status.
public struct APIError: Error, HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let envelope: ErrorEnvelope

    public init(_ status: HTTPResponse.Status, type: String, message: String) {
        self.status = status
        self.envelope = ErrorEnvelope(message: message, type: type, code: status.code)
    }

    public init(_ error: DriverCallError) {
        self.init(HTTPResponse.Status(code: error.status.httpStatus), type: error.status.errorType, message: error.message)
    }

    public static func notFound(_ message: String) -> APIError { APIError(.notFound, type: "not_found", message: message) }
    public static func invalid(_ message: String) -> APIError { APIError(.badRequest, type: "invalid_argument", message: message) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = (try? JSONCoding.encode(envelope)) ?? Array(#"{"object":"error"}"#.utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Renders every error that escapes a route in the envelope: Hummingbird's own (unknown route,
/// wrong method, body too large) and unexpected ones (as a 500 that says nothing internal).
struct ErrorEnvelopeMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let type =
                switch error.status {
                case .notFound: "not_found"
                case .methodNotAllowed: "method_not_allowed"
                case .contentTooLarge: "invalid_argument"
                case .badRequest: "invalid_argument"
                default: "error"
                }
            let message = error.body ?? (error.status == .notFound ? "no route \(request.method.rawValue) \(request.uri.path)" : error.status.reasonPhrase)
            throw APIError(error.status, type: type, message: message)
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw APIError(.internalServerError, type: "internal_error", message: "internal error")
        }
    }
}

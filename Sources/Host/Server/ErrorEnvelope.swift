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

    /// The one place an error becomes an HTTP answer.
    static func response(status: HTTPResponse.Status, type: String, message: String) -> Response {
        let envelope = ErrorEnvelope(message: message, type: type, code: status.code)
        let body = (try? JSONCoding.encode(envelope)) ?? Array(#"{"object":"error"}"#.utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Every error a route or service throws renders as the envelope, with its kind's status.
extension RuntimeError: HTTPResponseError {
    public var status: HTTPResponse.Status { HTTPResponse.Status(code: kind.httpStatus) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        ErrorEnvelope.response(status: status, type: kind.envelopeType, message: message)
    }
}

/// Renders every error that escapes a route in the envelope: Hummingbird's own (unknown route,
/// wrong method, body too large) and unexpected ones (as a 500 that says nothing internal).
struct ErrorEnvelopeMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as RuntimeError {
            throw error
        } catch let error as HTTPError {
            let message = error.body ?? (error.status == .notFound ? "no route \(request.method.rawValue) \(request.uri.path)" : error.status.reasonPhrase)
            switch error.status {
            case .notFound: throw RuntimeError(.notFound, message)
            case .methodNotAllowed: throw RuntimeError(.methodNotAllowed, message)
            case .contentTooLarge: throw RuntimeError(.tooLarge, message)
            case .badRequest: throw RuntimeError(.invalidArgument, message)
            // A status no kind stands for keeps Hummingbird's own status.
            default: return ErrorEnvelope.response(status: error.status, type: "error", message: message)
            }
        } catch {
            context.logger.error("unexpected error", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
            throw RuntimeError(.internalError, "internal error")
        }
    }
}

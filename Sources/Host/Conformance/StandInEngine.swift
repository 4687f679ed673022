import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The engine `drivers check` points a driver at when no `--endpoint` is given: a loopback
/// server that answers every request with success in the shape OpenAI-style engines use, so
/// each operation's success path runs (and its answer can be checked) without a real engine.
/// It records what the driver asked, for the report.
enum StandInEngine {
    /// The requests it saw, "METHOD /path", in order.
    final class Log: Sendable {
        private let lines = Mutex<[String]>([])
        func append(_ line: String) { lines.withLock { $0.append(line) } }
        var all: [String] { lines.withLock { $0 } }
    }

    /// Serves on a free loopback port while `body` runs.
    static func with<T: Sendable>(logger: Logger, _ body: @Sendable (_ endpoint: String, Log) async -> T) async -> T? {
        let log = Log()
        let router = Router()
        router.add(middleware: Responder(log: log))
        var quiet = logger
        quiet.logLevel = .critical  // stopping by cancellation logs errors nobody needs
        let (ports, port) = AsyncStream.makeStream(of: Int.self)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.yield(channel.localAddress?.port ?? 0) }, logger: quiet)
        return await withTaskGroup(of: T?.self) { group in
            group.addTask {
                try? await app.runService(gracefulShutdownSignals: [])
                return nil
            }
            var iterator = ports.makeAsyncIterator()
            guard let bound = await iterator.next(), bound > 0 else {
                group.cancelAll()
                return nil
            }
            let result = await body("http://127.0.0.1:\(bound)", log)
            group.cancelAll()
            return result
        }
    }

    /// Answers everything, before any route is looked up.
    struct Responder: RouterMiddleware {
        typealias Context = BasicRequestContext
        let log: Log

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            let path = request.uri.path
            log.append("\(request.method.rawValue) \(path)")
            let (type, body) = StandInEngine.answer(for: path)
            return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
    }

    /// The body for a path: a model list, a version, Prometheus text, the list shapes of
    /// llama-server's adapter and slot routes, SGLang's server info, or `{}`.
    static func answer(for path: String) -> (contentType: String, body: String) {
        switch path {
        case "/lora-adapters", "/slots":
            ("application/json", "[]")
        case "/server_info", "/get_server_info", "/model_info", "/get_model_info":
            ("application/json", #"{"model_path":"stand-in-model","version":"0.0.0-stand-in"}"#)
        case "/v1/models", "/models":
            ("application/json", #"{"object":"list","data":[{"id":"stand-in-model","object":"model","root":"stand-in-model","owned_by":"stand-in"}]}"#)
        case "/version":
            ("application/json", #"{"version":"0.0.0-stand-in"}"#)
        case "/metrics":
            ("text/plain; version=0.0.4", "# TYPE stand_in_up gauge\nstand_in_up 1\n")
        default:
            ("application/json", "{}")
        }
    }
}

import Hummingbird
import Logging
import NIOCore

/// Where and how the management API listens.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int

    public init(host: String = "0.0.0.0", port: Int = 8080) {
        self.host = host
        self.port = port
    }
}

/// The HTTP facade: builds the routes over the runtime's parts and runs the server until
/// SIGTERM or SIGINT (graceful shutdown through swift-service-lifecycle).
public struct RuntimeServer: Sendable {
    public let configuration: ServerConfiguration
    public let runtime: RuntimeConfiguration
    public let drivers: DriverRegistry
    public let engines: EngineRegistry
    public let metrics: MetricsService
    public let downloads: DownloadManager
    public let secrets: CredentialsSecrets
    public let logger: Logger

    public init(
        configuration: ServerConfiguration, runtime: RuntimeConfiguration, drivers: DriverRegistry, engines: EngineRegistry,
        metrics: MetricsService, downloads: DownloadManager, secrets: CredentialsSecrets = CredentialsSecrets(), logger: Logger
    ) {
        self.configuration = configuration
        self.runtime = runtime
        self.drivers = drivers
        self.engines = engines
        self.metrics = metrics
        self.downloads = downloads
        self.secrets = secrets
        self.logger = logger
    }

    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics.runtimeMetrics))
        router.add(middleware: ErrorEnvelopeMiddleware())
        if let token = runtime.authToken { router.add(middleware: AuthMiddleware(token: Array(token.utf8))) }
        let body = RequestBody(limit: runtime.maxBodyBytes)
        CompatibleRoutes(engines: engines, body: body, downloads: downloads, secrets: secrets).register(on: router)
        ArtifactRoutes(downloads: downloads, body: body).register(on: router)
        EngineRoutes(engines: engines, body: body).register(on: router)
        let metrics = self.metrics
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: await metrics.render())))
        }
        let openAPI = Array(OpenAPIDocument.json.utf8)
        router.get("/openapi.json") { _, _ in JSONResponse.raw(openAPI) }
        let drivers = self.drivers
        router.get("/v1/drivers") { _, _ in
            try JSONResponse.make(DriverList(drivers))
        }
        router.get("/v1/drivers/{name}") { _, context in
            let name = try context.parameters.require("name")
            guard let driver = drivers.driver(named: name) else { throw APIError.notFound("no driver named \"\(name)\"") }
            return try JSONResponse.make(DriverDescription(driver))
        }
        return router
    }

    /// Runs until a termination signal. `onListening` receives the bound port (useful with
    /// port 0).
    public func run(onListening: (@Sendable (Int) async -> Void)? = nil) async throws {
        let logger = self.logger
        let configuration = self.configuration
        let app = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? -1
                logger.info("engine-runtime listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
                await onListening?(port)
            },
            logger: logger)
        try await app.runService()
        logger.info("engine-runtime stopped")
    }
}

import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Where and how the management API listens.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var limits: ConnectionLimits

    public init(host: String = "0.0.0.0", port: Int = 8080, limits: ConnectionLimits = ConnectionLimits()) {
        self.host = host
        self.port = port
        self.limits = limits
    }
}

/// What `/metrics` renders; `MetricsService` in the runtime, a stand-in in route tests.
public protocol MetricsRendering: Sendable {
    /// The body; concurrent callers may all get the same buffer.
    func render() async -> ByteBuffer
}

extension MetricsService: MetricsRendering {}

/// Everything the routes reach, as values a test can build in memory: the routes' only
/// dependencies.
public struct RouterDependencies: Sendable {
    public var engines: EngineDirectory
    public var adapters: AdapterService
    public var downloads: DownloadManager
    public var metrics: any MetricsRendering
    public var runtimeMetrics: RuntimeMetrics
    public var drivers: DriverRegistry
    /// When set, every route but /healthz and /ready needs this bearer token.
    public var authToken: String?
    public var maxBodyBytes: Int
    /// The model runtime and its snapshots; nil when it is off (its routes then say so).
    public var modelRuntime: ModelRuntime?
    public var snapshots: RuntimeSnapshotService?

    public init(
        engines: EngineDirectory, adapters: AdapterService, downloads: DownloadManager, metrics: any MetricsRendering,
        runtimeMetrics: RuntimeMetrics, drivers: DriverRegistry, authToken: String?, maxBodyBytes: Int,
        modelRuntime: ModelRuntime? = nil, snapshots: RuntimeSnapshotService? = nil
    ) {
        self.modelRuntime = modelRuntime
        self.snapshots = snapshots
        self.engines = engines
        self.adapters = adapters
        self.downloads = downloads
        self.metrics = metrics
        self.runtimeMetrics = runtimeMetrics
        self.drivers = drivers
        self.authToken = authToken
        self.maxBodyBytes = maxBodyBytes
    }
}

/// The HTTP facade: the routes over the runtime's services. Routes decode, call one service,
/// encode; they hold no workflow of their own.
public enum RuntimeRouter {
    public static func build(_ dependencies: RouterDependencies) -> Router<BasicRequestContext> {
        // HEAD answers every GET route with the GET's headers and no body.
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.add(middleware: RequestMetricsMiddleware(metrics: dependencies.runtimeMetrics))
        router.add(middleware: ErrorEnvelopeMiddleware())
        if let token = dependencies.authToken { router.add(middleware: AuthMiddleware(token: Array(token.utf8))) }
        let routeTable = MethodNotAllowedMiddleware<BasicRequestContext>.Table()
        router.add(middleware: MethodNotAllowedMiddleware(table: routeTable))
        let body = RequestBody(limit: dependencies.maxBodyBytes)
        CompatibleRoutes(engines: dependencies.engines, adapters: dependencies.adapters, body: body).register(on: router)
        ArtifactRoutes(downloads: dependencies.downloads, body: body).register(on: router)
        EngineRoutes(engines: dependencies.engines, adapters: dependencies.adapters, body: body).register(on: router)
        ModelRuntimeRoutes(runtime: dependencies.modelRuntime, snapshots: dependencies.snapshots, body: body).register(on: router)
        let metrics = dependencies.metrics
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: await metrics.render()))
        }
        let openAPI = Array(OpenAPIDocument.json.utf8)
        router.get("/openapi.json") { _, _ in JSONResponse.raw(openAPI) }
        let drivers = dependencies.drivers
        router.get("/v1/drivers") { _, _ in
            try JSONResponse.make(DriverList(drivers))
        }
        router.get("/v1/drivers/{name}") { _, context in
            let name = try context.parameters.require("name")
            guard let driver = drivers.driver(named: name) else { throw RuntimeError.notFound("no driver named \"\(name)\"") }
            return try JSONResponse.make(DriverDescription(driver))
        }
        routeTable.fill(router.routes)
        return router
    }

    /// The HTTP server as a service of the runtime's service group, within its connection
    /// limits. `onListening` receives the bound port (useful with port 0).
    public static func application(
        _ dependencies: RouterDependencies, configuration: ServerConfiguration, logger: Logger,
        onListening: (@Sendable (Int) async -> Void)? = nil
    ) -> some Service {
        let limits = configuration.limits
        let connections = ConnectionRegistry(logger: logger)
        let app = HTTPService(
            responder: build(dependencies).buildResponder(),
            server: GuardedHTTP1Channel.builder(limits: limits, registry: connections, logger: logger),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: nil,
                // The kernel holds newcomers while the cap makes room; a probe waits there for
                // one connection to close, not for a timeout.
                backlog: 1024, availableConnectionsDelegate: ConnectionCap(limit: limits.maxConnections, registry: connections)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? -1
                logger.info(
                    "engine-runtime listening",
                    metadata: ["host": "\(configuration.host)", "port": "\(port)", "max_connections": "\(limits.maxConnections)"])
                await onListening?(port)
            },
            logger: logger)
        return ManagementServer(app: app, connections: connections, drainTimeout: limits.drainTimeout, logger: logger)
    }
}

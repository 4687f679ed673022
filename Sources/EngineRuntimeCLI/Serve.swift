import ArgumentParser
import Host

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the management API (the default subcommand).",
        discussion: """
            Loads every driver in the driver directory, then serves the HTTP management API \
            until SIGTERM or SIGINT, on which it finishes the requests in flight and exits.

            Environment variables (a flag wins over its variable):
              ENGINE_RUNTIME_HOST        address to listen on (--host)
              ENGINE_RUNTIME_PORT        port to listen on (--port)
              ENGINE_RUNTIME_DRIVER_DIR  driver directory (--driver-dir)
              ENGINE_RUNTIME_LOG_LEVEL   log level (--log-level)
            """)

    @Option(help: ArgumentHelp("Address to listen on. Env: ENGINE_RUNTIME_HOST. Default: 0.0.0.0.", valueName: "address"))
    var host: String?

    @Option(help: ArgumentHelp("Port to listen on (0 picks a free one). Env: ENGINE_RUNTIME_PORT. Default: 8080.", valueName: "port"))
    var port: Int?

    @OptionGroup var drivers: DriverOptions
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = try logging.makeLogger()
        let configuration = ServerConfiguration(
            host: Settings.string(host, env: "ENGINE_RUNTIME_HOST", default: "0.0.0.0"),
            port: try Settings.integer(port, env: "ENGINE_RUNTIME_PORT", default: 8080, range: 0...65535))
        let registry = try drivers.loadDrivers(logger: logger)
        let server = RuntimeServer(configuration: configuration, drivers: registry, logger: logger)
        try await server.run()
    }
}

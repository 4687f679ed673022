import ArgumentParser
import Host
import Logging

/// The host process of an isolated driver. The runtime starts it itself (one per isolated
/// driver) with the driver's end of a socket pair as descriptor 3; it is not for people.
struct DriverHostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "driver-host",
        abstract: "Serve one driver to the runtime over a socket (started by the runtime for isolated drivers).",
        discussion: """
            engine-runtime serve --isolated-drivers NAMES starts one of these per isolated \
            driver. It loads the driver, answers the runtime's calls over the socket it was \
            given, sends the driver's HTTP requests and logs back to the runtime, and exits when \
            the socket closes.
            """,
        shouldDisplay: false)

    @Option(name: .customLong("socket-fd"), help: "The descriptor of the runtime's socket.")
    var socketDescriptor: Int32

    @Option(name: .customLong("driver"), help: "The driver file to load.")
    var driver: String

    @Option(name: .customLong("memory-limit-mb"), help: "RLIMIT_DATA of this process, in MiB.")
    var memoryLimit: UInt64?

    @Option(name: .customLong("log-level"), help: "The most detailed log level to send to the runtime.")
    var logLevel: String = "info"

    func run() throws {
        guard socketDescriptor >= 0 else { throw ValidationError("--socket-fd must be a descriptor") }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        throw ExitCode(DriverHostServer.run(descriptor: socketDescriptor, driverPath: driver, memoryLimitMegabytes: memoryLimit, level: level))
    }
}

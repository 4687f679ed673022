import ArgumentParser
import Host
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

struct DriversCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drivers",
        abstract: "List the drivers found in the driver directory, or check that a driver conforms to the ABI.",
        subcommands: [List.self, Check.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List loadable drivers and the files that failed to load (exit 1 if any failed).")

        @OptionGroup var drivers: DriverOptions
        @Flag(help: "Print JSON (the same document as GET /v1/drivers).") var json = false

        func run() async throws {
            var logging = LoggingOptions()
            logging.logLevel = "error"
            let logger = try logging.makeLogger()
            let registry = try drivers.loadDrivers(logger: logger)
            if json {
                print(try JSONCoding.encodePretty(DriverList(registry)))
            } else {
                if registry.drivers.isEmpty { print("no drivers in \(drivers.resolvedDirectory)") }
                for driver in registry.drivers {
                    print("\(driver.name) \(driver.version)  engines: \(driver.engineKinds.joined(separator: ","))  ABI \(driver.abiMajor).\(driver.abiMinor)  \(driver.path)")
                    print("  operations: \(driver.supportedOperations.map(\.rawValue).joined(separator: ", "))")
                    if !driver.capabilities.names.isEmpty {
                        print("  capabilities: \(driver.capabilities.names.joined(separator: ", "))")
                    }
                    for operation in driver.extensionOperations {
                        let parameters = operation.parameters.map { "\($0.name): \($0.type)" }.joined(separator: ", ")
                        print("  extension: \(operation.name)(\(parameters)) -> \(operation.resultType)")
                    }
                }
                for failure in registry.failures { print("FAILED \(failure)") }
            }
            if !registry.failures.isEmpty { throw ExitCode(1) }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the conformance checks on a driver file.",
            discussion: """
                Loads the driver, checks the handshake and descriptor, creates an instance \
                pointed at an engine endpoint where nothing listens, calls every operation the \
                driver declares with a valid and with a malformed JSON request, calls every \
                extension operation, and destroys the instance. Prints one verdict per check. \
                Exit status 0 only if every check passed.
                """)

        @Argument(help: ArgumentHelp("Path of the driver .so file.", valueName: "path")) var path: String
        @Flag(help: "Print the report as JSON.") var json = false
        @Option(help: ArgumentHelp("Per-call deadline in seconds.", valueName: "seconds")) var timeout: Int = 10
        @Option(help: ArgumentHelp("Engine endpoint handed to the instance (default: a closed loopback port).", valueName: "url"))
        var endpoint: String = "http://127.0.0.1:9"

        func run() async throws {
            var logging = LoggingOptions()
            logging.logLevel = "error"
            let logger = try logging.makeLogger()
            let report = await DriverConformance.run(
                path: path, endpoint: endpoint, timeout: .seconds(Int64(max(1, timeout))), logger: logger)
            print(json ? try JSONCoding.encodePretty(report) : report.text)
            if !report.passed { throw ExitCode(1) }
        }
    }
}

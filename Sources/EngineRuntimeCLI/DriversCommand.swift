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
            let registry = try drivers.loadDrivers(
                logger: logger, isolation: try drivers.isolation(httpClient: CurlHTTPClient(logger: logger), logger: logger))
            defer { registry.stopIsolatedHosts() }
            if json {
                print(try JSONCoding.encodePretty(DriverList(registry)))
            } else {
                if registry.drivers.isEmpty { print("no drivers in \(drivers.resolvedDirectory)") }
                for driver in registry.drivers {
                    let isolated = driver.isolatedHost.map { "  isolated (pid \($0.status.pid.map(String.init) ?? "-"))" } ?? ""
                    print("\(driver.name) \(driver.version)  engines: \(driver.engineKinds.joined(separator: ","))  ABI \(driver.abiMajor).\(driver.abiMinor)  \(driver.path)\(isolated)")
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
                Loads the driver, checks the handshake, descriptor and metric rules (one verdict \
                per rule), creates an instance pointed at a stand-in engine that answers every \
                request with success, calls every operation the driver declares with a valid, a \
                malformed and a non-object JSON request and checks each answer, calls every \
                extension operation, then calls the operations again with the engine down. With \
                --endpoint the instance talks to that live engine instead, and only read-only \
                operations run unless --allow-mutations is given. Prints one verdict per check. \
                The checks run in a child process, so a driver that crashes still gets a verdict \
                naming the check it crashed in (--isolated: the driver runs in a host process \
                of its own, as serve --isolated-drivers runs it). Exit status 0 only if every \
                check passed.
                """)

        @Argument(help: ArgumentHelp("Path of the driver .so file.", valueName: "path")) var path: String
        @Flag(help: "Print the report as JSON.") var json = false
        @Option(help: ArgumentHelp("Per-call deadline in seconds.", valueName: "seconds")) var timeout: Int = 10
        @Option(help: ArgumentHelp("A live engine for the instance (default: the built-in stand-in engine, then a closed port).", valueName: "url"))
        var endpoint: String?

        @Flag(help: "With --endpoint: also run the mutating operations (LoRA loads, sleep, cache resets ...) against that live engine.")
        var allowMutations = false

        @Flag(help: "Serve the driver from a host process of its own, as serve --isolated-drivers does, and check it there.")
        var isolated = false

        @Flag(help: ArgumentHelp("Run the checks in this process (the default runs them in a child process, so a driver that crashes cannot take the verdict with it).", visibility: .hidden))
        var inProcess = false

        func run() async throws {
            var logging = LoggingOptions()
            logging.logLevel = "error"
            let logger = try logging.makeLogger()
            if allowMutations, endpoint == nil { throw ValidationError("--allow-mutations needs --endpoint (the stand-in engine runs every operation anyway)") }
            if let endpoint, !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) {
                throw ValidationError("--endpoint must be an http:// or https:// URL")
            }
            let engine: ConformanceEngine = endpoint.map { .endpoint($0, allowMutations: allowMutations) } ?? .standIn
            if let endpoint, !json {
                Self.progress(allowMutations
                    ? "drivers check: mutating operations run against the live engine at \(endpoint)"
                    : "drivers check: read-only against the live engine at \(endpoint); --allow-mutations runs the mutating operations too")
            }
            let report: ConformanceReport
            if isolated {
                // The driver's crashes end its host process, not this one: no checker child needed.
                report = await DriverConformance.run(
                    path: path, engine: engine, timeout: .seconds(Int64(max(1, timeout))), logger: logger,
                    isolation: DriverIsolationSettings(executable: Settings.executablePath(), logLevel: .error))
            } else if inProcess {
                // Progress on stderr lets the parent say which check a crash interrupted.
                report = await DriverConformance.run(
                    path: path, engine: engine, timeout: .seconds(Int64(max(1, timeout))), logger: logger,
                    onStart: { name in Self.progress("conformance-start\t\(name)") },
                    onRecord: { check in
                        if let line = try? JSONCoding.encode(check) { Self.progress("conformance-check\t" + String(decoding: line, as: UTF8.self)) }
                    })
            } else {
                report = try await isolatedReport()
            }
            print(json ? try JSONCoding.encodePretty(report) : report.text)
            if !report.passed { throw ExitCode(1) }
        }

        /// One unbuffered write to file descriptor 2, so a crash right after loses nothing.
        static func progress(_ line: String) {
            let bytes = Array((line + "\n").utf8)
            _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }

        /// Runs the checks in a child `engine-runtime drivers check --in-process` and reads its
        /// report; when the child dies, builds the report from its progress lines.
        func isolatedReport() async throws -> ConformanceReport {
            let outcome = try await ChildProcess.run(
                Settings.executablePath(),
                ["drivers", "check", path, "--json", "--in-process", "--timeout", String(timeout)]
                    + (endpoint.map { ["--endpoint", $0] } ?? []) + (allowMutations ? ["--allow-mutations"] : []))
            if outcome.signal == nil, let report = try? JSONCoding.decode(ConformanceReport.self, from: outcome.stdout) {
                return report
            }
            var checks: [ConformanceCheck] = []
            var running = "load and handshake"
            for line in String(decoding: outcome.stderr, as: UTF8.self).split(separator: "\n") {
                if line.hasPrefix("conformance-start\t") {
                    running = String(line.dropFirst("conformance-start\t".count))
                } else if line.hasPrefix("conformance-check\t"),
                    let check = try? JSONCoding.decode(ConformanceCheck.self, from: Array(line.dropFirst("conformance-check\t".count).utf8))
                {
                    checks.append(check)
                }
            }
            let cause = outcome.signal.map { "the driver crashed the checker (\(SignalName.of($0)))" }
                ?? "the checker exited with status \(outcome.exitCode ?? -1) without a report"
            checks.append(ConformanceCheck(name: running, passed: false, detail: cause))
            return ConformanceReport(path: path, driver: nil, checks: checks)
        }
    }
}

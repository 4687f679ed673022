import ArgumentParser
import FoundationEssentials
import Host
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Reads settings with the precedence flag > environment variable > default, and fails fast
/// with one clear line on a bad value.
enum Settings {
    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// The whole environment, for settings read by name in the library (`DOWNLOADER_*` ...).
    static func environmentDictionary() -> [String: String] { ProcessInfo.processInfo.environment }

    static func string(_ flag: String?, env: String, default fallback: String) -> String {
        flag ?? environment(env) ?? fallback
    }

    static func integer(_ flag: Int?, env: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
        if let flag {
            guard range.contains(flag) else { throw ValidationError("value \(flag) is outside \(range.lowerBound)...\(range.upperBound)") }
            return flag
        }
        guard let text = environment(env) else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw ValidationError("\(env)=\"\(text)\" must be a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// Reads a small file (configuration, token) or fails with one line.
    static func readFile(_ path: String, limit: Int) throws -> [UInt8] {
        guard let file = fopen(path, "rb") else {
            throw ValidationError("cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes = [UInt8](repeating: 0, count: limit + 1)
        let count = fread(&bytes, 1, bytes.count, file)
        guard count <= limit else { throw ValidationError("\(path) is larger than \(limit) bytes") }
        return Array(bytes[..<count])
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" }
        return buffer.withUnsafeBytes { CString.read($0) }
    }

    /// The running executable's path.
    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The directory of the running executable: the default driver directory.
    static func executableDirectory() -> String {
        let path = executablePath()
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }
}

/// Options every subcommand that loads drivers shares.
struct DriverOptions: ParsableArguments {
    @Option(
        name: .customLong("driver-dir"),
        help: ArgumentHelp(
            "Directory whose *.so files are loaded as drivers. Env: ENGINE_RUNTIME_DRIVER_DIR. Default: the directory of the engine-runtime executable.",
            valueName: "dir"))
    var driverDirectory: String?

    @Option(
        name: .customLong("driver"),
        help: ArgumentHelp("Also load this driver file (repeatable).", valueName: "path"))
    var extraDrivers: [String] = []

    @Option(
        name: .customLong("isolated-drivers"),
        help: ArgumentHelp(
            "Drivers to run in a host process of their own, so a crash or hang in one ends only that process: comma-separated driver names or engine kinds, or all. Env: ENGINE_RUNTIME_ISOLATED_DRIVERS. Default: none (in process).",
            valueName: "names"))
    var isolatedDrivers: String?

    @Option(
        name: .customLong("driver-memory-limit-mb"),
        help: ArgumentHelp(
            "Data size limit (RLIMIT_DATA) of each isolated driver's host process, in MiB; 0 for none. Env: ENGINE_RUNTIME_DRIVER_MEMORY_LIMIT_MB. Default: 2048.",
            valueName: "MiB"))
    var driverMemoryLimit: Int?

    /// The isolation settings, with the drivers of engines configured `isolated` added to the
    /// flag's list; nil when nothing is isolated.
    func isolation(adding more: [String] = [], httpClient: CurlHTTPClient, logger: Logger) throws -> DriverIsolation? {
        let listed = Settings.string(isolatedDrivers, env: "ENGINE_RUNTIME_ISOLATED_DRIVERS", default: "")
        let names = Set(listed.split(separator: ",").map { String($0).trimmingWhitespace().lowercased() }.filter { !$0.isEmpty } + more)
        guard !names.isEmpty else { return nil }
        for name in names where name != "all" && !ResourceName.isValidEngineName(name) {
            throw ValidationError("isolated driver \"\(name)\" is not a driver name or engine kind ([a-z0-9][a-z0-9_-]{0,62}) or all")
        }
        let megabytes = try Settings.integer(driverMemoryLimit, env: "ENGINE_RUNTIME_DRIVER_MEMORY_LIMIT_MB", default: 2048, range: 0...1_048_576)
        let settings = DriverIsolationSettings(
            executable: Settings.executablePath(), memoryLimitBytes: megabytes == 0 ? nil : UInt64(megabytes) << 20,
            logLevel: logger.logLevel)
        return DriverIsolation(selection: names, settings: settings, httpClient: httpClient, logger: logger)
    }

    var resolvedDirectory: String {
        Settings.string(driverDirectory, env: "ENGINE_RUNTIME_DRIVER_DIR", default: Settings.executableDirectory())
    }

    /// Loads the drivers, logging one line per file that failed.
    func loadDrivers(logger: Logger, isolation: DriverIsolation? = nil) throws -> DriverRegistry {
        var registry = DriverRegistry(isolation: isolation)
        do {
            try registry.loadDirectory(resolvedDirectory)
        } catch {
            throw ValidationError(error.description)
        }
        for path in extraDrivers { registry.load(path: path) }
        for failure in registry.failures {
            logger.warning("driver not loaded: \(failure)")
        }
        for driver in registry.drivers {
            var fields: Logger.Metadata = ["driver": "\(driver.name)", "version": "\(driver.version)", "path": "\(driver.path)"]
            if let host = driver.isolatedHost?.status.pid { fields["isolated_pid"] = "\(host)" }
            logger.info("driver loaded", metadata: fields)
            for warning in driver.metricRules.flatMap(\.warnings) {
                logger.warning("metric rule of driver \(driver.name) cannot work as written: \(warning)")
            }
        }
        return registry
    }
}

/// Logging options and the process-wide logging set-up.
struct LoggingOptions: ParsableArguments {
    @Option(
        name: .customLong("log-level"),
        help: ArgumentHelp(
            "trace, debug, info, notice, warning, error or critical. Env: ENGINE_RUNTIME_LOG_LEVEL. Default: info.",
            valueName: "level"))
    var logLevel: String?

    func makeLogger(label: String = "engine-runtime") throws -> Logger {
        let text = Settings.string(logLevel, env: "ENGINE_RUNTIME_LOG_LEVEL", default: "info")
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            throw ValidationError("unknown log level \"\(text)\" (use trace, debug, info, notice, warning, error or critical)")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

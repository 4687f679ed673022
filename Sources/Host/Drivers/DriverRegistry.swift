import FoundationEssentials
import Logging

/// Which drivers run in a host process of their own, and how those processes start.
public struct DriverIsolation: Sendable {
    /// Driver names or engine kinds; `all` isolates every driver.
    public var selection: Set<String>
    public var settings: DriverIsolationSettings
    public var httpClient: CurlHTTPClient
    public var logger: Logger

    public init(selection: Set<String>, settings: DriverIsolationSettings, httpClient: CurlHTTPClient, logger: Logger) {
        self.selection = selection
        self.settings = settings
        self.httpClient = httpClient
        self.logger = logger
    }

    func selects(_ manifest: DriverManifest) -> Bool {
        selection.contains("all") || selection.contains(manifest.name) || manifest.engineKinds.contains(where: selection.contains)
    }
}

/// The drivers one host uses, by name, and the files that failed to load.
public struct DriverRegistry: Sendable {
    public private(set) var drivers: [LoadedDriver] = []
    public private(set) var failures: [DriverLoadFailure] = []
    /// With a selection, files are loaded by a host process first: its manifest names the
    /// driver, and a driver outside the selection is then loaded in this process instead.
    public let isolation: DriverIsolation?

    public init(isolation: DriverIsolation? = nil) {
        self.isolation = isolation.flatMap { $0.selection.isEmpty ? nil : $0 }
    }

    /// Loads one file; a failure is recorded, never fatal.
    @discardableResult
    public mutating func load(path: String) -> Result<LoadedDriver, DriverLoadFailure> {
        let result = open(path: path).flatMap { driver -> Result<LoadedDriver, DriverLoadFailure> in
            if let first = drivers.first(where: { $0.name == driver.name }) {
                return .failure(DriverLoadFailure(path: path, error: .duplicateDriverName(driver.name, firstPath: first.path)))
            }
            return .success(driver)
        }
        switch result {
        case .success(let driver): drivers.append(driver)
        case .failure(let failure): failures.append(failure)
        }
        return result
    }

    /// Loads every `*.so` file in `directory`, in name order.
    /// Throws only when the directory itself cannot be read.
    public mutating func loadDirectory(_ directory: String) throws(DriverDirectoryError) {
        for file in try Self.sharedObjects(in: directory) { load(path: file) }
    }

    private func open(path: String) -> Result<LoadedDriver, DriverLoadFailure> {
        guard let isolation else { return DriverLoader.load(path: path) }
        switch DriverHostProcess.launch(path: path, settings: isolation.settings, httpClient: isolation.httpClient, logger: isolation.logger) {
        case .failure(let error):
            return .failure(DriverLoadFailure(path: path, error: error))
        case .success(let (host, manifest)) where isolation.selects(manifest):
            return .success(LoadedDriver(manifest: manifest, host: host))
        case .success(let (host, _)):
            host.stop()
            return DriverLoader.load(path: path)
        }
    }

    /// Ends the isolated drivers' host processes (the sidecar is stopping).
    public func stopIsolatedHosts() {
        for driver in drivers { driver.isolatedHost?.stop() }
    }

    public func driver(named name: String) -> LoadedDriver? { drivers.first { $0.name == name } }

    /// The first driver that drives `engineKind`.
    public func driver(forEngineKind engineKind: String) -> LoadedDriver? {
        drivers.first { $0.engineKinds.contains(engineKind) }
    }

    static func sharedObjects(in directory: String) throws(DriverDirectoryError) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            let reason =
                switch (error as? CocoaError)?.code {
                case .fileReadNoSuchFile?: "no such directory"
                case .fileReadNoPermission?: "permission denied"
                default: "\(error)"
                }
            throw DriverDirectoryError(directory: directory, reason: reason)
        }
        let base = directory.hasSuffix("/") ? directory : directory + "/"
        return names.filter { $0.hasSuffix(".so") && !$0.hasPrefix(".") }.sorted().map { base + $0 }
    }
}

/// The driver directory could not be read.
public struct DriverDirectoryError: Error, Sendable, CustomStringConvertible {
    public let directory: String
    public let reason: String
    public var description: String { "cannot read driver directory \(directory): \(reason)" }
}

import FoundationEssentials

/// The drivers one host uses, by name, and the files that failed to load.
public struct DriverRegistry: Sendable {
    public private(set) var drivers: [LoadedDriver] = []
    public private(set) var failures: [DriverLoadFailure] = []

    public init() {}

    /// Loads one file; a failure is recorded, never fatal.
    @discardableResult
    public mutating func load(path: String) -> Result<LoadedDriver, DriverLoadFailure> {
        let result = DriverLoader.load(path: path).flatMap { driver -> Result<LoadedDriver, DriverLoadFailure> in
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

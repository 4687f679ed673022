// The ABI's Swift side (operations, statuses, struct sizes, sinks, JSON) is shared with the
// host; a driver that imports the kit sees it too.
@_exported import DriverABI
import PluginABI

/// A driver's failure: an ABI status, one line, and the engine's HTTP status when it answered.
public struct DriverFailure: Error, Sendable {
    public var status: ert_status
    public var message: String
    public var upstreamHTTPStatus: Int32

    public init(_ status: ert_status, _ message: String, upstreamHTTPStatus: Int32 = 0) {
        self.status = status
        self.message = message
        self.upstreamHTTPStatus = upstreamHTTPStatus
    }

    public static func invalidArgument(_ message: String) -> DriverFailure { DriverFailure(ERT_STATUS_INVALID_ARGUMENT, message) }
    public static func notFound(_ message: String, upstream: Int32 = 0) -> DriverFailure {
        DriverFailure(ERT_STATUS_NOT_FOUND, message, upstreamHTTPStatus: upstream)
    }
    public static func conflict(_ message: String, upstream: Int32 = 0) -> DriverFailure {
        DriverFailure(ERT_STATUS_CONFLICT, message, upstreamHTTPStatus: upstream)
    }
    public static func unsupported(_ message: String, upstream: Int32 = 0) -> DriverFailure {
        DriverFailure(ERT_STATUS_UNSUPPORTED, message, upstreamHTTPStatus: upstream)
    }
    public static func upstream(_ message: String, status: Int32) -> DriverFailure {
        DriverFailure(ERT_STATUS_UPSTREAM, message, upstreamHTTPStatus: status)
    }
    public static func internalError(_ message: String) -> DriverFailure { DriverFailure(ERT_STATUS_INTERNAL, message) }
}

/// What a driver declares about itself; becomes the C descriptor.
public struct DriverInfo: Sendable {
    public var name: String
    public var version: String
    public var summary: String
    public var engineKinds: [String]
    public var capabilities: UInt64
    public var configSchemaJSON: String?
    /// The operations the driver implements; the others are NULL in the table (HTTP 501).
    public var operations: Set<DriverOperation>
    /// The engine's Prometheus endpoint, relative to its base URL.
    public var metricsPath: String?
    /// How the engine's metrics map to the standard set.
    public var metricRules: [MetricRuleSpec]
    /// Typed vendor operations (`POST /v1/extensions/{name}`).
    public var extensions: [ExtensionSpec]

    public init(
        name: String, version: String, summary: String, engineKinds: [String], capabilities: UInt64,
        configSchemaJSON: String? = nil, operations: Set<DriverOperation>, metricsPath: String? = nil,
        metricRules: [MetricRuleSpec] = [], extensions: [ExtensionSpec] = []
    ) {
        self.extensions = extensions
        self.metricsPath = metricsPath
        self.metricRules = metricRules
        self.name = name
        self.version = version
        self.summary = summary
        self.engineKinds = engineKinds
        self.capabilities = capabilities
        self.configSchemaJSON = configSchemaJSON
        self.operations = operations
    }
}

/// The settings the host passes to `create_instance`, copied into Swift.
public struct InstanceSettings: Sendable {
    public var instanceName: String
    public var engineKind: String
    /// The engine's base URL without a trailing slash.
    public var endpoint: String
    public var apiKey: String?
    /// The engine's administrator key (ABI 1.2; nil from older hosts or when unset).
    public var adminAPIKey: String?
    public var engineVersion: String?
    public var configJSON: String
}

/// One engine instance of a Swift driver. The kit turns the C calls into calls of `perform`,
/// and catches every error so nothing unwinds across the ABI.
///
/// Threading: `perform` is called on host worker threads, concurrently for read operations
/// (see the header), so implementations keep no unsynchronized mutable state.
public protocol EngineDriverInstance: AnyObject, Sendable {
    init(settings: InstanceSettings, host: HostConnection) throws(DriverFailure)

    /// Answers one operation; the result is the JSON (or, for metrics, text) to send back.
    func perform(_ operation: DriverOperation, request: DriverRequest, call: CallScope) throws(DriverFailure) -> [UInt8]
}

/// One `ert_metric_rule`, written in Swift.
public struct MetricRuleSpec: Sendable {
    public typealias Kind = MetricSourceType
    public typealias Aggregate = MetricAggregate

    public var kind: Kind
    public var source: String
    public var standard: String
    public var aggregate: Aggregate
    public var aggregateLabels: String?
    public var labelRenames: String?
    public var labelValues: String?
    public var matchLabels: String?
    public var setLabels: String?
    public var duplicateLabels: String?
    public var keepLabels: String?
    public var valueLabel: String?

    public init(
        _ kind: Kind, _ source: String, _ standard: String, aggregate: Aggregate = .none, over aggregateLabels: String? = nil,
        duplicates duplicateLabels: String? = nil, rename labelRenames: String? = nil, values labelValues: String? = nil,
        match matchLabels: String? = nil, set setLabels: String? = nil, keep keepLabels: String? = nil,
        valueLabel: String? = nil
    ) {
        self.duplicateLabels = duplicateLabels
        self.keepLabels = keepLabels
        self.valueLabel = valueLabel
        self.kind = kind
        self.source = source
        self.standard = standard
        self.aggregate = aggregate
        self.aggregateLabels = aggregateLabels
        self.labelRenames = labelRenames
        self.labelValues = labelValues
        self.matchLabels = matchLabels
        self.setLabels = setLabels
    }
}

import PluginABI

/// `ert_metric_type`: what kind of series a metric rule reads (`ERT_METRIC_*`).
public enum MetricSourceType: Sendable, CaseIterable, Hashable {
    case counter, gauge, histogram

    public var raw: UInt32 {
        switch self {
        case .counter: UInt32(ERT_METRIC_COUNTER)
        case .gauge: UInt32(ERT_METRIC_GAUGE)
        case .histogram: UInt32(ERT_METRIC_HISTOGRAM)
        }
    }

    /// The Prometheus TYPE word.
    public var name: String {
        switch self {
        case .counter: "counter"
        case .gauge: "gauge"
        case .histogram: "histogram"
        }
    }

    /// nil for a value the header does not define.
    public init?(raw: UInt32) {
        guard let type = Self.allCases.first(where: { $0.raw == raw }) else { return nil }
        self = type
    }
}

/// `ert_metric_aggregate`: how series that become equal are combined (`ERT_AGGREGATE_*`).
public enum MetricAggregate: Sendable, CaseIterable, Hashable {
    case none, sum, max, newest

    public var raw: UInt32 {
        switch self {
        case .none: UInt32(ERT_AGGREGATE_NONE)
        case .sum: UInt32(ERT_AGGREGATE_SUM)
        case .max: UInt32(ERT_AGGREGATE_MAX)
        case .newest: UInt32(ERT_AGGREGATE_NEWEST)
        }
    }

    /// nil for a value the header does not define.
    public init?(raw: UInt32) {
        guard let aggregate = Self.allCases.first(where: { $0.raw == raw }) else { return nil }
        self = aggregate
    }
}

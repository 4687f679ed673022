import PluginABI

/// A validated metric standardization rule (`ert_metric_rule`), as the host applies it.
public struct MetricRule: Sendable, Equatable {
    public typealias SourceType = MetricSourceType
    public typealias Aggregate = MetricAggregate

    public var sourceType: SourceType
    public var sourceName: String
    /// Without `_total`; the writer adds the suffixes the type needs.
    public var standardName: String
    public var scale: Double
    public var aggregate: Aggregate
    public var aggregateLabels: Set<String>
    public var labelRenames: [String: String]
    /// label -> (from -> to), applied after renames.
    public var labelValues: [String: [String: String]]
    public var matchLabels: [String: String]
    public var setLabels: [(String, String)]
    /// Labels over which series repeat one quantity (ABI 1.2): the maximum is taken over them
    /// before the aggregate.
    public var duplicateLabels: Set<String>
    /// When non-empty, the only labels kept (after renames) (ABI 1.2).
    public var keepLabels: Set<String>
    /// The label that takes a gauge's value, the value becoming 1 (ABI 1.2).
    public var valueLabel: String?

    public static func == (a: MetricRule, b: MetricRule) -> Bool {
        a.sourceType == b.sourceType && a.sourceName == b.sourceName && a.standardName == b.standardName && a.scale == b.scale
            && a.aggregate == b.aggregate && a.aggregateLabels == b.aggregateLabels && a.labelRenames == b.labelRenames
            && a.labelValues == b.labelValues && a.matchLabels == b.matchLabels
            && a.duplicateLabels == b.duplicateLabels && a.keepLabels == b.keepLabels && a.valueLabel == b.valueLabel
            && a.setLabels.map { "\($0.0)=\($0.1)" } == b.setLabels.map { "\($0.0)=\($0.1)" }
    }

    public init(
        sourceType: SourceType, sourceName: String, standardName: String, scale: Double = 1, aggregate: Aggregate = .none,
        aggregateLabels: Set<String> = [], labelRenames: [String: String] = [:], labelValues: [String: [String: String]] = [:],
        matchLabels: [String: String] = [:], setLabels: [(String, String)] = [], duplicateLabels: Set<String> = [],
        keepLabels: Set<String> = [], valueLabel: String? = nil
    ) {
        self.duplicateLabels = duplicateLabels
        self.keepLabels = keepLabels
        self.valueLabel = valueLabel
        self.sourceType = sourceType
        self.sourceName = sourceName
        self.standardName = standardName
        self.scale = scale
        self.aggregate = aggregate
        self.aggregateLabels = aggregateLabels
        self.labelRenames = labelRenames
        self.labelValues = labelValues
        self.matchLabels = matchLabels
        self.setLabels = setLabels
    }

    /// Reads and checks a rule declared by a driver.
    init(declaration pointer: UnsafePointer<ert_metric_rule>, index: Int) throws(DriverLoadError) {
        func invalid(_ reason: String) -> DriverLoadError { .invalidMetricRule(index: index, reason: reason) }
        let minimum = ABIMinimumSize.metricRule
        guard let rule = GrowableStruct.read(ert_metric_rule.self, at: pointer, minimumSize: minimum)?.value else {
            throw invalid("struct_size \(GrowableStruct.declaredSize(at: pointer)) is below \(minimum)")
        }
        guard rule.reserved0 == 0 else { throw invalid("reserved0 is \(rule.reserved0); it must be zero (set it with a newer header's field, not by hand)") }
        guard let type = SourceType(raw: rule.source_type) else { throw invalid("unknown source_type \(rule.source_type)") }
        guard let source = rule.source_name.map({ String(cString: $0) }), Self.isMetricName(source) else {
            throw invalid("source_name is missing or not a metric name")
        }
        guard let standard = rule.standard_name.map({ String(cString: $0) }), standard.hasPrefix("llm_engine_"),
            Self.isMetricName(standard), !standard.hasSuffix("_total")
        else {
            throw invalid("standard_name must be an llm_engine_* name without _total")
        }
        guard let aggregate = Aggregate(raw: rule.aggregate) else { throw invalid("unknown aggregate \(rule.aggregate)") }
        func list(_ pointer: UnsafePointer<CChar>?) -> [String] {
            guard let pointer else { return [] }
            return String(cString: pointer).split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        }
        func pairs(_ pointer: UnsafePointer<CChar>?, field: String) throws(DriverLoadError) -> [(String, String)] {
            var result: [(String, String)] = []
            for item in list(pointer) {
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty else { throw invalid("\(field): \"\(item)\" is not name=value") }
                result.append((parts[0], parts[1]))
            }
            return result
        }
        var values: [String: [String: String]] = [:]
        for (key, to) in try pairs(rule.label_values, field: "label_values") {
            let parts = key.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw invalid("label_values: \"\(key)=\(to)\" is not label:from=to") }
            values[parts[0], default: [:]][parts[1]] = to
        }
        self.init(
            sourceType: type, sourceName: source, standardName: standard, scale: rule.scale == 0 ? 1 : rule.scale,
            aggregate: aggregate, aggregateLabels: Set(list(rule.aggregate_labels)),
            labelRenames: Dictionary(try pairs(rule.label_renames, field: "label_renames"), uniquingKeysWith: { $1 }),
            labelValues: values,
            matchLabels: Dictionary(try pairs(rule.match_labels, field: "match_labels"), uniquingKeysWith: { $1 }),
            setLabels: try pairs(rule.set_labels, field: "set_labels"),
            // Beyond a 1.1 rule's struct_size these read as NULL: absent.
            duplicateLabels: Set(list(rule.duplicate_labels)), keepLabels: Set(list(rule.keep_labels)),
            valueLabel: list(rule.value_label).first)
        if aggregate == .none, !aggregateLabels.isEmpty { throw invalid("aggregate_labels given without an aggregate") }
        if aggregate == .none || aggregate == .newest, !duplicateLabels.isEmpty {
            throw invalid("duplicate_labels needs the sum or max aggregate")
        }
        if let valueLabel {
            guard sourceType == .gauge else { throw invalid("value_label is for gauges only") }
            guard Self.isLabelName(valueLabel) else { throw invalid("value_label \"\(valueLabel)\" is not a label name") }
        }
        if let both = duplicateLabels.intersection(aggregateLabels).sorted().first {
            throw invalid("label \"\(both)\" is in both duplicate_labels and aggregate_labels")
        }
        if !scale.isFinite { throw invalid("scale must be finite") }
        if sourceType == .histogram, scale != 1 { throw invalid("histograms are renamed, never scaled") }
    }

    /// Problems that do not stop the driver from loading but make the rule useless; logged
    /// when the driver loads and failed by `drivers check`.
    public var warnings: [String] {
        var warnings: [String] = []
        if sourceType == .counter, !sourceName.hasSuffix("_total") {
            warnings.append(
                "counter rule \(sourceName) -> \(standardName): the source has no _total; counter samples are named <family>_total, so it only matches an engine that mislabels a gauge as a counter (write \(sourceName)_total)")
        }
        if StandardMetrics.byName[standardName] == nil {
            warnings.append("rule \(sourceName) -> \(standardName): \(standardName) is not in the standard set (docs/metrics.md)")
        } else if let expected = StandardMetrics.byName[standardName]?.type, expected != sourceType.name {
            warnings.append("rule \(sourceName) -> \(standardName): a \(sourceType.name) source for a standard \(expected)")
        }
        return warnings
    }

    static func isLabelName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(first >= 0x30 && first <= 0x39) else { return false }
        return name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) }
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.utf8.first else { return false }
        func start(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || b == 0x5F || b == 0x3A }
        return start(first) && name.utf8.allSatisfy { start($0) || ($0 >= 0x30 && $0 <= 0x39) }
    }
}


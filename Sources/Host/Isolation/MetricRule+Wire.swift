import DriverABI

/// A rule as an isolated driver's host sends it: the header's numbers for the enums, sorted
/// lists for the sets, pairs for the ordered label list.
extension MetricRule: Codable {
    private enum Key: String, CodingKey {
        case sourceType, sourceName, standardName, scale, aggregate, aggregateLabels, labelRenames, labelValues, matchLabels
        case setLabels, duplicateLabels, keepLabels, valueLabel
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let typeCode = try container.decode(UInt32.self, forKey: .sourceType)
        let aggregateCode = try container.decode(UInt32.self, forKey: .aggregate)
        guard let type = SourceType(raw: typeCode), let aggregate = Aggregate(raw: aggregateCode) else {
            throw DecodingError.dataCorruptedError(forKey: .sourceType, in: container, debugDescription: "unknown source type or aggregate")
        }
        self.init(
            sourceType: type, sourceName: try container.decode(String.self, forKey: .sourceName),
            standardName: try container.decode(String.self, forKey: .standardName), scale: try container.decode(Double.self, forKey: .scale),
            aggregate: aggregate, aggregateLabels: Set(try container.decode([String].self, forKey: .aggregateLabels)),
            labelRenames: try container.decode([String: String].self, forKey: .labelRenames),
            labelValues: try container.decode([String: [String: String]].self, forKey: .labelValues),
            matchLabels: try container.decode([String: String].self, forKey: .matchLabels),
            setLabels: try container.decode([[String]].self, forKey: .setLabels).compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil },
            duplicateLabels: Set(try container.decode([String].self, forKey: .duplicateLabels)),
            keepLabels: Set(try container.decode([String].self, forKey: .keepLabels)),
            valueLabel: try container.decodeIfPresent(String.self, forKey: .valueLabel))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(sourceType.raw, forKey: .sourceType)
        try container.encode(sourceName, forKey: .sourceName)
        try container.encode(standardName, forKey: .standardName)
        try container.encode(scale, forKey: .scale)
        try container.encode(aggregate.raw, forKey: .aggregate)
        try container.encode(aggregateLabels.sorted(), forKey: .aggregateLabels)
        try container.encode(labelRenames, forKey: .labelRenames)
        try container.encode(labelValues, forKey: .labelValues)
        try container.encode(matchLabels, forKey: .matchLabels)
        try container.encode(setLabels.map { [$0.0, $0.1] }, forKey: .setLabels)
        try container.encode(duplicateLabels.sorted(), forKey: .duplicateLabels)
        try container.encode(keepLabels.sorted(), forKey: .keepLabels)
        try container.encodeIfPresent(valueLabel, forKey: .valueLabel)
    }
}

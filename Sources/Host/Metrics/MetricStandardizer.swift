/// Applies a driver's metric rules to a parsed engine exposition and writes the standard
/// `llm_engine_*` families.
struct MetricStandardizer: Sendable {
    let rules: [MetricRule]
    /// Labels every standard series carries: `engine` (the engine kind), and `engine_name`
    /// when the sidecar manages several engines.
    let constantLabels: [(String, String)]

    /// One output series being accumulated.
    private struct Series {
        var family: String
        var name: String
        var labels: [(String, String)]
        var value: Double
    }

    /// The standard families computed from `exposition`, keyed by family name.
    func standardize(_ exposition: PrometheusExposition) -> [(family: String, type: String, samples: [(String, [(String, String)], Double)])] {
        // Samples grouped by the family (or, undeclared, the sample name) they came under.
        var byFamily: [String: [Int]] = [:]
        var familyNames: [Int32: String] = [:]
        for (index, sample) in exposition.samples.enumerated() {
            let key: String
            if sample.family >= 0 {
                if let known = familyNames[sample.family] {
                    key = known
                } else {
                    key = exposition.text(exposition.families[Int(sample.family)].name)
                    familyNames[sample.family] = key
                }
            } else {
                key = exposition.text(sample.name)
            }
            byFamily[key, default: []].append(index)
        }

        var order: [String] = []
        var series: [String: Series] = [:]
        var familyTypes: [String: String] = [:]
        for rule in rules {
            let candidates = candidateSamples(for: rule, byFamily)
            for index in candidates {
                let sample = exposition.samples[index]
                let sampleName = exposition.text(sample.name)
                let suffix: String
                switch rule.sourceType {
                case .counter, .gauge:
                    guard sampleName == rule.sourceName else { continue }
                    suffix = rule.sourceType == .counter ? "_total" : ""
                case .histogram:
                    guard sampleName.hasPrefix(rule.sourceName) else { continue }
                    let rest = String(sampleName.dropFirst(rule.sourceName.count))
                    guard ["_bucket", "_sum", "_count"].contains(rest) else { continue }
                    suffix = rest
                }
                var labels: [(String, String)] = []
                var matched = 0
                for label in exposition.labels(of: sample) {
                    var key = exposition.text(label.name)
                    var value = exposition.unescapedValue(label)
                    if let expected = rule.matchLabels[key] {
                        guard expected == value else { labels = []; matched = -1; break }
                        matched += 1
                    }
                    if rule.aggregateLabels.contains(key) { continue }
                    if let renamed = rule.labelRenames[key] { key = renamed }
                    if let mapped = rule.labelValues[key]?[value] { value = mapped }
                    labels.append((key, value))
                }
                guard matched == rule.matchLabels.count else { continue }
                for (key, value) in rule.setLabels + constantLabels {
                    labels.removeAll { $0.0 == key }
                    labels.append((key, value))
                }
                labels.sort { $0.0 < $1.0 }
                let family = rule.sourceType == .counter ? rule.standardName + "_total" : rule.standardName
                let name = rule.standardName + suffix
                let value = rule.sourceType == .histogram ? sample.value : sample.value * rule.scale
                familyTypes[family] = rule.sourceType == .histogram ? "histogram" : rule.sourceType == .counter ? "counter" : "gauge"
                // NEWEST keeps one series per output name: the one with the largest value.
                let key = rule.aggregate == .newest ? name : name + "\u{0}" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: "\u{1}")
                if var existing = series[key] {
                    switch rule.aggregate {
                    case .sum: existing.value += value
                    case .max: existing.value = max(existing.value, value)
                    case .newest:
                        if value > existing.value { existing = Series(family: family, name: name, labels: labels, value: value) }
                    case .none: existing.value = value  // the same series twice: the last wins
                    }
                    series[key] = existing
                } else {
                    order.append(key)
                    series[key] = Series(family: family, name: name, labels: labels, value: value)
                }
            }
        }
        var families: [String: [(String, [(String, String)], Double)]] = [:]
        var familyOrder: [String] = []
        for key in order {
            let entry = series[key]!
            if families[entry.family] == nil { familyOrder.append(entry.family) }
            families[entry.family, default: []].append((entry.name, entry.labels, entry.value))
        }
        func rank(_ family: String) -> Int {
            let base = family.hasSuffix("_total") ? String(family.dropLast(6)) : family
            return StandardMetrics.order[base] ?? Int.max
        }
        return familyOrder.sorted { rank($0) < rank($1) }.map { ($0, familyTypes[$0] ?? "gauge", families[$0]!) }
    }

    private func candidateSamples(for rule: MetricRule, _ byFamily: [String: [Int]]) -> [Int] {
        switch rule.sourceType {
        case .counter:
            let family = rule.sourceName.hasSuffix("_total") ? String(rule.sourceName.dropLast(6)) : rule.sourceName
            return (byFamily[rule.sourceName] ?? []) + (byFamily[family] ?? [])
        case .gauge, .histogram:
            return byFamily[rule.sourceName] ?? []
        }
    }

    /// Writes the standard families for one or more engines' results, one HELP and TYPE each.
    static func write(
        _ results: [[(family: String, type: String, samples: [(String, [(String, String)], Double)])]],
        into writer: inout PrometheusWriter
    ) {
        var order: [String] = []
        var merged: [String: (type: String, samples: [(String, [(String, String)], Double)])] = [:]
        for result in results {
            for family in result {
                if merged[family.family] == nil {
                    order.append(family.family)
                    merged[family.family] = (family.type, [])
                }
                merged[family.family]!.samples += family.samples
            }
        }
        for family in order {
            let entry = merged[family]!
            let base = family.hasSuffix("_total") ? String(family.dropLast(6)) : family
            writer.header(name: family, help: StandardMetrics.byName[base]?.help ?? "Standardized engine metric.", type: entry.type)
            for (name, labels, value) in entry.samples { writer.sample(name: name, labels: labels, value: value) }
        }
    }
}

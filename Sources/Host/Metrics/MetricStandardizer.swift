#if canImport(Glibc)
import Glibc
#endif

/// Applies a driver's metric rules to a parsed engine exposition and produces the standard
/// `llm_engine_*` families.
///
/// This is the hot path of `/metrics` (a multi-rank engine exposes tens of thousands of
/// samples), so matching and aggregation work on the exposition's bytes; strings are made only
/// for the few series that come out.
struct MetricStandardizer: Sendable {
    /// One output family: its 0.0.4 name and type, and its series in first-seen order.
    struct Family: Sendable {
        var name: String
        var type: String
        var samples: [(name: String, labels: [(String, String)], value: Double)]
    }

    /// A rule with its strings as bytes, ready for comparisons against the exposition.
    /// Owns copies of the rename and value targets at stable addresses.
    private final class TargetStorage: @unchecked Sendable {
        let source: UnsafeBufferPointer<UInt8>
        let renames: [UnsafeBufferPointer<UInt8>]
        let values: [[UnsafeBufferPointer<UInt8>]]
        private var allocations: [UnsafeMutableBufferPointer<UInt8>] = []

        init(source: [UInt8], renames: [[UInt8]], values: [[[UInt8]]]) {
            var allocations: [UnsafeMutableBufferPointer<UInt8>] = []
            func copy(_ bytes: [UInt8]) -> UnsafeBufferPointer<UInt8> {
                let storage = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(1, bytes.count))
                _ = storage.initialize(from: bytes)
                allocations.append(storage)
                return UnsafeBufferPointer(rebasing: UnsafeBufferPointer(storage)[0..<bytes.count])
            }
            self.source = copy(source)
            self.renames = renames.map(copy)
            self.values = values.map { $0.map(copy) }
            self.allocations = allocations
        }

        deinit { allocations.forEach { $0.deallocate() } }
    }

    private struct CompiledRule: Sendable {
        var rule: MetricRule
        var source: [UInt8]
        var sourceWithoutTotal: [UInt8]
        // Small lists scanned linearly: no allocation per sample label.
        var aggregated: [[UInt8]]
        var duplicates: [[UInt8]]
        var keep: [[UInt8]]
        var renames: [([UInt8], [UInt8])]
        var values: [([UInt8], [([UInt8], [UInt8])])]
        var match: [([UInt8], [UInt8])]
        /// Rename and value targets as raw buffers the hot loop can point at.
        let storage: TargetStorage
        var renameTargets: [UnsafeBufferPointer<UInt8>] { storage.renames }
        var valueTargets: [[UnsafeBufferPointer<UInt8>]] { storage.values }
        var family: String
        var type: String
        /// The sample names the rule reads.
        var sampleNames: [[UInt8]]

        init(_ rule: MetricRule) {
            self.rule = rule
            source = Array(rule.sourceName.utf8)
            sourceWithoutTotal = rule.sourceName.hasSuffix("_total") ? Array(source.dropLast(6)) : source
            aggregated = rule.aggregateLabels.map { Array($0.utf8) }
            duplicates = rule.duplicateLabels.map { Array($0.utf8) }
            keep = rule.keepLabels.map { Array($0.utf8) }
            renames = rule.labelRenames.map { (Array($0.key.utf8), Array($0.value.utf8)) }
            values = rule.labelValues.map { label, map in (Array(label.utf8), map.map { (Array($0.key.utf8), Array($0.value.utf8)) }) }
            match = rule.matchLabels.map { (Array($0.key.utf8), Array($0.value.utf8)) }
            storage = TargetStorage(source: source, renames: renames.map(\.1), values: values.map { $0.1.map(\.1) })
            let sourceBytes = source
            sampleNames = rule.sourceType == .histogram ? ["_bucket", "_sum", "_count"].map { sourceBytes + Array($0.utf8) } : [source]
            family = rule.sourceType == .counter ? rule.standardName + "_total" : rule.standardName
            type = rule.sourceType == .histogram ? "histogram" : rule.sourceType == .counter ? "counter" : "gauge"
        }
    }

    private let rules: [CompiledRule]
    /// Labels every standard series carries: `engine` (the engine kind), and `engine_name`
    /// when the sidecar manages several engines.
    let constantLabels: [(String, String)]
    /// Tells a plan made by this standardizer (these rules and labels) from another's.
    let id = UInt64.random(in: 1...UInt64.max)

    init(rules: [MetricRule], constantLabels: [(String, String)]) {
        self.rules = rules.map(CompiledRule.init)
        self.constantLabels = constantLabels
    }

    private static let histogramSuffixes: [(bytes: [UInt8], text: String)] = ["_bucket", "_sum", "_count"].map { (Array($0.utf8), $0) }

    func standardize(_ exposition: PrometheusExposition) -> [Family] {
        var plan: StandardizerPlan? = nil
        return standardize(exposition, plan: &plan)
    }

    /// Standardizes with `plan` when it was made from an exposition of the same shape (only
    /// the values are folded), else makes a new one.
    func standardize(_ exposition: PrometheusExposition, plan: inout StandardizerPlan?) -> [Family] {
        // Raw pointers into the exposition: slices of the array itself would retain and
        // release it on every comparison.
        exposition.bytes.withUnsafeBufferPointer { bytes in
            exposition.labels.withUnsafeBufferPointer { labels in
                exposition.samples.withUnsafeBufferPointer { samples in standardize(exposition, bytes, labels, samples, &plan) }
            }
        }
    }

    private typealias Bytes = UnsafeBufferPointer<UInt8>

    private static func same(_ a: Bytes, _ b: Bytes) -> Bool {
        a.count == b.count && (a.isEmpty || bytesEqual(a.baseAddress!, b.baseAddress!, a.count))
    }

    /// The index in `histogramSuffixes` of a histogram sample's name after the family name
    /// (`_bucket`, `_sum`, `_count`), -1 for anything else.
    private static func histogramSuffix(_ rest: Bytes) -> Int {
        switch rest.count {
        case 7: return same(rest, text("_bucket")) ? 0 : -1
        case 4: return same(rest, text("_sum")) ? 1 : -1
        case 6: return same(rest, text("_count")) ? 2 : -1
        default: return -1
        }
    }

    /// A literal's bytes, in the binary's constant data (no lazy global behind them).
    private static func text(_ literal: StaticString) -> Bytes { Bytes(start: literal.utf8Start, count: literal.utf8CodeUnitCount) }

    /// What a rule does with one label name, decided once per scrape and name instead of once
    /// per sample (a scrape has tens of thousands of samples and a dozen label names).
    private struct LabelAction {
        /// Index into the rule's `match`, -1 when the label is not matched on.
        var match = -1
        var duplicate = false
        /// The name the label goes out under (the rule's rename, or its own).
        var output: Bytes
        /// Aggregated away, or not among the kept labels.
        var dropped = false
        /// Index into the rule's `values`, -1 without a value map.
        var valueMap = -1
    }

    private func standardize(
        _ exposition: PrometheusExposition, _ buffer: Bytes, _ allLabels: UnsafeBufferPointer<PrometheusExposition.Label>,
        _ samples: UnsafeBufferPointer<PrometheusExposition.Sample>, _ plan: inout StandardizerPlan?
    ) -> [Family] {
        func bytes(_ range: Range<Int>) -> Bytes { Bytes(rebasing: buffer[range]) }
        let labelNames = exposition.labelNames.map(bytes)
        let reusing = plan?.fits(exposition, self) ?? false
        var made = reusing ? plan! : StandardizerPlan(shape: exposition.shape, standardizer: id)
        // Sample indices per declared family; undeclared samples are checked by name.
        var byFamily: [[Int]] = []
        // Samples no family declared, by name: each rule looks up the names it reads instead of
        // checking every such sample (a rule per undeclared sample was most of the loop's time
        // on expositions without TYPE lines).
        var undeclaredNames = ByteKeyTable()
        var undeclared: [[Int]] = []
        if !reusing {
            byFamily = [[Int]](repeating: [], count: exposition.families.count)
            for (index, sample) in samples.enumerated() {
                if sample.family >= 0 {
                    byFamily[Int(sample.family)].append(index)
                    continue
                }
                let name = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[sample.name])
                let (id, inserted) = undeclaredNames.index(of: name)
                if inserted { undeclared.append([]) }
                undeclared[id].append(index)
            }
        }

        var families: [String: Int] = [:]
        var output: [Family] = []
        // Per family, the labels made from values (`value_label`) by its rules so far.
        var joinLabels: [String: Set<String>] = [:]
        // One list for every rule's samples: a fresh one per rule was a page-faulting copy.
        var candidates: [Int] = []
        if !reusing { candidates.reserveCapacity(samples.count) }
        for (ruleIndex, compiled) in rules.enumerated() {
            let rule = compiled.rule
            var series: [Series]
            if reusing {
                guard let planned = made.rules[ruleIndex] else { continue }
                if let candidates = planned.candidates {
                    series = candidates.withUnsafeBufferPointer { candidates in
                        actions(compiled, labelNames).withUnsafeBufferPointer { actions in
                            var unused = StandardizerPlan.Rule()
                            return fold(compiled, candidates, actions, samples, allLabels, buffer, recording: false, into: &unused)
                        }
                    }
                } else {
                    series = refold(compiled, planned, samples)
                }
            } else {
                candidates.removeAll(keepingCapacity: true)
                for (familyIndex, family) in exposition.families.enumerated() {
                    let name = bytes(family.name)
                    if name.elementsEqual(compiled.source) || (rule.sourceType == .counter && name.elementsEqual(compiled.sourceWithoutTotal)) {
                        candidates += byFamily[familyIndex]
                    }
                }
                let declared = candidates.count
                for name in compiled.sampleNames {
                    if let id = name.withUnsafeBytes({ undeclaredNames.find($0) }) { candidates += undeclared[id] }
                }
                // In exposition order, as when every undeclared sample was a candidate: the order
                // series are first seen in is the order they are written in.
                if candidates.count > declared { candidates[declared...].sort() }
                if candidates.isEmpty {
                    made.rules.append(nil)
                    continue
                }
                var planned = StandardizerPlan.Rule()
                let newest = rule.aggregate == .newest
                series = actions(compiled, labelNames).withUnsafeBufferPointer { actions in
                    candidates.withUnsafeBufferPointer { candidates in
                        fold(compiled, candidates, actions, samples, allLabels, buffer, recording: !newest, into: &planned)
                    }
                }
                if newest { planned.candidates = candidates } else { planned.series = series }
                made.rules.append(planned)
            }
            if series.isEmpty { continue }
            if let valueLabel = rule.valueLabel {
                for index in series.indices {
                    series[index].labels.append((valueLabel, Self.labelText(series[index].value)))
                    series[index].labels.sort { $0.0 < $1.0 }
                    series[index].value = 1
                }
            }
            if let existing = families[compiled.family] {
                if let valueLabel = rule.valueLabel {
                    joinLabels[compiled.family, default: []].insert(valueLabel)
                    Self.join(series, into: &output[existing].samples, ignoring: joinLabels[compiled.family]!)
                } else {
                    output[existing].samples += series
                }
            } else {
                if let valueLabel = rule.valueLabel { joinLabels[compiled.family, default: []].insert(valueLabel) }
                families[compiled.family] = output.count
                output.append(Family(name: compiled.family, type: compiled.type, samples: series))
            }
        }
        plan = made
        func rank(_ family: Family) -> Int {
            let base = family.name.hasSuffix("_total") ? String(family.name.dropLast(6)) : family.name
            return StandardMetrics.order[base] ?? Int.max
        }
        return output.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
    }

    /// What `compiled` does with each label name of the exposition.
    private func actions(_ compiled: CompiledRule, _ labelNames: [Bytes]) -> [LabelAction] {
        labelNames.map { name in
            var action = LabelAction(output: name)
            action.match = compiled.match.firstIndex { $0.0.withUnsafeBufferPointer { Self.same(name, $0) } } ?? -1
            action.duplicate = compiled.duplicates.contains { $0.withUnsafeBufferPointer { Self.same(name, $0) } }
            if let renamed = compiled.renames.firstIndex(where: { $0.0.withUnsafeBufferPointer { Self.same(name, $0) } }) {
                action.output = compiled.renameTargets[renamed]
            }
            let output = action.output
            action.dropped =
                compiled.aggregated.contains { $0.withUnsafeBufferPointer { Self.same(name, $0) } }
                || (!compiled.keep.isEmpty && !compiled.keep.contains { $0.withUnsafeBufferPointer { Self.same(output, $0) } })
            action.valueMap = compiled.values.firstIndex { $0.0.withUnsafeBufferPointer { Self.same(output, $0) } } ?? -1
            return action
        }
    }

    /// A value as label text: integers without a decimal point (block counts, page sizes).
    static func labelText(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return PrometheusWriter.format(value)
    }

    /// Adds series to a family, joining each to an existing series whose labels are equal once
    /// the value-made labels are left out (so `page_size` and `num_pages` make one series).
    private static func join(
        _ series: [(name: String, labels: [(String, String)], value: Double)],
        into samples: inout [(name: String, labels: [(String, String)], value: Double)], ignoring valueLabels: Set<String>
    ) {
        func base(_ labels: [(String, String)]) -> [String] { labels.filter { !valueLabels.contains($0.0) }.map { "\($0.0)=\($0.1)" } }
        for new in series {
            let newBase = base(new.labels)
            if let match = samples.firstIndex(where: { existing in
                existing.name == new.name && base(existing.labels) == newBase
                    && !existing.labels.contains { label in valueLabels.contains(label.0) && new.labels.contains { $0.0 == label.0 } }
            }) {
                samples[match].labels += new.labels.filter { label in valueLabels.contains(label.0) }
                samples[match].labels.sort { $0.0 < $1.0 }
            } else {
                samples.append(new)
            }
        }
    }

    typealias Series = (name: String, labels: [(String, String)], value: Double)

    /// Folds a rule's candidate samples into its output series: the loop that runs once per
    /// engine sample, on raw buffers (array appends and uniqueness checks per label were a
    /// third of its time).
    /// `recording`: each sample that feeds a series, and where, is added to `plan`.
    private func fold(
        _ compiled: CompiledRule, _ candidates: UnsafeBufferPointer<Int>, _ actions: UnsafeBufferPointer<LabelAction>,
        _ samples: UnsafeBufferPointer<PrometheusExposition.Sample>,
        _ allLabels: UnsafeBufferPointer<PrometheusExposition.Label>, _ buffer: Bytes,
        recording: Bool, into plan: inout StandardizerPlan.Rule
    ) -> [Series] {
        let rule = compiled.rule
        let base = buffer.baseAddress!
        var seriesIndex = ByteKeyTable()
        var series: [Series] = []
        var key = ByteScratch()
        defer { key.deallocate() }
        var kept = LabelScratch()
        defer { kept.deallocate() }
        // With duplicate labels: the output series and the values of the aggregated labels
        // (the partition, e.g. dp_rank) of a sample, and the maximum per output series and
        // partition.
        let partitioned = !compiled.duplicates.isEmpty
        var partitionKey = ByteScratch()
        defer { partitionKey.deallocate() }
        var partitionIndex = ByteKeyTable()
        var perPartition: [(series: Int, value: Double)] = []
        let source = compiled.storage.source
        let matchCount = compiled.match.count
        let scale = rule.scale
        let isHistogram = rule.sourceType == .histogram
        let keyedByLabels = rule.aggregate != .newest
        sampleLoop: for index in candidates {
            let sample = samples[index]
            let name = Bytes(start: base + Int(sample.nameStart), count: Int(sample.nameEnd - sample.nameStart))
            var suffix = -1  // index into histogramSuffixes, -1 for counters and gauges
            if isHistogram {
                guard name.count > source.count, Self.same(Bytes(rebasing: name.prefix(source.count)), source) else { continue }
                suffix = Self.histogramSuffix(Bytes(rebasing: name.dropFirst(source.count)))
                guard suffix >= 0 else { continue }
            } else {
                guard Self.same(name, source) else { continue }
            }
            kept.reset(capacity: Int(sample.labelCount))
            partitionKey.count = 0
            var matched = 0
            let first = Int(sample.labelStart)
            for labelIndex in first..<(first + Int(sample.labelCount)) {
                let label = allLabels[labelIndex]
                let action = actions[Int(label.nameID)]
                var labelValue = Bytes(start: base + Int(label.valueStart), count: Int(label.valueEnd - label.valueStart))
                if action.match >= 0 {
                    guard compiled.match[action.match].1.withUnsafeBufferPointer({ Self.same(labelValue, $0) }) else { continue sampleLoop }
                    matched += 1
                }
                if action.duplicate { continue }
                if action.dropped {
                    if partitioned {
                        partitionKey.append(Bytes(start: base + Int(label.nameStart), count: Int(label.nameEnd - label.nameStart)))
                        partitionKey.append(0)
                        partitionKey.append(labelValue)
                        partitionKey.append(1)
                    }
                    continue
                }
                if action.valueMap >= 0,
                    let mapped = compiled.values[action.valueMap].1.firstIndex(where: { $0.0.withUnsafeBufferPointer { Self.same(labelValue, $0) } })
                {
                    labelValue = compiled.valueTargets[action.valueMap][mapped]
                }
                kept.append((action.output, labelValue))
            }
            guard matched == matchCount else { continue }
            kept.sortByName()
            let value = isHistogram ? sample.value : sample.value * scale
            // NEWEST keeps one series per output name: the one with the largest value.
            key.count = 0
            key.append(UInt8(truncatingIfNeeded: suffix + 1))
            if keyedByLabels {
                for (labelName, labelValue) in kept.labels {
                    key.append(labelName)
                    key.append(0)
                    key.append(labelValue)
                    key.append(1)
                }
            }
            let (target, isNew) = seriesIndex.index(of: key.bytes)
            if isNew {
                series.append(makeSeries(compiled, suffix, kept.labels, value))
                if recording, !partitioned { plan.contributions.append(.init(sample: Int32(truncatingIfNeeded: index), slot: Int32(truncatingIfNeeded: target), first: true)) }
                if !partitioned { continue }
            }
            if partitioned {
                // Maximum within a partition now; the aggregate across partitions below.
                withUnsafeBytes(of: Int64(target)) { partitionKey.append($0.assumingMemoryBound(to: UInt8.self)) }
                let (entry, isNewPartition) = partitionIndex.index(of: partitionKey.bytes)
                if isNewPartition {
                    perPartition.append((target, value))
                } else {
                    perPartition[entry].value = max(perPartition[entry].value, value)
                }
                if recording {
                    plan.contributions.append(.init(sample: Int32(truncatingIfNeeded: index), slot: Int32(truncatingIfNeeded: entry), first: isNewPartition))
                }
            } else if rule.aggregate == .newest {
                if value > series[target].value { series[target] = makeSeries(compiled, suffix, kept.labels, value) }
            } else {
                series[target].value = Self.aggregate(rule.aggregate, series[target].value, value)
                if recording { plan.contributions.append(.init(sample: Int32(truncatingIfNeeded: index), slot: Int32(truncatingIfNeeded: target), first: false)) }
            }
        }
        if partitioned {
            if recording { plan.partitionSeries = perPartition.map { Int32(truncatingIfNeeded: $0.series) } }
            Self.total(perPartition, rule.aggregate, into: &series)
        }
        return series
    }

    /// A series' value after one more sample, for every aggregate but `newest`.
    @inline(__always)
    private static func aggregate(_ aggregate: MetricRule.Aggregate, _ current: Double, _ value: Double) -> Double {
        switch aggregate {
        case .sum: return current + value
        case .max, .newest: return max(current, value)
        case .none: return value  // the same series twice: the last wins
        }
    }

    /// Series values from the maximum of each partition: their sum or their maximum.
    private static func total(
        _ perPartition: [(series: Int, value: Double)], _ aggregate: MetricRule.Aggregate, into series: inout [Series]
    ) {
        guard !series.isEmpty else { return }
        var totals = [Double?](repeating: nil, count: series.count)
        for entry in perPartition {
            if let total = totals[entry.series] {
                totals[entry.series] = aggregate == .sum ? total + entry.value : max(total, entry.value)
            } else {
                totals[entry.series] = entry.value
            }
        }
        for index in series.indices { series[index].value = totals[index] ?? 0 }
    }

    /// A rule's series for an exposition shaped like the one `planned` was made from: the
    /// same samples feed the same series in the same order, so only values are folded.
    private func refold(_ compiled: CompiledRule, _ planned: StandardizerPlan.Rule, _ samples: UnsafeBufferPointer<PrometheusExposition.Sample>) -> [Series] {
        let rule = compiled.rule
        let isHistogram = rule.sourceType == .histogram
        let scale = rule.scale
        var series = planned.series
        if planned.partitionSeries.isEmpty {
            series.withUnsafeMutableBufferPointer { series in
                for contribution in planned.contributions {
                    let sample = samples[Int(contribution.sample)]
                    let value = isHistogram ? sample.value : sample.value * scale
                    let slot = Int(contribution.slot)
                    series[slot].value = contribution.first ? value : Self.aggregate(rule.aggregate, series[slot].value, value)
                }
            }
            return series
        }
        var perPartition = planned.partitionSeries.map { (series: Int($0), value: 0.0) }
        for contribution in planned.contributions {
            let sample = samples[Int(contribution.sample)]
            let value = isHistogram ? sample.value : sample.value * scale
            let slot = Int(contribution.slot)
            perPartition[slot].value = contribution.first ? value : max(perPartition[slot].value, value)
        }
        Self.total(perPartition, rule.aggregate, into: &series)
        return series
    }

    /// A new output series: the only place strings are made.
    private func makeSeries(_ compiled: CompiledRule, _ suffix: Int, _ kept: UnsafeBufferPointer<(Bytes, Bytes)>, _ value: Double) -> Series {
        var labels = kept.map { (String(decoding: $0.0, as: UTF8.self), PrometheusExposition.unescape(Array($0.1)[...])) }
        for (key, labelValue) in compiled.rule.setLabels + constantLabels {
            labels.removeAll { $0.0 == key }
            labels.append((key, labelValue))
        }
        labels.sort { $0.0 < $1.0 }
        let name = compiled.rule.standardName + (suffix >= 0 ? Self.histogramSuffixes[suffix].text : compiled.rule.sourceType == .counter ? "_total" : "")
        return (name, labels, value)
    }

    /// Writes the standard families of one or more engines, one HELP and TYPE each.
    static func write(_ results: [[Family]], into writer: inout PrometheusWriter) {
        var order: [String] = []
        var merged: [String: Family] = [:]
        for result in results {
            for family in result {
                if merged[family.name] == nil {
                    order.append(family.name)
                    merged[family.name] = Family(name: family.name, type: family.type, samples: [])
                }
                merged[family.name]!.samples += family.samples
            }
        }
        for name in order {
            let family = merged[name]!
            let base = name.hasSuffix("_total") ? String(name.dropLast(6)) : name
            writer.header(name: name, help: StandardMetrics.byName[base]?.help ?? "Standardized engine metric.", type: family.type)
            for sample in family.samples { writer.sample(name: sample.name, labels: sample.labels, value: sample.value) }
        }
    }
}

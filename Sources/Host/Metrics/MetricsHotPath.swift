import NIOCore

/// The CPU-bound part of one uncached `/metrics` render for one engine, step by step, for the
/// regression benchmark (`swift run -c release metrics-bench`): parse, standardize, write the
/// standard set, write the originals. `MetricsService.renderText` runs the same steps with the
/// runtime's own series around them.
public struct MetricsHotPath: Sendable {
    private let standardizer: MetricStandardizer

    public init(rules: [MetricRule]) {
        standardizer = MetricStandardizer(rules: rules, constantLabels: [("engine", "bench")])
    }

    /// Nanoseconds spent in each step, and the bytes written.
    public struct Timing: Sendable {
        public var parse: UInt64 = 0
        public var standardize: UInt64 = 0
        public var writeStandard: UInt64 = 0
        public var writeOriginals: UInt64 = 0
        public var output = ByteBuffer()
        /// Whether the text was read as the last one with new values (same shape).
        public var reparsed = false
    }

    /// What one render leaves for the next, as `MetricsService` keeps it: the parsed arrays
    /// with their text, the standardizer's plan, and how the originals were grouped.
    public struct Memory: Sendable {
        var arrays = PrometheusExposition.Storage()
        var plan: StandardizerPlan?
        var layout: PrometheusExposition.OriginalsLayout?

        public init() {}

        /// Makes the next run parse and standardize in full, as for a text of a new shape.
        public mutating func forgetShape() {
            arrays.shape = 0
            plan = nil
            layout = nil
        }
    }

    /// One render. As `MetricsService` does, it writes over the last render's storage:
    /// `previous` (its output, when the caller holds no other copy) and `memory`.
    public func run(_ exposition: [UInt8], reusing previous: inout ByteBuffer?, memory: inout Memory) -> Timing {
        var timing = Timing()
        func now() -> UInt64 { UInt64(NIODeadline.now().uptimeNanoseconds) }
        var mark = now()
        func lap(_ field: WritableKeyPath<Timing, UInt64>) {
            let next = now()
            timing[keyPath: field] = next - mark
            mark = next
        }
        var parsed = PrometheusExposition(bytes: exposition, reusing: &memory.arrays)
        timing.reparsed = parsed.reparsed
        lap(\.parse)
        let standard = standardizer.standardize(parsed, plan: &memory.plan)
        lap(\.standardize)
        var writer = PrometheusWriter(reusing: &previous, capacity: exposition.count * 11 / 10)
        MetricStandardizer.write([standard], into: &writer)
        lap(\.writeStandard)
        PrometheusExposition.writeOriginals([(parsed, [])], into: &writer, layout: &memory.layout)
        lap(\.writeOriginals)
        timing.output = writer.buffer
        memory.arrays = parsed.takeStorage().storage
        return timing
    }
}

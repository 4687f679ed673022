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
        public var output: [UInt8] = []
    }

    public func run(_ exposition: [UInt8]) -> Timing {
        var timing = Timing()
        func now() -> UInt64 { UInt64(NIODeadline.now().uptimeNanoseconds) }
        var mark = now()
        func lap(_ field: WritableKeyPath<Timing, UInt64>) {
            let next = now()
            timing[keyPath: field] = next - mark
            mark = next
        }
        let parsed = PrometheusExposition(bytes: exposition)
        lap(\.parse)
        let standard = standardizer.standardize(parsed)
        lap(\.standardize)
        var writer = PrometheusWriter(capacity: exposition.count * 11 / 10)
        MetricStandardizer.write([standard], into: &writer)
        lap(\.writeStandard)
        PrometheusExposition.writeOriginals([(parsed, [])], into: &writer)
        lap(\.writeOriginals)
        timing.output = writer.bytes
        return timing
    }
}

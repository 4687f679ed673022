import Prometheus

/// The runtime's own metrics (`engine_runtime_*`), kept in a swift-prometheus registry.
public final class RuntimeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    static let latencyBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60),
    ]

    /// Also record requests under the AIBrix sidecar's names (`aibrix:api_request_*`).
    let aibrixNames: Bool
    /// aibrix/metrics/metrics.py's buckets.
    static let aibrixLatencyBuckets: [Duration] = [.milliseconds(100), .milliseconds(200), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5)]

    public init(drivers: DriverRegistry, aibrixNames: Bool = false) {
        self.aibrixNames = aibrixNames
        registry.makeGauge(
            descriptor: Self.name("build", "info", "engine-runtime build; value 1."), labels: [("version", EngineRuntimeVersion.current)]
        ).set(to: 1)
        for driver in drivers.drivers {
            registry.makeGauge(
                descriptor: Self.name("driver", "info", "Loaded drivers; value 1."),
                labels: [("driver", driver.name), ("version", driver.version), ("abi", "\(driver.abiMajor).\(driver.abiMinor)")]
            ).set(to: 1)
        }
        registry.makeGauge(descriptor: Self.name("driver_load_failures", "", "Driver files that failed to load."), labels: [])
            .set(to: Double(drivers.failures.count))
    }

    static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "engine_runtime", metricName: metric, unitName: unit, helpText: help)
    }

    static var requests: MetricNameDescriptor { name("requests", "total", "HTTP requests answered, by route template, method and status.") }
    static var requestDuration: MetricNameDescriptor { name("request_duration", "seconds", "HTTP request latency by route template.") }
    static var scrapeDuration: MetricNameDescriptor { name("scrape_duration", "seconds", "Duration of engine metric scrapes.") }
    static var aibrixRequests: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "aibrix:api_request", unitName: "total", helpText: "Total number of API requests (AIBrix name).")
    }
    static var aibrixRequestLatency: MetricNameDescriptor {
        MetricNameDescriptor(metricName: "aibrix:api_request", unitName: "latency", helpText: "API request latency (AIBrix name).")
    }
    static var scrapeErrors: MetricNameDescriptor { name("scrape_errors", "total", "Engine metric scrapes that failed.") }
    static var scrapesReparsed: MetricNameDescriptor {
        name("scrapes_reparsed", "total", "Engine metric scrapes with the last scrape's series, of which only the values were read.")
    }

    /// One answered HTTP request; `route` is the route template, never the raw path.
    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("method", method), ("status", String(status))])
            .increment()
        registry.makeDurationHistogram(
            descriptor: Self.requestDuration, labels: [("route", route), ("method", method)], buckets: Self.latencyBuckets
        ).record(duration)
        guard aibrixNames else { return }
        // AIBrix labelled by the raw path (unbounded: every 404 path became a series); the route
        // template keeps the label set bounded.
        let labels = [("method", method), ("endpoint", route), ("status", String(status))]
        registry.makeCounter(descriptor: Self.aibrixRequests, labels: labels).increment()
        registry.makeDurationHistogram(descriptor: Self.aibrixRequestLatency, labels: labels, buckets: Self.aibrixLatencyBuckets)
            .record(duration)
    }

    /// One scrape of an engine's metrics; `reparsed`: its text differed from the last one's
    /// only in values.
    func recordScrape(engine: String, duration: Duration, failed: Bool, reparsed: Bool = false) {
        registry.makeDurationHistogram(descriptor: Self.scrapeDuration, labels: [("engine_name", engine)], buckets: Self.latencyBuckets)
            .record(duration)
        let errors = registry.makeCounter(descriptor: Self.scrapeErrors, labels: [("engine_name", engine)])
        if failed { errors.increment() }
        let reparses = registry.makeCounter(descriptor: Self.scrapesReparsed, labels: [("engine_name", engine)])
        if reparsed { reparses.increment() }
    }

    func write(into writer: inout PrometheusWriter) {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        writer.append(contentsOf: bytes)
    }
}

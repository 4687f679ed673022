import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Which series `/metrics` shows.
public enum MetricsMode: String, Sendable, CaseIterable {
    /// The standard `llm_engine_*` set only.
    case standard
    /// The engines' own series only, unchanged.
    case original
    /// Both (the default: existing dashboards keep working).
    case both
    /// Both, plus the AIBrix Python sidecar's own names (`aibrix:queue_size`, `aibrix:info`,
    /// `aibrix:api_request_*`, `aibrix:modelclaim_*`), for dashboards made for it.
    case aibrix
}

/// `GET /metrics`: scrapes every engine, standardizes through the drivers' rules, and adds the
/// runtime's own metrics. Concurrent requests (and repeated ones within the TTL) share one
/// rendered body: memory is a small multiple of one exposition whatever the number of
/// scrapers, and it is let go once the TTL passes. An engine that is slow or down costs at
/// most the scrape timeout (its model list is read alongside) and shows as `llm_engine_up 0`.
public final class MetricsService: Sendable {
    /// The result of one scrape of one engine, parsed and standardized off the event loop.
    struct Scrape: Sendable {
        var duration: Duration
        var exposition: PrometheusExposition?
        var standard: [MetricStandardizer.Family]
        /// The standardizer's plan for the exposition's shape, kept for the next scrape.
        var plan: StandardizerPlan? = nil
        /// The text differed from the last scrape's only in values (only they were read).
        var reparsed = false
        var error: String?
        /// False when the engine's driver offers no metrics at all: no series, no warning.
        var supported = true
    }

    let engines: EngineRegistry
    let mode: MetricsMode
    let ttl: TimeAmount
    let timeout: TimeAmount
    public let runtimeMetrics: RuntimeMetrics
    private let pool: WorkerPool
    private let httpClient: CurlHTTPClient
    private let logger: Logger
    /// The last rendered body and when it was made (nil once the TTL passed).
    private let body = Mutex<(at: NIODeadline, bytes: ByteBuffer)?>(nil)
    private let renders = SingleFlight<ByteBuffer>()
    /// Storage the next render writes over instead of faulting in fresh pages (a fresh 2 MB
    /// body, and the engine's text and parsed arrays, cost more in page faults than the work
    /// that fills them): the last body, when no response is still sending it, and per engine
    /// the last scrape's arrays with its text, the text before it (for libcurl to fill), and
    /// the standardizer's plan: a next scrape of the same shape reads only its values and
    /// folds them by the plan. Dropped after `spareLife` without a render, so an idle sidecar
    /// keeps none.
    private struct Spare {
        var at = NIODeadline.uptimeNanoseconds(0)
        var body: ByteBuffer?
        var texts: [String: [UInt8]] = [:]
        var expositions: [String: PrometheusExposition.Storage] = [:]
        var plans: [String: StandardizerPlan] = [:]
        /// How the originals of the last render's expositions were grouped.
        var layout: PrometheusExposition.OriginalsLayout?
        var reaping = false
    }
    private let spare = Mutex(Spare())
    let spareLife: TimeAmount
    /// One standardizer per configured engine, compiled once from its driver's rules.
    private let standardizers: [String: MetricStandardizer]
    /// Engines the model runtime launched, scraped beside the configured ones and labelled by
    /// the model they serve; their standardizers are compiled on first use and dropped once
    /// the engine is no longer launched. Entries hold the engine itself: an object identifier
    /// could be reused by a later engine, which would then carry another model's labels.
    private let launched: ModelRuntimeBoard?
    private let launchedStandardizers = Mutex<[(engine: ManagedEngine, standardizer: MetricStandardizer)]>([])
    /// Largest engine exposition accepted.
    static let maximumScrapeBytes = 64 << 20

    public init(
        engines: EngineRegistry, mode: MetricsMode, ttl: TimeAmount = .milliseconds(1000), bufferLife: TimeAmount = .seconds(30),
        timeout: TimeAmount = .seconds(2),
        runtimeMetrics: RuntimeMetrics, pool: WorkerPool, httpClient: CurlHTTPClient, logger: Logger,
        launched: ModelRuntimeBoard? = nil
    ) {
        self.launched = launched
        self.engines = engines
        self.mode = mode
        self.ttl = ttl
        self.spareLife = bufferLife
        self.timeout = timeout
        self.runtimeMetrics = runtimeMetrics
        self.pool = pool
        self.httpClient = httpClient
        self.logger = logger
        let several = engines.engines.count > 1
        standardizers = Dictionary(
            uniqueKeysWithValues: engines.engines.map { engine in
                let labels: [(String, String)] = several
                    ? [("engine", engine.configuration.engine), ("engine_name", engine.name)] : [("engine", engine.configuration.engine)]
                return (engine.name, MetricStandardizer(rules: engine.driver.metricRules, constantLabels: labels))
            })
    }

    /// The `/metrics` body: the one rendered within the TTL, the one being rendered, or a new
    /// one. Every caller gets the same storage (a `ByteBuffer` is shared, not copied, by each
    /// response that writes it).
    public func render() async -> ByteBuffer {
        if let cached = body.withLock({ $0 }), NIODeadline.now() - cached.at < ttl { return cached.bytes }
        let bytes = (try? await renders.run("metrics") {
            // The stale body is let go first, so that its storage can be the new one's.
            self.body.withLock { $0 = nil }
            var previous = self.spare.withLock { spare in
                defer { spare.body = nil }
                return spare.body
            }
            // Writing megabytes of text is CPU work: off the event loop the request came in on.
            let bytes = await offEventLoop { await self.renderText(reusing: &previous) }
            let at = NIODeadline.now()
            if self.ttl > .zero {
                self.body.withLock { $0 = (at, bytes) }
                self.forget(at: at)
            }
            self.keepSpare(bytes, at: at)
            return bytes
        }) ?? ByteBuffer()
        return bytes
    }

    private func keepSpare(_ bytes: ByteBuffer, at: NIODeadline) {
        guard spareLife > .zero else { return }
        let startReaper = spare.withLock { spare in
            spare.at = at
            spare.body = bytes
            defer { spare.reaping = true }
            return !spare.reaping
        }
        guard startReaper else { return }
        // One task for the whole life of the spare storage, not one per render.
        let life = spareLife
        Task { [weak self] in
            var wait = life
            while true {
                try? await Task.sleep(for: .nanoseconds(wait.nanoseconds))
                guard let self else { return }
                // Asleep until `life` after the last render, which may have come meanwhile.
                let left: TimeAmount = self.spare.withLock { spare in
                    let left = life - (NIODeadline.now() - spare.at)
                    if left <= .zero { spare = Spare() }
                    return left
                }
                if left <= .zero { return }
                wait = left
            }
        }
    }

    /// The scrapes' texts and arrays, kept for the next render (each engine's last ones only:
    /// an engine no longer scraped leaves none behind). A failed scrape keeps what the last good
    /// one left: an engine that comes back is read as it was left.
    private func keepSpare(_ scrapes: inout [Scrape], of engines: [ManagedEngine]) {
        guard spareLife > .zero else { return }
        var texts: [String: [UInt8]] = [:]
        var expositions: [String: PrometheusExposition.Storage] = [:]
        var plans: [String: StandardizerPlan] = [:]
        for (index, engine) in engines.enumerated() {
            guard var exposition = scrapes[index].exposition else { continue }
            scrapes[index].exposition = nil  // the exposition's last other copy
            let (text, storage) = exposition.takeStorage()
            texts[engine.name] = text
            expositions[engine.name] = storage
            plans[engine.name] = scrapes[index].plan
        }
        spare.withLock { spare in
            for engine in engines where expositions[engine.name] == nil {
                expositions[engine.name] = spare.expositions[engine.name]
                plans[engine.name] = spare.plans[engine.name]
            }
            spare.texts = texts
            spare.expositions = expositions
            spare.plans = plans
        }
    }

    /// Puts back what one scrape between renders took (`activity`), unless a render has
    /// meanwhile left its own or the spare storage is no longer kept.
    private func keepSpare(_ scrape: inout Scrape, of engine: ManagedEngine) {
        guard spareLife > .zero, var exposition = scrape.exposition else { return }
        scrape.exposition = nil
        let (text, storage) = exposition.takeStorage()
        let plan = scrape.plan
        spare.withLock { spare in
            guard spare.reaping, spare.expositions[engine.name] == nil else { return }
            spare.texts[engine.name] = text
            spare.expositions[engine.name] = storage
            spare.plans[engine.name] = plan
        }
    }

    /// Drops the cached body once its TTL has passed, so a large exposition's memory goes back
    /// when scrapes stop.
    private func forget(at renderedAt: NIODeadline) {
        let ttl = ttl
        Task { [weak self] in
            try? await Task.sleep(for: .nanoseconds(ttl.nanoseconds))
            self?.body.withLock { cached in
                if cached?.at == renderedAt { cached = nil }
            }
        }
    }

    /// The standardizer of a configured or a launched engine.
    private func standardizer(for engine: ManagedEngine) -> MetricStandardizer {
        if let configured = standardizers[engine.name], engines.engine(named: engine.name) === engine { return configured }
        return launchedStandardizers.withLock { cache in
            if let known = cache.first(where: { $0.engine === engine }) { return known.standardizer }
            let model = launched?.launchedEngines.first { $0.engine === engine }?.model ?? engine.name
            let standardizer = MetricStandardizer(
                rules: engine.driver.metricRules, constantLabels: [("engine", engine.configuration.engine), ("model", model)])
            cache.append((engine, standardizer))
            return standardizer
        }
    }

    /// Request activity of one engine from its standard series, nil when none was found (the
    /// snapshot's `request_metrics_observed`).
    public struct Activity: Sendable, Equatable {
        public var running: Int64
        public var waiting: Int64
        /// Finished requests of every reason; nil when the engine exports no such counter.
        public var finished: Int64?
    }

    public func activity(of engine: ManagedEngine) async -> Activity? {
        var scrape = await scrape(engine, countingAdapters: false)
        defer { keepSpare(&scrape, of: engine) }
        guard scrape.exposition != nil else { return nil }
        func total(_ name: String) -> Double? {
            let samples = scrape.standard.filter { $0.name == name }.flatMap(\.samples)
            return samples.isEmpty ? nil : samples.reduce(0) { $0 + $1.2 }
        }
        let running = total("llm_engine_requests_running")
        let waiting = total("llm_engine_requests_waiting")
        let finished = scrape.standard.filter { $0.name.hasPrefix("llm_engine_requests_finished") }.flatMap(\.samples)
        guard running != nil || waiting != nil || !finished.isEmpty else { return nil }
        func integer(_ value: Double?) -> Int64 { Int64(max(0, (value ?? 0).rounded(.down))) }
        return Activity(
            running: integer(running), waiting: integer(waiting),
            finished: finished.isEmpty ? nil : integer(finished.reduce(0) { $0 + $1.2 }))
    }

    /// The whole `/metrics` text, freshly scraped.
    func renderText(reusing previous: inout ByteBuffer?) async -> ByteBuffer {
        let launchedNow = launched?.launchedEngines.map(\.engine) ?? []
        launchedStandardizers.withLock { cache in cache.removeAll { entry in !launchedNow.contains { $0 === entry.engine } } }
        let all = engines.engines + launchedNow
        var scrapes = await withTaskGroup(of: (Int, Scrape).self) { group in
            for (index, engine) in all.enumerated() {
                group.addTask { (index, await self.scrape(engine)) }
            }
            var results = [(Int, Scrape)]()
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var writer = PrometheusWriter(
            reusing: &previous, capacity: scrapes.reduce(4096) { $0 + ($1.exposition?.bytes.count ?? 0) * 11 / 10 })
        let several = all.count > 1
        if mode != .original {
            writer.header(name: "llm_engine_up", help: StandardMetrics.byName["llm_engine_up"]!.help, type: "gauge")
            for (engine, scrape) in zip(all, scrapes) where scrape.supported {
                writer.sample(name: "llm_engine_up", labels: labels(engine), value: scrape.exposition == nil ? 0 : 1)
            }
            writer.header(
                name: "llm_engine_scrape_duration_seconds", help: StandardMetrics.byName["llm_engine_scrape_duration_seconds"]!.help,
                type: "gauge")
            for (engine, scrape) in zip(all, scrapes) where scrape.supported {
                let seconds = scrape.duration / .seconds(1)
                writer.sample(name: "llm_engine_scrape_duration_seconds", labels: labels(engine), value: seconds)
            }
            MetricStandardizer.write(scrapes.map(\.standard), into: &writer)
        }
        if mode != .standard {
            let originals = zip(all, scrapes).compactMap { engine, scrape in
                scrape.exposition.map { ($0, several ? [("engine_name", engine.name)] : []) }
            }
            // Renders are single flight: no other render reads or writes the layout meanwhile.
            var layout = spare.withLock { $0.layout }
            PrometheusExposition.writeOriginals(originals, into: &writer, layout: &layout)
            if spareLife > .zero { spare.withLock { $0.layout = layout } }
        }
        if mode == .aibrix {
            var families = zip(all, scrapes).compactMap { engine, scrape in
                scrape.exposition.map { AIBrixMetrics.renamed($0, kind: engine.configuration.engine) }
            }
            families.append([AIBrixMetrics.info(engines: all.map { ($0.configuration.engine, $0.configuration.engineVersion) })])
            MetricStandardizer.write(families, into: &writer)
        }
        runtimeMetrics.write(into: &writer)
        launched?.write(into: &writer, aibrixNames: mode == .aibrix)
        keepSpare(&scrapes, of: all)
        return writer.buffer
    }

    /// The labels every standard series of `engine` carries (decided once, in `init`).
    private func labels(_ engine: ManagedEngine) -> [(String, String)] { standardizer(for: engine).constantLabels }

    /// One scrape of `engine`. Renders are single-flight, so each engine is scraped once per
    /// render however many requests wait for it.
    /// `countingAdapters`: read the model list for `llm_engine_lora_adapters_loaded` too (the
    /// snapshot's activity needs only the exposition).
    private func scrape(_ engine: ManagedEngine, countingAdapters: Bool = true) async -> Scrape {
        let started = ContinuousClock.now
        let driver = engine.driver
        // Read beside the metrics, not after them: a hung engine costs one timeout, not two.
        async let adapterCount = countingAdapters ? loadedAdapterCount(engine) : nil
        let standardizer = standardizer(for: engine)
        let parsed: Result<Parsed, RuntimeError>
        if let path = driver.metricsPath {
            // The engine's API key goes with the scrape: llama-server guards /metrics with it
            // (vLLM and SGLang leave /metrics open, and ignore the header there).
            let credentials = engine.configuration.apiKey.map { ["Authorization: Bearer \($0)"] } ?? []
            var scrapeRequest = HTTPClientRequest(
                method: "GET", url: engine.configuration.endpoint.trimmingTrailingSlashes() + path,
                headers: ["Accept: text/plain;version=0.0.4"] + credentials, timeout: timeout, idempotent: false,
                maxResponseBytes: Self.maximumScrapeBytes)
            scrapeRequest.responseStorage = spare.withLock { $0.texts.removeValue(forKey: engine.name) }.map(Handoff.init)
            let request = scrapeRequest
            let client = httpClient
            let deadline = NIODeadline.now() + timeout
            // Fetched and parsed on the same pool thread, so the text is still in its cache
            // and the scrape crosses threads once instead of twice.
            parsed = await pool.run {
                client.perform(request, deadline: deadline).mapError(RuntimeError.init).flatMap { response in
                    response.status == 200
                        ? .success(self.parse(response.body, of: engine.name, standardizer: standardizer))
                        : .failure(RuntimeError(.upstream, "the engine's \(path) answered HTTP \(response.status)"))
                }
            }
        } else if engine.instance.supports(.metrics) {
            do {
                let bytes = try await engine.instance.invoke(.metrics, request: Array("{}".utf8), timeout: timeout)
                // Parsing a multi-megabyte text is CPU work: keep it off the event loop.
                parsed = await pool.run { .success(self.parse(bytes, of: engine.name, standardizer: standardizer)) }
            } catch {
                parsed = .failure(error)
            }
        } else {
            _ = await adapterCount
            return Scrape(duration: .zero, exposition: nil, standard: [], error: nil, supported: false)
        }
        let result: Scrape
        // Series the host makes itself when the driver's rules do not supply them.
        let adapters = await adapterCount
        let sleepState = engine.knownSleepState
        switch parsed {
        case .success(let (exposition, ruled, plan, reparsed)):
            var standard = ruled
            let labels = standardizer.constantLabels
            let has = { (name: String) in standard.contains { $0.name == name } }
            if let adapters, !has("llm_engine_lora_adapters_loaded") {
                standard.append(
                    MetricStandardizer.Family(
                        name: "llm_engine_lora_adapters_loaded", type: "gauge",
                        samples: [("llm_engine_lora_adapters_loaded", labels, Double(adapters))]))
            }
            if let sleepState, !has("llm_engine_sleep_state") {
                standard.append(
                    MetricStandardizer.Family(
                        name: "llm_engine_sleep_state", type: "gauge",
                        samples: [
                            ("llm_engine_sleep_state", (labels + [("state", "awake")]).sorted { $0.0 < $1.0 }, sleepState ? 0 : 1),
                            ("llm_engine_sleep_state", (labels + [("state", "sleeping")]).sorted { $0.0 < $1.0 }, sleepState ? 1 : 0),
                        ]))
            }
            result = Scrape(duration: ContinuousClock.now - started, exposition: exposition, standard: standard, plan: plan, reparsed: reparsed, error: nil)
            if exposition.malformedLines > 0 {
                logger.debug("engine metrics had malformed lines", metadata: ["engine": "\(engine.name)", "lines": "\(exposition.malformedLines)"])
            }
        case .failure(let error):
            result = Scrape(duration: ContinuousClock.now - started, exposition: nil, standard: [], error: error.message)
        }
        if let error = result.error {
            logger.warning("engine metrics scrape failed", metadata: ["engine": "\(engine.name)", "error": "\(error)"])
        }
        runtimeMetrics.recordScrape(engine: engine.name, duration: result.duration, failed: result.error != nil, reparsed: result.reparsed)
        return result
    }
}

extension MetricsService {
    /// A scrape's text read: the exposition, its standard families, the plan for the next
    /// scrape of the same shape, and whether the text was read as the last one's with new values.
    typealias Parsed = (PrometheusExposition, [MetricStandardizer.Family], StandardizerPlan?, Bool)

    /// Parses and standardizes `bytes` over the arrays and plan the engine's last scrape left
    /// (on a pool thread: a multi-megabyte text is CPU work). Taken only once there is a text,
    /// so a failed scrape leaves them for the next.
    func parse(_ bytes: [UInt8], of engine: String, standardizer: MetricStandardizer) -> Parsed {
        var (storage, plan) = spare.withLock { spare in
            (spare.expositions.removeValue(forKey: engine) ?? PrometheusExposition.Storage(), spare.plans.removeValue(forKey: engine))
        }
        let exposition = PrometheusExposition(bytes: bytes, reusing: &storage)
        let standard = standardizer.standardize(exposition, plan: &plan)
        return (exposition, standard, plan, exposition.reparsed)
    }

    /// LoRA cards (`parent` set) in the engine's model list, or nil when it cannot be read.
    func loadedAdapterCount(_ engine: ManagedEngine) async -> Int? {
        guard engine.instance.supports(.listModels),
            let models = try? await engine.instance.invoke(.listModels, request: Array("{}".utf8), timeout: timeout),
            let adapters = try? LoadedAdapter.fromModelList(models)
        else { return nil }
        return adapters.count
    }
}

extension String {
    func trimmingTrailingSlashes() -> String {
        var text = self
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}

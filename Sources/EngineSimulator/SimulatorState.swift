import Synchronization

/// Knobs that tests change at run time through POST /_sim/config (every field optional there).
struct Knobs: Codable, Sendable {
    var latency_ms: Int
    /// When set, the latency applies only to routes that start with it.
    var latency_path: String? = nil
    var error_rate: Double
    var malformed: Bool
    var hang: Bool
    /// Health answers 503 (vLLM's EngineDeadError).
    var dead: Bool
    var running_requests: Int
    var waiting_requests: Int
    var prompt_tokens_total: Int
    var generation_tokens_total: Int
    var metrics_bytes: Int
}

struct KnobChanges: Decodable {
    var latency_ms: Int?
    var latency_path: String?
    var error_rate: Double?
    var malformed: Bool?
    var hang: Bool?
    var dead: Bool?
    var running_requests: Int?
    var waiting_requests: Int?
    var prompt_tokens_total: Int?
    var generation_tokens_total: Int?
    var metrics_bytes: Int?

    func apply(to knobs: inout Knobs) {
        if let latency_ms { knobs.latency_ms = latency_ms }
        if let latency_path { knobs.latency_path = latency_path.isEmpty ? nil : latency_path }
        if let error_rate { knobs.error_rate = error_rate }
        if let malformed { knobs.malformed = malformed }
        if let hang { knobs.hang = hang }
        if let dead { knobs.dead = dead }
        if let running_requests { knobs.running_requests = running_requests }
        if let waiting_requests { knobs.waiting_requests = waiting_requests }
        if let prompt_tokens_total { knobs.prompt_tokens_total = prompt_tokens_total }
        if let generation_tokens_total { knobs.generation_tokens_total = generation_tokens_total }
        if let metrics_bytes { knobs.metrics_bytes = metrics_bytes }
    }
}

/// Fixed settings of one simulator process.
struct SimulatorSettings: Sendable {
    var flavor: Flavor
    var model: String
    var engineVersion: String
    var apiKey: String?
    var loraUpdating: Bool
    var devMode: Bool
    var flatErrors: Bool
    var readyAt: ContinuousClock.Instant

    var isReady: Bool { ContinuousClock.now >= readyAt }
}

/// The engine's mutable state: knobs, loaded adapters, sleep, request counts.
final class SimulatorState: Sendable {
    struct Engine {
        var knobs: Knobs
        var adapters: [String: String] = [:]  // name -> path, in load order below
        var adapterOrder: [String] = []
        var sleepLevel = 0
        var requestCounts: [String: Int] = [:]
        var cacheResets = 0
    }

    private let engine: Mutex<Engine>

    init(knobs: Knobs) { engine = Mutex(Engine(knobs: knobs)) }

    func withEngine<T>(_ body: (inout Engine) -> T) -> T { engine.withLock { body(&$0) } }

    var knobs: Knobs { engine.withLock { $0.knobs } }
}

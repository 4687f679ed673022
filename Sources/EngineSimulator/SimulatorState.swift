import Synchronization

/// Knobs that tests change at run time through POST /_sim/config (every field optional there).
struct Knobs: Codable, Sendable {
    var latency_ms: Int
    /// When set, the latency applies only to routes that start with it.
    var latency_path: String? = nil
    var error_rate: Double
    var malformed: Bool
    var hang: Bool
    /// The engine core died and the server was kept alive (vLLM's
    /// VLLM_KEEP_ALIVE_ON_ENGINE_DEATH): health answers 503, every other route but /metrics 500.
    var dead: Bool
    var running_requests: Int
    var waiting_requests: Int
    var prompt_tokens_total: Int
    var generation_tokens_total: Int
    var metrics_bytes: Int
    /// Ends an SGLang start-up (--startup-delay) at once: a test decides when, not a clock.
    var started: Bool = false
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
    var started: Bool?

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
        if let started { knobs.started = started }
    }
}

/// Which release's routes, codes, bodies and metrics the simulator reproduces. Each flavor has
/// the current release the drivers follow and the previous one they still support; a version
/// in between gets the older profile (the reference records only these two per engine).
enum Profile: Sendable, Equatable {
    /// vLLM 0.33.0 (`vllm/...` paths of that wheel in the comments).
    case vllmCurrent
    /// vLLM 0.11: empty sleep and wake answers, levels 1 and 2 only, no pause routes.
    case vllmPrevious
    /// SGLang 0.5.23 (`sglang/...` paths of that wheel in the comments).
    case sglangCurrent
    /// SGLang 0.5.4: the get_* route names, adapter objects, cache_config_info, no /ready.
    case sglangPrevious

    static let defaultVersions: [Flavor: String] = [.vllm: "0.33.0", .sglang: "0.5.23"]

    init(flavor: Flavor, version: String) {
        let parts = version.split(separator: ".").map { Int($0.prefix(while: \.isNumber)) ?? 0 }
        let (major, minor, patch) = (parts.first ?? 0, parts.count > 1 ? parts[1] : 0, parts.count > 2 ? parts[2] : 0)
        switch flavor {
        case .vllm: self = (major, minor) >= (0, 33) ? .vllmCurrent : .vllmPrevious
        case .sglang: self = (major, minor, patch) >= (0, 5, 23) ? .sglangCurrent : .sglangPrevious
        }
    }
}

/// Fixed settings of one simulator process.
struct SimulatorSettings: Sendable {
    var flavor: Flavor
    var model: String
    var engineVersion: String
    var profile: Profile
    var apiKey: String?
    /// SGLang's --admin-api-key.
    var adminAPIKey: String?
    /// The engine was started with LoRA (vLLM --enable-lora, SGLang --enable-lora).
    var lora: Bool
    var loraUpdating: Bool
    var devMode: Bool
    var flatErrors: Bool
    /// Data-parallel ranks (vLLM `engine` label, SGLang `dp_rank`), each reporting the knobs.
    var dataParallelSize: Int
    /// SGLang tensor-parallel ranks per data-parallel group.
    var tensorParallelSize: Int
    /// SGLang --enable-metrics-for-all-schedulers: every TP rank reports (duplicates).
    var metricsForAllSchedulers: Bool
    /// SGLang --enable-priority-scheduling: request gauges per priority beside the total.
    var priorityScheduling: Bool = false
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
        /// What is not resident or not running: weights, kv_cache, scheduling (vLLM tags).
        var asleep: Set<String> = []
        var paused = false
        var lastMode: String?
        var requestCounts: [String: Int] = [:]
        var cacheResets = 0
        var cacheResetsByKind: [String: Int] = [:]
        var weightReloads: [String] = []
    }

    private let engine: Mutex<Engine>
    /// Set when SIGTERM or SIGINT arrives: a hung request ends then, so the shutdown does.
    let stopping = Atomic<Bool>(false)

    init(knobs: Knobs) { engine = Mutex(Engine(knobs: knobs)) }

    func withEngine<T>(_ body: (inout Engine) -> T) -> T { engine.withLock { body(&$0) } }

    var knobs: Knobs { engine.withLock { $0.knobs } }
}

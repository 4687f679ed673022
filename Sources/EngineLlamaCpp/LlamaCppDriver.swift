import EngineDriverKit
import PluginABI

/// The llama.cpp driver: management through `llama-server`'s HTTP routes, single-model or
/// router mode (several models, each a child llama-server).
///
/// Facts from a real build 11434 run on these machines (the engine reference, §1.3a): the
/// server answers `/health` with 503 "Loading model" while it loads, adapters can only be
/// preloaded with `--lora` (a run-time "load" is a scale change), `POST /lora-adapters`
/// replaces the whole set of scales and silently zeroes every adapter for an unknown id, and
/// `/metrics` needs `--metrics` (and the API key when one is set).
final class LlamaCppInstance: EngineDriverInstance {
    static let info = DriverInfo(
        name: "llamacpp", version: "0.1.0", summary: "llama.cpp llama-server (single model or router mode), build 11434",
        engineKinds: ["llamacpp"],
        capabilities: UInt64(ERT_CAP_MULTI_INSTANCE | ERT_CAP_PROMETHEUS),
        configSchemaJSON: #"{"type":"object","additionalProperties":false,"properties":{}}"#,
        operations: [
            .health, .readiness, .engineInfo, .listModels, .loadLoRAAdapter, .unloadLoRAAdapter, .loadModel, .unloadModel,
            .resetCache, .metrics,
        ],
        // No metrics_path: the `metrics` operation scrapes (a router serves /metrics per model).
        metricsPath: nil, metricRules: metricRules, extensions: LoRAScales.extensions)

    /// `llamacpp:*` in the standard set. llama-server has no labels (one model per process),
    /// no KV-usage series since the KV cache was unified (absent here, never a fake zero; old
    /// builds' `kv_cache_usage_ratio` is still read), no latency histograms. Its throughput
    /// gauges are averages reset by every scrape, so they stay out of the standard set, and the
    /// sidecar should be the engine's only scraper.
    static let metricRules: [MetricRuleSpec] = [
        MetricRuleSpec(.gauge, "llamacpp:requests_processing", "llm_engine_requests_running"),
        MetricRuleSpec(.gauge, "llamacpp:requests_deferred", "llm_engine_requests_waiting"),
        MetricRuleSpec(.gauge, "llamacpp:kv_cache_usage_ratio", "llm_engine_kv_cache_usage_ratio"),
        MetricRuleSpec(.counter, "llamacpp:prompt_tokens_total", "llm_engine_prompt_tokens"),
        MetricRuleSpec(.counter, "llamacpp:tokens_predicted_total", "llm_engine_generation_tokens"),
    ]

    let engine: EngineClient

    init(settings: InstanceSettings, host: HostConnection) throws(DriverFailure) {
        engine = EngineClient(settings: settings, engineName: "llama-server")
    }

    func perform(_ operation: DriverOperation, request: DriverRequest, call: CallScope) throws(DriverFailure) -> [UInt8] {
        switch operation {
        case .health:
            let (ok, reason) = try probe(call)
            return try DriverJSON.encode(HealthAnswer(healthy: ok, reason: reason))
        case .readiness:
            let (ok, reason) = try probe(call)
            return try DriverJSON.encode(ReadinessAnswer(ready: ok, reason: reason))
        case .engineInfo: return try engineInfo(call)
        case .listModels: return try listModels(call)
        case .loadLoRAAdapter: return try loadAdapter(try request.decode(AdapterRequest.self), call)
        case .unloadLoRAAdapter: return try unloadAdapter(try request.decode(AdapterRequest.self), call)
        case .loadModel: return try loadModel(try request.decode(ModelRequest.self), call)
        case .unloadModel: return try unloadModel(try request.decode(ModelRequest.self), call)
        case .resetCache:
            struct Reset: Decodable { var cache: String? }
            return try eraseSlots(try request.decode(Reset.self).cache ?? "prefix", call)
        case .metrics: return try metrics(call)
        default: throw .unsupported("the llama.cpp driver does not implement this operation")
        }
    }

    // MARK: Probes and information

    /// `/health` (public even with --api-key): 200 `{"status":"ok"}`, or 503 "Loading model"
    /// while the model loads (the HTTP server starts first): starting, not dead.
    private func probe(_ call: CallScope) throws(DriverFailure) -> (ok: Bool, reason: String?) {
        let (ok, reason) = try engine.probe("/health", in: call)
        if !ok, let reason, reason.contains("Loading model") {
            return (false, "llama-server is loading its model (starting up)")
        }
        return (ok, reason)
    }

    /// `GET /props`: a single-model server's settings, or `{"role":"router",...}`.
    struct Props: Decodable {
        struct Settings: Decodable { var n_ctx: Int? }
        var role: String?
        var build_info: String?
        var model_path: String?
        var model_alias: String?
        var total_slots: Int?
        var is_sleeping: Bool?
        var max_instances: Int?
        var models_autoload: Bool?
        var default_generation_settings: Settings?

        var isRouter: Bool { role == "router" }
    }

    func props(_ call: CallScope) throws(DriverFailure) -> Props {
        let reply = try engine.get("/props", in: call)
        guard reply.status == 200, let props = reply.decode(Props.self) else {
            throw engine.failure(reply, doing: "read /props")
        }
        return props
    }

    private func engineInfo(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        struct Answer: Encodable {
            var engine = "llamacpp"
            var version: String?
            var role: String
            var endpoint: String
            var model_path: String?
            var model_alias: String?
            var context_length: Int?
            var total_slots: Int?
            var is_sleeping: Bool?
            var max_instances: Int?
            var models_autoload: Bool?
        }
        let props = try props(call)
        return try DriverJSON.encode(
            Answer(
                version: props.build_info, role: props.isRouter ? "router" : "single", endpoint: engine.endpoint,
                model_path: props.model_path, model_alias: props.model_alias, context_length: props.default_generation_settings?.n_ctx,
                total_slots: props.total_slots, is_sleeping: props.is_sleeping, max_instances: props.max_instances,
                models_autoload: props.models_autoload))
    }

    /// One card of `/v1/models` as llama-server writes it (router mode adds `status`).
    struct EngineCard: Decodable {
        struct Status: Codable {
            var value: String?
            var args: [String]?
            var failed: Bool?
            var exit_code: Int?
        }
        var id: String
        var status: Status?
    }

    func engineCards(_ call: CallScope) throws(DriverFailure) -> [EngineCard] {
        struct List: Decodable { var data: [EngineCard] }
        let reply = try engine.get("/v1/models", in: call)
        guard reply.status == 200 else { throw engine.failure(reply, doing: "list models") }
        guard let list = reply.decode(List.self) else {
            throw .upstream("llama-server /v1/models is not a model list", status: Int32(reply.status))
        }
        return list.data
    }

    /// An OpenAI model list: the model (router mode: every model with its `status`) and the
    /// preloaded LoRA adapters as cards with `parent`, which is how the host lists adapters.
    private func listModels(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        struct Card: Encodable {
            var id: String
            var object = "model"
            var owned_by = "llamacpp"
            var root: String?
            var parent: String?
            var status: EngineCard.Status?
        }
        struct List: Encodable {
            var object = "list"
            var data: [Card]
        }
        let cards = try engineCards(call)
        var data = cards.map { Card(id: $0.id, status: $0.status) }
        if cards.first?.status == nil, let model = cards.first?.id {
            data += try LoRAScales.adapters(of: self, call).map { Card(id: $0.name, root: $0.path, parent: model) }
        }
        return try DriverJSON.encode(List(data: data))
    }

    // MARK: Metrics

    /// llama-server's series carry no labels: the scrape adds `model_name`, the model's alias
    /// (or id) on a single-model server, and in router mode one scrape per running model
    /// (`/metrics?model=`, proxied to its child). The host parses the text as any exposition
    /// and gathers the families repeated per model.
    private func metrics(_ call: CallScope) throws(DriverFailure) -> [UInt8] {
        let props = try props(call)
        let models: [(name: String, query: String)]
        if props.isRouter {
            models = try engineCards(call).filter { $0.status?.value == "loaded" }.map { ($0.id, "?model=\($0.id)") }
        } else {
            var name = props.model_alias ?? ""
            if name.isEmpty { name = try engineCards(call).first?.id ?? "" }
            models = [(name, "")]
        }
        var text: [UInt8] = []
        for (name, query) in models {
            let reply = try engine.get("/metrics" + query, in: call, maxResponseBytes: 16 << 20)
            if reply.status == 501 {
                throw .unsupported("llama-server serves metrics only when started with --metrics", upstream: 501)
            }
            guard reply.status == 200 else { throw engine.failure(reply, doing: "read the metrics of \(name)") }
            text += name.isEmpty ? reply.body : Self.labelled(reply.body, model: name)
        }
        return text
    }

    /// Adds `model_name="<model>"` to every sample line of an exposition without labels of its
    /// own (llama-server writes `name value`; a line with labels gets it first in its set).
    static func labelled(_ exposition: [UInt8], model: String) -> [UInt8] {
        var label = Array("model_name=\"".utf8)
        for byte in model.utf8 {
            if byte == 0x5C || byte == 0x22 { label.append(0x5C) }  // escape \ and "
            label.append(byte == 0x0A ? 0x20 : byte)
        }
        label.append(0x22)
        var out: [UInt8] = []
        out.reserveCapacity(exposition.count + exposition.count / 8)
        for line in exposition.split(separator: 0x0A, omittingEmptySubsequences: false) {
            if line.first == 0x23 || line.isEmpty {  // '#' comments and blank lines
                out += line
            } else if let brace = line.firstIndex(of: 0x7B) {  // '{'
                out += line[..<brace]
                out += [0x7B] + label
                let rest = line[line.index(after: brace)...]
                if rest.first != 0x7D { out.append(0x2C) }  // ',' unless the set was empty
                out += rest
            } else if let space = line.firstIndex(of: 0x20) {
                out += line[..<space]
                out += [0x7B] + label + [0x7D]
                out += line[space...]
            } else {
                out += line
            }
            out.append(0x0A)
        }
        if exposition.last == 0x0A { out.removeLast() }
        return out
    }

    // MARK: Caches

    /// Erasing every slot drops the prompt cache; llama-server allows it only with
    /// `--slot-save-path` (otherwise 501), and `/slots` exists unless `--no-slots`.
    private func eraseSlots(_ cache: String, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        switch cache {
        case "prefix", "all": break
        case "multimodal", "encoder": throw .unsupported("llama-server has no \(cache) cache to reset; only its slots' prompt cache")
        default: throw .invalidArgument("cache \"\(cache)\" must be prefix, multimodal, encoder or all")
        }
        struct Slot: Decodable { var id: Int }
        let slots = try engine.get("/slots", in: call)
        if slots.status == 501 { throw .unsupported("llama-server was started with --no-slots: start it without", upstream: 501) }
        guard slots.status == 200, let list = slots.decode([Slot].self) else { throw engine.failure(slots, doing: "list slots") }
        for slot in list {
            let reply = try engine.post("/slots/\(slot.id)?action=erase", json: [String: String](), in: call)
            if reply.status == 501 {
                throw .unsupported("llama-server erases slots only when started with --slot-save-path DIR", upstream: 501)
            }
            guard reply.status == 200 else { throw engine.failure(reply, doing: "erase slot \(slot.id)") }
        }
        return try DriverJSON.encode(MessageAnswer(message: "llama-server erased \(list.count) slots"))
    }
}

// MARK: C ABI export

let llamaCppExport = DriverExport(
    info: LlamaCppInstance.info,
    create: { config, out, error in DriverExport.createInstance(of: LlamaCppInstance.self, config: config, out: out, error: error) },
    planLaunch: llamaCppPlanLaunch)

@_cdecl("ert_driver_entry_v1")
public func ert_driver_entry_v1(
    _ host: UnsafePointer<ert_host_info>?, _ error: UnsafeMutablePointer<ert_error>?
) -> UnsafePointer<ert_driver_descriptor>? {
    llamaCppExport.entry(host: host, error: error)
}

/// Fails to compile if the exported function drifts from the header's typedef.
private let entrySignatureCheck: ert_driver_entry_v1_fn = ert_driver_entry_v1

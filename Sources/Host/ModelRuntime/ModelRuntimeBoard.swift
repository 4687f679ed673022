import Synchronization

/// What the model runtime publishes for readers outside its actor (`/metrics`): per-model
/// rows (replaced after every change) and counters. One lock, taken briefly.
public final class ModelRuntimeBoard: Sendable {
    struct Row: Sendable {
        var modelName: String
        var engine: ManagedEngine?
        var kind: String
        var phase: ModelPhase
        var ready: Bool
        var restarts: Int
        var kvLimit: Int64?
        var segment: KVSegment
    }

    private struct OperationKey: Hashable {
        var model: String
        var action: String
        var result: String
    }

    private struct State {
        var rows: [Row] = []
        var restarts: [String: Int] = [:]
        var exhausted: [String: Int] = [:]
        var readoptions: [String: Int] = [:]
        var operations: [OperationKey: (count: Int, seconds: Double)] = [:]
        var requestedKV: [String: Int64] = [:]
    }

    private let state = Mutex(State())

    func publish(_ rows: [Row]) { state.withLock { $0.rows = rows } }

    func forget(_ model: String) { state.withLock { $0.requestedKV[model] = nil } }
    func count(restart model: String) { state.withLock { $0.restarts[model, default: 0] += 1 } }
    func count(exhausted model: String) { state.withLock { $0.exhausted[model, default: 0] += 1 } }
    func count(readoption result: String) { state.withLock { $0.readoptions[result, default: 0] += 1 } }
    func requested(kvBytes: Int64, model: String) { state.withLock { $0.requestedKV[model] = kvBytes } }
    func count(operation action: String, result: String, model: String, seconds: Double = 0) {
        state.withLock { state in
            let key = OperationKey(model: model, action: action, result: result)
            let old = state.operations[key] ?? (0, 0)
            state.operations[key] = (old.count + 1, old.seconds + seconds)
        }
    }

    /// The engines the runtime launched, with the model each serves (for `/metrics`).
    var launchedEngines: [(engine: ManagedEngine, model: String)] {
        state.withLock { $0.rows.compactMap { row in row.engine.map { ($0, row.modelName) } } }
    }

    /// `engine_runtime_model_*`, and with `aibrixNames` the same facts under AIBrix's
    /// `aibrix:modelclaim_*` names (its ModelClaim Grafana dashboard reads them).
    func write(into writer: inout PrometheusWriter, aibrixNames: Bool = false) {
        let state = state.withLock { $0 }
        if aibrixNames { writeAIBrix(state, into: &writer) }
        writer.header(name: "engine_runtime_model_phase", help: "1 for the phase each launched model is in.", type: "gauge")
        for row in state.rows {
            for phase in ModelPhase.allCases {
                writer.sample(
                    name: "engine_runtime_model_phase", labels: [("model", row.modelName), ("phase", phase.rawValue)],
                    value: row.phase == phase ? 1 : 0)
            }
        }
        writer.header(name: "engine_runtime_model_ready", help: "1 while the model's engine answers ready.", type: "gauge")
        for row in state.rows {
            writer.sample(name: "engine_runtime_model_ready", labels: [("model", row.modelName), ("engine", row.kind)], value: row.ready ? 1 : 0)
        }
        writer.header(name: "engine_runtime_model_restarts_total", help: "Engine relaunches after an exit, hang or failed start.", type: "counter")
        for (model, count) in state.restarts.sorted(by: { $0.key < $1.key }) {
            writer.sample(name: "engine_runtime_model_restarts_total", labels: [("model", model)], value: Double(count))
        }
        writer.header(
            name: "engine_runtime_model_restart_budget_exhausted_total", help: "Models failed because their restart budget ran out.",
            type: "counter")
        for (model, count) in state.exhausted.sorted(by: { $0.key < $1.key }) {
            writer.sample(name: "engine_runtime_model_restart_budget_exhausted_total", labels: [("model", model)], value: Double(count))
        }
        writer.header(name: "engine_runtime_model_readoptions_total", help: "Registry records taken back at start, by outcome.", type: "counter")
        for result in ["success", "restart_scheduled", "terminal", "stopping", "removed", "invalid", "duplicate"] {
            writer.sample(name: "engine_runtime_model_readoptions_total", labels: [("result", result)], value: Double(state.readoptions[result] ?? 0))
        }
        let usage = state.rows.map { ($0, $0.segment.read()) }
        writer.header(name: "engine_runtime_model_kv_used_bytes", help: "KV bytes in use (used + preallocated) per kvcached.", type: "gauge")
        for (row, usage) in usage {
            if let usage {
                writer.sample(name: "engine_runtime_model_kv_used_bytes", labels: [("model", row.modelName)], value: Double(usage.used + usage.preallocated))
            }
        }
        writer.header(name: "engine_runtime_model_kv_capacity_bytes", help: "The KV limit kvcached enforces now.", type: "gauge")
        for (row, usage) in usage {
            if let usage { writer.sample(name: "engine_runtime_model_kv_capacity_bytes", labels: [("model", row.modelName)], value: Double(usage.total)) }
        }
        writer.header(name: "engine_runtime_model_kv_limit_bytes", help: "The KV limit last applied through kv-limit.", type: "gauge")
        for row in state.rows {
            if let limit = row.kvLimit { writer.sample(name: "engine_runtime_model_kv_limit_bytes", labels: [("model", row.modelName)], value: Double(limit)) }
        }
        writer.header(name: "engine_runtime_model_kv_limit_requested_bytes", help: "The KV limit last requested.", type: "gauge")
        for (model, bytes) in state.requestedKV.sorted(by: { $0.key < $1.key }) {
            writer.sample(name: "engine_runtime_model_kv_limit_requested_bytes", labels: [("model", model)], value: Double(bytes))
        }
        let operations = state.operations.sorted { ($0.key.model, $0.key.action, $0.key.result) < ($1.key.model, $1.key.action, $1.key.result) }
        writer.header(name: "engine_runtime_model_operations_total", help: "kv-limit, sleep and wake calls by outcome.", type: "counter")
        for (key, value) in operations {
            writer.sample(
                name: "engine_runtime_model_operations_total", labels: [("model", key.model), ("action", key.action), ("result", key.result)],
                value: Double(value.count))
        }
        writer.header(name: "engine_runtime_model_operation_seconds_total", help: "Time spent in sleep and wake calls.", type: "counter")
        for (key, value) in operations where key.action != "kv-limit" {
            writer.sample(
                name: "engine_runtime_model_operation_seconds_total", labels: [("model", key.model), ("action", key.action), ("result", key.result)],
                value: value.seconds)
        }
    }

    /// aibrix/runtime/model_runtime_metrics.py's families (aibrix-modelclaim.md §5).
    private func writeAIBrix(_ state: State, into writer: inout PrometheusWriter) {
        let resident = state.rows.filter { $0.phase != .failed && $0.phase != .downloading }
        let usage = resident.map { ($0.modelName, $0.segment.read()) }
        writer.header(name: "aibrix:modelclaim_models_resident", help: "Models whose engine process is alive.", type: "gauge")
        writer.sample(name: "aibrix:modelclaim_models_resident", labels: [], value: Double(resident.count))
        writer.header(name: "aibrix:modelclaim_kv_used_bytes", help: "KV bytes in use (used + preallocated).", type: "gauge")
        for (model, usage) in usage { writer.sample(name: "aibrix:modelclaim_kv_used_bytes", labels: [("model", model)], value: Double((usage?.used ?? 0) + (usage?.preallocated ?? 0))) }
        writer.header(name: "aibrix:modelclaim_kv_total_bytes", help: "The KV limit kvcached enforces.", type: "gauge")
        for (model, usage) in usage { writer.sample(name: "aibrix:modelclaim_kv_total_bytes", labels: [("model", model)], value: Double(usage?.total ?? 0)) }
        writer.header(name: "aibrix:modelclaim_engine_state", help: "Models per phase.", type: "gauge")
        for phase in [ModelPhase.active, .sleeping, .restarting, .failed] {
            writer.sample(name: "aibrix:modelclaim_engine_state", labels: [("phase", phase.rawValue)], value: Double(state.rows.filter { $0.phase == phase }.count))
        }
        writer.header(name: "aibrix:modelclaim_engine_restart_attempts_total", help: "Engine relaunch attempts.", type: "counter")
        for (model, count) in state.restarts.sorted(by: { $0.key < $1.key }) {
            writer.sample(name: "aibrix:modelclaim_engine_restart_attempts_total", labels: [("model", model)], value: Double(count))
        }
        writer.header(name: "aibrix:modelclaim_engine_restart_budget_exhausted_total", help: "Transitions to failed.", type: "counter")
        for (model, count) in state.exhausted.sorted(by: { $0.key < $1.key }) {
            writer.sample(name: "aibrix:modelclaim_engine_restart_budget_exhausted_total", labels: [("model", model)], value: Double(count))
        }
        writer.header(name: "aibrix:modelclaim_engine_re_adoptions_total", help: "Registry records taken back at start.", type: "counter")
        for result in ["success", "restart_scheduled", "terminal", "stopping", "removed", "invalid", "duplicate"] {
            writer.sample(name: "aibrix:modelclaim_engine_re_adoptions_total", labels: [("result", result)], value: Double(state.readoptions[result] ?? 0))
        }
        let operations = state.operations.sorted { ($0.key.model, $0.key.action, $0.key.result) < ($1.key.model, $1.key.action, $1.key.result) }
        writer.header(name: "aibrix:modelclaim_kv_limit_operations_total", help: "kv-limit calls by outcome.", type: "counter")
        for (key, value) in operations where key.action == "kv-limit" {
            writer.sample(name: "aibrix:modelclaim_kv_limit_operations_total", labels: [("model", key.model), ("result", key.result)], value: Double(value.count))
        }
        writer.header(name: "aibrix:modelclaim_kv_limit_requested_bytes", help: "The KV limit last requested.", type: "gauge")
        for (model, bytes) in state.requestedKV.sorted(by: { $0.key < $1.key }) {
            writer.sample(name: "aibrix:modelclaim_kv_limit_requested_bytes", labels: [("model", model)], value: Double(bytes))
        }
        writer.header(name: "aibrix:modelclaim_kv_limit_applied_bytes", help: "The KV limit last applied.", type: "gauge")
        for row in state.rows {
            if let limit = row.kvLimit { writer.sample(name: "aibrix:modelclaim_kv_limit_applied_bytes", labels: [("model", row.modelName)], value: Double(limit)) }
        }
        writer.header(name: "aibrix:modelclaim_lifecycle_operations_total", help: "sleep and wake calls by outcome.", type: "counter")
        for (key, value) in operations where key.action != "kv-limit" {
            writer.sample(
                name: "aibrix:modelclaim_lifecycle_operations_total", labels: [("model", key.model), ("action", key.action), ("result", key.result)],
                value: Double(value.count))
        }
        writer.header(name: "aibrix:modelclaim_lifecycle_operation_duration_seconds", help: "Time inside sleep and wake calls.", type: "summary")
        for (key, value) in operations where key.action != "kv-limit" {
            let labels = [("model", key.model), ("action", key.action), ("result", key.result)]
            writer.sample(name: "aibrix:modelclaim_lifecycle_operation_duration_seconds_count", labels: labels, value: Double(value.count))
            writer.sample(name: "aibrix:modelclaim_lifecycle_operation_duration_seconds_sum", labels: labels, value: value.seconds)
        }
    }
}

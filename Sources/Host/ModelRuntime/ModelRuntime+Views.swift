import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// One model as the list and the snapshot show it, copied out of the actor.
public struct ModelView: Sendable {
    var record: ModelRecord
    var ready: Bool
    var alive: Bool
    var engine: ManagedEngine?
    var download: DownloadJob.Snapshot?
    var logTail: [String]
    var segment: KVSegment
}

extension ModelRuntime {
    public func views() -> [ModelView] {
        records.map { record in
            let state = live[record.modelName]
            let alive = record.phase != .failed && (record.process?.isAlive ?? false)
            return ModelView(
                record: record, ready: (state?.ready ?? false) && record.phase == .active, alive: alive, engine: state?.engine,
                download: state?.job?.snapshot, logTail: state?.log?.tail ?? [],
                segment: KVSegment(directory: settings.segmentDirectory, ipcName: record.ipcName))
        }
    }

    /// `GET /v1/runtime/models`.
    public func list() -> RuntimeModelList {
        RuntimeModelList(
            models: views().map { view in
                let usage = view.segment.read()
                return ModelListEntry(
                    model_name: view.record.modelName, port: view.record.port, ipc_name: view.record.ipcName, phase: view.record.phase,
                    ready: view.ready, kv_used_bytes: usage.map { $0.used + $0.preallocated } ?? 0, kv_total_bytes: usage?.total ?? 0,
                    engine: view.record.engine, artifact_url: CurlHTTPClient.redacted(view.record.artifactURL), pid: view.record.process?.pid,
                    restart_count: view.record.restartCount, last_error: view.record.lastError, download: view.download,
                    log_tail: view.logTail)
            })
    }
}

/// `GET /v1/runtime/snapshot`: the runtime's models with their KV numbers and their request
/// activity read from the standard metrics (so SGLang and llama.cpp engines are observed too,
/// AIBrix's defect 30), every engine scraped at once within one deadline; accelerators from
/// NVML when the machine has it.
public struct RuntimeSnapshotService: Sendable {
    let runtime: ModelRuntime
    let metrics: MetricsService
    let accelerators: AcceleratorProbe

    public init(runtime: ModelRuntime, metrics: MetricsService) {
        self.runtime = runtime
        self.metrics = metrics
        accelerators = AcceleratorProbe()
    }

    public func snapshot() async -> RuntimeSnapshot {
        let views = await runtime.views()
        let activity = await withTaskGroup(of: (Int, MetricsService.Activity?).self) { group in
            for (index, view) in views.enumerated() where view.alive && view.ready && view.record.phase == .active {
                guard let engine = view.engine else { continue }
                group.addTask { (index, await metrics.activity(of: engine)) }
            }
            var found: [Int: MetricsService.Activity] = [:]
            for await (index, value) in group { if let value { found[index] = value } }
            return found
        }
        let models = views.enumerated().map { index, view in
            let usage = view.segment.read()
            let seen = activity[index]
            return RuntimeSnapshot.Model(
                model_name: view.record.modelName, artifact_url: CurlHTTPClient.redacted(view.record.artifactURL), claim_ref: view.record.claimRef,
                port: view.record.port, ipc_name: view.record.ipcName, phase: view.record.phase, ready: view.ready, alive: view.alive,
                restart_count: view.record.restartCount, last_error: view.record.lastError,
                last_transition: Date(timeIntervalSince1970: view.record.lastTransition).ISO8601Format(),
                kv_used_bytes: usage.map { $0.used + $0.preallocated } ?? 0, kv_capacity_bytes: usage?.total ?? 0, hbm_peak_bytes: 0,
                request_metrics_observed: seen != nil, requests_running: seen?.running ?? 0, requests_waiting: seen?.waiting ?? 0,
                request_success_total: seen?.finished)
        }
        return RuntimeSnapshot(
            observed_at: Date().ISO8601Format(), accelerators: accelerators.devices(), models: models,
            cached_artifacts: runtime.cachedArtifacts())
    }
}

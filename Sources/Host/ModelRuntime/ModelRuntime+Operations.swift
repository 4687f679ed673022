import Crypto
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Logging

extension ModelRuntime {
    /// The model named, or AIBrix's 404 text.
    func require(_ name: String) throws(RuntimeError) -> Int {
        guard let index = index(of: name) else { throw RuntimeError(.notFound, "model '\(name)' is not active") }
        return index
    }

    /// A replayed id: the earlier outcome with the same parameters, a conflict with others.
    func replay(_ index: Int, id: String, action: String, parameters: String) throws(RuntimeError) -> Bool {
        guard let done = records[index].operation(id, action: action) else { return false }
        guard done.parameters == parameters else {
            throw RuntimeError(.conflict, "operation_id \(id) was already used for \(action) with other parameters")
        }
        return true
    }

    func remember(_ index: Int, id: String, action: String, parameters: String) {
        records[index].remember(OperationRecord(id: id, action: action, parameters: parameters))
    }

    // MARK: kv-limit

    public func kvLimit(model name: String, bytes: Int64, operationID: String) throws(RuntimeError) -> OperationAnswer {
        let index = try require(name)
        board.requested(kvBytes: bytes, model: name)
        let parameters = "limit_bytes=\(bytes)"
        if try replay(index, id: operationID, action: "kv-limit", parameters: parameters) {
            board.count(operation: "kv-limit", result: "skipped", model: name)
            return OperationAnswer(model_name: name, operation_id: operationID, applied: false, phase: records[index].phase)
        }
        let segment = KVSegment(directory: settings.segmentDirectory, ipcName: records[index].ipcName)
        switch segment.setLimit(bytes) {
        case .failure(.missing):
            board.count(operation: "kv-limit", result: "failed", model: name)
            throw RuntimeError(
                .conflict,
                "model '\(name)' has no kvcached segment \(segment.path) yet (its engine has not set up its KV cache); retry once it is ready")
        case .failure(.failed(let reason)):
            board.count(operation: "kv-limit", result: "failed", model: name)
            throw RuntimeError(.internalError, reason)
        case .success:
            records[index].kvLimitBytes = bytes
            records[index].kvLimitPending = false
            remember(index, id: operationID, action: "kv-limit", parameters: parameters)
            try? persist()
            board.count(operation: "kv-limit", result: "applied", model: name)
            publish()
            logger.info("kv limit applied", metadata: ["model": "\(name)", "bytes": "\(bytes)"])
            return OperationAnswer(model_name: name, operation_id: operationID, applied: true, phase: records[index].phase)
        }
    }

    /// After a restart kvcached starts from the engine's full size: the limit goes back once
    /// the engine has its segment again.
    func reapplyKVLimit(_ index: Int) {
        guard let bytes = records[index].kvLimitBytes else { return }
        let segment = KVSegment(directory: settings.segmentDirectory, ipcName: records[index].ipcName)
        if case .success = segment.setLimit(bytes) {
            records[index].kvLimitPending = false
            logger.info("kv limit re-applied", metadata: ["model": "\(records[index].modelName)", "bytes": "\(bytes)"])
        } else {
            records[index].kvLimitPending = true
        }
    }

    // MARK: sleep and wake

    public func sleep(model name: String, level: Int, operationID: String) async throws(RuntimeError) -> OperationAnswer {
        var index = try require(name)
        let parameters = "level=\(level)"
        if try replay(index, id: operationID, action: "sleep", parameters: parameters) {
            board.count(operation: "sleep", result: "skipped", model: name)
            return OperationAnswer(model_name: name, operation_id: operationID, applied: false, phase: records[index].phase)
        }
        guard let engine = live[name]?.engine, engine.instance.supports(.sleep) else {
            throw RuntimeError(.conflict, "sleep is unsupported for engine '\(records[index].engine)'")
        }
        if records[index].phase == .sleeping {
            remember(index, id: operationID, action: "sleep", parameters: parameters)
            board.count(operation: "sleep", result: "skipped", model: name)
            return OperationAnswer(model_name: name, operation_id: operationID, applied: false, phase: .sleeping)
        }
        guard records[index].phase == .active else {
            throw RuntimeError(.conflict, "model '\(name)' is \(records[index].phase.rawValue); only an active model can sleep")
        }
        let clock = ContinuousClock()
        let started = clock.now
        do {
            struct Sleep: Encodable { var level: Int }
            _ = try await engine.call(.sleep, Sleep(level: level))
        } catch {
            board.count(operation: "sleep", result: "failed", model: name, seconds: (clock.now - started) / .seconds(1))
            throw error
        }
        index = try require(name)
        transition(index, to: .sleeping)
        remember(index, id: operationID, action: "sleep", parameters: parameters)
        try? persist()
        board.count(operation: "sleep", result: "applied", model: name, seconds: (clock.now - started) / .seconds(1))
        publish()
        return OperationAnswer(model_name: name, operation_id: operationID, applied: true, phase: .sleeping)
    }

    public func wake(model name: String, operationID: String) async throws(RuntimeError) -> OperationAnswer {
        var index = try require(name)
        if try replay(index, id: operationID, action: "wake", parameters: "") {
            board.count(operation: "wake", result: "skipped", model: name)
            return OperationAnswer(model_name: name, operation_id: operationID, applied: false, phase: records[index].phase)
        }
        guard let engine = live[name]?.engine, engine.instance.supports(.wake) else {
            throw RuntimeError(.conflict, "wake is unsupported for engine '\(records[index].engine)'")
        }
        guard records[index].phase == .sleeping else {
            remember(index, id: operationID, action: "wake", parameters: "")
            board.count(operation: "wake", result: "skipped", model: name)
            return OperationAnswer(model_name: name, operation_id: operationID, applied: false, phase: records[index].phase)
        }
        let clock = ContinuousClock()
        let started = clock.now
        do { _ = try await engine.call(.wake, EmptyRequest()) } catch {
            board.count(operation: "wake", result: "failed", model: name, seconds: (clock.now - started) / .seconds(1))
            throw error
        }
        index = try require(name)
        // Routed again once the supervisor's next probe finds it ready.
        transition(index, to: .booting)
        records[index].bootStartedAt = Date().timeIntervalSince1970
        remember(index, id: operationID, action: "wake", parameters: "")
        try? persist()
        board.count(operation: "wake", result: "applied", model: name, seconds: (clock.now - started) / .seconds(1))
        publish()
        return OperationAnswer(model_name: name, operation_id: operationID, applied: true, phase: .booting)
    }

    // MARK: served markers

    /// `<AIBRIX_WEIGHT_CACHE_DIR>/.aibrix/served/<sha256 of the artifact>.json`, written once
    /// the engine first served the artifact (not before the weights exist, as AIBrix did), one
    /// per artifact (not per served name, which let artifacts overwrite each other).
    func writeServedMarker(_ record: ModelRecord) {
        guard let path = record.modelPath else { return }
        let directory = settings.markerRoot + "/.aibrix/served"
        let digest = FileDigest.hex(SHA256.hash(data: Array(record.artifactURL.utf8)))
        struct Marker: Codable {
            var model_name: String
            var artifact_url: String
            var model_path: String
            var served_at: String
        }
        let marker = Marker(model_name: record.modelName, artifact_url: record.artifactURL, model_path: path, served_at: Date().ISO8601Format())
        guard let bytes = try? JSONCoding.encode(marker) else { return }
        do {
            try StagingDirectory.createDirectory(directory)
            try StagingDirectory.writeAtomically(bytes, to: directory + "/" + digest + ".json")
        } catch {
            logger.warning("served marker not written", metadata: ["model": "\(record.modelName)", "error": "\(error.message)"])
        }
    }

    /// The artifacts served here whose files are still on disk, sorted.
    nonisolated func cachedArtifacts() -> [String] {
        let directory = settings.markerRoot + "/.aibrix/served"
        struct Marker: Decodable {
            var artifact_url: String
            var model_path: String?
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var urls = Set<String>()
        for name in names where name.hasSuffix(".json") {
            guard let bytes = ProcFile.read(directory + "/" + name, limit: 1 << 16),
                let marker = try? JSONCoding.decode(Marker.self, from: bytes)
            else { continue }
            if let path = marker.model_path, access(path, F_OK) != 0 { continue }
            urls.insert(marker.artifact_url)
        }
        return urls.sorted()
    }
}

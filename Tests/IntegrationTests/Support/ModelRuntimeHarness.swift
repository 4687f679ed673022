import Foundation
import Host
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The real engine-runtime with its model runtime on, in a scratch directory: a state
/// directory, a models root, and a `bin/` where `vllm` and `python3` are links to the engine
/// simulator, so the runtime starts "engines" through their real command lines.
final class ModelRuntimeHarness: @unchecked Sendable {
    let directory: TemporaryDirectory
    let ports: ClosedRange<Int>
    var environment: [String: String]
    private(set) var runtime: ServerProcess?

    var state: String { directory.path + "/state" }
    var models: String { directory.path + "/models" }
    var bin: String { directory.path + "/bin" }

    /// `ports`: a range of its own per test, so tests running at once do not share ports.
    init(ports: ClosedRange<Int>, environment extra: [String: String] = [:]) throws {
        let directory = try TemporaryDirectory()
        self.directory = directory
        self.ports = ports
        for name in ["state", "models", "bin", "cache"] {
            try FileManager.default.createDirectory(atPath: directory.path + "/" + name, withIntermediateDirectories: true)
        }
        let simulator = TestPaths.buildDirectory + "/engine-simulator"
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/bin/vllm", withDestinationPath: simulator)
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/bin/python3", withDestinationPath: simulator)
        environment = [
            "ENGINE_RUNTIME_MODEL_STATE_DIR": directory.path + "/state", "DOWNLOADER_LOCAL_DIR": directory.path + "/models",
            "ENGINE_RUNTIME_MODEL_ENGINE_HOST": "127.0.0.1", "ENGINE_RUNTIME_MODEL_ENGINE_PATH": directory.path + "/bin:/usr/local/bin:/usr/bin:/bin",
            "ENGINE_RUNTIME_MODEL_PORTS": "\(ports.lowerBound)-\(ports.upperBound)", "AIBRIX_WEIGHT_CACHE_DIR": directory.path + "/cache",
            "ENGINE_RUNTIME_MODEL_SUPERVISOR_INTERVAL_MS": "200", "ENGINE_RUNTIME_MODEL_RESTART_BACKOFF_MS": "100",
            "ENGINE_RUNTIME_MODEL_STOP_GRACE": "5",
        ]
        environment.merge(extra) { $1 }
    }

    /// A model directory under the models root.
    func makeModel(_ name: String) throws -> String {
        let path = models + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Data(#"{"architectures":["LlamaForCausalLM"]}"#.utf8).write(to: URL(fileURLWithPath: path + "/config.json"))
        return path
    }

    @discardableResult
    func start(_ arguments: [String] = ["--model-runtime"]) async throws -> ServerProcess {
        let process = try await ServerProcess.start(
            arguments: ["--driver-dir", TestPaths.buildDirectory, "--log-level", "info"] + arguments, environment: environment)
        runtime = process
        return process
    }

    func post(_ path: String, _ body: String, headers: [String] = []) async throws -> HTTPClientResponse {
        try await runtime!.post(path, body, headers: headers)
    }

    struct Snapshot: Decodable {
        struct Model: Decodable {
            var model_name: String
            var artifact_url: String
            var claim_ref: ClaimReference?
            var port: Int
            var ipc_name: String
            var phase: String
            var ready: Bool
            var alive: Bool
            var restart_count: Int
            var last_error: String?
            var last_transition: String?
            var kv_used_bytes: Int64
            var kv_capacity_bytes: Int64
            var request_metrics_observed: Bool
            var requests_running: Int64
            var requests_waiting: Int64
            var request_success_total: Int64?
        }
        var observed_at: String
        var accelerators: [RuntimeSnapshot.Accelerator]
        var models: [Model]
        var cached_artifacts: [String]
    }

    /// Sent with every call when the runtime requires a token.
    var headers: [String] { environment["ENGINE_RUNTIME_AUTH_TOKEN"].map { ["Authorization: Bearer \($0)"] } ?? [] }

    func snapshot() async throws -> Snapshot {
        let reply = try await runtime!.get("/v1/runtime/snapshot", headers: headers)
        guard reply.status == 200 else { throw ServerProcess.StartError(log: "snapshot answered \(reply.status): \(reply.text)") }
        return try JSONCoding.decode(Snapshot.self, from: reply.body)
    }

    func list() async throws -> [ModelListEntry] {
        try JSONCoding.decode(RuntimeModelList.self, from: try await runtime!.get("/v1/runtime/models", headers: headers).body).models
    }

    /// Polls the snapshot until `model` satisfies `condition` (20 s at most).
    @discardableResult
    func waitFor(
        _ model: String, seconds: Double = 20, _ condition: (Snapshot.Model) -> Bool
    ) async throws -> Snapshot.Model {
        let deadline = Date().addingTimeInterval(seconds)
        var last: Snapshot.Model?
        while Date() < deadline {
            last = try await snapshot().models.first { $0.model_name == model }
            if let last, condition(last) { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ServerProcess.StartError(log: "model \(model) never got there; last: \(String(describing: last))\n\(runtime?.output.suffix(4000) ?? "")")
    }

    /// The engine process of `model`, from the list.
    func pid(_ model: String) async throws -> Int32? {
        try await list().first { $0.model_name == model }?.pid
    }

    /// Kills every engine the registry names (a failed test must not leave any), then removes
    /// the directory.
    func cleanUp() {
        runtime?.kill()
        if let bytes = FileManager.default.contents(atPath: state + "/engines.json"),
            let text = String(data: bytes, encoding: .utf8)
        {
            for match in text.split(separator: ",").filter({ $0.contains("\"pid\":") }) {
                if let pid = Int32(match.split(separator: ":").last?.filter(\.isNumber) ?? "") { killpg(pid, SIGKILL) }
            }
        }
        directory.remove()
    }
}

/// A process's environment and command line from /proc.
enum ProcInfo {
    static func environment(_ pid: Int32) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [:] }
        var result: [String: String] = [:]
        for entry in data.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            guard let equals = text.firstIndex(of: "=") else { continue }
            result[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        return result
    }

    static func commandLine(_ pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// True while `pid` runs (a zombie counts as gone).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        let state = stat[stat.index(after: close)...].dropFirst().first
        return state != "Z" && state != "X"
    }

    /// Processes whose environment has `ENGINE_RUNTIME_LAUNCH_ID` (the engines of any runtime)
    /// and `KVCACHED_IPC_NAME=name`.
    static func engines(ipcName: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            let environment = environment(pid)
            return environment["ENGINE_RUNTIME_LAUNCH_ID"] != nil && environment["KVCACHED_IPC_NAME"] == ipcName && isRunning(pid)
        }
    }
}

import Foundation

/// The simulator started the way the model runtime starts the real engines: as `vllm serve
/// MODEL ...` (a link named `vllm`) or `python3 -m sglang.launch_server --model-path ...` (a
/// link named `python3`). The engine's own flags and environment are read into the
/// simulator's options, so the launch plans are exercised word by word; flags the simulator
/// has no use for are accepted and listed in its log, as the engines accept them.
@main
enum SimulatorMain {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let environment = ProcessInfo.processInfo.environment
        let translated: [String]
        do {
            translated = try EngineCommandLine.translate(arguments, environment: environment) ?? arguments
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            exit(2)
        }
        await SimulatorCommand.main(translated)
    }
}

enum EngineCommandLine {
    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    /// The simulator's arguments for an engine command line; nil when `arguments` are already
    /// the simulator's own.
    static func translate(_ arguments: [String], environment: [String: String]) throws -> [String]? {
        if arguments.first == "serve" {
            return try vllm(Array(arguments.dropFirst()), environment: environment)
        }
        if arguments.count >= 2, arguments[0] == "-m", arguments[1] == "sglang.launch_server" {
            return try sglang(Array(arguments.dropFirst(2)), environment: environment)
        }
        return nil
    }

    /// `vllm serve [model_tag] [options]` (vllm/entrypoints/cli/serve.py:48-160).
    static func vllm(_ words: [String], environment: [String: String]) throws -> [String] {
        var options = try Options(words, valued: ["--host", "--port", "--served-model-name", "--api-key", "--model"])
        let model = options.positional.first ?? options.values["--model"] ?? "Qwen/Qwen3-0.6B"
        try requireModel(model)
        var result = ["--flavor", "vllm", "--host", options.values["--host"] ?? "0.0.0.0", "--port", options.values["--port"] ?? "8000"]
        result += ["--model", options.values["--served-model-name"] ?? model]
        if let key = options.values["--api-key"] ?? environment["VLLM_API_KEY"] { result += ["--api-key", key] }
        if !options.take("--enable-lora") { result.append("--no-lora") }
        // The dev routes (/sleep, /wake_up, cache resets) exist only with VLLM_SERVER_DEV_MODE=1
        // (vllm/envs.py:1468), runtime LoRA loads only with VLLM_ALLOW_RUNTIME_LORA_UPDATING.
        if environment["VLLM_SERVER_DEV_MODE"] != "1" { result.append("--no-dev-mode") }
        if !["1", "true", "True"].contains(environment["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] ?? "") { result.append("--no-lora-updating") }
        _ = options.take("--enable-sleep-mode")
        return result + kvcached(environment) + options.unusedNote()
    }

    /// `python -m sglang.launch_server --model-path M [options]` (sglang/launch_server.py).
    static func sglang(_ words: [String], environment: [String: String]) throws -> [String] {
        var options = try Options(
            words, valued: ["--model-path", "--model", "--host", "--port", "--served-model-name", "--api-key", "--admin-api-key"])
        guard let model = options.values["--model-path"] ?? options.values["--model"] else {
            throw Refusal(description: "the following arguments are required: --model-path")
        }
        try requireModel(model)
        var result = ["--flavor", "sglang", "--host", options.values["--host"] ?? "127.0.0.1", "--port", options.values["--port"] ?? "30000"]
        result += ["--model", options.values["--served-model-name"] ?? model]
        if let key = options.values["--api-key"] { result += ["--api-key", key] }
        if let key = options.values["--admin-api-key"] { result += ["--admin-api-key", key] }
        if !options.take("--enable-lora") { result.append("--no-lora") }
        _ = options.take("--enable-memory-saver")
        _ = options.take("--enable-metrics")
        return result + kvcached(environment) + options.unusedNote()
    }

    /// A local model path that does not exist ends the engine at start, as the engines end
    /// when they cannot load their model (a hub id, no '/' first, is taken as downloadable).
    static func requireModel(_ model: String) throws {
        if model.hasPrefix("/"), !FileManager.default.fileExists(atPath: model) {
            throw Refusal(description: "model path \(model) does not exist")
        }
    }

    /// kvcached's segment, when the engine is started with it (ENABLE_KVCACHED and
    /// KVCACHED_IPC_NAME, as the model runtime starts engines), and the simulator's own fault
    /// knobs for an engine started this way (`ENGINE_SIMULATOR_STARTUP_DELAY`,
    /// `ENGINE_SIMULATOR_SHUTDOWN_DELAY`, in seconds): an engine that takes long to load, or to
    /// exit after SIGTERM.
    static func kvcached(_ environment: [String: String]) -> [String] {
        var result: [String] = []
        if environment["ENABLE_KVCACHED"] == "true", let name = environment["KVCACHED_IPC_NAME"], !name.isEmpty {
            result += ["--kv-segment", name]
        }
        if let delay = environment["ENGINE_SIMULATOR_STARTUP_DELAY"] { result += ["--startup-delay", delay] }
        if let delay = environment["ENGINE_SIMULATOR_SHUTDOWN_DELAY"] { result += ["--shutdown-delay", delay] }
        return result
    }

    struct Options {
        var values: [String: String] = [:]
        var flags: [String] = []
        var positional: [String] = []

        init(_ words: [String], valued: Set<String>) throws {
            var index = 0
            while index < words.count {
                let word = words[index]
                let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2, parts[0].hasPrefix("--") {
                    values[parts[0]] = parts[1]
                } else if valued.contains(word) {
                    guard index + 1 < words.count else { throw Refusal(description: "argument \(word): expected one argument") }
                    values[word] = words[index + 1]
                    index += 1
                } else if word.hasPrefix("-") {
                    // An engine flag with a value the simulator does not read: keep the pair.
                    if index + 1 < words.count, !words[index + 1].hasPrefix("-") || Double(words[index + 1]) != nil {
                        flags.append(word + "=" + words[index + 1])
                        index += 1
                    } else {
                        flags.append(word)
                    }
                } else {
                    positional.append(word)
                }
                index += 1
            }
        }

        mutating func take(_ flag: String) -> Bool {
            guard let index = flags.firstIndex(of: flag) else { return false }
            flags.remove(at: index)
            return true
        }

        func unusedNote() -> [String] { flags.isEmpty ? [] : ["--engine-flags=" + flags.joined(separator: " ")] }
    }
}

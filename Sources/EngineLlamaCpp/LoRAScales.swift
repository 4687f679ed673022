import EngineDriverKit
import PluginABI

/// llama-server's LoRA adapters: preloaded at start-up (`--lora a.gguf,b.gguf`), never loaded
/// or unloaded at run time; what changes is each adapter's scale. `POST /lora-adapters` takes
/// the whole set (adapters left out go to scale 0) and accepts unknown ids by zeroing every
/// adapter, so every change here reads the list first, checks the id, and sends all scales.
enum LoRAScales {
    struct Adapter: Codable {
        var id: Int
        var path: String
        var scale: Double

        /// The adapter's name in the API: its file name without `.gguf`.
        var name: String {
            let file = path.split(separator: "/").last.map(String.init) ?? path
            return file.hasSuffix(".gguf") ? String(file.dropLast(5)) : file
        }
    }

    /// The adapters of the server, or of one model's child server in router mode (the router
    /// forwards `GET /lora-adapters?model=`).
    static func adapters(of instance: LlamaCppInstance, model: String = "", _ call: CallScope) throws(DriverFailure) -> [Adapter] {
        let query = model.isEmpty ? "" : "?model=\(model)"
        let reply = try instance.engine.get("/lora-adapters" + query, in: call)
        // The router answers 400 "model is not loaded" for a model without a running child.
        if !model.isEmpty, reply.status == 400, EngineClient.errorMessage(reply).contains("not loaded") {
            throw .conflict("model \"\(model)\" is not running: load it first (POST /v1/models/load)", upstream: 400)
        }
        guard reply.status == 200 else { throw instance.engine.failure(reply, doing: "list LoRA adapters") }
        guard let adapters = reply.decode([Adapter].self) else {
            throw .upstream("llama-server /lora-adapters is not a list of adapters", status: 200)
        }
        return adapters
    }

    static func scale(of instance: LlamaCppInstance, model: String, id: Int64, _ call: CallScope) throws(DriverFailure) -> Double {
        try adapter(id, in: try adapters(of: instance, model: model, call)).scale
    }

    /// Sets one adapter's scale, keeping the others', and answers the scale now in effect.
    static func setScale(
        of instance: LlamaCppInstance, model: String, id: Int64, scale: Double, _ call: CallScope
    ) throws(DriverFailure) -> Double {
        guard scale.isFinite, abs(scale) <= 100 else { throw .invalidArgument("scale must be a finite number in [-100, 100]") }
        let adapters = try adapters(of: instance, model: model, call)
        _ = try adapter(id, in: adapters)
        struct Scale: Encodable {
            var id: Int
            var scale: Double
        }
        let body = adapters.map { Scale(id: $0.id, scale: Int64($0.id) == id ? scale : $0.scale) }
        // The router cannot forward this POST (it needs an object with `model`, the child an
        // array): it goes to the model's own server.
        let target = model.isEmpty ? instance.engine : try childServer(of: instance, model: model, call)
        let reply = try target.post("/lora-adapters", json: body, in: call)
        guard reply.status == 200 else { throw target.failure(reply, doing: "set LoRA scales") }
        return try Self.scale(of: instance, model: model, id: id, call)
    }

    private static func adapter(_ id: Int64, in adapters: [Adapter]) throws(DriverFailure) -> Adapter {
        guard let adapter = adapters.first(where: { Int64($0.id) == id }) else {
            let ids = adapters.map { "\($0.id) (\($0.name))" }.joined(separator: ", ")
            throw .notFound("llama-server has no LoRA adapter with id \(id); preloaded: \(ids.isEmpty ? "none" : ids)")
        }
        return adapter
    }

    /// The child llama-server of a loaded model, from the `--port` in its command line.
    static func childServer(of instance: LlamaCppInstance, model: String, _ call: CallScope) throws(DriverFailure) -> EngineClient {
        guard let card = try instance.engineCards(call).first(where: { $0.id == model }) else {
            throw .notFound("llama-server knows no model \"\(model)\"")
        }
        guard card.status?.value == "loaded", let args = card.status?.args, let flag = args.firstIndex(of: "--port"),
            flag + 1 < args.count, let port = Int(args[flag + 1]), (1...65535).contains(port)
        else {
            throw .conflict("model \"\(model)\" is not running (status \(card.status?.value ?? "unknown")): load it first")
        }
        return instance.engine.retargeted(to: "http://127.0.0.1:\(port)")
    }

    // MARK: Extension operations (POST /v1/extensions/llamacpp.lora_scale, ...)

    typealias ScaleFunction = @convention(c) (
        OpaquePointer?, UnsafePointer<ert_call>?, UnsafeMutablePointer<ert_error>?, UnsafePointer<CChar>?, Int64,
        UnsafeMutablePointer<Double>?
    ) -> ert_status
    typealias SetScaleFunction = @convention(c) (
        OpaquePointer?, UnsafePointer<ert_call>?, UnsafeMutablePointer<ert_error>?, UnsafePointer<CChar>?, Int64, Double,
        UnsafeMutablePointer<Double>?
    ) -> ert_status

    static let scaleFunction: ScaleFunction = { instance, call, error, model, id, result in
        DriverExport.extensionCall(LlamaCppInstance.self, instance, call, error) { instance, scope throws(DriverFailure) in
            result?.pointee = try scale(of: instance, model: model.map { String(cString: $0) } ?? "", id: id, scope)
        }
    }

    static let setScaleFunction: SetScaleFunction = { instance, call, error, model, id, scale, result in
        DriverExport.extensionCall(LlamaCppInstance.self, instance, call, error) { instance, scope throws(DriverFailure) in
            result?.pointee = try setScale(of: instance, model: model.map { String(cString: $0) } ?? "", id: id, scale: scale, scope)
        }
    }

    static let extensions: [ExtensionSpec] = [
        ExtensionSpec(
            name: "llamacpp.lora_scale", description: "The scale of a preloaded LoRA adapter (model: \"\" on a single-model server)",
            result: .double, parameters: [("model", .string), ("id", .int64)],
            function: unsafeBitCast(scaleFunction, to: UnsafeRawPointer.self)),
        ExtensionSpec(
            name: "llamacpp.set_lora_scale",
            description: "Sets a preloaded LoRA adapter's scale, keeping the others'; answers the scale in effect (model: \"\" on a single-model server)",
            result: .double, mutating: true, parameters: [("model", .string), ("id", .int64), ("scale", .double)],
            function: unsafeBitCast(setScaleFunction, to: UnsafeRawPointer.self)),
    ]
}

extension LlamaCppInstance {
    struct AdapterRequest: Decodable {
        var lora_name: String
        var lora_path: String?
    }

    private static let preloadHint =
        "llama-server cannot load or unload LoRA adapters at run time: preload them with --lora A.gguf,B.gguf (--lora-init-without-apply to start at scale 0), then change scales with POST /v1/extensions/llamacpp.set_lora_scale"

    /// A "load" of an adapter already preloaded from the same path succeeds; anything else is
    /// what the engine cannot do.
    func loadAdapter(_ request: AdapterRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        guard !request.lora_name.isEmpty, let path = request.lora_path, !path.isEmpty else {
            throw .invalidArgument("lora_name and lora_path must not be empty")
        }
        if let adapter = try LoRAScales.adapters(of: self, call).first(where: { $0.name == request.lora_name }) {
            guard adapter.path == path else {
                throw .conflict("LoRA adapter '\(request.lora_name)' is preloaded from '\(adapter.path)', not '\(path)'")
            }
            return try DriverJSON.encode(
                MessageAnswer(message: "LoRA adapter '\(request.lora_name)' is preloaded from '\(path)' (id \(adapter.id), scale \(adapter.scale))"))
        }
        throw .unsupported(Self.preloadHint)
    }

    func unloadAdapter(_ request: AdapterRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        guard let adapter = try LoRAScales.adapters(of: self, call).first(where: { $0.name == request.lora_name }) else {
            throw .notFound("llama-server has no LoRA adapter '\(request.lora_name)'")
        }
        throw .unsupported("\(Self.preloadHint) (scale 0 turns adapter \(adapter.id) off)")
    }
}

import EngineDriverKit
import PluginABI

/// Router mode (`llama-server --models-dir DIR`, no `-m`): each model is a child server the
/// router starts and stops. `POST /models/load` only launches (status `loading`), so a load
/// waits for `loaded` or a failure within the call's deadline.
extension LlamaCppInstance {
    struct ModelRequest: Decodable {
        var model: String
        var model_path: String?
    }

    private static let singleModelHint =
        "this llama-server serves one model (-m): start it in router mode (--models-dir DIR or --models-preset INI, without -m) to load and unload models"

    func loadModel(_ request: ModelRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        guard try props(call).isRouter else { throw .unsupported(Self.singleModelHint) }
        if request.model_path != nil {
            throw .invalidArgument("llama-server loads models by name from its --models-dir or preset; model_path cannot be given")
        }
        struct Body: Encodable { var model: String }
        let reply = try engine.post("/models/load", json: Body(model: request.model), in: call)
        let message = EngineClient.errorMessage(reply)
        switch reply.status {
        case 200: break
        // Seen on build 11434: "model is already running" (loaded, loading or sleeping).
        case 400 where message.contains("already"): throw .conflict("model \"\(request.model)\" is already running: \(message)", upstream: 400)
        // An unknown model is the generic 404 "File Not Found", like a missing route.
        case 404: throw try unknownModel(request.model, call)
        default: throw engine.failure(reply, doing: "load model \(request.model)")
        }
        let status = try waitForStatus(of: request.model, until: ["loaded"], call)
        return try DriverJSON.encode(MessageAnswer(message: "llama-server model \"\(request.model)\" is \(status)"))
    }

    func unloadModel(_ request: ModelRequest, _ call: CallScope) throws(DriverFailure) -> [UInt8] {
        guard try props(call).isRouter else { throw .unsupported(Self.singleModelHint) }
        struct Body: Encodable { var model: String }
        let reply = try engine.post("/models/unload", json: Body(model: request.model), in: call)
        let message = EngineClient.errorMessage(reply)
        switch reply.status {
        case 200: break
        case 400 where message.contains("not found"): throw try unknownModel(request.model, call)
        case 400 where message.contains("not running"): throw .conflict("model \"\(request.model)\" is not running: \(message)", upstream: 400)
        case 404: throw try unknownModel(request.model, call)
        default: throw engine.failure(reply, doing: "unload model \(request.model)")
        }
        let status = try waitForStatus(of: request.model, until: ["unloaded"], call)
        return try DriverJSON.encode(MessageAnswer(message: "llama-server model \"\(request.model)\" is \(status)"))
    }

    private func unknownModel(_ model: String, _ call: CallScope) throws(DriverFailure) -> DriverFailure {
        let known = try engineCards(call).map(\.id)
        return .notFound("llama-server knows no model \"\(model)\" (its models: \(known.isEmpty ? "none" : known.joined(separator: ", ")))")
    }

    /// Polls the router's model list until the model reaches one of `states`, fails, or the
    /// call runs out of time.
    private func waitForStatus(of model: String, until states: Set<String>, _ call: CallScope) throws(DriverFailure) -> String {
        var last = "unknown"
        repeat {
            guard let card = try engineCards(call).first(where: { $0.id == model }) else {
                throw .notFound("model \"\(model)\" left llama-server's list")
            }
            last = card.status?.value ?? "unknown"
            if states.contains(last) { return last }
            if card.status?.failed == true {
                throw .upstream(
                    "llama-server could not start model \"\(model)\" (exit code \(card.status?.exit_code.map(String.init) ?? "unknown")); its log says why",
                    status: 200)
            }
        } while call.pause(milliseconds: 25)
        throw DriverFailure(ERT_STATUS_TIMEOUT, "model \"\(model)\" was still \(last) at the deadline")
    }
}

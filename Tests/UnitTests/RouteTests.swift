import Foundation
import HTTPTypes
import Host
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The routes in-process through HummingbirdTesting, against an engine in memory: what each
/// route decodes, which service call it makes, and how answers and errors are encoded.
@Suite struct RouteTests {
    private func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
    /// JSON routes refuse bodies of another content type (415).
    private let jsonType: HTTPFields = [.contentType: "application/json"]

    @Test func livenessNeverTouchesTheEngineAndReadinessReportsItsReason() async throws {
        let fixture = try RouterFixture()
        fixture.engine.setReady(false, reason: "warming up")
        try await fixture.test { client in
            let live = try await client.execute(uri: "/healthz", method: .get)
            #expect(live.status == .ok)
            #expect(live.text == #"{"status":"ok"}"#)
            let ready = try await client.execute(uri: "/ready", method: .get)
            #expect(ready.status == .serviceUnavailable)
            #expect(ready.text == #"{"reason":"engine default: warming up","status":"not ready"}"#)
        }
        #expect(fixture.engine.calls.isEmpty, "readiness goes through readiness(), liveness through nothing")
        fixture.engine.setReady(true)
        try await RouterFixture(engines: [fixture.engine]).test { client in
            let ready = try await client.execute(uri: "/ready", method: .get)
            #expect(ready.text == #"{"status":"ready"}"#)
        }
    }

    @Test func theSameLoadThroughBothRoutesIsOneFlightKey() async throws {
        let fixture = try RouterFixture()
        try await fixture.test { client in
            let compatible = try await client.execute(
                uri: "/v1/lora_adapter/load", method: .post, headers: jsonType, body: json(#"{"lora_name":"sql","lora_path":"/adapters/sql"}"#))
            #expect(compatible.status == .ok)
            #expect(compatible.text == "Success: LoRA adapter 'sql' loaded successfully from '/adapters/sql'.")
            #expect(compatible.headers[.contentType] == "text/plain; charset=utf-8")
            let native = try await client.execute(
                uri: "/v1/lora_adapters", method: .post, headers: jsonType, body: json(#"{"lora_name":"sql","lora_path":"/adapters/sql"}"#))
            #expect(native.status == .ok)
            let pinned = try await client.execute(
                uri: "/v1/lora_adapters", method: .post, headers: jsonType, body: json(#"{"lora_name":"sql","lora_path":"/adapters/sql","pinned":true}"#))
            #expect(pinned.status == .ok)
        }
        let loads = fixture.engine.calls.filter { $0.operation == .loadLoRAAdapter }
        #expect(loads.count == 3)
        #expect(loads[0].key == loads[1].key, "a compatible and a native load of the same adapter must share one flight")
        #expect(loads[0].key != loads[2].key, "a pinned load asks for something else")
        #expect(loads[0].body == #"{"lora_name":"sql","lora_path":"/adapters/sql"}"#)
        #expect(loads[2].body.contains(#""pinned":true"#))
    }

    @Test func badRequestsAreRefusedBeforeTheEngineIsCalled() async throws {
        let fixture = try RouterFixture()
        try await fixture.test { client in
            let cases: [(String, String, String)] = [
                ("/v1/lora_adapter/load", #"{"lora_name":"../x","lora_path":"/a"}"#, "invalid lora_name"),
                ("/v1/lora_adapter/load", #"{"lora_name":"a","lora_path":""}"#, "lora_path must not be empty"),
                ("/v1/lora_adapter/load", #"{"lora_name":"a","lora_path":"/a","artifact_url":"s3://b/k"}"#, "not both"),
                ("/v1/lora_adapter/load", #"{"lora_name":"a","lora_path":"/a","local_dir":"/x"}"#, "belongs to the artifact mode"),
                ("/v1/lora_adapters", #"{"lora_name":"a","lora_path":"/a","extra":1}"#, "unknown field \"extra\""),
                ("/v1/sleep", #"{"level":7}"#, "level must be 0, 1 or 2"),
                ("/v1/sleep", #"{"mode":"Wait"}"#, "must match [a-z0-9_]{1,32}"),
                ("/v1/sleep", #"{"tags":["a","b","c","d","e","f","g","h","i"]}"#, "at most 8 tags"),
                ("/v1/wake", #"{"tags":["kv cache"]}"#, "tag \"kv cache\""),
                ("/v1/pause", #"{"mode":""}"#, "mode \"\""),
                ("/v1/resume", #"{"mode":"abort"}"#, "unknown field \"mode\""),
                ("/v1/reset_cache", #"{"cache":"disk"}"#, "cache must be one of all, encoder, multimodal, prefix"),
                ("/v1/reload_weights", #"{"model_path":""}"#, "model_path must be 1 to 4096 bytes"),
                ("/v1/reload_weights", #"{"weight_version":"v 2"}"#, "weight_version must be"),
                ("/v1/lora_adapter/unload", #"{"lora_name":"a/b"}"#, "invalid lora_name"),
                ("/v1/lora_adapter/load", "{not json", "not valid JSON"),
                // Each check says what it found, in order: valid JSON (a string's escapes
                // included), an object, no key twice, no unknown field, then the fields' types.
                ("/v1/lora_adapter/load", #"{"lora_name":"a","lora_path":"/a\q"}"#, "not valid JSON"),
                ("/v1/lora_adapter/unload", #"{"lora_name":"\q"}"#, "not valid JSON"),
                ("/v1/lora_adapter/load", #"["a"]"#, "must be a JSON object, not array"),
                ("/v1/lora_adapter/load", #"{"lora_name":5,"lora_path":"/a"}"#, "field \"lora_name\" must be a string"),
                ("/v1/lora_adapter/load", #"{"lora_name":"a"}"#, "missing field \"lora_path\""),
                ("/v1/lora_adapter/load", #"{"lora_name":"a","lora_path":"/a","credentials":{"k":1}}"#, "belongs to the artifact mode"),
                ("/v1/lora_adapter/load", #"{"lora_name":"a","lora_path":"/a","extra":1}"#, "unknown field \"extra\""),
                ("/v1/lora_adapter/unload", #"{"lora_name":"a","lora_int_id":"7"}"#, "field \"lora_int_id\" must be an integer"),
                ("/v1/lora_adapter/unload", #"{"lora_name":"a","lora_name":"b"}"#, "appears twice"),
            ]
            for (uri, body, message) in cases {
                let response = try await client.execute(uri: uri, method: .post, headers: jsonType, body: json(body))
                #expect(response.status == .badRequest, "\(uri) \(body)")
                #expect(response.envelope?.type == "invalid_argument", "\(uri) \(body)")
                #expect(response.envelope?.message.contains(message) == true, "\(uri) \(body): \(response.text)")
            }
            let large = try await client.execute(
                uri: "/v1/lora_adapters", method: .post, headers: jsonType, body: json(#"{"lora_name":"\#(String(repeating: "a", count: 5000))"}"#))
            #expect(large.status == .contentTooLarge)
            #expect(large.envelope?.code == 413)
        }
        #expect(fixture.engine.calls.isEmpty)
    }

    /// The state routes pass the checked body to their operation, as the client sent it.
    @Test func stateRoutesCallTheirOperations() async throws {
        let fixture = try RouterFixture()
        try await fixture.test { client in
            let cases: [(String, String, DriverOperation)] = [
                ("/v1/sleep", #"{"level":0,"mode":"wait","tags":["kv_cache"]}"#, .sleep),
                ("/v1/wake", #"{"tags":["weights"]}"#, .wake),
                ("/v1/pause", #"{"mode":"keep"}"#, .pause),
                ("/v1/resume", "{}", .resume),
                ("/v1/reload_weights", #"{"model_path":"/models/m","weight_version":"v2"}"#, .reloadWeights),
                ("/v1/reset_cache", #"{"cache":"all"}"#, .resetCache),
            ]
            for (uri, body, _) in cases {
                let response = try await client.execute(uri: uri, method: .post, headers: jsonType, body: json(body))
                #expect(response.status == .ok, "\(uri): \(response.text)")
            }
            #expect(fixture.engine.calls.map(\.operation) == cases.map(\.2))
            #expect(fixture.engine.calls.first?.body == #"{"level":0,"mode":"wait","tags":["kv_cache"]}"#)
            #expect(fixture.engine.calls.last?.body == #"{"cache":"all"}"#)
        }
    }

    @Test func engineErrorsAreRenderedOnceInTheEnvelope() async throws {
        let fixture = try RouterFixture()
        let kinds: [(RuntimeError, HTTPResponse.Status, String)] = [
            (RuntimeError(.notFound, "adapter sql is not loaded", upstreamHTTPStatus: 404), .notFound, "not_found"),
            (RuntimeError(.unsupported, "start vLLM with --enable-lora"), .notImplemented, "unsupported"),
            (RuntimeError(.unavailable, "connection refused"), .serviceUnavailable, "unavailable"),
            (RuntimeError(.upstream, "engine answered 500"), .badGateway, "upstream_error"),
            (RuntimeError(.timeout, "deadline"), .gatewayTimeout, "timeout"),
            (RuntimeError(.conflict, "busy"), .conflict, "conflict"),
        ]
        try await fixture.test { client in
            for (error, status, type) in kinds {
                fixture.engine.fail(.unloadLoRAAdapter, with: error)
                let response = try await client.execute(uri: "/v1/lora_adapter/unload", method: .post, headers: jsonType, body: json(#"{"lora_name":"sql"}"#))
                #expect(response.status == status)
                #expect(response.envelope == ErrorEnvelope(message: error.message, type: type, code: Int(status.code)))
                #expect(response.headers[.contentType] == "application/json")
            }
            let unknown = try await client.execute(uri: "/v1/nothing", method: .get)
            #expect(unknown.status == .notFound)
            #expect(unknown.envelope?.message == "no route GET /v1/nothing")
            let engine = try await client.execute(uri: "/v1/engines/other/info", method: .get)
            #expect(engine.envelope == ErrorEnvelope(message: "no engine named \"other\"", type: "not_found", code: 404))
        }
    }

    @Test func unloadSendsTheIntIDAndTheNativeRouteNeverCleansUp() async throws {
        let fixture = try RouterFixture()
        try await fixture.test { client in
            let compatible = try await client.execute(
                uri: "/v1/lora_adapter/unload", method: .post, headers: jsonType, body: json(#"{"lora_name":"sql","lora_int_id":3}"#))
            #expect(compatible.text == #"{"message":"Successfully unloaded adapter sql","status":"success"}"#)
            let native = try await client.execute(uri: "/v1/lora_adapters/sql", method: .delete)
            #expect(native.status == .ok)
        }
        let unloads = fixture.engine.calls.filter { $0.operation == .unloadLoRAAdapter }
        #expect(unloads.map(\.body) == [#"{"lora_int_id":3,"lora_name":"sql"}"#, #"{"lora_name":"sql"}"#])
        #expect(unloads[0].key == unloads[1].key)
    }

    @Test func adaptersComeFromTheModelCardsAndAMalformedListIsAnUpstreamError() async throws {
        let fixture = try RouterFixture()
        fixture.engine.answer(
            .listModels,
            with: #"{"object":"list","data":[{"id":"base","root":"/m"},{"id":"sql","root":"/a/sql","parent":"base"}]}"#)
        try await fixture.test { client in
            let models = try await client.execute(uri: "/v1/models", method: .get)
            #expect(models.text.contains(#""id":"sql""#), "the model list passes through")
            let adapters = try await client.execute(uri: "/v1/lora_adapters", method: .get)
            #expect(adapters.text == #"{"data":[{"base_model":"base","name":"sql","path":"/a/sql"}],"object":"list"}"#)
            fixture.engine.answer(.listModels, with: #"{"models":[]}"#)
            let broken = try await client.execute(uri: "/v1/engines/default/lora_adapters", method: .get)
            #expect(broken.status == .badGateway)
            #expect(broken.envelope?.type == "upstream_error")
        }
    }

    @Test func engineListsNameTheDefaultAndNamedRoutesReachTheirEngine() async throws {
        let fixture = try RouterFixture(engines: [FakeEngine(name: "main"), FakeEngine(name: "draft")])
        fixture.engines[1].answer(.engineInfo, with: #"{"version":"x"}"#)
        try await fixture.test { client in
            let list = try await client.execute(uri: "/v1/engines", method: .get)
            struct List: Decodable {
                struct Entry: Decodable {
                    var name: String
                    var `default`: Bool
                }
                var data: [Entry]
            }
            let entries = try JSONDecoder().decode(List.self, from: Data(list.text.utf8)).data
            #expect(entries.map(\.name) == ["main", "draft"])
            #expect(entries.map(\.default) == [true, false])
            let info = try await client.execute(uri: "/v1/engines/draft/info", method: .get)
            #expect(info.text.contains(#""info":{"version":"x"}"#))
            #expect(info.text.contains(#""default":false"#))
            _ = try await client.execute(uri: "/v1/engines/draft/sleep", method: .post, headers: jsonType, body: json(#"{"level":2}"#))
        }
        #expect(fixture.engines[1].calls.map(\.operation) == [.engineInfo, .sleep])
        #expect(fixture.engines[1].calls.last?.body == #"{"level":2}"#)
        #expect(fixture.engines[0].calls.isEmpty)
    }

    @Test func authGuardsEverythingButProbes() async throws {
        let fixture = try RouterFixture()
        try await fixture.test(authToken: "s3cret") { client in
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/ready", method: .get).status == .ok)
            let refused = try await client.execute(uri: "/v1/models", method: .get)
            #expect(refused.status == .unauthorized)
            #expect(refused.envelope?.type == "unauthorized")
            let allowed = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer s3cret"])
            #expect(allowed.status == .ok)
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer s3cret"]).text == "# fixed\n")
        }
        #expect(fixture.engine.calls.map(\.operation) == [.listModels])
    }

    @Test func theBearerSchemeIsCaseInsensitive() async throws {
        let fixture = try RouterFixture()
        try await fixture.test(authToken: "s3cret") { client in
            for header in ["bearer s3cret", "BEARER s3cret", "Bearer   s3cret"] {
                let response = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: header])
                #expect(response.status == .ok, "\(header)")
            }
            for header in ["Basic s3cret", "Bearers3cret", "bearer s3cre", "s3cret"] {
                let response = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: header])
                #expect(response.status == .unauthorized, "\(header)")
            }
        }
        #expect(fixture.engine.calls.count == 3)
    }

    /// Issue 12 #14: a cross-site form or text/plain POST must not reach a JSON route, nor a
    /// body whose duplicated key two readers would read differently.
    @Test func jsonRoutesNeedAJSONContentTypeAndRefuseDuplicateKeys() async throws {
        let fixture = try RouterFixture()
        let load = #"{"lora_name":"sql","lora_path":"/adapters/sql"}"#
        try await fixture.test { client in
            for type in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
                let refused = try await client.execute(
                    uri: "/v1/lora_adapter/load", method: .post, headers: [.contentType: type], body: json(load))
                #expect(refused.status == .unsupportedMediaType, "\(type)")
                #expect(refused.envelope?.type == "unsupported_media_type")
            }
            let untyped = try await client.execute(uri: "/v1/lora_adapter/load", method: .post, body: json(load))
            #expect(untyped.status == .unsupportedMediaType)
            for type in ["application/json", "Application/JSON; charset=utf-8", "application/merge-patch+json"] {
                let accepted = try await client.execute(
                    uri: "/v1/lora_adapter/load", method: .post, headers: [.contentType: type], body: json(load))
                #expect(accepted.status == .ok, "\(type): \(accepted.text)")
            }
            for body in [
                #"{"lora_name":"a","lora_name":"b","lora_path":"/p"}"#, #"{"lora_name":"a","lora_path":"/p","lor\u0061_name":"b"}"#,
            ] {
                let duplicated = try await client.execute(uri: "/v1/lora_adapter/load", method: .post, headers: jsonType, body: json(body))
                #expect(duplicated.status == .badRequest, "\(body)")
                #expect(duplicated.text.contains("appears twice"))
            }
            // The same key in two different objects is fine.
            let nested = try await client.execute(
                uri: "/v1/model/download", method: .post, headers: jsonType,
                body: json(#"{"model_uri":"/etc","download_extra_config":{"model_uri":"x"}}"#))
            #expect(!nested.text.contains("appears twice"), "\(nested.text)")
        }
        #expect(fixture.engine.calls.filter { $0.operation == .loadLoRAAdapter }.count == 3)
    }

    @Test func headAnswersGetRoutesAndAWrongMethodIs405WithAllow() async throws {
        let fixture = try RouterFixture()
        try await fixture.test { client in
            let head = try await client.execute(uri: "/v1/models", method: .head)
            #expect(head.status == .ok)
            #expect(head.body.readableBytes == 0)
            #expect(head.headers[.contentType] == "application/json")
            #expect(try await client.execute(uri: "/healthz", method: .head).status == .ok)
            let wrong = try await client.execute(uri: "/healthz", method: .delete)
            #expect(wrong.status == .methodNotAllowed)
            #expect(wrong.headers[.allow] == "GET, HEAD")
            #expect(wrong.envelope?.type == "method_not_allowed")
            let withParameter = try await client.execute(uri: "/v1/downloads/dl-1", method: .post)
            #expect(withParameter.status == .methodNotAllowed)
            #expect(withParameter.headers[.allow] == "DELETE, GET, HEAD")
            #expect(try await client.execute(uri: "/v1/nothing-here", method: .delete).status == .notFound)
        }
    }

    @Test func thirtyConcurrentRequestsThroughTheSeam() async throws {
        let fixture = try RouterFixture()
        try await fixture.test { client in
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for index in 0..<30 {
                    group.addTask {
                        let response = try await client.execute(
                            uri: "/v1/lora_adapters", method: .post, headers: jsonType, body: ByteBuffer(string: #"{"lora_name":"a\#(index)","lora_path":"/p/\#(index)"}"#))
                        return (Int(response.status.code), "a\(index)")
                    }
                }
                for try await (status, name) in group { #expect(status == 200, "\(name)") }
            }
        }
        let keys = Set(fixture.engine.calls.compactMap(\.key))
        #expect(keys.count == 30)
    }

    @Test func downloadRoutesApplyTheManagersPolicy() async throws {
        let fixture = try RouterFixture()
        try await fixture.test { client in
            let outside = try await client.execute(uri: "/v1/model/download", method: .post, headers: jsonType, body: ByteBuffer(string: #"{"model_uri":"/etc"}"#))
            #expect(outside.status == .forbidden)
            #expect(outside.envelope?.type == "permission_denied")
            let unknown = try await client.execute(uri: "/v1/downloads/nope", method: .get)
            #expect(unknown.envelope == ErrorEnvelope(message: "no download \"nope\"", type: "not_found", code: 404))
            let cancel = try await client.execute(uri: "/v1/downloads/nope", method: .delete)
            #expect(cancel.status == .notFound)
            let list = try await client.execute(uri: "/v1/model/list", method: .get)
            #expect(list.text == #"{"data":[],"object":"list"}"#)
        }
    }
}

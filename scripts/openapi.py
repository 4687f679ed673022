#!/usr/bin/env python3
"""Writes the OpenAPI document of engine-runtime's HTTP API.

The document is built here once and written to two places that must agree:
  docs/openapi.json                           (for people and tools)
  Sources/Host/Server/OpenAPIDocument.swift   (served at GET /openapi.json)
Run it after changing a route; a test checks that the served document equals docs/openapi.json
and schemathesis checks the running server against it.

Usage: scripts/openapi.py [--check]   (--check: exit 1 if the files are out of date)
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$"


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema, description=None):
    content = {"content": {"application/json": {"schema": schema}}}
    if description:
        content["description"] = description
    return content


def error(description):
    return {"description": description, **json_body(ref("Error"))}


ERRORS = {
    "400": error("The request is invalid (malformed JSON, unknown or missing field, invalid name)."),
    "401": error("A bearer token is required (authentication is on)."),
    "403": error("Refused: a path outside the download roots (symbolic links resolved), a host not allowed, or the source denied access."),
    "404": error("The engine, adapter, artifact or route is unknown."),
    "409": error("Conflict: already loaded elsewhere, or the engine is busy (retry later); for downloads, the target holds another source's artifact or data the runtime did not download, or the download was cancelled."),
    "413": error("The request body is larger than the limit."),
    "415": error("The request has a body that is not declared JSON (Content-Type: application/json is required)."),
    "501": error("The engine or driver cannot do this; the message says which setting to change."),
    "502": error("The engine answered with an error or garbage; its message is kept."),
    "503": error("The engine is not reachable or not ready, or too many request bodies are being received at once (retry)."),
    "504": error("The engine did not answer before the deadline (counted from the request's arrival, time queued behind another change included)."),
    "507": error("No space left (or another write error) in the download directory; partial data is kept."),
}


def errors(*codes):
    return {code: ERRORS[code] for code in codes}


ENGINE_ERRORS = ("401", "404", "502", "503", "504")
MUTATION_ERRORS = ("400", "401", "404", "409", "413", "415", "501", "502", "503", "504")
DOWNLOAD_ERRORS = ("400", "401", "403", "404", "409", "413", "415", "502", "504", "507")


def engine_param():
    return {"name": "engine", "in": "path", "required": True, "example": "default",
            "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
            "description": "An engine name from GET /v1/engines ('default' when configured from INFERENCE_ENGINE*)."}


def native_paths():
    """The per-engine routes, for the default engine (/v1/...) and by name (/v1/engines/{engine}/...)."""
    routes = {
        "info": {"get": {"summary": "Engine and driver information", "operationId": "engineInfo",
                         "responses": {"200": json_body(ref("EngineDescription"), "The engine."), **errors(*ENGINE_ERRORS)}}},
        "lora_adapters": {
            "get": {"summary": "LoRA adapters loaded in the engine", "operationId": "listAdapters",
                    "responses": {"200": json_body(ref("AdapterList"), "The adapters."), **errors(*ENGINE_ERRORS)}},
            "post": {"summary": "Load a LoRA adapter from a path the engine can read", "operationId": "loadAdapter",
                     "requestBody": {"required": True, **json_body(ref("AdapterLoad"))},
                     "responses": {"200": json_body(ref("Message"), "Loaded (or already loaded from the same path)."),
                                   **errors(*MUTATION_ERRORS)}},
        },
        "lora_adapters/{adapter}": {
            "delete": {"summary": "Unload a LoRA adapter", "operationId": "unloadAdapter",
                       "parameters": [{"name": "adapter", "in": "path", "required": True,
                                       "schema": {"type": "string", "pattern": NAME_PATTERN}}],
                       "responses": {"200": json_body(ref("Message"), "Unloaded."), **errors(*MUTATION_ERRORS)}}},
        "sleep": {"post": {"summary": "Release accelerator memory (vLLM sleep, SGLang release_memory_occupation)",
                           "operationId": "sleep", "requestBody": json_body(ref("Sleep")),
                           "description": "vLLM: level 0 pauses scheduling, 1 offloads weights, 2 drops all; mode (abort, wait, "
                                          "keep; default wait) says what happens to requests in flight; tags [\"kv_cache\"] "
                                          "alone frees only the KV cache (after a pause). SGLang: tags (weights, kv_cache, "
                                          "cuda_graph) choose what is released; it has no level 0 and no mode (501).",
                           "responses": {"200": json_body(ref("StateAnswer"), "Asleep."), **errors(*MUTATION_ERRORS)}}},
        "wake": {"post": {"summary": "Restore accelerator memory", "operationId": "wake",
                          "description": "With tags, only those are restored: vLLM then answers status sleeping until all are.",
                          "requestBody": json_body(ref("Wake")),
                          "responses": {"200": json_body(ref("StateAnswer"), "Awake, or partly (status sleeping)."),
                                        **errors(*MUTATION_ERRORS)}}},
        "pause": {"post": {"summary": "Pause generation (vLLM /pause, SGLang /pause_generation)", "operationId": "pause",
                           "description": "mode: vLLM abort, wait (default) or keep; SGLang abort, retract (default) or in_place.",
                           "requestBody": json_body(ref("Pause")),
                           "responses": {"200": json_body(ref("Message"), "Paused."), **errors(*MUTATION_ERRORS)}}},
        "resume": {"post": {"summary": "Resume generation after a pause", "operationId": "resume",
                            "requestBody": json_body({"type": "object", "additionalProperties": False}),
                            "responses": {"200": json_body(ref("Message"), "Resumed."), **errors(*MUTATION_ERRORS)}}},
        "reload_weights": {"post": {"summary": "Reload the model weights from disk (SGLang update_weights_from_disk; vLLM: 501)",
                                    "operationId": "reloadWeights", "requestBody": json_body(ref("ReloadWeights")),
                                    "responses": {"200": json_body(ref("Message"), "Reloaded."), **errors(*MUTATION_ERRORS)}}},
        "models/load": {"post": {"summary": "Load a model by name (llama-server router mode; 501 on single-model engines)",
                                 "operationId": "loadModel", "requestBody": {"required": True, **json_body(ref("ModelName"))},
                                 "description": "Waits until the engine reports the model loaded. 409 when it already runs, 404 "
                                                "when the engine knows no such model.",
                                 "responses": {"200": json_body(ref("Message"), "Loaded."), **errors(*MUTATION_ERRORS)}}},
        "models/unload": {"post": {"summary": "Unload a model by name (llama-server router mode)", "operationId": "unloadModel",
                                   "requestBody": {"required": True, **json_body(ref("ModelName"))},
                                   "responses": {"200": json_body(ref("Message"), "Unloaded."), **errors(*MUTATION_ERRORS)}}},
        "reset_cache": {"post": {"summary": "Reset a cache: prefix (default), multimodal, encoder or all (409 while requests hold it)",
                                 "operationId": "resetCache", "requestBody": json_body(ref("ResetCache")),
                                 "responses": {"200": json_body(ref("Message"), "Reset."), **errors(*MUTATION_ERRORS)}}},
        "extensions/{operation}": {
            "post": {"summary": "Call a typed vendor extension operation of the engine's driver", "operationId": "callExtension",
                     "description": "Arguments are a JSON object of the operation's parameters (see GET /v1/drivers); they are "
                                    "checked against the declaration before anything is called.",
                     "parameters": [{"name": "operation", "in": "path", "required": True,
                                     "schema": {"type": "string", "pattern": "^[a-z0-9_.]{1,64}$"}}],
                     "requestBody": json_body({"type": "object"}),
                     "responses": {"200": json_body(ref("ExtensionResult"), "The operation's result."),
                                   **errors(*MUTATION_ERRORS)}}},
    }
    paths = {}
    for suffix, item in routes.items():
        paths[f"/v1/{suffix}"] = json.loads(json.dumps(item))
        named = json.loads(json.dumps(item))
        for operation in named.values():
            operation["operationId"] += "ByEngine"
            operation["parameters"] = [engine_param()] + operation.get("parameters", [])
        paths[f"/v1/engines/{{engine}}/{suffix}"] = named
    paths["/v1/engines/{engine}/models"] = {"get": {
        "summary": "The engine's model list (passed through)", "operationId": "listModelsByEngine", "parameters": [engine_param()],
        "responses": {"200": json_body(ref("ModelList"), "The engine's OpenAI model list."), **errors(*ENGINE_ERRORS)}}}
    paths["/v1/engines/{engine}/ready"] = {"get": {
        "summary": "Readiness of one engine", "operationId": "readyByEngine", "parameters": [engine_param()],
        "responses": {"200": json_body(ref("Readiness"), "Ready."), "503": json_body(ref("Readiness"), "Not ready, with the reason."),
                      **errors("401", "404")}}}
    return paths


def runtime_paths():
    """AIBrix's model-runtime routes (docs/model-runtime.md); 404 with a reason while the runtime is off."""
    def detail(codes, description="AIBrix's {detail} beside the envelope's fields; 422 lists the body's problems."):
        return {code: {"description": description, **json_body(ref("RuntimeError"))} for code in codes}
    op_errors = detail(("401", "404", "409", "413", "415", "422", "500", "502", "503", "504"))
    operation = {"200": json_body(ref("RuntimeOperationAnswer"), "Done, or replayed (applied false)."), **op_errors}
    op_id = {"type": "string", "minLength": 1, "maxLength": 1024}
    return {
        "/v1/runtime/models/activate": {"post": {
            "summary": "Launch an engine for a model (AIBrix ModelClaim); answers once the launch is under way",
            "operationId": "runtimeActivate", "requestBody": {"required": True, **json_body(ref("RuntimeActivate"))},
            "responses": {"200": json_body(ref("RuntimeActivateAnswer"), "Launching (or already launched with the same spec)."),
                          **{code: json_body(ref("RuntimeActivateAnswer"), "status error, with the message.")
                             for code in ("400", "409", "500", "503")},
                          **detail(("401", "404", "413", "415", "422"))}}},
        "/v1/runtime/models/deactivate": {"post": {
            "summary": "Stop a model's engine (SIGTERM, grace period, SIGKILL) and forget it; unknown models are a no-op",
            "operationId": "runtimeDeactivate",
            "requestBody": {"required": True, **json_body({"type": "object", "required": ["model_name"], "additionalProperties": False,
                                                           "properties": {"model_name": {"type": "string"}, "mode": {"type": "string"}}})},
            "responses": {"200": json_body(ref("Status"), "Stopped."), **detail(("401", "404", "413", "415", "422"))}}},
        "/v1/runtime/models/kv-limit": {"post": {
            "summary": "Set a model's KV-cache limit in its kvcached segment (409 while the engine has none yet)",
            "operationId": "runtimeKVLimit",
            "requestBody": {"required": True, **json_body({"type": "object", "required": ["model_name", "limit_bytes", "operation_id"],
                                                           "additionalProperties": False, "properties": {
                                                               "model_name": {"type": "string"}, "limit_bytes": {"type": "integer", "minimum": 0},
                                                               "operation_id": op_id}})},
            "responses": operation}},
        "/v1/runtime/models/sleep": {"post": {
            "summary": "Put an active model's engine to sleep through its driver (409 where the engine cannot)",
            "operationId": "runtimeSleep",
            "requestBody": {"required": True, **json_body({"type": "object", "required": ["model_name", "operation_id"],
                                                           "additionalProperties": False, "properties": {
                                                               "model_name": {"type": "string"}, "level": {"type": "integer", "minimum": 1, "maximum": 2},
                                                               "operation_id": op_id}})},
            "responses": operation}},
        "/v1/runtime/models/wake": {"post": {
            "summary": "Wake a sleeping model's engine (phase booting until it answers ready)", "operationId": "runtimeWake",
            "requestBody": {"required": True, **json_body({"type": "object", "required": ["model_name", "operation_id"],
                                                           "additionalProperties": False, "properties": {
                                                               "model_name": {"type": "string"}, "operation_id": op_id}})},
            "responses": operation}},
        "/v1/runtime/models": {"get": {
            "summary": "Every launched model with its phase, readiness, KV numbers, download progress and log tail",
            "operationId": "runtimeModels",
            "responses": {"200": json_body({"type": "object", "required": ["models"], "properties": {
                "models": {"type": "array", "items": {"type": "object", "required": ["model_name", "port", "ipc_name", "phase", "ready"]}}}},
                "The models."), **detail(("401", "404"))}}},
        "/v1/runtime/snapshot": {"get": {
            "summary": "The controller's view: accelerators (NVML), models with readiness, KV and request activity, cached artifacts",
            "operationId": "runtimeSnapshot",
            "responses": {"200": json_body({"type": "object", "required": ["observed_at", "accelerators", "models", "cached_artifacts"]},
                                           "The snapshot."), **detail(("401", "404"))}}},
    }


def document():
    paths = {
        "/healthz": {"get": {"summary": "Liveness (never touches an engine)", "operationId": "healthz", "security": [],
                             "responses": {"200": json_body(ref("Status"), "Alive.")}}},
        "/ready": {"get": {"summary": "Readiness: every engine answers its health check", "operationId": "ready", "security": [],
                           "responses": {"200": json_body(ref("Readiness"), "Ready."),
                                         "503": json_body(ref("Readiness"), "Not ready, with the reason.")}}},
        "/metrics": {"get": {"summary": "Prometheus text 0.0.4: the standard llm_engine_* set, the engines' own series and engine_runtime_*",
                             "operationId": "metrics",
                             "responses": {"200": {"description": "The exposition.",
                                                   "content": {"text/plain": {"schema": {"type": "string"}}}},
                                           **errors("401")}}},
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
                                  "responses": {"200": json_body({"type": "object"}, "The OpenAPI document."), **errors("401")}}},
        "/v1/models": {"get": {"summary": "The default engine's model list (passed through; LoRA adapters have a parent)",
                               "operationId": "listModels",
                               "responses": {"200": json_body(ref("ModelList"), "The engine's OpenAI model list."),
                                             **errors(*ENGINE_ERRORS)}}},
        "/v1/lora_adapter/load": {"post": {
            "summary": "Load a LoRA adapter into the default engine (AIBrix-compatible)", "operationId": "compatLoadAdapter",
            "description": "Direct mode {lora_name, lora_path} answers AIBrix's plain-text line; artifact mode "
                           "{lora_name, artifact_url, ...} answers JSON. Concurrent identical loads make one engine call.",
            "requestBody": {"required": True, **json_body({"oneOf": [ref("DirectLoad"), ref("ArtifactLoad")]})},
            "responses": {"200": {"description": "Loaded.",
                                  "content": {"text/plain": {"schema": {"type": "string"}},
                                              "application/json": {"schema": ref("ArtifactLoadResult")}}},
                          **errors(*MUTATION_ERRORS), **errors("403", "507")}}},
        "/v1/lora_adapter/unload": {"post": {
            "summary": "Unload a LoRA adapter from the default engine (AIBrix-compatible); engine errors are reported",
            "operationId": "compatUnloadAdapter",
            "requestBody": {"required": True, **json_body(ref("CompatUnload"))},
            "responses": {"200": json_body(ref("UnloadResult"), "Unloaded."), **errors(*MUTATION_ERRORS)}}},
        "/v1/model/download": {"post": {
            "summary": "Start (or join) a model download (AIBrix-compatible)", "operationId": "downloadModel",
            "description": "Answers once the file list is known: a missing repository or bucket is reported at once, the "
                           "transfer goes on in the background (follow it with download_id).",
            "requestBody": {"required": True, **json_body(ref("ModelDownload"))},
            "responses": {"200": json_body(ref("ModelStatusCard"), "Downloading, or already downloaded."), **errors(*DOWNLOAD_ERRORS)}}},
        "/v1/model/list": {"get": {
            "summary": "Models under a download directory and their status (AIBrix-compatible)", "operationId": "listDownloadedModels",
            "description": "local_dir comes from the query or, as AIBrix sent it, a JSON body {local_dir}.",
            "parameters": [{"name": "local_dir", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": json_body(ref("ModelStatusList"), "The models."), **errors("400", "401", "403")}}},
        "/v1/downloads": {"get": {"summary": "Download jobs of this process (running and recent)", "operationId": "listDownloads",
                                  "responses": {"200": json_body(ref("DownloadList"), "The jobs."), **errors("401")}}},
        "/v1/downloads/{id}": {
            "get": {"summary": "One download job: state, bytes, files, rate, error", "operationId": "getDownload",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": json_body(ref("Download"), "The job."), **errors("401", "404")}},
            "delete": {"summary": "Cancel a running download (partial data is kept for a resume) or forget a finished one",
                       "operationId": "cancelDownload",
                       "description": "With discard=true, the job's staged data is removed too, so nothing stays on the volume.",
                       "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                                      {"name": "discard", "in": "query", "required": False, "schema": {"type": "boolean"}}],
                       "responses": {"200": json_body(ref("Download"), "The job as it ended."), **errors("401", "404", "409")}}},
        "/v1/model/staging": {"delete": {
            "summary": "Remove the staged data of a failed or cancelled download nothing is running", "operationId": "discardStaging",
            "description": "Works after a restart too, when no job is left to name; staged data untouched for "
                           "ENGINE_RUNTIME_STAGING_MAX_AGE is also removed on its own.",
            "parameters": [{"name": "model_name", "in": "query", "required": True, "schema": {"type": "string"}},
                           {"name": "local_dir", "in": "query", "required": False, "schema": {"type": "string"}}],
            "responses": {"200": json_body(ref("StagingRemoved"), "Removed."), **errors("400", "401", "403", "404", "409")}}},
        "/v1/engines": {"get": {"summary": "The configured engines", "operationId": "listEngines",
                                "responses": {"200": json_body(ref("EngineList"), "The engines."), **errors("401")}}},
        "/v1/drivers": {"get": {"summary": "Loaded drivers and the files that failed to load", "operationId": "listDrivers",
                                "responses": {"200": json_body(ref("DriverList"), "The drivers."), **errors("401")}}},
        "/v1/drivers/{name}": {"get": {"summary": "One driver", "operationId": "getDriver",
                                       "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                                       "responses": {"200": json_body(ref("Driver"), "The driver."), **errors("401", "404")}}},
    }
    paths.update(native_paths())
    name = {"type": "string", "pattern": NAME_PATTERN, "maxLength": 253,
            "description": "A Kubernetes object name (dots allowed); '..', '/' and leading dots are refused."}
    schemas = {
        "Error": {"type": "object", "required": ["object", "message", "type", "code"], "additionalProperties": False,
                  "properties": {"object": {"type": "string", "enum": ["error"]}, "message": {"type": "string"},
                                 "type": {"type": "string"}, "code": {"type": "integer"}}},
        "Status": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
        "RuntimeError": {"type": "object", "required": ["detail", "object", "message", "type", "code"], "properties": {
            "detail": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]},
            "object": {"type": "string", "enum": ["error"]}, "message": {"type": "string"}, "type": {"type": "string"},
            "code": {"type": "integer"}}},
        "RuntimeActivate": {"type": "object", "required": ["model_name", "artifact_url"], "additionalProperties": False, "properties": {
            "model_name": {"type": "string"}, "artifact_url": {"type": "string"}, "engine": {"type": "string"},
            "port": {"type": "integer"}, "ipc_name": {"type": ["string", "null"]},
            "credentials": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
            "engine_config": {"type": ["object", "null"], "additionalProperties": False, "properties": {
                "args": {"type": ["object", "null"], "additionalProperties": {"type": "string"}}}},
            "claim_ref": {"type": ["object", "null"], "required": ["namespace", "name", "uid"], "additionalProperties": False,
                          "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "uid": {"type": "string"}}},
            "additional_config": {"type": ["object", "null"], "additionalProperties": {"type": "string"}}}},
        "RuntimeActivateAnswer": {"type": "object", "required": ["status", "model_name", "port", "ipc_name"], "properties": {
            "status": {"type": "string", "enum": ["success", "error"]}, "model_name": {"type": "string"},
            "port": {"type": "integer"}, "ipc_name": {"type": "string"}, "message": {"type": ["string", "null"]}}},
        "RuntimeOperationAnswer": {"type": "object", "required": ["status", "model_name", "operation_id", "applied", "phase"],
                                   "properties": {"status": {"type": "string"}, "model_name": {"type": "string"},
                                                  "operation_id": {"type": "string"}, "applied": {"type": "boolean"},
                                                  "phase": {"type": "string", "enum": ["downloading", "booting", "active", "sleeping",
                                                                                       "restarting", "failed", "stopping"]}}},
        "Readiness": {"type": "object", "required": ["status"],
                      "properties": {"status": {"type": "string", "enum": ["ready", "not ready"]}, "reason": {"type": "string"}}},
        "ModelList": {"type": "object", "required": ["data"], "properties": {
            "object": {"type": "string"},
            "data": {"type": "array", "items": {"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string"}, "root": {"type": ["string", "null"]}, "parent": {"type": ["string", "null"]}}}}}},
        "DirectLoad": {"type": "object", "required": ["lora_name", "lora_path"], "additionalProperties": False,
                       "properties": {"lora_name": name, "lora_path": {"type": "string", "minLength": 1}}},
        "ArtifactLoad": {"type": "object", "required": ["lora_name", "artifact_url"], "additionalProperties": False,
                         "properties": {"lora_name": name,
                                        "artifact_url": {"type": "string", "minLength": 1,
                                                         "description": "hf://, huggingface://, s3://, tos://, gs://, gcs://, http(s):// "
                                                                        "(downloaded, then loaded), or a local path / file:// URL (loaded in place)."},
                                        "credentials_secret": {"type": "string"},
                                        "credentials": {"type": "object", "additionalProperties": {"type": "string"}},
                                        "additional_config": {"type": "object", "additionalProperties": {"type": "string"}},
                                        "local_dir": {"type": "string"}}},
        "ArtifactLoadResult": {"type": "object", "required": ["status", "message", "local_path"], "properties": {
            "status": {"type": "string"}, "message": {"type": "string"}, "local_path": {"type": "string"}, "engine_response": {}}},
        "ModelDownload": {"type": "object", "required": ["model_uri"], "additionalProperties": False, "properties": {
            "model_uri": {"type": "string", "minLength": 1, "description": "hf://org/name, org/name, s3://, tos://, gs://, gcs://, http(s)://, or a path inside the download roots."},
            "local_dir": {"type": "string", "description": "Base directory; must be inside the download roots (default DOWNLOADER_LOCAL_DIR)."},
            "model_name": {"type": "string", "description": "name or org/name (default: from the URI)."},
            "download_extra_config": {"type": "object", "description": "AIBrix's keys: num_threads, part_threshold, part_chunksize, "
                                      "allow_file_suffix, force_download, hf_token, hf_endpoint, hf_revision, ak, sk, endpoint, region ..."}}},
        "StagingRemoved": {"type": "object", "required": ["object", "model_root_path", "removed"], "properties": {
            "object": {"type": "string"}, "model_root_path": {"type": "string"}, "removed": {"type": "boolean"}}},
        "ModelStatusCard": {"type": "object", "required": ["model_name", "model_root_path", "source", "model_status"], "properties": {
            "model_name": {"type": "string"}, "model_root_path": {"type": "string"}, "source": {"type": "string"},
            "model_status": {"type": "string", "enum": ["not_exist", "downloading", "downloaded", "no_operation", "unknown", "failed"]},
            "download_id": {"type": "string"}}},
        "ModelStatusList": {"type": "object", "required": ["object", "data"],
                            "properties": {"object": {"type": "string"}, "data": {"type": "array", "items": ref("ModelStatusCard")}}},
        "Download": {"type": "object", "required": ["id", "source", "kind", "model_name", "local_path", "state", "bytes_done",
                                                    "bytes_total", "files_done", "files_total", "bytes_per_second", "created_at"],
                     "properties": {
                         "id": {"type": "string"}, "source": {"type": "string"}, "kind": {"type": "string"},
                         "model_name": {"type": "string"}, "local_path": {"type": "string"},
                         "state": {"type": "string", "enum": ["queued", "listing", "downloading", "verifying", "completed", "failed", "cancelled"]},
                         "bytes_done": {"type": "integer"}, "bytes_total": {"type": "integer"}, "files_done": {"type": "integer"},
                         "files_total": {"type": "integer"}, "bytes_per_second": {"type": "integer"},
                         "error": {"type": "string"}, "error_kind": {"type": "string"},
                         "created_at": {"type": "string"}, "finished_at": {"type": "string"}}},
        "DownloadList": {"type": "object", "required": ["object", "data"],
                         "properties": {"object": {"type": "string"}, "data": {"type": "array", "items": ref("Download")}}},
        "CompatUnload": {"type": "object", "required": ["lora_name"], "additionalProperties": False,
                         "properties": {"lora_name": name, "cleanup_local": {"type": "boolean"}, "lora_int_id": {"type": "integer"}}},
        "UnloadResult": {"type": "object", "required": ["status", "message"],
                         "properties": {"status": {"type": "string"}, "message": {"type": "string"}}},
        "AdapterLoad": {"type": "object", "required": ["lora_name", "lora_path"], "additionalProperties": False,
                        "properties": {"lora_name": name, "lora_path": {"type": "string", "minLength": 1},
                                       "load_inplace": {"type": "boolean"}, "pinned": {"type": "boolean"}}},
        "Message": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
        "Sleep": {"type": "object", "additionalProperties": False,
                  "properties": {"level": {"type": "integer", "minimum": 0, "maximum": 2},
                                 "mode": {"type": "string", "pattern": "^[a-z0-9_]{1,32}$"},
                                 "tags": {"type": "array", "maxItems": 8, "items": {"type": "string", "pattern": "^[a-z0-9_]{1,32}$"}}}},
        "Wake": {"type": "object", "additionalProperties": False,
                 "properties": {"tags": {"type": "array", "maxItems": 8, "items": {"type": "string", "pattern": "^[a-z0-9_]{1,32}$"}}}},
        "StateAnswer": {"type": "object", "required": ["message"], "properties": {
            "message": {"type": "string"}, "status": {"type": "string", "enum": ["sleeping", "awake"]},
            "level": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}}},
        "ModelName": {"type": "object", "additionalProperties": False, "required": ["model"],
                      "properties": {"model": {"type": "string", "pattern": NAME_PATTERN}}},
        "Pause": {"type": "object", "additionalProperties": False,
                  "properties": {"mode": {"type": "string", "pattern": "^[a-z0-9_]{1,32}$"}}},
        "ResetCache": {"type": "object", "additionalProperties": False,
                       "properties": {"cache": {"type": "string", "enum": ["prefix", "multimodal", "encoder", "all"]}}},
        "ReloadWeights": {"type": "object", "additionalProperties": False, "properties": {
            "model_path": {"type": "string", "minLength": 1, "maxLength": 4096},
            "load_format": {"type": "string", "pattern": "^[a-z0-9_]{1,32}$"},
            "weight_version": {"type": "string", "pattern": "^[!-~]{1,128}$"}}},
        "ExtensionResult": {"type": "object", "required": ["result"], "properties": {"result": {}}},
        "EngineDescription": {"type": "object", "required": ["name", "engine", "endpoint", "default", "driver"], "properties": {
            "name": {"type": "string"}, "engine": {"type": "string"}, "endpoint": {"type": "string"},
            "engine_version": {"type": "string"}, "default": {"type": "boolean"},
            "driver": {"type": "object", "required": ["name", "version"],
                       "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
            "info": {"description": "The driver's engine_info answer."}}},
        "EngineList": {"type": "object", "required": ["object", "data"],
                       "properties": {"object": {"type": "string"}, "data": {"type": "array", "items": ref("EngineDescription")}}},
        "AdapterList": {"type": "object", "required": ["object", "data"], "properties": {
            "object": {"type": "string"},
            "data": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "path": {"type": "string"}, "base_model": {"type": "string"}}}}}},
        "Driver": {"type": "object", "required": ["name", "version", "path", "abi_version", "engine_kinds", "capabilities",
                                                  "operations", "extension_operations", "can_launch"], "properties": {
            "name": {"type": "string"}, "version": {"type": "string"}, "description": {"type": "string"},
            "can_launch": {"type": "boolean", "description": "The model runtime can launch this driver's engine (ABI 1.3 plan_launch)."},
            "isolation": {"type": "object", "description": "Present when the driver runs in a host process of its own (--isolated-drivers).",
                          "required": ["mode", "restarts"], "properties": {
                              "mode": {"type": "string", "enum": ["process"]},
                              "pid": {"type": "integer", "description": "The host process; absent while it is being restarted."},
                              "restarts": {"type": "integer", "description": "Host processes started after the first."},
                              "last_exit": {"type": "string", "description": "Why the last host process ended, e.g. killed by signal 11 (SIGSEGV) during sleep."},
                              "last_exit_at": {"type": "integer", "description": "When it ended, Unix seconds."}}},
            "path": {"type": "string"}, "abi_version": {"type": "string"},
            "engine_kinds": {"type": "array", "items": {"type": "string"}},
            "capabilities": {"type": "array", "items": {"type": "string"}},
            "config_schema": {}, "operations": {"type": "array", "items": {"type": "string"}},
            "extension_operations": {"type": "array", "items": {"type": "object", "required": ["name", "parameters", "result_type", "mutating"],
                                                                 "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                                                                                "parameters": {"type": "array", "items": {"type": "object", "required": ["name", "type"], "properties": {
                                                                                    "name": {"type": "string"}, "type": {"type": "string", "enum": ["bool", "int64", "double", "string"]}}}},
                                                                                "result_type": {"type": "string", "enum": ["void", "bool", "int64", "double", "string"]},
                                                                                "mutating": {"type": "boolean"}}}}}},
        "DriverList": {"type": "object", "required": ["object", "data", "failures"], "properties": {
            "object": {"type": "string"}, "data": {"type": "array", "items": ref("Driver")},
            "failures": {"type": "array", "items": {"type": "object", "required": ["path", "error"],
                                                     "properties": {"path": {"type": "string"}, "error": {"type": "string"}}}}}},
    }
    paths.update(runtime_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "engine-runtime management API", "version": "0.1.0",
                 "description": "One management API for every inference engine; AIBrix runtime sidecar compatible. "
                                "Errors use one envelope: {object: error, message, type, code}."},
        "servers": [{"url": "http://localhost:8080"}],
        "security": [{"bearer": []}, {}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "Required on every route but /healthz and /ready when ENGINE_RUNTIME_AUTH_TOKEN is set."}}},
    }


def main():
    text = json.dumps(document(), indent=2, sort_keys=True) + "\n"
    swift = (
        "// Generated by scripts/openapi.py from the same document as docs/openapi.json. Do not edit.\n\n"
        "/// The OpenAPI document served at `GET /openapi.json`.\n"
        "enum OpenAPIDocument {\n"
        "    static let json = #\"\"\"\n" + text + "\n\"\"\"#\n}\n"
    )
    targets = {ROOT / "docs/openapi.json": text, ROOT / "Sources/Host/Server/OpenAPIDocument.swift": swift}
    if "--check" in sys.argv:
        stale = [str(path) for path, content in targets.items() if not path.exists() or path.read_text() != content]
        if stale:
            sys.exit("out of date (run scripts/openapi.py): " + ", ".join(stale))
        return
    for path, content in targets.items():
        path.write_text(content)


if __name__ == "__main__":
    main()

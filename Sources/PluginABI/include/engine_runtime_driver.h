/*
 * engine_runtime_driver.h -- the EngineRuntime driver ABI, version 1.
 *
 * This header is the whole contract between the `engine-runtime` host and an engine driver
 * shared library (`.so`). It is pure C11 (and valid C++), includes only <stddef.h>, <stdint.h>
 * and <stdbool.h>, and needs nothing else at run time: a driver written in plain C links only
 * libc.
 *
 * ---------------------------------------------------------------------------------------------
 * RULES (read these first)
 * ---------------------------------------------------------------------------------------------
 * 1. One exported symbol. A driver exports exactly one function, `ert_driver_entry_v1`
 *    (type `ert_driver_entry_v1_fn`). The ABI major version is part of its name: a future
 *    incompatible ABI 2 uses `ert_driver_entry_v2`, and one `.so` may export both.
 * 2. Handshake both ways. The host passes `ert_host_info` (magic, its ABI major.minor); the
 *    driver returns `ert_driver_descriptor` (magic, the ABI major.minor it was built against,
 *    and the lowest host minor it needs). The host refuses a driver with another major, or one
 *    whose `min_host_abi_minor` is above the host's minor. The driver may refuse the host by
 *    returning NULL with a reason in `error`.
 * 3. `struct_size` first in every struct. Structs only grow at the end, with a minor version
 *    bump; anything else is a new major and a new entry symbol. The reader of a struct treats
 *    every field that lies beyond the writer's `struct_size` as absent (NULL / 0). Set
 *    `struct_size = sizeof(the struct)` when you fill one in.
 * 4. Arrays never hold growable structs: an array of structs is an array of pointers to them,
 *    so an element can grow without changing the array's stride.
 * 5. No cross-boundary free. Pointers passed into a function are borrowed for the duration of
 *    that call only. Variable-size output is written through a caller-supplied `ert_sink`;
 *    errors are written into a caller-owned `ert_error`. Nobody frees memory the other side
 *    allocated. Strings are NUL-terminated UTF-8 unless a length is given alongside.
 * 6. Nothing unwinds across the boundary: no C++ exception, Rust panic or Swift error may leave
 *    a driver function. Catch everything and return a status.
 * 7. NULL means absent. An operation pointer that is NULL means "not supported" (the host
 *    answers HTTP 501 without calling anything). Optional strings may be NULL.
 * 8. Drivers are never unloaded. The host opens them with RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE
 *    and never calls dlclose, so static data in a driver lives as long as the process.
 *    Everything the descriptor points to must stay valid and unchanged for the life of the
 *    process (static storage is the natural choice).
 *
 * THREADING (per function below; summary here)
 * - `ert_driver_entry_v1` is called once per process per loaded file, before anything else.
 * - `create_instance` / `destroy_instance` may be called from any host thread, for different
 *   instances concurrently. `destroy_instance` is called only after every call on that instance
 *   has returned, and at most once.
 * - Operations are called on host worker threads, never on the host's network event loop, so a
 *   driver may block (for example in `ert_host_services.http_request`). The host serializes
 *   *mutating* operations per instance (load/unload adapter or model, sleep, wake, reset cache,
 *   extension operations flagged ERT_EXTENSION_MUTATING); read operations (health, readiness,
 *   engine info, list models, metrics, other extension operations) may run concurrently with
 *   each other and with one mutating operation. A driver that cannot take that sets
 *   ERT_CAP_SERIALIZE_ALL and the host serializes every call on an instance.
 * - Every host service function is thread-safe and may be called from any thread.
 *
 * VERSION HISTORY
 * - 1.0: first version.
 * - 1.1: `ert_metric_rule`; `metrics_path`, `metric_rules`, `metric_rule_count` appended to
 *   `ert_driver_descriptor`. A 1.0 driver (shorter descriptor) loads unchanged.
 * - 1.2: `admin_api_key` appended to `ert_instance_config`; `pause`, `resume` and
 *   `reload_weights` appended to `ert_operations`; `duplicate_labels`, `keep_labels` and
 *   `value_label` appended to `ert_metric_rule`. 1.0 and 1.1 drivers load unchanged; a 1.2
 *   driver reads `admin_api_key` only when the host's `struct_size` covers it.
 * - 1.3: `plan_launch` appended to `ert_driver_descriptor`: how to start the engine as a
 *   process the host supervises (the model runtime). Older drivers (shorter descriptor)
 *   cannot be launched by the host and load unchanged otherwise.
 * - 1.4: `engine_kind_count` appended to `ert_driver_descriptor`: `engine_kinds` with a count,
 *   like every other list, so a binding from a language without NULL-terminated arrays cannot
 *   make the host read past its end. 0 keeps the NULL-terminated form of 1.0-1.3.
 *
 * VERSIONING POLICY
 * - Minor (1.x -> 1.x+1): fields appended to structs, new capability bits, new status codes,
 *   new operations at the end of `ert_operations`. Old drivers keep working with new hosts; a
 *   new driver that needs a new field sets `min_host_abi_minor`.
 * - Major: anything else, with a new entry symbol.
 * - Unknown status codes returned by a driver are treated as ERT_STATUS_INTERNAL.
 */
#ifndef ENGINE_RUNTIME_DRIVER_H
#define ENGINE_RUNTIME_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Versions, magic, export macro                                                              */
/* ------------------------------------------------------------------------------------------ */

/** "ERTD" in ASCII: first check on both handshake structs. */
#define ERT_MAGIC 0x45525444u
#define ERT_ABI_VERSION_MAJOR 1u
#define ERT_ABI_VERSION_MINOR 4u

/** Name of the one symbol a driver exports, for dlsym. */
#define ERT_DRIVER_ENTRY_SYMBOL "ert_driver_entry_v1"

/** Marks the entry function as exported even under -fvisibility=hidden. */
#if defined(_WIN32)
#define ERT_EXPORT __declspec(dllexport)
#else
#define ERT_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------------------------ */
/* Status codes                                                                               */
/* ------------------------------------------------------------------------------------------ */

/** Result of every driver operation and host service. A fixed-width integer, not an enum, so
 *  its size never depends on the compiler. The host maps each to one HTTP status. */
typedef int32_t ert_status;
#define ERT_STATUS_OK 0                /* success                                      200 */
#define ERT_STATUS_INVALID_ARGUMENT 1  /* the request is wrong (bad JSON, bad field)   400 */
#define ERT_STATUS_NOT_FOUND 2         /* the named thing (adapter, model) is unknown  404 */
#define ERT_STATUS_CONFLICT 3          /* already exists / busy / state forbids it     409 */
#define ERT_STATUS_UNSUPPORTED 4       /* the engine (as configured) cannot do this    501 */
#define ERT_STATUS_UNAVAILABLE 5       /* engine not reachable or not ready yet        503 */
#define ERT_STATUS_UPSTREAM 6          /* engine answered with an error or garbage     502 */
#define ERT_STATUS_TIMEOUT 7           /* the deadline passed                          504 */
#define ERT_STATUS_CANCELLED 8         /* the host cancelled the call                  499 */
#define ERT_STATUS_INTERNAL 9          /* a bug or resource failure in the driver      500 */

/* ------------------------------------------------------------------------------------------ */
/* Output: sinks and errors (caller-owned)                                                    */
/* ------------------------------------------------------------------------------------------ */

/**
 * A byte sink owned by the caller. The callee appends output with `write`, in as many pieces
 * as it likes. `write` returns false when the caller will take no more (for example a size
 * cap was reached); the callee should then stop writing and return an error.
 * Threading: a sink may only be used on the thread of the call it was passed to, and only
 * until that call returns.
 */
typedef struct ert_sink {
    uint32_t struct_size;
    void *context;
    bool (*write)(void *context, const char *data, size_t length);
} ert_sink;

/** Capacity of `ert_error.message`, terminating NUL included. */
#define ERT_ERROR_MESSAGE_CAPACITY 1024

/**
 * Error details, owned by the caller and zero-filled by it before the call. When a function
 * returns a status other than ERT_STATUS_OK it should set `message` to one human-readable line
 * (truncated to fit, always NUL-terminated) and, when the failure came from the engine's HTTP
 * answer, `upstream_http_status` to that status. `status` repeats the returned status.
 */
typedef struct ert_error {
    uint32_t struct_size;
    ert_status status;
    int32_t upstream_http_status; /* 0 when there was no HTTP answer */
    char message[ERT_ERROR_MESSAGE_CAPACITY];
} ert_error;

/* ------------------------------------------------------------------------------------------ */
/* Host services (the host -> driver table)                                                   */
/* ------------------------------------------------------------------------------------------ */

/** Log levels for `ert_host_services.log`. */
typedef int32_t ert_log_level;
#define ERT_LOG_TRACE 0
#define ERT_LOG_DEBUG 1
#define ERT_LOG_INFO 2
#define ERT_LOG_WARNING 3
#define ERT_LOG_ERROR 4

/** `ert_http_request.flags`: the request may be sent again on a transport failure or an HTTP
 *  502/503/504 answer (GET-like calls). Never set it on a call that changes engine state. */
#define ERT_HTTP_IDEMPOTENT 0x1u

/** An HTTP request made through the host's client (libcurl: one connection pool, TLS,
 *  timeouts, retries, cancellation). All pointers are borrowed for the call. */
typedef struct ert_http_request {
    uint32_t struct_size;
    /** "GET", "POST", "PUT", "DELETE", "HEAD" or "PATCH". */
    const char *method;
    /** Absolute http:// or https:// URL. */
    const char *url;
    /** `header_count` strings of the form "Name: value"; may be NULL when the count is 0. */
    const char *const *headers;
    size_t header_count;
    /** Request body (may be NULL when `body_length` is 0). */
    const char *body;
    size_t body_length;
    /** Per-attempt timeout in milliseconds; 0 takes the host's default: the time left before the
     *  calling operation's deadline (30 s outside an operation). The host always clamps it to
     *  that deadline. */
    uint32_t timeout_ms;
    /** ERT_HTTP_* flags. */
    uint32_t flags;
    /** Largest response body accepted, in bytes; 0 takes the host's default (16 MiB). A larger
     *  body fails the call with ERT_STATUS_UPSTREAM. */
    uint64_t max_response_bytes;
} ert_http_request;

/** Capacity of `ert_http_response.content_type`, NUL included. */
#define ERT_CONTENT_TYPE_CAPACITY 128

/** Response metadata, filled by the host; owned by the driver (zero it, set struct_size). */
typedef struct ert_http_response {
    uint32_t struct_size;
    /** HTTP status of the final answer; 0 when none arrived. */
    int32_t status;
    /** Content-Type of the answer ("" when absent), truncated to fit. */
    char content_type[ERT_CONTENT_TYPE_CAPACITY];
} ert_http_response;

/**
 * Services the host offers to drivers. The table is valid for the life of the process.
 *
 * Every function takes a `host_context`: the value found in `ert_instance_config.host_context`
 * (for instance-level work, valid until `destroy_instance` returns) or in `ert_call.host_context`
 * (for work on behalf of one operation, valid until that operation returns). Passing the call's
 * context ties logs, deadlines, cancellation and progress to that call.
 */
typedef struct ert_host_services {
    uint32_t struct_size;

    /** Writes one log line through the host's logger, tagged with the driver and instance.
     *  `message` is borrowed. Thread-safe. Never fails. `host_context` may be NULL (from the
     *  entry function, a destructor, a panic hook or a thread of the driver's own, where no
     *  context is at hand): the line is logged untagged, under "engine-runtime.driver". */
    void (*log)(void *host_context, ert_log_level level, const char *message);

    /**
     * Performs one HTTP request and blocks until it completes, fails, times out or the call is
     * cancelled. The response body is written to `body` (which may be NULL to discard it).
     * Returns ERT_STATUS_OK when an HTTP answer arrived, whatever its status (see
     * `response->status`); ERT_STATUS_UNAVAILABLE when the engine could not be reached
     * (connection refused, DNS failure); ERT_STATUS_TIMEOUT; ERT_STATUS_CANCELLED;
     * ERT_STATUS_UPSTREAM for a broken or oversize answer; ERT_STATUS_INVALID_ARGUMENT for a
     * malformed request. `error` receives the details. Thread-safe; blocking.
     */
    ert_status (*http_request)(void *host_context, const ert_http_request *request,
                               ert_http_response *response, const ert_sink *body,
                               ert_error *error);

    /** True once the call's deadline has passed or the host has cancelled it. Cheap. */
    bool (*is_cancelled)(void *host_context);

    /** Milliseconds left before the call's deadline; -1 when there is none. */
    int64_t (*remaining_ms)(void *host_context);

    /** Reports progress of long work (`total` 0 when unknown). `message` may be NULL. */
    void (*report_progress)(void *host_context, uint64_t done, uint64_t total,
                            const char *message);

    /** Returns an optional host extension table by its id (for example
     *  "engine-runtime.metrics.v1"), or NULL when this host does not have it. */
    const void *(*get_extension)(void *host_context, const char *extension_id);
} ert_host_services;

/** What the host tells the driver about itself in the handshake. Valid for the life of the
 *  process. */
typedef struct ert_host_info {
    uint32_t struct_size;
    uint32_t magic;     /* ERT_MAGIC */
    uint16_t abi_major; /* the host's ABI version */
    uint16_t abi_minor;
    const char *host_name;    /* "engine-runtime" */
    const char *host_version; /* the host's release, e.g. "0.1.0" */
    const ert_host_services *services;
} ert_host_info;

/* ------------------------------------------------------------------------------------------ */
/* Instances and calls                                                                        */
/* ------------------------------------------------------------------------------------------ */

/** A driver's instance: one engine it manages. Opaque to the host. */
typedef struct ert_instance ert_instance;

/** What the host passes to `create_instance`. All pointers are borrowed for that call except
 *  `host_context`, which stays valid until `destroy_instance` returns, and `services`. Copy
 *  what you keep. */
typedef struct ert_instance_config {
    uint32_t struct_size;
    /** The instance's name in the host ("default", or a name from the config file). */
    const char *instance_name;
    /** Which of the driver's `engine_kinds` this instance drives. */
    const char *engine_kind;
    /** Base URL of the engine, e.g. "http://localhost:8000". Never NULL. */
    const char *endpoint;
    /** Bearer token the engine expects, or NULL. Never log it. */
    const char *api_key;
    /** Engine version as configured by the operator (informational), or NULL. */
    const char *engine_version;
    /** Driver-specific options as a JSON object ("{}" when none); validated by the driver
     *  (and by the host against `config_schema_json` when the driver declares one). */
    const char *config_json;
    /** Opaque value to pass to host services for instance-level work. */
    void *host_context;
    /** The host services table (the same as `ert_host_info.services`), valid for the life of
     *  the process, so an instance needs no global to reach it. */
    const ert_host_services *services;

    /* ---- ABI 1.2 ---- */

    /** The engine's administrator token, or NULL: a second key some engines require on their
     *  management routes (SGLang's `--admin-api-key`, which then refuses `api_key` there).
     *  The driver decides which key each route gets. Never log it. */
    const char *admin_api_key;
} ert_instance_config;

/** Per-call information. Borrowed for the duration of the call. */
typedef struct ert_call {
    uint32_t struct_size;
    /** Opaque value to pass to host services for this call (deadline, cancellation, logs). */
    void *host_context;
} ert_call;

/**
 * The shape of every JSON operation.
 * - `request_json` is a NUL-terminated UTF-8 JSON text of `request_length` bytes (the NUL not
 *   counted); it is "{}" when the caller sent nothing. It may be malformed: the driver must
 *   answer ERT_STATUS_INVALID_ARGUMENT then, never crash.
 * - On ERT_STATUS_OK the driver writes one JSON value (normally an object) to `response`.
 *   On failure it writes nothing to `response` and fills `error`.
 * Threading: see the summary at the top; calls may block but should watch
 * `ert_host_services.is_cancelled` in long loops.
 */
typedef ert_status (*ert_operation_fn)(ert_instance *instance, const ert_call *call,
                                       const char *request_json, size_t request_length,
                                       const ert_sink *response, ert_error *error);

/**
 * The operation table. NULL entries are unsupported (HTTP 501). Request and response bodies
 * are documented in docs/drivers.md ("Operations"); the short form:
 *   health             {}                                     -> {"healthy":bool, ...}
 *   readiness          {}                                     -> {"ready":bool,"reason":str?}
 *   engine_info        {}                                     -> {"engine":str,"version":str?,...}
 *   list_models        {}                                     -> OpenAI model list
 *   load_lora_adapter  {"lora_name","lora_path", ...}         -> {"message":str}
 *   unload_lora_adapter{"lora_name", ...}                     -> {"message":str}
 *   load_model         {"model","model_path"?, ...}           -> {"message":str}
 *   unload_model       {"model"}                              -> {"message":str}
 *   sleep              {"level":int?}                          -> {"message":str}
 *   wake               {"tags":[str]?}                         -> {"message":str}
 *   reset_cache        {"cache":str?}                          -> {"message":str}
 *   metrics            {}                                     -> Prometheus text (not JSON),
 *                                                                for engines that do not serve
 *                                                                /metrics themselves
 *   pause (1.2)        {"mode":str?}                           -> {"message":str}
 *   resume (1.2)       {}                                     -> {"message":str}
 *   reload_weights (1.2) {"model_path":str?, ...}             -> {"message":str}
 * Mutating (serialized per instance): the load/unload pairs, sleep, wake, reset_cache, pause,
 * resume, reload_weights. An operation beyond the driver's `struct_size` is absent (501).
 *
 * Contract points a driver decides and the host relies on:
 * - engine_info: `engine` is required, the kind of engine it is ("vllm", "llamacpp", a
 *   vendor's); `version` when the engine tells it. Passing the engine's /version answer
 *   through is not enough. GET /v1/engines/{name}/info shows the object under `info`.
 * - load_lora_adapter repeated with the same name and path is success (ERT_STATUS_OK), as the
 *   in-tree drivers answer: AIBrix's controller retries loads. The same name with another path
 *   is ERT_STATUS_CONFLICT. The host only merges concurrent identical loads; the rest is the
 *   driver's to decide. unload of an unknown name is ERT_STATUS_NOT_FOUND.
 * - `message`: the native routes (/v1/engines/{name}/lora_adapters, sleep, wake ...) return
 *   the driver's answer object as it wrote it. The AIBrix-compatible routes
 *   (/v1/lora_adapter/load and /unload) answer AIBrix's own fixed texts whatever the driver
 *   wrote, because AIBrix's controller matches them; the driver's answer is logged (debug).
 */
typedef struct ert_operations {
    uint32_t struct_size;
    ert_operation_fn health;
    ert_operation_fn readiness;
    ert_operation_fn engine_info;
    ert_operation_fn list_models;
    ert_operation_fn load_lora_adapter;
    ert_operation_fn unload_lora_adapter;
    ert_operation_fn load_model;
    ert_operation_fn unload_model;
    ert_operation_fn sleep;
    ert_operation_fn wake;
    ert_operation_fn reset_cache;
    ert_operation_fn metrics;

    /* ---- ABI 1.2 ---- */

    /** Stops scheduling new generation work until `resume` (requests are held or refused, as
     *  the engine does); `mode` says what happens to requests in flight. */
    ert_operation_fn pause;
    ert_operation_fn resume;
    /** Reloads the model weights from disk without restarting the engine. */
    ert_operation_fn reload_weights;
} ert_operations;

/* ------------------------------------------------------------------------------------------ */
/* Typed extension operations (called by the host through libffi)                             */
/* ------------------------------------------------------------------------------------------ */

/** The closed set of types an extension operation may take and return. */
typedef int32_t ert_value_type;
#define ERT_TYPE_VOID 0   /* result only: nothing is returned                        */
#define ERT_TYPE_BOOL 1   /* C `bool`                                                */
#define ERT_TYPE_INT64 2  /* C `int64_t`                                             */
#define ERT_TYPE_DOUBLE 3 /* C `double` (finite values only)                         */
#define ERT_TYPE_STRING 4 /* `const char *`, NUL-terminated UTF-8, no embedded NUL   */

/** Most parameters an extension operation may declare. */
#define ERT_EXTENSION_MAX_PARAMS 16

/** `ert_extension_op.flags`: the operation changes engine state (serialized per instance). */
#define ERT_EXTENSION_MUTATING 0x1u

/**
 * A vendor operation with a typed C signature, reachable over HTTP as
 * POST /v1/extensions/{name} with a JSON object of named arguments.
 *
 * `function` is called as (argument types in declaration order):
 *
 *   ert_status function(ert_instance *instance, const ert_call *call, ert_error *error,
 *                       T1 arg1, ..., Tn argn, R *result);
 *
 * where Ti is bool, int64_t, double or const char * per `param_types`, and the last
 * parameter depends on `result_type`: bool *, int64_t *, double *, `const ert_sink *` for
 * ERT_TYPE_STRING (write the UTF-8 string to the sink), and absent for ERT_TYPE_VOID.
 * The host validates the JSON arguments against the declaration (missing, extra, wrong type,
 * int64 range, NUL in a string) and answers 400 without calling when they do not match.
 * String arguments are borrowed for the call.
 */
typedef struct ert_extension_op {
    uint32_t struct_size;
    /** [a-z0-9_.]+, at most 64 bytes, unique within the driver. */
    const char *name;
    /** One line for humans, or NULL. */
    const char *description;
    ert_value_type result_type;
    uint32_t flags; /* ERT_EXTENSION_* */
    /** `param_count` names ([a-z0-9_]+, unique) and types (never ERT_TYPE_VOID). */
    const char *const *param_names;
    const ert_value_type *param_types;
    size_t param_count;
    /** The function, cast to a generic function pointer type. */
    void (*function)(void);
} ert_extension_op;

/* ------------------------------------------------------------------------------------------ */
/* Metric standardization rules (ABI 1.1)                                                     */
/* ------------------------------------------------------------------------------------------ */

/** The type of a source metric (`ert_metric_rule.source_type`). */
typedef uint32_t ert_metric_type;
#define ERT_METRIC_COUNTER 1   /* source_name is the sample name, with _total            */
#define ERT_METRIC_GAUGE 2     /* source_name is the sample name                         */
#define ERT_METRIC_HISTOGRAM 3 /* source_name is the family: _bucket, _sum, _count follow */

/** How series left with equal labels after `aggregate_labels` are dropped are combined. */
typedef uint32_t ert_metric_aggregate;
#define ERT_AGGREGATE_NONE 0   /* no aggregation (aggregate_labels must be NULL)         */
#define ERT_AGGREGATE_SUM 1    /* counts and counters over data-parallel ranks           */
#define ERT_AGGREGATE_MAX 2    /* ratios                                                 */
#define ERT_AGGREGATE_NEWEST 3 /* keep only the series with the largest value (info-style
                                  gauges whose value is a timestamp)                     */

/**
 * One rule mapping an engine metric to a standard `llm_engine_*` metric, declared as data so
 * the host can apply it on its fast path. The host scrapes the engine's Prometheus text
 * (`ert_driver_descriptor.metrics_path`), and for every sample whose name matches
 * `source_name` (and whose labels match `match_labels`), in this order: renames labels
 * (`label_renames`), rewrites label values (`label_values`), multiplies the value by `scale`,
 * drops `aggregate_labels` and combines the series that became equal (`aggregate`), adds
 * `set_labels`, and emits it under `standard_name` (with `_total`, or `_bucket`/`_sum`/`_count`,
 * as the type requires). Histograms are renamed sample by sample, never re-bucketed.
 * Lists are comma-separated; NULL means none. All strings live for the life of the process.
 *
 * ABI 1.2 adds three fields (a 1.1 rule, shorter, has none of them):
 * - `duplicate_labels`: labels whose series repeat one quantity rather than split it (tensor-,
 *   pipeline- or expert-parallel ranks that each report the whole batch). Series that differ
 *   only in them are combined with the maximum first; the result is then aggregated over
 *   `aggregate_labels`. Without it a sum over ranks counts each request once per replica.
 * - `keep_labels`: when set, every other label is dropped as if aggregated away (labels
 *   named after renames). For info-style series with dozens of labels, of which the standard
 *   set names two.
 * - `value_label`: gauges only. After aggregation the value becomes this label's value and
 *   the series' value becomes 1; rules with the same `standard_name` whose series have equal
 *   other labels are joined into one series. Two gauges (SGLang's `page_size`, `num_pages`)
 *   make one info series (`llm_engine_kv_cache_config_info{block_size,num_blocks}`).
 */
typedef struct ert_metric_rule {
    uint32_t struct_size;
    ert_metric_type source_type;
    /** e.g. "vllm:num_requests_running", "vllm:prompt_tokens_total",
     *  "vllm:time_to_first_token_seconds" (a histogram family). Required. */
    const char *source_name;
    /** A name from the standard set, without _total, e.g. "llm_engine_prompt_tokens". Required. */
    const char *standard_name;
    /** Multiplier for counter and gauge values (0 means 1). Histograms must leave it 0 or 1:
     *  they are renamed, never re-bucketed. */
    double scale;
    ert_metric_aggregate aggregate;
    uint32_t reserved0; /* zero */
    /** Labels aggregated away, e.g. "engine" (vLLM's data-parallel index) or "dp_rank". */
    const char *aggregate_labels;
    /** "from=to" pairs, e.g. "finished_reason=reason". */
    const char *label_renames;
    /** "label:from=to" pairs applied after renames, e.g. "state:weights_offloaded=sleeping". */
    const char *label_values;
    /** "label=value" pairs a series must carry to be used, e.g. "tp_rank=0". */
    const char *match_labels;
    /** "label=value" pairs added to every output series, e.g. "reason=completed". */
    const char *set_labels;

    /* ---- ABI 1.2 ---- */

    /** Labels whose series duplicate each other (maximum taken before aggregating), e.g.
     *  "tp_rank,pp_rank,moe_ep_rank". */
    const char *duplicate_labels;
    /** Only these labels are kept (after renames), e.g. "block_size,num_blocks". */
    const char *keep_labels;
    /** The label that takes the gauge's value (the value becomes 1), e.g. "block_size". */
    const char *value_label;
} ert_metric_rule;

/* ------------------------------------------------------------------------------------------ */
/* The driver descriptor (driver -> host)                                                     */
/* ------------------------------------------------------------------------------------------ */

/** Capability flags (`ert_driver_descriptor.capabilities`). */
#define ERT_CAP_MULTI_INSTANCE (1ull << 0) /* several instances may live in one process      */
#define ERT_CAP_SERIALIZE_ALL (1ull << 1)  /* serialize every call per instance              */
#define ERT_CAP_LORA_DYNAMIC (1ull << 2)   /* adapters load and unload at run time           */
#define ERT_CAP_SLEEP (1ull << 3)          /* sleep / wake release and restore accelerator memory */
#define ERT_CAP_DEEP_HEALTH (1ull << 4)    /* health accepts {"deep":true} (a generation probe) */
#define ERT_CAP_PROMETHEUS (1ull << 5)     /* the engine serves Prometheus text on /metrics  */

/**
 * ABI 1.3: turns a model spec into a launch plan for the engine's own server process, which the
 * host then starts, supervises and stops itself (the model runtime). Pure: no I/O, no instance,
 * no engine contacted; deterministic for the same request.
 *
 * `request_json` (NUL-terminated, `request_length` bytes, borrowed for the call):
 *   {"engine_kind":str, "model_name":str (served name), "model_path":str (local path),
 *    "host":str, "port":int,
 *    "command":[str]|null (the operator's replacement for the engine's program, e.g.
 *                          ["/opt/venv/bin/vllm"]; null: the driver's default on PATH),
 *    "args":[[flag, value]] (operator-allowed engine flags, in order; value "" = a bare flag),
 *    "config":object (driver options, as ert_instance_config.config_json)}
 * The host has already checked names, the port range and the operator's allow-list; the driver
 * refuses (ERT_STATUS_INVALID_ARGUMENT) flags it owns (listen address, model, served name) and
 * anything its engine cannot take.
 *
 * On ERT_STATUS_OK it writes one JSON object to `response`:
 *   {"argv":[str] (program first; never a shell string),
 *    "env":{str:str} (additions to the host's clean environment, e.g. VLLM_SERVER_DEV_MODE),
 *    "readiness":{"boot_timeout_seconds":int, "probe_interval_ms":int},
 *    "owned_flags":[str] (the flags the plan sets itself; informational)}
 * Readiness is then judged through the driver's own `readiness` (else `health`) operation on
 * an instance whose endpoint is http://127.0.0.1:<port>.
 * Threading: any thread, concurrently with anything.
 */
typedef ert_status (*ert_plan_launch_fn)(const char *request_json, size_t request_length,
                                         const ert_sink *response, ert_error *error);

/**
 * Creates an instance for one engine. `config` is borrowed for the call (but its
 * `host_context` lives until destroy). Should not contact the engine (it may still be
 * starting); validate the configuration and return ERT_STATUS_INVALID_ARGUMENT with a message
 * when it is wrong. On success stores the instance in `*out_instance`.
 * Threading: any thread; concurrently with other instances' calls.
 */
typedef ert_status (*ert_create_instance_fn)(const ert_instance_config *config,
                                             ert_instance **out_instance, ert_error *error);

/** Destroys an instance. Called once, after every call on it has returned. Any thread. */
typedef void (*ert_destroy_instance_fn)(ert_instance *instance);

/** Everything the host learns about a driver. Returned by the entry function; must stay valid
 *  and unchanged for the life of the process. */
typedef struct ert_driver_descriptor {
    uint32_t struct_size;
    uint32_t magic;     /* ERT_MAGIC */
    uint16_t abi_major; /* ERT_ABI_VERSION_MAJOR the driver was built with */
    uint16_t abi_minor; /* ERT_ABI_VERSION_MINOR the driver was built with */
    /** Lowest host ABI minor this driver works with (0 unless it needs newer fields). */
    uint16_t min_host_abi_minor;
    uint16_t reserved0; /* zero */
    /** Unique driver name: [a-z0-9][a-z0-9_-]{0,62}. Required. */
    const char *name;
    /** The driver's own version, e.g. "1.4.2". Required. */
    const char *version;
    /** One line for humans, or NULL. */
    const char *description;
    /** The engine kinds it drives, e.g. {"vllm", NULL}; each matches the same pattern as
     *  `name`. Required, at least one, at most 64. NULL-terminated unless `engine_kind_count`
     *  (ABI 1.4) gives the count; the host never reads more than 64 entries either way. */
    const char *const *engine_kinds;
    /** ERT_CAP_* bits. */
    uint64_t capabilities;
    /** JSON Schema of `ert_instance_config.config_json`, or NULL. */
    const char *config_schema_json;
    /** Required. */
    ert_create_instance_fn create_instance;
    /** Required. */
    ert_destroy_instance_fn destroy_instance;
    /** Required (its entries may be NULL). */
    const ert_operations *operations;
    /** `extension_op_count` pointers (see rule 4); NULL when the count is 0. */
    const ert_extension_op *const *extension_ops;
    size_t extension_op_count;

    /* ---- ABI 1.1 ---- */

    /** Path of the engine's Prometheus endpoint relative to the instance endpoint (e.g.
     *  "/metrics"); NULL when the engine has none (the host then calls the `metrics`
     *  operation, if any). */
    const char *metrics_path;
    /** `metric_rule_count` pointers to rules (see rule 4); NULL when the count is 0. */
    const ert_metric_rule *const *metric_rules;
    size_t metric_rule_count;

    /* ---- ABI 1.3 ---- */

    /** How the host launches this driver's engine itself (see `ert_plan_launch_fn`); NULL
     *  when the driver cannot say (the model runtime then refuses its engine kinds). */
    ert_plan_launch_fn plan_launch;

    /* ---- ABI 1.4 ---- */

    /** How many entries `engine_kinds` has (no NULL needed after them); 0: NULL-terminated. */
    size_t engine_kind_count;
} ert_driver_descriptor;

/**
 * The one exported function: `ERT_EXPORT const ert_driver_descriptor *
 * ert_driver_entry_v1(const ert_host_info *host, ert_error *error);`
 *
 * Called once per process, before any other driver function, on any thread. `host` and its
 * services table stay valid for the life of the process: keep the pointer. Returns the
 * descriptor, or NULL (with `error` filled) when the driver cannot work with this host.
 */
typedef const ert_driver_descriptor *(*ert_driver_entry_v1_fn)(const ert_host_info *host,
                                                               ert_error *error);

/* ------------------------------------------------------------------------------------------ */
/* Sizes of the structs as first published (readers accept nothing smaller)                   */
/* ------------------------------------------------------------------------------------------ */

#define ERT_SINK_SIZE_V1_0 (offsetof(ert_sink, write) + sizeof(void *))
#define ERT_ERROR_SIZE_V1_0 (offsetof(ert_error, message) + ERT_ERROR_MESSAGE_CAPACITY)
#define ERT_HTTP_REQUEST_SIZE_V1_0 (offsetof(ert_http_request, max_response_bytes) + sizeof(uint64_t))
#define ERT_HTTP_RESPONSE_SIZE_V1_0 \
    (offsetof(ert_http_response, content_type) + ERT_CONTENT_TYPE_CAPACITY)
#define ERT_HOST_SERVICES_SIZE_V1_0 (offsetof(ert_host_services, get_extension) + sizeof(void *))
#define ERT_HOST_INFO_SIZE_V1_0 (offsetof(ert_host_info, services) + sizeof(void *))
#define ERT_INSTANCE_CONFIG_SIZE_V1_0 (offsetof(ert_instance_config, services) + sizeof(void *))
#define ERT_CALL_SIZE_V1_0 (offsetof(ert_call, host_context) + sizeof(void *))
#define ERT_OPERATIONS_SIZE_V1_0 (offsetof(ert_operations, metrics) + sizeof(void *))
#define ERT_EXTENSION_OP_SIZE_V1_0 (offsetof(ert_extension_op, function) + sizeof(void *))
#define ERT_DRIVER_DESCRIPTOR_SIZE_V1_0 \
    (offsetof(ert_driver_descriptor, extension_op_count) + sizeof(size_t))
#define ERT_DRIVER_DESCRIPTOR_SIZE_V1_1 \
    (offsetof(ert_driver_descriptor, metric_rule_count) + sizeof(size_t))
#define ERT_METRIC_RULE_SIZE_V1_1 (offsetof(ert_metric_rule, set_labels) + sizeof(void *))
#define ERT_INSTANCE_CONFIG_SIZE_V1_2 \
    (offsetof(ert_instance_config, admin_api_key) + sizeof(void *))
#define ERT_OPERATIONS_SIZE_V1_2 (offsetof(ert_operations, reload_weights) + sizeof(void *))
#define ERT_METRIC_RULE_SIZE_V1_2 (offsetof(ert_metric_rule, value_label) + sizeof(void *))
#define ERT_DRIVER_DESCRIPTOR_SIZE_V1_3 (offsetof(ert_driver_descriptor, plan_launch) + sizeof(void *))
#define ERT_DRIVER_DESCRIPTOR_SIZE_V1_4 \
    (offsetof(ert_driver_descriptor, engine_kind_count) + sizeof(size_t))

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ENGINE_RUNTIME_DRIVER_H */

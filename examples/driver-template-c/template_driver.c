/*
 * A template engine-runtime driver in plain C.
 *
 * Copy this file, rename the driver, and replace the engine calls with your engine's API. It
 * drives an engine with an OpenAI/vLLM-style HTTP API through the host's HTTP service, so it
 * links nothing but libc:
 *
 *   cc -std=c11 -shared -fPIC -fvisibility=hidden -O2 -Wall -Wextra \
 *      -I<engine-runtime>/Sources/PluginABI/include -o libtemplate_driver.so template_driver.c
 *   engine-runtime drivers check ./libtemplate_driver.so
 *
 * What it shows:
 * - the one exported entry symbol and the handshake (magic, ABI version both ways);
 * - instance create/destroy with the config the host passes (copied: the host's strings are
 *   only borrowed for the call);
 * - JSON operations answering through the caller's sink, errors into the caller's ert_error;
 * - HTTP through the host (connection pooling, deadlines and cancellation come for free);
 * - typed extension operations the host calls through libffi;
 * - metric rules: the engine's Prometheus series mapped to the standard set, as data.
 *
 * JSON comes from ert_json.h beside this file (one file, libc only): validation, nested
 * lookups by path ("data.0.id"), unescaping with \u and surrogate pairs, numbers, and a writer
 * onto sinks. engine_info shows a nested read of the engine's answers.
 */
#include "engine_runtime_driver.h"
#include "ert_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEMPLATE_DRIVER_NAME
#define TEMPLATE_DRIVER_NAME "template"
#endif
#ifndef TEMPLATE_ENGINE_KIND
#define TEMPLATE_ENGINE_KIND "template-engine"
#endif

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* Fills the caller's error record and returns its status, so `return fail(...)` reads well. */
static ert_status fail(ert_error *error, ert_status status, int upstream, const char *format, ...) {
    if (error != NULL && error->struct_size >= ERT_ERROR_SIZE_V1_0) {
        va_list args;
        va_start(args, format);
        vsnprintf(error->message, sizeof error->message, format, args);
        va_end(args);
        error->status = status;
        error->upstream_http_status = upstream;
    }
    return status;
}

static bool sink_write(const ert_sink *sink, const char *text, size_t length) {
    return sink != NULL && sink->write != NULL && sink->write(sink->context, text, length);
}

static bool sink_puts(const ert_sink *sink, const char *text) { return sink_write(sink, text, strlen(text)); }

/* A growable buffer used as an ert_sink for HTTP response bodies. */
typedef struct buffer {
    char *data;
    size_t length;
    size_t capacity;
} buffer;

static bool buffer_write(void *context, const char *data, size_t length) {
    buffer *b = context;
    if (b->length + length + 1 > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 1024;
        while (capacity < b->length + length + 1) capacity *= 2;
        char *grown = realloc(b->data, capacity);
        if (grown == NULL) return false;
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->length, data, length);
    b->length += length;
    b->data[b->length] = '\0';
    return true;
}

/* Writes `text` as a JSON string literal (quotes and escapes included). */
static bool sink_json_string(const ert_sink *sink, const char *text, size_t length) {
    ert_json_writer writer = ert_json_writer_on(sink);
    ert_json_write_string(&writer, text, length);
    return writer.ok;
}

/* ---------------------------------------------------------------------------------------- */
/* JSON: ert_json.h (nested values, \u escapes, a writer on sinks), plus two shorthands      */
/* ---------------------------------------------------------------------------------------- */

/* True when `text` is exactly one JSON object. */
static bool json_is_object(const char *text, size_t length) {
    ert_json_value value;
    return ert_json_parse(text, length, &value) && value.type == ERT_JSON_OBJECT;
}

/* Copies the string member `key` of a JSON object text into `out` (unescaped). False when the
 * text is not an object, the member is missing or not a string, or it does not fit. */
static bool json_get_string(const char *object, size_t length, const char *key, char *out, size_t capacity) {
    ert_json_value root, member;
    return ert_json_parse(object, length, &root) && ert_json_member(root, key, &member) && ert_json_string(member, out, capacity);
}

/* ---------------------------------------------------------------------------------------- */
/* The instance                                                                             */
/* ---------------------------------------------------------------------------------------- */

struct ert_instance {
    const ert_host_services *host;
    void *host_context;
    char endpoint[512];
    char authorization[600]; /* "Authorization: Bearer ..." or "" */
    bool debug;
    long echo_calls; /* updated atomically: echo may run concurrently */
};

static ert_status create_instance(const ert_instance_config *config, ert_instance **out, ert_error *error) {
    if (config == NULL || out == NULL || config->struct_size < ERT_INSTANCE_CONFIG_SIZE_V1_0)
        return fail(error, ERT_STATUS_INVALID_ARGUMENT, 0, "config is missing or too old");
    if (config->endpoint == NULL || (strncmp(config->endpoint, "http://", 7) != 0 && strncmp(config->endpoint, "https://", 8) != 0))
        return fail(error, ERT_STATUS_INVALID_ARGUMENT, 0, "endpoint must be an http:// or https:// URL");
    if (config->config_json != NULL && !json_is_object(config->config_json, strlen(config->config_json)))
        return fail(error, ERT_STATUS_INVALID_ARGUMENT, 0, "config_json must be a JSON object");
    ert_instance *instance = calloc(1, sizeof *instance);
    if (instance == NULL) return fail(error, ERT_STATUS_INTERNAL, 0, "out of memory");
    instance->host = config->services;
    instance->host_context = config->host_context;
    if (snprintf(instance->endpoint, sizeof instance->endpoint, "%s", config->endpoint) >= (int)sizeof instance->endpoint) {
        free(instance);
        return fail(error, ERT_STATUS_INVALID_ARGUMENT, 0, "endpoint is too long");
    }
    size_t n = strlen(instance->endpoint);
    while (n > 0 && instance->endpoint[n - 1] == '/') instance->endpoint[--n] = '\0';
    if (config->api_key != NULL && config->api_key[0] != '\0')
        snprintf(instance->authorization, sizeof instance->authorization, "Authorization: Bearer %s", config->api_key);
    instance->host->log(instance->host_context, ERT_LOG_DEBUG, "template instance created");
    *out = instance;
    return ERT_STATUS_OK;
}

static void destroy_instance(ert_instance *instance) { free(instance); }

/* One HTTP call to the engine through the host. The body lands in `reply` (caller frees
 * reply->data). Returns the host's status; `*http_status` gets the engine's HTTP status. */
static ert_status engine_call(ert_instance *instance, const ert_call *call, const char *method, const char *path,
                              const char *body, buffer *reply, int *http_status, ert_error *error) {
    char url[1024];
    snprintf(url, sizeof url, "%s%s", instance->endpoint, path);
    const char *headers[3];
    size_t header_count = 0;
    headers[header_count++] = "Accept: application/json";
    if (body != NULL) headers[header_count++] = "Content-Type: application/json";
    if (instance->authorization[0] != '\0') headers[header_count++] = instance->authorization;

    ert_http_request request = {0};
    request.struct_size = sizeof request;
    request.method = method;
    request.url = url;
    request.headers = headers;
    request.header_count = header_count;
    request.body = body;
    request.body_length = body ? strlen(body) : 0;
    request.timeout_ms = 10000;
    request.flags = strcmp(method, "GET") == 0 ? ERT_HTTP_IDEMPOTENT : 0; /* never retry a POST */

    ert_http_response response = {0};
    response.struct_size = sizeof response;
    ert_sink sink = {sizeof sink, reply, buffer_write};
    ert_status status = instance->host->http_request(call->host_context, &request, &response, &sink, error);
    *http_status = response.status;
    return status;
}

/* ---------------------------------------------------------------------------------------- */
/* Operations                                                                               */
/* ---------------------------------------------------------------------------------------- */

#define REQUIRE_OBJECT(request, length, error)                                                    \
    do {                                                                                          \
        if ((request) == NULL || !json_is_object((request), (length)))                            \
            return fail((error), ERT_STATUS_INVALID_ARGUMENT, 0, "the request must be a JSON object"); \
    } while (0)

/* health and readiness share one probe of GET /health. */
static ert_status probe(ert_instance *instance, const ert_call *call, const char *request, size_t length,
                        const ert_sink *response, ert_error *error, const char *flag) {
    REQUIRE_OBJECT(request, length, error);
    buffer reply = {0};
    int http_status = 0;
    ert_error transport = {0};
    transport.struct_size = sizeof transport;
    ert_status status = engine_call(instance, call, "GET", "/health", NULL, &reply, &http_status, &transport);
    free(reply.data);
    bool ok = status == ERT_STATUS_OK && http_status == 200;
    if (status != ERT_STATUS_OK && status != ERT_STATUS_UNAVAILABLE && status != ERT_STATUS_TIMEOUT)
        return fail(error, status, 0, "%s", transport.message);
    char answer[1400];
    if (ok) {
        snprintf(answer, sizeof answer, "{\"%s\":true}", flag);
    } else {
        char reason[1100];
        if (status != ERT_STATUS_OK) snprintf(reason, sizeof reason, "engine unreachable: %s", transport.message);
        else snprintf(reason, sizeof reason, "engine /health answered HTTP %d", http_status);
        if (!sink_puts(response, "{\"") || !sink_puts(response, flag) || !sink_puts(response, "\":false,\"reason\":") ||
            !sink_json_string(response, reason, strlen(reason)) || !sink_puts(response, "}"))
            return fail(error, ERT_STATUS_INTERNAL, 0, "the host refused the answer");
        return ERT_STATUS_OK;
    }
    return sink_puts(response, answer) ? ERT_STATUS_OK : fail(error, ERT_STATUS_INTERNAL, 0, "the host refused the answer");
}

static ert_status op_health(ert_instance *i, const ert_call *c, const char *r, size_t n, const ert_sink *s, ert_error *e) {
    return probe(i, c, r, n, s, e, "healthy");
}

static ert_status op_readiness(ert_instance *i, const ert_call *c, const char *r, size_t n, const ert_sink *s, ert_error *e) {
    return probe(i, c, r, n, s, e, "ready");
}

/* Maps an engine's HTTP failure to a status, keeping its body as the message. */
static ert_status engine_failure(ert_error *error, int http_status, const buffer *reply, const char *what) {
    const char *body = reply->data ? reply->data : "";
    ert_status status = http_status == 400   ? ERT_STATUS_INVALID_ARGUMENT
                        : http_status == 404 ? ERT_STATUS_NOT_FOUND
                        : http_status == 409 ? ERT_STATUS_CONFLICT
                        : http_status == 503 ? ERT_STATUS_UNAVAILABLE
                                             : ERT_STATUS_UPSTREAM;
    return fail(error, status, http_status, "%s: engine answered HTTP %d: %.512s", what, http_status, body);
}

/* GETs `path` and passes the engine's JSON through. */
static ert_status pass_through(ert_instance *instance, const ert_call *call, const char *path, const ert_sink *response,
                               ert_error *error) {
    buffer reply = {0};
    int http_status = 0;
    ert_status status = engine_call(instance, call, "GET", path, NULL, &reply, &http_status, error);
    if (status != ERT_STATUS_OK) {
        free(reply.data);
        return status;
    }
    if (http_status != 200) {
        status = engine_failure(error, http_status, &reply, path);
    } else if (reply.data == NULL || !ert_json_parse(reply.data, reply.length, &(ert_json_value){0})) {
        status = fail(error, ERT_STATUS_UPSTREAM, http_status, "%s: the engine answered something that is not JSON", path);
    } else if (!sink_write(response, reply.data, reply.length)) {
        status = fail(error, ERT_STATUS_INTERNAL, 0, "the host refused the answer");
    }
    free(reply.data);
    return status;
}

/* GETs `path` and parses the answer: OK with `reply` holding the text and `root` its value. */
static ert_status engine_json(ert_instance *instance, const ert_call *call, const char *path, buffer *reply, ert_json_value *root,
                              ert_error *error) {
    int http_status = 0;
    ert_status status = engine_call(instance, call, "GET", path, NULL, reply, &http_status, error);
    if (status != ERT_STATUS_OK) return status;
    if (http_status != 200) return engine_failure(error, http_status, reply, path);
    if (reply->data == NULL || !ert_json_parse(reply->data, reply->length, root))
        return fail(error, ERT_STATUS_UPSTREAM, http_status, "%s: the engine answered something that is not JSON", path);
    return ERT_STATUS_OK;
}

/*
 * {"engine": kind, "version": ..., "model": ...}: `engine` is required by the host; the
 * version comes from /version and the served model from the nested model list of /v1/models
 * ("data.0.id"). Either may be missing from an engine; the answer then leaves it out.
 */
static ert_status op_engine_info(ert_instance *i, const ert_call *c, const char *r, size_t n, const ert_sink *s, ert_error *e) {
    REQUIRE_OBJECT(r, n, e);
    buffer version_reply = {0}, models_reply = {0};
    ert_json_value version_root, models_root, value;
    char version[128] = "", model[256] = "";
    ert_status status = engine_json(i, c, "/version", &version_reply, &version_root, e);
    if (status == ERT_STATUS_OK && ert_json_member(version_root, "version", &value)) ert_json_string(value, version, sizeof version);
    if (status == ERT_STATUS_OK) status = engine_json(i, c, "/v1/models", &models_reply, &models_root, e);
    if (status == ERT_STATUS_OK && ert_json_path(models_root, "data.0.id", &value)) ert_json_string(value, model, sizeof model);
    if (status == ERT_STATUS_OK) {
        ert_json_writer w = ert_json_writer_on(s);
        ert_json_begin_object(&w);
        ert_json_key(&w, "engine");
        ert_json_write_string(&w, TEMPLATE_ENGINE_KIND, strlen(TEMPLATE_ENGINE_KIND));
        if (version[0]) ert_json_key(&w, "version"), ert_json_write_string(&w, version, strlen(version));
        if (model[0]) ert_json_key(&w, "model"), ert_json_write_string(&w, model, strlen(model));
        ert_json_end_object(&w);
        if (!w.ok) status = fail(e, ERT_STATUS_INTERNAL, 0, "the host refused the answer");
    }
    free(version_reply.data);
    free(models_reply.data);
    return status;
}

static ert_status op_list_models(ert_instance *i, const ert_call *c, const char *r, size_t n, const ert_sink *s, ert_error *e) {
    REQUIRE_OBJECT(r, n, e);
    return pass_through(i, c, "/v1/models", s, e);
}

/* POSTs {"lora_name":..,"lora_path":..} (or just the name) and answers {"message":...}. */
static ert_status adapter_call(ert_instance *instance, const ert_call *call, const char *request, size_t length,
                               const ert_sink *response, ert_error *error, const char *path, bool with_path) {
    REQUIRE_OBJECT(request, length, error);
    char name[256], lora_path[1024];
    if (!json_get_string(request, length, "lora_name", name, sizeof name) || name[0] == '\0')
        return fail(error, ERT_STATUS_INVALID_ARGUMENT, 0, "lora_name must be a non-empty string");
    if (with_path && (!json_get_string(request, length, "lora_path", lora_path, sizeof lora_path) || lora_path[0] == '\0'))
        return fail(error, ERT_STATUS_INVALID_ARGUMENT, 0, "lora_path must be a non-empty string");
    buffer body = {0};
    ert_sink body_sink = {sizeof body_sink, &body, buffer_write};
    bool written = sink_puts(&body_sink, "{\"lora_name\":") && sink_json_string(&body_sink, name, strlen(name));
    if (with_path) written = written && sink_puts(&body_sink, ",\"lora_path\":") && sink_json_string(&body_sink, lora_path, strlen(lora_path));
    written = written && sink_puts(&body_sink, "}");
    if (!written) {
        free(body.data);
        return fail(error, ERT_STATUS_INTERNAL, 0, "out of memory");
    }
    buffer reply = {0};
    int http_status = 0;
    ert_status status = engine_call(instance, call, "POST", path, body.data, &reply, &http_status, error);
    free(body.data);
    if (status == ERT_STATUS_OK && http_status != 200) status = engine_failure(error, http_status, &reply, path);
    if (status == ERT_STATUS_OK) {
        const char *text = reply.data ? reply.data : "";
        if (!sink_puts(response, "{\"message\":") || !sink_json_string(response, text, strlen(text)) || !sink_puts(response, "}"))
            status = fail(error, ERT_STATUS_INTERNAL, 0, "the host refused the answer");
    }
    free(reply.data);
    return status;
}

static ert_status op_load_lora(ert_instance *i, const ert_call *c, const char *r, size_t n, const ert_sink *s, ert_error *e) {
    return adapter_call(i, c, r, n, s, e, "/v1/load_lora_adapter", true);
}

static ert_status op_unload_lora(ert_instance *i, const ert_call *c, const char *r, size_t n, const ert_sink *s, ert_error *e) {
    return adapter_call(i, c, r, n, s, e, "/v1/unload_lora_adapter", false);
}

static const ert_operations operations = {
    .struct_size = sizeof(ert_operations),
    .health = op_health,
    .readiness = op_readiness,
    .engine_info = op_engine_info,
    .list_models = op_list_models,
    .load_lora_adapter = op_load_lora,
    .unload_lora_adapter = op_unload_lora,
    /* NULL: unsupported, the host answers 501 without calling. */
};

/* ---------------------------------------------------------------------------------------- */
/* Extension operations: typed C functions the host calls through libffi                    */
/* ---------------------------------------------------------------------------------------- */

/* template.echo(text: string, times: int64) -> string */
static ert_status ext_echo(ert_instance *instance, const ert_call *call, ert_error *error, const char *text, int64_t times,
                           const ert_sink *result) {
    (void)call;
    __atomic_fetch_add(&instance->echo_calls, 1, __ATOMIC_RELAXED);
    if (times < 0 || times > 100) return fail(error, ERT_STATUS_INVALID_ARGUMENT, 0, "times must be in 0...100");
    for (int64_t i = 0; i < times; i++)
        if (!sink_puts(result, text)) return fail(error, ERT_STATUS_INTERNAL, 0, "the host refused the result");
    return ERT_STATUS_OK;
}

/* template.scale(value: double, factor: double) -> double */
static ert_status ext_scale(ert_instance *instance, const ert_call *call, ert_error *error, double value, double factor,
                            double *result) {
    (void)instance;
    (void)call;
    (void)error;
    *result = value * factor;
    return ERT_STATUS_OK;
}

/* template.set_debug(enabled: bool) -> bool (the previous value); mutating */
static ert_status ext_set_debug(ert_instance *instance, const ert_call *call, ert_error *error, bool enabled, bool *result) {
    (void)call;
    (void)error;
    *result = instance->debug;
    instance->debug = enabled;
    return ERT_STATUS_OK;
}

/* template.echo_calls() -> int64: how often echo ran (lets tests see that bad arguments never
 * reach the driver). */
static ert_status ext_echo_calls(ert_instance *instance, const ert_call *call, ert_error *error, int64_t *result) {
    (void)call;
    (void)error;
    *result = __atomic_load_n(&instance->echo_calls, __ATOMIC_RELAXED);
    return ERT_STATUS_OK;
}

static const char *const echo_names[] = {"text", "times"};
static const ert_value_type echo_types[] = {ERT_TYPE_STRING, ERT_TYPE_INT64};
static const char *const scale_names[] = {"value", "factor"};
static const ert_value_type scale_types[] = {ERT_TYPE_DOUBLE, ERT_TYPE_DOUBLE};
static const char *const set_debug_names[] = {"enabled"};
static const ert_value_type set_debug_types[] = {ERT_TYPE_BOOL};

static const ert_extension_op echo_op = {sizeof(ert_extension_op), "template.echo", "Repeats text `times` times",
                                         ERT_TYPE_STRING, 0, echo_names, echo_types, 2, (void (*)(void))ext_echo};
static const ert_extension_op scale_op = {sizeof(ert_extension_op), "template.scale", "Multiplies two numbers",
                                          ERT_TYPE_DOUBLE, 0, scale_names, scale_types, 2, (void (*)(void))ext_scale};
static const ert_extension_op set_debug_op = {sizeof(ert_extension_op), "template.set_debug",
                                              "Turns debug mode on or off; returns the previous value", ERT_TYPE_BOOL,
                                              ERT_EXTENSION_MUTATING, set_debug_names, set_debug_types, 1,
                                              (void (*)(void))ext_set_debug};
static const ert_extension_op echo_calls_op = {sizeof(ert_extension_op), "template.echo_calls", "How often echo ran",
                                               ERT_TYPE_INT64, 0, NULL, NULL, 0, (void (*)(void))ext_echo_calls};

static const ert_extension_op *const extension_ops[] = {&echo_op, &scale_op, &set_debug_op, &echo_calls_op};

/* ---------------------------------------------------------------------------------------- */
/* Metric rules (ABI 1.1): how the engine's Prometheus series map to the standard set         */
/* ---------------------------------------------------------------------------------------- */

/* The engine here speaks vLLM's metric names; `engine` is its data-parallel rank label. */
static const ert_metric_rule running_rule = {
    .struct_size = sizeof(ert_metric_rule), .source_type = ERT_METRIC_GAUGE,
    .source_name = "vllm:num_requests_running", .standard_name = "llm_engine_requests_running",
    .aggregate = ERT_AGGREGATE_SUM, .aggregate_labels = "engine"};
static const ert_metric_rule waiting_rule = {
    .struct_size = sizeof(ert_metric_rule), .source_type = ERT_METRIC_GAUGE,
    .source_name = "vllm:num_requests_waiting", .standard_name = "llm_engine_requests_waiting",
    .aggregate = ERT_AGGREGATE_SUM, .aggregate_labels = "engine"};
static const ert_metric_rule prompt_rule = {
    .struct_size = sizeof(ert_metric_rule), .source_type = ERT_METRIC_COUNTER,
    .source_name = "vllm:prompt_tokens_total", .standard_name = "llm_engine_prompt_tokens",
    .aggregate = ERT_AGGREGATE_SUM, .aggregate_labels = "engine"};
static const ert_metric_rule finished_rule = {
    .struct_size = sizeof(ert_metric_rule), .source_type = ERT_METRIC_COUNTER,
    .source_name = "vllm:request_success_total", .standard_name = "llm_engine_requests_finished",
    .aggregate = ERT_AGGREGATE_SUM, .aggregate_labels = "engine", .label_renames = "finished_reason=reason"};

static const ert_metric_rule *const metric_rules[] = {&running_rule, &waiting_rule, &prompt_rule, &finished_rule};

/* ---------------------------------------------------------------------------------------- */
/* Descriptor and entry                                                                     */
/* ---------------------------------------------------------------------------------------- */

static const char *const engine_kinds[] = {TEMPLATE_ENGINE_KIND, NULL};

static const ert_driver_descriptor descriptor = {
    .struct_size = sizeof(ert_driver_descriptor),
    .magic = ERT_MAGIC,
    .abi_major = ERT_ABI_VERSION_MAJOR,
    .abi_minor = ERT_ABI_VERSION_MINOR,
    .min_host_abi_minor = 0,
    .name = TEMPLATE_DRIVER_NAME,
    .version = "1.0.0",
    .description = "Template driver for an OpenAI/vLLM-style HTTP engine",
    .engine_kinds = engine_kinds,
    .capabilities = ERT_CAP_MULTI_INSTANCE | ERT_CAP_LORA_DYNAMIC,
    .config_schema_json = "{\"type\":\"object\"}",
    .create_instance = create_instance,
    .destroy_instance = destroy_instance,
    .operations = &operations,
    .extension_ops = extension_ops,
    .extension_op_count = sizeof extension_ops / sizeof extension_ops[0],
    .metrics_path = "/metrics",
    .metric_rules = metric_rules,
    .metric_rule_count = sizeof metric_rules / sizeof metric_rules[0],
};

ERT_EXPORT const ert_driver_descriptor *ert_driver_entry_v1(const ert_host_info *host, ert_error *error) {
    if (host == NULL || host->magic != ERT_MAGIC || host->abi_major != ERT_ABI_VERSION_MAJOR) {
        fail(error, ERT_STATUS_UNSUPPORTED, 0, "this driver needs driver ABI major %u", ERT_ABI_VERSION_MAJOR);
        return NULL;
    }
    return &descriptor;
}

/* Fails to compile if the entry drifts from the header's typedef. */
__attribute__((unused)) static const ert_driver_entry_v1_fn entry_signature_check = ert_driver_entry_v1;

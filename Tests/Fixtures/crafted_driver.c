/*
 * A test driver whose every handshake and descriptor field can be broken with -D flags, so the
 * tests can build one .so per failure the host must report. With no flags it is a correct
 * driver whose health answer names it (to tell two drivers with the same entry symbol apart).
 */
#include "engine_runtime_driver.h"

#include <stdio.h>
#include <string.h>

/* Each -D variant leaves some of the definitions below unused. */
#pragma GCC diagnostic ignored "-Wunused-const-variable"
#pragma GCC diagnostic ignored "-Wunused-function"

#ifndef DRIVER_NAME
#define DRIVER_NAME "crafted"
#endif
#ifndef MAGIC
#define MAGIC ERT_MAGIC
#endif
#ifndef ABI_MAJOR
#define ABI_MAJOR ERT_ABI_VERSION_MAJOR
#endif
#ifndef MIN_HOST_MINOR
#define MIN_HOST_MINOR 0
#endif
#ifndef DESCRIPTOR_SIZE
#define DESCRIPTOR_SIZE sizeof(ert_driver_descriptor)
#endif
#ifndef OPERATIONS_SIZE
#define OPERATIONS_SIZE sizeof(ert_operations)
#endif
#ifndef ENTRY_NAME
#define ENTRY_NAME ert_driver_entry_v1
#endif
#ifndef EXT_VARIANT
#define EXT_VARIANT 0
#endif

struct ert_instance {
    int destroyed;
};
static struct ert_instance the_instance;

/* For the shutdown race test: calls that reached a destroyed instance, and destroys. */
ERT_EXPORT int crafted_uses_after_destroy = 0;
ERT_EXPORT int crafted_destroys = 0;

static void note_use(ert_instance *instance) {
    if (__atomic_load_n(&instance->destroyed, __ATOMIC_SEQ_CST)) __atomic_add_fetch(&crafted_uses_after_destroy, 1, __ATOMIC_SEQ_CST);
}

static ert_status create_instance(const ert_instance_config *config, ert_instance **out, ert_error *error) {
    (void)config;
    (void)error;
    __atomic_store_n(&the_instance.destroyed, 0, __ATOMIC_SEQ_CST);
    *out = &the_instance;
    return ERT_STATUS_OK;
}

static void destroy_instance(ert_instance *instance) {
    __atomic_store_n(&instance->destroyed, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&crafted_destroys, 1, __ATOMIC_SEQ_CST);
}

static bool is_object(const char *request, size_t length) {
    /* Enough for the tests: "{...}" with balanced quotes and a closing brace at the end. */
    if (length < 2 || request[0] != '{' || request[length - 1] != '}') return false;
    int quotes = 0;
    for (size_t i = 0; i < length; i++)
        if (request[i] == '"') quotes++;
    return quotes % 2 == 0;
}

static ert_status op_health(ert_instance *instance, const ert_call *call, const char *request, size_t length,
                            const ert_sink *response, ert_error *error) {
    note_use(instance);
    (void)call;
#ifdef CRASH_HEALTH
    volatile int *nothing = NULL;
    if (length > 0) return (ert_status)*nothing; /* a driver bug: segfault */
#endif
#ifdef BROKEN
    (void)request;
    (void)length;
    (void)error;
    const char *answer = "this is not json";
#else
    if (!is_object(request, length)) {
        error->status = ERT_STATUS_INVALID_ARGUMENT;
        snprintf(error->message, sizeof error->message, "the request must be a JSON object");
        return ERT_STATUS_INVALID_ARGUMENT;
    }
    const char *answer = "{\"healthy\":true,\"driver\":\"" DRIVER_NAME "\"}";
#endif
    response->write(response->context, answer, strlen(answer));
    return ERT_STATUS_OK;
}

static ert_status op_readiness(ert_instance *instance, const ert_call *call, const char *request, size_t length,
                               const ert_sink *response, ert_error *error) {
    (void)instance;
    (void)call;
    (void)response;
#ifdef BROKEN
    (void)request;
    (void)length;
    (void)error;
    return 42; /* an unknown status and no message */
#else
    if (!is_object(request, length)) {
        snprintf(error->message, sizeof error->message, "the request must be a JSON object");
        return ERT_STATUS_INVALID_ARGUMENT;
    }
    const char *answer = "{\"ready\":true}";
    response->write(response->context, answer, strlen(answer));
    return ERT_STATUS_OK;
#endif
}

#ifdef SLOW_MS
#include <time.h>
/* Sleeps SLOW_MS milliseconds without looking at the deadline: a driver that ignores it. */
static ert_status op_engine_info(ert_instance *instance, const ert_call *call, const char *request, size_t length,
                                 const ert_sink *response, ert_error *error) {
    note_use(instance);
    (void)call;
    (void)request;
    (void)length;
    (void)error;
    struct timespec pause = {SLOW_MS / 1000, (SLOW_MS % 1000) * 1000000L};
    nanosleep(&pause, NULL);
    note_use(instance);
    response->write(response->context, "{}", 2);
    return ERT_STATUS_OK;
}
#endif

static const ert_operations operations = {
    .struct_size = OPERATIONS_SIZE,
    .health = op_health,
    .readiness = op_readiness,
#ifdef SLOW_MS
    .engine_info = op_engine_info,
    .sleep = op_engine_info, /* the same slow body as a mutating operation */
#endif
#ifdef PAUSE_OP
    .pause = op_health, /* an ABI 1.2 entry: absent when OPERATIONS_SIZE is a 1.x size before it */
#endif
};

static ert_status ext_add(ert_instance *instance, const ert_call *call, ert_error *error, int64_t a, int64_t b, int64_t *result) {
    (void)instance;
    (void)call;
    (void)error;
    *result = a + b;
    return ERT_STATUS_OK;
}

static const char *const add_names[] = {"a", "b"};
static const ert_value_type add_types[] = {ERT_TYPE_INT64, ERT_TYPE_INT64};
static const char *const many_names[] = {"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8",
                                         "p9", "p10", "p11", "p12", "p13", "p14", "p15", "p16"};
static const ert_value_type many_types[] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
static const ert_value_type bad_types[] = {ERT_TYPE_INT64, 99};
static const char *const bad_param_names[] = {"a", "B c"};

#if EXT_VARIANT == 1
#define EXT_NAME "Bad-Name"
#else
#define EXT_NAME "crafted.add"
#endif
#if EXT_VARIANT == 3
#define EXT_TYPES bad_types
#else
#define EXT_TYPES add_types
#endif
#if EXT_VARIANT == 6
#define EXT_PARAM_NAMES bad_param_names
#else
#define EXT_PARAM_NAMES add_names
#endif
#if EXT_VARIANT == 5
#define EXT_FUNCTION NULL
#else
#define EXT_FUNCTION ((void (*)(void))ext_add)
#endif

static const ert_extension_op add_op = {sizeof(ert_extension_op), EXT_NAME, "Adds", ERT_TYPE_INT64, 0,
                                        EXT_PARAM_NAMES, EXT_TYPES, 2, EXT_FUNCTION};
static const ert_extension_op many_op = {sizeof(ert_extension_op), "crafted.many", NULL, ERT_TYPE_VOID, 0,
                                         many_names, many_types, 17, (void (*)(void))ext_add};
#if EXT_VARIANT == 2
static const ert_extension_op *const extension_ops[] = {&add_op, &add_op};
#elif EXT_VARIANT == 4
static const ert_extension_op *const extension_ops[] = {&many_op};
#else
static const ert_extension_op *const extension_ops[] = {&add_op};
#endif
static const ert_extension_op *const unused_ops[] __attribute__((unused)) = {&many_op};

static const ert_metric_rule bad_rule = {
    .struct_size = sizeof(ert_metric_rule), .source_type = ERT_METRIC_GAUGE, .source_name = "x:y",
    .standard_name = "not_standard", .aggregate = ERT_AGGREGATE_NONE};
static const ert_metric_rule *const bad_rules[] = {&bad_rule};

/* A rule as a 1.1 driver writes it: its struct_size ends before the 1.2 fields, so whatever
 * lies beyond (here set on purpose) must read as absent. */
static const ert_metric_rule old_rule = {
    .struct_size = ERT_METRIC_RULE_SIZE_V1_1, .source_type = ERT_METRIC_GAUGE, .source_name = "x:y",
    .standard_name = "llm_engine_requests_running", .aggregate = ERT_AGGREGATE_MAX, .aggregate_labels = "rank",
    .duplicate_labels = "tp_rank", .keep_labels = "model_name", .value_label = "block_size"};
static const ert_metric_rule *const old_rules[] = {&old_rule};

/* Rules that load but can never work, one per mistake `drivers check` must name: a counter
 * source without _total, a standard name outside the standard set, a gauge source for a
 * standard histogram; and one correct rule beside them. */
static const ert_metric_rule useless_counter = {
    .struct_size = sizeof(ert_metric_rule), .source_type = ERT_METRIC_COUNTER, .source_name = "crafted:prompt_tokens",
    .standard_name = "llm_engine_prompt_tokens", .aggregate = ERT_AGGREGATE_SUM};
static const ert_metric_rule unknown_standard = {
    .struct_size = sizeof(ert_metric_rule), .source_type = ERT_METRIC_GAUGE, .source_name = "crafted:queue",
    .standard_name = "llm_engine_queue_depth", .aggregate = ERT_AGGREGATE_SUM};
static const ert_metric_rule wrong_type = {
    .struct_size = sizeof(ert_metric_rule), .source_type = ERT_METRIC_GAUGE, .source_name = "crafted:ttft",
    .standard_name = "llm_engine_time_to_first_token_seconds", .aggregate = ERT_AGGREGATE_MAX};
static const ert_metric_rule good_rule = {
    .struct_size = sizeof(ert_metric_rule), .source_type = ERT_METRIC_GAUGE, .source_name = "crafted:running",
    .standard_name = "llm_engine_requests_running", .aggregate = ERT_AGGREGATE_SUM};
static const ert_metric_rule *const useless_rules[] = {&useless_counter, &unknown_standard, &wrong_type, &good_rule};

static const char *const engine_kinds[] = {"crafted-engine", NULL};
/* ABI 1.4: a counted list with no NULL after it; and 64 entries with no NULL at all. */
static const char *const counted_kinds[] = {"crafted-engine", "crafted-other"};
#define KINDS8 "crafted-engine", "crafted-engine", "crafted-engine", "crafted-engine", \
               "crafted-engine", "crafted-engine", "crafted-engine", "crafted-engine"
static const char *const unterminated_kinds[64] = {KINDS8, KINDS8, KINDS8, KINDS8, KINDS8, KINDS8, KINDS8, KINDS8};

static const ert_driver_descriptor descriptor = {
    .struct_size = DESCRIPTOR_SIZE,
    .magic = MAGIC,
    .abi_major = ABI_MAJOR,
    .abi_minor = ERT_ABI_VERSION_MINOR,
    .min_host_abi_minor = MIN_HOST_MINOR,
#ifdef NULL_NAME
    .name = NULL,
#else
    .name = DRIVER_NAME,
#endif
#ifdef NULL_VERSION
    .version = NULL,
#else
    .version = "0.0.1",
#endif
    .description = "crafted test driver",
#if defined(COUNTED_KINDS)
    .engine_kinds = counted_kinds,
    .engine_kind_count = COUNTED_KINDS,
#elif defined(UNTERMINATED_KINDS)
    .engine_kinds = unterminated_kinds,
#else
    .engine_kinds = engine_kinds,
#endif
    .capabilities = ERT_CAP_MULTI_INSTANCE,
#ifdef CONFIG_SCHEMA
    .config_schema_json =
        "{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"pool\"],\"properties\":{"
        "\"pool\":{\"type\":\"string\",\"enum\":[\"a\",\"b\"]},\"timeout_ms\":{\"type\":\"integer\",\"minimum\":1}}}",
#else
    .config_schema_json = NULL,
#endif
    .create_instance = create_instance,
#ifdef NULL_DESTROY
    .destroy_instance = NULL,
#else
    .destroy_instance = destroy_instance,
#endif
    .operations = &operations,
    .extension_ops = extension_ops,
    .extension_op_count = sizeof extension_ops / sizeof extension_ops[0],
#ifdef BAD_RULE
    .metric_rules = bad_rules,
    .metric_rule_count = 1,
#endif
#ifdef OLD_RULE
    .metric_rules = old_rules,
    .metric_rule_count = 1,
#endif
#ifdef USELESS_RULES
    .metric_rules = useless_rules,
    .metric_rule_count = 4,
#endif
};

ERT_EXPORT const ert_driver_descriptor *ENTRY_NAME(const ert_host_info *host, ert_error *error) {
#ifdef LOG_IN_ENTRY
    /* No host context exists yet: the header allows NULL. */
    host->services->log(NULL, ERT_LOG_WARNING, "crafted entry logs without a context");
#endif
    (void)host;
#ifdef REFUSE
    snprintf(error->message, sizeof error->message, "needs a GPU that is not there");
    return NULL;
#else
    (void)error;
    return &descriptor;
#endif
}

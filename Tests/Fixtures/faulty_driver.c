/*
 * A driver that fails on request, for the isolation tests: `sleep` with {"mode": FAULT} and the
 * extension operation `faulty.fault(kind: FAULT)` segfault ("segv"), abort ("abort"), hang
 * without looking at the deadline ("hang") or allocate until memory runs out ("alloc"); any
 * other word succeeds. `health`, `readiness` and `wake` always succeed, so a test can tell a
 * restarted driver from a dead one.
 */
#include "engine_runtime_driver.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DRIVER_NAME
#define DRIVER_NAME "faulty"
#endif

struct ert_instance {
    int unused;
};
static struct ert_instance the_instance;

static ert_status create_instance(const ert_instance_config *config, ert_instance **out, ert_error *error) {
    (void)config;
    (void)error;
    *out = &the_instance;
    return ERT_STATUS_OK;
}

static void destroy_instance(ert_instance *instance) { (void)instance; }

/* Does what `kind` names; returns when it names no fault. */
static void fail_as(const char *kind, size_t length) {
    if (length == 4 && memcmp(kind, "segv", 4) == 0) {
        volatile int *nothing = NULL;
        *nothing = 1;
    } else if (length == 5 && memcmp(kind, "abort", 5) == 0) {
        abort();
    } else if (length == 4 && memcmp(kind, "hang", 4) == 0) {
        for (;;) pause();
    } else if (length == 5 && memcmp(kind, "alloc", 5) == 0) {
        for (;;) {
            char *block = malloc(16 << 20);
            if (block == NULL) abort(); /* what most C code does when memory runs out */
            memset(block, 1, 16 << 20);
        }
    }
}

/* The value of "mode" in a flat JSON object, or NULL. */
static const char *mode_of(const char *request, size_t *length) {
    const char *key = strstr(request, "\"mode\"");
    if (key == NULL) return NULL;
    const char *open = strchr(key + 6, '"');
    if (open == NULL) return NULL;
    const char *close = strchr(open + 1, '"');
    if (close == NULL) return NULL;
    *length = (size_t)(close - open - 1);
    return open + 1;
}

static ert_status answer(const ert_sink *response, const char *text) {
    response->write(response->context, text, strlen(text));
    return ERT_STATUS_OK;
}

static ert_status op_health(ert_instance *instance, const ert_call *call, const char *request, size_t length,
                            const ert_sink *response, ert_error *error) {
    (void)instance, (void)call, (void)request, (void)length, (void)error;
    return answer(response, "{\"healthy\":true,\"pid\":0}");
}

static ert_status op_readiness(ert_instance *instance, const ert_call *call, const char *request, size_t length,
                               const ert_sink *response, ert_error *error) {
    (void)instance, (void)call, (void)request, (void)length, (void)error;
    return answer(response, "{\"ready\":true}");
}

static ert_status op_sleep(ert_instance *instance, const ert_call *call, const char *request, size_t length,
                           const ert_sink *response, ert_error *error) {
    (void)instance, (void)call, (void)length, (void)error;
    size_t mode_length = 0;
    const char *mode = mode_of(request, &mode_length);
    if (mode != NULL) fail_as(mode, mode_length);
    return answer(response, "{\"sleeping\":true}");
}

static ert_status op_wake(ert_instance *instance, const ert_call *call, const char *request, size_t length,
                          const ert_sink *response, ert_error *error) {
    (void)instance, (void)call, (void)request, (void)length, (void)error;
    return answer(response, "{\"sleeping\":false}");
}

static ert_status ext_fault(ert_instance *instance, const ert_call *call, ert_error *error, const char *kind, int64_t *result) {
    (void)instance, (void)call, (void)error;
    fail_as(kind, strlen(kind));
    *result = (int64_t)getpid();
    return ERT_STATUS_OK;
}

static const ert_operations operations = {
    .struct_size = sizeof(ert_operations),
    .health = op_health,
    .readiness = op_readiness,
    .sleep = op_sleep,
    .wake = op_wake,
};

static const char *const fault_names[] = {"kind"};
static const ert_value_type fault_types[] = {ERT_TYPE_STRING};
static const ert_extension_op fault_op = {sizeof(ert_extension_op), "faulty.fault", "Fails as kind says; else answers its pid",
                                          ERT_TYPE_INT64, ERT_EXTENSION_MUTATING, fault_names, fault_types, 1,
                                          (void (*)(void))ext_fault};
static const ert_extension_op *const extension_ops[] = {&fault_op};
static const char *const engine_kinds[] = {"faulty-engine", NULL};

static const ert_driver_descriptor descriptor = {
    .struct_size = sizeof(ert_driver_descriptor),
    .magic = ERT_MAGIC,
    .abi_major = ERT_ABI_VERSION_MAJOR,
    .abi_minor = ERT_ABI_VERSION_MINOR,
    .name = DRIVER_NAME,
    .version = "1.0.0",
    .engine_kinds = engine_kinds,
    .capabilities = ERT_CAP_SLEEP,
    .create_instance = create_instance,
    .destroy_instance = destroy_instance,
    .operations = &operations,
    .extension_ops = extension_ops,
    .extension_op_count = 1,
};

ERT_EXPORT const ert_driver_descriptor *ert_driver_entry_v1(const ert_host_info *host, ert_error *error) {
    (void)host;
    (void)error;
    return &descriptor;
}

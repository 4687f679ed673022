/*
 * Pins the layout of ABI v1 on LP64 targets: every offset and size below is part of the
 * published contract. If a field is inserted, removed or reordered this file stops compiling,
 * which is the point. Appending a field (a minor version bump) changes only the matching
 * sizeof line, and that edit must come with the ERT_ABI_VERSION_MINOR bump.
 */
#include "engine_runtime_driver.h"

#include <assert.h>

#if UINTPTR_MAX == 0xffffffffffffffffu

#define PIN(type, field, offset) static_assert(offsetof(type, field) == (offset), #type "." #field)
#define SIZE(type, size) static_assert(sizeof(type) == (size), "sizeof(" #type ")")

PIN(ert_sink, struct_size, 0);
PIN(ert_sink, context, 8);
PIN(ert_sink, write, 16);
SIZE(ert_sink, 24);

PIN(ert_error, struct_size, 0);
PIN(ert_error, status, 4);
PIN(ert_error, upstream_http_status, 8);
PIN(ert_error, message, 12);
SIZE(ert_error, 1036);

PIN(ert_http_request, struct_size, 0);
PIN(ert_http_request, method, 8);
PIN(ert_http_request, url, 16);
PIN(ert_http_request, headers, 24);
PIN(ert_http_request, header_count, 32);
PIN(ert_http_request, body, 40);
PIN(ert_http_request, body_length, 48);
PIN(ert_http_request, timeout_ms, 56);
PIN(ert_http_request, flags, 60);
PIN(ert_http_request, max_response_bytes, 64);
SIZE(ert_http_request, 72);

PIN(ert_http_response, struct_size, 0);
PIN(ert_http_response, status, 4);
PIN(ert_http_response, content_type, 8);
SIZE(ert_http_response, 136);

PIN(ert_host_services, struct_size, 0);
PIN(ert_host_services, log, 8);
PIN(ert_host_services, http_request, 16);
PIN(ert_host_services, is_cancelled, 24);
PIN(ert_host_services, remaining_ms, 32);
PIN(ert_host_services, report_progress, 40);
PIN(ert_host_services, get_extension, 48);
SIZE(ert_host_services, 56);

PIN(ert_host_info, struct_size, 0);
PIN(ert_host_info, magic, 4);
PIN(ert_host_info, abi_major, 8);
PIN(ert_host_info, abi_minor, 10);
PIN(ert_host_info, host_name, 16);
PIN(ert_host_info, host_version, 24);
PIN(ert_host_info, services, 32);
SIZE(ert_host_info, 40);

PIN(ert_instance_config, struct_size, 0);
PIN(ert_instance_config, instance_name, 8);
PIN(ert_instance_config, engine_kind, 16);
PIN(ert_instance_config, endpoint, 24);
PIN(ert_instance_config, api_key, 32);
PIN(ert_instance_config, engine_version, 40);
PIN(ert_instance_config, config_json, 48);
PIN(ert_instance_config, host_context, 56);
PIN(ert_instance_config, services, 64);
/* 1.2 */
PIN(ert_instance_config, admin_api_key, 72);
SIZE(ert_instance_config, 80);

PIN(ert_call, struct_size, 0);
PIN(ert_call, host_context, 8);
SIZE(ert_call, 16);

PIN(ert_operations, struct_size, 0);
PIN(ert_operations, health, 8);
PIN(ert_operations, readiness, 16);
PIN(ert_operations, engine_info, 24);
PIN(ert_operations, list_models, 32);
PIN(ert_operations, load_lora_adapter, 40);
PIN(ert_operations, unload_lora_adapter, 48);
PIN(ert_operations, load_model, 56);
PIN(ert_operations, unload_model, 64);
PIN(ert_operations, sleep, 72);
PIN(ert_operations, wake, 80);
PIN(ert_operations, reset_cache, 88);
PIN(ert_operations, metrics, 96);
/* 1.2 */
PIN(ert_operations, pause, 104);
PIN(ert_operations, resume, 112);
PIN(ert_operations, reload_weights, 120);
SIZE(ert_operations, 128);

PIN(ert_extension_op, struct_size, 0);
PIN(ert_extension_op, name, 8);
PIN(ert_extension_op, description, 16);
PIN(ert_extension_op, result_type, 24);
PIN(ert_extension_op, flags, 28);
PIN(ert_extension_op, param_names, 32);
PIN(ert_extension_op, param_types, 40);
PIN(ert_extension_op, param_count, 48);
PIN(ert_extension_op, function, 56);
SIZE(ert_extension_op, 64);

PIN(ert_driver_descriptor, struct_size, 0);
PIN(ert_driver_descriptor, magic, 4);
PIN(ert_driver_descriptor, abi_major, 8);
PIN(ert_driver_descriptor, abi_minor, 10);
PIN(ert_driver_descriptor, min_host_abi_minor, 12);
PIN(ert_driver_descriptor, reserved0, 14);
PIN(ert_driver_descriptor, name, 16);
PIN(ert_driver_descriptor, version, 24);
PIN(ert_driver_descriptor, description, 32);
PIN(ert_driver_descriptor, engine_kinds, 40);
PIN(ert_driver_descriptor, capabilities, 48);
PIN(ert_driver_descriptor, config_schema_json, 56);
PIN(ert_driver_descriptor, create_instance, 64);
PIN(ert_driver_descriptor, destroy_instance, 72);
PIN(ert_driver_descriptor, operations, 80);
PIN(ert_driver_descriptor, extension_ops, 88);
PIN(ert_driver_descriptor, extension_op_count, 96);
/* 1.1 */
PIN(ert_driver_descriptor, metrics_path, 104);
PIN(ert_driver_descriptor, metric_rules, 112);
PIN(ert_driver_descriptor, metric_rule_count, 120);
/* 1.3 */
PIN(ert_driver_descriptor, plan_launch, 128);
/* 1.4 */
PIN(ert_driver_descriptor, engine_kind_count, 136);
SIZE(ert_driver_descriptor, 144);

PIN(ert_metric_rule, struct_size, 0);
PIN(ert_metric_rule, source_type, 4);
PIN(ert_metric_rule, source_name, 8);
PIN(ert_metric_rule, standard_name, 16);
PIN(ert_metric_rule, scale, 24);
PIN(ert_metric_rule, aggregate, 32);
PIN(ert_metric_rule, reserved0, 36);
PIN(ert_metric_rule, aggregate_labels, 40);
PIN(ert_metric_rule, label_renames, 48);
PIN(ert_metric_rule, label_values, 56);
PIN(ert_metric_rule, match_labels, 64);
PIN(ert_metric_rule, set_labels, 72);
/* 1.2 */
PIN(ert_metric_rule, duplicate_labels, 80);
PIN(ert_metric_rule, keep_labels, 88);
PIN(ert_metric_rule, value_label, 96);
SIZE(ert_metric_rule, 104);

/* The sizes as first published never change. */
static_assert(ERT_DRIVER_DESCRIPTOR_SIZE_V1_0 == 104, "v1.0 size");
static_assert(ERT_DRIVER_DESCRIPTOR_SIZE_V1_1 == 128, "v1.1 size");
static_assert(ERT_OPERATIONS_SIZE_V1_0 == 104, "v1.0 size");
static_assert(ERT_HOST_SERVICES_SIZE_V1_0 == 56, "v1.0 size");
static_assert(ERT_METRIC_RULE_SIZE_V1_1 == 80, "v1.1 size");
static_assert(ERT_OPERATIONS_SIZE_V1_2 == 128, "v1.2 size");
static_assert(ERT_INSTANCE_CONFIG_SIZE_V1_2 == 80, "v1.2 size");
static_assert(ERT_METRIC_RULE_SIZE_V1_2 == 104, "v1.2 size");
static_assert(ERT_DRIVER_DESCRIPTOR_SIZE_V1_3 == 136, "v1.3 size");
static_assert(ERT_DRIVER_DESCRIPTOR_SIZE_V1_4 == 144, "v1.4 size");

#endif

static_assert(sizeof(ert_status) == 4, "ert_status is 32-bit");
static_assert(sizeof(ert_value_type) == 4, "ert_value_type is 32-bit");

/* Keeps the translation unit non-empty under -Wpedantic. */
__attribute__((visibility("hidden"))) int ert_abi_layout_checks_present(void) { return 1; }

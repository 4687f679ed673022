//! A template engine-runtime driver in Rust, with the standard library only.
//!
//! Copy this directory, rename the driver, and replace the engine calls with your engine's API.
//! It drives an engine with an OpenAI/vLLM-style HTTP API through the host's HTTP service:
//!
//!   cargo build --release --offline
//!   engine-runtime drivers check target/release/librust_template_driver.so
//!
//! What it shows: the one exported entry symbol and the handshake; static descriptor data
//! behind `Shared` (raw pointers are not `Sync`); every entry point inside `guard` (no panic
//! crosses into the host); answers through the caller's sink and errors into its `ert_error`;
//! HTTP and logging through the host; two typed extension operations declared with
//! `extension!`; a metric rule. `abi.rs` binds the whole header, `layout.rs` (generated) checks
//! it against the C compiler at build time, `host.rs` has the safe wrappers.

pub mod abi;
pub mod host;
mod json;
mod layout;

use abi::*;
use host::{bytes, guard, text, Failure, Host, Shared, Sink};
use std::os::raw::c_char;

const NAME: &str = "rust-template\0";
const VERSION: &str = "0.1.0\0";

/// One engine the driver manages: what `create_instance` copied from the host's config (the
/// host's strings are only borrowed for that call).
pub struct Instance {
    endpoint: String,
    api_key: Option<String>,
    host: Host,
}

impl Instance {
    /// The instance behind the host's opaque pointer.
    ///
    /// # Safety
    /// `instance` is NULL or a pointer `create_instance` returned and `destroy_instance` has
    /// not yet received.
    pub unsafe fn from_raw<'a>(instance: *mut ert_instance) -> Result<&'a Instance, Failure> {
        (instance as *const Instance).as_ref().ok_or_else(|| Failure::invalid("instance is NULL"))
    }

    fn call(&self, host: Host, method: &str, path: &str, body: Option<&[u8]>) -> Result<host::Response, Failure> {
        let authorization = self.api_key.as_ref().map(|key| format!("Authorization: Bearer {}", key));
        let mut headers: Vec<&str> = Vec::new();
        if let Some(line) = &authorization {
            headers.push(line);
        }
        if body.is_some() {
            headers.push("Content-Type: application/json");
        }
        host.request(method, &format!("{}{}", self.endpoint, path), &headers, body.unwrap_or(&[]), method == "GET")
    }
}

unsafe extern "C" fn create_instance(config: *const ert_instance_config, out: *mut *mut ert_instance, error: *mut ert_error) -> ert_status {
    guard(error, || {
        let config = config.as_ref().ok_or_else(|| Failure::invalid("config is NULL"))?;
        let endpoint = text(config.endpoint).ok_or_else(|| Failure::invalid("endpoint is missing"))?;
        let instance = Box::new(Instance {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            api_key: text(config.api_key).map(str::to_string),
            host: Host::new(config.services, config.host_context),
        });
        instance.host.log(ERT_LOG_DEBUG, &format!("rust-template instance for {}", instance.endpoint));
        *out = Box::into_raw(instance) as *mut ert_instance;
        Ok(ERT_STATUS_OK)
    })
}

unsafe extern "C" fn destroy_instance(instance: *mut ert_instance) {
    if !instance.is_null() {
        // No panic may escape, even from a destructor.
        let _ = std::panic::catch_unwind(|| drop(Box::from_raw(instance as *mut Instance)));
    }
}

/// The body every JSON operation shares: the instance, the call's host, the request bytes
/// (checked to be a JSON object), the sink; the operation's own code is `body`.
unsafe fn operation(
    instance: *mut ert_instance, call: *const ert_call, request: *const c_char, length: usize, response: *const ert_sink,
    error: *mut ert_error, body: impl FnOnce(&Instance, Host, &[u8]) -> Result<Vec<u8>, Failure>,
) -> ert_status {
    guard(error, || {
        let instance = Instance::from_raw(instance)?;
        let request = bytes(request, length);
        if !json::is_object(request) {
            return Err(Failure::invalid("the request must be a JSON object"));
        }
        let answer = body(instance, instance.host.for_call(call), request)?;
        Sink::from_raw(response).write(&answer)?;
        Ok(ERT_STATUS_OK)
    })
}

/// The engine's answer, or its error as `UPSTREAM` with the engine's status.
fn expect_ok(response: host::Response, what: &str) -> Result<host::Response, Failure> {
    if response.status == 200 {
        Ok(response)
    } else {
        Err(Failure::upstream(response.status, format!("{} answered HTTP {}", what, response.status)))
    }
}

unsafe extern "C" fn health(i: *mut ert_instance, c: *const ert_call, r: *const c_char, l: usize, s: *const ert_sink, e: *mut ert_error) -> ert_status {
    operation(i, c, r, l, s, e, |instance, host, _| {
        let healthy = match instance.call(host, "GET", "/health", None) {
            Ok(answer) => answer.status == 200,
            Err(failure) if failure.status == ERT_STATUS_UNAVAILABLE => false,
            Err(failure) => return Err(failure),
        };
        Ok(format!("{{\"healthy\":{}}}", healthy).into_bytes())
    })
}

unsafe extern "C" fn readiness(i: *mut ert_instance, c: *const ert_call, r: *const c_char, l: usize, s: *const ert_sink, e: *mut ert_error) -> ert_status {
    operation(i, c, r, l, s, e, |instance, host, _| {
        let ready = match instance.call(host, "GET", "/v1/models", None) {
            Ok(answer) => answer.status == 200,
            Err(failure) if failure.status == ERT_STATUS_UNAVAILABLE => false,
            Err(failure) => return Err(failure),
        };
        Ok(format!("{{\"ready\":{}}}", ready).into_bytes())
    })
}

unsafe extern "C" fn engine_info(i: *mut ert_instance, c: *const ert_call, r: *const c_char, l: usize, s: *const ert_sink, e: *mut ert_error) -> ert_status {
    operation(i, c, r, l, s, e, |instance, host, _| {
        // What a bug looks like to the host: guard() turns the panic into ERT_STATUS_INTERNAL.
        if cfg!(feature = "panic-on-info") {
            panic!("engine_info panics (the panic-on-info feature)");
        }
        // `engine` is required: the kind of engine, as /v1/engines/{name}/info shows it.
        let version = instance.call(host, "GET", "/version", None).ok().filter(|a| a.status == 200);
        let version = version.and_then(|answer| json::string_field(&answer.body, "version")).unwrap_or_default();
        Ok(format!("{{\"engine\":\"rust-template-engine\",\"version\":{}}}", json::quote(&version)).into_bytes())
    })
}

unsafe extern "C" fn list_models(i: *mut ert_instance, c: *const ert_call, r: *const c_char, l: usize, s: *const ert_sink, e: *mut ert_error) -> ert_status {
    // The engine's OpenAI model list is already the answer the host wants (cards with `id`,
    // adapters with `parent`), so it passes through once checked to be JSON.
    operation(i, c, r, l, s, e, |instance, host, _| {
        let answer = expect_ok(instance.call(host, "GET", "/v1/models", None)?, "GET /v1/models")?;
        if !json::is_object(&answer.body) {
            return Err(Failure::upstream(200, "GET /v1/models answered something that is not a JSON object"));
        }
        Ok(answer.body)
    })
}

unsafe extern "C" fn load_lora_adapter(i: *mut ert_instance, c: *const ert_call, r: *const c_char, l: usize, s: *const ert_sink, e: *mut ert_error) -> ert_status {
    operation(i, c, r, l, s, e, |instance, host, request| {
        let name = json::string_field(request, "lora_name").ok_or_else(|| Failure::invalid("lora_name is required"))?;
        let path = json::string_field(request, "lora_path").ok_or_else(|| Failure::invalid("lora_path is required"))?;
        let body = format!("{{\"lora_name\":{},\"lora_path\":{}}}", json::quote(&name), json::quote(&path));
        expect_ok(instance.call(host, "POST", "/v1/load_lora_adapter", Some(body.as_bytes()))?, "POST /v1/load_lora_adapter")?;
        host.log(ERT_LOG_INFO, &format!("adapter {} loaded", name));
        Ok(format!("{{\"message\":\"adapter {} loaded\"}}", json::escape(&name)).into_bytes())
    })
}

unsafe extern "C" fn unload_lora_adapter(i: *mut ert_instance, c: *const ert_call, r: *const c_char, l: usize, s: *const ert_sink, e: *mut ert_error) -> ert_status {
    operation(i, c, r, l, s, e, |instance, host, request| {
        let name = json::string_field(request, "lora_name").ok_or_else(|| Failure::invalid("lora_name is required"))?;
        let body = format!("{{\"lora_name\":{}}}", json::quote(&name));
        expect_ok(instance.call(host, "POST", "/v1/unload_lora_adapter", Some(body.as_bytes()))?, "POST /v1/unload_lora_adapter")?;
        Ok(format!("{{\"message\":\"adapter {} unloaded\"}}", json::escape(&name)).into_bytes())
    })
}

extension!(ADD, "rust_template.add", "Adds two integers (a typed extension operation)", mutating = false,
    fn add(_instance: &Instance, _host: Host, a: i64, b: i64) -> i64 { Ok(a.wrapping_add(b)) });

extension!(ECHO, "rust_template.echo", "Repeats text, logging it through the host", mutating = false,
    fn echo(_instance: &Instance, host: Host, text: String, times: i64) -> String {
        if !(0..=100).contains(&times) {
            return Err(Failure::invalid("times must be within 0...100"));
        }
        host.log(ERT_LOG_DEBUG, "echo called");
        Ok(text.repeat(times as usize))
    });

static OPERATIONS: ert_operations = ert_operations {
    struct_size: core::mem::size_of::<ert_operations>() as u32,
    health: Some(health),
    readiness: Some(readiness),
    engine_info: Some(engine_info),
    list_models: Some(list_models),
    load_lora_adapter: Some(load_lora_adapter),
    unload_lora_adapter: Some(unload_lora_adapter),
    load_model: None,
    unload_model: None,
    sleep: None,
    wake: None,
    reset_cache: None,
    metrics: None,
    pause: None,
    resume: None,
    reload_weights: None,
};

static EXTENSIONS: Shared<[*const ert_extension_op; 2]> = Shared([&ADD::OP.0, &ECHO::OP.0]);

static RUNNING: Shared<ert_metric_rule> = Shared(ert_metric_rule {
    struct_size: core::mem::size_of::<ert_metric_rule>() as u32,
    source_type: ERT_METRIC_GAUGE,
    source_name: "vllm:num_requests_running\0".as_ptr() as *const c_char,
    standard_name: "llm_engine_requests_running\0".as_ptr() as *const c_char,
    scale: 0.0,
    aggregate: ERT_AGGREGATE_NONE,
    reserved0: 0,
    aggregate_labels: core::ptr::null(),
    label_renames: core::ptr::null(),
    label_values: core::ptr::null(),
    match_labels: core::ptr::null(),
    set_labels: core::ptr::null(),
    duplicate_labels: core::ptr::null(),
    keep_labels: core::ptr::null(),
    value_label: core::ptr::null(),
});
static RULES: Shared<[*const ert_metric_rule; 1]> = Shared([&RUNNING.0]);

/// Counted (ABI 1.4's `engine_kind_count`), so no NULL entry is needed; an older host reads the
/// list NULL-terminated, so the NULL stays for it.
static ENGINE_KINDS: Shared<[*const c_char; 2]> = Shared(["rust-template-engine\0".as_ptr() as *const c_char, core::ptr::null()]);

static DESCRIPTOR: Shared<ert_driver_descriptor> = Shared(ert_driver_descriptor {
    struct_size: core::mem::size_of::<ert_driver_descriptor>() as u32,
    magic: ERT_MAGIC,
    abi_major: ERT_ABI_VERSION_MAJOR,
    abi_minor: ERT_ABI_VERSION_MINOR,
    min_host_abi_minor: 1,
    reserved0: 0,
    name: NAME.as_ptr() as *const c_char,
    version: VERSION.as_ptr() as *const c_char,
    description: "Rust template driver (OpenAI/vLLM-style engines)\0".as_ptr() as *const c_char,
    engine_kinds: &ENGINE_KINDS.0 as *const [*const c_char; 2] as *const *const c_char,
    capabilities: ERT_CAP_MULTI_INSTANCE | ERT_CAP_LORA_DYNAMIC | ERT_CAP_PROMETHEUS,
    config_schema_json: "{\"type\":\"object\",\"additionalProperties\":false}\0".as_ptr() as *const c_char,
    create_instance: Some(create_instance),
    destroy_instance: Some(destroy_instance),
    operations: &OPERATIONS,
    extension_ops: &EXTENSIONS.0 as *const [*const ert_extension_op; 2] as *const *const ert_extension_op,
    extension_op_count: 2,
    metrics_path: "/metrics\0".as_ptr() as *const c_char,
    metric_rules: &RULES.0 as *const [*const ert_metric_rule; 1] as *const *const ert_metric_rule,
    metric_rule_count: 1,
    plan_launch: None,
    engine_kind_count: 1,
});

/// The one exported symbol. Called once per process; refuses a host of another ABI major.
#[no_mangle]
pub unsafe extern "C" fn ert_driver_entry_v1(host: *const ert_host_info, error: *mut ert_error) -> *const ert_driver_descriptor {
    let mut descriptor: *const ert_driver_descriptor = core::ptr::null();
    guard(error, || {
        let host = host.as_ref().ok_or_else(|| Failure::invalid("host info is NULL"))?;
        if host.magic != ERT_MAGIC || host.abi_major != ERT_ABI_VERSION_MAJOR {
            return Err(Failure::new(ERT_STATUS_UNSUPPORTED, format!("needs driver ABI major {}", ERT_ABI_VERSION_MAJOR)));
        }
        descriptor = &DESCRIPTOR.0;
        Ok(ERT_STATUS_OK)
    });
    descriptor
}

// Checked at build time too: the entry point has the header's type.
const _: ert_driver_entry_v1_fn = ert_driver_entry_v1;

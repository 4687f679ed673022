//! Safe wrappers over the ABI: what a Rust driver needs so that its own code has no `unsafe`.
//!
//! - [`Shared`]: static descriptor data holds raw pointers, which are not `Sync`; the data is
//!   immutable and lives for the process, so sharing it is sound.
//! - [`guard`]: every function the host calls runs inside it. A panic must not unwind into the
//!   host (undefined behaviour, and with `panic = "abort"` the whole sidecar would die): it
//!   becomes `ERT_STATUS_INTERNAL` with the panic's message.
//! - [`Failure`] and [`report`]: an error for the host, written into its `ert_error` without
//!   writing past the `struct_size` the host gave.
//! - [`Sink`]: answers through the host's sink. [`Host`]: logging and HTTP through the host.
//! - [`bytes`]: the header allows NULL with length 0, which `slice::from_raw_parts` does not.
//! - [`extension!`]: an extension operation declared from a typed Rust function, so its C
//!   signature and its declared types cannot disagree (a mismatch is undefined behaviour in
//!   the host's libffi call).

use crate::abi::*;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Immutable static data shared by every thread of the process.
#[repr(transparent)]
pub struct Shared<T>(pub T);
unsafe impl<T> Sync for Shared<T> {}

/// A failure to report to the host: an `ERT_STATUS_*` and a message for the operator.
#[derive(Debug)]
pub struct Failure {
    pub status: ert_status,
    pub message: String,
    /// The engine's HTTP status, 0 when there was no HTTP answer.
    pub upstream_http_status: i32,
}

impl Failure {
    pub fn new(status: ert_status, message: impl Into<String>) -> Failure {
        Failure { status, message: message.into(), upstream_http_status: 0 }
    }
    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(ERT_STATUS_INVALID_ARGUMENT, message)
    }
    pub fn upstream(http_status: i32, message: impl Into<String>) -> Failure {
        Failure { status: ERT_STATUS_UPSTREAM, message: message.into(), upstream_http_status: http_status }
    }
}

/// Writes `failure` into the host's `ert_error` (never past its `struct_size`); its status.
///
/// # Safety
/// `error` is NULL or the `ert_error` the host passed to the current call.
pub unsafe fn report(error: *mut ert_error, failure: &Failure) -> ert_status {
    if error.is_null() {
        return failure.status;
    }
    let size = (*error).struct_size as usize;
    let header = core::mem::offset_of!(ert_error, message);
    if size >= core::mem::offset_of!(ert_error, upstream_http_status) + 4 {
        (*error).status = failure.status;
        (*error).upstream_http_status = failure.upstream_http_status;
    }
    if size > header {
        let capacity = (size - header).min(ERT_ERROR_MESSAGE_CAPACITY);
        let text = failure.message.as_bytes();
        // Cut at a character boundary, leaving room for the NUL.
        let mut length = text.len().min(capacity - 1);
        while length > 0 && !failure.message.is_char_boundary(length) {
            length -= 1;
        }
        let target = (*error).message.as_mut_ptr() as *mut u8;
        core::ptr::copy_nonoverlapping(text.as_ptr(), target, length);
        *target.add(length) = 0;
    }
    failure.status
}

/// Runs `body`, the whole of a function the host calls: its `Ok` status, its `Err` written to
/// `error`, a panic turned into `ERT_STATUS_INTERNAL`.
pub fn guard(error: *mut ert_error, body: impl FnOnce() -> Result<ert_status, Failure>) -> ert_status {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => return status,
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            Failure::new(ERT_STATUS_INTERNAL, format!("the driver panicked: {}", text))
        }
    };
    unsafe { report(error, &failure) }
}

/// The bytes of a (pointer, length) pair the host passed; empty for NULL.
///
/// # Safety
/// `data` is NULL or points at `length` readable bytes for the returned lifetime.
pub unsafe fn bytes<'a>(data: *const c_char, length: usize) -> &'a [u8] {
    if data.is_null() || length == 0 {
        &[]
    } else {
        core::slice::from_raw_parts(data as *const u8, length)
    }
}

/// A borrowed C string as Rust text; None for NULL or invalid UTF-8.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string valid for the returned lifetime.
pub unsafe fn text<'a>(text: *const c_char) -> Option<&'a str> {
    if text.is_null() {
        None
    } else {
        CStr::from_ptr(text).to_str().ok()
    }
}

/// The host's sink for one call's answer.
pub struct Sink(*const ert_sink);

impl Sink {
    /// # Safety
    /// `sink` is the `ert_sink` the host passed to the current call.
    pub unsafe fn from_raw(sink: *const ert_sink) -> Sink {
        Sink(sink)
    }

    /// Writes `data`; a refusal (or a NULL sink) is a failure of the call.
    pub fn write(&self, data: &[u8]) -> Result<(), Failure> {
        let written = unsafe {
            match self.0.as_ref().and_then(|sink| sink.write.map(|write| (sink, write))) {
                Some((sink, write)) => data.is_empty() || write(sink.context, data.as_ptr() as *const c_char, data.len()),
                None => false,
            }
        };
        if written {
            Ok(())
        } else {
            Err(Failure::new(ERT_STATUS_INTERNAL, "the host's sink refused the answer"))
        }
    }
}

/// The host's services with a host context: an instance's (for work outside a call) or a
/// call's (its deadline, cancellation and log tags). Both the table and the contexts are
/// thread-safe and outlive what they are handed for.
#[derive(Clone, Copy)]
pub struct Host {
    services: *const ert_host_services,
    context: *mut c_void,
}
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

/// An HTTP answer from the engine.
pub struct Response {
    pub status: i32,
    pub content_type: String,
    pub body: Vec<u8>,
}

unsafe extern "C" fn append(context: *mut c_void, data: *const c_char, length: usize) -> bool {
    let body = &mut *(context as *mut Vec<u8>);
    body.extend_from_slice(bytes(data, length));
    true
}

impl Host {
    /// # Safety
    /// `services` is the host's table; `context` a host context from the same host.
    pub unsafe fn new(services: *const ert_host_services, context: *mut c_void) -> Host {
        Host { services, context }
    }

    /// The same services with a call's context (deadline, cancellation, the operation's tags).
    ///
    /// # Safety
    /// `call` is NULL or the `ert_call` the host passed to the current call.
    pub unsafe fn for_call(&self, call: *const ert_call) -> Host {
        match call.as_ref() {
            Some(call) => Host { services: self.services, context: call.host_context },
            None => *self,
        }
    }

    /// One line in the host's log, tagged with the driver, instance and operation.
    pub fn log(&self, level: ert_log_level, message: &str) {
        let line = CString::new(message.replace('\0', " ")).unwrap_or_default();
        unsafe {
            if let Some(log) = self.services.as_ref().and_then(|services| services.log) {
                log(self.context, level, line.as_ptr());
            }
        }
    }

    /// True once the call's deadline passed or the host cancelled it.
    pub fn is_cancelled(&self) -> bool {
        unsafe { self.services.as_ref().and_then(|s| s.is_cancelled).map_or(false, |f| f(self.context)) }
    }

    /// One HTTP request through the host's client (its connections, timeouts and deadline).
    /// `idempotent` requests may be retried by the host after a transport failure.
    pub fn request(&self, method: &str, url: &str, headers: &[&str], body: &[u8], idempotent: bool) -> Result<Response, Failure> {
        let method = CString::new(method).map_err(|_| Failure::invalid("NUL in the method"))?;
        let url = CString::new(url).map_err(|_| Failure::invalid("NUL in the URL"))?;
        let lines: Vec<CString> = headers.iter().map(|h| CString::new(*h).unwrap_or_default()).collect();
        let pointers: Vec<*const c_char> = lines.iter().map(|line| line.as_ptr()).collect();
        let request = ert_http_request {
            struct_size: core::mem::size_of::<ert_http_request>() as u32,
            method: method.as_ptr(),
            url: url.as_ptr(),
            headers: if pointers.is_empty() { core::ptr::null() } else { pointers.as_ptr() },
            header_count: pointers.len(),
            body: if body.is_empty() { core::ptr::null() } else { body.as_ptr() as *const c_char },
            body_length: body.len(),
            timeout_ms: 0, // the call's deadline
            flags: if idempotent { ERT_HTTP_IDEMPOTENT } else { 0 },
            max_response_bytes: 0,
        };
        let mut response = ert_http_response {
            struct_size: core::mem::size_of::<ert_http_response>() as u32,
            status: 0,
            content_type: [0; ERT_CONTENT_TYPE_CAPACITY],
        };
        let mut answer: Vec<u8> = Vec::new();
        let sink = ert_sink {
            struct_size: core::mem::size_of::<ert_sink>() as u32,
            context: &mut answer as *mut Vec<u8> as *mut c_void,
            write: Some(append),
        };
        let mut error = empty_error();
        let status = unsafe {
            match self.services.as_ref().and_then(|services| services.http_request) {
                Some(http) => http(self.context, &request, &mut response, &sink, &mut error),
                None => return Err(Failure::new(ERT_STATUS_INTERNAL, "the host has no HTTP service")),
            }
        };
        if status != ERT_STATUS_OK {
            let message = unsafe { CStr::from_ptr(error.message.as_ptr()) }.to_string_lossy().into_owned();
            return Err(Failure::new(status, message));
        }
        let content_type = unsafe { CStr::from_ptr(response.content_type.as_ptr()) }.to_string_lossy().into_owned();
        Ok(Response { status: response.status, content_type, body: answer })
    }
}

/// An `ert_error` for calls into the host.
pub fn empty_error() -> ert_error {
    ert_error {
        struct_size: core::mem::size_of::<ert_error>() as u32,
        status: ERT_STATUS_OK,
        upstream_http_status: 0,
        message: [0; ERT_ERROR_MESSAGE_CAPACITY],
    }
}

/// A Rust type an extension parameter can have, and its C form.
pub trait ExtensionArgument: Sized {
    type C;
    const TYPE: ert_value_type;
    /// # Safety
    /// `value` is what the host passed for a parameter declared with `TYPE`.
    unsafe fn from_c(value: Self::C) -> Result<Self, Failure>;
}

impl ExtensionArgument for i64 {
    type C = i64;
    const TYPE: ert_value_type = ERT_TYPE_INT64;
    unsafe fn from_c(value: i64) -> Result<i64, Failure> {
        Ok(value)
    }
}

impl ExtensionArgument for f64 {
    type C = f64;
    const TYPE: ert_value_type = ERT_TYPE_DOUBLE;
    unsafe fn from_c(value: f64) -> Result<f64, Failure> {
        Ok(value)
    }
}

impl ExtensionArgument for bool {
    type C = bool;
    const TYPE: ert_value_type = ERT_TYPE_BOOL;
    unsafe fn from_c(value: bool) -> Result<bool, Failure> {
        Ok(value)
    }
}

impl ExtensionArgument for String {
    type C = *const c_char;
    const TYPE: ert_value_type = ERT_TYPE_STRING;
    unsafe fn from_c(value: *const c_char) -> Result<String, Failure> {
        text(value).map(str::to_string).ok_or_else(|| Failure::invalid("a string argument is not UTF-8"))
    }
}

/// A Rust type an extension can return, and the out-parameter the host passes for it.
pub trait ExtensionResult: Sized {
    type Out;
    const TYPE: ert_value_type;
    /// # Safety
    /// `out` is the result pointer the host passed for a result declared with `TYPE`.
    unsafe fn store(self, out: Self::Out) -> Result<ert_status, Failure>;
}

impl ExtensionResult for i64 {
    type Out = *mut i64;
    const TYPE: ert_value_type = ERT_TYPE_INT64;
    unsafe fn store(self, out: *mut i64) -> Result<ert_status, Failure> {
        *out = self;
        Ok(ERT_STATUS_OK)
    }
}

impl ExtensionResult for f64 {
    type Out = *mut f64;
    const TYPE: ert_value_type = ERT_TYPE_DOUBLE;
    unsafe fn store(self, out: *mut f64) -> Result<ert_status, Failure> {
        *out = self;
        Ok(ERT_STATUS_OK)
    }
}

impl ExtensionResult for bool {
    type Out = *mut bool;
    const TYPE: ert_value_type = ERT_TYPE_BOOL;
    unsafe fn store(self, out: *mut bool) -> Result<ert_status, Failure> {
        *out = self;
        Ok(ERT_STATUS_OK)
    }
}

/// A string result is written through a sink the host passes.
impl ExtensionResult for String {
    type Out = *const ert_sink;
    const TYPE: ert_value_type = ERT_TYPE_STRING;
    unsafe fn store(self, out: *const ert_sink) -> Result<ert_status, Failure> {
        Sink::from_raw(out).write(self.as_bytes())?;
        Ok(ERT_STATUS_OK)
    }
}

/// Declares an extension operation from a typed Rust function: the C entry point the host
/// calls through libffi, its parameter names and types, and the `ert_extension_op`, all from
/// one signature. The function gets the instance and the call's `Host`.
///
/// ```ignore
/// extension!(ADD, "rust_template.add", "Adds two integers", mutating = false,
///     fn add(_instance: &Instance, _host: Host, a: i64, b: i64) -> i64 { Ok(a.wrapping_add(b)) });
/// ```
#[macro_export]
macro_rules! extension {
    ($op:ident, $name:literal, $summary:literal, mutating = $mutating:expr,
     fn $function:ident($instance:ident: &$instance_type:ty, $host:ident: Host $(, $argument:ident: $argument_type:ty)*) -> $result:ty $body:block) => {
        #[allow(non_snake_case)]
        pub mod $op {
            use super::*;
            #[allow(unused_imports)]
            use $crate::abi::*;
            use $crate::host::{ExtensionArgument, ExtensionResult, Failure, Host, Shared};

            fn $function($instance: &$instance_type, $host: Host $(, $argument: $argument_type)*) -> Result<$result, Failure> $body

            unsafe extern "C" fn entry(
                instance: *mut ert_instance, call: *const ert_call, error: *mut ert_error
                $(, $argument: <$argument_type as ExtensionArgument>::C)*,
                result: <$result as ExtensionResult>::Out,
            ) -> ert_status {
                $crate::host::guard(error, || {
                    let instance = <$instance_type>::from_raw(instance)?;
                    let host = instance.host.for_call(call);
                    $(let $argument = <$argument_type as ExtensionArgument>::from_c($argument)?;)*
                    $function(instance, host $(, $argument)*)?.store(result)
                })
            }

            static NAMES: Shared<&[*const std::os::raw::c_char]> =
                Shared(&[$(concat!(stringify!($argument), "\0").as_ptr() as *const std::os::raw::c_char),*]);
            static TYPES: &[ert_value_type] = &[$(<$argument_type as ExtensionArgument>::TYPE),*];

            pub static OP: Shared<ert_extension_op> = Shared(ert_extension_op {
                struct_size: core::mem::size_of::<ert_extension_op>() as u32,
                name: concat!($name, "\0").as_ptr() as *const std::os::raw::c_char,
                description: concat!($summary, "\0").as_ptr() as *const std::os::raw::c_char,
                result_type: <$result as ExtensionResult>::TYPE,
                flags: if $mutating { ERT_EXTENSION_MUTATING } else { 0 },
                param_names: NAMES.0.as_ptr(),
                param_types: TYPES.as_ptr(),
                param_count: TYPES.len(),
                // The host calls it with the signature declared above.
                function: Some(unsafe {
                    core::mem::transmute::<_, unsafe extern "C" fn()>(
                        entry as unsafe extern "C" fn(
                            *mut ert_instance, *const ert_call, *mut ert_error
                            $(, <$argument_type as ExtensionArgument>::C)*, <$result as ExtensionResult>::Out,
                        ) -> ert_status,
                    )
                }),
            });
        }
    };
}

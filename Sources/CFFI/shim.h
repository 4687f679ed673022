/* libffi for Swift. Swift 6 strict concurrency rejects direct use of libffi's global
 * ffi_type_* variables (mutable C globals); these accessors return their addresses. */
#ifndef ENGINE_RUNTIME_CFFI_SHIM_H
#define ENGINE_RUNTIME_CFFI_SHIM_H

#include <ffi.h>

static inline ffi_type *ert_ffi_type_void(void) { return &ffi_type_void; }
static inline ffi_type *ert_ffi_type_pointer(void) { return &ffi_type_pointer; }
static inline ffi_type *ert_ffi_type_uint8(void) { return &ffi_type_uint8; }
static inline ffi_type *ert_ffi_type_sint32(void) { return &ffi_type_sint32; }
static inline ffi_type *ert_ffi_type_sint64(void) { return &ffi_type_sint64; }
static inline ffi_type *ert_ffi_type_double(void) { return &ffi_type_double; }
static inline ffi_abi ert_ffi_default_abi(void) { return FFI_DEFAULT_ABI; }

#endif

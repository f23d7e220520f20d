//! The C table of ABI version 1, exactly as `include/herald_plugin.h`
//! declares it. Both the SDK (plugin side) and the daemon (host side) use
//! these definitions, so the two cannot drift apart.

use std::ffi::{c_char, c_void};

/// The layout version of [`HeraldChannelV1`] this crate defines.
pub const ABI_VERSION: u32 = 1;

/// The oldest layout version whose fields are a prefix of this one: a host
/// that knows only that version can still use a table of [`ABI_VERSION`].
pub const ABI_MIN_COMPATIBLE: u32 = 1;

/// The symbol every plugin library exports, NUL-terminated for `dlsym`.
pub const SYMBOL: &[u8] = b"herald_channel_v1\0";

/// Return code of a successful call.
pub const HERALD_OK: i32 = 0;

/// Return code of a failed call; the output buffer, if any, holds UTF-8 text
/// that says what went wrong.
pub const HERALD_ERROR: i32 = 1;

/// Creates an instance from `config` (JSON, not NUL-terminated). On success
/// writes the instance to `*instance` and returns [`HERALD_OK`]; on failure
/// may write an error text buffer to `*err`/`*err_len` (freed with `free`).
pub type CreateFn = unsafe extern "C" fn(
    config: *const u8,
    config_len: usize,
    instance: *mut *mut c_void,
    err: *mut *mut u8,
    err_len: *mut usize,
) -> i32;

/// Writes the instance's `Description` JSON (or, on failure, error text) to
/// `*out`/`*out_len`, a buffer the plugin allocated.
pub type DescribeFn =
    unsafe extern "C" fn(instance: *mut c_void, out: *mut *mut u8, out_len: *mut usize) -> i32;

/// Sends a `Batch` (JSON) and writes `BatchResults` JSON (or, on failure,
/// error text) to `*out`/`*out_len`, a buffer the plugin allocated.
pub type SendBatchFn = unsafe extern "C" fn(
    instance: *mut c_void,
    batch: *const u8,
    batch_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> i32;

/// Frees a buffer the plugin returned through an `out`/`err` parameter.
pub type FreeFn = unsafe extern "C" fn(ptr: *mut u8, len: usize);

/// Destroys an instance; no call on it is running or will follow.
pub type DestroyFn = unsafe extern "C" fn(instance: *mut c_void);

/// The table `herald_channel_v1()` returns. It lives as long as the library
/// (the host never unloads one) and only ever grows at its end; new fields
/// come with a new [`ABI_VERSION`] and keep [`ABI_MIN_COMPATIBLE`].
#[repr(C)]
#[derive(Debug)]
pub struct HeraldChannelV1 {
    /// The layout version of this table ([`ABI_VERSION`] when built with this crate).
    pub abi_version: u32,
    /// The oldest layout version this table is still a superset of.
    pub abi_min_compatible: u32,
    /// The plugin's name, NUL-terminated UTF-8.
    pub name: *const c_char,
    /// The plugin's version, NUL-terminated UTF-8.
    pub version: *const c_char,
    /// See [`CreateFn`].
    pub create: Option<CreateFn>,
    /// See [`DescribeFn`].
    pub describe: Option<DescribeFn>,
    /// See [`SendBatchFn`].
    pub send_batch: Option<SendBatchFn>,
    /// See [`FreeFn`].
    pub free: Option<FreeFn>,
    /// See [`DestroyFn`].
    pub destroy: Option<DestroyFn>,
}

// SAFETY: the table is immutable static data: its pointers are to
// NUL-terminated strings and functions that live as long as the library.
unsafe impl Sync for HeraldChannelV1 {}
// SAFETY: as above; nothing in the table is tied to a thread.
unsafe impl Send for HeraldChannelV1 {}

/// The type of the exported `herald_channel_v1` function.
pub type EntryFn = unsafe extern "C" fn() -> *const HeraldChannelV1;

/// Whether a host that supports layout versions `host_min..=host_max` can
/// use a table that declares `abi_version` and `abi_min_compatible`
/// (tree-sitter's rule: a newer table is fine while it stays a superset).
pub fn is_compatible(
    abi_version: u32,
    abi_min_compatible: u32,
    host_min: u32,
    host_max: u32,
) -> bool {
    if abi_version < host_min {
        return false;
    }
    abi_version <= host_max || abi_min_compatible <= host_max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_version_is_compatible() {
        assert!(is_compatible(1, 1, 1, 1));
    }

    #[test]
    fn newer_table_that_keeps_the_old_prefix_is_compatible() {
        assert!(is_compatible(3, 1, 1, 1));
    }

    #[test]
    fn newer_table_that_broke_the_prefix_is_refused() {
        assert!(!is_compatible(3, 2, 1, 1));
    }

    #[test]
    fn older_table_than_the_host_supports_is_refused() {
        assert!(!is_compatible(1, 1, 2, 3));
    }
}

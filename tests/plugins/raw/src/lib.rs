//! A test plugin written against the raw table, without the SDK, to send
//! the host what the SDK never would. Config is one word (JSON string):
//!
//! - `"garbage"`: `send_batch` returns bytes that are not JSON;
//! - `"error"`: `send_batch` returns `HERALD_ERROR` with a message;
//! - `"bad_describe"`: `describe` returns bytes that are not JSON;
//! - `"zero_concurrency"`: `describe` asks for 0 concurrent calls.

use herald_plugin_api::abi::{HERALD_ERROR, HERALD_OK, HeraldChannelV1};
use std::ffi::c_void;

/// What the instance does wrong; the instance pointer is a boxed `Mode`.
#[derive(Clone, Copy)]
enum Mode {
    Garbage,
    Error,
    BadDescribe,
    ZeroConcurrency,
}

fn give(bytes: &[u8], out: *mut *mut u8, out_len: *mut usize) {
    let boxed: Box<[u8]> = bytes.into();
    let len = boxed.len();
    // SAFETY: the host passes writable slots.
    unsafe {
        *out = Box::into_raw(boxed).cast();
        *out_len = len;
    }
}

unsafe extern "C" fn create(
    config: *const u8,
    config_len: usize,
    instance: *mut *mut c_void,
    err: *mut *mut u8,
    err_len: *mut usize,
) -> i32 {
    // SAFETY: the host passes a readable buffer.
    let config = unsafe { std::slice::from_raw_parts(config, config_len) };
    let mode = match config {
        b"\"garbage\"" => Mode::Garbage,
        b"\"error\"" => Mode::Error,
        b"\"bad_describe\"" => Mode::BadDescribe,
        b"\"zero_concurrency\"" => Mode::ZeroConcurrency,
        _ => {
            give(b"raw: config must be one of \"garbage\", \"error\", \"bad_describe\", \"zero_concurrency\"", err, err_len);
            return HERALD_ERROR;
        }
    };
    // SAFETY: the host passes a writable slot.
    unsafe { *instance = Box::into_raw(Box::new(mode)).cast() };
    HERALD_OK
}

unsafe extern "C" fn describe(
    instance: *mut c_void,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: made by `create`.
    let mode = unsafe { *instance.cast::<Mode>() };
    let json: &[u8] = match mode {
        Mode::BadDescribe => b"{\"version\":1,\"chan",
        Mode::ZeroConcurrency => {
            br#"{"version":1,"concurrency":0,"channels":[{"name":"raw","address_column":null,"normalise":"none"}]}"#
        }
        _ => br#"{"version":1,"concurrency":2,"channels":[{"name":"raw","address_column":null,"normalise":"none"}]}"#,
    };
    give(json, out, out_len);
    HERALD_OK
}

unsafe extern "C" fn send_batch(
    instance: *mut c_void,
    _batch: *const u8,
    _batch_len: usize,
    out: *mut *mut u8,
    out_len: *mut usize,
) -> i32 {
    // SAFETY: made by `create`.
    let mode = unsafe { *instance.cast::<Mode>() };
    if let Mode::Error = mode {
        give(b"raw: the provider is down", out, out_len);
        return HERALD_ERROR;
    }
    give(b"{\"version\":1,\"results\":[{\"mess", out, out_len);
    HERALD_OK
}

unsafe extern "C" fn free(ptr: *mut u8, len: usize) {
    // SAFETY: made by `give` from a boxed slice of `len` bytes.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
}

unsafe extern "C" fn destroy(instance: *mut c_void) {
    // SAFETY: made by `create`, destroyed once.
    drop(unsafe { Box::from_raw(instance.cast::<Mode>()) });
}

static TABLE: HeraldChannelV1 = HeraldChannelV1 {
    abi_version: 1,
    abi_min_compatible: 1,
    name: c"raw".as_ptr(),
    version: c"0.0.1".as_ptr(),
    create: Some(create),
    describe: Some(describe),
    send_batch: Some(send_batch),
    free: Some(free),
    destroy: Some(destroy),
};

/// The entry point.
#[unsafe(no_mangle)]
pub extern "C" fn herald_channel_v1() -> *const HeraldChannelV1 {
    &TABLE
}

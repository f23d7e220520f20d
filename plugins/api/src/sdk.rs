//! The Rust SDK: implement [`Channel`] and export it with
//! [`export_channel!`](crate::export_channel).

use crate::wire::{Batch, Description, MessageResult};

/// A channel plugin instance. The host may call [`Channel::send_batch`]
/// from several threads at once, up to the concurrency [`Channel::describe`]
/// declares, so implementations must be thread-safe.
pub trait Channel: Send + Sync + Sized + 'static {
    /// Creates an instance from the `config` map of the `plugins[]` entry.
    /// The error is shown to the operator: say what is wrong and how to fix it.
    fn create(config: &serde_json::Value) -> Result<Self, String>;

    /// What this instance serves and how it wants to be called.
    fn describe(&self) -> Description;

    /// Sends one batch; returns exactly one result per message, in order.
    /// Blocking: the host calls it off its async workers.
    fn send_batch(&self, batch: &Batch) -> Vec<MessageResult>;
}

/// Exports a [`Channel`] type as the `herald_channel_v1` symbol of a
/// `cdylib`: `herald_plugin_api::export_channel!(MyChannel, "my_plugin", "1.0.0");`
///
/// The name and version must be string literals (or `env!(..)`). Every
/// entry point runs inside `catch_unwind`: a panic in `send_batch` becomes a
/// `retry` result for every message of the batch, carrying the panic
/// message; a panic anywhere else becomes an error return. Build the plugin
/// with the default `panic = "unwind"`, or nothing can be caught.
#[macro_export]
macro_rules! export_channel {
    ($channel:ty, $name:expr, $version:expr) => {
        const _: () = {
            unsafe extern "C" fn __herald_create(
                config: *const u8,
                config_len: usize,
                instance: *mut *mut ::std::ffi::c_void,
                err: *mut *mut u8,
                err_len: *mut usize,
            ) -> i32 {
                // SAFETY: the host keeps the ABI contract of `CreateFn`.
                unsafe {
                    $crate::sdk::ffi::create::<$channel>(config, config_len, instance, err, err_len)
                }
            }

            unsafe extern "C" fn __herald_describe(
                instance: *mut ::std::ffi::c_void,
                out: *mut *mut u8,
                out_len: *mut usize,
            ) -> i32 {
                // SAFETY: the host keeps the ABI contract of `DescribeFn`.
                unsafe { $crate::sdk::ffi::describe::<$channel>(instance, out, out_len) }
            }

            unsafe extern "C" fn __herald_send_batch(
                instance: *mut ::std::ffi::c_void,
                batch: *const u8,
                batch_len: usize,
                out: *mut *mut u8,
                out_len: *mut usize,
            ) -> i32 {
                // SAFETY: the host keeps the ABI contract of `SendBatchFn`.
                unsafe {
                    $crate::sdk::ffi::send_batch::<$channel>(
                        instance, batch, batch_len, out, out_len,
                    )
                }
            }

            unsafe extern "C" fn __herald_destroy(instance: *mut ::std::ffi::c_void) {
                // SAFETY: the host keeps the ABI contract of `DestroyFn`.
                unsafe { $crate::sdk::ffi::destroy::<$channel>(instance) }
            }

            static __HERALD_TABLE: $crate::abi::HeraldChannelV1 = $crate::abi::HeraldChannelV1 {
                abi_version: $crate::abi::ABI_VERSION,
                abi_min_compatible: $crate::abi::ABI_MIN_COMPATIBLE,
                name: ::std::concat!($name, "\0").as_ptr().cast(),
                version: ::std::concat!($version, "\0").as_ptr().cast(),
                create: Some(__herald_create),
                describe: Some(__herald_describe),
                send_batch: Some(__herald_send_batch),
                free: Some($crate::sdk::ffi::free_buffer),
                destroy: Some(__herald_destroy),
            };

            /// The Herald plugin entry point (ABI version 1).
            #[unsafe(no_mangle)]
            pub extern "C" fn herald_channel_v1() -> *const $crate::abi::HeraldChannelV1 {
                &__HERALD_TABLE
            }
        };
    };
}

/// The generic bodies of the `extern "C"` functions [`export_channel!`]
/// generates. Public only so the macro can reach them; plugins do not call
/// them.
#[doc(hidden)]
pub mod ffi {
    use super::Channel;
    use crate::abi::{HERALD_ERROR, HERALD_OK};
    use crate::wire::{Batch, BatchResults, MessageResult, SendStatus, WIRE_VERSION};
    use std::any::Any;
    use std::ffi::c_void;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    /// Hands `bytes` to the host as a plugin-owned buffer.
    ///
    /// # Safety
    /// `out` and `out_len` must be valid for writes (or null, then nothing is written).
    unsafe fn give(bytes: Vec<u8>, out: *mut *mut u8, out_len: *mut usize) {
        if out.is_null() || out_len.is_null() {
            return;
        }
        let boxed = bytes.into_boxed_slice();
        let len = boxed.len();
        let ptr = Box::into_raw(boxed).cast::<u8>();
        // SAFETY: checked non-null above; the host passes writable slots.
        unsafe {
            *out = ptr;
            *out_len = len;
        }
    }

    /// Frees a buffer made by `give`: the `free` entry of the table.
    ///
    /// # Safety
    /// `ptr` and `len` must come from one `out`/`err` pair this SDK wrote.
    pub unsafe extern "C" fn free_buffer(ptr: *mut u8, len: usize) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: `give` made this pointer from a boxed slice of `len` bytes.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }

    /// The text of a panic payload (`&str` or `String`), or a fixed phrase.
    pub fn panic_message(payload: &(dyn Any + Send)) -> String {
        if let Some(text) = payload.downcast_ref::<&str>() {
            (*text).to_owned()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            "a panic with a non-text payload".to_owned()
        }
    }

    /// # Safety
    /// `ptr` must be valid for `len` bytes, or null with `len == 0`.
    unsafe fn input<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
        if ptr.is_null() || len == 0 {
            return &[];
        }
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// Body of `create`.
    ///
    /// # Safety
    /// The arguments follow `abi::CreateFn`.
    pub unsafe fn create<T: Channel>(
        config: *const u8,
        config_len: usize,
        instance: *mut *mut c_void,
        err: *mut *mut u8,
        err_len: *mut usize,
    ) -> i32 {
        // SAFETY: the host passes a readable config buffer.
        let bytes = unsafe { input(config, config_len) };
        let made = catch_unwind(|| {
            let value: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|e| format!("the plugin config is not valid JSON: {e}"))?;
            T::create(&value)
        });
        let outcome = match made {
            Ok(outcome) => outcome,
            Err(payload) => Err(format!(
                "the plugin panicked while creating an instance: {}",
                panic_message(&*payload)
            )),
        };
        match outcome {
            Ok(channel) if !instance.is_null() => {
                // SAFETY: checked non-null; the host passes a writable slot.
                unsafe { *instance = Box::into_raw(Box::new(channel)).cast() };
                HERALD_OK
            }
            Ok(_) => HERALD_ERROR,
            Err(message) => {
                // SAFETY: the host passes writable `err` slots or nulls.
                unsafe { give(message.into_bytes(), err, err_len) };
                HERALD_ERROR
            }
        }
    }

    /// Body of `describe`.
    ///
    /// # Safety
    /// The arguments follow `abi::DescribeFn`; `instance` came from `create::<T>`.
    pub unsafe fn describe<T: Channel>(
        instance: *mut c_void,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> i32 {
        // SAFETY: `instance` is a live `T` made by `create::<T>`.
        let channel = unsafe { &*instance.cast::<T>() };
        let described = catch_unwind(AssertUnwindSafe(|| {
            serde_json::to_vec(&channel.describe()).map_err(|e| e.to_string())
        }));
        let (code, bytes) = match described {
            Ok(Ok(json)) => (HERALD_OK, json),
            Ok(Err(e)) => (
                HERALD_ERROR,
                format!("cannot encode the description: {e}").into_bytes(),
            ),
            Err(payload) => (
                HERALD_ERROR,
                format!(
                    "the plugin panicked in describe: {}",
                    panic_message(&*payload)
                )
                .into_bytes(),
            ),
        };
        // SAFETY: the host passes writable slots.
        unsafe { give(bytes, out, out_len) };
        code
    }

    /// Body of `send_batch`.
    ///
    /// # Safety
    /// The arguments follow `abi::SendBatchFn`; `instance` came from `create::<T>`.
    pub unsafe fn send_batch<T: Channel>(
        instance: *mut c_void,
        batch: *const u8,
        batch_len: usize,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> i32 {
        // SAFETY: `instance` is a live `T` made by `create::<T>`.
        let channel = unsafe { &*instance.cast::<T>() };
        // SAFETY: the host passes a readable batch buffer.
        let bytes = unsafe { input(batch, batch_len) };
        let batch: Batch = match serde_json::from_slice(bytes) {
            Ok(batch) => batch,
            Err(e) => {
                let text =
                    format!("the batch is not valid JSON of wire version {WIRE_VERSION}: {e}");
                // SAFETY: the host passes writable slots.
                unsafe { give(text.into_bytes(), out, out_len) };
                return HERALD_ERROR;
            }
        };
        let results = match catch_unwind(AssertUnwindSafe(|| channel.send_batch(&batch))) {
            Ok(results) => results,
            Err(payload) => retry_all(&batch, &panic_message(&*payload)),
        };
        let document = BatchResults {
            version: WIRE_VERSION,
            results,
        };
        match serde_json::to_vec(&document) {
            Ok(json) => {
                // SAFETY: the host passes writable slots.
                unsafe { give(json, out, out_len) };
                HERALD_OK
            }
            Err(e) => {
                let text = format!("cannot encode the results: {e}");
                // SAFETY: the host passes writable slots.
                unsafe { give(text.into_bytes(), out, out_len) };
                HERALD_ERROR
            }
        }
    }

    /// A `retry` result for every message of `batch`, after a panic.
    pub fn retry_all(batch: &Batch, panic: &str) -> Vec<MessageResult> {
        batch
            .messages
            .iter()
            .map(|message| MessageResult {
                message_id: message.message_id.clone(),
                status: SendStatus::Retry {
                    reason: format!("the plugin panicked: {panic}"),
                    retry_after_ms: None,
                },
            })
            .collect()
    }

    /// Body of `destroy`.
    ///
    /// # Safety
    /// `instance` came from `create::<T>` and is not used afterwards.
    pub unsafe fn destroy<T: Channel>(instance: *mut c_void) {
        if instance.is_null() {
            return;
        }
        // A panic in a destructor must not cross the boundary either.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: made by `Box::into_raw` in `create::<T>`, dropped once.
            drop(unsafe { Box::from_raw(instance.cast::<T>()) });
        }));
    }
}

#[cfg(test)]
mod tests;

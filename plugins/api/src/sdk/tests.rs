//! Drives the table that `export_channel!` generates through its raw
//! function pointers, the way a host does.

use crate::Channel;
use crate::abi::{HERALD_ERROR, HERALD_OK, HeraldChannelV1};
use crate::wire::{
    Batch, BatchResults, ChannelInfo, Description, Message, MessageResult, Normalisation,
    SendStatus, WIRE_VERSION,
};
use std::ffi::{CStr, c_void};

struct Probe;

impl Channel for Probe {
    fn create(config: &serde_json::Value) -> Result<Self, String> {
        match config.get("mode").and_then(|m| m.as_str()) {
            Some("refuse") => Err("`mode` refuse: set `mode` to anything else".to_owned()),
            Some("panic") => panic!("create exploded"),
            _ => Ok(Probe),
        }
    }

    fn describe(&self) -> Description {
        Description {
            version: WIRE_VERSION,
            channels: vec![ChannelInfo {
                name: "probe".to_owned(),
                address_column: None,
                normalise: Normalisation::None,
                tracking: false,
            }],
            concurrency: 2,
        }
    }

    fn send_batch(&self, batch: &Batch) -> Vec<MessageResult> {
        if batch.messages.iter().any(|m| m.address == "boom") {
            panic!("send exploded");
        }
        batch
            .messages
            .iter()
            .map(|m| MessageResult {
                message_id: m.message_id.clone(),
                status: SendStatus::Accepted {
                    provider_message_id: Some(format!("p-{}", m.recipient_id)),
                },
            })
            .collect()
    }
}

crate::export_channel!(Probe, "probe", "0.0.1");

unsafe extern "C" {
    fn herald_channel_v1() -> *const HeraldChannelV1;
}

fn table() -> &'static HeraldChannelV1 {
    // SAFETY: the macro above defines the symbol in this test binary.
    unsafe { &*herald_channel_v1() }
}

/// Takes a plugin buffer, copies it, and frees it with the plugin's `free`.
fn take(ptr: *mut u8, len: usize) -> Vec<u8> {
    assert!(!ptr.is_null(), "the plugin returned no buffer");
    // SAFETY: the plugin wrote `len` bytes at `ptr`.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec();
    // SAFETY: the buffer came from this plugin and is freed once.
    unsafe { table().free.unwrap()(ptr, len) };
    bytes
}

fn create(config: &str) -> Result<*mut c_void, String> {
    let mut instance = std::ptr::null_mut();
    let (mut err, mut err_len) = (std::ptr::null_mut(), 0);
    // SAFETY: valid buffers and slots.
    let code = unsafe {
        table().create.unwrap()(
            config.as_ptr(),
            config.len(),
            &mut instance,
            &mut err,
            &mut err_len,
        )
    };
    if code == HERALD_OK {
        Ok(instance)
    } else {
        Err(String::from_utf8(take(err, err_len)).unwrap())
    }
}

fn send(instance: *mut c_void, batch: &Batch) -> (i32, Vec<u8>) {
    let json = serde_json::to_vec(batch).unwrap();
    let (mut out, mut out_len) = (std::ptr::null_mut(), 0);
    // SAFETY: a live instance, valid buffers and slots.
    let code = unsafe {
        table().send_batch.unwrap()(instance, json.as_ptr(), json.len(), &mut out, &mut out_len)
    };
    (code, take(out, out_len))
}

fn batch(addresses: &[&str]) -> Batch {
    Batch {
        version: WIRE_VERSION,
        messages: addresses
            .iter()
            .enumerate()
            .map(|(i, address)| Message {
                message_id: format!("run/{i}"),
                run_id: "run".to_owned(),
                recipient_id: i.to_string(),
                channel: "probe".to_owned(),
                address: (*address).to_owned(),
                content: Default::default(),
                headers: Default::default(),
                data: Default::default(),
            })
            .collect(),
    }
}

fn destroy(instance: *mut c_void) {
    // SAFETY: made by `create`, not used afterwards.
    unsafe { table().destroy.unwrap()(instance) };
}

#[test]
fn table_carries_version_name_and_every_function() {
    let t = table();
    assert_eq!(t.abi_version, crate::abi::ABI_VERSION);
    // SAFETY: the macro writes NUL-terminated literals.
    assert_eq!(unsafe { CStr::from_ptr(t.name) }.to_str().unwrap(), "probe");
    // SAFETY: as above.
    assert_eq!(
        unsafe { CStr::from_ptr(t.version) }.to_str().unwrap(),
        "0.0.1"
    );
    assert!(t.create.is_some() && t.describe.is_some() && t.send_batch.is_some());
    assert!(t.free.is_some() && t.destroy.is_some());
}

#[test]
fn refused_config_returns_the_plugins_message() {
    let error = create(r#"{"mode":"refuse"}"#).unwrap_err();
    assert_eq!(error, "`mode` refuse: set `mode` to anything else");
}

#[test]
fn panic_in_create_becomes_an_error_with_the_panic_message() {
    let error = create(r#"{"mode":"panic"}"#).unwrap_err();
    assert!(error.contains("create exploded"), "{error}");
}

#[test]
fn config_that_is_not_json_is_refused() {
    let error = create("{nope").unwrap_err();
    assert!(error.contains("not valid JSON"), "{error}");
}

#[test]
fn describe_returns_the_description_as_json() {
    let instance = create("{}").unwrap();
    let (mut out, mut out_len) = (std::ptr::null_mut(), 0);
    // SAFETY: a live instance and writable slots.
    let code = unsafe { table().describe.unwrap()(instance, &mut out, &mut out_len) };
    assert_eq!(code, HERALD_OK);
    let description: Description = serde_json::from_slice(&take(out, out_len)).unwrap();
    assert_eq!(description.concurrency, 2);
    assert_eq!(description.channels[0].name, "probe");
    destroy(instance);
}

#[test]
fn send_batch_returns_one_result_per_message() {
    let instance = create("{}").unwrap();
    let (code, json) = send(instance, &batch(&["a", "b"]));
    assert_eq!(code, HERALD_OK);
    let results: BatchResults = serde_json::from_slice(&json).unwrap();
    let ids: Vec<_> = results
        .results
        .iter()
        .map(|r| r.message_id.as_str())
        .collect();
    assert_eq!(ids, ["run/0", "run/1"]);
    assert_eq!(
        results.results[1].status,
        SendStatus::Accepted {
            provider_message_id: Some("p-1".to_owned())
        }
    );
    destroy(instance);
}

#[test]
fn panic_in_send_batch_becomes_retry_with_the_panic_message() {
    let instance = create("{}").unwrap();
    let (code, json) = send(instance, &batch(&["a", "boom"]));
    assert_eq!(code, HERALD_OK);
    let results: BatchResults = serde_json::from_slice(&json).unwrap();
    assert_eq!(results.results.len(), 2);
    for result in &results.results {
        match &result.status {
            SendStatus::Retry { reason, .. } => {
                assert!(reason.contains("send exploded"), "{reason}")
            }
            other => panic!("expected retry, got {other:?}"),
        }
    }
    destroy(instance);
}

#[test]
fn batch_that_is_not_json_is_an_error_with_text() {
    let instance = create("{}").unwrap();
    let garbage = b"[1,2";
    let (mut out, mut out_len) = (std::ptr::null_mut(), 0);
    // SAFETY: a live instance, valid buffers and slots.
    let code = unsafe {
        table().send_batch.unwrap()(
            instance,
            garbage.as_ptr(),
            garbage.len(),
            &mut out,
            &mut out_len,
        )
    };
    assert_eq!(code, HERALD_ERROR);
    let text = String::from_utf8(take(out, out_len)).unwrap();
    assert!(text.contains("not valid JSON"), "{text}");
    destroy(instance);
}

//! Feeds arbitrary bytes to the plugin result decoder as a plugin's reply
//! to a batch, then takes every decoded result the way the dispatcher
//! does (verdict, and the instant of the next try for a `retry`): nothing
//! a plugin returns may panic the host.
#![no_main]

use herald::dispatch::results::{Verdict, retry_at, verdict};
use herald::plugin_host::{RawReply, decode_results};
use herald_plugin_api::{Batch, Message, WIRE_VERSION};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

/// A batch of `n` messages with the ids `fuzz@once/r{i}`.
fn batch(n: usize) -> Batch {
    Batch {
        version: WIRE_VERSION,
        messages: (0..n)
            .map(|i| Message {
                message_id: format!("fuzz@once/r{i}"),
                run_id: "fuzz@once".into(),
                recipient_id: format!("r{i}"),
                channel: "fuzz".into(),
                address: format!("r{i}@x.example"),
                content: Default::default(),
                headers: Default::default(),
                data: Default::default(),
            })
            .collect(),
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte: the batch size (low 3 bits), the attempt (next 3) and
    // whether the call returned an error code (top bit); the rest is the
    // plugin's output buffer.
    let Some((&head, bytes)) = data.split_first() else {
        return;
    };
    let batch = batch(usize::from(head & 0x07));
    let attempt = u32::from((head >> 3) & 0x07);
    let code = if head & 0x80 == 0 {
        herald_plugin_api::abi::HERALD_OK
    } else {
        1
    };
    let raw = RawReply {
        code,
        bytes: bytes.to_vec(),
    };
    if let Ok(statuses) = decode_results("fuzz", "fuzz", &batch, &raw) {
        for status in statuses {
            if let Verdict::Retry { after, .. } = verdict(status, attempt, 5) {
                // A retry the plugin asks for must come back within a
                // bounded time, or its chunk (and run) would never finish.
                let now = Instant::now();
                let at = retry_at(now, attempt, after);
                assert!(
                    at <= now + Duration::from_secs(3600),
                    "a retry {:?} away stalls its run",
                    at - now
                );
            }
        }
    }
});

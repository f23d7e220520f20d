//! Plugin host overhead per message: a no-op plugin (the SDK-built
//! `herald_test_misbehave`, which accepts everything) driven through the
//! real `PluginHost` at batch sizes 1, 50 and 500. The time covers
//! encoding the batch, the queue hop to the instance's thread, the ABI
//! call, the SDK's decoding and encoding inside the plugin, and decoding
//! and checking the results. See benches/README.md, "Plugin host overhead".
//!
//! Usage: `plugin_host [PLUGIN.so] [--send-only] [BATCH...]`. The plugin
//! defaults to the release build of `herald_test_misbehave` in the
//! workspace's `target/release`; the batch sizes to 1, 50 and 500.
//! `--send-only` skips the JSON-alone columns, so that a profiler
//! (`valgrind --tool=callgrind`) sees the send path and nothing else.

use herald::plugin_host::{PluginHost, PluginSpec, RawReply, decode_results, encode_batch};
use herald_plugin_api::{Batch, Message, WIRE_VERSION};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A message shaped like a small rendered e-mail.
fn message(index: usize) -> Message {
    let recipient = format!("r{index:06}");
    Message {
        message_id: format!("weekly@2026-11-27T09:00:00Z/{recipient}"),
        run_id: "weekly@2026-11-27T09:00:00Z".to_owned(),
        recipient_id: recipient.clone(),
        channel: "email".to_owned(),
        address: format!("{recipient}@example.com"),
        content: [
            ("from", "Shop <news@shop.example>".to_owned()),
            ("subject", format!("Your week, {recipient}")),
            (
                "text",
                format!("Hello {recipient}, see https://shop.example/w/{index}"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        headers: Default::default(),
        data: Default::default(),
    }
}

fn main() -> anyhow::Result<()> {
    let mut path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/release/libherald_test_misbehave.so");
    let (mut sizes, mut send_only) = (Vec::new(), false);
    for argument in std::env::args().skip(1) {
        if argument == "--send-only" {
            send_only = true;
        } else if let Ok(size) = argument.parse::<usize>() {
            sizes.push(size);
        } else {
            path = PathBuf::from(argument);
        }
    }
    if sizes.is_empty() {
        sizes = vec![1, 50, 500];
    }
    if !path.is_file() {
        anyhow::bail!(
            "no plugin at {}; build it with `cargo build --release -p herald_test_misbehave` or pass its path",
            path.display()
        );
    }
    let spec = PluginSpec {
        path,
        config: serde_json::json!({"channel": "email", "concurrency": 1}),
    };
    let host = PluginHost::load(&[spec], Duration::from_secs(60))?;
    // The SDK plugin serves `email` as configured; the C one its own channel.
    let channel = host
        .channels()
        .keys()
        .next()
        .expect("the plugin serves a channel")
        .clone();
    let sender = host
        .sender(&channel)
        .expect("the plugin serves its channel");
    let runtime = tokio::runtime::Runtime::new()?;
    println!(
        "CPU ns per message; host: encode batch, decode results; SDK in the plugin: decode batch, encode results\nbatch  calls  wall ns/msg  cpu ns/msg  host enc.  host dec.   sdk dec.   sdk enc."
    );
    for size in sizes {
        let batch = Batch {
            version: WIRE_VERSION,
            messages: (0..size).map(message).collect(),
        };
        let calls = (200_000 / size).clamp(200, 20_000);
        let (elapsed, cpu) = runtime.block_on(async {
            for _ in 0..calls / 10 {
                sender.send(&batch).await?;
            }
            let started = Instant::now();
            let cpu_started = process_cpu();
            for _ in 0..calls {
                let results = sender.send(&batch).await?;
                std::hint::black_box(results);
            }
            anyhow::Ok((started.elapsed(), process_cpu() - cpu_started))
        })?;
        let messages = (calls * size) as f64;
        let per_message = elapsed.as_nanos() as f64 / messages;
        let cpu_per_message = cpu.as_nanos() as f64 / messages;
        let json = if send_only {
            "         -          -           -          -".to_owned()
        } else {
            let results = accepted(&batch);
            let (encode, decode) = host_side(&batch, &results, calls);
            let (sdk_decode, sdk_encode) = plugin_side(&batch, &results, calls);
            format!("{encode:>10.0} {decode:>10.0}  {sdk_decode:>10.0} {sdk_encode:>10.0}")
        };
        println!("{size:>5}  {calls:>5}  {per_message:>11.0}  {cpu_per_message:>10.0}  {json}");
    }
    Ok(())
}

/// The host's own JSON work per message, timed alone with the functions
/// the host calls: encoding the batch, and decoding and checking the
/// results the plugin returns for it.
fn host_side(batch: &Batch, results: &herald_plugin_api::BatchResults, calls: usize) -> (f64, f64) {
    let reply = RawReply {
        code: herald_plugin_api::abi::HERALD_OK,
        bytes: serde_json::to_vec(results).expect("results encode"),
    };
    let messages = (calls * batch.messages.len()) as f64;
    let started = process_cpu();
    for _ in 0..calls {
        std::hint::black_box(encode_batch(batch));
    }
    let encode = (process_cpu() - started).as_nanos() as f64 / messages;
    let started = process_cpu();
    for _ in 0..calls {
        let statuses = decode_results("bench", "email", batch, &reply).expect("results decode");
        std::hint::black_box(statuses);
    }
    let decode = (process_cpu() - started).as_nanos() as f64 / messages;
    (encode, decode)
}

/// The results the no-op plugin gives for `batch`.
fn accepted(batch: &Batch) -> herald_plugin_api::BatchResults {
    herald_plugin_api::BatchResults {
        version: WIRE_VERSION,
        results: batch
            .messages
            .iter()
            .map(|m| herald_plugin_api::MessageResult {
                message_id: m.message_id.clone(),
                status: herald_plugin_api::SendStatus::Accepted {
                    provider_message_id: Some(format!("p-{}", m.message_id)),
                },
            })
            .collect(),
    }
}

/// The SDK's JSON work inside the plugin per message, timed alone:
/// decoding the batch and encoding the results.
fn plugin_side(
    batch: &Batch,
    results: &herald_plugin_api::BatchResults,
    calls: usize,
) -> (f64, f64) {
    let encoded = serde_json::to_vec(batch).expect("batch encodes");
    let messages = (calls * batch.messages.len()) as f64;
    let started = process_cpu();
    for _ in 0..calls {
        let parsed: Batch = serde_json::from_slice(&encoded).expect("batch decodes");
        std::hint::black_box(parsed);
    }
    let decode = (process_cpu() - started).as_nanos() as f64 / messages;
    let started = process_cpu();
    for _ in 0..calls {
        std::hint::black_box(serde_json::to_vec(results).expect("results encode"));
    }
    let encode = (process_cpu() - started).as_nanos() as f64 / messages;
    (decode, encode)
}

/// CPU time of the whole process (every thread, the plugin's included):
/// unlike wall time, it does not grow when other programs share the cores.
fn process_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

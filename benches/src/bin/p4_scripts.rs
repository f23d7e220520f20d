//! P4 (b): what a run costs Redis at its instant, at one run per script
//! call and at many.
//!
//! `p4_scripts [RUNS=4096]`, on a private redis-server started by
//! herald-test-support. Runs are created and prepared through the real
//! Redis store (scheduled, one chunk of one recipient: what P4 (b, ahead)
//! has stored before its instant). Then the two scripts of a run's
//! instant, `take_due.lua` (start and claim) and `record_last.lua` (record
//! and complete), built from the store's own Lua files, run with 1, 16,
//! 64 and 256 runs per call (the store takes up to 64 per call on one
//! Redis server). Redis's own time per run comes from
//! `INFO commandstats` (`EVALSHA`); the agenda and history writes that
//! follow the scripts in the daemon are not counted.

use anyhow::{Context, Result, ensure};
use chrono::{Duration, TimeZone, Utc};
use herald::runs::{RunId, RunState};
use herald::store::redis::{RedisSettings, RedisStore};
use herald::store::{Chunk, FrozenRecipient, NewRun, Prepared, Store};
use herald_test_support::RedisServer;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The key prefix of the bench's store.
const PREFIX: &str = "p4s";
/// Runs per script call.
const BATCHES: [usize; 4] = [1, 16, 64, 256];
/// The owner the scripts claim and complete for.
const OWNER: &str = "bench:1:p4s";

macro_rules! lua {
    ($file:literal) => {
        include_str!(concat!("../../../daemon/src/store/redis/lua/", $file))
    };
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(Ok(4096), |a| a.parse())
        .context("RUNS")?;
    let server = RedisServer::start();
    let store = Arc::new(
        RedisStore::connect(RedisSettings {
            url: server.url(),
            key_prefix: PREFIX.to_owned(),
        })
        .await?,
    );
    let mut raw = redis::Client::open(server.url())?
        .get_multiplexed_async_connection()
        .await?;
    println!("P4 scripts: {runs} one-recipient runs at their instant, Redis time per run");
    println!(
        "| runs per call | take_due µs/run (commands) | record_last µs/run (commands) | both µs/run |"
    );
    println!("| ---: | ---: | ---: | ---: |");
    for batch in BATCHES {
        redis::cmd("FLUSHALL").query_async::<()>(&mut raw).await?;
        let ids = scheduled_runs(&store, runs).await?;
        let (take, record) = scripts();
        let (take_us, take_n) = timed(&mut raw, &ids, batch, |runs| {
            let mut call = take.prepare_invoke();
            for id in runs {
                for key in ["run", "leases", "owners", "chunks"] {
                    call.key(key_of(id, key));
                }
            }
            call.arg(micros(61))
                .arg(OWNER)
                .arg(micros(91))
                .arg(text(61));
            call
        })
        .await?;
        let (record_us, record_n) = timed(&mut raw, &ids, batch, |runs| {
            let mut call = record.prepare_invoke();
            for id in runs {
                for key in ["run", "leases", "owners", "outcomes", "unindexed"] {
                    call.key(key_of(id, key));
                }
            }
            for id in runs {
                let recipient = recipient_of(id);
                let json = format!(
                    r#"{{"recipient_id":"{recipient}","address":"{recipient}","outcome":"delivered","provider_message_id":"m-{recipient}","at":"{}"}}"#,
                    text(62)
                );
                call.arg(0).arg(OWNER).arg(micros(62)).arg(text(62)).arg(1);
                call.arg(&recipient).arg("delivered").arg(json).arg(micros(62));
            }
            call
        })
        .await?;
        for id in &ids {
            let state = store.run(id).await?.map(|r| r.state);
            ensure!(state == Some(RunState::Sent), "{id} ended {state:?}");
        }
        println!(
            "| {batch} | {take_us:.1} ({take_n:.0}) | {record_us:.1} ({record_n:.0}) | {:.1} |",
            take_us + record_us
        );
    }
    Ok(())
}

/// Creates and prepares `n` runs due at `t(60)`: scheduled, one chunk of
/// one recipient.
async fn scheduled_runs(store: &Arc<RedisStore>, n: usize) -> Result<Vec<RunId>> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let store = store.clone();
        set.spawn(async move {
            let delivery = format!("d{i}");
            let run = NewRun {
                id: RunId::at(&delivery, t(60)),
                delivery_id: delivery.clone(),
                channel: "count".to_owned(),
                scheduled_for: t(60),
                confirm_deadline: t(60),
                confirm_required: false,
                aggregation_period: None,
                definition: format!(r#"{{"id":"{delivery}"}}"#),
                definition_hash: "sha256:00".to_owned(),
                throttle_per_second: None,
                created_at: t(0),
            };
            store.create_run(&run).await?;
            store
                .claim_preparation(&run.id, "prep", t(30), t(0))
                .await?;
            let recipient = recipient_of(&run.id);
            let chunk = Chunk {
                number: 0,
                recipients: vec![FrozenRecipient {
                    id: recipient.clone(),
                    address: recipient.clone(),
                    fields: Arc::new(BTreeMap::from([("id".to_owned(), recipient)])),
                }],
            };
            store.put_chunk(&run.id, &chunk).await?;
            let prepared = Prepared {
                targeted: 1,
                excluded_by_reason: BTreeMap::new(),
                chunks: 1,
                preview: None,
            };
            store
                .finish_preparation(&run.id, "prep", &prepared, t(0))
                .await?;
            anyhow::Ok(run.id)
        });
    }
    let mut ids = Vec::with_capacity(n);
    while let Some(id) = set.join_next().await {
        ids.push(id??);
    }
    Ok(ids)
}

/// Runs one script call per `batch` runs (100 calls in flight at a time)
/// and returns Redis's `EVALSHA` time per run, in µs, and the commands
/// the script ran per run.
async fn timed<'a>(
    raw: &mut redis::aio::MultiplexedConnection,
    ids: &[RunId],
    batch: usize,
    call: impl Fn(&[RunId]) -> redis::ScriptInvocation<'a>,
) -> Result<(f64, f64)> {
    let calls: Vec<_> = ids.chunks(batch).map(call).collect();
    if let Some(first) = calls.first() {
        first.load_async(raw).await?;
    }
    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async::<()>(raw)
        .await?;
    for group in calls.chunks(100) {
        let mut pipe = redis::pipe();
        for call in group {
            pipe.invoke_script(call).ignore();
        }
        pipe.query_async::<()>(raw).await?;
    }
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await?;
    let field = |line: &str, name: &str| -> f64 {
        line.split(',')
            .find_map(|kv| kv.split(':').next_back()?.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    let mut usec = None;
    let mut commands = 0.0;
    for line in stats.lines().filter(|l| l.starts_with("cmdstat_")) {
        match line.split(':').next() {
            Some("cmdstat_evalsha") => usec = Some(field(line, "usec=")),
            Some("cmdstat_config|resetstat") => {}
            _ => commands += field(line, "calls="),
        }
    }
    let usec = usec.context("no EVALSHA in commandstats")?;
    let n = ids.len() as f64;
    Ok((usec / n, commands / n))
}

/// `take_due.lua` and `record_last.lua` as the store builds them.
fn scripts() -> (redis::Script, redis::Script) {
    let take = [
        lua!("prelude.lua"),
        lua!("lib_claim.lua"),
        lua!("take_due.lua"),
    ]
    .concat();
    let record = [
        lua!("prelude.lua"),
        lua!("lib_record.lua"),
        lua!("lib_complete.lua"),
        lua!("record_last.lua"),
    ]
    .concat();
    (redis::Script::new(&take), redis::Script::new(&record))
}

/// A run key as the store names it (`keys.rs`).
fn key_of(id: &RunId, suffix: &str) -> String {
    format!("{PREFIX}:{{{PREFIX}:{id}}}:{suffix}")
}

/// The one recipient of a run.
fn recipient_of(id: &RunId) -> String {
    format!("r-{}", id.delivery_id())
}

/// The bench's instants: seconds after a fixed origin.
fn t(secs: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 6, 18, 0, 0).unwrap() + Duration::seconds(secs)
}

fn micros(secs: i64) -> i64 {
    t(secs).timestamp_micros()
}

/// An instant as the store writes it in run fields.
fn text(secs: i64) -> String {
    t(secs).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

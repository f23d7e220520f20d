//! How records are laid out in Redis values: instants, the run hash, and
//! the replies of the scripts.

use crate::runs::RunId;
use crate::store::{Counters, NewRun, Run, SendingRun, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use redis::Value;
use std::collections::HashMap;

/// Microseconds since the epoch: exact in a Lua double, which milliseconds
/// would be too but nanoseconds would not.
pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The instant of a number of microseconds since the epoch.
pub(super) fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// The exact text of an instant (RFC 3339 with nanoseconds), so displayed
/// instants round-trip unchanged.
pub(super) fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The fields of a new run's hash.
pub(super) fn new_run_fields(run: &NewRun) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", run.id.to_string()),
        ("delivery_id", run.delivery_id.clone()),
        ("channel", run.channel.clone()),
        ("state", "preparing".to_owned()),
        ("scheduled_for", text(run.scheduled_for)),
        ("sched_us", micros(run.scheduled_for).to_string()),
        ("confirm_deadline", text(run.confirm_deadline)),
        ("deadline_us", micros(run.confirm_deadline).to_string()),
        (
            "confirm_required",
            if run.confirm_required { "1" } else { "0" }.to_owned(),
        ),
        ("definition_hash", run.definition_hash.clone()),
        ("created_at", text(run.created_at)),
        ("chunks", "0".to_owned()),
        ("next_chunk", "0".to_owned()),
        ("chunks_done", "0".to_owned()),
        ("seq", "0".to_owned()),
    ];
    if let Some(period) = &run.aggregation_period {
        fields.push(("aggregation_period", period.clone()));
    }
    if let Some(per_second) = run.throttle_per_second {
        fields.push(("throttle_per_second", per_second.to_string()));
    }
    fields
}

/// Typed reads of a run hash's fields, with errors naming the key and field.
struct RunFields<'a> {
    key: &'a str,
    f: &'a HashMap<String, String>,
}

impl<'a> RunFields<'a> {
    fn corrupt(&self, problem: String) -> StoreError {
        StoreError::Corrupt {
            key: self.key.to_owned(),
            problem,
        }
    }

    /// A field's text; an empty one counts as missing.
    fn get(&self, name: &str) -> Option<&'a String> {
        self.f.get(name).filter(|v| !v.is_empty())
    }

    fn need(&self, name: &str) -> StoreResult<&'a String> {
        self.get(name)
            .ok_or_else(|| self.corrupt(format!("field `{name}` is missing")))
    }

    fn time(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.get(name)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        self.corrupt(format!("field `{name}` = `{v}` is not an instant: {e}"))
                    })
            })
            .transpose()
    }

    fn required(&self, name: &str) -> StoreResult<DateTime<Utc>> {
        self.time(name)?
            .ok_or_else(|| self.corrupt(format!("field `{name}` is missing")))
    }

    /// A counter: 0 when missing, negatives read as 0.
    fn number(&self, name: &str) -> StoreResult<u64> {
        self.get(name).map_or(Ok(0), |v| {
            v.parse::<i64>()
                .map(|n| n.max(0) as u64)
                .map_err(|e| self.corrupt(format!("field `{name}` = `{v}` is not a number: {e}")))
        })
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str, v: &str) -> StoreResult<T> {
        serde_json::from_str(v).map_err(|e| self.corrupt(format!("field `{name}`: {e}")))
    }

    fn id(&self) -> StoreResult<RunId> {
        self.need("id")?
            .parse()
            .map_err(|e| self.corrupt(format!("field `id`: {e}")))
    }

    fn throttle_per_second(&self) -> StoreResult<Option<f64>> {
        self.get("throttle_per_second")
            .map(|v| {
                v.parse()
                    .map_err(|e| self.corrupt(format!("field `throttle_per_second` = `{v}`: {e}")))
            })
            .transpose()
    }
}

/// Reads a run back from its hash.
pub(super) fn run_from_fields(key: &str, f: &HashMap<String, String>) -> StoreResult<Run> {
    let r = RunFields { key, f };
    let state = r
        .need("state")?
        .parse()
        .map_err(|e| r.corrupt(format!("field `state`: {e}")))?;
    let cancel_reason = match r.get("cancel_reason") {
        Some(v) => Some(r.json("cancel_reason", &format!("\"{v}\""))?),
        None => None,
    };
    let preview = match r.get("preview") {
        Some(v) => Some(r.json("preview", v)?),
        None => None,
    };
    let excluded_by_reason = match r.get("excluded") {
        Some(v) => r.json("excluded", v)?,
        None => Default::default(),
    };
    Ok(Run {
        id: r.id()?,
        delivery_id: r.need("delivery_id")?.clone(),
        channel: r.need("channel")?.clone(),
        state,
        scheduled_for: r.required("scheduled_for")?,
        confirm_deadline: r.required("confirm_deadline")?,
        confirm_required: r.get("confirm_required").is_some_and(|v| v == "1"),
        aggregation_period: r.get("aggregation_period").cloned(),
        definition_hash: r.need("definition_hash")?.clone(),
        throttle_per_second: r.throttle_per_second()?,
        created_at: r.required("created_at")?,
        confirmed_by: r.get("confirmed_by").cloned(),
        confirmed_at: r.time("confirmed_at")?,
        cancelled_by: r.get("cancelled_by").cloned(),
        cancelled_at: r.time("cancelled_at")?,
        cancel_reason,
        paused_by: r.get("paused_by").cloned(),
        paused_at: r.time("paused_at")?,
        resumed_by: r.get("resumed_by").cloned(),
        resumed_at: r.time("resumed_at")?,
        started_at: r.time("started_at")?,
        finished_at: r.time("finished_at")?,
        failure: r.get("failure").cloned(),
        outcomes_purged: r.get("outcomes_purged").is_some_and(|v| v == "1"),
        preview,
        chunks: r.number("chunks")? as u32,
        chunks_done: r.number("chunks_done")? as u32,
        counters: Counters {
            targeted: r.number("targeted")?,
            excluded_by_reason,
            delivered: r.number("delivered")?,
            bounced: r.number("bounced")?,
            failed: r.number("failed")?,
            cancelled: r.number("cancelled_n")?,
            opened: r.number("opened")?,
            clicked: r.number("clicked")?,
            unsubscribed: r.number("unsubscribed")?,
        },
    })
}

/// The fields of a run that `take_due.lua` returns for a run it starts,
/// in its order.
const SENDING_FIELDS: [&str; 8] = [
    "id",
    "delivery_id",
    "channel",
    "definition_hash",
    "throttle_per_second",
    "scheduled_for",
    "confirmed_at",
    "chunks",
];

/// What sending needs of the run with hash `key`, from `take_due.lua`'s
/// list of [`SENDING_FIELDS`] (a run just started has no chunk done).
pub(super) fn sending_run_from(key: &str, value: Value) -> StoreResult<SendingRun> {
    let values: Vec<Option<String>> =
        redis::from_redis_value(value).map_err(|e| StoreError::Corrupt {
            key: key.to_owned(),
            problem: format!("the started run's fields: {e}"),
        })?;
    let f: HashMap<String, String> = SENDING_FIELDS
        .iter()
        .zip(values)
        .filter_map(|(name, v)| Some(((*name).to_owned(), v?)))
        .collect();
    let r = RunFields { key, f: &f };
    let scheduled_for = r.required("scheduled_for")?;
    Ok(SendingRun {
        id: r.id()?,
        delivery_id: r.need("delivery_id")?.clone(),
        channel: r.need("channel")?.clone(),
        definition_hash: r.need("definition_hash")?.clone(),
        throttle_per_second: r.throttle_per_second()?,
        due: SendingRun::due_at(scheduled_for, r.time("confirmed_at")?),
        chunks_left: r.number("chunks")? as u32,
    })
}

/// A flat `HGETALL` reply as a map.
pub(super) fn fields(value: Value) -> StoreResult<HashMap<String, String>> {
    redis::from_redis_value(value).map_err(|e| StoreError::Corrupt {
        key: "script reply".to_owned(),
        problem: e.to_string(),
    })
}

/// The reply of a run script: `{seq, agenda, ...rest}`.
pub(super) struct RunReply {
    /// The run's agenda sequence after the script.
    pub seq: i64,
    /// Its agenda instant (µs), negative when it needs no work.
    pub agenda: i64,
    /// The script's own results.
    pub rest: Vec<Value>,
}

impl RunReply {
    /// Splits a script reply.
    pub fn parse(value: Value) -> StoreResult<RunReply> {
        let bad = |problem: &str| StoreError::Corrupt {
            key: "run script reply".to_owned(),
            problem: problem.to_owned(),
        };
        let Value::Array(items) = value else {
            return Err(bad("not an array"));
        };
        let mut items = items.into_iter();
        let seq = int(items.next().ok_or_else(|| bad("no sequence"))?)?;
        let agenda = int(items.next().ok_or_else(|| bad("no agenda instant"))?)?;
        Ok(RunReply {
            seq,
            agenda,
            rest: items.collect(),
        })
    }

    /// The `i`-th own result as text.
    pub fn text(&self, i: usize) -> StoreResult<String> {
        string(self.rest.get(i).cloned().unwrap_or(Value::Nil))
    }

    /// The `i`-th own result as an integer.
    pub fn int(&self, i: usize) -> StoreResult<i64> {
        int(self.rest.get(i).cloned().unwrap_or(Value::Nil))
    }

    /// Whether the run may have a chunk to claim at `now`: its agenda
    /// instant is `now` exactly when a chunk is free or its lease has run
    /// out (`agenda_of` in the prelude).
    pub fn claimable_at(&self, now: DateTime<Utc>) -> bool {
        (0..=micros(now)).contains(&self.agenda)
    }
}

/// A reply value as an integer.
pub(super) fn int(value: Value) -> StoreResult<i64> {
    redis::from_redis_value(value).map_err(|e| StoreError::Corrupt {
        key: "script reply".to_owned(),
        problem: e.to_string(),
    })
}

/// A reply value as text.
pub(super) fn string(value: Value) -> StoreResult<String> {
    redis::from_redis_value(value).map_err(|e| StoreError::Corrupt {
        key: "script reply".to_owned(),
        problem: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn instants_keep_microseconds_and_their_exact_text() {
        let t = Utc.timestamp_opt(1_796_000_000, 123_456_789).unwrap();
        assert_eq!(from_micros(micros(t)).timestamp_subsec_micros(), 123_456);
        let back = DateTime::parse_from_rfc3339(&text(t)).unwrap();
        assert_eq!(back.with_timezone(&Utc), t);
    }

    fn bulk(v: &str) -> Value {
        Value::BulkString(v.as_bytes().to_vec())
    }

    /// take_due.lua's list for a started run: values in `SENDING_FIELDS`
    /// order, `Nil` where the run has no such field.
    fn started(channel: Value, confirmed_at: Value) -> Value {
        Value::Array(vec![
            bulk("d1@20261206T180000Z"),
            bulk("d1"),
            channel,
            bulk("sha256:00"),
            Value::Nil,
            bulk("2026-12-06T18:00:00Z"),
            confirmed_at,
            bulk("3"),
        ])
    }

    #[test]
    fn a_started_run_is_due_at_its_instant_or_its_later_confirmation() {
        let at = |h| Utc.with_ymd_and_hms(2026, 12, 6, h, 0, 0).unwrap();
        let run = sending_run_from("k", started(bulk("email"), Value::Nil)).unwrap();
        assert_eq!(
            (
                run.delivery_id.as_str(),
                run.channel.as_str(),
                run.chunks_left
            ),
            ("d1", "email", 3)
        );
        assert_eq!((run.due, run.throttle_per_second), (at(18), None));
        let confirmed = started(bulk("email"), bulk("2026-12-06T19:00:00Z"));
        assert_eq!(sending_run_from("k", confirmed).unwrap().due, at(19));
    }

    #[test]
    fn a_started_run_without_its_channel_is_corrupt_and_says_which_field() {
        let error = sending_run_from("herald:{herald:d1}:run", started(Value::Nil, Value::Nil))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("herald:{herald:d1}:run") && error.contains("`channel`"),
            "{error}"
        );
    }
}

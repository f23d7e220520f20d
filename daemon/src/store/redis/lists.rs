//! Listings: runs by newest instant, the agenda, counts by state.

use super::codec::{from_micros, micros, run_from_fields};
use super::{RedisStore, store_err};
use crate::runs::{RunId, RunState};
use crate::store::{Page, Run, RunFilter, StoreError, StoreResult};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// How many index entries one listing round trip reads.
const SCAN_BATCH: usize = 200;

impl RedisStore {
    pub(super) async fn list_runs_impl(
        &self,
        filter: &RunFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Run>> {
        let index = match &filter.delivery_id {
            Some(delivery) => self.global.delivery_runs(delivery),
            None => self.global.runs.clone(),
        };
        let after = cursor.map(parse_cursor).transpose()?;
        let max = after
            .as_ref()
            .map_or("+inf".to_owned(), |(us, _)| us.to_string());
        let mut items: Vec<(i64, Run)> = Vec::new();
        let mut offset = 0;
        'scan: loop {
            let batch = index_page(self, &index, &max, offset).await?;
            offset += batch.len();
            let fresh: Vec<(String, i64)> = batch
                .iter()
                .filter(|(id, us)| !seen(&after, id, *us))
                .cloned()
                .collect();
            if fresh.is_empty() {
                // An empty pipeline is an "empty command" error in Redis.
                if batch.len() < SCAN_BATCH {
                    break;
                }
                continue;
            }
            let mut pipe = redis::pipe();
            for (id, _) in &fresh {
                let id: RunId =
                    id.parse()
                        .map_err(|e: crate::runs::model::BadRunId| StoreError::Corrupt {
                            key: index.clone(),
                            problem: e.to_string(),
                        })?;
                pipe.cmd("HGETALL").arg(self.run_keys(&id).run);
            }
            let hashes: Vec<HashMap<String, String>> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            for ((id, us), f) in fresh.iter().zip(hashes) {
                if f.is_empty() {
                    continue;
                }
                let run = run_from_fields(id, &f)?;
                if filter.state.is_none_or(|s| s == run.state) {
                    items.push((*us, run));
                    if items.len() > limit {
                        break 'scan;
                    }
                }
            }
            if batch.len() < SCAN_BATCH {
                break;
            }
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|(us, run)| format!("{us}:{}", run.id))
        } else {
            None
        };
        Ok(Page {
            items: items.into_iter().map(|(_, run)| run).collect(),
            next_cursor,
        })
    }

    pub(super) async fn due_runs_impl(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<RunId>> {
        let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(&self.global.agenda)
            .arg("-inf")
            .arg(micros(now))
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        ids.iter()
            .map(|id| {
                id.parse()
                    .map_err(|e: crate::runs::model::BadRunId| StoreError::Corrupt {
                        key: self.global.agenda.clone(),
                        problem: e.to_string(),
                    })
            })
            .collect()
    }

    pub(super) async fn next_due_impl(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let first: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(&self.global.agenda)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(first.first().map(|(_, us)| from_micros(*us as i64)))
    }

    pub(super) async fn count_by_state_impl(&self) -> StoreResult<Vec<(RunState, u64)>> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(&self.global.runs)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let mut counts: HashMap<RunState, u64> = HashMap::new();
        for batch in ids.chunks(1000) {
            let mut pipe = redis::pipe();
            for id in batch {
                match id.parse::<RunId>() {
                    Ok(id) => pipe.cmd("HGET").arg(self.run_keys(&id).run).arg("state"),
                    Err(_) => pipe.cmd("ECHO").arg(""),
                };
            }
            let states: Vec<Option<String>> = pipe
                .query_async(&mut self.conn())
                .await
                .map_err(store_err)?;
            for state in states.into_iter().flatten() {
                if let Ok(state) = state.parse() {
                    *counts.entry(state).or_default() += 1;
                }
            }
        }
        Ok(RunState::ALL
            .iter()
            .map(|s| (*s, counts.get(s).copied().unwrap_or(0)))
            .collect())
    }
}

/// One page of an index ZSET, newest first, from score `max` down.
async fn index_page(
    store: &RedisStore,
    index: &str,
    max: &str,
    offset: usize,
) -> StoreResult<Vec<(String, i64)>> {
    let page: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
        .arg(index)
        .arg(max)
        .arg("-inf")
        .arg("WITHSCORES")
        .arg("LIMIT")
        .arg(offset)
        .arg(SCAN_BATCH)
        .query_async(&mut store.conn())
        .await
        .map_err(store_err)?;
    Ok(page.into_iter().map(|(id, us)| (id, us as i64)).collect())
}

/// Whether an entry was on an earlier page: newest first, and among equal
/// instants by id descending (the order of ZREVRANGEBYSCORE).
pub(super) fn seen(after: &Option<(i64, String)>, id: &str, us: i64) -> bool {
    after.as_ref().is_some_and(|(last_us, last_id)| {
        us > *last_us || (us == *last_us && id >= last_id.as_str())
    })
}

/// A `µs:id` paging cursor.
pub(super) fn parse_cursor(cursor: &str) -> StoreResult<(i64, String)> {
    cursor
        .split_once(':')
        .and_then(|(us, id)| Some((us.parse().ok()?, id.to_owned())))
        .ok_or_else(|| StoreError::BadCursor {
            cursor: cursor.to_owned(),
        })
}

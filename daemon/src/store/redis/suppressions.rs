//! Quarantine and denylist.

use super::batcher::Batcher;
use super::connection::RedisConn;
use super::keys::GlobalKeys;
use super::runs::to_json;
use super::{RedisStore, scripts, store_err};
use crate::store::{Page, StoreError, StoreResult, Suppression, SuppressionList};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a list keeps per address.
#[derive(Serialize, Deserialize)]
struct Entry {
    reason: String,
    since: DateTime<Utc>,
}

/// Lookups of at most this many addresses (a small run's) are gathered
/// with others; a big audience's batch is a call of its own.
const GATHERED: usize = 64;

/// Most lookups gathered per call.
const PER_CALL: usize = 64;

/// Starts the task that makes the small lookups waiting, as many per call
/// as are waiting.
pub(super) fn looker(
    conn: RedisConn,
    global: Arc<GlobalKeys>,
) -> Batcher<Vec<String>, Vec<Option<SuppressionList>>> {
    Batcher::start(
        "suppression lookup",
        PER_CALL,
        move |lookups: Arc<[Vec<String>]>, _| {
            let (conn, global) = (conn.clone(), global.clone());
            async move {
                let lookups: Vec<&[String]> = lookups.iter().map(Vec::as_slice).collect();
                look_up(&conn, &global, &lookups).await
            }
        },
    )
}

/// Which list, if any, holds each address of each lookup, in one round
/// trip (the denylist wins over the quarantine).
async fn look_up(
    conn: &RedisConn,
    global: &GlobalKeys,
    lookups: &[&[String]],
) -> StoreResult<Vec<Vec<Option<SuppressionList>>>> {
    let (deny, _) = global.suppressions(SuppressionList::Denylist);
    let (quarantine, _) = global.suppressions(SuppressionList::Quarantine);
    let addresses: Vec<&String> = lookups.iter().flat_map(|lookup| lookup.iter()).collect();
    let mut pipe = redis::pipe();
    pipe.cmd("HMGET").arg(&deny).arg(&addresses);
    pipe.cmd("HMGET").arg(&quarantine).arg(&addresses);
    let (denied, quarantined): (Vec<Option<String>>, Vec<Option<String>>) = pipe
        .query_async(&mut conn.clone())
        .await
        .map_err(store_err)?;
    let mut lists = denied.iter().zip(&quarantined).map(|(d, q)| match (d, q) {
        (Some(_), _) => Some(SuppressionList::Denylist),
        (None, Some(_)) => Some(SuppressionList::Quarantine),
        (None, None) => None,
    });
    Ok(lookups
        .iter()
        .map(|lookup| lists.by_ref().take(lookup.len()).collect())
        .collect())
}

impl RedisStore {
    pub(super) async fn suppressed_impl(
        &self,
        addresses: &[String],
    ) -> StoreResult<Vec<Option<SuppressionList>>> {
        if addresses.is_empty() {
            return Ok(Vec::new());
        }
        if addresses.len() <= GATHERED {
            return self.suppressed.call(addresses.to_vec()).await;
        }
        // A big audience's batch is looked up as it is, not copied.
        let mut lists = look_up(&self.conn, &self.global, &[addresses]).await?;
        Ok(lists.pop().unwrap_or_default())
    }

    pub(super) async fn suppress_impl(
        &self,
        list: SuppressionList,
        address: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (entries, index) = self.global.suppressions(list);
        let entry = Entry {
            reason: reason.to_owned(),
            since: now,
        };
        scripts::SUPPRESS
            .key(entries)
            .key(index)
            .arg(address)
            .arg(to_json(&entry))
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    pub(super) async fn unsuppress_impl(
        &self,
        list: SuppressionList,
        address: &str,
    ) -> StoreResult<bool> {
        let (entries, index) = self.global.suppressions(list);
        let lifted: i64 = scripts::UNSUPPRESS
            .key(entries)
            .key(index)
            .arg(address)
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(lifted == 1)
    }

    pub(super) async fn suppressions_impl(
        &self,
        list: SuppressionList,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Suppression>> {
        let (entries, index) = self.global.suppressions(list);
        // The cursor is the last address shown; addresses sort bytewise.
        let min = cursor.map_or("-".to_owned(), |after| format!("({after}"));
        let mut addresses: Vec<String> = redis::cmd("ZRANGEBYLEX")
            .arg(&index)
            .arg(min)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1)
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let next_cursor = if addresses.len() > limit {
            addresses.truncate(limit);
            addresses.last().cloned()
        } else {
            None
        };
        if addresses.is_empty() {
            return Ok(Page {
                items: Vec::new(),
                next_cursor,
            });
        }
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET").arg(&entries).arg(&addresses);
        pipe.cmd("HMGET")
            .arg(&self.global.soft_bounces)
            .arg(&addresses);
        let (values, bounces): (Vec<Option<String>>, Vec<Option<u32>>) = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        let mut items = Vec::with_capacity(addresses.len());
        for ((address, value), bounces) in addresses.into_iter().zip(values).zip(bounces) {
            let Some(value) = value else { continue };
            let entry: Entry = serde_json::from_str(&value).map_err(|e| StoreError::Corrupt {
                key: format!("{entries} {address}"),
                problem: e.to_string(),
            })?;
            items.push(Suppression {
                address,
                list,
                reason: entry.reason,
                since: entry.since,
                soft_bounces: bounces.unwrap_or(0),
            });
        }
        Ok(Page { items, next_cursor })
    }

    pub(super) async fn soft_bounce_impl(
        &self,
        address: &str,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (entries, index) = self.global.suppressions(SuppressionList::Quarantine);
        let entry = Entry {
            reason: "soft_bounces".to_owned(),
            since: now,
        };
        let quarantined: i64 = scripts::SOFT_BOUNCE
            .key(&self.global.soft_bounces)
            .key(entries)
            .key(index)
            .arg(address)
            .arg(threshold)
            .arg(to_json(&entry))
            .invoke_async(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(quarantined == 1)
    }

    pub(super) async fn reset_soft_bounces_impl(&self, addresses: &[String]) -> StoreResult<()> {
        if addresses.is_empty() {
            return Ok(());
        }
        redis::cmd("HDEL")
            .arg(&self.global.soft_bounces)
            .arg(addresses)
            .query_async::<i64>(&mut self.conn())
            .await
            .map_err(store_err)?;
        Ok(())
    }

    /// `SET NX` then `GET`: the first instance's candidate wins, and every
    /// instance reads the same secret afterwards.
    pub(super) async fn shared_secret_impl(
        &self,
        name: &str,
        candidate: &[u8],
    ) -> StoreResult<Vec<u8>> {
        let key = self.global.secret(name);
        let mut conn = self.conn();
        redis::cmd("SET")
            .arg(&key)
            .arg(candidate)
            .arg("NX")
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(store_err)?;
        let kept: Option<Vec<u8>> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(store_err)?;
        kept.ok_or_else(|| StoreError::Corrupt {
            key,
            problem: "the secret vanished right after it was set".to_owned(),
        })
    }
}

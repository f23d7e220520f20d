//! Key names. Every key carries a hash tag so each script touches one
//! Redis Cluster slot: `{prefix:run_id}` for a run, `{prefix}` for the
//! global keys, `{prefix:h:recipient}` for a recipient's history.

use crate::runs::RunId;
use crate::store::SuppressionList;

/// The keys of one run, all in the slot of `{prefix:run_id}`.
pub(super) struct RunKeys {
    /// HASH: the run's fields, counters and progress.
    pub run: String,
    /// STRING: the definition snapshot (JSON).
    pub definition: String,
    /// ZSET: claimed, unfinished chunk (`number \x1f owner`) → lease end
    /// (µs); a chunk given back is its number alone, scored -1.
    pub leases: String,
    /// HASH: claimed chunk → owner, as daemons before session 14 kept it
    /// (a claim of such a lease clears its entry; purged with the run).
    pub owners: String,
    /// HASH: chunk number → chunk JSON.
    pub chunks: String,
    /// HASH: chunk number → its recipient ids, `\x1f`-separated.
    pub chunk_ids: String,
    /// HASH: recipient id → outcome JSON.
    pub outcomes: String,
    /// LIST: new outcomes not yet in their recipients' history, one
    /// element per recorded batch: `µs \x1f recipient id` entries joined
    /// by `\x1e`.
    pub unindexed: String,
    /// HASH: batches taken from `unindexed` by a history indexer and not
    /// yet written (`owner`, `until` µs, `batches` joined by `\x1d`).
    pub indexing: String,
    /// SET: recipients who opened (or clicked).
    pub opens: String,
    /// SET: recipients who clicked.
    pub clicks: String,
    /// SET: recipients who unsubscribed through the run.
    pub unsubscribes: String,
}

impl RunKeys {
    /// The keys of run `id` under `prefix`.
    pub fn new(prefix: &str, id: &RunId) -> RunKeys {
        let base = format!("{prefix}:{{{prefix}:{id}}}:");
        // Built on every store call: plain appends, each allocated once,
        // cost a fraction of `format!`'s growing buffers.
        let key = |suffix: &str| {
            let mut key = String::with_capacity(base.len() + suffix.len());
            key.push_str(&base);
            key.push_str(suffix);
            key
        };
        RunKeys {
            run: key("run"),
            definition: key("definition"),
            leases: key("leases"),
            owners: key("owners"),
            chunks: key("chunks"),
            chunk_ids: key("chunk_ids"),
            outcomes: key("outcomes"),
            unindexed: key("unindexed"),
            indexing: key("indexing"),
            opens: key("opens"),
            clicks: key("clicks"),
            unsubscribes: key("unsubscribes"),
        }
    }

    /// The keys a chunk claim reads and writes (`lib_claim.lua`), in order.
    pub fn claim_keys(&self) -> [&str; 6] {
        [
            &self.run,
            &self.leases,
            &self.owners,
            &self.chunks,
            &self.chunk_ids,
            &self.outcomes,
        ]
    }
}

/// The global keys, all in the slot of `{prefix}`.
pub(super) struct GlobalKeys {
    /// ZSET: run id → the instant (µs) it next needs work.
    pub agenda: String,
    /// HASH: run id → the agenda sequence last applied.
    pub agenda_seq: String,
    /// ZSET: run id → scheduled_for (µs), every run.
    pub runs: String,
    /// HASH: delivery id → "µs;text" of its schedule cursor.
    pub cursors: String,
    /// HASH: provider message id → "run_id\nrecipient_id".
    pub messages: String,
    /// HASH: address → soft bounces counted.
    pub soft_bounces: String,
    /// ZSET: recipient id → instant (µs) of their oldest history entry,
    /// so retention finds old history without scanning every recipient.
    pub history_due: String,
    /// ZSET: run id → instant (µs) of its oldest outcome not yet in its
    /// recipients' history (`:unindexed`), for the history indexer.
    pub history_pending: String,
    /// HASH: `run id\nrecipient id` → when the erasure was asked, for runs
    /// not finished yet.
    pub erasures: String,
    /// Pub/sub channel announcing "a run may be due sooner".
    pub changes: String,
    prefix: String,
}

impl GlobalKeys {
    /// The global keys under `prefix`.
    pub fn new(prefix: &str) -> GlobalKeys {
        let base = format!("{prefix}:{{{prefix}}}");
        GlobalKeys {
            agenda: format!("{base}:agenda"),
            agenda_seq: format!("{base}:agenda_seq"),
            runs: format!("{base}:runs"),
            cursors: format!("{base}:cursors"),
            messages: format!("{base}:messages"),
            soft_bounces: format!("{base}:soft_bounces"),
            history_due: format!("{base}:history_due"),
            history_pending: format!("{base}:history_pending"),
            erasures: format!("{base}:erasures"),
            changes: format!("{prefix}:changes"),
            prefix: base,
        }
    }

    /// STRING: a secret shared by the instances (set once, `SET NX`).
    pub fn secret(&self, name: &str) -> String {
        format!("{}:secret:{name}", self.prefix)
    }

    /// ZSET: run id → scheduled_for (µs), the runs of one delivery.
    pub fn delivery_runs(&self, delivery_id: &str) -> String {
        format!("{}:runs:{delivery_id}", self.prefix)
    }

    /// HASH: address → entry JSON, and ZSET: the addresses in order.
    pub fn suppressions(&self, list: SuppressionList) -> (String, String) {
        let name = match list {
            SuppressionList::Quarantine => "quarantine",
            SuppressionList::Denylist => "denylist",
        };
        (
            format!("{}:{name}", self.prefix),
            format!("{}:{name}:index", self.prefix),
        )
    }

    /// STRING: the throttle's theoretical arrival time for a delivery.
    pub fn throttle(&self, delivery_id: &str) -> String {
        format!("{}:throttle:{delivery_id}", self.prefix)
    }
}

/// A recipient's history, ZSET run id → outcome instant (µs), in the slot
/// of `{prefix:h:recipient}`; the entries are read from the runs' outcomes.
pub(super) fn history(prefix: &str, recipient_id: &str) -> String {
    format!("{prefix}:{{{prefix}:h:{recipient_id}}}:history")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash tag Redis Cluster hashes to pick the key's slot.
    fn tag(key: &str) -> &str {
        let open = key.find('{').unwrap();
        let close = open + key[open..].find('}').unwrap();
        &key[open + 1..close]
    }

    #[test]
    fn every_key_of_a_run_shares_the_run_tag() {
        let id: RunId = "weekly@20261207T080000Z".parse().unwrap();
        let k = RunKeys::new("herald", &id);
        for key in [
            &k.run,
            &k.definition,
            &k.leases,
            &k.owners,
            &k.chunks,
            &k.chunk_ids,
            &k.outcomes,
            &k.opens,
            &k.clicks,
            &k.unsubscribes,
        ] {
            assert_eq!(tag(key), "herald:weekly@20261207T080000Z", "{key}");
        }
        assert_eq!(k.run, "herald:{herald:weekly@20261207T080000Z}:run");
    }

    #[test]
    fn global_keys_share_the_prefix_tag() {
        let g = GlobalKeys::new("hx");
        let (list, index) = g.suppressions(SuppressionList::Denylist);
        for key in [
            &g.agenda,
            &g.agenda_seq,
            &g.runs,
            &g.cursors,
            &g.messages,
            &g.soft_bounces,
            &g.history_due,
            &g.erasures,
            &g.delivery_runs("d"),
            &list,
            &index,
            &g.throttle("d"),
        ] {
            assert_eq!(tag(key), "hx", "{key}");
        }
        assert_eq!(tag(&history("hx", "r1")), "hx:h:r1");
    }
}

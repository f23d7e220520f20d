//! Retention and erasure as Redis lays them out: the Lua rewrite of a
//! chunk stays readable JSON, and a purged run leaves only its hash.

use super::*;
use crate::store::{Step, TrackingKind};
use std::collections::BTreeMap;

#[tokio::test]
async fn erasing_rewrites_chunks_as_json_the_store_reads_back() {
    let f = fixture().await;
    let s = &f.store;
    let run = new_run("weekly", true);
    assert!(s.create_run(&run).await.unwrap());
    assert!(
        s.claim_preparation(&run.id, "a", t(30), t(0))
            .await
            .unwrap()
    );
    let row = |id: &str| FrozenRecipient {
        id: id.to_owned(),
        address: format!("{id}@example.com"),
        fields: std::sync::Arc::new(BTreeMap::from([
            ("name".to_owned(), "Zoë \"Z\" / ☃".to_owned()),
            ("city".to_owned(), "Köln".to_owned()),
        ])),
    };
    let chunks = [
        Chunk {
            number: 0,
            recipients: vec![row("a"), row("gone"), row("b")],
        },
        Chunk {
            number: 1,
            recipients: vec![row("gone")],
        },
    ];
    for chunk in &chunks {
        s.put_chunk(&run.id, chunk).await.unwrap();
    }
    let prepared = Prepared {
        targeted: 4,
        excluded_by_reason: Default::default(),
        chunks: 2,
        preview: None,
    };
    done(
        s.finish_preparation(&run.id, "a", &prepared, t(0))
            .await
            .unwrap(),
    );
    done(s.expire(&run.id, t(60)).await.unwrap());

    assert_eq!(
        s.erase_from_run(&run.id, "gone", 0, 10).await.unwrap(),
        Step::Done
    );
    let k = s.run_keys(&run.id);
    let first: String = raw(s, redis::cmd("HGET").arg(&k.chunks).arg(0)).await;
    let first: Chunk = serde_json::from_str(&first).unwrap();
    assert_eq!(first.number, 0);
    assert_eq!(first.recipients, vec![row("a"), row("b")]);
    let second: String = raw(s, redis::cmd("HGET").arg(&k.chunks).arg(1)).await;
    let second: Chunk = serde_json::from_str(&second).unwrap();
    assert!(second.recipients.is_empty());
    let ids: Vec<String> = raw(s, redis::cmd("HMGET").arg(&k.chunk_ids).arg(0).arg(1)).await;
    assert_eq!(ids, ["a\u{1f}b", ""]);
}

#[tokio::test]
async fn a_purged_run_keeps_only_its_hash_and_definition() {
    let f = fixture().await;
    let s = &f.store;
    let run = new_run("weekly", false);
    prepare(s, &run, 2, 2, t(100)).await;
    let mut claimed = Vec::new();
    while let Some(c) = s.claim_chunk(&run.id, "a", t(200), t(101)).await.unwrap() {
        claimed.push(c);
    }
    for c in &claimed {
        let outs: Vec<_> = c
            .recipients
            .iter()
            .map(|r| outcome(&r.id, Outcome::Delivered, t(102)))
            .collect();
        s.record_outcomes(&run.id, &outs).await.unwrap();
        s.complete_chunk(&run.id, c.number, "a", t(102))
            .await
            .unwrap();
    }
    s.record_tracking(&run.id, &[("r0".to_owned(), TrackingKind::Click)])
        .await
        .unwrap();
    while s.purge_run(&run.id, 3).await.unwrap() != Step::Done {}
    let k = s.run_keys(&run.id);
    for key in [
        &k.chunks,
        &k.chunk_ids,
        &k.outcomes,
        &k.opens,
        &k.clicks,
        &k.unsubscribes,
        &k.leases,
        &k.owners,
        &k.unindexed,
        &k.indexing,
    ] {
        let exists: i64 = raw(s, redis::cmd("EXISTS").arg(key)).await;
        assert_eq!(exists, 0, "{key}");
    }
    let pending: Option<f64> = raw(
        s,
        redis::cmd("ZSCORE")
            .arg(&s.global.history_pending)
            .arg(run.id.as_str()),
    )
    .await;
    assert_eq!(pending, None, "the run's history queue was drained");
    let purged: Option<String> = raw(s, redis::cmd("HGET").arg(&k.run).arg("purged")).await;
    assert_eq!(purged.as_deref(), Some("1"));
    let messages: i64 = raw(s, redis::cmd("HLEN").arg(&s.global.messages)).await;
    assert_eq!(messages, 0);
    // The history member now carries the outcome (short: the key stays a listpack).
    let members: Vec<String> = raw(
        s,
        redis::cmd("ZRANGE")
            .arg(keys_history(s, "r0"))
            .arg(0)
            .arg(-1),
    )
    .await;
    assert_eq!(members.len(), 1);
    assert_eq!(members[0], format!("{}\u{1f}delivered", run.id));
}

fn keys_history(s: &RedisStore, recipient: &str) -> String {
    super::super::keys::history(&s.prefix, recipient)
}

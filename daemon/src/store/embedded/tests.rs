//! The conformance suite on the embedded backend, and what only this
//! backend promises: the single-instance lock and state that survives a
//! reopen.

use super::*;
use crate::store::conformance::{self, conformance_tests, done, new_run, t};

/// A fresh store in its own temporary folder. The folder is removed when
/// this returns; the open file descriptors keep the (unlinked) files
/// usable for the test, and nothing is left behind.
async fn make_store() -> SharedStore {
    let dir = tempfile::tempdir().unwrap();
    Arc::new(
        EmbeddedStore::open(dir.path().join("herald.db"))
            .await
            .unwrap(),
    )
}

conformance_tests!(conformance_embedded, make_store);

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var").join("herald.db");
    let first = EmbeddedStore::open(&path).await.unwrap();
    let err = match EmbeddedStore::open(&path).await {
        Err(e) => e,
        Ok(_) => panic!("a second open of {} succeeded", path.display()),
    };
    let message = err.to_string();
    assert!(
        matches!(&err, StoreError::Locked { pid, .. } if *pid == std::process::id().to_string()),
        "{err:?}"
    );
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    drop(first);
    EmbeddedStore::open(&path)
        .await
        .expect("opens once the first holder is gone");
}

#[tokio::test]
async fn state_survives_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let store: SharedStore = Arc::new(EmbeddedStore::open(&path).await.unwrap());
    let id = conformance::sending_run(&store, "digest", &[2, 1]).await;
    let claimed = store
        .claim_chunk(&id, "a", t(60), t(1))
        .await
        .unwrap()
        .unwrap();
    let first = &claimed.recipients[0].id;
    store
        .record_outcomes(&id, &[conformance::delivered(first, t(2))])
        .await
        .unwrap();
    store
        .suppress(SuppressionList::Denylist, "x@example.test", "stop", t(3))
        .await
        .unwrap();
    let pending = new_run("weekly", 3600, true);
    store.create_run(&pending).await.unwrap();
    done(conformance::prepare(&store, &pending, &[1], t(4)).await);
    let before = store.run(&id).await.unwrap().unwrap();
    drop(store);

    let store: SharedStore = Arc::new(EmbeddedStore::open(&path).await.unwrap());
    assert_eq!(store.run(&id).await.unwrap().unwrap(), before);
    assert_eq!(
        store.outcome(&id, first).await.unwrap().unwrap().outcome,
        crate::runs::Outcome::Delivered
    );
    assert_eq!(
        store
            .suppressed(&["x@example.test".to_owned()])
            .await
            .unwrap(),
        vec![Some(SuppressionList::Denylist)]
    );
    // The lease of chunk 0 survives too: after it expires, the rest of the chunk is reclaimed.
    assert_eq!(
        store
            .claim_chunk(&id, "b", t(120), t(30))
            .await
            .unwrap()
            .unwrap()
            .number,
        1
    );
    let reclaimed = store
        .claim_chunk(&id, "b", t(120), t(61))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((reclaimed.number, reclaimed.recipients.len()), (0, 1));
    let due = |now| {
        let store = store.clone();
        async move { store.due_runs(now, 10).await.unwrap() }
    };
    assert!(!due(t(1799)).await.contains(&pending.id));
    assert!(
        due(t(1800)).await.contains(&pending.id),
        "the pending run is due at its deadline"
    );
}

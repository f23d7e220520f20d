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

/// Opens the store at `path` again after this process closed it. Other
/// tests in this binary start processes, and a child between `fork` and
/// `exec` still shares our descriptors, so the closed lock can stay held
/// for a moment (CI saw it): the reopen waits that out, for a while.
async fn reopen(path: &std::path::Path) -> EmbeddedStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match EmbeddedStore::open(path).await {
            Ok(store) => return store,
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("reopening {} again: {e}", path.display());
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            Err(e) => panic!("cannot reopen {}: {e}", path.display()),
        }
    }
}

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
    reopen(&path).await;
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

    let store: SharedStore = Arc::new(reopen(&path).await);
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

/// Set in the child process of [`kill_9_loses_no_committed_outcome`].
const CHILD_STORE: &str = "HERALD_TEST_KILL9_STORE";

/// A daemon killed with SIGKILL right after a commit loses nothing, its
/// lock names it while it lives, and the kernel frees the lock when it
/// dies. The test binary re-runs this test as the child process.
#[tokio::test]
async fn kill_9_loses_no_committed_outcome() {
    if let Ok(path) = std::env::var(CHILD_STORE) {
        let store: SharedStore = Arc::new(EmbeddedStore::open(&path).await.unwrap());
        let id = conformance::sending_run(&store, "digest", &[3]).await;
        let outs = [
            conformance::delivered("alice", t(1)),
            conformance::delivered("bob", t(1)),
        ];
        store.record_outcomes(&id, &outs).await.unwrap();
        println!("committed");
        std::future::pending::<()>().await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let mut child = KillOnDrop(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "store::embedded::tests::kill_9_loses_no_committed_outcome",
                "--exact",
                "--nocapture",
            ])
            .env(CHILD_STORE, &path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let committed = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .any(|l| l.is_ok_and(|l| l == "committed"))
    });
    let committed = tokio::time::timeout(std::time::Duration::from_secs(60), committed).await;
    assert!(
        matches!(committed, Ok(Ok(true))),
        "the child never committed: {committed:?}"
    );

    let err = EmbeddedStore::open(&path)
        .await
        .err()
        .expect("the child holds the store");
    assert!(
        err.to_string().contains(&format!("pid {}", child.0.id())),
        "{err}"
    );
    child.0.kill().unwrap(); // SIGKILL: no destructor, no clean close.
    child.0.wait().unwrap();

    let store: SharedStore = Arc::new(EmbeddedStore::open(&path).await.unwrap());
    let id = crate::runs::RunId::at("digest", t(0));
    let c = store
        .run(&id)
        .await
        .unwrap()
        .expect("the run survived")
        .counters;
    assert_eq!(c.delivered, 2);
    assert!(store.outcome(&id, "alice").await.unwrap().is_some());
    assert_eq!(
        store.find_message("pm-bob").await.unwrap(),
        Some((id, "bob".to_owned()))
    );
}

/// Kills the child process when a failed assertion unwinds the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

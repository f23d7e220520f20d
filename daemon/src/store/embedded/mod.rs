//! The embedded backend: one redb file, single instance, the default.
//!
//! Every trait operation is one redb write transaction, run off the async
//! workers with `spawn_blocking` because redb blocks; commits are durable
//! (fsync), so a `kill -9` loses no committed outcome. Operations that only
//! read use a read transaction (a snapshot that never waits for a writer).
//!
//! A second daemon on the same file is refused by an exclusive `flock` on
//! `<path>.lock`, which holds the owner's pid so the refusal can name it.

mod lists;
mod lock;
mod records;
mod retention;
mod runs;
mod sending;
mod store_impl;
mod tables;
#[cfg(test)]
mod tests;

use super::*;
use lock::LockFile;
use redb::{Database, ReadTransaction, ReadableDatabase};
use std::path::{Path, PathBuf};
use tables::{Db, Tx};
use tokio::sync::Notify;

/// The redb-backed [`Store`].
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

/// What the clones share. Field order is drop order: the database is
/// closed before the lock is released.
struct Inner {
    db: Database,
    _lock: LockFile,
    path: PathBuf,
    changes: Arc<Notify>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store file at `path`, creating its folder;
    /// [`StoreError::Locked`] when another process holds it.
    pub async fn open(path: impl AsRef<Path>) -> StoreResult<EmbeddedStore> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(|e| StoreError::Other(format!("opening the embedded store failed: {e}")))?
    }

    /// [`EmbeddedStore::open`] on the calling thread.
    fn open_blocking(path: PathBuf) -> StoreResult<EmbeddedStore> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Other(format!(
                    "cannot create the folder {} of the store file: {e}; create it or change `store.path`",
                    parent.display()
                ))
            })?;
        }
        let lock = LockFile::acquire(&path)?;
        let db = Database::create(&path).map_err(|e| {
            StoreError::Other(format!(
                "cannot open the store file {}: {e}; check its permissions or move it aside",
                path.display()
            ))
        })?;
        let txn = db.begin_write().db()?;
        Tx { txn: &txn }.create_tables()?;
        txn.commit().db()?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                db,
                _lock: lock,
                path,
                changes: Arc::new(Notify::new()),
            }),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Sets a run's counters without touching its records, as a lost
    /// write would leave them: for tests of the recounts.
    #[cfg(test)]
    pub(crate) async fn overwrite_counters(&self, id: &crate::runs::RunId, counters: Counters) {
        let id = id.clone();
        self.write(move |tx| {
            let mut rec = tx.get_run(id.as_str())?.expect("the run exists");
            rec.run.counters = counters;
            tx.put_run(&rec, Some(rec.run.state))
        })
        .await
        .expect("the counters are written");
    }

    /// Holds the write lock until the transaction is dropped, as a long
    /// write would: for tests of callers that must not wait on the store.
    #[cfg(test)]
    pub(crate) fn hold_writes(&self) -> redb::WriteTransaction {
        self.inner
            .db
            .begin_write()
            .expect("the embedded store's write lock")
    }

    /// Runs `f` in one write transaction off the async workers, committed
    /// when it succeeds (and rolled back when it fails).
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        Self::blocking(move || {
            let txn = inner.db.begin_write().db()?;
            let out = f(&Tx { txn: &txn })?;
            txn.commit().db()?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` in a read transaction: a consistent snapshot that never
    /// waits for a writer.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx<'_, ReadTransaction>) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        Self::blocking(move || {
            f(&Tx {
                txn: &inner.db.begin_read().db()?,
            })
        })
        .await
    }

    /// Runs blocking redb work off the async workers.
    async fn blocking<T: Send + 'static>(
        work: impl FnOnce() -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| StoreError::Other(format!("an embedded store task failed: {e}")))?
    }

    /// Wakes the scheduler: something may be due sooner.
    fn notify(&self) {
        self.inner.changes.notify_waiters();
    }

    /// Notifies when a transition succeeded.
    fn notify_done(&self, t: &Transition) {
        if matches!(t, Transition::Done(_)) {
            self.notify();
        }
    }
}

//! The single-instance lock: an exclusive `flock` on `<store file>.lock`,
//! which holds the owner's pid. redb locks its file too, but its error does
//! not say who holds it; this one does. The kernel drops the lock when the
//! process dies, so a `kill -9` leaves no stale lock behind.

use crate::store::{StoreError, StoreResult};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A held lock; released when dropped (the file is closed).
pub(super) struct LockFile {
    _file: File,
}

/// `<path>.lock`.
fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl LockFile {
    /// Takes the lock of the store file `store`, writing our pid in it.
    pub fn acquire(store: &Path) -> StoreResult<LockFile> {
        let path = lock_path(store);
        let io_error = |e: std::io::Error| {
            StoreError::Other(format!(
                "cannot use the lock file {}: {e}; check the permissions of its folder",
                path.display()
            ))
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io_error(err));
            }
            let mut pid = String::new();
            file.read_to_string(&mut pid).map_err(io_error)?;
            let pid = pid.trim();
            return Err(StoreError::Locked {
                path: store.to_path_buf(),
                pid: if pid.is_empty() {
                    "unknown".to_owned()
                } else {
                    pid.to_owned()
                },
            });
        }
        file.set_len(0).map_err(io_error)?;
        file.rewind().map_err(io_error)?;
        write!(file, "{}", std::process::id()).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        Ok(LockFile { _file: file })
    }
}

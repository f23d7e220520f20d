//! What a rescan may reuse: each delivery file's last verdict (its
//! delivery, or its errors) with its warnings, kept while nothing it was
//! read from has changed. The folder is still walked every scan, so new,
//! removed and moved files, symlinks and duplicate ids are seen as before;
//! only the reading and checking of unchanged files is saved.
//!
//! A verdict depends on the delivery file, on the files it names (the
//! audience CSV's header, template files), on where those names resolve,
//! and on the [`ValidationContext`] with its canonical roots. Templates
//! cannot include other files (no loader), so that is all.

use super::audience::Reading;
use super::build::Reference;
use super::catalog::ValidationContext;
use super::delivery::Delivery;
use super::folder::{FileReport, Loaded, check_file_in, load_paths_with};
use super::fsio::{open_regular, resolve_confined};
use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long before a scan's start a file must have last changed for its
/// verdict to be kept. File times tick coarsely (a few milliseconds on
/// Linux, seconds on some network file systems), so a write just after
/// the read can leave every field of the stamp as it was. A verdict is
/// cached only when the file (and each file it names) last changed
/// before the scan began minus this margin: any later write sets a newer
/// time and is seen. The margin also covers a file server whose clock
/// runs behind ours by less than it. A file changed more recently is
/// simply checked again next scan; few files are that fresh.
pub(crate) const SETTLE: Duration = Duration::from_secs(2);

/// A file's identity and version, as `fstat` tells them: a rename over
/// it changes the inode, an edit the size or times, and even a tool
/// that restores the old modification time (`cp -p`, `touch -d`)
/// cannot restore the change time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    /// Modification time: seconds and nanoseconds since the epoch.
    mtime: (i64, i64),
    /// Status change time: seconds and nanoseconds since the epoch.
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of the regular file `path` leads to; `None` for anything
    /// else. It opens the file rather than `stat` it: on NFS an open asks
    /// the server again (close-to-open), a `stat` may answer from a cache
    /// up to a minute old. The open is the one reading uses (non-blocking,
    /// so a FIFO cannot hang the scan).
    fn of(path: &Path) -> Option<Stamp> {
        open_regular(path).ok().map(|(_, meta)| Stamp::from(&meta))
    }

    /// Whether the file last changed before `cutoff` (as `since_epoch` gives it).
    fn settled_before(&self, cutoff: (i64, i64)) -> bool {
        self.mtime.max(self.ctime) < cutoff
    }
}

impl From<&Metadata> for Stamp {
    fn from(meta: &Metadata) -> Self {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// `time` as seconds and nanoseconds since the epoch, as file times are;
/// a time before the epoch is earlier than every file.
fn since_epoch(time: SystemTime) -> (i64, i64) {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            i64::from(d.subsec_nanos()),
        ),
        Err(_) => (i64::MIN, 0),
    }
}

/// A cached verdict and what it was read from.
struct Entry {
    /// The delivery file, when it was checked.
    stamp: Stamp,
    /// Each path the file names, as it resolved, with the stamp of the
    /// file it led to (`None` when it did not resolve).
    references: Vec<(Reference, Option<Stamp>)>,
    report: FileReport<Arc<Delivery>>,
}

impl Entry {
    /// The entry for a verdict just made, if every file it was read from
    /// had settled by `cutoff` (see [`SETTLE`]); `stamp` was taken before
    /// the delivery file was read.
    fn settled(
        stamp: Option<Stamp>,
        references: Vec<Reference>,
        report: &FileReport<Arc<Delivery>>,
        cutoff: (i64, i64),
    ) -> Option<Entry> {
        let stamp = stamp.filter(|s| s.settled_before(cutoff))?;
        let mut stamped = Vec::with_capacity(references.len());
        for reference in references {
            // Taken after the read: a settled stamp shows nothing changed
            // since the cutoff, so none during the read either.
            let referenced = match &reference.resolved {
                Ok(path) => Some(Stamp::of(path).filter(|s| s.settled_before(cutoff))?),
                Err(_) => None,
            };
            stamped.push((reference, referenced));
        }
        Some(Entry {
            stamp,
            references: stamped,
            report: report.clone(),
        })
    }

    /// Whether each path the file names still resolves to the same file,
    /// unchanged. Resolving again sees a symlink repointed, a file that
    /// appeared where one was missing, or one that left the roots.
    fn references_unchanged(&self, file: &Path, roots: &[PathBuf]) -> bool {
        self.references.iter().all(|(reference, stamp)| {
            let resolved = resolve_confined(file, &reference.rel, roots);
            resolved == reference.resolved
                && resolved.map_or(true, |path| Stamp::of(&path) == *stamp)
        })
    }
}

/// How the files of one scan were had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ScanCount {
    /// Files read and checked.
    pub checked: usize,
    /// Files whose cached verdict was reused.
    pub reused: usize,
    /// Files checked that changed too recently for their verdict to be
    /// kept: a scan once they have settled caches them.
    pub fresh: usize,
}

/// The verdicts of the last scan, for the next one to reuse.
#[derive(Default)]
pub(crate) struct FileCache {
    /// The context and canonical roots the cached verdicts were made with.
    made_with: Option<(ValidationContext, Vec<PathBuf>)>,
    entries: HashMap<PathBuf, Entry>,
    last_scan: ScanCount,
}

impl FileCache {
    /// Forgets every verdict: the next scan reads every file.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// How the last scan had its files.
    pub(crate) fn last_scan(&self) -> ScanCount {
        self.last_scan
    }

    /// Loads `ctx.deliveries_dir` as [`load_folder`](super::load_folder)
    /// does, reusing the verdict of each file that has not changed since
    /// the last scan; `started` is when this scan began.
    pub(crate) fn load(
        &mut self,
        ctx: &ValidationContext,
        started: SystemTime,
    ) -> Loaded<Arc<Delivery>> {
        let roots = ctx.canonical_roots();
        // The channels and the roots decide verdicts as much as the files
        // do; a root whose symlink now leads elsewhere counts as another.
        let made_with = (ctx.clone(), roots.clone());
        if self.made_with.as_ref() != Some(&made_with) {
            self.entries.clear();
            self.made_with = Some(made_with);
        }
        let cutoff = since_epoch(
            started
                .checked_sub(SETTLE)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let mut previous = std::mem::take(&mut self.entries);
        let entries = &mut self.entries;
        let mut count = ScanCount::default();
        let dirs = std::slice::from_ref(&ctx.deliveries_dir);
        let loaded = load_paths_with(dirs, &roots, |file| {
            let stamp = Stamp::of(file);
            if let Some(entry) = previous.remove(file)
                && stamp == Some(entry.stamp)
                && entry.references_unchanged(file, &roots)
            {
                count.reused += 1;
                let report = entry.report.clone();
                entries.insert(file.to_path_buf(), entry);
                return report;
            }
            count.checked += 1;
            let (report, references) = check_file_in(file, ctx, &roots, Reading::Header);
            let report = FileReport {
                result: report.result.map(Arc::new),
                warnings: report.warnings,
            };
            if stamp.is_some_and(|s| !s.settled_before(cutoff)) {
                count.fresh += 1;
            }
            if let Some(entry) = Entry::settled(stamp, references, &report, cutoff) {
                entries.insert(file.to_path_buf(), entry);
            }
            report
        });
        self.last_scan = count;
        loaded
    }
}

#[cfg(test)]
#[path = "file_cache_tests.rs"]
mod tests;

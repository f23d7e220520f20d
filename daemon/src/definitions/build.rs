//! From the file as written ([`RawDelivery`]) to a valid [`Delivery`],
//! recording every problem of the file rather than the first.

use super::audience::{Audience, AudienceError, AudienceRow, CsvRows, Reading};
use super::catalog::ValidationContext;
use super::delivery::{Delivery, Tracking};
use super::errors::{FileError, Pos, Problems};
use super::fsio::resolve_confined;
use super::model::{RawAudience, RawDelivery, RawRecipient, Sp};
use super::schedule;
use herald_plugin_api::{ChannelInfo, Normalisation};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Checks an id against `[a-z0-9][a-z0-9_-]{0,63}`.
pub fn is_valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

/// Bad audience rows listed one by one before the rest are only counted.
const BAD_ROWS_LISTED: usize = 5;

pub(crate) struct Builder<'a> {
    pub file: &'a Path,
    pub ctx: &'a ValidationContext,
    pub roots: &'a [PathBuf],
    /// Whether a CSV audience's rows are read, or its header only.
    pub reading: Reading,
    pub problems: Problems,
    pub warnings: Vec<FileError>,
    /// Every path the file names, as it resolved: the other files its verdict was read from.
    pub references: Vec<Reference>,
}

/// A path a delivery file names (`audience.file`, `content.*_file`) and
/// what it resolved to; the verdict also depends on that file's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// The path as written, relative to the delivery file.
    pub rel: String,
    /// The canonical path it led to, or why it was refused.
    pub resolved: Result<PathBuf, String>,
}

impl Builder<'_> {
    /// Resolves a path the file names, inside the roots, and records it.
    pub(crate) fn resolve(&mut self, rel: &str) -> Result<PathBuf, String> {
        let resolved = resolve_confined(self.file, rel, self.roots);
        self.references.push(Reference {
            rel: rel.to_string(),
            resolved: resolved.clone(),
        });
        resolved
    }

    pub(crate) fn build(&mut self, raw: RawDelivery) -> Option<Delivery> {
        let id = self.id(raw.id.as_ref());
        let channel = self.channel(&raw.channel);
        let (audience, known) = self.audience(&raw.audience, &channel);
        let content = self.content(&raw.content, &channel, known.as_ref());
        let throttle = raw.throttle.as_ref().and_then(|t| {
            t.value
                .parse()
                .map_err(|e: String| self.problems.at(t.pos, e))
                .ok()
        });
        let tracking = raw.tracking.as_ref().map(|t| {
            if !channel.tracking && channel.name != "email" {
                self.problems.at(
                    t.pos,
                    format!("`tracking` is for e-mail only; channel `{}` cannot track opens or clicks: remove it", channel.name),
                );
            }
            Tracking {
                opens: t.value.opens.unwrap_or(true),
                clicks: t.value.clicks.unwrap_or(true),
            }
        });
        let schedule = schedule::from_raw(raw.schedule.as_ref(), &mut self.problems);
        if !self.problems.is_empty() {
            return None;
        }
        Some(Delivery {
            id: id?,
            label: raw.label.map(|l| l.value),
            channel,
            audience: audience?,
            content: content?,
            schedule: schedule?,
            throttle,
            tracking,
            source: self.file.to_path_buf(),
            hash: Default::default(),
        })
    }

    fn id(&mut self, raw: Option<&Sp<String>>) -> Option<String> {
        let rule = "ids are 1 to 64 characters of `a-z`, `0-9`, `_` and `-`, starting with a letter or digit";
        match raw {
            Some(id) if is_valid_id(&id.value) => Some(id.value.clone()),
            Some(id) => {
                self.problems
                    .at(id.pos, format!("invalid id `{}`: {rule}", id.value));
                None
            }
            None => {
                let stem = self
                    .file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if is_valid_id(&stem) {
                    Some(stem)
                } else {
                    self.problems.at(
                        Pos::START,
                        format!("the file name `{stem}` is not a valid id and the file has no `id:`: add `id:` or rename the file ({rule})"),
                    );
                    None
                }
            }
        }
    }

    fn channel(&mut self, raw: &Sp<String>) -> ChannelInfo {
        let name = raw.value.trim();
        if let Some(info) = self.ctx.channels.get(name) {
            return info.clone();
        }
        let known: Vec<&str> = self.ctx.channels.names().collect();
        let message = format!(
            "unknown channel `{name}`: the loaded plugins serve {}; load a plugin that serves it or fix the name",
            known.join(", ")
        );
        if self.ctx.channels.is_authoritative() {
            self.problems.at(raw.pos, message);
        } else {
            self.warnings.push(FileError {
                file: self.file.to_path_buf(),
                line: raw.pos.line.max(1),
                column: raw.pos.column.max(1),
                message: format!("{message} (a warning without `--config`)"),
            });
        }
        ChannelInfo {
            name: name.to_string(),
            address_column: None,
            normalise: Normalisation::None,
            tracking: false,
        }
    }

    /// The audience and the variables its rows provide (`None` when unknown).
    fn audience(
        &mut self,
        raw: &Sp<RawAudience>,
        channel: &ChannelInfo,
    ) -> (Option<Audience>, Option<BTreeSet<String>>) {
        match (&raw.value.file, &raw.value.recipients) {
            (Some(file), Some(_)) => {
                self.problems.at(
                    file.pos,
                    "`audience` has both `file` and `recipients`: keep one",
                );
                (None, None)
            }
            (None, None) => {
                self.problems.at(
                    raw.pos,
                    "`audience` needs `file` (a CSV) or `recipients` (an inline list)",
                );
                (None, None)
            }
            (Some(file), None) => self.csv_audience(file, channel),
            (None, Some(list)) => self.inline_audience(list),
        }
    }

    fn csv_audience(
        &mut self,
        file: &Sp<String>,
        channel: &ChannelInfo,
    ) -> (Option<Audience>, Option<BTreeSet<String>>) {
        let path = match self.resolve(&file.value) {
            Ok(p) => p,
            Err(e) => {
                self.problems.at(file.pos, format!("`audience.file`: {e}"));
                return (None, None);
            }
        };
        let rows = match CsvRows::open(&path) {
            Ok(rows) => rows,
            Err(AudienceError::Open { message, .. }) => {
                self.problems.at(
                    file.pos,
                    format!("`audience.file` `{}` {message}", file.value),
                );
                return (None, None);
            }
            Err(
                AudienceError::Row { line, message, .. }
                | AudienceError::Stopped { line, message, .. },
            ) => {
                self.problems
                    .in_file(&path, Pos { line, column: 1 }, message);
                return (None, None);
            }
        };
        let headers = rows.headers().to_vec();
        if let Some(column) = &channel.address_column
            && !headers.contains(column)
        {
            self.problems.in_file(
                &path,
                Pos::START,
                format!(
                    "the header has no `{column}` column, which channel `{}` sends to: add it",
                    channel.name
                ),
            );
        }
        if self.reading == Reading::EveryRow {
            self.bad_rows(&path, rows);
        }
        (
            Some(Audience::File { path }),
            Some(headers.into_iter().collect()),
        )
    }

    /// Reads every row as preparation will and records the rows it would
    /// skip (the first few, then how many more), so a marketer learns of
    /// them before a run is missing those recipients. Exclusions (no or a
    /// malformed address, a repeated `id`) are outcomes, not errors.
    fn bad_rows(&mut self, path: &Path, rows: CsvRows) {
        let mut unlisted: Option<(u64, u64)> = None;
        let mut listed = 0;
        for problem in rows.filter_map(Result::err) {
            let (line, message) = match problem {
                AudienceError::Row { line, message, .. }
                | AudienceError::Stopped { line, message, .. } => (line, message),
                AudienceError::Open { message, .. } => (1, message),
            };
            if listed < BAD_ROWS_LISTED {
                listed += 1;
                self.problems
                    .in_file(path, Pos { line, column: 1 }, message);
            } else {
                unlisted.get_or_insert((line, 0)).1 += 1;
            }
        }
        if let Some((line, count)) = unlisted {
            let message = format!(
                "{count} more rows from this one on cannot be used either: fix the rows above, then validate again to see them"
            );
            self.problems
                .in_file(path, Pos { line, column: 1 }, message);
        }
    }

    fn inline_audience(
        &mut self,
        list: &Sp<Vec<Sp<RawRecipient>>>,
    ) -> (Option<Audience>, Option<BTreeSet<String>>) {
        if list.value.is_empty() {
            self.problems.at(
                list.pos,
                "`audience.recipients` is empty: list at least one recipient",
            );
        }
        let mut known = BTreeSet::new();
        let mut rows = Vec::new();
        for recipient in &list.value {
            let fields: BTreeMap<String, String> = recipient
                .value
                .iter()
                .map(|(k, v)| (k.clone(), v.value.to_text()))
                .collect();
            match fields.get("id").map(|s| s.trim()) {
                Some(id) if id.chars().any(char::is_control) => self
                    .problems
                    .at(recipient.pos, super::audience::ID_WITH_CONTROL),
                Some(id) if !id.is_empty() => {
                    known.extend(fields.keys().cloned());
                    rows.push(AudienceRow {
                        id: id.to_string(),
                        fields,
                    });
                }
                _ => self.problems.at(
                    recipient.pos,
                    "this recipient has no `id`: give each recipient a stable `id`",
                ),
            }
        }
        (Some(Audience::Inline { recipients: rows }), Some(known))
    }
}

mod content;

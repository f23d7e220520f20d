//! Audiences: a CSV streamed row by row (never held whole), or a small
//! inline list.

use super::fsio::open_regular;
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Largest CSV record accepted (64 KiB): bounds the memory one row can take.
pub const MAX_RECORD_BYTES: u64 = 64 * 1024;

/// Why an id with a control character is refused: the store separates
/// ids with control characters in its compact lists.
pub(crate) const ID_WITH_CONTROL: &str =
    "the `id` holds a control character (a tab, a line break or another): ids must be printable";

/// One recipient: its `id` and every column (including `id` and the address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceRow {
    /// The recipient's stable id.
    pub id: String,
    /// Every column of the row, by header name; the template variables.
    pub fields: BTreeMap<String, String>,
}

/// Who receives a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Audience {
    /// A CSV file (canonical path, checked to be inside the allowed roots).
    File {
        /// The CSV's canonical path.
        path: PathBuf,
    },
    /// Recipients written in the delivery file.
    Inline {
        /// The recipients, in file order.
        recipients: Vec<AudienceRow>,
    },
}

/// A problem while reading an audience, naming the file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AudienceError {
    /// The CSV cannot be opened (gone, not a regular file, unreadable).
    #[error("{}: {message}", file.display())]
    Open {
        /// The CSV.
        file: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A row cannot be used (bad CSV, invalid UTF-8, too large, no id).
    #[error("{}:{line}: {message}", file.display())]
    Row {
        /// The CSV.
        file: PathBuf,
        /// 1-based line where the row starts.
        line: u64,
        /// What went wrong.
        message: String,
    },
    /// Reading stopped at a row it cannot get past (a row over the size
    /// limit, a read that failed): the rows from there on are not known,
    /// so a run must not go out as if the audience ended there.
    #[error("{}:{line}: {message}", file.display())]
    Stopped {
        /// The CSV.
        file: PathBuf,
        /// 1-based line where reading stopped.
        line: u64,
        /// What went wrong and how to fix it.
        message: String,
    },
}

impl AudienceError {
    /// Whether reading can go on with the next row.
    pub fn is_row_error(&self) -> bool {
        matches!(self, AudienceError::Row { .. })
    }
}

impl Audience {
    /// The recipients, one at a time. A CSV is read as the iterator
    /// advances; a row error is yielded and reading goes on, an I/O error
    /// ends the iteration after it is yielded ([`AudienceError::Stopped`]).
    pub fn rows(&self) -> AudienceRows<'_> {
        match self {
            Audience::Inline { recipients } => AudienceRows::Inline(recipients.iter()),
            Audience::File { path } => match CsvRows::open(path) {
                Ok(rows) => AudienceRows::Csv(Box::new(rows)),
                Err(e) => AudienceRows::Failed(Some(e)),
            },
        }
    }
}

/// The iterator of [`Audience::rows`].
pub enum AudienceRows<'a> {
    /// Inline recipients.
    Inline(std::slice::Iter<'a, AudienceRow>),
    /// A CSV being read.
    Csv(Box<CsvRows>),
    /// The CSV could not be opened: yields that error once.
    Failed(Option<AudienceError>),
}

impl Iterator for AudienceRows<'_> {
    type Item = Result<AudienceRow, AudienceError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            AudienceRows::Inline(it) => it.next().cloned().map(Ok),
            AudienceRows::Csv(rows) => rows.next(),
            AudienceRows::Failed(e) => e.take().map(Err),
        }
    }
}

/// Fails a read when one record grows past the limit, so a single huge
/// field cannot make the reader buffer the whole file.
struct Bounded<R> {
    inner: R,
    read: u64,
    record_start: Rc<Cell<u64>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // csv reads ahead by its buffer size; allow for it beyond the record limit.
        if self.read.saturating_sub(self.record_start.get()) > MAX_RECORD_BYTES + 64 * 1024 {
            return Err(std::io::Error::other(format!(
                "a row is longer than {MAX_RECORD_BYTES} bytes, and the rows after it cannot be read: shorten it"
            )));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// Streaming reader of a CSV audience.
pub struct CsvRows {
    file: PathBuf,
    reader: csv::Reader<Bounded<BufReader<std::fs::File>>>,
    headers: Vec<String>,
    id_index: usize,
    record_start: Rc<Cell<u64>>,
    record: csv::StringRecord,
    done: bool,
}

impl CsvRows {
    /// Opens the CSV and reads its header, which must hold `id`.
    pub fn open(path: &Path) -> Result<Self, AudienceError> {
        let open_err = |message: String| AudienceError::Open {
            file: path.to_path_buf(),
            message,
        };
        let (file, _) = open_regular(path).map_err(open_err)?;
        let record_start = Rc::new(Cell::new(0));
        let bounded = Bounded {
            inner: BufReader::new(file),
            read: 0,
            record_start: record_start.clone(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(bounded);
        let headers = read_header(path, &mut reader)?;
        let id_index =
            headers
                .iter()
                .position(|h| h == "id")
                .ok_or_else(|| AudienceError::Row {
                    file: path.to_path_buf(),
                    line: 1,
                    message:
                        "the header has no `id` column: add one holding each recipient's stable id"
                            .into(),
                })?;
        record_start.set(reader.position().byte());
        Ok(CsvRows {
            file: path.to_path_buf(),
            reader,
            headers,
            id_index,
            record_start,
            record: csv::StringRecord::new(),
            done: false,
        })
    }

    /// The header's column names.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }
}

fn read_header<R: Read>(
    path: &Path,
    reader: &mut csv::Reader<R>,
) -> Result<Vec<String>, AudienceError> {
    let row_err = |message: String| AudienceError::Row {
        file: path.to_path_buf(),
        line: 1,
        message,
    };
    let headers = reader.headers().map_err(|e| {
        row_err(format!(
            "the header row cannot be read: {}",
            csv_message(&e)
        ))
    })?;
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err(row_err("the file has no header row: the first line must name the columns, with `id` among them".into()));
    }
    let names: Vec<String> = headers.iter().map(|h| h.trim().to_string()).collect();
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(row_err(format!(
                "the header names column `{name}` twice: rename one"
            )));
        }
    }
    Ok(names)
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8: save the file as UTF-8".to_string(),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!(
                "{len} fields where the header has {expected_len}: quote values that hold a comma, and give every row each column"
            )
        }
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

impl Iterator for CsvRows {
    type Item = Result<AudienceRow, AudienceError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let line = self.reader.position().line().max(1);
        self.record_start.set(self.reader.position().byte());
        let row_err = |message: String| AudienceError::Row {
            file: self.file.clone(),
            line,
            message,
        };
        match self.reader.read_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let id = self.record.get(self.id_index).unwrap_or("").trim();
                if id.is_empty() {
                    return Some(Err(row_err(
                        "the row has an empty `id`: give each recipient a stable `id`".into(),
                    )));
                }
                if id.chars().any(char::is_control) {
                    return Some(Err(row_err(ID_WITH_CONTROL.into())));
                }
                let fields = self
                    .headers
                    .iter()
                    .zip(self.record.iter())
                    .map(|(h, v)| (h.clone(), v.to_string()))
                    .collect();
                Some(Ok(AudienceRow {
                    id: id.to_string(),
                    fields,
                }))
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                let file = self.file.clone();
                let message = csv_message(&e);
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    self.done = true;
                    return Some(Err(AudienceError::Stopped {
                        file,
                        line,
                        message,
                    }));
                }
                Some(Err(AudienceError::Row {
                    file,
                    line,
                    message,
                }))
            }
        }
    }
}

/// How much of a CSV audience a check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// The header only: the daemon loads 10,000 files in 2 s (P5), and
    /// preparation meets the rows anyway.
    Header,
    /// Every row, streamed: `herald validate` reports the rows preparation
    /// would skip, before a run is missing them.
    EveryRow,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn csv_rows_stream_with_every_column() {
        let (_d, path) = csv(b"id,email,first_name\nc1,a@x.example,Ana\nc2,b@x.example,Bo\n");
        let rows: Vec<_> = Audience::File { path }
            .rows()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].id, "c2");
        assert_eq!(rows[1].fields["first_name"], "Bo");
        assert_eq!(rows[0].fields["email"], "a@x.example");
    }

    #[test]
    fn bad_rows_are_reported_with_their_line_and_reading_goes_on() {
        let (_d, path) = csv(b"id,email\nc1,a@x.example\n,b@x.example\nc3\nc4,d@x.example\n");
        let rows: Vec<_> = Audience::File { path }.rows().collect();
        assert_eq!(rows.len(), 4);
        let e = rows[1].as_ref().unwrap_err().to_string();
        assert!(e.contains("a.csv:3: the row has an empty `id`"), "{e}");
        let e = rows[2].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("a.csv:4: 1 fields where the header has 2"),
            "{e}"
        );
        assert_eq!(rows[3].as_ref().unwrap().id, "c4");
    }

    #[test]
    fn an_id_with_a_control_character_is_a_bad_row() {
        let (_d, path) = csv(b"id,email\nc\x1e1,a@x.example\nc2,b@x.example\n");
        let rows: Vec<_> = Audience::File { path }.rows().collect();
        let e = rows[0].as_ref().unwrap_err().to_string();
        assert!(
            e.contains("a.csv:2: the `id` holds a control character"),
            "{e}"
        );
        assert_eq!(rows[1].as_ref().unwrap().id, "c2");
    }

    #[test]
    fn a_one_megabyte_field_is_refused_without_reading_the_file_whole() {
        let mut text = b"id,email\nc1,".to_vec();
        text.extend(std::iter::repeat_n(b'x', 1 << 20));
        text.extend(b"\nc2,b@x.example\n");
        let (_d, path) = csv(&text);
        let rows: Vec<_> = Audience::File { path }.rows().collect();
        let e = rows[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("longer than 65536 bytes"), "{e}");
        assert!(
            !rows[0].as_ref().unwrap_err().is_row_error(),
            "the rows after it are unknown: not a row to skip"
        );
        assert_eq!(rows.len(), 1, "an I/O error ends the stream");
    }

    fn header_error(path: &Path) -> String {
        CsvRows::open(path).err().unwrap().to_string()
    }

    #[test]
    fn header_without_id_or_with_duplicates_is_refused() {
        let (_d, path) = csv(b"email\na@x.example\n");
        assert!(header_error(&path).contains("no `id` column"));
        let (_d, path) = csv(b"id,id\n1,2\n");
        assert!(header_error(&path).contains("`id` twice"));
        let (_d, path) = csv(b"");
        assert!(header_error(&path).contains("no header row"));
    }

    #[test]
    fn invalid_utf8_in_a_csv_names_the_line() {
        let (_d, path) = csv(b"id,name\nc1,\xff\xfe\n");
        let rows: Vec<_> = Audience::File { path }.rows().collect();
        let e = rows[0].as_ref().unwrap_err().to_string();
        assert!(e.contains("a.csv:2: not valid UTF-8"), "{e}");
    }

    #[test]
    fn a_missing_csv_yields_one_open_error() {
        let rows: Vec<_> = Audience::File {
            path: "/nonexistent/a.csv".into(),
        }
        .rows()
        .collect();
        assert_eq!(rows.len(), 1);
        assert!(!rows[0].as_ref().unwrap_err().is_row_error());
    }
}

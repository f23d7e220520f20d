//! Errors of delivery files, each pinned to `file:line:column`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileError {
    /// The file at fault: the delivery, or a template or CSV it points to.
    pub file: PathBuf,
    /// 1-based line of the offending node.
    pub line: u64,
    /// 1-based column of the offending node.
    pub column: u64,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl std::error::Error for FileError {}

/// A position in a file; line and column are 1-based (0 when unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

impl Pos {
    /// The start of a file, for problems with the file as a whole.
    pub const START: Pos = Pos { line: 1, column: 1 };
}

/// Collects every problem of one delivery file instead of stopping at the first.
#[derive(Debug)]
pub(crate) struct Problems {
    file: PathBuf,
    errors: Vec<FileError>,
}

impl Problems {
    pub(crate) fn new(file: &Path) -> Self {
        Problems {
            file: file.to_path_buf(),
            errors: Vec::new(),
        }
    }

    /// Records a problem in the delivery file itself.
    pub(crate) fn at(&mut self, pos: Pos, message: impl Into<String>) {
        let file = self.file.clone();
        self.in_file(&file, pos, message);
    }

    /// Records a problem in a file the delivery points to (template, CSV).
    pub(crate) fn in_file(&mut self, file: &Path, pos: Pos, message: impl Into<String>) {
        self.errors.push(FileError {
            file: file.to_path_buf(),
            line: pos.line.max(1),
            column: pos.column.max(1),
            message: message.into(),
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn into_errors(self) -> Vec<FileError> {
        self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_error_displays_as_path_line_column_message() {
        let e = FileError {
            file: "d/a.yaml".into(),
            line: 3,
            column: 7,
            message: "unknown channel `fax`".into(),
        };
        assert_eq!(e.to_string(), "d/a.yaml:3:7: unknown channel `fax`");
    }

    #[test]
    fn file_error_serialises_in_the_http_api_shape() {
        let e = FileError {
            file: "a.yaml".into(),
            line: 1,
            column: 2,
            message: "m".into(),
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"file": "a.yaml", "line": 1, "column": 2, "message": "m"})
        );
    }

    #[test]
    fn problems_clamp_unknown_positions_to_the_file_start() {
        let mut p = Problems::new(Path::new("x.yaml"));
        p.at(Pos::default(), "whole file");
        assert_eq!(p.into_errors()[0].line, 1);
    }
}

//! Loading delivery files and folders: safe reads, YAML with budgets,
//! every error of every file, duplicate ids across files.

use super::audience::Reading;
use super::build::{Builder, Reference};
use super::catalog::ValidationContext;
use super::delivery::Delivery;
use super::errors::{FileError, Pos, Problems};
use super::fsio::{MAX_FILE_BYTES, read_limited, utf8};
use super::model::RawDelivery;
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Deepest folder nesting followed under the deliveries folder.
const MAX_FOLDER_DEPTH: usize = 32;

/// The result of loading a folder: valid deliveries, and every problem.
/// `D` holds a delivery: the live folder keeps them shared (`Arc<Delivery>`).
#[derive(Debug)]
pub struct Loaded<D = Delivery> {
    /// The valid deliveries, in path order.
    pub deliveries: Vec<D>,
    /// Every error of every invalid file.
    pub errors: Vec<FileError>,
    /// Problems that do not stop a delivery (unknown channel without `--config`).
    pub warnings: Vec<FileError>,
}

impl<D> Default for Loaded<D> {
    fn default() -> Self {
        Loaded {
            deliveries: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }
}

/// One file's verdict, with its warnings.
#[derive(Debug, Clone)]
pub struct FileReport<D = Delivery> {
    /// The delivery, or every error of the file.
    pub result: Result<D, Vec<FileError>>,
    /// Warnings, even for a valid file.
    pub warnings: Vec<FileError>,
}

/// Whether a directory entry is a delivery file: `*.yaml` or `*.yml`, not
/// hidden (`.`) nor an editor backup (`~`).
pub fn is_delivery_file_name(name: &str) -> bool {
    !name.starts_with('.')
        && !name.ends_with('~')
        && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

fn saphyr_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    // A delivery file is small; these bounds stop alias bombs and deep
    // nesting long before they cost memory or stack.
    budget.max_reader_input_bytes = Some(MAX_FILE_BYTES as usize);
    budget.max_depth = 32;
    // Inline audiences are for small lists; parsing is quadratic-ish in
    // huge maps, so a low node count also bounds the time.
    budget.max_nodes = 10_000;
    budget.max_events = 200_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_total_scalar_bytes = 4 * MAX_FILE_BYTES as usize;
    budget.max_documents = 1;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    let mut aliases = serde_saphyr::options::AliasLimits::default();
    aliases.max_total_replayed_events = 100_000;
    aliases.max_replay_stack_depth = 16;
    options.alias_limits = aliases;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    options
}

/// Parses the YAML text of a delivery into its raw model.
pub(crate) fn parse(text: &str) -> Result<RawDelivery, (Pos, String)> {
    serde_saphyr::from_str_with_options::<RawDelivery>(text, saphyr_options()).map_err(|e| {
        let pos = e.location().map_or(Pos::START, |l| Pos {
            line: l.line(),
            column: l.column(),
        });
        (pos, yaml_message(&e))
    })
}

/// serde-saphyr's message without the location it may append (we print our own).
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    let first = first.find(" at line ").map_or(first, |cut| &first[..cut]);
    let message = first.trim_end_matches([':', ',']);
    // The parser's shortest messages say what, not how to fix.
    match message {
        "expected mapping start" => "expected a mapping of `key: value` lines here".into(),
        "expected string scalar" => "expected a text value here".into(),
        "invalid boolean" => "expected `true` or `false` here".into(),
        "expected sequence start" => "expected a list here: one `- ` line per item".into(),
        m if m.starts_with("unclosed bracket") => format!("{m}: close it or quote the text"),
        "recursion limit exceeded" => "the YAML is nested too deeply".into(),
        // The parser's own advice names one of its options, which means
        // nothing to someone writing a delivery file.
        m if m.starts_with("duplicate mapping key: ") => {
            let key = m["duplicate mapping key: ".len()..]
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or_default();
            format!("`{key}` is set twice in the same block: keep one")
        }
        m if m.starts_with("budget breached") || m.contains("alias replay") => format!(
            "the YAML is too large once its aliases are expanded ({m}): write it out plainly, or move recipients to an audience CSV"
        ),
        m => m.to_string(),
    }
}

/// Loads and checks one delivery file.
pub fn load_file(path: &Path, ctx: &ValidationContext) -> Result<Delivery, Vec<FileError>> {
    check_file(path, ctx).result
}

/// Loads and checks one delivery file, keeping its warnings.
pub fn check_file(path: &Path, ctx: &ValidationContext) -> FileReport {
    check_file_in(path, ctx, &ctx.canonical_roots(), Reading::Header).0
}

/// Checks one delivery file against the canonical `roots`, reading as much
/// of a CSV audience as `reading` says; also returns the paths it names,
/// which its verdict was read from too.
pub(crate) fn check_file_in(
    path: &Path,
    ctx: &ValidationContext,
    roots: &[PathBuf],
    reading: Reading,
) -> (FileReport, Vec<Reference>) {
    match read_limited(path, MAX_FILE_BYTES) {
        Ok(bytes) => check_bytes_in(path, bytes, ctx, roots, reading),
        Err(e) => (
            failed(path, Pos::START, format!("the delivery file {e}")),
            Vec::new(),
        ),
    }
}

fn failed(path: &Path, pos: Pos, message: String) -> FileReport {
    let mut problems = Problems::new(path);
    problems.at(pos, message);
    FileReport {
        result: Err(problems.into_errors()),
        warnings: Vec::new(),
    }
}

/// Checks the bytes of a delivery file named `path` (already read);
/// relative references resolve from `path`'s folder. The fuzz target's entry.
pub fn check_bytes(path: &Path, bytes: Vec<u8>, ctx: &ValidationContext) -> FileReport {
    check_bytes_in(path, bytes, ctx, &ctx.canonical_roots(), Reading::Header).0
}

fn check_bytes_in(
    path: &Path,
    bytes: Vec<u8>,
    ctx: &ValidationContext,
    roots: &[PathBuf],
    reading: Reading,
) -> (FileReport, Vec<Reference>) {
    let raw = match delivery_text(bytes).and_then(|text| parse(&text)) {
        Ok(raw) => raw,
        Err((pos, m)) => return (failed(path, pos, m), Vec::new()),
    };
    let mut builder = Builder {
        file: path,
        ctx,
        roots,
        reading,
        problems: Problems::new(path),
        warnings: Vec::new(),
        references: Vec::new(),
    };
    let delivery = builder.build(raw);
    let warnings = std::mem::take(&mut builder.warnings);
    let result = match delivery {
        Some(d) if builder.problems.is_empty() => Ok(d),
        _ => {
            let mut errors = builder.problems.into_errors();
            // The delivery file first, then the files it points to, each in reading order.
            errors.sort_by_key(|e| (e.file != path, e.file.clone(), e.line, e.column));
            Err(errors)
        }
    };
    (FileReport { result, warnings }, builder.references)
}

/// The bytes of a delivery file as text, or where and why they are not.
fn delivery_text(bytes: Vec<u8>) -> Result<String, (Pos, String)> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        let message = format!(
            "the delivery file is {} bytes, over the limit of {MAX_FILE_BYTES} bytes",
            bytes.len()
        );
        return Err((Pos::START, message));
    }
    if bytes.contains(&0) {
        let message =
            "the delivery file is binary (it holds NUL bytes): delivery files are YAML text";
        return Err((Pos::START, message.into()));
    }
    let text = utf8(bytes)
        .map_err(|(line, column, m)| (Pos { line, column }, format!("the delivery file {m}")))?;
    // Only comments is as empty as nothing: the parser would just say
    // "unexpected end of input".
    let blank = |line: &str| line.trim().is_empty() || line.trim_start().starts_with('#');
    if text.lines().all(blank) {
        let message =
            "the delivery file is empty: it needs at least `channel`, `audience` and `content`";
        return Err((Pos::START, message.into()));
    }
    Ok(text)
}

/// Loads every delivery file under `ctx.deliveries_dir`, recursively.
pub fn load_folder(ctx: &ValidationContext) -> Loaded {
    load_paths(std::slice::from_ref(&ctx.deliveries_dir), ctx)
}

/// Loads files and folders (folders recursively), then refuses ids used
/// twice. A CSV audience's header is read, never its rows.
pub fn load_paths(paths: &[PathBuf], ctx: &ValidationContext) -> Loaded {
    check_paths(paths, ctx, Reading::Header)
}

/// [`load_paths`] as `herald validate` runs it: every row of each CSV
/// audience is streamed too, and the rows preparation would skip are
/// errors in that CSV. Too slow for the daemon's loads (P5), which never
/// call it.
pub fn validate_paths(paths: &[PathBuf], ctx: &ValidationContext) -> Loaded {
    check_paths(paths, ctx, Reading::EveryRow)
}

fn check_paths(paths: &[PathBuf], ctx: &ValidationContext, reading: Reading) -> Loaded {
    let roots = ctx.canonical_roots();
    load_paths_with(paths, &roots, |file| {
        check_file_in(file, ctx, &roots, reading).0
    })
}

/// [`load_paths`] with each file's verdict from `check` (given the file's
/// path): the live folder answers from its cache when it can. `roots` are
/// the canonical roots the verdicts are checked against.
pub(crate) fn load_paths_with<D: Borrow<Delivery>>(
    paths: &[PathBuf],
    roots: &[PathBuf],
    mut check: impl FnMut(&Path) -> FileReport<D>,
) -> Loaded<D> {
    let mut loaded = Loaded::default();
    let mut files = Vec::new();
    let mut seen_dirs = HashSet::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => walk(path, 0, &mut seen_dirs, &mut files, &mut loaded.errors),
            Ok(_) => files.push(path.clone()),
            Err(e) => loaded.errors.push(whole_file(path, &describe_missing(&e))),
        }
    }
    let mut seen_files = HashSet::new();
    let mut by_id: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in files {
        if let Ok(real) = std::fs::canonicalize(&file) {
            // A link out of the allowed folders could make error messages
            // quote a file the marketer may not read.
            if !roots.iter().any(|r| real.starts_with(r)) {
                loaded.errors.push(whole_file(
                    &file,
                    "is a symlink that leads outside the deliveries folder and the audience roots: it was not read",
                ));
                continue;
            }
            if !seen_files.insert(real) {
                continue;
            }
        }
        let report = check(&file);
        loaded.warnings.extend(report.warnings);
        match report.result {
            Ok(d) => match by_id.get(d.borrow().id()) {
                Some(first) => loaded.errors.push(at_id_node(
                    &file,
                    &format!("id `{}` is already used by {}: ids must be unique across the deliveries folder", d.borrow().id(), first.display()),
                )),
                None => {
                    by_id.insert(d.borrow().id().to_string(), file.clone());
                    loaded.deliveries.push(d);
                }
            },
            Err(errors) => loaded.errors.extend(errors),
        }
    }
    loaded
}

fn describe_missing(e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::ELOOP) {
        "is a symlink loop: fix or remove the link".into()
    } else {
        format!("cannot be read: {e}")
    }
}

/// An error about a delivery's id, at its `id:` value (deliveries.md: the
/// line and column of the offending node), or at the start of the file
/// when the id comes from the file name. Read again: this is the rare
/// path of a duplicate, and the checked delivery keeps no positions.
fn at_id_node(path: &Path, message: &str) -> FileError {
    let pos = read_limited(path, MAX_FILE_BYTES)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| parse(&text).ok())
        .and_then(|raw| raw.id.map(|id| id.pos))
        .unwrap_or(Pos::START);
    FileError {
        line: pos.line,
        column: pos.column,
        ..whole_file(path, message)
    }
}

fn whole_file(path: &Path, message: &str) -> FileError {
    FileError {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        message: message.to_string(),
    }
}

/// Collects delivery files under `dir` in name order. Symlinked folders
/// are followed once each (by canonical path), so a link loop ends.
fn walk(
    dir: &Path,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<FileError>,
) {
    let Ok(real) = std::fs::canonicalize(dir) else {
        errors.push(whole_file(
            dir,
            "is a folder that cannot be resolved (a symlink loop or a dangling link)",
        ));
        return;
    };
    if !seen.insert(real) {
        return;
    }
    if depth > MAX_FOLDER_DEPTH {
        errors.push(whole_file(
            dir,
            &format!("is nested more than {MAX_FOLDER_DEPTH} folders deep: it was not read"),
        ));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(whole_file(
                dir,
                &format!("is a folder that cannot be read: {e}"),
            ));
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let path = entry.path();
        // metadata() follows symlinks: a link loop fails here with ELOOP.
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, depth + 1, seen, files, errors),
            Ok(_) if is_delivery_file_name(&name) => files.push(path),
            Ok(_) => {}
            Err(e) if is_delivery_file_name(&name) || e.raw_os_error() == Some(libc::ELOOP) => {
                errors.push(whole_file(&path, &describe_missing(&e)));
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
#[path = "folder_tests.rs"]
mod tests;

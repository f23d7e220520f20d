//! Reading files a marketer controls without trusting them: the file type
//! is checked on the open handle (a FIFO never blocks us), sizes are
//! bounded, and paths stay inside the allowed roots.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Largest delivery file or template read (1 MiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

/// Opens a regular file. O_NONBLOCK makes opening a FIFO return at once;
/// the type is then checked on the handle itself, so a file swapped for a
/// FIFO between a check and the open cannot block the caller.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| describe_io(&e))?;
    let meta = file.metadata().map_err(|e| describe_io(&e))?;
    if !meta.is_file() {
        return Err(format!("is {}, not a regular file", kind(&meta)));
    }
    Ok((file, meta))
}

fn describe_io(e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return "is a symlink loop: fix or remove the link".to_string();
    }
    format!("cannot be read: {e}")
}

/// Reads a whole regular file of at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let (file, meta) = open_regular(path)?;
    let too_big = |n: u64| {
        format!(
            "is {n} bytes, over the limit of {limit} bytes: split it or move the data to an audience CSV"
        )
    };
    if meta.len() > limit {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow after the size check; never read past the limit.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| describe_io(&e))?;
    if bytes.len() as u64 > limit {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Decodes UTF-8, naming the line and column of the first invalid byte.
pub fn utf8(bytes: Vec<u8>) -> Result<String, (u64, u64, String)> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let head = &e.as_bytes()[..valid];
        let line = head.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let line_start = head.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&head[line_start..]).chars().count() as u64 + 1;
        (
            line,
            column,
            "is not valid UTF-8 (binary file?): save it as UTF-8 text".to_string(),
        )
    })
}

/// Joins `rel` to the folder of `from` (or takes it as written when
/// absolute) and checks that the result stays inside one of `roots`
/// (canonical folders), both before and after following symlinks.
/// Nothing outside the roots is ever opened.
pub fn resolve_confined(from: &Path, rel: &str, roots: &[PathBuf]) -> Result<PathBuf, String> {
    let rel_path = Path::new(rel);
    if rel.trim().is_empty() {
        return Err("the path is empty".to_string());
    }
    let base = if rel_path.is_absolute() {
        PathBuf::from("/")
    } else {
        from.parent()
            .map(|p| {
                std::fs::canonicalize(if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                })
            })
            .transpose()
            .map_err(|e| format!("the delivery's folder cannot be read: {e}"))?
            .unwrap_or_default()
    };
    let mut lexical = base;
    for part in rel_path.components() {
        match part {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::Normal(p) => lexical.push(p),
            _ => {}
        }
    }
    let roots_text = || {
        roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let inside = |p: &Path| roots.iter().any(|r| p.starts_with(r));
    // A relative path starts from a canonical folder, so its lexical form
    // is already comparable with the roots. An absolute one may name a
    // root through a symlinked folder (`/srv` linked to `/data/srv`): its
    // folder is resolved, which opens nothing, before it is judged.
    let lexically_inside = inside(&lexical)
        || (rel_path.is_absolute()
            && lexical
                .parent()
                .and_then(|folder| std::fs::canonicalize(folder).ok())
                .is_some_and(|folder| inside(&folder)));
    if !lexically_inside {
        return Err(format!(
            "`{rel}` leads outside the allowed folders ({}): move the file inside one, or add its folder to `audience_roots`",
            roots_text()
        ));
    }
    let real = std::fs::canonicalize(&lexical).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            format!("`{rel}` is a symlink loop")
        } else {
            format!("`{rel}` cannot be found ({e})")
        }
    })?;
    if !inside(&real) {
        return Err(format!(
            "`{rel}` is a symlink that leads outside the allowed folders ({}): it was not read",
            roots_text()
        ));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("d.yaml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_limited(&fifo, MAX_FILE_BYTES).unwrap_err();
        assert!(err.contains("FIFO"), "{err}");
    }

    #[test]
    fn files_over_the_limit_are_refused_with_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'a'; 10 * 1024 * 1024]).unwrap();
        let err = read_limited(&big, MAX_FILE_BYTES).unwrap_err();
        assert!(err.contains("10485760 bytes, over the limit"), "{err}");
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let (line, column, _) = utf8(b"ab\ncd\xff".to_vec()).unwrap_err();
        assert_eq!((line, column), (2, 3));
    }

    #[test]
    fn paths_escaping_the_roots_are_refused_before_any_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let yaml = root.join("d.yaml");
        let roots = vec![root.clone()];
        let err = resolve_confined(&yaml, "../../etc/shadow", &roots).unwrap_err();
        assert!(err.contains("leads outside the allowed folders"), "{err}");
        let err = resolve_confined(&yaml, "/etc/passwd", &roots).unwrap_err();
        assert!(err.contains("`/etc/passwd` leads outside"), "{err}");
        std::os::unix::fs::symlink("/etc/passwd", root.join("link.csv")).unwrap();
        let err = resolve_confined(&yaml, "link.csv", &roots).unwrap_err();
        assert!(err.contains("symlink that leads outside"), "{err}");
        std::fs::write(root.join("a.csv"), "id\n").unwrap();
        assert_eq!(
            resolve_confined(&yaml, "sub/../a.csv", &roots).unwrap(),
            root.join("a.csv")
        );
    }

    #[test]
    fn absolute_paths_inside_a_root_are_accepted_even_through_a_symlinked_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let lists = root.join("lists");
        std::fs::create_dir(&lists).unwrap();
        std::fs::write(lists.join("a.csv"), "id\n").unwrap();
        let yaml = root.join("deliveries/d.yaml");
        let roots = vec![lists.clone()];
        let absolute = lists.join("a.csv");
        assert_eq!(
            resolve_confined(&yaml, absolute.to_str().unwrap(), &roots).unwrap(),
            absolute
        );
        std::os::unix::fs::symlink(&lists, root.join("alias")).unwrap();
        let through_link = root.join("alias/a.csv");
        assert_eq!(
            resolve_confined(&yaml, through_link.to_str().unwrap(), &roots).unwrap(),
            absolute
        );
        let escaping = format!("{}/../secret.csv", lists.display());
        let err = resolve_confined(&yaml, &escaping, &roots).unwrap_err();
        assert!(err.contains("leads outside the allowed folders"), "{err}");
    }
}

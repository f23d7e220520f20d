//! Safe file names from message ids, and atomic writes.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// File names stay well under the usual 255-byte limit.
const MAX_STEM: usize = 180;

/// A file name stem for `message_id`: letters, digits, `-`, `_` and `.` as
/// they are, every other byte as `%XX`, so two ids never share a name
/// (`run/a@b` → `run%2Fa%40b`). Overlong stems are cut and end in a
/// hash of the whole id, which is stable across runs and builds.
pub fn stem(message_id: &str) -> String {
    let mut out = String::with_capacity(message_id.len());
    for (index, byte) in message_id.bytes().enumerate() {
        let plain = byte.is_ascii_alphanumeric()
            || byte == b'-'
            || byte == b'_'
            || (byte == b'.' && index > 0);
        if plain {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    if out.len() > MAX_STEM {
        let mut cut = MAX_STEM - 17;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out = format!("{}~{:016x}", &out[..cut], fnv1a(message_id.as_bytes()));
    }
    out
}

/// FNV-1a, 64 bits: a fixed hash, unlike `DefaultHasher`, so the same id
/// maps to the same file after an upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes `bytes` to `dir/name` so that a reader sees either the old file
/// or the whole new one: temp file in the same folder, fsync, rename, and
/// fsync of the folder so the rename survives a crash.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let target = dir.join(name);
    let temp = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, &target)
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    File::open(dir)?.sync_all()?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_and_recipient_id_become_one_safe_name() {
        assert_eq!(
            stem("daily@2026-11-27T09:00Z/ana@example.com"),
            "daily%402026-11-27T09%3A00Z%2Fana%40example.com"
        );
    }

    #[test]
    fn distinct_ids_that_a_plain_replacement_would_merge_stay_distinct() {
        assert_ne!(stem("a/b"), stem("a_b"));
        assert_ne!(stem("a/b"), stem("a%2Fb"));
    }

    #[test]
    fn leading_dot_and_parent_names_cannot_escape_or_hide() {
        assert_eq!(stem(".."), "%2E.");
        assert_eq!(stem(".hidden"), "%2Ehidden");
        assert_eq!(stem(""), "%00");
    }

    #[test]
    fn overlong_id_is_cut_with_a_stable_hash() {
        let long = "x".repeat(400);
        let name = stem(&long);
        assert!(name.len() <= MAX_STEM, "{}", name.len());
        assert_eq!(name, stem(&long));
        assert_ne!(name, stem(&"x".repeat(401)));
    }

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        write_atomic(dir.path(), "m.json", b"first").unwrap();
        let path = write_atomic(dir.path(), "m.json", b"second").unwrap();
        assert_eq!(fs::read(path).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["m.json"]);
    }
}

//! The daemon's own configuration (daemon.md, "Configuration file"):
//! loading, `file:line:column` errors, paths relative to the file, and the
//! environment overrides `HERALD_CONFIG`, `HERALD_REDIS_URL`, `HERALD_LOG`.

mod duration;
mod model;
mod reload;

pub use duration::{BadDuration, HumanDuration};
pub use model::*;
pub use reload::restart_only_changes;

use crate::runs::Role;
use std::path::{Path, PathBuf};

/// Where the config is read from when neither `--config` nor `HERALD_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/herald/herald.yaml";

/// Configs larger than this are refused before parsing (a config is a few KiB).
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read the configuration: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML or does not have the expected shape.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong.
        message: String,
    },
    /// A value is well-formed but not acceptable.
    #[error("{path}: `{field}`: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// The dotted key.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// A loaded configuration and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The file it was read from.
    pub path: PathBuf,
    /// The configuration, with every path made absolute.
    pub config: Config,
}

/// The config path to use: the flag, else `HERALD_CONFIG`, else [`DEFAULT_PATH`].
pub fn resolve_path(flag: Option<PathBuf>) -> PathBuf {
    choose_path(flag, std::env::var_os("HERALD_CONFIG"))
}

/// [`resolve_path`] given the variable's value. An empty variable is unset
/// (a unit's `Environment=HERALD_CONFIG=` clears it), not a file named "".
fn choose_path(flag: Option<PathBuf>, variable: Option<std::ffi::OsString>) -> PathBuf {
    flag.or_else(|| variable.filter(|v| !v.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
}

/// The Redis URL `HERALD_REDIS_URL` gives, if any; empty counts as unset.
fn redis_override(variable: Option<String>) -> Option<String> {
    variable.filter(|url| !url.trim().is_empty())
}

/// Reads, parses and checks a config file, then applies `HERALD_REDIS_URL`.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = read_bounded(path)?;
    let mut config = parse(path, &text)?;
    if let Some(url) = redis_override(std::env::var("HERALD_REDIS_URL").ok()) {
        // The variable replaces the file's whole Redis topology.
        config.store.kind = StoreKind::Redis;
        config.store.url = Some(url);
        config.store.cluster_nodes.clear();
        config.store.sentinels.clear();
    }
    check(path, &config)?;
    let cwd = std::env::current_dir().unwrap_or_default();
    resolve_paths(&mut config, &base_dir(path, &cwd));
    Ok(Loaded {
        path: path.to_path_buf(),
        config,
    })
}

fn read_bounded(path: &Path) -> Result<String, ConfigError> {
    let read_error = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if !meta.is_file() {
        return Err(read_error(std::io::Error::other("not a regular file")));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(read_error(std::io::Error::other(format!(
            "{} bytes is more than the 1 MiB a configuration may have",
            meta.len()
        ))));
    }
    let bytes = std::fs::read(path).map_err(read_error)?;
    String::from_utf8(bytes).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        line: 1,
        column: 1,
        message: format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

/// Parses config text; errors carry the line and column of the offending node.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    if text.trim().is_empty() {
        return Ok(Config::default());
    }
    serde_saphyr::from_str::<Config>(text).map_err(|error| {
        let (line, column) = error
            .location()
            .map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: first_line(&error.without_snippet().to_string()),
        }
    })
}

/// The parser's message without its own position suffix and snippet.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message);
    match line.rfind(" at line ") {
        Some(i) => line[..i].to_owned(),
        None => line.to_owned(),
    }
}

/// Checks what serde cannot express.
fn check(path: &Path, config: &Config) -> Result<(), ConfigError> {
    let invalid = |field: &str, message: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        field: field.to_owned(),
        message,
    };
    let sending = &config.sending;
    if sending.batch_size == 0 {
        return Err(invalid("sending.batch_size", "must be at least 1".into()));
    }
    if sending.chunk_size < sending.batch_size {
        return Err(invalid(
            "sending.chunk_size",
            format!(
                "must be at least `sending.batch_size` ({})",
                sending.batch_size
            ),
        ));
    }
    if sending.lease.get().as_millis() < 1000 {
        return Err(invalid("sending.lease", "must be at least 1s".into()));
    }
    // Shorter, every call is abandoned before a plugin can answer and no
    // message is ever sent.
    if sending.plugin_timeout.get().as_millis() < 100 {
        return Err(invalid(
            "sending.plugin_timeout",
            "must be at least 100ms, and long enough for the plugin to send a whole batch (default 60s)".into(),
        ));
    }
    if config.store.kind == StoreKind::Redis {
        let store = &config.store;
        let given: Vec<&str> = [
            ("url", store.url.is_some()),
            ("cluster_nodes", !store.cluster_nodes.is_empty()),
            ("sentinels", !store.sentinels.is_empty()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        match given.as_slice() {
            [] => {
                return Err(invalid(
                    "store.url",
                    "`store.kind: redis` needs `url`, `cluster_nodes`, or `sentinels` with `master_name` (or HERALD_REDIS_URL)".into(),
                ));
            }
            [_] => {}
            several => {
                return Err(invalid(
                    &format!("store.{}", several[1]),
                    format!(
                        "give exactly one of `store.url` (one Redis), `store.cluster_nodes` (Redis Cluster) or `store.sentinels` (Sentinel); this file sets {}",
                        several
                            .iter()
                            .map(|k| format!("`store.{k}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                ));
            }
        }
        if !store.sentinels.is_empty() && store.master_name.trim().is_empty() {
            return Err(invalid(
                "store.master_name",
                "`store.sentinels` needs the name the Sentinels monitor the master under, such as `herald`".into(),
            ));
        }
    }
    // Caught here, not at the first pending run or in the first e-mail's
    // links, where the mistake would only show as a warning or dead links.
    let urls = [
        (
            "confirmations.webhook",
            config.confirmations.webhook.as_deref(),
            "https://chat.example/hooks/abc",
        ),
        (
            "http.public_url",
            config.http.public_url.as_deref(),
            "https://t.shop.example",
        ),
    ];
    for (field, url, example) in urls {
        if let Some(problem) = url.and_then(web_url_problem) {
            return Err(invalid(
                field,
                format!("{problem}; give an http:// or https:// address such as `{example}`"),
            ));
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, user) in config.users.iter().enumerate() {
        let field = format!("users[{i}]");
        if !names.insert(user.name.as_str()) {
            return Err(invalid(
                &format!("{field}.name"),
                format!("`{}` is listed twice", user.name),
            ));
        }
        let digest = &user.token_sha256;
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                &format!("{field}.token_sha256"),
                "must be the 64 hex digits that `herald hash-token` prints, not the token itself"
                    .into(),
            ));
        }
        if user.roles.is_empty() {
            return Err(invalid(
                &format!("{field}.roles"),
                format!("give at least one of {}", role_names()),
            ));
        }
    }
    Ok(())
}

/// What is wrong with `url` as the address of a web server, if anything.
fn web_url_problem(url: &str) -> Option<String> {
    match reqwest::Url::parse(url) {
        Err(error) => Some(format!("`{url}` is not a URL ({error})")),
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => Some(format!(
            "`{url}` is a `{}:` address, not a web one",
            parsed.scheme()
        )),
        Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => {
            Some(format!("`{url}` names no host"))
        }
        Ok(_) => None,
    }
}

fn role_names() -> String {
    Role::ALL
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The folder the config at `path` is in, made absolute against `cwd`:
/// a bare `herald.yaml` is in the current folder (its parent is empty,
/// which `std::path::absolute` refuses, leaving every path relative).
fn base_dir(path: &Path, cwd: &Path) -> PathBuf {
    let parent = path.parent().unwrap_or(Path::new(""));
    if parent.is_absolute() {
        parent.to_path_buf()
    } else {
        cwd.join(parent)
    }
}

/// Makes every path of the config absolute, relative to the config's folder.
fn resolve_paths(config: &mut Config, base: &Path) {
    let fix = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    fix(&mut config.deliveries_dir);
    config.audience_roots.iter_mut().for_each(fix);
    fix(&mut config.store.path);
    if let Some(secret) = config.http.secret_file.as_mut() {
        fix(secret);
    }
    for plugin in &mut config.plugins {
        fix(&mut plugin.path);
        if let serde_json::Value::Object(map) = &mut plugin.config {
            for (key, value) in map.iter_mut() {
                let is_path = key == "dir" || key.ends_with("_dir") || key.ends_with("_file");
                if let (true, serde_json::Value::String(text)) = (is_path, &mut *value) {
                    let p = Path::new(text.as_str());
                    if p.is_relative() {
                        *text = base.join(p).to_string_lossy().into_owned();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

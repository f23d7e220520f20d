//! The outbox plugin's config: the `config` map of its `plugins[]` entry.

use serde::Deserialize;
use std::path::PathBuf;

/// Config keys of the outbox plugin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The folder messages are written to; created if missing.
    pub dir: PathBuf,
    /// Channel names served besides `outbox` (`email`, `sms`, `push`, or any).
    #[serde(default)]
    pub channels: Vec<String>,
    /// How many batches the host may hand over at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// The `From` of `.eml` files whose content has no `from`.
    #[serde(default = "default_from")]
    pub from: String,
}

fn default_concurrency() -> u32 {
    4
}

fn default_from() -> String {
    "herald@localhost".to_owned()
}

impl Config {
    /// Reads and checks the config; the error says which key is wrong and how to fix it.
    pub fn parse(value: &serde_json::Value) -> Result<Config, String> {
        let config: Config = serde_json::from_value(value.clone()).map_err(|e| {
            format!(
                "outbox config: {e}; expected keys `dir` (required, a folder), `channels` (list of names), `concurrency` (at least 1), `from`"
            )
        })?;
        if config.dir.as_os_str().is_empty() {
            return Err(
                "outbox config: `dir` is empty; set it to the folder to write messages to"
                    .to_owned(),
            );
        }
        if config.concurrency == 0 {
            return Err("outbox config: `concurrency` is 0; set it to 1 or more".to_owned());
        }
        if let Some(bad) = config
            .channels
            .iter()
            .find(|c| c.trim().is_empty() || c.chars().any(char::is_whitespace))
        {
            return Err(format!(
                "outbox config: channel name {bad:?} in `channels` is empty or holds white space; use names such as `email`"
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dir_alone_gives_the_defaults() {
        let config = Config::parse(&json!({"dir": "var/outbox"})).unwrap();
        assert_eq!(config.dir, PathBuf::from("var/outbox"));
        assert!(config.channels.is_empty());
        assert_eq!(config.concurrency, 4);
    }

    #[test]
    fn missing_dir_is_refused_naming_the_key() {
        let error = Config::parse(&json!({"channels": ["email"]})).unwrap_err();
        assert!(error.contains("`dir`"), "{error}");
    }

    #[test]
    fn unknown_key_is_refused_naming_it() {
        let error = Config::parse(&json!({"dir": "x", "dri": "y"})).unwrap_err();
        assert!(error.contains("dri"), "{error}");
    }

    #[test]
    fn zero_concurrency_is_refused() {
        let error = Config::parse(&json!({"dir": "x", "concurrency": 0})).unwrap_err();
        assert!(error.contains("`concurrency`"), "{error}");
    }

    #[test]
    fn channel_name_with_space_is_refused() {
        let error = Config::parse(&json!({"dir": "x", "channels": ["e mail"]})).unwrap_err();
        assert!(error.contains("e mail"), "{error}");
    }
}

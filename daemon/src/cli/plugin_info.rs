//! `herald plugin-info`: loads one plugin library the way the daemon does
//! and prints what it is, so an operator can check a `.so` before start.

use crate::plugin_host::PluginLibrary;
use anyhow::Context;
use herald_plugin_api::Description;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `herald plugin-info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plugin library (`.so`).
    pub path: PathBuf,
    /// The plugin's config as JSON (the `config` map of its `plugins[]`
    /// entry), to create an instance and list the channels it serves.
    /// Without it, the daemon config's entry for this library is used
    /// (`HERALD_CONFIG`, else /etc/herald/herald.yaml), else `{}`.
    #[arg(long, value_name = "JSON")]
    pub config: Option<String>,
}

/// Where the config handed to the plugin came from.
enum Source {
    /// `--config`.
    Flag,
    /// The `plugins[]` entry of this daemon config file.
    DaemonConfig(PathBuf),
    /// Nowhere: `{}` is tried.
    Nothing,
}

/// Prints name, version, ABI version and channels; exit 1 naming the path
/// when the library cannot be loaded, or refuses the config given with
/// `--config` or in the daemon config (as the daemon would refuse it at
/// start).
pub fn run(args: Args) -> super::Outcome {
    run_with(args, &crate::config::resolve_path(None))
}

/// [`run`], with the daemon config to look the library up in.
fn run_with(args: Args, daemon_config: &Path) -> super::Outcome {
    let (config, source) = match &args.config {
        Some(text) => {
            let config = serde_json::from_str(text)
                .with_context(|| format!("--config is not valid JSON ({text}); pass an object such as '{{\"dir\": \"var/outbox\"}}'"))?;
            (config, Source::Flag)
        }
        None => match configured(&args.path, daemon_config) {
            Some(config) => (config, Source::DaemonConfig(daemon_config.to_path_buf())),
            None => (serde_json::json!({}), Source::Nothing),
        },
    };
    let library = PluginLibrary::open(&args.path)?;
    let described = library
        .create(&config)
        .and_then(|instance| instance.describe());
    let described = match (described, &source) {
        (Ok(description), _) => Ok(description),
        (Err(error), Source::Nothing) => Err(error.to_string()),
        (Err(error), _) => return Err(error.into()),
    };
    print!("{}", render(&library, &source, described));
    Ok(ExitCode::SUCCESS)
}

/// The `config` of the daemon config's `plugins[]` entry for the library
/// at `path`, if that config loads and has one: what the daemon hands it.
fn configured(path: &Path, daemon_config: &Path) -> Option<serde_json::Value> {
    let loaded = crate::config::load(daemon_config).ok()?;
    let wanted = std::fs::canonicalize(path).ok()?;
    loaded
        .config
        .plugins
        .into_iter()
        .find(|entry| std::fs::canonicalize(&entry.path).is_ok_and(|p| p == wanted))
        .map(|entry| entry.config)
}

/// The report, given the library and its instance's description (or why
/// there is none when no config was given).
fn render(
    library: &PluginLibrary,
    source: &Source,
    described: Result<Description, String>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "file:        {}", library.path().display());
    let _ = writeln!(out, "plugin:      {}", library.name());
    let _ = writeln!(out, "version:     {}", library.version());
    let _ = writeln!(out, "abi version: {}", library.abi_version());
    if let Source::DaemonConfig(file) = source {
        let _ = writeln!(out, "config:      its entry in {}", file.display());
    }
    match described {
        Ok(description) => {
            let _ = writeln!(out, "concurrency: {}", description.concurrency);
            let _ = writeln!(out, "channels:");
            let width = description
                .channels
                .iter()
                .map(|c| c.name.len())
                .max()
                .unwrap_or(0);
            for channel in description.channels {
                let column = channel
                    .address_column
                    .as_deref()
                    .unwrap_or("(recipient id)");
                let normalise = serde_json::to_value(channel.normalise).ok();
                let normalise = normalise.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
                let tracking = if channel.tracking { "yes" } else { "no" };
                let _ = writeln!(
                    out,
                    "  {:<width$}  address column: {column}  normalise: {normalise}  tracking: {tracking}",
                    channel.name
                );
            }
        }
        Err(why) => {
            let _ = writeln!(
                out,
                "channels:    unknown without a config it accepts: {why}"
            );
            let _ = writeln!(
                out,
                "             pass --config '{{...}}', or list it under `plugins` in the daemon config, to see them"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin_host::tests::{c_plugin, rust_plugin};

    #[test]
    fn prints_name_version_abi_and_channels_of_a_loaded_plugin() {
        let library = PluginLibrary::open(&c_plugin()).unwrap();
        let description = library
            .create(&serde_json::json!({}))
            .unwrap()
            .describe()
            .unwrap();
        let text = render(&library, &Source::Flag, Ok(description));
        assert!(text.contains("plugin:      c_echo\n"), "{text}");
        assert!(text.contains("version:     1.0.0\n"), "{text}");
        assert!(text.contains("abi version: 1\n"), "{text}");
        assert!(
            text.contains("  c_echo  address column: (recipient id)  normalise: none"),
            "{text}"
        );
    }

    #[test]
    fn explicit_config_that_is_refused_fails_naming_the_path() {
        let path = rust_plugin("misbehave");
        let args = Args {
            path: path.clone(),
            config: Some(r#"{"refuse": "no thanks"}"#.to_owned()),
        };
        let error = format!("{:#}", run(args).unwrap_err());
        assert!(
            error.contains(&path.display().to_string()) && error.contains("no thanks"),
            "{error}"
        );
    }

    #[test]
    fn wrong_abi_fails_naming_the_path_and_version() {
        let path = rust_plugin("wrong_abi");
        let error = format!(
            "{:#}",
            run(Args {
                path: path.clone(),
                config: None
            })
            .unwrap_err()
        );
        assert!(
            error.contains(&path.display().to_string()) && error.contains("ABI version 99"),
            "{error}"
        );
    }

    /// A daemon config in `dir` whose one plugin entry is `path` with `config`.
    fn daemon_config(dir: &Path, path: &Path, config: &str) -> PathBuf {
        let file = dir.join("herald.yaml");
        let yaml = format!(
            "deliveries_dir: deliveries\nplugins:\n  - path: {}\n    config: {config}\n",
            path.display()
        );
        std::fs::write(&file, yaml).unwrap();
        file
    }

    #[test]
    fn the_daemon_configs_entry_for_the_library_is_used_without_config() {
        let dir = tempfile::tempdir().unwrap();
        let file = daemon_config(dir.path(), &c_plugin(), "{}");
        assert!(configured(&c_plugin(), &file).is_some());
        let args = Args {
            path: c_plugin(),
            config: None,
        };
        assert_eq!(run_with(args, &file).unwrap(), ExitCode::SUCCESS);
        assert_eq!(configured(&rust_plugin("misbehave"), &file), None);
        assert_eq!(
            configured(&c_plugin(), &dir.path().join("missing.yaml")),
            None
        );
    }

    #[test]
    fn a_config_the_daemon_config_gives_and_the_plugin_refuses_fails_as_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = rust_plugin("misbehave");
        let file = daemon_config(dir.path(), &path, "{refuse: not today}");
        let args = Args {
            path: path.clone(),
            config: None,
        };
        let error = format!("{:#}", run_with(args, &file).unwrap_err());
        assert!(
            error.contains(&path.display().to_string()) && error.contains("not today"),
            "{error}"
        );
    }

    #[test]
    fn config_that_is_not_json_is_refused_with_an_example() {
        let args = Args {
            path: c_plugin(),
            config: Some("{dir:".to_owned()),
        };
        let error = format!("{:#}", run(args).unwrap_err());
        assert!(error.contains("--config is not valid JSON"), "{error}");
    }
}

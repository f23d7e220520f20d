//! `herald plugin-info`: loads one plugin library the way the daemon does
//! and prints what it is, so an operator can check a `.so` before start.

use crate::plugin_host::PluginLibrary;
use anyhow::Context;
use herald_plugin_api::Description;
use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `herald plugin-info`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The plugin library (`.so`).
    pub path: PathBuf,
    /// The plugin's config as JSON (the `config` map of its `plugins[]`
    /// entry), to create an instance and list the channels it serves.
    /// Without it, `{}` is tried.
    #[arg(long, value_name = "JSON")]
    pub config: Option<String>,
}

/// Prints name, version, ABI version and channels; exit 1 naming the path
/// when the library cannot be loaded or refuses an explicit config.
pub fn run(args: Args) -> super::Outcome {
    let config: serde_json::Value = match &args.config {
        Some(text) => serde_json::from_str(text)
            .with_context(|| format!("--config is not valid JSON ({text}); pass an object such as '{{\"dir\": \"var/outbox\"}}'"))?,
        None => serde_json::json!({}),
    };
    let library = PluginLibrary::open(&args.path)?;
    let described = library
        .create(&config)
        .and_then(|instance| instance.describe());
    let described = match described {
        Ok(description) => Ok(description),
        Err(error) if args.config.is_some() => return Err(error.into()),
        Err(error) => Err(error.to_string()),
    };
    print!("{}", render(&library, described));
    Ok(ExitCode::SUCCESS)
}

/// The report, given the library and its instance's description (or why
/// there is none when no config was given).
fn render(library: &PluginLibrary, described: Result<Description, String>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "file:        {}", library.path().display());
    let _ = writeln!(out, "plugin:      {}", library.name());
    let _ = writeln!(out, "version:     {}", library.version());
    let _ = writeln!(out, "abi version: {}", library.abi_version());
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
            let _ = writeln!(out, "             pass --config '{{...}}' to list them");
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
        let text = render(&library, Ok(description));
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

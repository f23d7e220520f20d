//! `herald validate`: check delivery files without a daemon.

use crate::definitions::{ChannelCatalog, FileError, Loaded, ValidationContext, validate_paths};
use crate::plugin_host::PluginHost;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `herald validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The daemon's config file: its plugins give the channels (an unknown
    /// one is an error), and its `deliveries_dir` and `audience_roots` are
    /// added to the folders audiences may come from.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Delivery files or folders (recursive; dot-files and `~` files are
    /// skipped). With `--config` and no path: the config's `deliveries_dir`.
    #[arg(value_name = "PATH", required_unless_present = "config")]
    pub paths: Vec<PathBuf>,
}

/// Runs the command: one line per error on stdout, exit 1 when any.
pub fn run(args: Args) -> super::Outcome {
    let (loaded, _) = check(&args)?;
    for warning in &loaded.warnings {
        eprintln!("{}", as_warning(warning));
    }
    for error in &loaded.errors {
        println!("{error}");
    }
    eprintln!(
        "{} valid deliveries, {} errors, {} warnings.",
        loaded.deliveries.len(),
        loaded.errors.len(),
        loaded.warnings.len()
    );
    Ok(if loaded.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_REFUSED)
    })
}

fn as_warning(w: &FileError) -> String {
    format!(
        "{}:{}:{}: warning: {}",
        w.file.display(),
        w.line,
        w.column,
        w.message
    )
}

/// Validates what `args` names; also returns the context used.
pub(crate) fn check(args: &Args) -> anyhow::Result<(Loaded, ValidationContext)> {
    let mut ctx = match &args.config {
        Some(config) => context_from_config(config)?,
        None => context_from_paths(&args.paths),
    };
    let paths = if args.paths.is_empty() {
        vec![ctx.deliveries_dir.clone()]
    } else {
        // `--config` adds the plugins' channels and the config's roots; it
        // does not confine the paths given, which are checked wherever
        // they are, as they would be without it.
        if args.config.is_some() {
            ctx.audience_roots.extend(named_folders(&args.paths));
        }
        args.paths.clone()
    };
    Ok((validate_paths(&paths, &ctx), ctx))
}

/// Without `--config`, the folder of each path given is an allowed root
/// and the builtin channels are assumed (unknown channels only warn).
fn context_from_paths(paths: &[PathBuf]) -> ValidationContext {
    let folders = named_folders(paths);
    ValidationContext {
        deliveries_dir: folders
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from(".")),
        audience_roots: folders,
        channels: ChannelCatalog::builtin(),
    }
}

/// The folders the paths given name: a folder itself, or a file's folder,
/// both where it is linked from and where it really lives, so a file the
/// user names through a symlink is read rather than taken for an escape.
fn named_folders(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut folders = Vec::new();
    for path in paths {
        folders.push(folder_of(path));
        if !path.is_dir()
            && let Some(real) = std::fs::canonicalize(path)
                .ok()
                .and_then(|real| real.parent().map(Path::to_path_buf))
        {
            folders.push(real);
        }
    }
    folders
}

fn folder_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.to_path_buf();
    }
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Builds the context the daemon would use: the config's folders, and the
/// channels its plugins serve, so an unknown channel is an error.
fn context_from_config(path: &Path) -> anyhow::Result<ValidationContext> {
    let config = crate::config::load(path)?.config;
    let plugins = PluginHost::load(
        &crate::daemon::plugin_specs(&config),
        config.sending.plugin_timeout.get(),
    )?;
    Ok(crate::daemon::validation_context(&config, &plugins))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "channel: sms\naudience: { recipients: [{ id: c1, phone: '+33612345678' }] }\ncontent: { from: S, body: hi }\n";

    fn args(config: Option<PathBuf>, paths: &[&Path]) -> Args {
        Args {
            config,
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
        }
    }

    /// Writes `herald.yaml` in `dir`: `folders` and a plugin serving `sms`.
    fn sms_config(dir: &Path, folders: &str) -> PathBuf {
        let outbox = crate::plugin_host::tests::outbox_plugin();
        let config = dir.join("herald.yaml");
        let plugins = format!(
            "plugins:\n  - path: {}\n    config: {{ dir: out, channels: [sms] }}\n",
            outbox.display()
        );
        std::fs::write(&config, format!("{folders}{plugins}")).unwrap();
        config
    }

    #[test]
    fn every_error_of_every_path_is_reported_in_one_run() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("good.yaml"), OK).unwrap();
        std::fs::write(a.path().join("bad.yaml"), "channel: sms\nshedule: {}\n").unwrap();
        let single = b.path().join("other.yml");
        std::fs::write(
            &single,
            "id: BAD\nchannel: sms\naudience: { recipients: [] }\ncontent: { from: x }\n",
        )
        .unwrap();
        let (loaded, _) = check(&args(None, &[a.path(), &single])).unwrap();
        assert_eq!(loaded.deliveries.len(), 1);
        let lines: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        assert!(
            lines
                .iter()
                .any(|l| l.contains("bad.yaml:2:1: unknown field `shedule`")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("other.yml:1:5: invalid id `BAD`")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("other.yml:3:25: `audience.recipients` is empty")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("other.yml:4:10: `content` of channel `sms` needs `body`")),
            "{lines:#?}"
        );
    }

    #[test]
    fn the_folder_of_a_file_given_is_an_audience_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("list.csv"), "id,phone\nc1,+33612345678\n").unwrap();
        let file = dir.path().join("d.yaml");
        std::fs::write(
            &file,
            "channel: sms\naudience: { file: list.csv }\ncontent: { from: S, body: hi }\n",
        )
        .unwrap();
        let (loaded, _) = check(&args(None, &[&file])).unwrap();
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    }

    #[test]
    fn config_folders_bound_the_audiences() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("deliveries")).unwrap();
        std::fs::create_dir(dir.path().join("lists")).unwrap();
        std::fs::write(
            dir.path().join("lists/l.csv"),
            "id,phone\nc1,+33612345678\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("deliveries/d.yaml"),
            "channel: sms\naudience: { file: ../lists/l.csv }\ncontent: { from: S, body: hi }\n",
        )
        .unwrap();
        let config = sms_config(dir.path(), "deliveries_dir: deliveries\n");
        let (loaded, _) = check(&args(Some(config.clone()), &[])).unwrap();
        assert!(
            loaded.errors[0]
                .message
                .contains("leads outside the allowed folders"),
            "{:?}",
            loaded.errors
        );
        let config = sms_config(
            dir.path(),
            "deliveries_dir: deliveries\naudience_roots: [lists]\n",
        );
        let (loaded, _) = check(&args(Some(config), &[])).unwrap();
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.deliveries.len(), 1);
    }

    #[test]
    fn with_a_config_a_channel_no_plugin_serves_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("deliveries")).unwrap();
        std::fs::write(dir.path().join("deliveries/d.yaml"), OK).unwrap();
        let config = dir.path().join("herald.yaml");
        std::fs::write(&config, "deliveries_dir: deliveries\n").unwrap();
        let (loaded, _) = check(&args(Some(config), &[])).unwrap();
        assert!(
            loaded.errors[0].message.contains("unknown channel `sms`"),
            "{:?}",
            loaded.errors
        );
    }

    #[test]
    fn with_a_config_paths_outside_its_folders_are_validated_where_they_are() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lists")).unwrap();
        std::fs::write(
            dir.path().join("lists/l.csv"),
            "id,phone\nc1,+33612345678\n",
        )
        .unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(
            elsewhere.path().join("near.csv"),
            "id,phone\nc1,+33612345678\n",
        )
        .unwrap();
        let near = elsewhere.path().join("near.yaml");
        std::fs::write(
            &near,
            "channel: sms\naudience: { file: near.csv }\ncontent: { from: S, body: hi }\n",
        )
        .unwrap();
        let rooted = elsewhere.path().join("sub/rooted.yaml");
        std::fs::create_dir(rooted.parent().unwrap()).unwrap();
        let lists = std::fs::canonicalize(dir.path().join("lists")).unwrap();
        std::fs::write(
            &rooted,
            format!(
                "channel: sms\naudience: {{ file: \"{}/l.csv\" }}\ncontent: {{ from: S, body: hi }}\n",
                lists.display()
            ),
        )
        .unwrap();
        // The deliveries folder does not exist: nothing is judged against it.
        let config = sms_config(
            dir.path(),
            "deliveries_dir: missing\naudience_roots: [lists]\n",
        );
        let folder = elsewhere.path().join("sub");
        let (loaded, _) = check(&args(Some(config), &[&near, &folder])).unwrap();
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.deliveries.len(), 2);
    }

    #[test]
    fn with_a_config_an_audience_outside_every_allowed_folder_is_still_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let file = elsewhere.path().join("d.yaml");
        std::fs::write(
            &file,
            "channel: sms\naudience: { file: ../x.csv }\ncontent: { from: S, body: hi }\n",
        )
        .unwrap();
        let config = sms_config(dir.path(), "deliveries_dir: deliveries\n");
        let (loaded, _) = check(&args(Some(config), &[&file])).unwrap();
        let lines: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains(
                "d.yaml:2:19: `audience.file`: `../x.csv` leads outside the allowed folders"
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn a_file_named_through_a_symlink_is_validated_not_taken_for_an_escape() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let real = elsewhere.path().join("real.yaml");
        std::fs::write(&real, OK).unwrap();
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let config = sms_config(dir.path(), "deliveries_dir: deliveries\n");
        for config in [None, Some(config)] {
            let (loaded, _) = check(&args(config, &[&link])).unwrap();
            assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
            assert_eq!(loaded.deliveries.len(), 1);
        }
    }

    #[test]
    fn bad_audience_rows_are_errors_naming_the_csv_line() {
        let dir = tempfile::tempdir().unwrap();
        let rows = "id,phone\nc1,+33612345678\nc2,+33612345678,extra\n";
        std::fs::write(dir.path().join("list.csv"), rows).unwrap();
        let file = dir.path().join("d.yaml");
        let text = OK.replace(
            "{ recipients: [{ id: c1, phone: '+33612345678' }] }",
            "{ file: list.csv }",
        );
        std::fs::write(&file, text).unwrap();
        let (loaded, _) = check(&args(None, &[&file])).unwrap();
        let lines: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
        let csv = std::fs::canonicalize(dir.path().join("list.csv")).unwrap();
        assert_eq!(
            lines,
            vec![format!(
                "{}:3:1: 3 fields where the header has 2: quote values that hold a comma, and give every row each column",
                csv.display()
            )]
        );
    }
}

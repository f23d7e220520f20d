//! The host against real libraries: the Rust test plugins under
//! `tests/plugins/` (built with cargo on first use) and the C plugin
//! (compiled with the system `cc`). Loading is tested in `load`, sending
//! in `send`; the helpers are here.

mod load;
mod send;
mod sharing;

use super::{Batch, LoadError, PluginHost, PluginSpec};
use herald_plugin_api::{Message, SendStatus, WIRE_VERSION};
use std::path::Path;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const RUST_PLUGINS: [&str; 5] = ["misbehave", "raw", "wrong_abi", "null_table", "no_symbol"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the daemon sits in the workspace")
        .to_path_buf()
}

/// Where the test plugins are built: a target dir of their own, because
/// the one `cargo test` runs in is locked while tests run.
fn plugin_dir() -> PathBuf {
    workspace().join("target").join("test-plugins")
}

/// Builds the Rust test plugins once per test process (cargo makes it a
/// no-op when they are up to date) and returns the path of one.
pub(crate) fn rust_plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace())
            .arg("build")
            .arg("--quiet")
            .arg("--target-dir")
            .arg(plugin_dir());
        for plugin in RUST_PLUGINS {
            command.arg("-p").arg(format!("herald_test_{plugin}"));
        }
        command.arg("-p").arg("herald_outbox");
        let status = command.status().expect("cargo runs");
        assert!(status.success(), "building the test plugins failed");
    });
    plugin_dir()
        .join("debug")
        .join(format!("libherald_test_{name}.so"))
}

/// The in-tree outbox plugin, built with the test plugins.
pub(crate) fn outbox_plugin() -> PathBuf {
    rust_plugin("misbehave").with_file_name("libherald_outbox.so")
}

/// Compiles `tests/plugins/c/echo.c` with the system C compiler.
pub(crate) fn c_plugin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = plugin_dir().join("c");
            std::fs::create_dir_all(&out).expect("the output folder can be made");
            let library = out.join("libc_echo.so");
            let root = workspace();
            let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()))
                .args([
                    "-std=c11", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-I",
                ])
                .arg(root.join("plugins/api/include"))
                .arg(root.join("tests/plugins/c/echo.c"))
                .arg("-o")
                .arg(&library)
                .status()
                .expect("the C compiler runs");
            assert!(status.success(), "compiling the C plugin failed");
            library
        })
        .clone()
}

pub(super) fn spec(path: PathBuf, config: serde_json::Value) -> PluginSpec {
    PluginSpec { path, config }
}

pub(super) fn misbehave(config: serde_json::Value) -> PluginSpec {
    spec(rust_plugin("misbehave"), config)
}

pub(super) fn load_one(spec: PluginSpec, timeout: Duration) -> PluginHost {
    PluginHost::load(&[spec], timeout).expect("the plugin loads")
}

pub(super) fn load_error(spec: PluginSpec) -> LoadError {
    PluginHost::load(&[spec], Duration::from_secs(5)).expect_err("the plugin is refused")
}

pub(super) fn batch(channel: &str, addresses: &[&str]) -> Batch {
    Batch {
        version: WIRE_VERSION,
        messages: addresses
            .iter()
            .enumerate()
            .map(|(i, address)| Message {
                message_id: format!("run-1/r{i}"),
                run_id: "run-1".to_owned(),
                recipient_id: format!("r{i}"),
                channel: channel.to_owned(),
                address: (*address).to_owned(),
                content: [("body".to_owned(), "hello \"there\"".to_owned())].into(),
                headers: Default::default(),
                data: Default::default(),
            })
            .collect(),
    }
}

/// The provider ids of accepted messages: the test plugins make theirs
/// from the message id, so these show which result came back where (the
/// host has already checked the ids themselves).
pub(super) fn provider_ids(statuses: &[SendStatus]) -> Vec<&str> {
    statuses
        .iter()
        .map(|s| match s {
            SendStatus::Accepted {
                provider_message_id: Some(id),
            } => id.as_str(),
            other => panic!("not accepted with a provider id: {other:?}"),
        })
        .collect()
}

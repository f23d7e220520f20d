//! `herald plugin-info`.

use std::process::ExitCode;

/// Arguments of `herald plugin-info`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> super::Outcome {
    anyhow::bail!("`herald plugin-info` is not built yet")
}

#[allow(dead_code)]
fn _unused() -> ExitCode {
    ExitCode::SUCCESS
}

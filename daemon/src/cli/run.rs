//! `herald run`.

use std::process::ExitCode;

/// Arguments of `herald run`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the command.
pub fn run(_args: Args) -> super::Outcome {
    anyhow::bail!("`herald run` is not built yet")
}

#[allow(dead_code)]
fn _unused() -> ExitCode {
    ExitCode::SUCCESS
}

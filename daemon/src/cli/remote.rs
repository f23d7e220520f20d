//! Commands that talk to a running daemon through its HTTP API.

/// The remote subcommands (`runs`, `confirm`, `cancel`, `pause`, `resume`, `kpi`, ...).
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Runs a remote command.
pub fn run(command: Command) -> super::Outcome {
    match command {}
}

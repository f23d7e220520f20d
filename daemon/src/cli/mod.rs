//! The `herald` command line: one module per subcommand. Only this module
//! decides exit codes: 0 success, 1 invalid input or refused action, 2 usage.

mod client;
mod hash_token;
mod plugin_info;
mod remote;
mod run;
mod schema;
mod suppress;
mod validate;

use clap::{Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// Herald: a scheduler daemon for marketing and notification messages.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `herald`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon.
    Run(run::Args),
    /// Validate delivery files or folders; exit 0 when all are valid, 1 otherwise.
    Validate(validate::Args),
    /// Print the JSON Schema of delivery files.
    Schema,
    /// Print the `token_sha256` of a token for the `users` of the config.
    HashToken(hash_token::Args),
    /// Load a plugin and print its name, version, channels and ABI version.
    PluginInfo(plugin_info::Args),
    /// Manage the quarantine and the denylist through the daemon's API.
    Suppress(suppress::Args),
    /// Commands that talk to a running daemon through its HTTP API.
    #[command(flatten)]
    Remote(remote::Command),
}

/// What a command returns to `main`: success, refused (exit 1), or an error.
pub type Outcome = anyhow::Result<ExitCode>;

/// Exit code for invalid input or a refused action.
pub const EXIT_REFUSED: u8 = 1;

/// Entry point of the binary: parses the arguments and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_)) {
        quit_quietly_on_a_closed_pipe();
    }
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Schema => schema::run(),
        Command::HashToken(args) => hash_token::run(args),
        Command::PluginInfo(args) => plugin_info::run(args),
        Command::Suppress(args) => suppress::run(args),
        Command::Remote(command) => remote::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // writeln!, not eprintln!: a closed stderr must not turn exit 1 into a panic.
            let _ = writeln!(std::io::stderr(), "herald: {}", error_text(&error));
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

/// Restores the default SIGPIPE action, which Rust's runtime ignores, so
/// that `herald runs | head` ends the command as it ends `ls`, instead of
/// `println!` panicking on the closed pipe. Not for `herald run`: the
/// daemon must live on when a peer or its stderr goes away.
fn quit_quietly_on_a_closed_pipe() {
    // SAFETY: called before any other thread exists; SIG_DFL is a valid
    // action for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes joined with `: `, like `{:#}`, but a cause
/// that the text before it already quotes is left out: many messages name
/// their cause and add how to fix it, and saying it twice only confuses.
pub(crate) fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot listen on 127.0.0.1:8425: {source}; change `http.listen`")]
    struct Quoting {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_quotes_is_printed_once() {
        let error = anyhow::Error::new(Quoting {
            source: std::io::Error::other("Address already in use"),
        });
        assert_eq!(
            error_text(&error),
            "cannot listen on 127.0.0.1:8425: Address already in use; change `http.listen`"
        );
    }

    #[test]
    fn causes_the_message_does_not_quote_are_chained() {
        let error = anyhow::Error::new(std::io::Error::other("disk full"))
            .context("writing var/herald.db")
            .context("cannot start");
        assert_eq!(
            error_text(&error),
            "cannot start: writing var/herald.db: disk full"
        );
    }
}

//! `herald run`: the daemon.

use crate::clock::Clock;
use crate::config;
use crate::daemon::{self, Control};
use crate::ops::logging::{self, LogFormat};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// Arguments of `herald run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configuration file (default: `HERALD_CONFIG`, else /etc/herald/herald.yaml).
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(args: Args) -> super::Outcome {
    let format = args.log_format;
    logging::init(format);
    match serve(args) {
        // With `--log-format json` every line on stderr is JSON, the one
        // saying why the daemon could not start too (the journal keeps its
        // level); the text format keeps the plain `herald: ...` line.
        Err(error) if format == LogFormat::Json => {
            error!(error = %super::error_text(&error), "Herald cannot start.");
            Ok(ExitCode::from(super::EXIT_REFUSED))
        }
        outcome => outcome,
    }
}

/// Loads the config and runs the daemon in its runtime.
fn serve(args: Args) -> super::Outcome {
    let path = config::resolve_path(args.config);
    let loaded = config::load(&path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("herald")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let (reload_tx, reload_rx) = mpsc::channel(1);
        let mut terminate = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut hangup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = terminate.recv() => { info!("SIGTERM received."); break; }
                    _ = interrupt.recv() => { info!("SIGINT received."); break; }
                    _ = hangup.recv() => { info!("SIGHUP received: reloading."); let _ = reload_tx.try_send(()); }
                }
            }
            stop.cancel();
        });
        let control = Control {
            shutdown,
            reload: reload_rx,
            clock: Clock::System,
        };
        daemon::run(loaded, control).await?;
        Ok(ExitCode::SUCCESS)
    })
}

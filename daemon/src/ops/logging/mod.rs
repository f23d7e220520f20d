//! tracing to stderr: human format on a terminal, JSON lines with
//! `--log-format json`; the filter from `HERALD_LOG` (default `info`).
//!
//! Lines about a run carry `delivery_id` and `run_id`, either as fields of
//! their own or from the span of the run's chunk workers; both formats
//! show span fields, and the JSON one puts them at the top level
//! ([`flat_json`]).

mod flat_json;

use std::io::IsTerminal;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::util::SubscriberInitExt;

pub use flat_json::FlatJson;

/// The log formats of `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human format, coloured on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

/// Starts logging to stderr; safe to call once per process.
pub fn init(format: LogFormat) {
    let (filter, refused) = filter_from(std::env::var("HERALD_LOG").ok().as_deref());
    let ansi = std::io::stderr().is_terminal();
    // try_init also routes the `log` records of dependencies to tracing.
    let _ = subscriber(format, filter, std::io::stderr, ansi).try_init();
    if let Some((given, error)) = refused {
        tracing::warn!(herald_log = %given, %error, "HERALD_LOG is not a tracing filter, so the default `info` is used. Fix the variable, for example `debug` or `warn,herald`.");
    }
}

/// The filter `HERALD_LOG` asks for (`info` when unset or empty) and, when
/// it is not a filter, what it said and why it was refused.
pub fn filter_from(given: Option<&str>) -> (EnvFilter, Option<(String, String)>) {
    match given.map(str::trim).filter(|text| !text.is_empty()) {
        None => (EnvFilter::new("info"), None),
        Some(text) => match EnvFilter::try_new(text) {
            Ok(filter) => (filter, None),
            Err(error) => (
                EnvFilter::new("info"),
                Some((text.to_owned(), error.to_string())),
            ),
        },
    }
}

/// The subscriber `init` installs, writing to `writer` (tests pass a buffer).
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // No internal-error reports: tracing-subscriber prints them with
    // `eprintln!`, which panics when stderr is gone (a closed pipe, a
    // restarted journal), and a panic in the task that logs "SIGTERM
    // received." would leave the daemon unable to stop. A log line that
    // cannot be written is dropped instead.
    let builder = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .fmt_fields(JsonFields::new())
                .event_format(FlatJson)
                .finish(),
        ),
        LogFormat::Text => Box::new(builder.with_ansi(ansi).finish()),
    }
}

#[cfg(test)]
mod tests;

//! Commands that talk to a running daemon through its HTTP API: `runs`,
//! `confirm`, `cancel`, `pause`, `resume`, `kpi`, `proof`. The server
//! applies the same role rules as for any API call; its `error` text is
//! printed as is. Exit codes: 0 done, 1 refused or unreachable, 2 usage.

mod table;

use super::client::{Client, DEFAULT_URL, RemoteError, encode, token_from_env};
use crate::http::views::{DeliveryDetail, ProofAnswer, ProofRequest, RunPage, RunView};
use crate::kpi::Kpi;
use crate::runs::RunState;
use anyhow::Context;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// How often `--watch` polls the run.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Where the daemon is.
#[derive(Debug, clap::Args)]
pub struct Server {
    /// The daemon's API address (its `http.listen`); the token is read
    /// from HERALD_TOKEN.
    #[arg(long, env = "HERALD_URL", default_value = DEFAULT_URL)]
    pub url: String,
}

/// A command on one run.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The run id (`{delivery_id}@{YYYYMMDDTHHMMSSZ}` or `{delivery_id}@once`).
    pub run_id: String,
    #[command(flatten)]
    server: Server,
}

/// Arguments of `herald runs`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Only runs in this state (pending, scheduled, sending, ...).
    #[arg(long)]
    pub state: Option<RunState>,
    /// Only runs of this delivery.
    #[arg(long)]
    pub delivery: Option<String>,
    /// At most this many runs, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    server: Server,
}

/// Arguments of `herald kpi`.
#[derive(Debug, clap::Args)]
pub struct KpiArgs {
    /// The delivery.
    pub delivery_id: String,
    /// One run of it instead of the sum of its runs.
    #[arg(long)]
    pub run: Option<String>,
    /// Recount every figure from the recorded outcomes first.
    #[arg(long)]
    pub compute: bool,
    /// Follow a sending run with a progress bar until it ends (the run
    /// given with --run, else the delivery's sending run, else its paused
    /// one, else the next one to send).
    #[arg(long)]
    pub watch: bool,
    #[command(flatten)]
    server: Server,
}

/// Arguments of `herald proof`.
#[derive(Debug, clap::Args)]
pub struct ProofArgs {
    /// The delivery.
    pub delivery_id: String,
    /// Test addresses to send the proof to.
    #[arg(required = true)]
    pub addresses: Vec<String>,
    /// Render with this recipient's data (default: the first of the audience).
    #[arg(long)]
    pub recipient: Option<String>,
    #[command(flatten)]
    server: Server,
}

/// The remote subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List runs, newest first (through the HTTP API; token from HERALD_TOKEN).
    Runs(RunsArgs),
    /// Confirm a pending run (needs the start_deliveries role).
    Confirm(RunArgs),
    /// Cancel a run that is not finished.
    Cancel(RunArgs),
    /// Pause a sending run.
    Pause(RunArgs),
    /// Resume a paused run.
    Resume(RunArgs),
    /// Print the deployment KPIs of a delivery or a run as a table.
    Kpi(KpiArgs),
    /// Send a proof of a delivery to test addresses.
    Proof(ProofArgs),
}

/// Runs a remote command.
pub fn run(command: Command) -> super::Outcome {
    let token = match token_from_env() {
        Ok(token) => token,
        Err(code) => return Ok(code),
    };
    let url = match &command {
        Command::Runs(a) => &a.server.url,
        Command::Confirm(a) | Command::Cancel(a) | Command::Pause(a) | Command::Resume(a) => {
            &a.server.url
        }
        Command::Kpi(a) => &a.server.url,
        Command::Proof(a) => &a.server.url,
    };
    let client = Client::new(url, token).context("starting the HTTP client")?;
    let result = match command {
        Command::Runs(args) => runs(&client, &args),
        Command::Confirm(args) => act(&client, "confirm", &args.run_id),
        Command::Cancel(args) => act(&client, "cancel", &args.run_id),
        Command::Pause(args) => act(&client, "pause", &args.run_id),
        Command::Resume(args) => act(&client, "resume", &args.run_id),
        Command::Kpi(args) => kpi(&client, &args),
        Command::Proof(args) => proof(&client, &args),
    };
    match result {
        Ok(code) => Ok(code),
        Err(error) => {
            eprintln!("herald: {error}");
            Ok(ExitCode::from(super::EXIT_REFUSED))
        }
    }
}

fn runs(client: &Client, args: &RunsArgs) -> Result<ExitCode, RemoteError> {
    let mut query = vec![format!("limit={}", args.limit.clamp(1, 1000))];
    if let Some(state) = args.state {
        query.push(format!("state={state}"));
    }
    if let Some(delivery) = &args.delivery {
        query.push(format!("delivery={}", encode(delivery)));
    }
    let mut found = Vec::new();
    let mut cursor: Option<String> = None;
    while found.len() < args.limit {
        let mut q = query.clone();
        if let Some(c) = &cursor {
            q.push(format!("cursor={}", encode(c)));
        }
        let page: RunPage = client.get(&format!("/api/v1/runs?{}", q.join("&")))?;
        found.extend(page.runs);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    found.truncate(args.limit);
    print!("{}", table::runs_table(&found));
    Ok(ExitCode::SUCCESS)
}

fn act(client: &Client, action: &str, run_id: &str) -> Result<ExitCode, RemoteError> {
    let run: RunView = client.post(
        &format!("/api/v1/runs/{}/{action}", encode(run_id)),
        None::<&()>,
    )?;
    println!("Run {} is now {}.", run.id, run.state);
    Ok(ExitCode::SUCCESS)
}

fn kpi(client: &Client, args: &KpiArgs) -> Result<ExitCode, RemoteError> {
    let delivery = encode(&args.delivery_id);
    let detail: DeliveryDetail = if args.compute {
        client.post(
            &format!("/api/v1/deliveries/{delivery}/statistics"),
            None::<&()>,
        )?
    } else {
        client.get(&format!("/api/v1/deliveries/{delivery}"))?
    };
    let run_id = match (&args.run, args.watch) {
        (Some(run), _) => Some(run.clone()),
        (None, true) => match run_to_watch(client, &delivery)? {
            Some(run) => Some(run),
            None => {
                eprintln!(
                    "herald: no run of `{}` is sending, paused or about to send; name a finished one with --run",
                    args.delivery_id
                );
                return Ok(ExitCode::from(super::EXIT_REFUSED));
            }
        },
        (None, false) => None,
    };
    let Some(run_id) = run_id else {
        let mut columns: Vec<(&str, &Kpi)> = vec![("total", &detail.kpi)];
        columns.extend(detail.periods.iter().map(|p| (p.period.as_str(), &p.kpi)));
        print!("{}", table::kpi_table(&columns));
        return Ok(ExitCode::SUCCESS);
    };
    let path = format!("/api/v1/runs/{}", encode(&run_id));
    let mut run: RunView = client.get(&path)?;
    if run.delivery_id != args.delivery_id {
        eprintln!(
            "herald: run `{run_id}` belongs to delivery `{}`, not `{}`",
            run.delivery_id, args.delivery_id
        );
        // Well-formed arguments naming things that do not go together:
        // invalid input, not a usage error (daemon.md, exit codes).
        return Ok(ExitCode::from(super::EXIT_REFUSED));
    }
    if args.watch {
        run = watch(client, &path, run)?;
    }
    println!("{} ({})", run.id, run.state);
    print!("{}", table::kpi_table(&[(run.id.as_str(), &run.kpi)]));
    Ok(ExitCode::SUCCESS)
}

/// The run `kpi --watch` follows when none is named: the delivery's
/// sending run, else its paused one (a pause is part of the send), else
/// the first of its runs still on their way to sending (so a watch started
/// just before the send, or while a confirmer decides, follows it). The
/// states are asked for in turn: a run prepared ahead for the next
/// occurrence must not hide the one sending now.
fn run_to_watch(client: &Client, delivery: &str) -> Result<Option<String>, RemoteError> {
    const IN_TURN: [&[RunState]; 3] = [
        &[RunState::Sending],
        &[RunState::Paused],
        &[RunState::Preparing, RunState::Scheduled, RunState::Pending],
    ];
    for states in IN_TURN {
        let mut first: Option<RunView> = None;
        for state in states {
            // A recurring delivery prepared ahead may have several runs on
            // their way: the one due first is the one to follow.
            let page: RunPage = client.get(&format!(
                "/api/v1/runs?delivery={delivery}&state={state}&limit=100"
            ))?;
            for run in page.runs {
                if first
                    .as_ref()
                    .is_none_or(|f| run.scheduled_for < f.scheduled_for)
                {
                    first = Some(run);
                }
            }
        }
        if let Some(run) = first {
            return Ok(Some(run.id));
        }
    }
    Ok(None)
}

/// Follows a run with a progress bar until it [`ended`]. On a terminal the bar redraws in place; when
/// stderr is not one (a CI log, a pipe) indicatif draws nothing, so each
/// change of state or progress is printed as one line instead.
fn watch(client: &Client, path: &str, mut run: RunView) -> Result<RunView, RemoteError> {
    let bar = indicatif::ProgressBar::new(run.kpi.to_send.max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {pos}/{len} ({percent} %) {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let plain = !std::io::stderr().is_terminal();
    let mut last: Option<(String, u64)> = None;
    loop {
        let done = run.kpi.sent + run.kpi.cancelled;
        bar.set_length(run.kpi.to_send.max(1));
        bar.set_position(done);
        bar.set_message(run.state.clone());
        let now = (run.state.clone(), done);
        if plain && last.as_ref() != Some(&now) {
            eprintln!("{}", progress_line(&run));
            last = Some(now);
        }
        if ended(&run) {
            break;
        }
        std::thread::sleep(WATCH_EVERY);
        run = client.get(path)?;
    }
    bar.finish();
    Ok(run)
}

/// Whether `run` is over: in a final state and, if it had started
/// sending, with every outcome in (a run cancelled while sending hands its
/// unsent recipients their `cancelled` outcomes after the state changes,
/// and only then gets `finished_at`).
fn ended(run: &RunView) -> bool {
    let last = run
        .state
        .parse::<RunState>()
        .is_ok_and(|state| state.is_final());
    last && (run.finished_at.is_some() || run.started_at.is_none())
}

/// `sending 120/300 (40.0 %)`: one line of `--watch` off a terminal.
fn progress_line(run: &RunView) -> String {
    let done = run.kpi.sent + run.kpi.cancelled;
    let share = if run.kpi.to_send == 0 {
        100.0
    } else {
        done as f64 * 100.0 / run.kpi.to_send as f64
    };
    format!("{} {done}/{} ({share:.1} %)", run.state, run.kpi.to_send)
}

fn proof(client: &Client, args: &ProofArgs) -> Result<ExitCode, RemoteError> {
    let request = ProofRequest {
        addresses: args.addresses.clone(),
        recipient_id: args.recipient.clone(),
    };
    let answer: ProofAnswer = client.post(
        &format!("/api/v1/deliveries/{}/proof", encode(&args.delivery_id)),
        Some(&request),
    )?;
    let mut all_accepted = true;
    println!("Proof rendered for recipient {}.", answer.recipient_id);
    for result in &answer.results {
        all_accepted &= result.status == "accepted";
        match &result.detail {
            Some(detail) => println!("{}: {} ({detail})", result.address, result.status),
            None => println!("{}: {}", result.address, result.status),
        }
    }
    Ok(if all_accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_REFUSED)
    })
}

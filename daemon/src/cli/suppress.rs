//! `herald suppress add|remove|import|list`: the quarantine and the
//! denylist through the daemon's API (`/api/v1/suppressions`), so the
//! server's role rules apply (changes need `admin`). Token from
//! `HERALD_TOKEN`, address from `--url` or `HERALD_URL`.

use super::client::{Client, DEFAULT_URL, encode, token_from_env};
use anyhow::{Context, bail};
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `herald suppress`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
    /// The daemon's API address (its `http.listen`); the token is read
    /// from HERALD_TOKEN.
    #[arg(
        long,
        env = "HERALD_URL",
        default_value = DEFAULT_URL,
        global = true
    )]
    pub url: String,
}

/// A list: `quarantine` or `denylist`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum List {
    /// Hard-bounced addresses and soft-bounced past the threshold.
    Quarantine,
    /// Unsubscribed, complained, STOP.
    Denylist,
}

impl List {
    fn as_str(self) -> &'static str {
        match self {
            List::Quarantine => "quarantine",
            List::Denylist => "denylist",
        }
    }
}

/// The actions of `herald suppress`.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Put addresses on a list.
    Add {
        /// The list.
        list: List,
        /// The addresses (e-mail, E.164 phone, push token).
        #[arg(required = true)]
        addresses: Vec<String>,
        /// Why (shown in `list`).
        #[arg(long, default_value = "manual")]
        reason: String,
    },
    /// Lift addresses from a list.
    Remove {
        /// The list.
        list: List,
        /// The addresses.
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Put every address of a CSV file on a list.
    ///
    /// The addresses are read from the column named by --column; else from
    /// the first column a header row names `address`, `email`, `phone` or
    /// `push_token` (an audience file works as is); else, without such a
    /// header, from the first column.
    Import {
        /// The list.
        list: List,
        /// The CSV file.
        file: PathBuf,
        /// The header of the column holding the addresses.
        #[arg(long)]
        column: Option<String>,
        /// Why (shown in `list`).
        #[arg(long, default_value = "imported")]
        reason: String,
    },
    /// Print the entries of a list, or of both.
    List {
        /// The list (default: the quarantine, then the denylist).
        list: Option<List>,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

/// Runs `herald suppress`.
pub fn run(args: Args) -> super::Outcome {
    let token = match token_from_env() {
        Ok(token) => token,
        Err(code) => return Ok(code),
    };
    let api = Client::new(&args.url, token).context("starting the HTTP client")?;
    match args.action {
        Action::Add {
            list,
            addresses,
            reason,
        } => add_all(&api, list, addresses.iter().map(String::as_str), &reason),
        Action::Remove { list, addresses } => {
            for address in &addresses {
                api.call::<Value, ()>(Method::DELETE, &entry_path(list, address), None)?;
                println!("{address}: lifted from the {}", list.as_str());
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Import {
            list,
            file,
            column,
            reason,
        } => {
            let addresses = read_csv(&file, column.as_deref())?;
            add_all(&api, list, addresses.iter().map(String::as_str), &reason)
        }
        Action::List { list, limit } => {
            println!(
                "{:<11} {:<40} {:<14} {:<20} SOFT BOUNCES",
                "LIST", "ADDRESS", "REASON", "SINCE"
            );
            let lists = match list {
                Some(list) => vec![list],
                None => vec![List::Quarantine, List::Denylist],
            };
            for list in lists {
                print_list(&api, list, limit)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints up to `limit` entries of `list`, one a line.
fn print_list(api: &Client, list: List, limit: usize) -> anyhow::Result<()> {
    let mut printed = 0;
    let mut cursor: Option<String> = None;
    while printed < limit {
        let mut path = format!("/api/v1/suppressions?list={}&limit=1000", list.as_str());
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", encode(c)));
        }
        let page: EntryPage = api.get(&path)?;
        for e in page.entries.iter().take(limit - printed) {
            println!(
                "{:<11} {:<40} {:<14} {:<20} {}",
                list.as_str(),
                e["address"].as_str().unwrap_or(""),
                e["reason"].as_str().unwrap_or(""),
                since(e["since"].as_str().unwrap_or("")),
                e["soft_bounces"]
            );
            printed += 1;
        }
        match page.next_cursor {
            Some(next) if printed < limit => cursor = Some(next),
            _ => break,
        }
    }
    Ok(())
}

/// An entry's `since` to the second (`2026-12-07T14:28:09Z`): the API's
/// nanoseconds only widen the column.
fn since(instant: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(instant).map_or_else(
        |_| instant.to_owned(),
        |t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        },
    )
}

#[derive(Deserialize)]
struct EntryPage {
    entries: Vec<Value>,
    next_cursor: Option<String>,
}

fn add_all<'a>(
    api: &Client,
    list: List,
    addresses: impl Iterator<Item = &'a str>,
    reason: &str,
) -> super::Outcome {
    let body = serde_json::json!({ "reason": reason });
    let mut added = 0;
    for address in addresses {
        api.call::<Value, _>(Method::PUT, &entry_path(list, address), Some(&body))
            .with_context(|| format!("adding {address:?} to the {}", list.as_str()))?;
        added += 1;
    }
    println!("{added} address(es) on the {}", list.as_str());
    Ok(ExitCode::SUCCESS)
}

fn entry_path(list: List, address: &str) -> String {
    format!("/api/v1/suppressions/{}/{}", list.as_str(), encode(address))
}

/// Header names of an address column, lower-cased.
const ADDRESS_HEADERS: [&str; 4] = ["address", "email", "phone", "push_token"];

/// The addresses of a CSV file, in order, blanks skipped: from the column
/// named `column`, else from the first column a header row names as an
/// address column, else (no such header) from the first column.
fn read_csv(path: &std::path::Path, column: Option<&str>) -> anyhow::Result<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut records = reader.records();
    let first = match records.next() {
        Some(record) => {
            record.with_context(|| format!("{}:1: cannot read the first row", path.display()))?
        }
        None => return Ok(Vec::new()),
    };
    let named = |name: &str| first.iter().position(|h| h.trim() == name);
    let (index, header) = match column {
        Some(name) => match named(name) {
            Some(i) => (i, true),
            None => bail!(
                "{}:1: no column named {name:?}; the columns are {:?}; pass one of them with --column",
                path.display(),
                first.iter().collect::<Vec<_>>()
            ),
        },
        None => match first
            .iter()
            .position(|h| ADDRESS_HEADERS.contains(&h.trim().to_ascii_lowercase().as_str()))
        {
            Some(i) => (i, true),
            None => (0, false),
        },
    };
    let mut addresses = Vec::new();
    let rows = std::iter::once(Ok(first))
        .chain(records)
        .skip(usize::from(header));
    for (n, record) in rows.enumerate() {
        let line = n + 1 + usize::from(header);
        let record =
            record.with_context(|| format!("{}:{line}: cannot read the row", path.display()))?;
        let value = record.get(index).unwrap_or("").trim();
        if !value.is_empty() {
            addresses.push(value.to_owned());
        }
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_addresses_come_from_the_first_column_without_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "email,name\nA@x.example,Ana\n\nb@x.example,Bo\n").unwrap();
        assert_eq!(
            read_csv(&path, None).unwrap(),
            ["A@x.example", "b@x.example"]
        );
    }

    #[test]
    fn csv_addresses_come_from_the_address_column_of_an_audience_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "id,Email,first_name\nc1,a@x.example,Ana\nc2,,Bo\n").unwrap();
        assert_eq!(read_csv(&path, None).unwrap(), ["a@x.example"]);
        std::fs::write(&path, "a@x.example\nb@x.example\n").unwrap();
        assert_eq!(
            read_csv(&path, None).unwrap(),
            ["a@x.example", "b@x.example"]
        );
    }

    #[test]
    fn list_entries_show_their_instant_to_the_second() {
        assert_eq!(
            since("2026-12-07T14:28:09.820483234Z"),
            "2026-12-07T14:28:09Z"
        );
        assert_eq!(since("garbled"), "garbled");
    }

    #[test]
    fn csv_addresses_come_from_the_named_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "id,mail\n1,a@x.example\n2,b@x.example\n").unwrap();
        assert_eq!(
            read_csv(&path, Some("mail")).unwrap(),
            ["a@x.example", "b@x.example"]
        );
        let error = read_csv(&path, Some("email")).unwrap_err().to_string();
        assert!(error.contains(":1: no column named \"email\""), "{error}");
    }
}

//! When a delivery runs: at once, once at an instant, or on a cron pattern
//! in an IANA zone, inside an optional window.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The window whose runs are reported together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregation {
    /// Each run stands alone.
    None,
    /// One period per day (`2026-12-07`).
    Day,
    /// One period per ISO week (`2026-W49`).
    Week,
    /// One period per month (`2026-12`).
    Month,
}

/// What to do with occurrences missed while no daemon ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Run only the most recent missed occurrence.
    Latest,
    /// Run none of them.
    Skip,
}

/// The kind of timing, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum When {
    /// Send once, as soon as loaded (`{id}@once`).
    Once,
    /// One run at this instant.
    At {
        /// The instant.
        at: DateTime<Utc>,
    },
    /// One run per occurrence of a cron pattern.
    Cron {
        /// The pattern as written (5 fields, or 6 with seconds first).
        cron: String,
    },
}

/// The serialised form of a [`Schedule`]; read back through the same checks.
// No deny_unknown_fields: serde cannot combine it with flatten.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScheduleSpec {
    #[serde(flatten)]
    when: When,
    timezone: String,
    aggregation: Aggregation,
    confirm: bool,
    starts: Option<DateTime<Utc>>,
    ends: Option<DateTime<Utc>>,
    catch_up: CatchUp,
    prepare_ahead_ms: u64,
    confirm_deadline_ms: Option<u64>,
}

/// A valid schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "ScheduleSpec", into = "ScheduleSpec")]
pub struct Schedule {
    when: When,
    cron: Option<Cron>,
    zone: Tz,
    aggregation: Aggregation,
    confirm: bool,
    starts: Option<DateTime<Utc>>,
    ends: Option<DateTime<Utc>>,
    catch_up: CatchUp,
    prepare_ahead: Duration,
    confirm_deadline: Option<Duration>,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        ScheduleSpec::from(self.clone()) == ScheduleSpec::from(other.clone())
    }
}

impl PartialEq for ScheduleSpec {
    fn eq(&self, o: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(o).ok()
    }
}

const ONE_SHOT_DEADLINE: Duration = Duration::from_secs(24 * 3600);

impl Schedule {
    /// Send once, at once, without confirmation.
    pub fn once() -> Self {
        Schedule {
            when: When::Once,
            cron: None,
            zone: Tz::UTC,
            aggregation: Aggregation::None,
            confirm: false,
            starts: None,
            ends: None,
            catch_up: CatchUp::Latest,
            prepare_ahead: Duration::ZERO,
            confirm_deadline: None,
        }
    }

    /// At once, at an instant, or recurring.
    pub fn when(&self) -> &When {
        &self.when
    }

    /// Whether the schedule recurs (`cron`).
    pub fn is_recurring(&self) -> bool {
        self.cron.is_some()
    }

    /// The first occurrence strictly after `after`, inside the window;
    /// `None` when there is none (and always for [`When::Once`], which has no instant).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = match (&self.when, &self.cron) {
            (When::Once, _) => return None,
            (When::At { at }, _) => (*at > after).then_some(*at)?,
            (When::Cron { .. }, Some(cron)) => match self.starts {
                Some(starts) if starts > after => next_of(cron, self.zone, starts, true)?,
                _ => next_of(cron, self.zone, after, false)?,
            },
            (When::Cron { .. }, None) => return None,
        };
        let before_start = self.starts.is_some_and(|s| next < s);
        let after_end = self.ends.is_some_and(|e| next > e);
        (!before_start && !after_end).then_some(next)
    }

    /// The latest occurrence at or before `instant`, inside the window (for catch-up).
    pub fn latest_at_or_before(&self, instant: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let found = match (&self.when, &self.cron) {
            (When::At { at }, _) => (*at <= instant).then_some(*at)?,
            (When::Cron { .. }, Some(cron)) => {
                let bound = self.ends.map_or(instant, |e| e.min(instant));
                let local = bound.with_timezone(&self.zone);
                cron.find_previous_occurrence(&local, true)
                    .ok()?
                    .with_timezone(&Utc)
            }
            _ => return None,
        };
        let before_start = self.starts.is_some_and(|s| found < s);
        (!before_start).then_some(found)
    }

    /// Whether every run waits in `pending` for a confirmer.
    pub fn confirm(&self) -> bool {
        self.confirm
    }

    /// How long before each occurrence the run is prepared.
    pub fn prepare_ahead(&self) -> Duration {
        self.prepare_ahead
    }

    /// When a pending run of `instant` expires: `confirm_deadline` after the
    /// instant, else the next occurrence (recurring) or 24 hours (one-shot).
    pub fn confirm_deadline_for(&self, instant: DateTime<Utc>) -> DateTime<Utc> {
        let plus = |d: Duration| {
            chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| instant.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
        };
        if let Some(d) = self.confirm_deadline {
            return plus(d);
        }
        match &self.cron {
            Some(cron) => {
                next_of(cron, self.zone, instant, false).unwrap_or_else(|| plus(ONE_SHOT_DEADLINE))
            }
            None => plus(ONE_SHOT_DEADLINE),
        }
    }

    /// What to do with occurrences missed while no daemon ran.
    pub fn catch_up(&self) -> CatchUp {
        self.catch_up
    }

    /// The aggregation window.
    pub fn aggregation(&self) -> Aggregation {
        self.aggregation
    }

    /// The delivery's zone (UTC unless `timezone` says otherwise).
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The aggregation period of `instant` in the delivery's zone:
    /// `2026-12-07`, `2026-W49` or `2026-12`; `None` without aggregation.
    pub fn aggregation_period(&self, instant: DateTime<Utc>) -> Option<String> {
        let local = instant.with_timezone(&self.zone);
        match self.aggregation {
            Aggregation::None => None,
            Aggregation::Day => Some(local.format("%Y-%m-%d").to_string()),
            Aggregation::Week => {
                let week = local.iso_week();
                Some(format!("{}-W{:02}", week.year(), week.week()))
            }
            Aggregation::Month => Some(local.format("%Y-%m").to_string()),
        }
    }
}

fn next_of(cron: &Cron, zone: Tz, from: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
    let local = from.with_timezone(&zone);
    cron.find_next_occurrence(&local, inclusive)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Vixie semantics: day-of-month OR day-of-week (croner's default, kept explicit).
fn cron_parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .dom_and_dow(false)
        .build()
}

fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if fields != 5 && fields != 6 {
        return Err(format!(
            "cron `{text}` has {fields} fields: write 5 (minute hour day-of-month month day-of-week) or 6 with seconds first"
        ));
    }
    cron_parser().parse(text).map_err(|e| {
        // The parser's words ("Component error: Number out of bounds.")
        // say neither which field nor what it allows: give the ranges.
        let said = e.to_string();
        let said = said.trim_start_matches("Component error: ").trim_end_matches('.');
        format!(
            "invalid cron `{text}` ({}): the fields are minute 0-59, hour 0-23, day of month 1-31, month 1-12 or JAN-DEC, day of week 0-7 or SUN-SAT, with seconds 0-59 first in the 6-field form",
            said.to_lowercase()
        )
    })
}

impl TryFrom<ScheduleSpec> for Schedule {
    type Error = String;
    fn try_from(s: ScheduleSpec) -> Result<Self, String> {
        let zone: Tz = s
            .timezone
            .parse()
            .map_err(|_| format!("unknown time zone `{}`", s.timezone))?;
        let cron = match &s.when {
            When::Cron { cron } => Some(parse_cron(cron)?),
            _ => None,
        };
        Ok(Schedule {
            when: s.when,
            cron,
            zone,
            aggregation: s.aggregation,
            confirm: s.confirm,
            starts: s.starts,
            ends: s.ends,
            catch_up: s.catch_up,
            prepare_ahead: Duration::from_millis(s.prepare_ahead_ms),
            confirm_deadline: s.confirm_deadline_ms.map(Duration::from_millis),
        })
    }
}

impl From<Schedule> for ScheduleSpec {
    fn from(s: Schedule) -> Self {
        ScheduleSpec {
            when: s.when,
            timezone: s.zone.name().to_string(),
            aggregation: s.aggregation,
            confirm: s.confirm,
            starts: s.starts,
            ends: s.ends,
            catch_up: s.catch_up,
            prepare_ahead_ms: u64::try_from(s.prepare_ahead.as_millis()).unwrap_or(u64::MAX),
            confirm_deadline_ms: s
                .confirm_deadline
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

mod from_file;
pub(crate) use from_file::from_raw;

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;

//! When a delivery runs: at once, once at an instant, or on a cron pattern
//! in an IANA zone, inside an optional window.

use super::duration::parse_duration;
use super::errors::{Pos, Problems};
use super::model::{RawSchedule, Sp};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
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
    cron_parser()
        .parse(text)
        .map_err(|e| format!("invalid cron `{text}`: {e}"))
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

/// Which end of the window a bound is, since a date means a whole day.
#[derive(Clone, Copy)]
enum Bound {
    Start,
    End,
}

fn parse_bound(text: &str, zone: Tz, bound: Bound) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        format!("`{text}` is neither a date (`2026-12-01`) nor an RFC 3339 instant (`2026-12-01T09:00:00+01:00`)")
    })?;
    let day = match bound {
        Bound::Start => date,
        Bound::End => date
            .succ_opt()
            .ok_or_else(|| format!("date `{text}` is out of range"))?,
    };
    let start = start_of_day(zone, day).ok_or_else(|| format!("date `{text}` is out of range"))?;
    Ok(match bound {
        Bound::Start => start,
        // The whole day is inside: up to the last instant before the next midnight.
        Bound::End => start - chrono::Duration::nanoseconds(1),
    })
}

/// Midnight of `day` in `zone`, or the first instant after it when a DST change skips midnight.
fn start_of_day(zone: Tz, day: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight = day.and_hms_opt(0, 0, 0)?;
    (0..=180).step_by(15).find_map(|minutes| {
        zone.from_local_datetime(&(midnight + chrono::Duration::minutes(minutes)))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    })
}

fn parse_choice<T: Copy>(
    field: &Sp<String>,
    name: &str,
    choices: &[(&str, T)],
    problems: &mut Problems,
) -> Option<T> {
    let found = choices.iter().find(|(n, _)| *n == field.value.trim());
    if found.is_none() {
        let names: Vec<_> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
        problems.at(
            field.pos,
            format!(
                "`{name}: {}` is not allowed: use one of {}",
                field.value,
                names.join(", ")
            ),
        );
    }
    found.map(|(_, v)| *v)
}

/// Builds the schedule from the file, recording every problem; `None` when any.
pub(crate) fn from_raw(raw: Option<&Sp<RawSchedule>>, problems: &mut Problems) -> Option<Schedule> {
    let Some(raw) = raw else {
        return Some(Schedule::once());
    };
    let r = &raw.value;
    let before = problems.len();
    let mut s = Schedule::once();
    s.confirm = r.confirm.as_ref().is_some_and(|c| c.value);

    if let Some(tz) = &r.timezone {
        match tz.value.trim().parse::<Tz>() {
            Ok(zone) => s.zone = zone,
            Err(_) => problems.at(
                tz.pos,
                format!("unknown time zone `{}`: use an IANA name such as `Europe/Paris`, `America/New_York` or `UTC`", tz.value),
            ),
        }
    }

    match (&r.at, &r.cron) {
        (Some(_), Some(cron)) => problems.at(
            cron.pos,
            "`at` and `cron` are both set: keep `at` for one run or `cron` for a recurring delivery",
        ),
        (Some(at), None) => match DateTime::parse_from_rfc3339(at.value.trim()) {
            Ok(t) => s.when = When::At { at: t.with_timezone(&Utc) },
            Err(e) => problems.at(
                at.pos,
                format!("`at: {}` is not an RFC 3339 instant with offset ({e}): write e.g. `2026-12-01T09:00:00+01:00`", at.value),
            ),
        },
        (None, Some(cron)) => match parse_cron(&cron.value) {
            Ok(c) => {
                s.when = When::Cron { cron: cron.value.trim().to_string() };
                s.cron = Some(c);
            }
            Err(e) => problems.at(cron.pos, e),
        },
        (None, None) => {
            let only_confirm = "without `at` or `cron` the delivery is sent once, at once, and `schedule` may hold only `confirm`";
            let extra: [(&str, Option<Pos>); 8] = [
                ("timezone", r.timezone.as_ref().map(|f| f.pos)),
                ("aggregation", r.aggregation.as_ref().map(|f| f.pos)),
                ("starts", r.starts.as_ref().map(|f| f.pos)),
                ("ends", r.ends.as_ref().map(|f| f.pos)),
                ("catch_up", r.catch_up.as_ref().map(|f| f.pos)),
                ("prepare_ahead", r.prepare_ahead.as_ref().map(|f| f.pos)),
                ("confirm_deadline", r.confirm_deadline.as_ref().map(|f| f.pos)),
                ("", None),
            ];
            for (name, pos) in extra {
                if let Some(pos) = pos {
                    problems.at(pos, format!("`{name}` is set but {only_confirm}: add `at` or `cron`, or remove `{name}`"));
                }
            }
        }
    }

    if let Some(agg) = &r.aggregation {
        let choices = [
            ("none", Aggregation::None),
            ("day", Aggregation::Day),
            ("week", Aggregation::Week),
            ("month", Aggregation::Month),
        ];
        if let Some(a) = parse_choice(agg, "aggregation", &choices, problems) {
            s.aggregation = a;
            if r.at.is_some() && r.cron.is_none() && a != Aggregation::None {
                problems.at(
                    agg.pos,
                    "`aggregation` needs `cron`: a one-shot delivery has a single run to report",
                );
            }
        }
    }
    if let Some(c) = &r.confirm
        && c.value
        && s.aggregation != Aggregation::None
    {
        problems.at(
            c.pos,
            format!(
                "`confirm: true` is not allowed with `aggregation: {}`: an aggregated recurring delivery cannot ask for confirmation; set `aggregation: none` or remove `confirm`",
                r.aggregation.as_ref().map_or("", |a| a.value.as_str())
            ),
        );
    }
    if let Some(cu) = &r.catch_up {
        let choices = [("latest", CatchUp::Latest), ("skip", CatchUp::Skip)];
        if let Some(c) = parse_choice(cu, "catch_up", &choices, problems) {
            s.catch_up = c;
        }
    }
    if let Some(pa) = &r.prepare_ahead {
        match parse_duration(&pa.value) {
            Ok(d) => s.prepare_ahead = d,
            Err(e) => problems.at(pa.pos, format!("`prepare_ahead`: {e}")),
        }
    }
    if let Some(cd) = &r.confirm_deadline {
        match parse_duration(&cd.value) {
            Ok(d) if d.is_zero() => problems.at(cd.pos, "`confirm_deadline` is zero: a pending run would expire at once; give a positive duration such as `6h`"),
            Ok(d) => s.confirm_deadline = Some(d),
            Err(e) => problems.at(cd.pos, format!("`confirm_deadline`: {e}")),
        }
    }
    let bound = |f: &Option<Sp<String>>, b: Bound, name: &str, problems: &mut Problems| {
        let f = f.as_ref()?;
        parse_bound(&f.value, s.zone, b)
            .map_err(|e| problems.at(f.pos, format!("`{name}`: {e}")))
            .ok()
    };
    let starts = bound(&r.starts, Bound::Start, "starts", problems);
    let ends = bound(&r.ends, Bound::End, "ends", problems);
    if let (Some(a), Some(b), Some(end)) = (starts, ends, &r.ends)
        && b < a
    {
        problems.at(
            end.pos,
            format!("`ends` ({b}) is before `starts` ({a}): the window would hold no occurrence"),
        );
    }
    s.starts = starts;
    s.ends = ends;
    (problems.len() == before).then_some(s)
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;

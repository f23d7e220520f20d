//! Reading a schedule from a delivery file: every rule of the `schedule`
//! block, each problem recorded at its node.

use super::{Aggregation, CatchUp, Schedule, When, parse_cron};
use crate::definitions::duration::parse_duration;
use crate::definitions::errors::{Pos, Problems};
use crate::definitions::model::{RawSchedule, Sp};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

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

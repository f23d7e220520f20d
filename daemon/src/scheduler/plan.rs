//! Which occurrence of a delivery comes next, and which missed ones to
//! catch up: pure functions of the schedule, the stored cursor and now.

use crate::definitions::{CatchUp, Delivery, When};
use crate::runs::RunId;
use chrono::{DateTime, Utc};

/// Occurrences looked at when catching up after a long stop, at most; a
/// per-minute cron down for a year would otherwise walk 500,000 instants.
const MAX_CATCH_UP_STEPS: usize = 100_000;

/// One occurrence the scheduler will turn into a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    /// The run id it becomes.
    pub run_id: RunId,
    /// Its instant (`scheduled_for`).
    pub instant: DateTime<Utc>,
    /// When to create and prepare its run (`instant − prepare_ahead`).
    pub prepare_at: DateTime<Utc>,
    /// Whether creating it moves the delivery's cursor (recurring only).
    pub moves_cursor: bool,
}

/// What to do for one delivery now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// A missed occurrence to create at once (`catch_up: latest`).
    pub catch_up: Option<Occurrence>,
    /// The cursor to store after the catch-up decision, if it moves.
    pub cursor: Option<DateTime<Utc>>,
    /// The next occurrence, if the schedule has one.
    pub upcoming: Option<Occurrence>,
}

/// Plans a delivery given the stored cursor (`None` on first sight) and now.
pub fn plan(delivery: &Delivery, cursor: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Plan {
    let schedule = delivery.schedule();
    let ahead = chrono::Duration::from_std(schedule.prepare_ahead()).unwrap_or_default();
    let occurrence = |instant: DateTime<Utc>, moves_cursor| Occurrence {
        run_id: RunId::at(delivery.id(), instant),
        instant,
        prepare_at: instant - ahead,
        moves_cursor,
    };
    match schedule.when() {
        When::Once => Plan {
            upcoming: Some(Occurrence {
                run_id: RunId::once(delivery.id()),
                instant: now,
                prepare_at: now,
                moves_cursor: false,
            }),
            ..Plan::default()
        },
        When::At { at } => Plan {
            upcoming: Some(occurrence(*at, false)),
            ..Plan::default()
        },
        When::Cron { .. } => {
            let Some(cursor) = cursor else {
                // First sight: nothing before now is owed.
                return Plan {
                    cursor: Some(now),
                    upcoming: schedule.next_after(now).map(|i| occurrence(i, true)),
                    ..Plan::default()
                };
            };
            let latest_missed = latest_missed(delivery, cursor, now);
            let from = latest_missed.unwrap_or(cursor);
            Plan {
                catch_up: latest_missed
                    .filter(|_| schedule.catch_up() == CatchUp::Latest)
                    .map(|i| occurrence(i, true)),
                cursor: latest_missed,
                upcoming: schedule.next_after(from).map(|i| occurrence(i, true)),
            }
        }
    }
}

/// The last occurrence after `cursor` whose instant is at or before `now`.
fn latest_missed(
    delivery: &Delivery,
    cursor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut latest = None;
    let mut at = cursor;
    for _ in 0..MAX_CATCH_UP_STEPS {
        match delivery.schedule().next_after(at) {
            Some(next) if next <= now => {
                latest = Some(next);
                at = next;
            }
            _ => break,
        }
    }
    latest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::definitions::{ChannelCatalog, ValidationContext, load_file};
    use chrono::TimeZone;

    /// Loads a delivery with an inline audience and the given `schedule:` body.
    fn delivery(schedule: &str) -> Delivery {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.yaml");
        let text = format!(
            "channel: outbox\naudience:\n  recipients: [{{id: a}}]\ncontent: {{body: hi}}\nschedule:\n{schedule}"
        );
        std::fs::write(&path, text).unwrap();
        let ctx = ValidationContext {
            deliveries_dir: dir.path().to_path_buf(),
            audience_roots: Vec::new(),
            channels: ChannelCatalog::builtin(),
        };
        load_file(&path, &ctx).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn first_sight_of_a_cron_owes_nothing_before_now() {
        let d = delivery("  cron: \"0 9 * * *\"\n");
        let now = utc(2026, 12, 1, 12, 0);
        let plan = plan(&d, None, now);
        assert_eq!(plan.catch_up, None);
        assert_eq!(plan.cursor, Some(now));
        let upcoming = plan.upcoming.unwrap();
        assert_eq!(upcoming.instant, utc(2026, 12, 2, 9, 0));
        assert_eq!(upcoming.run_id.as_str(), "d@20261202T090000Z");
    }

    #[test]
    fn catch_up_latest_runs_only_the_most_recent_missed_occurrence() {
        let d = delivery("  cron: \"0 9 * * *\"\n  catch_up: latest\n");
        let cursor = utc(2026, 12, 1, 9, 0);
        let now = utc(2026, 12, 4, 12, 0);
        let plan = plan(&d, Some(cursor), now);
        assert_eq!(plan.catch_up.unwrap().instant, utc(2026, 12, 4, 9, 0));
        assert_eq!(plan.cursor, Some(utc(2026, 12, 4, 9, 0)));
        assert_eq!(plan.upcoming.unwrap().instant, utc(2026, 12, 5, 9, 0));
    }

    #[test]
    fn catch_up_skip_runs_none_and_moves_on() {
        let d = delivery("  cron: \"0 9 * * *\"\n  catch_up: skip\n");
        let plan = plan(&d, Some(utc(2026, 12, 1, 9, 0)), utc(2026, 12, 4, 12, 0));
        assert_eq!(plan.catch_up, None);
        assert_eq!(plan.cursor, Some(utc(2026, 12, 4, 9, 0)));
        assert_eq!(plan.upcoming.unwrap().instant, utc(2026, 12, 5, 9, 0));
    }

    #[test]
    fn prepare_ahead_moves_the_preparation_not_the_instant() {
        let d = delivery("  cron: \"0 9 * * *\"\n  prepare_ahead: 2h\n");
        let upcoming = plan(&d, None, utc(2026, 12, 1, 12, 0)).upcoming.unwrap();
        assert_eq!(upcoming.instant, utc(2026, 12, 2, 9, 0));
        assert_eq!(upcoming.prepare_at, utc(2026, 12, 2, 7, 0));
    }

    #[test]
    fn a_one_shot_in_the_past_is_due_at_once_with_its_own_id() {
        let d = delivery("  at: 2026-11-01T09:00:00+01:00\n");
        let upcoming = plan(&d, None, utc(2026, 12, 1, 12, 0)).upcoming.unwrap();
        assert_eq!(upcoming.run_id.as_str(), "d@20261101T080000Z");
        assert!(upcoming.prepare_at <= utc(2026, 12, 1, 12, 0));
        assert!(!upcoming.moves_cursor);
    }

    #[test]
    fn at_once_is_the_once_run_due_now() {
        let d = delivery("  confirm: true\n");
        let now = utc(2026, 12, 1, 12, 0);
        let upcoming = plan(&d, None, now).upcoming.unwrap();
        assert_eq!(upcoming.run_id.as_str(), "d@once");
        assert_eq!(upcoming.prepare_at, now);
    }

    /// G8: walking a Paris `30 2 * * *` through both 2026 changes with the
    /// scheduler's own cursor logic gives one occurrence per day, the
    /// skipped 02:30 moved to 03:00 and the repeated 02:30 run once.
    #[test]
    fn dst_changes_give_one_run_per_day_in_paris() {
        let d = delivery("  cron: \"30 2 * * *\"\n  timezone: Europe/Paris\n");
        for (start, expected) in [
            // 29 March 2026: 02:00 → 03:00 local; 03:00 CEST is 01:00 UTC.
            (
                utc(2026, 3, 28, 12, 0),
                [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)],
            ),
            // 25 October 2026: 03:00 → 02:00 local; the first 02:30 (CEST) is 00:30 UTC.
            (
                utc(2026, 10, 24, 12, 0),
                [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
            ),
        ] {
            let mut cursor = start;
            let mut seen = Vec::new();
            for _ in 0..2 {
                let next = plan(&d, Some(cursor), cursor).upcoming.unwrap();
                seen.push(next.instant);
                cursor = next.instant;
            }
            assert_eq!(seen, expected);
        }
    }
    /// G8 in New York: the spring change skips 02:00–03:00 (a `30 2` cron
    /// runs once at 03:00 EDT), the autumn change repeats 01:00–02:00 (a
    /// `30 1` cron runs once, at the first 01:30, EDT).
    #[test]
    fn dst_changes_give_one_run_per_day_in_new_york() {
        for (cron, start, expected) in [
            // 8 March 2026: 02:00 EST → 03:00 EDT; 03:00 EDT is 07:00 UTC.
            (
                "30 2 * * *",
                utc(2026, 3, 7, 12, 0),
                [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)],
            ),
            // 1 November 2026: 02:00 EDT → 01:00 EST; the first 01:30 (EDT) is 05:30 UTC.
            (
                "30 1 * * *",
                utc(2026, 10, 31, 12, 0),
                [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
            ),
        ] {
            let d = delivery(&format!(
                "  cron: \"{cron}\"\n  timezone: America/New_York\n"
            ));
            let mut cursor = start;
            let mut seen = Vec::new();
            for _ in 0..2 {
                let next = plan(&d, Some(cursor), cursor).upcoming.unwrap();
                seen.push(next.instant);
                cursor = next.instant;
            }
            assert_eq!(seen, expected, "{cron}");
        }
    }

    /// A loop that fell behind by several occurrences (a store outage)
    /// plans from just before the first missed one: `latest` creates only
    /// the most recent, `skip` none, and both move on to the next future one.
    #[test]
    fn falling_behind_catches_up_by_the_delivery_policy() {
        let first_missed = utc(2026, 12, 1, 9, 0);
        let now = utc(2026, 12, 1, 9, 4) + chrono::Duration::seconds(30);
        let cursor = first_missed - chrono::Duration::milliseconds(1);
        let latest = delivery("  cron: \"* * * * *\"\n  catch_up: latest\n");
        let plan_latest = plan(&latest, Some(cursor), now);
        assert_eq!(
            plan_latest.catch_up.unwrap().instant,
            utc(2026, 12, 1, 9, 4)
        );
        assert_eq!(
            plan_latest.upcoming.unwrap().instant,
            utc(2026, 12, 1, 9, 5)
        );
        let skip = delivery("  cron: \"* * * * *\"\n  catch_up: skip\n");
        let plan_skip = plan(&skip, Some(cursor), now);
        assert_eq!(plan_skip.catch_up, None);
        assert_eq!(plan_skip.cursor, Some(utc(2026, 12, 1, 9, 4)));
        assert_eq!(plan_skip.upcoming.unwrap().instant, utc(2026, 12, 1, 9, 5));
    }
}

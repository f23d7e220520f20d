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

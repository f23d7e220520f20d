use super::*;
use crate::definitions::errors::Problems;
use crate::definitions::model::{RawSchedule, Sp};
use std::path::Path;

fn schedule(yaml: &str) -> Result<Schedule, Vec<String>> {
    let raw: Sp<RawSchedule> = serde_saphyr::from_str(yaml).expect("test YAML parses");
    let mut problems = Problems::new(Path::new("s.yaml"));
    let s = from_raw(Some(&raw), &mut problems);
    let errors: Vec<String> = problems
        .into_errors()
        .iter()
        .map(|e| e.to_string())
        .collect();
    s.ok_or(errors)
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn occurrences(s: &Schedule, from: &str, to: &str) -> Vec<DateTime<Utc>> {
    let (mut t, end) = (utc(from), utc(to));
    let mut out = Vec::new();
    while let Some(next) = s.next_after(t) {
        if next > end {
            break;
        }
        out.push(next);
        t = next;
    }
    out
}

#[test]
fn nine_am_paris_follows_the_march_change() {
    let s = schedule("cron: '0 9 * * *'\ntimezone: Europe/Paris\n").unwrap();
    let got = occurrences(&s, "2026-03-27T12:00:00Z", "2026-03-29T12:00:00Z");
    assert_eq!(
        got,
        vec![utc("2026-03-28T08:00:00Z"), utc("2026-03-29T07:00:00Z")]
    );
}

#[test]
fn skipped_hour_in_paris_spring_runs_once_at_the_next_valid_instant() {
    let s = schedule("cron: '30 2 * * *'\ntimezone: Europe/Paris\n").unwrap();
    let got = occurrences(&s, "2026-03-28T12:00:00Z", "2026-03-30T12:00:00Z");
    // 29 Mar 2026: 02:00 jumps to 03:00 local (01:00 UTC).
    assert_eq!(
        got,
        vec![utc("2026-03-29T01:00:00Z"), utc("2026-03-30T00:30:00Z")]
    );
}

#[test]
fn repeated_hour_in_paris_autumn_runs_once() {
    let s = schedule("cron: '30 2 * * *'\ntimezone: Europe/Paris\n").unwrap();
    let got = occurrences(&s, "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z");
    // 25 Oct 2026: 02:30 happens at 00:30 UTC (CEST) and 01:30 UTC (CET); only the first runs.
    assert_eq!(
        got,
        vec![utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]
    );
}

#[test]
fn new_york_skipped_and_repeated_hours_run_once() {
    let s = schedule("cron: '30 2 * * *'\ntimezone: America/New_York\n").unwrap();
    // 8 Mar 2026: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
    let spring = occurrences(&s, "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z");
    assert_eq!(
        spring,
        vec![utc("2026-03-08T07:00:00Z"), utc("2026-03-09T06:30:00Z")]
    );
    // 1 Nov 2026: 01:00-02:00 repeats; 02:30 EST happens once (07:30 UTC).
    let autumn = occurrences(&s, "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z");
    assert_eq!(
        autumn,
        vec![utc("2026-11-01T07:30:00Z"), utc("2026-11-02T07:30:00Z")]
    );
}

#[test]
fn new_york_repeated_hour_one_thirty_runs_once() {
    let s = schedule("cron: '30 1 * * *'\ntimezone: America/New_York\n").unwrap();
    let got = occurrences(&s, "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z");
    assert_eq!(
        got,
        vec![utc("2026-11-01T05:30:00Z"), utc("2026-11-02T06:30:00Z")]
    );
}

#[test]
fn day_of_month_or_day_of_week_matches_either_as_in_vixie_cron() {
    // The 1st of the month OR any Monday.
    let s = schedule("cron: '0 9 1 * MON'\n").unwrap();
    let got = occurrences(&s, "2026-11-28T00:00:00Z", "2026-12-09T00:00:00Z");
    assert_eq!(
        got,
        vec![
            utc("2026-11-30T09:00:00Z"),
            utc("2026-12-01T09:00:00Z"),
            utc("2026-12-07T09:00:00Z")
        ]
    );
}

#[test]
fn six_field_cron_has_seconds_first() {
    let s = schedule("cron: '15 0 9 * * *'\n").unwrap();
    assert_eq!(
        s.next_after(utc("2026-12-01T00:00:00Z")),
        Some(utc("2026-12-01T09:00:15Z"))
    );
}

#[test]
fn next_after_is_strictly_after() {
    let s = schedule("cron: '0 9 * * *'\n").unwrap();
    assert_eq!(
        s.next_after(utc("2026-12-01T09:00:00Z")),
        Some(utc("2026-12-02T09:00:00Z"))
    );
}

#[test]
fn window_dates_are_whole_days_in_the_zone_and_inclusive() {
    let s = schedule(
        "cron: '0 0 * * *'\ntimezone: Europe/Paris\nstarts: 2026-12-01\nends: 2026-12-03\n",
    )
    .unwrap();
    let got = occurrences(&s, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
    assert_eq!(
        got,
        vec![
            utc("2026-11-30T23:00:00Z"),
            utc("2026-12-01T23:00:00Z"),
            utc("2026-12-02T23:00:00Z")
        ]
    );
}

#[test]
fn window_instants_are_inclusive() {
    let s =
        schedule("cron: '0 9 * * *'\nstarts: 2026-12-01T09:00:00Z\nends: 2026-12-02T09:00:00Z\n")
            .unwrap();
    let got = occurrences(&s, "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z");
    assert_eq!(
        got,
        vec![utc("2026-12-01T09:00:00Z"), utc("2026-12-02T09:00:00Z")]
    );
}

#[test]
fn one_shot_yields_its_instant_once() {
    let s = schedule("at: 2026-12-01T09:00:00+01:00\n").unwrap();
    assert_eq!(
        s.next_after(utc("2026-11-01T00:00:00Z")),
        Some(utc("2026-12-01T08:00:00Z"))
    );
    assert_eq!(s.next_after(utc("2026-12-01T08:00:00Z")), None);
    assert_eq!(
        s.latest_at_or_before(utc("2027-01-01T00:00:00Z")),
        Some(utc("2026-12-01T08:00:00Z"))
    );
}

#[test]
fn no_time_means_at_once_and_has_no_instant() {
    let s = schedule("confirm: true\n").unwrap();
    assert_eq!(s.when(), &When::Once);
    assert!(s.confirm());
    assert_eq!(s.next_after(utc("2026-11-01T00:00:00Z")), None);
}

#[test]
fn confirm_deadline_defaults_to_next_occurrence_or_a_day() {
    let weekly = schedule("cron: '0 9 * * MON'\n").unwrap();
    let monday = utc("2026-12-07T09:00:00Z");
    assert_eq!(
        weekly.confirm_deadline_for(monday),
        utc("2026-12-14T09:00:00Z")
    );
    let once = schedule("at: 2026-12-07T09:00:00Z\n").unwrap();
    assert_eq!(
        once.confirm_deadline_for(monday),
        utc("2026-12-08T09:00:00Z")
    );
    let explicit =
        schedule("cron: '0 9 * * MON'\nconfirm_deadline: 6h\nprepare_ahead: 2h\n").unwrap();
    assert_eq!(
        explicit.confirm_deadline_for(monday),
        utc("2026-12-07T15:00:00Z")
    );
    assert_eq!(explicit.prepare_ahead(), Duration::from_secs(7200));
}

#[test]
fn aggregation_periods_are_computed_in_the_zone() {
    let week = schedule("cron: '0 0 * * *'\ntimezone: Europe/Paris\naggregation: week\n").unwrap();
    // Sunday 6 Dec 23:30 UTC is Monday 7 Dec in Paris: ISO week 50.
    assert_eq!(
        week.aggregation_period(utc("2026-12-06T23:30:00Z"))
            .as_deref(),
        Some("2026-W50")
    );
    assert_eq!(
        week.aggregation_period(utc("2026-12-03T10:00:00Z"))
            .as_deref(),
        Some("2026-W49")
    );
    let day = schedule("cron: '0 0 * * *'\ntimezone: Europe/Paris\naggregation: day\n").unwrap();
    assert_eq!(
        day.aggregation_period(utc("2026-12-06T23:30:00Z"))
            .as_deref(),
        Some("2026-12-07")
    );
    let month = schedule("cron: '0 0 * * *'\naggregation: month\n").unwrap();
    assert_eq!(
        month
            .aggregation_period(utc("2026-12-06T23:30:00Z"))
            .as_deref(),
        Some("2026-12")
    );
    let none = schedule("cron: '0 0 * * *'\n").unwrap();
    assert_eq!(none.aggregation_period(utc("2026-12-06T23:30:00Z")), None);
}

#[test]
fn every_schedule_problem_is_reported_at_its_node() {
    let errors = schedule(
        "at: 2026-12-01T09:00:00Z\ncron: '0 9 * * *'\ntimezone: Mars/Olympus\ncatch_up: often\nprepare_ahead: soon\n",
    )
    .unwrap_err();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(
        errors[0].starts_with("s.yaml:3:11: unknown time zone `Mars/Olympus`"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("s.yaml:2:7: `at` and `cron` are both set"),
        "{errors:?}"
    );
    assert!(
        errors[2].contains("s.yaml:4:11: `catch_up: often`"),
        "{errors:?}"
    );
    assert!(
        errors[3].contains("s.yaml:5:16: `prepare_ahead`"),
        "{errors:?}"
    );
}

#[test]
fn without_a_time_schedule_holds_only_confirm() {
    let errors = schedule("confirm: true\ntimezone: UTC\n").unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].contains("2:11: `timezone` is set but without `at` or `cron`"),
        "{errors:?}"
    );
}

#[test]
fn aggregation_needs_cron_and_refuses_confirm() {
    let errors = schedule("at: 2026-12-01T09:00:00Z\naggregation: week\n").unwrap_err();
    assert!(
        errors[0].contains("`aggregation` needs `cron`"),
        "{errors:?}"
    );
    let errors = schedule("cron: '0 9 * * *'\naggregation: week\nconfirm: true\n").unwrap_err();
    assert!(
        errors[0].contains("3:10: `confirm: true` is not allowed with `aggregation: week`"),
        "{errors:?}"
    );
    assert!(schedule("cron: '0 9 * * *'\naggregation: none\nconfirm: true\n").is_ok());
}

#[test]
fn cron_with_wrong_field_count_or_values_is_refused() {
    let errors = schedule("cron: '0 9 * *'\n").unwrap_err();
    assert!(errors[0].contains("has 4 fields"), "{errors:?}");
    let errors = schedule("cron: '0 25 * * *'\n").unwrap_err();
    assert!(
        errors[0].contains("invalid cron `0 25 * * *` (number out of bounds): the fields are minute 0-59, hour 0-23,"),
        "{errors:?}"
    );
    let errors = schedule("cron: '0 9 * * FUNDAY'\n").unwrap_err();
    assert!(
        errors[0].contains("day of week 0-7 or SUN-SAT") && !errors[0].contains("Component error"),
        "{errors:?}"
    );
}

#[test]
fn ends_before_starts_is_refused() {
    let errors = schedule("cron: '0 9 * * *'\nstarts: 2026-12-05\nends: 2026-12-01\n").unwrap_err();
    assert!(errors[0].contains("3:7: `ends`"), "{errors:?}");
}

#[test]
fn schedule_round_trips_through_its_snapshot_form() {
    let s = schedule("cron: '0 9 * * MON'\ntimezone: Europe/Paris\nconfirm: true\nstarts: 2026-12-01\nprepare_ahead: 2h\n").unwrap();
    let json = serde_json::to_string(&s).unwrap();
    let back: Schedule = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    assert_eq!(
        back.next_after(utc("2026-12-01T00:00:00Z")),
        Some(utc("2026-12-07T08:00:00Z"))
    );
}

//! The conformance suite every [`Store`](super::Store) backend passes, so the embedded
//! and the Redis backends cannot drift apart.
//!
//! Each behaviour is one `pub async fn` taking a fresh, empty
//! [`SharedStore`](super::SharedStore); [`conformance_tests!`] expands to one `#[tokio::test]`
//! per behaviour inside a module named after the backend, so a failure
//! names both. Instants are fixed (never the system clock), so the suite
//! also checks that backends take time from the `now` arguments.
//!
//! Where the contract leaves an instant free (a run "due now" may be
//! recorded at any instant not after the operation's `now`), the tests
//! assert only what the contract fixes.

mod actions;
mod creation;
mod fixtures;
mod fused;
mod leases;
mod lists;
mod records;
mod retention;

pub use actions::*;
pub use creation::*;
pub use fixtures::*;
pub use fused::*;
pub use leases::*;
pub use lists::*;
pub use records::*;
pub use retention::*;

/// Expands to one `#[tokio::test]` per behaviour of the suite, in a module
/// named `$backend`; `$make` is an `async fn() -> SharedStore` giving a
/// fresh, empty store each time.
macro_rules! conformance_tests {
    ($backend:ident, $make:path) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::store::conformance::conformance_tests!(@each $make;
                ping_answers,
                create_run_is_idempotent,
                concurrent_creates_of_one_run_create_it_once,
                a_new_run_is_preparing_and_due_now,
                unknown_runs_read_as_none_and_actions_as_not_found,
                schedule_cursors_move_forward_only,
                schedule_cursors_move_in_batches,
                preparation_lease_excludes_other_owners_and_delays_the_run,
                preparation_cannot_be_claimed_once_the_run_left_preparing,
                finishing_preparation_with_confirm_makes_the_run_pending_until_its_deadline,
                finishing_preparation_before_the_instant_schedules_the_run,
                finishing_preparation_at_the_instant_starts_sending,
                finishing_preparation_of_a_cancelled_run_leaves_it_cancelled,
                chunks_cannot_be_rewritten_once_preparation_ended,
                a_run_without_chunks_is_sent_as_soon_as_it_starts_sending,
                actions_follow_the_state_action_table,
                confirm_before_the_instant_schedules_and_records_the_confirmer,
                confirm_after_the_instant_starts_sending,
                a_confirm_past_the_deadline_expires_the_run_and_conflicts,
                actions_past_the_deadline_expire_a_pending_run_first,
                concurrent_confirms_of_one_run_succeed_once,
                cancel_records_who_when_why_and_takes_the_run_off_the_agenda,
                a_run_cancelled_before_sending_records_no_outcome,
                expire_only_once_the_confirm_deadline_has_passed,
                start_sending_only_once_the_instant_has_come,
                fail_run_stops_any_run_that_is_not_final,
                pause_stops_claims_and_resume_makes_the_run_due,
                chunks_are_claimed_lowest_first_each_by_one_owner,
                concurrent_claims_never_hand_one_chunk_to_two_owners,
                a_fully_leased_run_is_due_when_the_first_lease_expires,
                an_expired_lease_is_reclaimed_with_only_unfinished_recipients,
                renewing_a_lease_fails_once_another_owner_took_it,
                a_stale_owner_cannot_complete_a_chunk,
                completing_every_chunk_sends_the_run,
                finishing_and_claiming_writes_the_last_chunk_and_claims_the_first,
                finishing_and_claiming_a_one_chunk_run_claims_its_chunk,
                finishing_and_claiming_a_run_that_must_wait_claims_nothing,
                finishing_and_claiming_a_cancelled_run_leaves_it_cancelled,
                completing_a_chunk_tells_whether_another_is_claimable,
                taking_a_run_claims_preparation_only_when_free,
                taking_a_scheduled_run_at_its_instant_starts_it_and_claims_a_chunk,
                taking_many_runs_gives_each_the_result_of_taking_it_alone,
                recording_the_last_batch_of_a_chunk_completes_it,
                recording_many_last_batches_at_once_gives_each_its_own_result,
                creating_and_taking_a_run_holds_its_preparation_for_the_creator,
                a_preparation_given_back_is_due_at_once_for_any_instance,
                a_released_chunk_is_claimable_at_once,
                a_run_cancelled_while_sending_hands_out_its_chunks_as_cancelled,
                a_run_cancelled_while_paused_hands_out_its_chunks_as_cancelled,
                outcomes_are_set_once_and_counted_once,
                recording_a_sent_batch_resets_the_soft_bounces_of_its_takers,
                excluded_outcomes_are_recorded_but_not_counted,
                history_lists_outcomes_newest_first_in_pages,
                provider_message_ids_find_their_recipient,
                amending_a_delivered_outcome_moves_one_count,
                amending_an_unknown_recipient_gives_none,
                tracking_is_unique_per_recipient_and_any_action_implies_an_open,
                recount_rebuilds_counters_from_the_records,
                throttle_allows_a_seconds_burst_then_spaces_messages,
                throttles_of_different_deliveries_are_independent,
                suppress_is_idempotent_and_the_denylist_wins,
                concurrent_lookups_each_get_their_own_answer,
                suppressions_are_listed_by_address_in_pages,
                soft_bounces_quarantine_at_the_threshold_until_reset,
                runs_are_listed_newest_first_with_filters_and_pages,
                a_cursor_no_page_gave_is_refused_as_a_bad_cursor,
                due_runs_come_soonest_first_up_to_the_limit,
                runs_are_counted_by_state,
                changes_are_notified_when_a_run_becomes_due_sooner,
                a_shared_secret_is_set_once_and_then_kept,
                concurrent_shared_secret_candidates_agree_on_one,
                retention_purges_finished_runs_once_their_time_has_passed,
                purging_a_run_goes_in_bounded_steps,
                history_past_its_retention_goes,
                erasing_a_profile_clears_finished_runs_now_and_others_when_they_finish,
                erasure_steps_are_bounded,
            );
        }
    };
    (@each $make:path; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::store::conformance::$name($make().await).await;
            }
        )+
    };
}
pub(crate) use conformance_tests;

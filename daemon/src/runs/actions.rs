//! What confirmers do to a run: confirm, cancel, pause, resume. Each is one
//! atomic store operation (the state × action table of the spec README is
//! enforced by the store, so two instances confirming at once cannot both
//! win); this module records who, logs the change, and wakes the scheduler
//! so a confirmed run whose instant has come is sent at once.

use super::{RunId, RunState};
use crate::engine::Engine;
use crate::store::{CancelReason, StoreResult, Transition};
use tracing::info;

/// An action of a user on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `pending` → `scheduled` (or `sending` when due).
    Confirm,
    /// Any state but final → `cancelled`.
    Cancel,
    /// `sending` → `paused`.
    Pause,
    /// `paused` → `sending`.
    Resume,
}

impl Action {
    /// The action's name in paths, logs and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Confirm => "confirm",
            Action::Cancel => "cancel",
            Action::Pause => "pause",
            Action::Resume => "resume",
        }
    }
}

/// Applies `action` to run `id` on behalf of user `by`.
pub async fn act(engine: &Engine, action: Action, id: &RunId, by: &str) -> StoreResult<Transition> {
    let store = &engine.store;
    let now = engine.clock.now();
    let transition = match action {
        Action::Confirm => store.confirm(id, by, now).await?,
        Action::Cancel => {
            store
                .cancel(id, Some(by), CancelReason::Cancelled, now)
                .await?
        }
        Action::Pause => store.pause(id, by, now).await?,
        Action::Resume => store.resume(id, by, now).await?,
    };
    match &transition {
        Transition::Done(run) => {
            info!(delivery_id = %run.delivery_id, run_id = %run.id, user = ?by, action = action.as_str(), state = %run.state, "Run {}.", past(action));
            // The run may be due now (confirmed after its instant, resumed,
            // or cancelled mid-send with recipients to mark).
            engine.wake.notify_one();
        }
        Transition::Conflict(state) => {
            info!(delivery_id = id.delivery_id(), run_id = %id, user = ?by, action = action.as_str(), state = %state, "Action refused in the run's state.");
        }
        Transition::NotFound => {}
    }
    Ok(transition)
}

fn past(action: Action) -> &'static str {
    match action {
        Action::Confirm => "confirmed",
        Action::Cancel => "cancelled",
        Action::Pause => "paused",
        Action::Resume => "resumed",
    }
}

/// Whether `action` is allowed in `state` (spec README, "What each action
/// does in each state"); the store enforces it, the page uses it to show
/// only the buttons that can work.
pub fn allowed(action: Action, state: RunState) -> bool {
    match action {
        Action::Confirm => state == RunState::Pending,
        Action::Cancel => !state.is_final(),
        Action::Pause => state == RunState::Sending,
        Action::Resume => state == RunState::Paused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_by_action_table_of_the_spec() {
        use RunState::*;
        let table = [
            (Action::Confirm, vec![Pending]),
            (
                Action::Cancel,
                vec![Preparing, Pending, Scheduled, Sending, Paused],
            ),
            (Action::Pause, vec![Sending]),
            (Action::Resume, vec![Paused]),
        ];
        for (action, ok) in table {
            for state in RunState::ALL {
                assert_eq!(
                    allowed(action, *state),
                    ok.contains(state),
                    "{action:?} in {state}"
                );
            }
        }
    }
}

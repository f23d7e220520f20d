//! The Lua scripts, one per state change, loaded once and run by EVALSHA
//! (the `redis` crate loads a script again when the server lost it). The
//! daemon loads them all when Redis first answers, so a burst of calls
//! right after a start does not meet `NOSCRIPT` and load each again.

use redis::Script;
use std::sync::LazyLock;

/// A run script: the shared prelude (agenda helpers), the helpers it
/// shares with other scripts (`lib_*.lua`), then the script body.
macro_rules! run_script {
    ($name:ident, $file:literal $(, $lib:literal)*) => {
        #[doc = concat!("`lua/", $file, "` with the prelude.")]
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("lua/prelude.lua"),
                $(include_str!(concat!("lua/", $lib)),)*
                include_str!(concat!("lua/", $file))
            ))
        });
    };
}

/// A script that needs no agenda helpers: the helpers it shares with
/// other scripts (`lib_*.lua`), then the script body.
macro_rules! plain_script {
    ($name:ident, $file:literal $(, $lib:literal)*) => {
        #[doc = concat!("`lua/", $file, "`.")]
        pub(super) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                $(include_str!(concat!("lua/", $lib)),)*
                include_str!(concat!("lua/", $file))
            ))
        });
    };
}

run_script!(CREATE_RUN, "create_run.lua");
run_script!(CLAIM_PREPARATION, "claim_preparation.lua");
run_script!(TAKE_DUE, "take_due.lua", "lib_claim.lua");
run_script!(
    FINISH_PREPARATION,
    "finish_preparation.lua",
    "lib_prepare.lua"
);
run_script!(
    FINISH_AND_CLAIM,
    "finish_and_claim.lua",
    "lib_prepare.lua",
    "lib_claim.lua"
);
run_script!(FAIL_RUN, "fail_run.lua");
run_script!(CONFIRM, "confirm.lua", "lib_late.lua");
run_script!(CANCEL, "cancel.lua", "lib_late.lua");
run_script!(PAUSE, "pause.lua", "lib_late.lua");
run_script!(RESUME, "resume.lua", "lib_late.lua");
run_script!(EXPIRE, "expire.lua");
run_script!(START_SENDING, "start_sending.lua");
run_script!(CLAIM_CHUNK, "claim_chunk.lua", "lib_claim.lua");
run_script!(COMPLETE_CHUNK, "complete_chunk.lua", "lib_complete.lua");
run_script!(
    RECORD_LAST,
    "record_last.lua",
    "lib_record.lua",
    "lib_complete.lua"
);
run_script!(RELEASE_CHUNK, "release_chunk.lua");
plain_script!(PUT_CHUNK, "put_chunk.lua");
run_script!(RENEW_LEASE, "renew_lease.lua");
plain_script!(RECORD_OUTCOMES, "record_outcomes.lua", "lib_record.lua");
plain_script!(TAKE_UNINDEXED, "take_unindexed.lua");
plain_script!(DONE_INDEXING, "done_indexing.lua");
plain_script!(AMEND_OUTCOME, "amend_outcome.lua");
plain_script!(RECORD_TRACKING, "record_tracking.lua");
plain_script!(RECOUNT, "recount.lua");
plain_script!(AGENDA_APPLY, "agenda_apply.lua");
plain_script!(ADVANCE_CURSORS, "advance_cursors.lua");
plain_script!(SUPPRESS, "suppress.lua");
plain_script!(UNSUPPRESS, "unsuppress.lua");
plain_script!(SOFT_BOUNCE, "soft_bounce.lua");
plain_script!(THROTTLE, "throttle.lua");
run_script!(PURGE_OUTCOMES, "purge_outcomes.lua");
run_script!(PURGE_RUN, "purge_run.lua");
run_script!(ERASE_FROM_RUN, "erase_from_run.lua");
plain_script!(ARCHIVE_HISTORY, "archive_history.lua");
plain_script!(TRIM_HISTORY, "trim_history.lua");

/// Every script, to load them all at once (`RedisStore::load_scripts`).
pub(super) fn all() -> [&'static Script; 35] {
    [
        &CREATE_RUN,
        &CLAIM_PREPARATION,
        &TAKE_DUE,
        &FINISH_PREPARATION,
        &FINISH_AND_CLAIM,
        &FAIL_RUN,
        &CONFIRM,
        &CANCEL,
        &PAUSE,
        &RESUME,
        &EXPIRE,
        &START_SENDING,
        &CLAIM_CHUNK,
        &COMPLETE_CHUNK,
        &RECORD_LAST,
        &RELEASE_CHUNK,
        &PUT_CHUNK,
        &RENEW_LEASE,
        &RECORD_OUTCOMES,
        &TAKE_UNINDEXED,
        &DONE_INDEXING,
        &AMEND_OUTCOME,
        &RECORD_TRACKING,
        &RECOUNT,
        &AGENDA_APPLY,
        &ADVANCE_CURSORS,
        &SUPPRESS,
        &UNSUPPRESS,
        &SOFT_BOUNCE,
        &THROTTLE,
        &PURGE_OUTCOMES,
        &PURGE_RUN,
        &ERASE_FROM_RUN,
        &ARCHIVE_HISTORY,
        &TRIM_HISTORY,
    ]
}

#[cfg(test)]
mod tests {
    /// A script left out of [`all`](super::all) would meet `NOSCRIPT` on
    /// its first calls after every start.
    #[test]
    fn every_script_file_is_loaded_at_start() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/redis/lua");
        let scripts = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.starts_with("lib_") && name != "prelude.lua")
            .count();
        assert_eq!(super::all().len(), scripts);
    }
}

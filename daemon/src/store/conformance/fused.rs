//! The common path in one step: ending preparation with the last chunk and
//! the first claim, and completions that say whether to claim again.

use super::fixtures::*;
use crate::runs::RunState;
use crate::store::*;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Claims preparation of `run`, writes every chunk but the last of
/// `sizes`, then finishes with the last and claims for `prep` at `now`.
async fn finish_claiming(
    store: &SharedStore,
    run: &NewRun,
    sizes: &[usize],
    now: DateTime<Utc>,
) -> (Transition, Option<ClaimedChunk>) {
    assert!(
        store
            .claim_preparation(&run.id, "prep", t(60), now)
            .await
            .unwrap()
    );
    let chunks: Vec<Chunk> = (0..sizes.len())
        .map(|c| chunk(&run.delivery_id, c as u32, sizes[c]))
        .collect();
    let (last, rest) = chunks.split_last().expect("one chunk at least");
    for c in rest {
        store.put_chunk(&run.id, c).await.unwrap();
    }
    let prepared = Prepared {
        targeted: sizes.iter().sum::<usize>() as u64,
        excluded_by_reason: BTreeMap::new(),
        chunks: sizes.len() as u32,
        preview: None,
    };
    let taken = store.run(&run.id).await.unwrap().expect("the run exists");
    let (transition, claimed) = store
        .finish_and_claim(&taken, "prep", &prepared, Some(last), t(90), now)
        .await
        .unwrap();
    if let Transition::Done(after) = &transition {
        // The run returned is the run stored, however the backend got it.
        let stored = store.run(&run.id).await.unwrap().expect("the run exists");
        assert_eq!(**after, stored);
    }
    (transition, claimed)
}

/// A run due now goes to sending with its last chunk written and its
/// first chunk claimed for the preparer; the other chunks stay claimable.
pub async fn finishing_and_claiming_writes_the_last_chunk_and_claims_the_first(store: SharedStore) {
    let run = new_run("digest", 0, false);
    assert!(store.create_run(&run).await.unwrap());
    let (transition, claimed) = finish_claiming(&store, &run, &[2, 1], t(1)).await;
    let after = done(Ok(transition));
    assert_eq!((after.state, after.chunks), (RunState::Sending, 2));
    let first = claimed.expect("the first chunk is claimed");
    assert_eq!(first.number, 0);
    assert_eq!(first.recipients, chunk("digest", 0, 2).recipients);
    let second = store
        .claim_chunk(&run.id, "b", t(90), t(2))
        .await
        .unwrap()
        .expect("the last chunk was written");
    assert_eq!(second.recipients, chunk("digest", 1, 1).recipients);
    assert!(
        store
            .claim_chunk(&run.id, "c", t(90), t(2))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !is_due(&store, &run.id, t(3)).await,
        "both chunks are leased"
    );
}

/// A run of one chunk, the common case, claims that chunk from the
/// last-chunk write itself, is not due while its lease holds, and is due
/// again once it ends.
pub async fn finishing_and_claiming_a_one_chunk_run_claims_its_chunk(store: SharedStore) {
    let run = new_run("single", 0, false);
    assert!(store.create_run(&run).await.unwrap());
    let (transition, claimed) = finish_claiming(&store, &run, &[3], t(1)).await;
    let after = done(Ok(transition));
    assert_eq!(
        (after.state, after.chunks, after.chunks_done),
        (RunState::Sending, 1, 0)
    );
    assert_eq!(after.counters.targeted, 3);
    assert_eq!(after.started_at, Some(t(1)));
    let only = claimed.expect("its only chunk is claimed");
    assert_eq!(only.number, 0);
    assert_eq!(only.recipients, chunk("single", 0, 3).recipients);
    assert!(!is_due(&store, &run.id, t(89)).await, "leased until t(90)");
    assert!(
        is_due(&store, &run.id, t(91)).await,
        "due once the lease ends"
    );
}

/// A run that waits for its instant or a confirmation is not claimed.
pub async fn finishing_and_claiming_a_run_that_must_wait_claims_nothing(store: SharedStore) {
    for (delivery, confirm, state) in [
        ("later", false, RunState::Scheduled),
        ("confirmed", true, RunState::Pending),
    ] {
        let run = new_run(delivery, 3600, confirm);
        assert!(store.create_run(&run).await.unwrap());
        let (transition, claimed) = finish_claiming(&store, &run, &[1], t(1)).await;
        assert_eq!(done(Ok(transition)).state, state);
        assert!(claimed.is_none(), "{delivery}");
    }
}

/// A run cancelled during preparation stays cancelled, unclaimed.
pub async fn finishing_and_claiming_a_cancelled_run_leaves_it_cancelled(store: SharedStore) {
    let run = new_run("digest", 0, false);
    assert!(store.create_run(&run).await.unwrap());
    assert!(
        store
            .claim_preparation(&run.id, "prep", t(60), t(1))
            .await
            .unwrap()
    );
    done(
        store
            .cancel(&run.id, Some("ops"), CancelReason::Cancelled, t(2))
            .await,
    );
    let prepared = Prepared {
        targeted: 1,
        excluded_by_reason: BTreeMap::new(),
        chunks: 1,
        preview: None,
    };
    let taken = store.run(&run.id).await.unwrap().expect("the run exists");
    let (transition, claimed) = store
        .finish_and_claim(
            &taken,
            "prep",
            &prepared,
            Some(&chunk("digest", 0, 1)),
            t(90),
            t(3),
        )
        .await
        .unwrap();
    assert_eq!(transition, Transition::Conflict(RunState::Cancelled));
    assert!(claimed.is_none());
    assert_eq!(state_of(&store, &run.id).await, RunState::Cancelled);
}

/// Completing a chunk tells whether one is claimable now: a free chunk or
/// an expired lease yes, chunks held by others or none left no.
pub async fn completing_a_chunk_tells_whether_another_is_claimable(store: SharedStore) {
    let id = sending_run(&store, "digest", &[1, 1, 1]).await;
    let claim = |owner: &'static str, at: i64| {
        let store = store.clone();
        let id = id.clone();
        async move {
            store
                .claim_chunk(&id, owner, t(at + 60), t(at))
                .await
                .unwrap()
                .unwrap()
                .number
        }
    };
    let first = claim("a", 1).await;
    assert!(
        store.complete_chunk(&id, first, "a", t(2)).await.unwrap(),
        "two chunks are free"
    );
    let second = claim("a", 3).await;
    let third = claim("b", 4).await;
    assert!(
        !store.complete_chunk(&id, second, "a", t(5)).await.unwrap(),
        "the last one is held by b"
    );
    let again = claim("c", 70).await;
    assert_eq!(again, third, "b's lease ran out");
    assert!(
        !store.complete_chunk(&id, third, "c", t(71)).await.unwrap(),
        "none left"
    );
    assert_eq!(state_of(&store, &id).await, RunState::Sent);
}

/// Takes a due run that does not start: the run as read and whether its
/// preparation was taken.
async fn take(
    store: &SharedStore,
    id: &crate::runs::RunId,
    owner: &str,
    lease_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (Run, bool) {
    let due = store.take_due(id, owner, lease_until, now).await.unwrap();
    match due.expect("the run exists") {
        Due::Taken(run) => (*run, true),
        Due::Found(run) => (*run, false),
        Due::Started(run, _) => panic!("{} started", run.id),
    }
}

/// Taking a due run reads it and takes its preparation when it is
/// preparing and nobody else holds it; other states are only read.
pub async fn taking_a_run_claims_preparation_only_when_free(store: SharedStore) {
    let run = new_run("digest", 0, false);
    assert!(store.create_run(&run).await.unwrap());
    let (read, taken) = take(&store, &run.id, "a", t(60), t(1)).await;
    assert_eq!(
        (read.id.clone(), read.state, taken),
        (run.id.clone(), RunState::Preparing, true)
    );
    assert!(!is_due(&store, &run.id, t(59)).await, "held until t(60)");
    let (_, taken) = take(&store, &run.id, "b", t(90), t(2)).await;
    assert!(!taken, "a holds it");
    let (_, taken) = take(&store, &run.id, "b", t(120), t(61)).await;
    assert!(taken, "a's lease ran out");
    let sending = sending_run(&store, "other", &[1]).await;
    let (read, taken) = take(&store, &sending, "a", t(60), t(1)).await;
    assert_eq!((read.state, taken), (RunState::Sending, false));
    let unknown = crate::runs::RunId::once("nobody");
    assert!(
        store
            .take_due(&unknown, "a", t(60), t(1))
            .await
            .unwrap()
            .is_none()
    );
}

/// Taking a scheduled run at its instant starts it and claims its first
/// chunk for the taker in one step; before its instant it is only read,
/// and once started it is only read.
pub async fn taking_a_scheduled_run_at_its_instant_starts_it_and_claims_a_chunk(
    store: SharedStore,
) {
    let run = new_run("digest", 100, false);
    assert!(store.create_run(&run).await.unwrap());
    let prepared = done(prepare(&store, &run, &[2, 1], t(0)).await);
    assert_eq!(prepared.state, RunState::Scheduled);
    let (early, taken) = take(&store, &run.id, "a", t(150), t(99)).await;
    assert_eq!((early.state, taken), (RunState::Scheduled, false));
    assert!(!is_due(&store, &run.id, t(99)).await, "due at its instant");
    let Some(Due::Started(started, claimed)) =
        store.take_due(&run.id, "a", t(150), t(100)).await.unwrap()
    else {
        panic!("a scheduled run starts at its instant");
    };
    assert_eq!(
        *started,
        SendingRun::from(&prepared),
        "what sending needs of it"
    );
    assert_eq!((started.chunks_left, started.due), (2, t(100)));
    let now = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(now.state, RunState::Sending);
    let first = claimed.expect("the first chunk is claimed for the taker");
    assert_eq!(
        (first.number, first.recipients),
        (0, chunk("digest", 0, 2).recipients)
    );
    assert!(
        is_due(&store, &run.id, t(101)).await,
        "the other chunk is free for anyone"
    );
    let (read, taken) = take(&store, &run.id, "b", t(150), t(101)).await;
    assert_eq!(
        (read.state, taken),
        (RunState::Sending, false),
        "started once"
    );
    let second = store
        .claim_chunk(&run.id, "b", t(150), t(101))
        .await
        .unwrap();
    assert_eq!(second.map(|c| c.number), Some(1));
}

/// Taking many due runs at once gives each run the result taking it
/// alone would, in the order asked, across more runs than one call of
/// the Redis store takes (64).
pub async fn taking_many_runs_gives_each_the_result_of_taking_it_alone(store: SharedStore) {
    let mut ids = Vec::new();
    for n in 0..70 {
        let run = new_run(&format!("burst-{n:02}"), 100, false);
        assert!(store.create_run(&run).await.unwrap());
        assert_eq!(
            done(prepare(&store, &run, &[1], t(0)).await).state,
            RunState::Scheduled
        );
        ids.push(run.id);
    }
    let preparing = new_run("preparing", 0, false);
    assert!(store.create_run(&preparing).await.unwrap());
    let sending = sending_run(&store, "sending", &[1]).await;
    let unknown = crate::runs::RunId::once("nobody");
    ids.splice(
        3..3,
        [preparing.id.clone(), unknown.clone(), sending.clone()],
    );

    let taken = store.take_due_many(&ids, "a", t(150), t(100)).await;
    assert_eq!(taken.len(), ids.len(), "one result per run");
    for (id, due) in ids.iter().zip(taken) {
        match due.unwrap() {
            Some(Due::Taken(run)) => assert_eq!(run.id, preparing.id),
            Some(Due::Found(run)) => {
                assert_eq!((&run.id, run.state), (&sending, RunState::Sending))
            }
            None => assert_eq!(id, &unknown),
            Some(Due::Started(run, claimed)) => {
                assert_eq!(&run.id, id, "in the order asked");
                assert_eq!(claimed.map(|c| c.number), Some(0), "{id}: its only chunk");
                assert_eq!(state_of(&store, id).await, RunState::Sending);
                assert!(
                    comes_off_due(&store, id, t(149)).await,
                    "{id}: held until its lease ends"
                );
            }
        }
    }
    assert!(
        !is_due(&store, &preparing.id, t(149)).await,
        "its preparation is held"
    );
}

/// A chunk's last batch is recorded and completes the chunk in one step;
/// a stale owner's is recorded but completes nothing, and an outcome
/// recorded twice counts once.
pub async fn recording_the_last_batch_of_a_chunk_completes_it(store: SharedStore) {
    let id = sending_run(&store, "digest", &[1, 1]).await;
    let claim = |owner: &'static str| {
        let (store, id) = (store.clone(), id.clone());
        async move {
            let claimed = store.claim_chunk(&id, owner, t(60), t(1)).await.unwrap();
            claimed.expect("a chunk is free").number
        }
    };
    let first = claim("a").await;
    let r0 = [delivered(&rid("digest", 0, 0), t(2))];
    assert!(
        store
            .record_last(&id, first, "b", &r0, &[], t(2))
            .await
            .unwrap(),
        "b does not hold it: recorded, not completed, and the other chunk is free"
    );
    assert_eq!(counters(&store, &id).await.delivered, 1);
    let second = claim("a").await;
    assert!(
        !store
            .record_last(&id, first, "a", &r0, &[], t(3))
            .await
            .unwrap(),
        "completed; the other chunk is held"
    );
    assert_eq!(state_of(&store, &id).await, RunState::Sending);
    let r1 = [delivered(&rid("digest", 1, 0), t(4))];
    assert!(
        !store
            .record_last(&id, second, "a", &r1, &[], t(4))
            .await
            .unwrap()
    );
    assert_eq!(state_of(&store, &id).await, RunState::Sent);
    assert_eq!(counters(&store, &id).await.delivered, 2, "r0 counted once");
}

/// Last batches of many runs recorded at once (the Redis store gathers
/// them into one call) each get the result recording it alone would: a
/// holder's completes its run, a stale owner's is recorded without
/// completing, and an unknown run's is an error of its own.
pub async fn recording_many_last_batches_at_once_gives_each_its_own_result(store: SharedStore) {
    let mut runs = Vec::new();
    for n in 0..40 {
        let delivery = format!("many-{n:02}");
        let id = sending_run(&store, &delivery, &[1]).await;
        let claimed = store.claim_chunk(&id, "a", t(60), t(1)).await.unwrap();
        assert_eq!(claimed.map(|c| c.number), Some(0));
        runs.push((delivery, id));
    }
    let unknown = crate::runs::RunId::once("nobody");
    let records = runs.iter().enumerate().map(|(n, (delivery, id))| {
        let store = store.clone();
        let owner = if n == 7 { "b" } else { "a" };
        let outcome = [delivered(&rid(delivery, 0, 0), t(2))];
        async move { store.record_last(id, 0, owner, &outcome, &[], t(2)).await }
    });
    let stray = async {
        let outcome = [delivered("x", t(2))];
        store
            .record_last(&unknown, 0, "a", &outcome, &[], t(2))
            .await
    };
    let (recorded, stray) = tokio::join!(futures_util::future::join_all(records), stray);
    assert!(stray.is_err(), "no such run");
    for (n, ((_, id), more)) in runs.iter().zip(recorded).enumerate() {
        assert!(!more.unwrap(), "{id}: nothing else to claim now");
        assert_eq!(counters(&store, id).await.delivered, 1, "{id}");
        let state = state_of(&store, id).await;
        match n {
            7 => assert_eq!(state, RunState::Sending, "b does not hold the chunk"),
            _ => assert_eq!(state, RunState::Sent, "{id}"),
        }
    }
}

/// Creating and taking makes the run and takes its preparation for the
/// creator in one step: the run comes back as stored, held until the
/// lease ends; a second creation changes nothing.
pub async fn creating_and_taking_a_run_holds_its_preparation_for_the_creator(store: SharedStore) {
    let run = new_run("digest", 0, false);
    let Creation::Taken(taken) = store.create_and_take(&run, "a", t(60)).await.unwrap() else {
        panic!("a new run is taken by its creator");
    };
    let stored = store.run(&run.id).await.unwrap().unwrap();
    assert_eq!(*taken, stored, "the run as stored");
    assert_eq!(
        (stored.state, stored.delivery_id.as_str()),
        (RunState::Preparing, "digest")
    );
    assert!(!is_due(&store, &run.id, t(59)).await, "held until t(60)");
    assert!(
        is_due(&store, &run.id, t(61)).await,
        "due again once the lease ends"
    );
    let (_, taken) = take(&store, &run.id, "b", t(90), t(2)).await;
    assert!(!taken, "a holds it");
    assert_eq!(
        store.create_and_take(&run, "b", t(90)).await.unwrap(),
        Creation::Existed
    );
    let (_, taken) = take(&store, &run.id, "a", t(90), t(3)).await;
    assert!(taken, "its holder takes it again");
}

/// A preparation given back is due at once and free for anyone; only its
/// holder can give it back.
pub async fn a_preparation_given_back_is_due_at_once_for_any_instance(store: SharedStore) {
    let run = new_run("digest", 0, false);
    store.create_and_take(&run, "a", t(60)).await.unwrap();
    store.release_preparation(&run.id, "b", t(1)).await.unwrap();
    assert!(
        !is_due(&store, &run.id, t(59)).await,
        "b cannot give back a's lease"
    );
    store.release_preparation(&run.id, "a", t(1)).await.unwrap();
    assert!(is_due(&store, &run.id, t(2)).await, "due at once");
    let (_, taken) = take(&store, &run.id, "b", t(90), t(2)).await;
    assert!(taken, "free for another instance");
}

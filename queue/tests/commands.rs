//! Every command's edge cases, with Disque's semantics: each test applies
//! commands at chosen log times and checks the exact `Response`s and the
//! state they leave (`len`, `peek`, `show`).
//!
//! References are to Disque's README and its `job.c` (ADDJOB, GETJOB,
//! ACKJOB, FASTACK, NACK, WORKING, QPEEK, ENQUEUE, DEQUEUE, DELJOB, PAUSE).
//! The delivery limit, the dead-letter queue and NACK with a delay go beyond
//! Disque (see the "queue" section of DESIGN.md).

use bytes::Bytes;
use queue::{
    AddJob, Command, DEFAULT_TTL_MS, Delivery, JobId, JobInfo, JobState, MAX_DEFAULT_RETRY_MS,
    MIN_DEFAULT_RETRY_MS, PauseState, QueueError, QueueFilter, Response, StateMachine,
};

// ----- Helpers ---------------------------------------------------------------

/// A distinct id for job number `n` (its random part is all `n`).
fn id(n: u8) -> JobId {
    JobId::new(1, [n; 18], 60_000, 1_000)
}

/// ADDJOB `queue` with job `n`'s id and body `body-n`, every option unset.
fn job(n: u8, queue: &str) -> AddJob {
    AddJob {
        id: id(n),
        queue: queue.to_string(),
        body: body(n),
        ttl_ms: None,
        retry_ms: None,
        delay_ms: None,
        max_len: None,
        delivery_limit: None,
    }
}

fn body(n: u8) -> Bytes {
    Bytes::from(format!("body-{n}"))
}

/// ADDJOB with explicit TTL and RETRY (and no delay).
fn timed(n: u8, queue: &str, ttl_ms: u64, retry_ms: u64) -> AddJob {
    AddJob {
        ttl_ms: Some(ttl_ms),
        retry_ms: Some(retry_ms),
        ..job(n, queue)
    }
}

fn add(m: &mut StateMachine, at_ms: u64, add: AddJob) {
    let id = add.id;
    assert_eq!(m.apply(at_ms, Command::Add(add)), Response::Added(id));
}

fn get(m: &mut StateMachine, at_ms: u64, queues: &[&str], count: u32) -> Vec<Delivery> {
    let queues = queues.iter().map(|q| q.to_string()).collect();
    match m.apply(at_ms, Command::Get { queues, count }) {
        Response::Jobs(jobs) => jobs,
        other => panic!("GETJOB answered {other:?}"),
    }
}

/// GETJOB, keeping only the ids handed out.
fn get_ids(m: &mut StateMachine, at_ms: u64, queues: &[&str], count: u32) -> Vec<JobId> {
    get(m, at_ms, queues, count).iter().map(|d| d.id).collect()
}

fn nack(m: &mut StateMachine, at_ms: u64, ids: Vec<JobId>, delay_ms: u64) -> Response {
    m.apply(at_ms, Command::Nack { ids, delay_ms })
}

fn tick(m: &mut StateMachine, at_ms: u64) {
    assert_eq!(m.apply(at_ms, Command::Tick), Response::Done);
}

fn show(m: &StateMachine, n: u8) -> JobInfo {
    m.show(&id(n))
        .unwrap_or_else(|| panic!("job {n} should exist"))
}

fn peek_ids(m: &StateMachine, queue: &str, count: i64) -> Vec<JobId> {
    m.peek(queue, count).iter().map(|j| j.id).collect()
}

fn ids(ns: &[u8]) -> Vec<JobId> {
    ns.iter().map(|&n| id(n)).collect()
}

fn delivery(n: u8, queue: &str, nacks: u32, additional_deliveries: u32) -> Delivery {
    Delivery {
        queue: queue.to_string(),
        id: id(n),
        body: body(n),
        nacks,
        additional_deliveries,
    }
}

// ----- ADDJOB ----------------------------------------------------------------

/// ADDJOB with no options: TTL one day, RETRY TTL/10 capped at 5 minutes,
/// DELAY 0 (queued at once).
#[test]
fn addjob_defaults_are_one_day_ttl_retry_capped_at_five_minutes_and_no_delay() {
    let mut m = StateMachine::new();
    add(&mut m, 1_000, job(1, "q"));
    assert_eq!(
        show(&m, 1),
        JobInfo {
            id: id(1),
            queue: "q".to_string(),
            state: JobState::Queued,
            body: body(1),
            created_ms: 1_000,
            expires_ms: 1_000 + DEFAULT_TTL_MS,
            retry_ms: MAX_DEFAULT_RETRY_MS,
            next_event_ms: None,
            nacks: 0,
            additional_deliveries: 0,
            deliveries: 0,
            delivery_limit: None,
        }
    );
    assert_eq!(DEFAULT_TTL_MS, 86_400_000);
    assert_eq!(MAX_DEFAULT_RETRY_MS, 300_000);
    assert_eq!(m.len("q"), 1);
    assert_eq!(peek_ids(&m, "q", 1), ids(&[1]));
}

/// The default RETRY is TTL/10, clamped to 1 s .. 5 min.
#[test]
fn default_retry_is_a_tenth_of_the_ttl_clamped_to_one_second_and_five_minutes() {
    let mut m = StateMachine::new();
    for (n, ttl_ms, retry_ms) in [
        (1, 1, MIN_DEFAULT_RETRY_MS),              // 0.1 ms -> 1 s
        (2, 5_000, MIN_DEFAULT_RETRY_MS),          // 0.5 s -> 1 s
        (3, 10_000, 1_000),                        // exactly 1 s
        (4, 60_000, 6_000),                        // 6 s
        (5, 3_000_000, 300_000),                   // exactly 5 min
        (6, 3_600_000, MAX_DEFAULT_RETRY_MS),      // 6 min -> 5 min
        (7, DEFAULT_TTL_MS, MAX_DEFAULT_RETRY_MS), // 2.4 h -> 5 min
    ] {
        let add_job = AddJob {
            ttl_ms: Some(ttl_ms),
            ..job(n, "q")
        };
        assert_eq!(add_job.times().unwrap().retry_ms, retry_ms, "TTL {ttl_ms}");
        add(&mut m, 0, add_job);
        let info = show(&m, n);
        assert_eq!(info.retry_ms, retry_ms, "TTL {ttl_ms}");
        assert_eq!(info.expires_ms, ttl_ms, "TTL {ttl_ms}");
    }
}

#[test]
fn addjob_explicit_options_are_used_as_given() {
    let mut m = StateMachine::new();
    let explicit = AddJob {
        ttl_ms: Some(120_000),
        retry_ms: Some(7_000),
        delay_ms: Some(3_000),
        max_len: Some(10),
        delivery_limit: Some(4),
        ..job(1, "q")
    };
    add(&mut m, 500, explicit);
    let info = show(&m, 1);
    assert_eq!(info.created_ms, 500);
    assert_eq!(info.expires_ms, 120_500);
    assert_eq!(info.retry_ms, 7_000);
    assert_eq!(info.state, JobState::Delayed);
    assert_eq!(info.next_event_ms, Some(3_500));
    assert_eq!(info.delivery_limit, Some(4));

    // An explicit RETRY larger than the default cap, or 0, is kept as is.
    add(&mut m, 500, timed(2, "q", 3_600_000, 1_200_000));
    assert_eq!(show(&m, 2).retry_ms, 1_200_000);
    add(&mut m, 500, timed(3, "q", 3_600_000, 0));
    assert_eq!(show(&m, 3).retry_ms, 0);
}

/// Disque refuses a TTL of 0; the refused command changes nothing.
#[test]
fn addjob_with_zero_ttl_is_refused_and_leaves_no_job() {
    let mut m = StateMachine::new();
    let zero = AddJob {
        ttl_ms: Some(0),
        ..job(1, "q")
    };
    assert_eq!(
        m.apply(0, Command::Add(zero)),
        Response::Error(QueueError::ZeroTtl)
    );
    assert_eq!(m.show(&id(1)), None);
    assert_eq!(m.len("q"), 0);
    assert_eq!(m.job_count(), 0);
    assert!(m.is_empty());
}

/// Disque: "The specified DELAY is greater than TTL. Job refused since would
/// never be delivered". DELAY equal to TTL is refused too.
#[test]
fn addjob_with_delay_not_below_ttl_is_refused_and_leaves_no_job() {
    let mut m = StateMachine::new();
    for delay_ms in [10_000, 10_001, u64::MAX] {
        let late = AddJob {
            ttl_ms: Some(10_000),
            delay_ms: Some(delay_ms),
            ..job(1, "q")
        };
        assert_eq!(
            m.apply(0, Command::Add(late)),
            Response::Error(QueueError::DelayNotBelowTtl),
            "DELAY {delay_ms}"
        );
        assert_eq!(m.show(&id(1)), None);
        assert!(m.is_empty());
    }
    // With the default TTL (one day) too.
    let late = AddJob {
        delay_ms: Some(DEFAULT_TTL_MS),
        ..job(1, "q")
    };
    assert_eq!(
        m.apply(0, Command::Add(late)),
        Response::Error(QueueError::DelayNotBelowTtl)
    );
    assert!(m.is_empty());

    // One millisecond below the TTL is accepted.
    let just = AddJob {
        ttl_ms: Some(10_000),
        delay_ms: Some(9_999),
        ..job(2, "q")
    };
    add(&mut m, 0, just);
    assert_eq!(show(&m, 2).next_event_ms, Some(9_999));
}

/// MAXLEN: refused when the queue already holds that many queued jobs.
#[test]
fn addjob_over_maxlen_is_refused_and_leaves_no_job() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "q"));
    add(&mut m, 0, job(2, "q"));
    let capped = |n| AddJob {
        max_len: Some(2),
        ..job(n, "q")
    };
    assert_eq!(
        m.apply(0, Command::Add(capped(3))),
        Response::Error(QueueError::MaxLen)
    );
    assert_eq!(m.show(&id(3)), None);
    assert_eq!(m.len("q"), 2);
    assert_eq!(m.job_count(), 2);
    assert_eq!(peek_ids(&m, "q", 10), ids(&[1, 2]));

    // MAXLEN 0 refuses even into an empty queue.
    let zero = AddJob {
        max_len: Some(0),
        ..job(4, "empty")
    };
    assert_eq!(
        m.apply(0, Command::Add(zero)),
        Response::Error(QueueError::MaxLen)
    );
    assert_eq!(m.job_count(), 2);

    // Only queued jobs count: once one is handed out there is room again.
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    add(&mut m, 0, capped(3));
    assert_eq!(m.len("q"), 2);
    assert_eq!(peek_ids(&m, "q", 10), ids(&[2, 3]));
}

/// Applying the same ADDJOB twice (a retried proposal) keeps one job.
#[test]
fn addjob_with_an_existing_id_answers_the_id_and_adds_nothing() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "q"));
    add(&mut m, 5, job(1, "q"));
    assert_eq!(m.job_count(), 1);
    assert_eq!(m.len("q"), 1);
    assert_eq!(show(&m, 1).created_ms, 0);
}

// ----- PAUSE -----------------------------------------------------------------

#[test]
fn pause_in_refuses_addjob_but_still_hands_out_jobs() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "q"));
    let pause = |set| Command::Pause {
        queue: "q".to_string(),
        set,
    };
    assert_eq!(
        m.apply(0, pause(Some(PauseState::In))),
        Response::Paused(PauseState::In)
    );
    assert_eq!(m.pause_state("q"), PauseState::In);
    // Reading it back changes nothing.
    assert_eq!(m.apply(0, pause(None)), Response::Paused(PauseState::In));

    assert_eq!(
        m.apply(0, Command::Add(job(2, "q"))),
        Response::Error(QueueError::Paused)
    );
    assert_eq!(m.show(&id(2)), None);
    assert_eq!(m.len("q"), 1);
    // Other queues are not affected.
    add(&mut m, 0, job(3, "other"));

    assert_eq!(get_ids(&mut m, 0, &["q"], 10), ids(&[1]));
    // Still paused after it emptied.
    assert_eq!(m.pause_state("q"), PauseState::In);
}

#[test]
fn pause_out_makes_getjob_skip_the_queue_but_accepts_jobs() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "q"));
    add(&mut m, 0, job(2, "other"));
    assert_eq!(
        m.apply(
            0,
            Command::Pause {
                queue: "q".to_string(),
                set: Some(PauseState::Out),
            }
        ),
        Response::Paused(PauseState::Out)
    );
    assert_eq!(m.pause_state("q"), PauseState::Out);
    add(&mut m, 0, job(3, "q"));
    assert_eq!(m.len("q"), 2);
    // Nothing a GETJOB could take (a member blocks such a GETJOB).
    assert_eq!(m.takeable("q"), 0);
    assert_eq!(m.takeable("other"), 1);

    assert_eq!(get(&mut m, 0, &["q"], 10), vec![]);
    // The scan goes on to the next queue.
    assert_eq!(get_ids(&mut m, 0, &["q", "other"], 10), ids(&[2]));
    assert_eq!(m.len("q"), 2);
    assert_eq!(show(&m, 1).state, JobState::Queued);
    // Still visible to QPEEK.
    assert_eq!(peek_ids(&m, "q", 10), ids(&[1, 3]));
}

#[test]
fn pause_all_refuses_both_and_pause_none_resumes() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "q"));
    let pause = |set| Command::Pause {
        queue: "q".to_string(),
        set: Some(set),
    };
    assert_eq!(
        m.apply(0, pause(PauseState::All)),
        Response::Paused(PauseState::All)
    );
    assert_eq!(m.pause_state("q"), PauseState::All);
    assert_eq!(
        m.apply(0, Command::Add(job(2, "q"))),
        Response::Error(QueueError::Paused)
    );
    assert_eq!(get(&mut m, 0, &["q"], 1), vec![]);

    assert_eq!(
        m.apply(0, pause(PauseState::None)),
        Response::Paused(PauseState::None)
    );
    assert_eq!(m.pause_state("q"), PauseState::None);
    add(&mut m, 0, job(2, "q"));
    assert_eq!(get_ids(&mut m, 0, &["q"], 10), ids(&[1, 2]));
}

#[test]
fn pause_state_of_an_unknown_queue_is_none() {
    let mut m = StateMachine::new();
    assert_eq!(m.pause_state("nowhere"), PauseState::None);
    assert_eq!(
        m.apply(
            0,
            Command::Pause {
                queue: "nowhere".to_string(),
                set: None,
            }
        ),
        Response::Paused(PauseState::None)
    );
    // A pause state is kept for a queue that holds no job.
    assert_eq!(
        m.apply(
            0,
            Command::Pause {
                queue: "empty".to_string(),
                set: Some(PauseState::Out),
            }
        ),
        Response::Paused(PauseState::Out)
    );
    assert_eq!(m.pause_state("empty"), PauseState::Out);
}

// ----- DELAY -----------------------------------------------------------------

#[test]
fn delayed_job_is_invisible_until_its_delay_ends() {
    let mut m = StateMachine::new();
    let delayed = AddJob {
        delay_ms: Some(5_000),
        ..job(1, "q")
    };
    add(&mut m, 1_000, delayed);
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Delayed);
    assert_eq!(info.next_event_ms, Some(6_000));
    assert_eq!(m.len("q"), 0);
    assert_eq!(peek_ids(&m, "q", 10), vec![]);
    assert_eq!(get(&mut m, 5_999, &["q"], 1), vec![]);

    // Due at 6_000 exactly: GETJOB stamped then sees it.
    assert_eq!(get(&mut m, 6_000, &["q"], 1), vec![delivery(1, "q", 0, 0)]);
    assert_eq!(show(&m, 1).deliveries, 1);
}

#[test]
fn delayed_job_keeps_its_creation_position() {
    let mut m = StateMachine::new();
    add(
        &mut m,
        0,
        AddJob {
            delay_ms: Some(100),
            ..job(1, "q")
        },
    );
    add(&mut m, 50, job(2, "q"));
    tick(&mut m, 100);
    assert_eq!(peek_ids(&m, "q", 10), ids(&[1, 2]));
}

// ----- Leases: RETRY ---------------------------------------------------------

/// At-least-once: a job not acked within RETRY is queued again, and its
/// additional-deliveries counter goes up.
#[test]
fn lease_expiry_requeues_with_one_more_additional_delivery() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 60_000, 5_000));
    assert_eq!(get(&mut m, 1_000, &["q"], 1), vec![delivery(1, "q", 0, 0)]);
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Active);
    assert_eq!(info.next_event_ms, Some(6_000));
    assert_eq!(info.deliveries, 1);
    assert_eq!(m.len("q"), 0);

    tick(&mut m, 5_999);
    assert_eq!(show(&m, 1).state, JobState::Active);
    assert_eq!(m.len("q"), 0);

    tick(&mut m, 6_000);
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Queued);
    assert_eq!(info.next_event_ms, None);
    assert_eq!(info.additional_deliveries, 1);
    assert_eq!(info.nacks, 0);
    assert_eq!(m.len("q"), 1);

    assert_eq!(get(&mut m, 6_000, &["q"], 1), vec![delivery(1, "q", 0, 1)]);
    assert_eq!(show(&m, 1).deliveries, 2);
    // And again.
    tick(&mut m, 11_000);
    assert_eq!(show(&m, 1).additional_deliveries, 2);
}

/// Disque: "RETRY 0 ... the job will be delivered at most once".
#[test]
fn retry_zero_job_is_never_requeued_and_stays_active_until_its_ttl() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 10_000, 0));
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Active);
    assert_eq!(info.next_event_ms, None);

    tick(&mut m, 9_999);
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Active);
    assert_eq!(info.additional_deliveries, 0);
    assert_eq!(m.len("q"), 0);

    tick(&mut m, 10_000);
    assert_eq!(m.show(&id(1)), None);
    assert!(m.is_empty());
}

/// The id carries whether the job may be delivered more than once.
#[test]
fn job_id_records_whether_retry_is_above_zero() {
    assert!(JobId::new(1, [0; 18], 60_000, 1).may_repeat());
    assert!(!JobId::new(1, [0; 18], 60_000, 0).may_repeat());
}

// ----- NACK ------------------------------------------------------------------

/// NACK puts the job back at once, nacks + 1, and (Disque orders queues by
/// creation time) ahead of jobs created after it.
#[test]
fn nack_requeues_at_once_at_its_creation_position_with_one_more_nack() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "q"));
    add(&mut m, 1, job(2, "q"));
    assert_eq!(get_ids(&mut m, 2, &["q"], 1), ids(&[1]));
    add(&mut m, 3, job(3, "q"));

    assert_eq!(nack(&mut m, 4, vec![id(1)], 0), Response::Count(1));
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Queued);
    assert_eq!(info.next_event_ms, None, "no lease any more");
    assert_eq!(info.nacks, 1);
    assert_eq!(info.additional_deliveries, 0);
    assert_eq!(m.len("q"), 3);
    assert_eq!(peek_ids(&m, "q", 10), ids(&[1, 2, 3]));

    assert_eq!(get(&mut m, 5, &["q"], 1), vec![delivery(1, "q", 1, 0)]);
}

/// Beyond Disque: NACK with a delay keeps the job invisible that long.
#[test]
fn nack_with_a_delay_requeues_when_the_delay_ends() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 60_000, 5_000));
    add(&mut m, 0, timed(2, "q", 60_000, 5_000));
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    assert_eq!(nack(&mut m, 100, vec![id(1)], 1_000), Response::Count(1));
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Delayed);
    assert_eq!(info.next_event_ms, Some(1_100), "the lease is replaced");
    assert_eq!(info.nacks, 1);
    assert_eq!(m.len("q"), 1);
    assert_eq!(peek_ids(&m, "q", 10), ids(&[2]));

    tick(&mut m, 1_099);
    assert_eq!(show(&m, 1).state, JobState::Delayed);
    tick(&mut m, 1_100);
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Queued);
    assert_eq!(info.additional_deliveries, 0, "a NACK is no lease expiry");
    assert_eq!(peek_ids(&m, "q", 10), ids(&[1, 2]));
    assert_eq!(get(&mut m, 1_100, &["q"], 1), vec![delivery(1, "q", 1, 0)]);
}

#[test]
fn nack_of_a_job_that_is_not_active_counts_zero() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "q")); // queued
    add(
        &mut m,
        0,
        AddJob {
            delay_ms: Some(1_000),
            ..job(2, "q")
        },
    ); // delayed
    add(&mut m, 0, job(3, "q3"));
    assert_eq!(get_ids(&mut m, 0, &["q3"], 1), ids(&[3])); // active

    assert_eq!(
        nack(&mut m, 0, vec![id(1), id(2), id(9), id(3)], 0),
        Response::Count(1),
        "only the active job 3"
    );
    assert_eq!(show(&m, 1).nacks, 0);
    assert_eq!(show(&m, 1).state, JobState::Queued);
    assert_eq!(show(&m, 2).nacks, 0);
    assert_eq!(show(&m, 2).state, JobState::Delayed);
    assert_eq!(show(&m, 2).next_event_ms, Some(1_000));
    assert_eq!(show(&m, 3).nacks, 1);
    // Job 3 is queued now: a second NACK of it counts 0.
    assert_eq!(nack(&mut m, 0, vec![id(3)], 0), Response::Count(0));
    assert_eq!(show(&m, 3).nacks, 1);
}

/// At most once: a delivered RETRY 0 job is never queued again, not even by a
/// NACK (Disque's `enqueueJob` refuses it too).
#[test]
fn nack_of_a_delivered_retry_zero_job_counts_zero() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 10_000, 0));
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    for delay_ms in [0, 100] {
        assert_eq!(
            m.apply(
                5,
                Command::Nack {
                    ids: vec![id(1)],
                    delay_ms
                }
            ),
            Response::Count(0)
        );
    }
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Active);
    assert_eq!(info.nacks, 0);
    assert_eq!(m.len("q"), 0);
}

// ----- WORKING ---------------------------------------------------------------

/// WORKING postpones the next delivery by RETRY from now and answers RETRY.
#[test]
fn working_extends_the_lease_by_retry_from_now() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 100_000, 5_000));
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    assert_eq!(
        m.apply(3_000, Command::Working { id: id(1) }),
        Response::Extended { retry_ms: 5_000 }
    );
    assert_eq!(show(&m, 1).next_event_ms, Some(8_000));

    tick(&mut m, 5_000); // the old lease end passes
    assert_eq!(show(&m, 1).state, JobState::Active);
    tick(&mut m, 7_999);
    assert_eq!(show(&m, 1).state, JobState::Active);
    tick(&mut m, 8_000);
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Queued);
    assert_eq!(info.additional_deliveries, 1);
}

/// Disque: WORKING is refused once half the TTL has elapsed.
#[test]
fn working_after_half_the_ttl_is_too_late() {
    let mut m = StateMachine::new();
    add(&mut m, 1_000, timed(1, "q", 100_000, 60_000));
    assert_eq!(get_ids(&mut m, 1_000, &["q"], 1), ids(&[1]));
    // Exactly half elapsed: still allowed.
    assert_eq!(
        m.apply(51_000, Command::Working { id: id(1) }),
        Response::Extended { retry_ms: 60_000 }
    );
    assert_eq!(show(&m, 1).next_event_ms, Some(111_000));
    assert_eq!(
        m.apply(51_001, Command::Working { id: id(1) }),
        Response::Error(QueueError::TooLate)
    );
    // The refused WORKING left the lease alone.
    let info = show(&m, 1);
    assert_eq!(info.next_event_ms, Some(111_000));
    assert_eq!(info.state, JobState::Active);
}

/// Disque: "If the job is queued, remove it from queue and change state to
/// active". A worker whose lease ended just before its WORKING was applied
/// gets the job back rather than see it handed to a second worker.
#[test]
fn working_on_a_job_requeued_by_its_lease_takes_it_out_of_the_queue() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 100_000, 5_000));
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    tick(&mut m, 5_000);
    assert_eq!(show(&m, 1).state, JobState::Queued);
    assert_eq!(
        m.apply(5_001, Command::Working { id: id(1) }),
        Response::Extended { retry_ms: 5_000 }
    );
    let info = show(&m, 1);
    assert_eq!(info.state, JobState::Active);
    assert_eq!(info.next_event_ms, Some(10_001));
    assert_eq!(info.additional_deliveries, 1);
    assert_eq!(m.len("q"), 0);
    assert_eq!(get(&mut m, 5_001, &["q"], 1), vec![]);
}

/// An at-most-once job has no lease to extend: WORKING answers RETRY 0 and
/// changes nothing.
#[test]
fn working_on_a_retry_zero_job_answers_zero_and_changes_nothing() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 100_000, 0));
    add(&mut m, 0, timed(2, "q", 100_000, 0));
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    for n in [1, 2] {
        let before = show(&m, n);
        assert_eq!(
            m.apply(10, Command::Working { id: id(n) }),
            Response::Extended { retry_ms: 0 }
        );
        assert_eq!(show(&m, n), before);
    }
}

#[test]
fn working_of_an_unknown_job_is_nojob() {
    let mut m = StateMachine::new();
    assert_eq!(
        m.apply(0, Command::Working { id: id(1) }),
        Response::Error(QueueError::NoJob)
    );
    // Nor of an acked one.
    add(&mut m, 0, job(1, "q"));
    assert_eq!(
        m.apply(0, Command::Ack { ids: vec![id(1)] }),
        Response::Count(1)
    );
    assert_eq!(
        m.apply(0, Command::Working { id: id(1) }),
        Response::Error(QueueError::NoJob)
    );
}

// ----- TTL -------------------------------------------------------------------

#[test]
fn ttl_expiry_removes_a_job_in_every_state() {
    let mut m = StateMachine::new();
    // 1 queued, 2 active (lease beyond the TTL), 3 delayed (NACKed with a
    // delay beyond the TTL), 4 delayed by ADDJOB until 1 ms before its TTL
    // (a DELAY must be below the TTL), so queued when it expires.
    add(&mut m, 0, timed(1, "queued", 10_000, 1_000));
    add(&mut m, 0, timed(2, "active", 10_000, 60_000));
    add(&mut m, 0, timed(3, "nacked", 10_000, 1_000));
    add(
        &mut m,
        0,
        AddJob {
            delay_ms: Some(9_999),
            ..timed(4, "delayed", 10_000, 1_000)
        },
    );
    assert_eq!(get_ids(&mut m, 0, &["active", "nacked"], 2), ids(&[2, 3]));
    assert_eq!(nack(&mut m, 0, vec![id(3)], 60_000), Response::Count(1));
    assert_eq!(show(&m, 1).state, JobState::Queued);
    assert_eq!(show(&m, 2).state, JobState::Active);
    assert_eq!(show(&m, 3).state, JobState::Delayed);
    assert_eq!(show(&m, 4).state, JobState::Delayed);

    tick(&mut m, 9_999);
    assert_eq!(m.job_count(), 4);
    assert_eq!(m.len("delayed"), 1, "job 4's delay ended");

    tick(&mut m, 10_000);
    for n in 1..=4 {
        assert_eq!(m.show(&id(n)), None, "job {n}");
    }
    assert!(m.is_empty());
    for queue in ["queued", "active", "nacked", "delayed"] {
        assert_eq!(m.len(queue), 0);
        assert_eq!(m.peek(queue, 10), vec![]);
    }
    assert_eq!(get(&mut m, 10_000, &["queued", "delayed"], 10), vec![]);
}

/// When the lease and the TTL end at the same time the job expires; it is not
/// handed out again.
#[test]
fn ttl_wins_over_a_lease_ending_at_the_same_time() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 3_000, 3_000));
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    tick(&mut m, 3_000);
    assert_eq!(m.show(&id(1)), None);
    assert_eq!(m.len("q"), 0);
}

/// Expiry is applied before the command stamped at or after it.
#[test]
fn a_command_stamped_after_the_ttl_sees_the_job_gone() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 1_000, 500));
    assert_eq!(get(&mut m, 1_000, &["q"], 1), vec![]);
    assert_eq!(
        m.apply(1_000, Command::Ack { ids: vec![id(1)] }),
        Response::Count(0)
    );
}

// ----- ACKJOB, FASTACK, DELJOB -----------------------------------------------

/// ACKJOB and FASTACK (both `Command::Ack`) count the jobs they removed;
/// unknown ids count 0.
#[test]
fn ack_counts_known_jobs_only_and_removes_them_in_any_state() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 60_000, 1_000)); // will be active
    add(&mut m, 0, job(2, "q")); // queued
    add(
        &mut m,
        0,
        AddJob {
            delay_ms: Some(5_000),
            ..job(3, "q")
        },
    ); // delayed
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));

    assert_eq!(
        m.apply(
            10,
            Command::Ack {
                ids: vec![id(1), id(9), id(2), id(1)]
            }
        ),
        Response::Count(2),
        "1 and 2 once each; 9 unknown; 1 again is gone"
    );
    assert_eq!(m.show(&id(1)), None);
    assert_eq!(m.show(&id(2)), None);
    assert_eq!(m.len("q"), 0);
    assert_eq!(m.job_count(), 1);

    // The acked job's lease is gone with it: nothing comes back.
    tick(&mut m, 2_000);
    assert_eq!(m.len("q"), 0);

    assert_eq!(
        m.apply(10, Command::Ack { ids: vec![id(3)] }),
        Response::Count(1)
    );
    assert!(m.is_empty());
    tick(&mut m, 10_000);
    assert_eq!(m.len("q"), 0);
    assert_eq!(
        m.apply(10, Command::Ack { ids: vec![] }),
        Response::Count(0)
    );
}

/// DELJOB removes jobs whatever their state and counts them.
#[test]
fn deljob_counts_removed_jobs_in_any_state() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "q"));
    add(&mut m, 0, job(2, "q"));
    add(
        &mut m,
        0,
        AddJob {
            delay_ms: Some(5_000),
            ..job(3, "q")
        },
    );
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    assert_eq!(
        m.apply(
            0,
            Command::Delete {
                ids: vec![id(1), id(2), id(3), id(4)]
            }
        ),
        Response::Count(3)
    );
    assert!(m.is_empty());
    assert_eq!(m.len("q"), 0);
    assert_eq!(
        m.apply(0, Command::Delete { ids: vec![id(1)] }),
        Response::Count(0)
    );
    tick(&mut m, 1_000_000);
    assert!(m.is_empty());
}

// ----- ENQUEUE, DEQUEUE ------------------------------------------------------

/// ENQUEUE queues active and delayed jobs now; queued and unknown ones count
/// 0. As in Disque's `enqueueJob`, a job that was queued before counts one
/// more delivery, while one still waiting out its ADDJOB delay does not.
#[test]
fn enqueue_queues_active_and_delayed_jobs_now() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 60_000, 5_000));
    add(
        &mut m,
        0,
        AddJob {
            delay_ms: Some(30_000),
            ..job(2, "q")
        },
    );
    add(&mut m, 0, job(3, "q"));
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    assert_eq!(m.len("q"), 1);

    assert_eq!(
        m.apply(
            10,
            Command::Enqueue {
                ids: vec![id(1), id(2), id(3), id(9)]
            }
        ),
        Response::Count(2)
    );
    for (n, additional) in [(1, 1), (2, 0), (3, 0)] {
        let info = show(&m, n);
        assert_eq!(info.state, JobState::Queued, "job {n}");
        assert_eq!(info.next_event_ms, None, "job {n}");
        assert_eq!(info.nacks, 0);
        assert_eq!(info.additional_deliveries, additional, "job {n}");
    }
    assert_eq!(peek_ids(&m, "q", 10), ids(&[1, 2, 3]));
    // The old lease does not fire.
    tick(&mut m, 5_000);
    assert_eq!(show(&m, 1).additional_deliveries, 1);
}

/// At most once means at most once: ENQUEUE refuses a RETRY 0 job that was
/// delivered (Disque's `enqueueJob`), but queues one that never was.
#[test]
fn enqueue_refuses_a_delivered_at_most_once_job() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 60_000, 0));
    add(&mut m, 0, timed(2, "q", 60_000, 0));
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    assert_eq!(
        m.apply(1, Command::Dequeue { ids: vec![id(2)] }),
        Response::Count(1)
    );
    assert_eq!(
        m.apply(
            2,
            Command::Enqueue {
                ids: vec![id(1), id(2)]
            }
        ),
        Response::Count(1),
        "only the never-delivered job 2"
    );
    assert_eq!(show(&m, 1).state, JobState::Active);
    assert_eq!(peek_ids(&m, "q", 10), ids(&[2]));
}

/// DEQUEUE takes queued jobs out of their queue; they come back when the
/// lease they now hold ends.
#[test]
fn dequeue_takes_queued_jobs_out_until_their_lease_ends() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 60_000, 5_000));
    add(&mut m, 0, timed(2, "q", 60_000, 5_000));
    add(
        &mut m,
        0,
        AddJob {
            delay_ms: Some(100),
            ..job(3, "q")
        },
    );
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));

    assert_eq!(
        m.apply(
            50,
            Command::Dequeue {
                ids: vec![id(1), id(2), id(3), id(9)]
            }
        ),
        Response::Count(1),
        "only job 2 was queued"
    );
    assert_eq!(m.len("q"), 0);
    let info = show(&m, 2);
    assert_eq!(info.state, JobState::Active);
    assert_eq!(info.next_event_ms, Some(5_050));
    assert_eq!(info.deliveries, 0, "not handed to anyone");
    assert_eq!(get(&mut m, 50, &["q"], 1), vec![]);

    tick(&mut m, 5_050);
    assert_eq!(show(&m, 2).state, JobState::Queued);
    assert_eq!(show(&m, 2).additional_deliveries, 1);
    assert_eq!(peek_ids(&m, "q", 10), ids(&[1, 2, 3]));
}

#[test]
fn dequeue_of_a_retry_zero_job_leaves_it_out_until_its_ttl() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 10_000, 0));
    assert_eq!(
        m.apply(0, Command::Dequeue { ids: vec![id(1)] }),
        Response::Count(1)
    );
    assert_eq!(show(&m, 1).next_event_ms, None);
    tick(&mut m, 9_999);
    assert_eq!(m.len("q"), 0);
    tick(&mut m, 10_000);
    assert!(m.is_empty());
}

// ----- GETJOB ----------------------------------------------------------------

/// GETJOB scans the queues left to right and takes up to COUNT jobs, oldest
/// first in each queue.
#[test]
/// Disque's getjobCommand: one job from each queue per pass, left to right,
/// until COUNT, so a busy first queue does not starve the next ones.
fn getjob_takes_one_job_per_queue_per_pass_left_to_right() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "a"));
    add(&mut m, 1, job(2, "b"));
    add(&mut m, 2, job(3, "a"));
    add(&mut m, 3, job(4, "b"));
    add(&mut m, 4, job(5, "b"));

    assert_eq!(
        get(&mut m, 10, &["a", "b"], 3),
        vec![
            delivery(1, "a", 0, 0),
            delivery(2, "b", 0, 0),
            delivery(3, "a", 0, 0)
        ]
    );
    assert_eq!(m.len("a"), 0);
    assert_eq!(m.len("b"), 2);
    // Order of the list, not of creation: b before the (empty) a and the
    // unknown queue.
    assert_eq!(
        get(&mut m, 10, &["missing", "b", "a"], 10),
        vec![delivery(4, "b", 0, 0), delivery(5, "b", 0, 0)]
    );
    for n in 1..=5 {
        let info = show(&m, n);
        assert_eq!(info.state, JobState::Active);
        assert_eq!(info.deliveries, 1);
    }
    // Nothing left: an empty answer (blocking is the server's business).
    assert_eq!(get(&mut m, 10, &["a", "b"], 10), vec![]);
    assert_eq!(get(&mut m, 10, &[], 10), vec![]);
}

#[test]
fn getjob_with_count_zero_hands_out_nothing() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "q"));
    assert_eq!(get(&mut m, 0, &["q"], 0), vec![]);
    assert_eq!(m.len("q"), 1);
    assert_eq!(show(&m, 1).state, JobState::Queued);
}

/// GETJOB ... WITHCOUNTERS: each delivery carries the job's NACK and
/// additional-deliveries counters.
#[test]
fn getjob_reports_nack_and_additional_delivery_counters() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 600_000, 1_000));
    assert_eq!(get(&mut m, 0, &["q"], 1), vec![delivery(1, "q", 0, 0)]);
    nack(&mut m, 10, vec![id(1)], 0);
    assert_eq!(get(&mut m, 20, &["q"], 1), vec![delivery(1, "q", 1, 0)]);
    tick(&mut m, 1_020); // lease expiry
    assert_eq!(get(&mut m, 1_020, &["q"], 1), vec![delivery(1, "q", 1, 1)]);
    nack(&mut m, 1_030, vec![id(1)], 0);
    assert_eq!(get(&mut m, 1_040, &["q"], 1), vec![delivery(1, "q", 2, 1)]);
    let info = show(&m, 1);
    assert_eq!(info.deliveries, 4);
    assert_eq!((info.nacks, info.additional_deliveries), (2, 1));
}

// ----- QPEEK -----------------------------------------------------------------

/// QPEEK: a positive count peeks the oldest jobs, a negative one the newest
/// (newest first). Nothing changes state.
#[test]
fn qpeek_positive_count_is_oldest_first_negative_is_newest_first() {
    let mut m = StateMachine::new();
    for n in 1..=4 {
        add(&mut m, u64::from(n), job(n, "q"));
    }
    assert_eq!(peek_ids(&m, "q", 2), ids(&[1, 2]));
    assert_eq!(peek_ids(&m, "q", -2), ids(&[4, 3]));
    assert_eq!(peek_ids(&m, "q", 10), ids(&[1, 2, 3, 4]));
    assert_eq!(peek_ids(&m, "q", -10), ids(&[4, 3, 2, 1]));
    assert_eq!(peek_ids(&m, "q", 0), vec![]);
    assert_eq!(peek_ids(&m, "q", i64::MIN), ids(&[4, 3, 2, 1]));
    assert_eq!(peek_ids(&m, "missing", 5), vec![]);
    assert_eq!(m.peek("q", 1), vec![show(&m, 1)]);

    // Active jobs are not in the queue.
    assert_eq!(get_ids(&mut m, 10, &["q"], 1), ids(&[1]));
    assert_eq!(peek_ids(&m, "q", 10), ids(&[2, 3, 4]));
    assert_eq!(peek_ids(&m, "q", -1), ids(&[4]));
    assert_eq!(m.len("q"), 3);
    for n in 2..=4 {
        assert_eq!(show(&m, n).state, JobState::Queued);
    }
}

// ----- Delivery limit and dead letters (beyond Disque) -----------------------

/// QCONFIG's delivery limit: after that many deliveries a job that would be
/// queued again goes to `<queue>.dead` instead, counters kept.
#[test]
fn queue_delivery_limit_moves_the_job_to_the_dead_letter_queue() {
    let mut m = StateMachine::new();
    assert_eq!(
        m.apply(
            0,
            Command::Configure {
                queue: "q".to_string(),
                delivery_limit: Some(2),
                dead_letter: None,
            }
        ),
        Response::Done
    );
    add(&mut m, 0, timed(1, "q", 600_000, 1_000));
    assert_eq!(get(&mut m, 0, &["q"], 1), vec![delivery(1, "q", 0, 0)]);
    tick(&mut m, 1_000); // first lease expiry: 1 delivery < 2
    assert_eq!(m.len("q"), 1);
    assert_eq!(get(&mut m, 1_000, &["q"], 1), vec![delivery(1, "q", 0, 1)]);
    tick(&mut m, 2_000); // second expiry: 2 deliveries, limit reached

    assert_eq!(m.len("q"), 0);
    assert_eq!(m.len("q.dead"), 1);
    let info = show(&m, 1);
    assert_eq!(info.queue, "q.dead");
    assert_eq!(info.state, JobState::Queued);
    assert_eq!(info.deliveries, 2);
    assert_eq!(info.additional_deliveries, 2);
    assert_eq!(info.nacks, 0);
    assert_eq!(info.next_event_ms, None);
    assert_eq!(m.peek("q.dead", 10), vec![info]);
    assert_eq!(get(&mut m, 2_000, &["q"], 1), vec![]);

    // A consumer of the dead-letter queue gets it, counters and all.
    assert_eq!(
        get(&mut m, 2_000, &["q.dead"], 1),
        vec![delivery(1, "q.dead", 0, 2)]
    );
    // The dead-letter queue has no limit of its own: it comes back there.
    tick(&mut m, 3_000);
    assert_eq!(show(&m, 1).queue, "q.dead");
    assert_eq!(m.len("q.dead"), 1);
    assert_eq!(
        m.apply(3_000, Command::Ack { ids: vec![id(1)] }),
        Response::Count(1)
    );
    assert!(m.is_empty());
}

/// ADDJOB's own delivery limit, reached through a NACK, and a configured
/// dead-letter queue.
#[test]
fn job_delivery_limit_dead_letters_on_nack_into_the_configured_queue() {
    let mut m = StateMachine::new();
    m.apply(
        0,
        Command::Configure {
            queue: "q".to_string(),
            delivery_limit: None,
            dead_letter: Some("graveyard".to_string()),
        },
    );
    let limited = AddJob {
        delivery_limit: Some(1),
        ..job(1, "q")
    };
    add(&mut m, 0, limited);
    assert_eq!(show(&m, 1).delivery_limit, Some(1));
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    assert_eq!(nack(&mut m, 5, vec![id(1)], 0), Response::Count(1));
    let info = show(&m, 1);
    assert_eq!(info.queue, "graveyard");
    assert_eq!(info.state, JobState::Queued);
    assert_eq!(info.nacks, 1);
    assert_eq!(info.deliveries, 1);
    assert_eq!(
        info.delivery_limit, None,
        "the dead-letter queue's own rules apply"
    );
    assert_eq!(m.len("q"), 0);
    assert_eq!(m.len("q.dead"), 0);
    assert_eq!(peek_ids(&m, "graveyard", 1), ids(&[1]));
    assert_eq!(
        get(&mut m, 10, &["q", "graveyard"], 5),
        vec![delivery(1, "graveyard", 1, 0)]
    );
}

/// A job's own limit takes precedence over its queue's.
#[test]
fn job_delivery_limit_overrides_the_queue_limit() {
    let mut m = StateMachine::new();
    m.apply(
        0,
        Command::Configure {
            queue: "q".to_string(),
            delivery_limit: Some(1),
            dead_letter: None,
        },
    );
    add(
        &mut m,
        0,
        AddJob {
            delivery_limit: Some(2),
            ..timed(1, "q", 600_000, 1_000)
        },
    );
    add(&mut m, 0, timed(2, "q", 600_000, 1_000));
    assert_eq!(get_ids(&mut m, 0, &["q"], 2), ids(&[1, 2]));
    tick(&mut m, 1_000);
    assert_eq!(show(&m, 1).queue, "q", "own limit 2 not reached");
    assert_eq!(show(&m, 2).queue, "q.dead", "queue limit 1 reached");
}

/// A NACK with a delay also counts towards the delivery limit: when the
/// delay ends the job goes to the dead-letter queue, not back to its own.
#[test]
fn delayed_nack_past_the_delivery_limit_dead_letters_when_the_delay_ends() {
    let mut m = StateMachine::new();
    add(
        &mut m,
        0,
        AddJob {
            delivery_limit: Some(1),
            ..timed(1, "q", 600_000, 1_000)
        },
    );
    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    assert_eq!(nack(&mut m, 0, vec![id(1)], 500), Response::Count(1));
    assert_eq!(show(&m, 1).state, JobState::Delayed);
    tick(&mut m, 500);
    let info = show(&m, 1);
    assert_eq!(info.queue, "q.dead");
    assert_eq!(info.state, JobState::Queued);
    assert_eq!((info.nacks, info.deliveries), (1, 1));
    assert_eq!(m.len("q"), 0);
    assert_eq!(get(&mut m, 500, &["q"], 1), vec![]);
}

/// The end of an ADDJOB's delay is no redelivery: like an undelayed job, it
/// is queued in its own queue even with a delivery limit of 0.
#[test]
fn initial_delay_does_not_count_as_a_delivery() {
    let mut m = StateMachine::new();
    add(
        &mut m,
        0,
        AddJob {
            delay_ms: Some(100),
            delivery_limit: Some(0),
            ..job(1, "q")
        },
    );
    tick(&mut m, 100);
    assert_eq!(show(&m, 1).queue, "q");
    assert_eq!(peek_ids(&m, "q", 1), ids(&[1]));
}

/// QCONFIG answers Done; unsetting both settings restores the default (no
/// limit, so no dead-lettering however often the job is delivered).
#[test]
fn configure_answers_done_and_unset_settings_forget_the_queue() {
    let mut m = StateMachine::new();
    let configure = |delivery_limit, dead_letter: Option<&str>| Command::Configure {
        queue: "q".to_string(),
        delivery_limit,
        dead_letter: dead_letter.map(str::to_string),
    };
    assert_eq!(m.apply(0, configure(Some(3), Some("dlq"))), Response::Done);
    assert_eq!(m.apply(0, configure(None, None)), Response::Done);
    add(&mut m, 0, timed(1, "q", 600_000, 1_000));
    for at_ms in [0, 1_000, 2_000, 3_000] {
        assert_eq!(get_ids(&mut m, at_ms, &["q"], 1), ids(&[1]));
        tick(&mut m, at_ms + 1_000);
    }
    let info = show(&m, 1);
    assert_eq!(info.queue, "q");
    assert_eq!(info.deliveries, 4);
}

// ----- Time ------------------------------------------------------------------

/// The leader's stamps never go backwards, but if one did the state machine
/// would treat it as "now".
#[test]
fn a_stamp_below_now_counts_as_now() {
    let mut m = StateMachine::new();
    tick(&mut m, 10_000);
    assert_eq!(m.now_ms(), 10_000);
    add(&mut m, 5_000, timed(1, "q", 60_000, 2_000));
    assert_eq!(m.now_ms(), 10_000);
    let info = show(&m, 1);
    assert_eq!(info.created_ms, 10_000);
    assert_eq!(info.expires_ms, 70_000);

    assert_eq!(get_ids(&mut m, 0, &["q"], 1), ids(&[1]));
    assert_eq!(show(&m, 1).next_event_ms, Some(12_000));
    // A low stamp does not undo anything either.
    tick(&mut m, 12_000);
    assert_eq!(show(&m, 1).state, JobState::Queued);
    tick(&mut m, 1);
    assert_eq!(m.now_ms(), 12_000);
    assert_eq!(show(&m, 1).state, JobState::Queued);
}

/// Several timers due by one stamp fire in time order before the command.
#[test]
fn timers_due_by_one_stamp_all_fire_before_the_command() {
    let mut m = StateMachine::new();
    add(&mut m, 0, timed(1, "q", 600_000, 1_000));
    add(&mut m, 0, timed(2, "q", 600_000, 3_000));
    add(
        &mut m,
        0,
        AddJob {
            delay_ms: Some(2_000),
            ..job(3, "q")
        },
    );
    assert_eq!(get_ids(&mut m, 0, &["q"], 2), ids(&[1, 2]));
    // At 5_000: 1's lease (1_000), 3's delay (2_000), 2's lease (3_000).
    assert_eq!(
        get(&mut m, 5_000, &["q"], 10),
        vec![
            delivery(1, "q", 0, 1),
            delivery(2, "q", 0, 1),
            delivery(3, "q", 0, 0)
        ]
    );
}

// ----- Ids -------------------------------------------------------------------

/// A client names jobs by the id's text: the parsed text addresses the job,
/// and malformed text never becomes an id.
#[test]
fn job_ids_parsed_from_text_address_the_job() {
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "q"));
    let text = id(1).to_string();
    assert_eq!(text.len(), 40);
    let parsed: JobId = text.parse().unwrap();
    assert_eq!(m.show(&parsed), Some(show(&m, 1)));
    assert_eq!(
        m.apply(0, Command::Ack { ids: vec![parsed] }),
        Response::Count(1)
    );
    for bad in [
        &text[..39],
        "D-00000001",
        "",
        "not an id at all, not an id at all, ab",
    ] {
        assert_eq!(bad.parse::<JobId>(), Err(QueueError::BadId), "{bad:?}");
    }
}

// ----- QSTAT ----------------------------------------------------------------

/// QSTAT counts what went through a queue (Disque's `jobs-in`, `jobs-out`,
/// `ctime`, `atime`): every push (new, requeued, enqueued) and every job
/// handed out; an unknown queue has no stats.
#[test]
fn qstat_counts_pushes_and_pops_and_their_times() {
    let mut m = StateMachine::new();
    assert_eq!(m.queue_stats("q"), None);
    add(&mut m, 1_000, timed(1, "q", 60_000, 5_000));
    add(&mut m, 2_000, job(2, "q"));
    assert_eq!(get_ids(&mut m, 3_000, &["q"], 1), ids(&[1]));
    // The lease ends at 8_000: job 1 is pushed again.
    tick(&mut m, 8_000);
    let stats = m.queue_stats("q").expect("q exists");
    assert_eq!(
        (stats.len, stats.created_ms, stats.last_activity_ms),
        (2, 1_000, 8_000)
    );
    assert_eq!((stats.jobs_in, stats.jobs_out), (3, 1));
    assert_eq!(
        (
            stats.pause,
            stats.delivery_limit,
            stats.dead_letter.as_str()
        ),
        (PauseState::None, None, "q.dead")
    );
    // Acking a queued job is not a pop: the counters and time stay.
    assert_eq!(
        m.apply(9_000, Command::Ack { ids: ids(&[2]) }),
        Response::Count(1)
    );
    let after = m.queue_stats("q").expect("q exists");
    assert_eq!(
        (after.len, after.jobs_out, after.last_activity_ms),
        (1, 1, 8_000)
    );
}

/// An empty queue without settings is forgotten five minutes of log time
/// after its last push or pop (Disque's idle-queue eviction), not at once:
/// QSTAT still shows what just happened to it.
#[test]
fn an_idle_queue_is_forgotten_five_minutes_after_its_last_push_or_pop() {
    let mut m = StateMachine::new();
    add(&mut m, 1_000, timed(1, "q", 600_000, 0));
    assert_eq!(get_ids(&mut m, 2_000, &["q"], 1), ids(&[1]));
    tick(&mut m, 2_000 + 300_000 - 1);
    assert_eq!(m.queue_stats("q").map(|s| s.jobs_out), Some(1));
    tick(&mut m, 2_000 + 300_000);
    assert_eq!(m.queue_stats("q"), None);

    // A push in between starts the five minutes again. (RETRY 0: no lease
    // ends and pushes the jobs again.)
    add(&mut m, 400_000, timed(2, "r", 3_600_000, 0));
    assert_eq!(get_ids(&mut m, 401_000, &["r"], 1), ids(&[2]));
    add(&mut m, 600_000, timed(3, "r", 3_600_000, 0));
    assert_eq!(get_ids(&mut m, 650_000, &["r"], 1), ids(&[3]));
    tick(&mut m, 701_000 + 1);
    assert!(m.queue_stats("r").is_some());
    tick(&mut m, 950_000);
    assert_eq!(m.queue_stats("r"), None);
}

/// A paused or configured queue is kept while empty; once its settings are
/// cleared it is forgotten as any idle queue, at once if it has been idle
/// long enough already. Snapshots keep idle queues and when
/// they will be forgotten.
#[test]
fn queues_with_settings_are_kept_and_snapshots_keep_idle_queues() {
    let mut m = StateMachine::new();
    let pause = |set| Command::Pause {
        queue: "p".to_string(),
        set: Some(set),
    };
    assert_eq!(
        m.apply(1_000, pause(PauseState::All)),
        Response::Paused(PauseState::All)
    );
    tick(&mut m, 10_000_000);
    assert_eq!(
        m.queue_stats("p").map(|s| (s.created_ms, s.pause)),
        Some((1_000, PauseState::All))
    );
    // Idle since 1_000: forgotten as soon as it has no settings left.
    assert_eq!(
        m.apply(10_000_000, pause(PauseState::None)),
        Response::Paused(PauseState::None)
    );
    assert_eq!(m.queue_stats("p"), None);

    add(&mut m, 20_000_000, timed(1, "q", 3_600_000, 0));
    assert_eq!(get_ids(&mut m, 20_000_000, &["q"], 1), ids(&[1]));
    let mut restored = StateMachine::restore(&m.snapshot()).expect("restores");
    assert_eq!(restored, m);
    for machine in [&mut m, &mut restored] {
        tick(machine, 20_000_000 + 299_999);
        assert!(machine.queue_stats("q").is_some());
        tick(machine, 20_000_000 + 300_000);
        assert_eq!(machine.queue_stats("q"), None);
    }
}

#[test]
fn qscan_with_no_limit_lists_every_queue() {
    // QSCAN BUSYLOOP asks for every queue at once: a count of usize::MAX.
    let mut m = StateMachine::new();
    add(&mut m, 0, job(1, "a"));
    add(&mut m, 0, job(2, "b"));
    let page = m.scan_queues(None, usize::MAX, QueueFilter::default());
    assert_eq!(page.items, ["a", "b"]);
    assert_eq!(page.next, None);
}

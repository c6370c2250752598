//! Property tests: the state machine against a small reference model.
//!
//! The model below is written for clarity, not speed: its jobs live in a
//! `Vec` in creation order, and everything (the oldest queued job, a
//! queue's length, the next timer due) is found by a plain scan. It shares
//! no code with `machine.rs`; even Disque's defaults are spelled out again.
//!
//! Random command sequences run against both, over a few queues and a small
//! pool of job ids (so that commands hit existing, removed and never-added
//! jobs), with mostly increasing time stamps (sometimes equal, sometimes
//! lower, sometimes big jumps past TTLs and leases). After every command the
//! responses must be equal and the observable state (SHOW, QPEEK, QLEN,
//! PAUSE, the job count, the time) must match the model's; history checks
//! that do not rely on the model run beside it. Further properties:
//! determinism, snapshot/restore in the middle of a run, and restore errors.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use queue::{
    AddJob, Command, Delivery, JobId, JobInfo, JobState, PauseState, QueueError, QueueStats,
    Response, SNAPSHOT_FORMAT, SnapshotError, StateMachine,
};

// ----- The reference model ---------------------------------------------------

/// Disque's default TTL (one day) and the bounds of the default RETRY
/// (TTL/10, from 1 s to 5 min), written out again rather than imported.
const MODEL_DEFAULT_TTL_MS: u64 = 86_400_000;
const MODEL_MIN_DEFAULT_RETRY_MS: u64 = 1_000;
const MODEL_MAX_DEFAULT_RETRY_MS: u64 = 300_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ModelState {
    /// Invisible until `until`: ADDJOB's DELAY, or a NACK's delay
    /// (`nacked`), after which the job faces its delivery limit.
    Delayed { until: u64, nacked: bool },
    /// In line in its queue.
    Queued,
    /// Handed out (or DEQUEUEd); requeued at `lease_end` unless RETRY is 0.
    Active { lease_end: Option<u64> },
}

#[derive(Clone, Debug)]
struct ModelJob {
    id: JobId,
    queue: String,
    body: Bytes,
    created: u64,
    expires: u64,
    retry: u64,
    state: ModelState,
    nacks: u32,
    additional_deliveries: u32,
    deliveries: u32,
    delivery_limit: Option<u32>,
}

impl ModelJob {
    /// The time of the job's next state change (delay or lease end).
    fn state_timer(&self) -> Option<u64> {
        match self.state {
            ModelState::Delayed { until, .. } => Some(until),
            ModelState::Queued => None,
            ModelState::Active { lease_end } => lease_end,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Model {
    now: u64,
    /// Every existing job, oldest first: creation order is queue order.
    jobs: Vec<ModelJob>,
    pause: BTreeMap<String, PauseState>,
    /// QCONFIG per queue: (delivery limit, dead-letter queue).
    config: BTreeMap<String, (Option<u32>, Option<String>)>,
    /// The queues that exist, for QSTAT.
    queues: BTreeMap<String, ModelQueue>,
}

/// What QSTAT counts. A queue exists from its first push, PAUSE or QCONFIG
/// until it has been empty and without settings for five minutes (log
/// time) since its last push or pop.
#[derive(Clone, Debug)]
struct ModelQueue {
    created: u64,
    last_activity: u64,
    jobs_in: u64,
    jobs_out: u64,
}

const MODEL_IDLE_QUEUE_FORGOTTEN_AFTER_MS: u64 = 300_000;

impl Model {
    /// The queue's stats entry, created now if it does not exist.
    fn queue_mut(&mut self, queue: &str) -> &mut ModelQueue {
        let now = self.now;
        self.queues.entry(queue.to_string()).or_insert(ModelQueue {
            created: now,
            last_activity: now,
            jobs_in: 0,
            jobs_out: 0,
        })
    }

    /// Job `i` joins its queue's line.
    fn push(&mut self, i: usize) {
        self.jobs[i].state = ModelState::Queued;
        let now = self.now;
        let queue = self.jobs[i].queue.clone();
        let stats = self.queue_mut(&queue);
        stats.jobs_in += 1;
        stats.last_activity = now;
    }

    fn stats(&self, queue: &str) -> Option<QueueStats> {
        let stats = self.queues.get(queue)?;
        let (delivery_limit, dead_letter) = self.config.get(queue).cloned().unwrap_or_default();
        Some(QueueStats {
            name: queue.to_string(),
            len: self.queued_in(queue).len(),
            created_ms: stats.created,
            last_activity_ms: stats.last_activity,
            jobs_in: stats.jobs_in,
            jobs_out: stats.jobs_out,
            pause: self.pause_of(queue),
            delivery_limit,
            dead_letter: dead_letter.unwrap_or_else(|| format!("{queue}.dead")),
        })
    }

    /// Forgets queues that are empty, without settings and idle for long
    /// enough.
    fn forget_idle_queues(&mut self) {
        let idle: Vec<String> = self
            .queues
            .iter()
            .filter(|(name, stats)| {
                self.queued_in(name).is_empty()
                    && self.pause_of(name) == PauseState::None
                    && self
                        .config
                        .get(*name)
                        .is_none_or(|(limit, dead)| limit.is_none() && dead.is_none())
                    && stats.last_activity + MODEL_IDLE_QUEUE_FORGOTTEN_AFTER_MS <= self.now
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in idle {
            self.queues.remove(&name);
        }
    }

    fn find(&self, id: &JobId) -> Option<usize> {
        self.jobs.iter().position(|job| job.id == *id)
    }

    fn pause_of(&self, queue: &str) -> PauseState {
        self.pause.get(queue).copied().unwrap_or(PauseState::None)
    }

    fn queued_in(&self, queue: &str) -> Vec<JobId> {
        self.jobs
            .iter()
            .filter(|job| job.queue == queue && job.state == ModelState::Queued)
            .map(|job| job.id)
            .collect()
    }

    fn info(&self, id: &JobId) -> Option<JobInfo> {
        let job = &self.jobs[self.find(id)?];
        Some(JobInfo {
            id: job.id,
            queue: job.queue.clone(),
            state: match job.state {
                ModelState::Delayed { .. } => JobState::Delayed,
                ModelState::Queued => JobState::Queued,
                ModelState::Active { .. } => JobState::Active,
            },
            body: job.body.clone(),
            created_ms: job.created,
            expires_ms: job.expires,
            retry_ms: job.retry,
            next_event_ms: job.state_timer(),
            nacks: job.nacks,
            additional_deliveries: job.additional_deliveries,
            deliveries: job.deliveries,
            delivery_limit: job.delivery_limit,
        })
    }

    fn apply(&mut self, stamp: u64, command: &Command) -> Response {
        self.advance(stamp);
        let response = self.execute(command);
        self.forget_idle_queues();
        response
    }

    fn execute(&mut self, command: &Command) -> Response {
        match command {
            Command::Add(add) => self.add(add),
            Command::Get { queues, count } => Response::Jobs(self.get(queues, *count)),
            Command::Ack { ids } | Command::Delete { ids } => {
                let mut count = 0;
                for id in ids {
                    if let Some(i) = self.find(id) {
                        self.jobs.remove(i);
                        count += 1;
                    }
                }
                Response::Count(count)
            }
            Command::Nack { ids, delay_ms } => {
                let mut count = 0;
                for id in ids {
                    let Some(i) = self.find(id) else { continue };
                    let job = &self.jobs[i];
                    if !matches!(job.state, ModelState::Active { .. }) {
                        continue;
                    }
                    // At most once (DESIGN.md: RETRY 0 = never requeued;
                    // Disque's enqueueJob refuses a delivered RETRY 0 job).
                    if job.retry == 0 && job.deliveries > 0 {
                        continue;
                    }
                    self.jobs[i].nacks += 1;
                    count += 1;
                    if *delay_ms > 0 {
                        self.jobs[i].state = ModelState::Delayed {
                            until: self.now + delay_ms,
                            nacked: true,
                        };
                    } else {
                        self.dead_letter_if_spent(i);
                        self.push(i);
                    }
                }
                Response::Count(count)
            }
            Command::Working { id } => {
                let Some(i) = self.find(id) else {
                    return Response::Error(QueueError::NoJob);
                };
                let now = self.now;
                let job = &mut self.jobs[i];
                // Disque refuses to postpone once half the TTL has passed.
                if now - job.created > (job.expires - job.created) / 2 {
                    return Response::Error(QueueError::TooLate);
                }
                // Disque: WORKING postpones the next delivery by RETRY from
                // now; a queued job (its lease ended just before) is taken
                // out of its queue again. Delayed and at-most-once jobs have
                // no delivery to postpone.
                if job.retry > 0 && !matches!(job.state, ModelState::Delayed { .. }) {
                    job.state = ModelState::Active {
                        lease_end: Some(now + job.retry),
                    };
                }
                Response::Extended {
                    retry_ms: job.retry,
                }
            }
            Command::Enqueue { ids } => {
                let mut count = 0;
                for id in ids {
                    let Some(i) = self.find(id) else { continue };
                    let job = &mut self.jobs[i];
                    // Disque: a delivered at-most-once job is never queued
                    // again; a job queued before counts one more delivery.
                    if job.state == ModelState::Queued || (job.retry == 0 && job.deliveries > 0) {
                        continue;
                    }
                    if !matches!(job.state, ModelState::Delayed { nacked: false, .. }) {
                        job.additional_deliveries += 1;
                    }
                    self.push(i);
                    count += 1;
                }
                Response::Count(count)
            }
            Command::Dequeue { ids } => {
                let mut count = 0;
                for id in ids {
                    let Some(i) = self.find(id) else { continue };
                    let job = &mut self.jobs[i];
                    if job.state == ModelState::Queued {
                        let lease_end = (job.retry > 0).then(|| self.now + job.retry);
                        job.state = ModelState::Active { lease_end };
                        count += 1;
                    }
                }
                Response::Count(count)
            }
            Command::Pause { queue, set } => {
                if let Some(state) = set {
                    self.pause.insert(queue.clone(), *state);
                    self.queue_mut(queue);
                }
                Response::Paused(self.pause_of(queue))
            }
            Command::Configure {
                queue,
                delivery_limit,
                dead_letter,
            } => {
                self.config
                    .insert(queue.clone(), (*delivery_limit, dead_letter.clone()));
                self.queue_mut(queue);
                Response::Done
            }
            Command::Tick => Response::Done,
        }
    }

    /// Moves time to `stamp` (never backwards) and fires every timer due by
    /// then, earliest first, a job's expiry before its other timer when both
    /// fall at the same time.
    fn advance(&mut self, stamp: u64) {
        self.now = self.now.max(stamp);
        loop {
            // (when, 0 = expiry / 1 = delay or lease end, which job)
            let mut due = None;
            for (i, job) in self.jobs.iter().enumerate() {
                let mut events = vec![(job.expires, 0, i)];
                if let Some(at) = job.state_timer() {
                    events.push((at, 1, i));
                }
                for event in events {
                    if event.0 <= self.now && due.is_none_or(|d| event < d) {
                        due = Some(event);
                    }
                }
            }
            let Some((_, kind, i)) = due else {
                self.forget_idle_queues();
                return;
            };
            if kind == 0 {
                self.jobs.remove(i);
                continue;
            }
            match self.jobs[i].state {
                ModelState::Delayed { nacked, .. } => {
                    if nacked {
                        self.dead_letter_if_spent(i);
                    }
                    self.push(i);
                }
                ModelState::Active { .. } => {
                    // The lease ended without an ack: deliver again.
                    self.jobs[i].additional_deliveries += 1;
                    self.dead_letter_if_spent(i);
                    self.push(i);
                }
                ModelState::Queued => unreachable!("queued jobs have no timer"),
            }
        }
    }

    /// A job coming back after being handed out (its lease ended, a NACK,
    /// the end of a NACK's delay) goes to the dead-letter queue once it was
    /// delivered as often as its limit (its own, else its queue's) allows;
    /// there, that queue's own limit applies.
    fn dead_letter_if_spent(&mut self, i: usize) {
        let job = &self.jobs[i];
        let (queue_limit, dead_letter) = self.config.get(&job.queue).cloned().unwrap_or_default();
        let Some(limit) = job.delivery_limit.or(queue_limit) else {
            return;
        };
        if job.deliveries >= limit {
            let dead = dead_letter.unwrap_or_else(|| format!("{}.dead", job.queue));
            let job = &mut self.jobs[i];
            job.queue = dead;
            job.delivery_limit = None;
        }
    }

    fn add(&mut self, add: &AddJob) -> Response {
        let ttl = add.ttl_ms.unwrap_or(MODEL_DEFAULT_TTL_MS);
        if ttl == 0 {
            return Response::Error(QueueError::ZeroTtl);
        }
        let retry = add
            .retry_ms
            .unwrap_or((ttl / 10).clamp(MODEL_MIN_DEFAULT_RETRY_MS, MODEL_MAX_DEFAULT_RETRY_MS));
        let delay = add.delay_ms.unwrap_or(0);
        if delay >= ttl {
            return Response::Error(QueueError::DelayNotBelowTtl);
        }
        if self.find(&add.id).is_some() {
            // A retried proposal: the job already exists.
            return Response::Added(add.id);
        }
        if matches!(self.pause_of(&add.queue), PauseState::In | PauseState::All) {
            return Response::Error(QueueError::Paused);
        }
        if let Some(max_len) = add.max_len {
            if self.queued_in(&add.queue).len() as u64 >= max_len {
                return Response::Error(QueueError::MaxLen);
            }
        }
        self.jobs.push(ModelJob {
            id: add.id,
            queue: add.queue.clone(),
            body: add.body.clone(),
            created: self.now,
            expires: self.now + ttl,
            retry,
            state: ModelState::Delayed {
                until: self.now + delay,
                nacked: false,
            },
            nacks: 0,
            additional_deliveries: 0,
            deliveries: 0,
            delivery_limit: add.delivery_limit,
        });
        if delay == 0 {
            self.push(self.jobs.len() - 1);
        }
        Response::Added(add.id)
    }

    /// GETJOB takes what it can from the first queue listed, then from the
    /// next, as the machine does. (Disque's getjobCommand differs: it takes
    /// one job per queue per pass over the list, round robin.)
    /// One job per queue per pass, left to right, until COUNT or an empty
    /// pass (Disque's `getjobCommand`).
    fn get(&mut self, queues: &[String], count: u32) -> Vec<Delivery> {
        let mut out = Vec::new();
        loop {
            let before = out.len();
            for name in queues {
                if out.len() == count as usize {
                    return out;
                }
                if matches!(self.pause_of(name), PauseState::Out | PauseState::All) {
                    continue;
                }
                // Jobs are kept oldest first: the first queued one is next.
                let Some(i) = self
                    .jobs
                    .iter()
                    .position(|job| job.queue == *name && job.state == ModelState::Queued)
                else {
                    continue;
                };
                let now = self.now;
                let stats = self.queue_mut(name);
                stats.jobs_out += 1;
                stats.last_activity = now;
                let job = &mut self.jobs[i];
                job.deliveries += 1;
                job.state = ModelState::Active {
                    lease_end: (job.retry > 0).then(|| now + job.retry),
                };
                out.push(Delivery {
                    queue: name.clone(),
                    id: job.id,
                    body: job.body.clone(),
                    nacks: job.nacks,
                    additional_deliveries: job.additional_deliveries,
                });
            }
            if out.len() == before || out.len() == count as usize {
                return out;
            }
        }
    }
}

// ----- Generating command sequences -----------------------------------------

/// The queues jobs are added to.
const QUEUES: [&str; 3] = ["q0", "q1", "q2"];
/// Every name GETJOB, PAUSE and QCONFIG use: the queues, their default
/// dead-letter queues and a configured one.
const NAMES: [&str; 7] = ["q0", "q1", "q2", "q0.dead", "q1.dead", "q2.dead", "morgue"];
/// Ids `0..ADDABLE` are added; the rest never are.
const ADDABLE: usize = 6;
const ALL_IDS: usize = 8;

fn job_id(i: usize) -> JobId {
    JobId::new(1, [(i as u8).wrapping_mul(37); 18], 60_000, 1_000)
}

fn all_ids() -> impl Iterator<Item = JobId> {
    (0..ALL_IDS).map(job_id)
}

/// How the stamp of the next command relates to the highest so far.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// This much later (0: the same stamp, as in one batch).
    Later(u64),
    /// This much earlier: counts as the current time.
    Earlier(u64),
}

/// Milliseconds: arbitrary, or (as often) a multiple of 500 (`k * 500` for
/// `k` in `range`), so that timers often fall due exactly at a stamp,
/// together with each other, or exactly half a TTL after creation.
fn ms(range: std::ops::Range<u64>) -> impl Strategy<Value = u64> {
    let (low, high) = (range.start * 500, range.end * 500);
    prop_oneof![
        1 => low.max(1)..high,
        1 => range.prop_map(|k| k * 500),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Later(0)),
        20 => (1u64..300).prop_map(Step::Later),
        8 => ms(1..6).prop_map(Step::Later),
        4 => (1u64..3_000).prop_map(Step::Earlier),
        1 => ms(6..400).prop_map(Step::Later),
    ]
}

/// In generated commands this id stands for the jobs the last GETJOB handed
/// out (see [`Client`]), so that ACK, NACK, WORKING and the rest often hit
/// active jobs.
fn last_delivered() -> JobId {
    JobId::new(0xffff_ffff, [0; 18], 0, 0)
}

fn id() -> impl Strategy<Value = JobId> {
    prop_oneof![
        6 => (0..ADDABLE).prop_map(job_id),
        1 => (ADDABLE..ALL_IDS).prop_map(job_id),
        3 => Just(last_delivered()),
    ]
}

fn ids() -> impl Strategy<Value = Vec<JobId>> {
    prop_oneof![
        1 => Just(Vec::new()),
        6 => prop::collection::vec(id(), 1..=3),
        3 => Just(vec![last_delivered()]),
    ]
}

/// Mostly a queue jobs are added to, sometimes a dead-letter queue.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(&QUEUES[..]),
        2 => select(&NAMES[..]),
    ]
    .prop_map(String::from)
}

fn add() -> impl Strategy<Value = Command> {
    let queue = prop_oneof![
        8 => select(&QUEUES[..]).prop_map(String::from),
        1 => name(),
    ];
    let ttl = prop_oneof![
        2 => Just(None),
        1 => Just(Some(0)),
        10 => ms(0..40).prop_map(Some),
        4 => ms(40..600).prop_map(Some),
    ];
    let retry = prop_oneof![
        2 => Just(None),
        2 => Just(Some(0)),
        4 => ms(1..6).prop_map(Some),
        1 => ms(6..120).prop_map(Some),
    ];
    let delay = prop_oneof![
        6 => Just(None),
        1 => Just(Some(0)),
        2 => ms(1..6).prop_map(Some),
        1 => ms(6..60).prop_map(Some),
    ];
    let max_len = prop_oneof![4 => Just(None), 1 => (0u64..4).prop_map(Some)];
    let limit = prop_oneof![4 => Just(None), 1 => (0u32..4).prop_map(Some)];
    (0..ADDABLE, queue, 0u8..4, ttl, retry, delay, max_len, limit).prop_map(
        |(i, queue, body, ttl_ms, retry_ms, delay_ms, max_len, delivery_limit)| {
            Command::Add(AddJob {
                id: job_id(i),
                queue,
                body: Bytes::from(format!("body {i}.{body}")),
                ttl_ms,
                retry_ms,
                delay_ms,
                max_len,
                delivery_limit,
            })
        },
    )
}

fn command() -> impl Strategy<Value = Command> {
    let pause = prop_oneof![
        2 => Just(None),
        3 => Just(Some(PauseState::None)),
        1 => Just(Some(PauseState::In)),
        1 => Just(Some(PauseState::Out)),
        1 => Just(Some(PauseState::All)),
    ];
    let nack_delay = prop_oneof![3 => Just(0u64), 1 => ms(1..10)];
    prop_oneof![
        6 => add(),
        5 => (prop::collection::vec(name(), 1..=3), 0u32..=4)
            .prop_map(|(queues, count)| Command::Get { queues, count }),
        2 => ids().prop_map(|ids| Command::Ack { ids }),
        1 => ids().prop_map(|ids| Command::Delete { ids }),
        4 => (ids(), nack_delay).prop_map(|(ids, delay_ms)| Command::Nack { ids, delay_ms }),
        2 => id().prop_map(|id| Command::Working { id }),
        1 => ids().prop_map(|ids| Command::Enqueue { ids }),
        1 => ids().prop_map(|ids| Command::Dequeue { ids }),
        1 => (name(), pause).prop_map(|(queue, set)| Command::Pause { queue, set }),
        1 => (
            name(),
            prop_oneof![2 => Just(None), 1 => (0u32..4).prop_map(Some)],
            prop_oneof![2 => Just(None), 1 => name().prop_map(Some)],
        )
            .prop_map(|(queue, delivery_limit, dead_letter)| Command::Configure {
                queue,
                delivery_limit,
                dead_letter,
            }),
        2 => Just(Command::Tick),
    ]
}

fn ops() -> impl Strategy<Value = Vec<(Step, Command)>> {
    prop::collection::vec((step(), command()), 1..80)
}

/// Turns steps into stamps, starting from 0.
fn stamps(ops: &[(Step, Command)]) -> Vec<u64> {
    let mut highest = 0u64;
    ops.iter()
        .map(|(step, _)| {
            let stamp = match *step {
                Step::Later(ms) => highest + ms,
                Step::Earlier(ms) => highest.saturating_sub(ms),
            };
            highest = highest.max(stamp);
            stamp
        })
        .collect()
}

// ----- Running against the model ---------------------------------------------

#[derive(Default)]
struct Harness {
    machine: StateMachine,
    model: Model,
    client: Client,
    /// Ids of jobs that were acked, deleted or expired (and not added again).
    gone: BTreeSet<JobId>,
    /// RETRY 0 jobs put back in line by ENQUEUE (an operator's override of
    /// at-most-once) since they were last handed out.
    overridden: BTreeSet<JobId>,
}

impl Harness {
    /// SHOW for every id of the pool that names an existing job.
    fn observe(&self) -> BTreeMap<JobId, JobInfo> {
        all_ids()
            .filter_map(|id| self.machine.show(&id).map(|info| (id, info)))
            .collect()
    }

    /// Every queue name that can hold jobs in this run.
    fn queue_names(&self) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = NAMES.iter().map(|name| name.to_string()).collect();
        for job in &self.model.jobs {
            names.insert(job.queue.clone());
        }
        for name in names.clone() {
            names.insert(format!("{name}.dead"));
        }
        names
    }

    fn apply(&mut self, stamp: u64, command: &Command) -> Result<Response, TestCaseError> {
        let command = &self.client.resolve(command);
        let before = self.observe();
        let got = self.machine.apply(stamp, command.clone());
        let want = self.model.apply(stamp, command);
        prop_assert_eq!(&got, &want, "response to {:?} at {}", command, stamp);
        self.check_state()?;
        let after = self.observe();
        self.check_history(stamp, command, &before, &after, &got)?;
        self.client.saw(&got);
        Ok(got)
    }

    /// The machine's observable state is the model's, and its own
    /// invariants hold.
    fn check_state(&self) -> Result<(), TestCaseError> {
        let (machine, model) = (&self.machine, &self.model);
        let now = model.now;
        prop_assert_eq!(machine.now_ms(), now);
        prop_assert_eq!(machine.job_count(), model.jobs.len());
        // The leader proposes a tick when `next_due_ms` comes: never after
        // a job's next event, and never at a time already past.
        let next_job_event = model
            .jobs
            .iter()
            .flat_map(|job| [Some(job.expires), job.state_timer()])
            .flatten()
            .min();
        let next_due = machine.next_due_ms();
        if let Some(event) = next_job_event {
            prop_assert!(
                next_due.is_some_and(|due| due <= event),
                "{next_due:?} > {event}"
            );
        }
        prop_assert!(
            next_due.is_none_or(|due| due > now),
            "{next_due:?} <= {now}"
        );
        prop_assert_eq!(machine.is_empty(), model.jobs.is_empty());
        for id in all_ids() {
            prop_assert_eq!(machine.show(&id), model.info(&id), "SHOW {}", id);
        }
        // Each job is in exactly one state: queued jobs are exactly those in
        // their queue's listing, and in no other.
        let mut listed: BTreeMap<JobId, usize> = BTreeMap::new();
        for queue in self.queue_names() {
            let want = model.queued_in(&queue);
            let listing = machine.peek(&queue, i64::MAX);
            let got: Vec<JobId> = listing.iter().map(|job| job.id).collect();
            prop_assert_eq!(&got, &want, "QPEEK {}", queue);
            prop_assert_eq!(machine.len(&queue), want.len(), "QLEN {}", queue);
            let newest: Vec<JobId> = machine.peek(&queue, -2).iter().map(|j| j.id).collect();
            let want_newest: Vec<JobId> = want.iter().rev().take(2).copied().collect();
            prop_assert_eq!(newest, want_newest, "QPEEK {} -2", queue);
            prop_assert!(machine.peek(&queue, 0).is_empty());
            for pair in listing.windows(2) {
                prop_assert!(
                    pair[0].created_ms <= pair[1].created_ms,
                    "{} not in creation order",
                    queue
                );
            }
            for job in &listing {
                prop_assert_eq!(job.state, JobState::Queued);
                prop_assert_eq!(&job.queue, &queue);
                *listed.entry(job.id).or_default() += 1;
            }
            prop_assert_eq!(machine.pause_state(&queue), model.pause_of(&queue));
            prop_assert_eq!(
                machine.queue_stats(&queue),
                model.stats(&queue),
                "QSTAT {}",
                queue
            );
        }
        for (id, info) in self.observe() {
            let expected = usize::from(info.state == JobState::Queued);
            prop_assert_eq!(listed.get(&id).copied().unwrap_or(0), expected, "{}", id);
            prop_assert!(info.expires_ms > now, "{} outlived its TTL", id);
            // One pending timer per state: none while queued, the delay's
            // end while delayed, the lease's end (one lease) while active
            // unless RETRY is 0.
            match info.state {
                JobState::Queued => prop_assert_eq!(info.next_event_ms, None),
                JobState::Delayed => prop_assert!(info.next_event_ms.is_some()),
                JobState::Active => {
                    prop_assert_eq!(info.next_event_ms.is_some(), info.retry_ms > 0)
                }
            }
            if let Some(at) = info.next_event_ms {
                prop_assert!(at > now, "{}: a timer due at {} did not fire", id, at);
            }
        }
        Ok(())
    }

    /// Checks that need only what was seen before and after one command.
    fn check_history(
        &mut self,
        stamp: u64,
        command: &Command,
        before: &BTreeMap<JobId, JobInfo>,
        after: &BTreeMap<JobId, JobInfo>,
        response: &Response,
    ) -> Result<(), TestCaseError> {
        let now = self.machine.now_ms();
        prop_assert!(now >= stamp, "time went backwards");
        if let Response::Jobs(delivered) = response {
            let distinct: BTreeSet<JobId> = delivered.iter().map(|d| d.id).collect();
            prop_assert_eq!(
                distinct.len(),
                delivered.len(),
                "a job delivered twice at once"
            );
            let mut last_created: BTreeMap<&str, u64> = BTreeMap::new();
            for delivery in delivered {
                let id = delivery.id;
                prop_assert!(
                    !self.gone.contains(&id),
                    "{} delivered after it was gone",
                    id
                );
                let (Some(old), Some(new)) = (before.get(&id), after.get(&id)) else {
                    return Err(TestCaseError::fail(format!("{id} delivered but unknown")));
                };
                // At most one lease at a time: a job still leased (or handed
                // out at most once) is not handed out again.
                if old.state != JobState::Queued {
                    let ended = old.next_event_ms.is_some_and(|at| at <= now);
                    prop_assert!(ended, "{} delivered while {:?}", id, old);
                }
                // At most once: a RETRY 0 job is handed out once, unless an
                // ENQUEUE put it back.
                if new.retry_ms == 0 && old.deliveries > 0 {
                    prop_assert!(self.overridden.remove(&id), "{} delivered twice", id);
                }
                prop_assert_eq!(new.state, JobState::Active);
                prop_assert_eq!(new.deliveries, old.deliveries + 1);
                prop_assert_eq!(&new.queue, &delivery.queue);
                prop_assert_eq!(new.nacks, delivery.nacks);
                prop_assert_eq!(new.additional_deliveries, delivery.additional_deliveries);
                // A queue serves its jobs in creation order.
                let last = last_created.entry(&delivery.queue).or_insert(0);
                prop_assert!(*last <= new.created_ms, "{} served out of order", id);
                *last = new.created_ms;
            }
        }
        for (id, new) in after {
            match before.get(id) {
                // The same job (not one that expired and was added again
                // under its id by this very command).
                Some(old) if old.created_ms == new.created_ms => {
                    prop_assert!(new.nacks >= old.nacks, "{} nacks shrank", id);
                    prop_assert!(new.additional_deliveries >= old.additional_deliveries);
                    prop_assert!(new.deliveries >= old.deliveries, "{} deliveries shrank", id);
                }
                // A job added now.
                _ => {
                    self.gone.remove(id);
                }
            }
        }
        if let Command::Enqueue { ids } = command {
            for id in ids {
                let (Some(old), Some(new)) = (before.get(id), after.get(id)) else {
                    continue;
                };
                if new.retry_ms == 0 && old.state != JobState::Queued {
                    self.overridden.insert(*id);
                }
            }
        }
        for (id, old) in before {
            if after
                .get(id)
                .is_none_or(|new| new.created_ms != old.created_ms)
            {
                prop_assert!(
                    !matches!(response, Response::Jobs(d) if d.iter().any(|d| d.id == *id)),
                    "{} delivered as it went",
                    id
                );
                if !after.contains_key(id) {
                    self.gone.insert(*id);
                }
            }
        }
        Ok(())
    }

    /// Liveness: every job that may be delivered again (RETRY > 0) and
    /// whose lease or delay ends before its TTL is queued again before it
    /// expires, as time advances in ticks of at most `tick_ms`.
    fn check_liveness(&mut self, tick_ms: u64) -> Result<(), TestCaseError> {
        let mut pending: BTreeMap<JobId, u64> = self
            .observe()
            .into_iter()
            .filter(|(_, job)| {
                job.retry_ms > 0
                    && job.state != JobState::Queued
                    && job.next_event_ms.is_some_and(|at| at < job.expires_ms)
            })
            .map(|(id, job)| (id, job.expires_ms))
            .collect();
        while let Some(&first_expiry) = pending.values().min() {
            let now = self.machine.now_ms();
            let stamp = (now + tick_ms).min(first_expiry - 1);
            prop_assert!(stamp > now, "jobs {:?} about to expire unqueued", pending);
            self.apply(stamp, &Command::Tick)?;
            let seen = self.observe();
            for id in pending.keys() {
                prop_assert!(seen.contains_key(id), "{} vanished before its TTL", id);
            }
            pending.retain(|id, _| seen[id].state != JobState::Queued);
        }
        // Queued jobs are handed out once their queues are not paused.
        let queues: Vec<String> = self.queue_names().into_iter().collect();
        for queue in &queues {
            self.apply(
                self.machine.now_ms(),
                &Command::Pause {
                    queue: queue.clone(),
                    set: Some(PauseState::None),
                },
            )?;
        }
        let queued: BTreeSet<JobId> = self
            .observe()
            .into_iter()
            .filter(|(_, job)| job.state == JobState::Queued)
            .map(|(id, _)| id)
            .collect();
        let get = Command::Get {
            queues,
            count: ALL_IDS as u32,
        };
        let Response::Jobs(delivered) = self.apply(self.machine.now_ms(), &get)? else {
            return Err(TestCaseError::fail("GETJOB answered no jobs"));
        };
        let delivered: BTreeSet<JobId> = delivered.iter().map(|d| d.id).collect();
        prop_assert_eq!(delivered, queued);
        Ok(())
    }
}

/// A consumer's memory of the jobs it was handed last: it stands in for
/// [`last_delivered`] in the commands it sends.
#[derive(Clone, Debug, Default)]
struct Client {
    last: Vec<JobId>,
}

impl Client {
    fn resolve(&self, command: &Command) -> Command {
        let stand_in = last_delivered();
        let ids = |ids: &[JobId]| -> Vec<JobId> {
            ids.iter()
                .flat_map(|&id| {
                    if id == stand_in {
                        self.last.clone()
                    } else {
                        vec![id]
                    }
                })
                .collect()
        };
        match command {
            Command::Ack { ids: i } => Command::Ack { ids: ids(i) },
            Command::Delete { ids: i } => Command::Delete { ids: ids(i) },
            Command::Enqueue { ids: i } => Command::Enqueue { ids: ids(i) },
            Command::Dequeue { ids: i } => Command::Dequeue { ids: ids(i) },
            Command::Nack { ids: i, delay_ms } => Command::Nack {
                ids: ids(i),
                delay_ms: *delay_ms,
            },
            Command::Working { id } if *id == stand_in => Command::Working {
                id: self.last.first().copied().unwrap_or(stand_in),
            },
            other => other.clone(),
        }
    }

    fn saw(&mut self, response: &Response) {
        if let Response::Jobs(delivered) = response {
            if !delivered.is_empty() {
                self.last = delivered.iter().map(|d| d.id).collect();
            }
        }
    }
}

/// Replays a sequence, collecting the responses.
fn replay(
    machine: &mut StateMachine,
    client: &mut Client,
    ops: &[(Step, Command)],
    stamps: &[u64],
) -> Vec<Response> {
    ops.iter()
        .zip(stamps)
        .map(|((_, command), &stamp)| {
            let response = machine.apply(stamp, client.resolve(command));
            client.saw(&response);
            response
        })
        .collect()
}

/// What QPEEK and SHOW say: compares machines without their bytes.
fn observable(machine: &StateMachine) -> (Vec<Option<JobInfo>>, Vec<Vec<JobInfo>>, u64) {
    let shown = all_ids().map(|id| machine.show(&id)).collect();
    let mut names: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    names.extend(NAMES.iter().map(|n| format!("{n}.dead")));
    let listed = names.iter().map(|q| machine.peek(q, i64::MAX)).collect();
    (shown, listed, machine.now_ms())
}

/// `default` cases, or `PROPTEST_CASES` for a longer soak.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(20_000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The machine answers and looks exactly like the model after every
    /// command, and jobs that may be delivered again are, in time.
    #[test]
    fn machine_matches_model(ops in ops(), tick_ms in 50u64..2_000) {
        let mut harness = Harness::default();
        for ((_, command), stamp) in ops.iter().zip(stamps(&ops)) {
            harness.apply(stamp, command)?;
        }
        harness.check_liveness(tick_ms)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(2_000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Two machines fed the same sequence answer alike and hold
    /// byte-identical snapshots after every command.
    #[test]
    fn same_commands_same_bytes(ops in ops()) {
        let stamps = stamps(&ops);
        let (mut a, mut b) = (StateMachine::new(), StateMachine::new());
        let mut client = Client::default();
        for ((_, command), &stamp) in ops.iter().zip(&stamps) {
            let command = client.resolve(command);
            let answer = a.apply(stamp, command.clone());
            prop_assert_eq!(&answer, &b.apply(stamp, command));
            prop_assert_eq!(a.snapshot(), b.snapshot());
            client.saw(&answer);
        }
    }

    /// Snapshot at any point, restore, continue: the same answers and the
    /// same final snapshot as never snapshotting.
    #[test]
    fn restore_then_continue_is_invisible(ops in ops(), at in any::<Index>()) {
        let stamps = stamps(&ops);
        let split = at.index(ops.len() + 1);
        let mut straight = StateMachine::new();
        let want = replay(&mut straight, &mut Client::default(), &ops, &stamps);

        let mut first = StateMachine::new();
        let mut client = Client::default();
        replay(&mut first, &mut client, &ops[..split], &stamps[..split]);
        let bytes = first.snapshot();
        let mut restored = StateMachine::restore(&bytes).expect("own snapshot restores");
        prop_assert_eq!(restored.snapshot(), bytes, "restore then snapshot changed the bytes");
        prop_assert!(observable(&restored) == observable(&first));
        let got = replay(&mut restored, &mut client, &ops[split..], &stamps[split..]);
        prop_assert_eq!(&got[..], &want[split..]);
        prop_assert_eq!(restored.snapshot(), straight.snapshot());
        prop_assert!(observable(&restored) == observable(&straight));
    }

    /// Arbitrary bytes never make restore panic, and the error matches the
    /// format byte.
    #[test]
    fn restoring_garbage_fails_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let result = StateMachine::restore(&bytes);
        match bytes.first() {
            None => prop_assert_eq!(result.err(), Some(SnapshotError::Empty)),
            Some(&0) => prop_assert!(matches!(result, Err(SnapshotError::Corrupt(_)))),
            Some(&found) if found > SNAPSHOT_FORMAT => prop_assert_eq!(
                result.err(),
                Some(SnapshotError::NewerFormat { found, supported: SNAPSHOT_FORMAT })
            ),
            Some(_) => match result {
                Ok(mut machine) => exercise(&mut machine),
                Err(error) => prop_assert!(matches!(error, SnapshotError::Corrupt(_)), "{}", error),
            },
        }
    }

    /// A real snapshot with a few bytes changed either is refused as
    /// corrupt or restores to a machine that works (no panics later).
    #[test]
    fn restoring_damaged_snapshots_never_panics(
        ops in ops(),
        damage in prop::collection::vec((any::<Index>(), any::<u8>()), 1..4),
    ) {
        let mut machine = StateMachine::new();
        replay(&mut machine, &mut Client::default(), &ops, &stamps(&ops));
        let mut bytes = machine.snapshot();
        for (at, value) in damage {
            // Keep the format byte: other tests cover it.
            let i = 1 + at.index(bytes.len() - 1);
            bytes[i] = value;
        }
        match StateMachine::restore(&bytes) {
            Ok(mut machine) => exercise(&mut machine),
            Err(error) => prop_assert!(matches!(error, SnapshotError::Corrupt(_)), "{}", error),
        }
    }
}

/// Runs every kind of command over a restored machine, at stamps up to the
/// end of time, to shake out panics; then its snapshot must restore.
fn exercise(machine: &mut StateMachine) {
    let ids: Vec<JobId> = all_ids().collect();
    let get = Command::Get {
        queues: NAMES.iter().map(|n| n.to_string()).collect(),
        count: 100,
    };
    let start = machine.now_ms();
    for (i, later) in [0, 1, 1_000, 400_000, 100_000_000, u64::MAX / 2, u64::MAX]
        .into_iter()
        .enumerate()
    {
        let at = start.saturating_add(later);
        for id in &ids {
            machine.apply(at, Command::Working { id: *id });
        }
        machine.apply(at, Command::Dequeue { ids: ids.clone() });
        let nack = |delay_ms| Command::Nack {
            ids: ids.clone(),
            delay_ms,
        };
        machine.apply(at, nack(10));
        machine.apply(at, Command::Enqueue { ids: ids.clone() });
        machine.apply(at, get.clone());
        machine.apply(at, nack(0));
        machine.apply(at, get.clone());
        machine.apply(at, Command::Ack { ids: vec![ids[i]] });
    }
    let bytes = machine.snapshot();
    let restored = StateMachine::restore(&bytes).map(|m| m.snapshot());
    assert!(
        restored == Ok(bytes),
        "a machine's own snapshot must restore"
    );
}

// ----- Fixed cases -----------------------------------------------------------

/// A machine with a job in each state, for the restore-error tests.
fn busy_machine() -> StateMachine {
    let mut machine = StateMachine::new();
    for (i, delay_ms) in [None, None, Some(500)].into_iter().enumerate() {
        let add = AddJob {
            id: job_id(i),
            queue: "q0".to_string(),
            body: Bytes::from_static(b"body"),
            ttl_ms: Some(10_000),
            retry_ms: Some(1_000),
            delay_ms,
            max_len: None,
            delivery_limit: Some(2),
        };
        assert_eq!(
            machine.apply(100, Command::Add(add)),
            Response::Added(job_id(i))
        );
    }
    let get = Command::Get {
        queues: vec!["q0".to_string()],
        count: 1,
    };
    assert!(matches!(machine.apply(200, get), Response::Jobs(jobs) if jobs.len() == 1));
    machine.apply(
        200,
        Command::Configure {
            queue: "q0".to_string(),
            delivery_limit: Some(3),
            dead_letter: Some("morgue".to_string()),
        },
    );
    machine.apply(
        200,
        Command::Pause {
            queue: "q1".to_string(),
            set: Some(PauseState::In),
        },
    );
    machine
}

#[test]
fn restore_reports_each_error() {
    assert_eq!(StateMachine::restore(&[]).err(), Some(SnapshotError::Empty));

    let good = busy_machine().snapshot();
    assert_eq!(good[0], SNAPSHOT_FORMAT);
    assert_eq!(
        StateMachine::restore(&good).map(|m| m.snapshot()).ok(),
        Some(good.clone())
    );

    for found in [SNAPSHOT_FORMAT + 1, u8::MAX] {
        let mut newer = good.clone();
        newer[0] = found;
        assert_eq!(
            StateMachine::restore(&newer).err(),
            Some(SnapshotError::NewerFormat {
                found,
                supported: SNAPSHOT_FORMAT
            })
        );
        assert_eq!(
            StateMachine::restore(&[found]).err(),
            Some(SnapshotError::NewerFormat {
                found,
                supported: SNAPSHOT_FORMAT
            })
        );
    }

    let mut zero = good.clone();
    zero[0] = 0;
    assert!(matches!(
        StateMachine::restore(&zero),
        Err(SnapshotError::Corrupt(_))
    ));

    // Every truncation is corrupt.
    for len in 1..good.len() {
        assert!(
            matches!(
                StateMachine::restore(&good[..len]),
                Err(SnapshotError::Corrupt(_))
            ),
            "truncated to {len} bytes"
        );
    }

    // Garbage after a version byte.
    for garbage in [
        &[0xff; 12][..],
        &[0x80; 20][..],
        &[1, 2, 0xff, 0xff, 0xff][..],
    ] {
        let mut bytes = vec![SNAPSHOT_FORMAT];
        bytes.extend_from_slice(garbage);
        assert!(
            matches!(
                StateMachine::restore(&bytes),
                Err(SnapshotError::Corrupt(_))
            ),
            "{garbage:?}"
        );
    }
}

// ----- Hand-made snapshots ---------------------------------------------------

/// One job record of snapshot format 1, as `snapshot()` would write it.
#[derive(Clone)]
struct RawJob {
    seq: u64,
    /// The id as text (`D-` node `-` random `-` ttl field).
    id: String,
    queue: Vec<u8>,
    created: u64,
    expires: u64,
    retry: u64,
    /// 0 delayed, 1 queued, 2 active.
    state: u64,
    timer: Option<u64>,
    counters: [u64; 3],
    limit: Option<u64>,
}

impl RawJob {
    fn queued(seq: u64, id: JobId) -> Self {
        RawJob {
            seq,
            id: id.to_string(),
            queue: b"q0".to_vec(),
            created: 100,
            expires: 10_100,
            retry: 1_000,
            state: 1,
            timer: None,
            counters: [0; 3],
            limit: None,
        }
    }
}

/// A hand-written encoder of snapshot format 1 (a version byte, then
/// postcard: varints, length-prefixed strings, tagged options), to build
/// states that `snapshot()` never writes.
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push(value as u8 | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn option(&mut self, value: Option<u64>) {
        match value {
            None => self.0.push(0),
            Some(value) => {
                self.0.push(1);
                self.varint(value);
            }
        }
    }

    fn snapshot(now: u64, next_seq: u64, jobs: &[RawJob], queues: &[RawQueue]) -> Vec<u8> {
        let mut raw = Raw(vec![SNAPSHOT_FORMAT]);
        raw.varint(now);
        raw.varint(next_seq);
        raw.varint(jobs.len() as u64);
        for job in jobs {
            raw.varint(job.seq);
            let text = job.id.as_bytes();
            let hex = |range: std::ops::Range<usize>| {
                u64::from_str_radix(&job.id[range], 16).expect("hex field")
            };
            raw.varint(hex(2..10));
            raw.0.extend_from_slice(&text[11..35]);
            raw.varint(hex(36..40));
            raw.bytes(&job.queue);
            raw.bytes(b"body");
            raw.varint(job.created);
            raw.varint(job.expires);
            raw.varint(job.retry);
            raw.varint(job.state);
            raw.option(job.timer);
            for counter in job.counters {
                raw.varint(counter);
            }
            raw.option(job.limit);
        }
        raw.varint(queues.len() as u64);
        for queue in queues {
            raw.bytes(queue.name.as_bytes());
            raw.varint(queue.pause);
            raw.option(queue.limit);
            match queue.dead_letter {
                None => raw.0.push(0),
                Some(dead) => {
                    raw.0.push(1);
                    raw.bytes(dead.as_bytes());
                }
            }
            for field in [
                queue.created,
                queue.last_activity,
                queue.jobs_in,
                queue.jobs_out,
            ] {
                raw.varint(field);
            }
        }
        raw.0
    }
}

/// A queue as the snapshot format writes it.
struct RawQueue {
    name: &'static str,
    /// 0..=3: none, in, out, all.
    pause: u64,
    limit: Option<u64>,
    dead_letter: Option<&'static str>,
    created: u64,
    last_activity: u64,
    jobs_in: u64,
    jobs_out: u64,
}

/// The hand-written encoder writes what `snapshot()` writes, so the
/// hand-made snapshots below differ from real ones only where intended.
#[test]
fn hand_made_snapshots_match_the_real_format() {
    let machine = busy_machine();
    let jobs: Vec<RawJob> = (0..3)
        .map(|i| {
            let info = machine.show(&job_id(i)).expect("busy job");
            RawJob {
                seq: i as u64,
                id: info.id.to_string(),
                queue: info.queue.into_bytes(),
                created: info.created_ms,
                expires: info.expires_ms,
                retry: info.retry_ms,
                state: match info.state {
                    JobState::Delayed => 0,
                    JobState::Queued => 1,
                    JobState::Active => 2,
                },
                timer: info.next_event_ms,
                counters: [
                    info.nacks.into(),
                    info.additional_deliveries.into(),
                    info.deliveries.into(),
                ],
                limit: info.delivery_limit.map(u64::from),
            }
        })
        .collect();
    // q0: two jobs queued at 100 (the third is still delayed), one handed
    // out at 200, then configured; q1 exists only because it was paused.
    let queues = [
        RawQueue {
            name: "q0",
            pause: 0,
            limit: Some(3),
            dead_letter: Some("morgue"),
            created: 100,
            last_activity: 200,
            jobs_in: 2,
            jobs_out: 1,
        },
        RawQueue {
            name: "q1",
            pause: 1,
            limit: None,
            dead_letter: None,
            created: 200,
            last_activity: 200,
            jobs_in: 0,
            jobs_out: 0,
        },
    ];
    assert_eq!(
        Raw::snapshot(machine.now_ms(), 3, &jobs, &queues),
        machine.snapshot()
    );
}

/// States no run of the machine can produce are refused as corrupt, rather
/// than restored into a machine that panics later.
#[test]
fn impossible_snapshots_are_corrupt() {
    let (a, b) = (job_id(0), job_id(1));
    let restore = |jobs: &[RawJob], next_seq: u64| {
        StateMachine::restore(&Raw::snapshot(1_000, next_seq, jobs, &[]))
    };
    let fine = RawJob::queued(0, a);
    let mut machine = restore(std::slice::from_ref(&fine), 1).expect("a possible state");
    exercise(&mut machine);

    let mut cases: Vec<(&str, Vec<RawJob>, u64)> = vec![
        ("seq not below next_seq", vec![fine.clone()], 0),
        ("duplicate id", vec![fine.clone(), RawJob::queued(1, a)], 2),
        ("duplicate seq", vec![fine.clone(), RawJob::queued(0, b)], 2),
    ];
    let mut changed = |what: &'static str, change: &dyn Fn(&mut RawJob)| {
        let mut job = fine.clone();
        change(&mut job);
        cases.push((what, vec![job], 1));
    };
    changed("queued with a timer", &|job| job.timer = Some(2_000));
    changed("delayed without a timer", &|job| job.state = 0);
    changed("unknown state", &|job| job.state = 3);
    changed("expires before created", &|job| job.expires = 50);
    changed("created after now", &|job| {
        job.created = 5_000;
        job.expires = 20_000;
    });
    changed("queue name not UTF-8", &|job| job.queue = vec![0xff, 0xfe]);
    changed("id not base64", &|job| {
        job.id.replace_range(11..12, "!");
    });
    changed("id not UTF-8", &|job| {
        // Same length: the byte 0xff is spliced in below.
        job.id.replace_range(11..12, "\u{0}");
    });
    for (what, jobs, next_seq) in cases {
        let mut bytes = Raw::snapshot(1_000, next_seq, &jobs, &[]);
        if what == "id not UTF-8" {
            let at = bytes.iter().position(|&b| b == 0).expect("spliced byte");
            bytes[at] = 0xff;
        }
        let result = std::panic::catch_unwind(|| StateMachine::restore(&bytes).err());
        match result {
            Ok(Some(SnapshotError::Corrupt(_))) => {}
            Ok(Some(other)) => panic!("{what}: {other}"),
            Ok(None) => panic!("{what}: restored"),
            Err(_) => panic!("{what}: restore panicked"),
        }
    }
}

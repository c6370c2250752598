//! The job state machine: every replica applies the same commands with the
//! same time stamps and ends in the same state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::command::{AddJob, Command, Delivery, PauseState, Response};
use crate::error::QueueError;
use crate::id::JobId;
use crate::snapshot::{self, JobRecord, QueueRecord, SnapshotError, SnapshotV1};

mod scan;
pub use scan::{JobCursor, JobFilter, Page, QueueFilter};

/// Where a job is in its life. Acked, deleted and expired jobs are gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Invisible until its delay ends.
    Delayed,
    /// Waiting in its queue to be handed out.
    Queued,
    /// Handed out, leased to a consumer.
    Active,
}

/// What SHOW reports about one job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobInfo {
    /// The id.
    pub id: JobId,
    /// The queue it is in.
    pub queue: String,
    /// Its state.
    pub state: JobState,
    /// Its body.
    pub body: Bytes,
    /// When it was added (log time, ms).
    pub created_ms: u64,
    /// When it expires (log time, ms).
    pub expires_ms: u64,
    /// Its lease length.
    pub retry_ms: u64,
    /// When its lease ends (active) or its delay ends (delayed).
    pub next_event_ms: Option<u64>,
    /// NACKs so far.
    pub nacks: u32,
    /// Lease expiries so far.
    pub additional_deliveries: u32,
    /// Times handed out.
    pub deliveries: u32,
    /// Its own delivery limit, if it has one.
    pub delivery_limit: Option<u32>,
}

/// A job. Internally jobs are keyed by `seq`, their creation order, which is
/// also their position in their queue.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Job {
    id: JobId,
    queue: Arc<str>,
    body: Bytes,
    created_ms: u64,
    expires_ms: u64,
    retry_ms: u64,
    state: JobState,
    /// The lease end (Active) or delay end (Delayed): the job's entry in
    /// `timers` besides its expiry.
    state_timer_ms: Option<u64>,
    nacks: u32,
    additional_deliveries: u32,
    deliveries: u32,
    delivery_limit: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct QueueState {
    /// Queued jobs by creation order: the oldest is handed out first.
    queued: BTreeSet<u64>,
    pause: PauseState,
    delivery_limit: Option<u32>,
    dead_letter: Option<Arc<str>>,
}

impl QueueState {
    fn is_idle(&self) -> bool {
        self.queued.is_empty()
            && self.pause == PauseState::None
            && self.delivery_limit.is_none()
            && self.dead_letter.is_none()
    }
}

/// Why a job has an entry in `timers`. The order puts expiry first, so a job
/// whose lease and TTL end together expires rather than being requeued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Expire,
    StateChange,
}

/// The deterministic job state machine. See the crate documentation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateMachine {
    now_ms: u64,
    next_seq: u64,
    jobs: BTreeMap<u64, Job>,
    seq_of: BTreeMap<JobId, u64>,
    queues: BTreeMap<Arc<str>, QueueState>,
    /// Every pending time event, earliest first: (when, job, why).
    timers: BTreeSet<(u64, u64, TimerKind)>,
}

impl StateMachine {
    /// An empty state machine at time 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The log time of the last applied command.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// How many jobs exist, in any state.
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// Applies one chosen command stamped `stamp_ms` by the leader. Time never
    /// goes backwards: a stamp below the current time counts as the current
    /// time. Leases, delays and TTLs that end by then take effect first.
    pub fn apply(&mut self, stamp_ms: u64, command: Command) -> Response {
        self.advance_to(stamp_ms);
        match command {
            Command::Add(add) => match self.add(add) {
                Ok(id) => Response::Added(id),
                Err(error) => Response::Error(error),
            },
            Command::Get { queues, count } => Response::Jobs(self.get(&queues, count)),
            Command::Ack { ids } | Command::Delete { ids } => {
                Response::Count(ids.iter().filter(|id| self.remove(id)).count() as u64)
            }
            Command::Nack { ids, delay_ms } => {
                Response::Count(ids.iter().filter(|id| self.nack(id, delay_ms)).count() as u64)
            }
            Command::Working { id } => match self.working(&id) {
                Ok(retry_ms) => Response::Extended { retry_ms },
                Err(error) => Response::Error(error),
            },
            Command::Enqueue { ids } => {
                Response::Count(ids.iter().filter(|id| self.enqueue(id)).count() as u64)
            }
            Command::Dequeue { ids } => {
                Response::Count(ids.iter().filter(|id| self.dequeue(id)).count() as u64)
            }
            Command::Pause { queue, set } => Response::Paused(self.pause(&queue, set)),
            Command::Configure {
                queue,
                delivery_limit,
                dead_letter,
            } => {
                self.configure(&queue, delivery_limit, dead_letter.as_deref());
                Response::Done
            }
            Command::Tick => Response::Done,
        }
    }

    // ----- Snapshots -------------------------------------------------------

    /// The whole state as bytes: a format version byte, then postcard.
    /// Deterministic: equal states give equal bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let jobs = self
            .jobs
            .iter()
            .map(|(&seq, job)| JobRecord {
                seq,
                id: job.id,
                queue: job.queue.clone(),
                body: job.body.clone(),
                created_ms: job.created_ms,
                expires_ms: job.expires_ms,
                retry_ms: job.retry_ms,
                state: job.state,
                state_timer_ms: job.state_timer_ms,
                nacks: job.nacks,
                additional_deliveries: job.additional_deliveries,
                deliveries: job.deliveries,
                delivery_limit: job.delivery_limit,
            })
            .collect();
        let queues = self
            .queues
            .iter()
            .filter(|(_, q)| {
                q.pause != PauseState::None || q.delivery_limit.is_some() || q.dead_letter.is_some()
            })
            .map(|(name, q)| QueueRecord {
                name: name.clone(),
                pause: q.pause,
                delivery_limit: q.delivery_limit,
                dead_letter: q.dead_letter.clone(),
            })
            .collect();
        snapshot::encode(&SnapshotV1 {
            now_ms: self.now_ms,
            next_seq: self.next_seq,
            jobs,
            queues,
        })
    }

    /// Rebuilds a state machine from [`snapshot`](Self::snapshot) bytes.
    pub fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let snapshot = snapshot::decode(bytes)?;
        let mut machine = StateMachine {
            now_ms: snapshot.now_ms,
            next_seq: snapshot.next_seq,
            ..StateMachine::default()
        };
        for record in snapshot.queues {
            let name = machine.queue_name(&record.name);
            let dead_letter = record.dead_letter.map(|d| machine.queue_name(&d));
            let state = machine.queues.entry(name).or_default();
            state.pause = record.pause;
            state.delivery_limit = record.delivery_limit;
            state.dead_letter = dead_letter;
        }
        for record in snapshot.jobs {
            let seq = record.seq;
            let queue = machine.queue_name(&record.queue);
            machine.seq_of.insert(record.id, seq);
            machine
                .timers
                .insert((record.expires_ms, seq, TimerKind::Expire));
            if let Some(at_ms) = record.state_timer_ms {
                machine.timers.insert((at_ms, seq, TimerKind::StateChange));
            }
            if record.state == JobState::Queued {
                machine
                    .queues
                    .entry(queue.clone())
                    .or_default()
                    .queued
                    .insert(seq);
            }
            machine.jobs.insert(
                seq,
                Job {
                    id: record.id,
                    queue,
                    body: record.body,
                    created_ms: record.created_ms,
                    expires_ms: record.expires_ms,
                    retry_ms: record.retry_ms,
                    state: record.state,
                    state_timer_ms: record.state_timer_ms,
                    nacks: record.nacks,
                    additional_deliveries: record.additional_deliveries,
                    deliveries: record.deliveries,
                    delivery_limit: record.delivery_limit,
                },
            );
        }
        Ok(machine)
    }

    // ----- Queries (no log entry needed; they read the applied state) -----

    /// QLEN: how many jobs wait in `queue`.
    pub fn len(&self, queue: &str) -> usize {
        self.queues.get(queue).map_or(0, |q| q.queued.len())
    }

    /// True when no job exists.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// QPEEK: up to `count` queued jobs of `queue` without handing them out,
    /// oldest first, or newest first for a negative count.
    pub fn peek(&self, queue: &str, count: i64) -> Vec<JobInfo> {
        let Some(q) = self.queues.get(queue) else {
            return Vec::new();
        };
        let take = count.unsigned_abs() as usize;
        let info = |seq: &u64| self.info(*seq);
        if count >= 0 {
            q.queued.iter().take(take).map(info).collect()
        } else {
            q.queued.iter().rev().take(take).map(info).collect()
        }
    }

    /// SHOW: everything about one job.
    pub fn show(&self, id: &JobId) -> Option<JobInfo> {
        self.seq_of.get(id).map(|seq| self.info(*seq))
    }

    /// The pause state of `queue`.
    pub fn pause_state(&self, queue: &str) -> PauseState {
        self.queues.get(queue).map_or(PauseState::None, |q| q.pause)
    }

    fn info(&self, seq: u64) -> JobInfo {
        let job = &self.jobs[&seq];
        JobInfo {
            id: job.id,
            queue: job.queue.to_string(),
            state: job.state,
            body: job.body.clone(),
            created_ms: job.created_ms,
            expires_ms: job.expires_ms,
            retry_ms: job.retry_ms,
            next_event_ms: job.state_timer_ms,
            nacks: job.nacks,
            additional_deliveries: job.additional_deliveries,
            deliveries: job.deliveries,
            delivery_limit: job.delivery_limit,
        }
    }

    // ----- Time ------------------------------------------------------------

    /// Fires every timer due by `stamp_ms`, in time order.
    fn advance_to(&mut self, stamp_ms: u64) {
        self.now_ms = self.now_ms.max(stamp_ms);
        while let Some(&(at_ms, seq, kind)) = self.timers.first() {
            if at_ms > self.now_ms {
                break;
            }
            self.timers.pop_first();
            match kind {
                TimerKind::Expire => self.delete(seq),
                TimerKind::StateChange => {
                    let job = self.jobs.get_mut(&seq).expect("timers name live jobs");
                    job.state_timer_ms = None;
                    match job.state {
                        // The lease ended without an ack: deliver again.
                        JobState::Active => {
                            job.additional_deliveries += 1;
                            self.requeue(seq);
                        }
                        // A NACK's delay ended (only a NACK delays a job
                        // with nacks; a DEQUEUEd job may have no delivery
                        // yet): the delivery limit applies as it does to an
                        // undelayed NACK.
                        JobState::Delayed if job.nacks > 0 => self.requeue(seq),
                        // An ADDJOB's delay ended.
                        JobState::Delayed => self.queue_job(seq),
                        JobState::Queued => unreachable!("queued jobs have no state timer"),
                    }
                }
            }
        }
    }

    fn set_state_timer(&mut self, seq: u64, at_ms: Option<u64>) {
        let job = self.jobs.get_mut(&seq).expect("live job");
        if let Some(old) = job.state_timer_ms.take() {
            self.timers.remove(&(old, seq, TimerKind::StateChange));
        }
        job.state_timer_ms = at_ms;
        if let Some(at_ms) = at_ms {
            self.timers.insert((at_ms, seq, TimerKind::StateChange));
        }
    }

    // ----- Transitions -----------------------------------------------------

    fn add(&mut self, add: AddJob) -> Result<JobId, QueueError> {
        let times = add.times()?;
        if self.seq_of.contains_key(&add.id) {
            // The same proposal applied twice (a client retry that both
            // arrived): the job exists; answer as if added.
            return Ok(add.id);
        }
        let queue = self.queue_name(&add.queue);
        let state = self.queues.get(&queue);
        if state.is_some_and(|q| q.pause.refuses_in()) {
            return Err(QueueError::Paused);
        }
        if let Some(max_len) = add.max_len {
            if state.map_or(0, |q| q.queued.len()) as u64 >= max_len {
                return Err(QueueError::MaxLen);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let expires_ms = self.now_ms.saturating_add(times.ttl_ms);
        self.jobs.insert(
            seq,
            Job {
                id: add.id,
                queue,
                body: add.body,
                created_ms: self.now_ms,
                expires_ms,
                retry_ms: times.retry_ms,
                state: JobState::Delayed,
                state_timer_ms: None,
                nacks: 0,
                additional_deliveries: 0,
                deliveries: 0,
                delivery_limit: add.delivery_limit,
            },
        );
        self.seq_of.insert(add.id, seq);
        self.timers.insert((expires_ms, seq, TimerKind::Expire));
        if times.delay_ms > 0 {
            let due = self.now_ms.saturating_add(times.delay_ms);
            self.set_state_timer(seq, Some(due));
        } else {
            self.queue_job(seq);
        }
        Ok(add.id)
    }

    /// Disque's order: one job from each queue per pass, left to right,
    /// passes repeated until COUNT jobs or a pass that finds nothing, so one
    /// busy queue cannot starve the others named after it.
    fn get(&mut self, queues: &[String], count: u32) -> Vec<Delivery> {
        let count = count as usize;
        let mut out = Vec::new();
        while out.len() < count {
            let before = out.len();
            for name in queues {
                if out.len() == count {
                    break;
                }
                let Some(seq) = self.pop_oldest(name) else {
                    continue;
                };
                let job = self.jobs.get_mut(&seq).expect("queued jobs are live");
                job.state = JobState::Active;
                job.deliveries += 1;
                out.push(Delivery {
                    queue: name.clone(),
                    id: job.id,
                    body: job.body.clone(),
                    nacks: job.nacks,
                    additional_deliveries: job.additional_deliveries,
                });
                let lease_end =
                    (job.retry_ms > 0).then(|| self.now_ms.saturating_add(job.retry_ms));
                self.set_state_timer(seq, lease_end);
            }
            if out.len() == before {
                break;
            }
        }
        for name in queues {
            self.forget_idle_queue(name);
        }
        out
    }

    /// Takes the oldest queued job of `queue`, unless the queue is paused
    /// for output.
    fn pop_oldest(&mut self, queue: &str) -> Option<u64> {
        let queue = self.queues.get_mut(queue)?;
        if queue.pause.refuses_out() {
            return None;
        }
        queue.queued.pop_first()
    }

    fn nack(&mut self, id: &JobId, delay_ms: u64) -> bool {
        let Some(&seq) = self.seq_of.get(id) else {
            return false;
        };
        let job = self.jobs.get_mut(&seq).expect("indexed jobs are live");
        // At most once: a RETRY 0 job, once handed out, is never queued
        // again, not even by a NACK (Disque's enqueueJob refuses it too).
        if job.state != JobState::Active || (job.retry_ms == 0 && job.deliveries > 0) {
            return false;
        }
        job.nacks += 1;
        if delay_ms > 0 {
            job.state = JobState::Delayed;
            let due = self.now_ms.saturating_add(delay_ms);
            self.set_state_timer(seq, Some(due));
        } else {
            self.set_state_timer(seq, None);
            self.requeue(seq);
        }
        true
    }

    fn working(&mut self, id: &JobId) -> Result<u64, QueueError> {
        let &seq = self.seq_of.get(id).ok_or(QueueError::NoJob)?;
        let job = &self.jobs[&seq];
        let half_ttl = (job.expires_ms - job.created_ms) / 2;
        if self.now_ms - job.created_ms > half_ttl {
            return Err(QueueError::TooLate);
        }
        let retry_ms = job.retry_ms;
        let state = job.state;
        if retry_ms > 0 && state != JobState::Delayed {
            if state == JobState::Queued {
                // Disque: WORKING on a queued job (its lease ended before the
                // worker's WORKING arrived) takes it out of the queue again,
                // so it is not handed to a second worker.
                let queue = job.queue.clone();
                self.unqueue(seq, &queue);
                self.jobs.get_mut(&seq).expect("live job").state = JobState::Active;
            }
            let lease_end = self.now_ms.saturating_add(retry_ms);
            self.set_state_timer(seq, Some(lease_end));
        }
        Ok(retry_ms)
    }

    fn enqueue(&mut self, id: &JobId) -> bool {
        let Some(&seq) = self.seq_of.get(id) else {
            return false;
        };
        if self.jobs[&seq].state == JobState::Queued {
            return false;
        }
        self.set_state_timer(seq, None);
        self.queue_job(seq);
        true
    }

    fn dequeue(&mut self, id: &JobId) -> bool {
        let Some(&seq) = self.seq_of.get(id) else {
            return false;
        };
        let job = &self.jobs[&seq];
        if job.state != JobState::Queued {
            return false;
        }
        let queue = job.queue.clone();
        let retry_ms = job.retry_ms;
        self.unqueue(seq, &queue);
        self.jobs.get_mut(&seq).expect("live job").state = JobState::Active;
        let lease_end = (retry_ms > 0).then(|| self.now_ms.saturating_add(retry_ms));
        self.set_state_timer(seq, lease_end);
        true
    }

    fn remove(&mut self, id: &JobId) -> bool {
        match self.seq_of.get(id) {
            Some(&seq) => {
                self.delete(seq);
                true
            }
            None => false,
        }
    }

    fn pause(&mut self, queue: &str, set: Option<PauseState>) -> PauseState {
        if let Some(pause) = set {
            let name = self.queue_name(queue);
            self.queues.entry(name).or_default().pause = pause;
            self.forget_idle_queue(queue);
        }
        self.pause_state(queue)
    }

    fn configure(&mut self, queue: &str, delivery_limit: Option<u32>, dead_letter: Option<&str>) {
        let name = self.queue_name(queue);
        let dead_letter = dead_letter.map(|d| self.queue_name(d));
        let state = self.queues.entry(name).or_default();
        state.delivery_limit = delivery_limit;
        state.dead_letter = dead_letter;
        self.forget_idle_queue(queue);
    }

    /// Puts a job that was handed out back in line, or in the dead-letter
    /// queue once it has been delivered as often as its limit allows.
    fn requeue(&mut self, seq: u64) {
        let job = &self.jobs[&seq];
        let queue = self.queues.get(&job.queue);
        let limit = job
            .delivery_limit
            .or_else(|| queue.and_then(|q| q.delivery_limit));
        if limit.is_some_and(|limit| job.deliveries >= limit) {
            let dead: Arc<str> = match queue.and_then(|q| q.dead_letter.clone()) {
                Some(dead) => dead,
                None => self.queue_name(&format!("{}.dead", job.queue)),
            };
            let job = self.jobs.get_mut(&seq).expect("live job");
            job.queue = dead;
            // In the dead-letter queue, that queue's own limit applies.
            job.delivery_limit = None;
        }
        self.queue_job(seq);
    }

    /// Makes a job queued in its queue, at its creation position.
    fn queue_job(&mut self, seq: u64) {
        let job = self.jobs.get_mut(&seq).expect("live job");
        job.state = JobState::Queued;
        let name = job.queue.clone();
        self.queues.entry(name).or_default().queued.insert(seq);
    }

    fn unqueue(&mut self, seq: u64, queue: &str) {
        if let Some(q) = self.queues.get_mut(queue) {
            q.queued.remove(&seq);
        }
        self.forget_idle_queue(queue);
    }

    /// Removes a job in any state, with its index entries and timers.
    fn delete(&mut self, seq: u64) {
        let Some(job) = self.jobs.remove(&seq) else {
            return;
        };
        self.seq_of.remove(&job.id);
        self.timers
            .remove(&(job.expires_ms, seq, TimerKind::Expire));
        if let Some(at_ms) = job.state_timer_ms {
            self.timers.remove(&(at_ms, seq, TimerKind::StateChange));
        }
        if job.state == JobState::Queued {
            self.unqueue(seq, &job.queue);
        }
    }

    /// The shared name of `queue`: jobs of one queue share one allocation.
    fn queue_name(&self, queue: &str) -> Arc<str> {
        match self.queues.get_key_value(queue) {
            Some((name, _)) => name.clone(),
            None => Arc::from(queue),
        }
    }

    /// Drops the state of a queue that holds nothing and is configured with
    /// nothing, so queue names do not accumulate.
    fn forget_idle_queue(&mut self, queue: &str) {
        if self.queues.get(queue).is_some_and(QueueState::is_idle) {
            self.queues.remove(queue);
        }
    }
}

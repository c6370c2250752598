//! The job state machine: every replica applies the same commands with the
//! same time stamps and ends in the same state.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::command::{AddJob, Command, Delivery, PauseState, Response};
use crate::error::QueueError;
use crate::id::{JobId, PackedId};
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

/// A job, in a slot of the job slab. `seq` is its creation order, which is
/// also its position in its queue and in scans and snapshots; the slot it
/// sits in (its handle) is never observable.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Job {
    id: PackedId,
    /// Its queue's name, in `StateMachine::names`.
    queue: NameId,
    /// Its own copy of the body: 16 bytes here rather than a `Bytes`'s 32,
    /// and no reference keeping alive a buffer the body was cut from.
    /// Handing it out copies it, which its trip to the client does anyway.
    body: Box<[u8]>,
    seq: u64,
    created_ms: u64,
    expires_ms: u64,
    retry_ms: u64,
    /// The lease end (Active) or delay end (Delayed), when
    /// `has_state_timer`: the job's timer besides its expiry.
    state_timer_ms: u64,
    nacks: u32,
    additional_deliveries: u32,
    deliveries: u32,
    /// Meaningful only when `has_delivery_limit`.
    delivery_limit: u32,
    has_state_timer: bool,
    has_delivery_limit: bool,
    state: JobState,
}

impl Job {
    fn state_timer(&self) -> Option<u64> {
        self.has_state_timer.then_some(self.state_timer_ms)
    }

    fn delivery_limit(&self) -> Option<u32> {
        self.has_delivery_limit.then_some(self.delivery_limit)
    }

    fn set_delivery_limit(&mut self, limit: Option<u32>) {
        self.has_delivery_limit = limit.is_some();
        self.delivery_limit = limit.unwrap_or(0);
    }

    /// At most once: a RETRY 0 job, once handed out, is never queued again,
    /// not by a NACK nor by ENQUEUE (Disque's `enqueueJob` refuses it too).
    fn delivered_at_most_once(&self) -> bool {
        self.retry_ms == 0 && self.deliveries > 0
    }

    /// Invisible because of its ADDJOB delay, and so never queued yet. The
    /// only other delay is a NACK's, which has counted a nack first.
    fn waiting_out_add_delay(&self) -> bool {
        self.state == JobState::Delayed && self.nacks == 0
    }
}

/// Where a job lives in the slab.
type Handle = u32;

/// A queue name's place in [`Names`].
type NameId = u32;

/// The queue names jobs are in, each held once and counted, so a job
/// names its queue in 4 bytes instead of an `Arc<str>`'s 16. Ids are
/// reused once no job names them; they are never observable.
#[derive(Clone, Debug, Default)]
struct Names {
    /// A name and how many jobs are in it.
    names: Vec<Option<(Arc<str>, u32)>>,
    ids: BTreeMap<Arc<str>, NameId>,
    free: Vec<NameId>,
}

impl Names {
    fn get(&self, id: NameId) -> &Arc<str> {
        &self.names[id as usize].as_ref().expect("named queue").0
    }

    fn lookup(&self, name: &str) -> Option<&Arc<str>> {
        self.ids.get_key_value(name).map(|(name, _)| name)
    }

    /// The id of `name`, counting one more job in it.
    fn acquire(&mut self, name: Arc<str>) -> NameId {
        if let Some(&id) = self.ids.get(&name) {
            self.names[id as usize].as_mut().expect("named queue").1 += 1;
            return id;
        }
        let entry = Some((name.clone(), 1));
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id as usize] = entry;
                id
            }
            None => {
                self.names.push(entry);
                NameId::try_from(self.names.len() - 1).expect("fewer than 2^32 queue names")
            }
        };
        self.ids.insert(name, id);
        id
    }

    /// Counts one job fewer in `id`, forgetting the name when none is left.
    fn release(&mut self, id: NameId) {
        let entry = self.names[id as usize].as_mut().expect("named queue");
        entry.1 -= 1;
        if entry.1 == 0 {
            let (name, _) = self.names[id as usize].take().expect("named queue");
            self.ids.remove(&name);
            self.free.push(id);
        }
    }
}

/// How many stale entries the lazily deleted structures tolerate beyond
/// their live ones before purging. Small under test, so the tests purge
/// often.
const PURGE_SLACK: usize = if cfg!(test) { 8 } else { 1024 };

/// A job's creation seq and its handle, packed in 12 bytes (a `(u64, u32)`
/// would take 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SeqHandle([u32; 3]);

impl SeqHandle {
    fn new(seq: u64, handle: Handle) -> Self {
        SeqHandle([seq as u32, (seq >> 32) as u32, handle])
    }

    fn seq(self) -> u64 {
        u64::from(self.0[1]) << 32 | u64::from(self.0[0])
    }

    fn handle(self) -> Handle {
        self.0[2]
    }
}

/// The most entries one chunk of a [`SeqList`] holds: small enough that
/// shifting entries inside a chunk costs about as much as walking a tree
/// level, large enough that chunks add little memory per entry.
const SEQ_CHUNK: usize = if cfg!(test) { 8 } else { 128 };

/// Jobs sorted by creation seq, in chunks: each chunk is a short sorted
/// ring buffer, and the chunks sit in a B-tree under a key at or below
/// their first seq (and above every seq of the chunk before). Finding,
/// placing or removing a job anywhere in the list is O(log n), and taking
/// the oldest or adding the newest is O(log n) with a small constant, while
/// an entry costs its 12 bytes plus the chunk's share of overhead.
#[derive(Clone, Debug, Default)]
struct SeqList {
    chunks: BTreeMap<u64, VecDeque<SeqHandle>>,
    len: usize,
}

/// Two lists are equal when they hold the same entries, however chunked.
impl PartialEq for SeqList {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.entries().eq(other.entries())
    }
}

impl Eq for SeqList {}

impl SeqList {
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key of the chunk where `seq` belongs, if there is any chunk.
    fn chunk_for(&self, seq: u64) -> Option<u64> {
        self.chunks
            .range(..=seq)
            .next_back()
            .or_else(|| self.chunks.first_key_value())
            .map(|(&key, _)| key)
    }

    fn insert(&mut self, seq: u64, handle: Handle) {
        let entry = SeqHandle::new(seq, handle);
        self.len += 1;
        // The common case first: the newest job goes at the end, and a full
        // last chunk is followed by a new one rather than split, so a queue
        // filled in order keeps its chunks full.
        let Some(mut last) = self.chunks.last_entry() else {
            self.chunks.insert(seq, VecDeque::from([entry]));
            return;
        };
        let chunk = last.get_mut();
        if chunk.back().is_none_or(|newest| newest.seq() < seq) {
            if chunk.len() < SEQ_CHUNK {
                chunk.push_back(entry);
            } else {
                self.chunks.insert(seq, VecDeque::from([entry]));
            }
            return;
        }
        let mut key = self.chunk_for(seq).expect("there are chunks");
        if seq < key {
            // Below every chunk: the first chunk's key moves down to it.
            let chunk = self.chunks.remove(&key).expect("chunk");
            self.chunks.insert(seq, chunk);
            key = seq;
        }
        let chunk = self.chunks.get_mut(&key).expect("chunk");
        let at = chunk.partition_point(|e| e.seq() < seq);
        chunk.insert(at, entry);
        if chunk.len() > SEQ_CHUNK {
            // The upper half becomes a chunk of its own, keyed by its first.
            let upper = chunk.split_off(chunk.len() / 2);
            chunk.shrink_to(SEQ_CHUNK / 2);
            self.chunks.insert(upper[0].seq(), upper);
        }
    }

    fn remove(&mut self, seq: u64) {
        let Some(key) = self.chunk_for(seq) else {
            return;
        };
        let chunk = self.chunks.get_mut(&key).expect("chunk");
        let at = chunk.partition_point(|e| e.seq() < seq);
        if chunk.get(at).is_none_or(|e| e.seq() != seq) {
            return;
        }
        chunk.remove(at);
        self.len -= 1;
        self.after_removal(key);
    }

    fn pop_front(&mut self) -> Option<Handle> {
        let mut first = self.chunks.first_entry()?;
        let entry = first.get_mut().pop_front().expect("chunks are never empty");
        let key = *first.key();
        self.len -= 1;
        self.after_removal(key);
        Some(entry.handle())
    }

    /// Keeps chunks from thinning out: an empty chunk goes, and a chunk a
    /// quarter full merges with a neighbour when the two fit in one chunk.
    /// Memory follows: a chunk a quarter of its capacity gives half back.
    fn after_removal(&mut self, key: u64) {
        let len = self.chunks[&key].len();
        if len == 0 {
            self.chunks.remove(&key);
            return;
        }
        if len < SEQ_CHUNK / 4 {
            let next = self
                .chunks
                .range(key + 1..)
                .next()
                .map(|(&k, c)| (k, c.len()));
            let previous = self
                .chunks
                .range(..key)
                .next_back()
                .map(|(&k, c)| (k, c.len()));
            let merge = match (previous, next) {
                (Some((p, p_len)), _) if p_len + len <= SEQ_CHUNK => Some((p, key)),
                (_, Some((n, n_len))) if n_len + len <= SEQ_CHUNK => Some((key, n)),
                _ => None,
            };
            if let Some((lower, upper)) = merge {
                let mut upper = self.chunks.remove(&upper).expect("chunk");
                self.chunks
                    .get_mut(&lower)
                    .expect("chunk")
                    .append(&mut upper);
                return;
            }
        }
        let chunk = self.chunks.get_mut(&key).expect("chunk");
        if chunk.len() < chunk.capacity() / 4 {
            chunk.shrink_to(chunk.len() * 2);
        }
    }

    fn entries(&self) -> impl DoubleEndedIterator<Item = SeqHandle> + '_ {
        self.chunks.values().flatten().copied()
    }

    fn handles(&self) -> impl DoubleEndedIterator<Item = Handle> + '_ {
        self.entries().map(|e| e.handle())
    }
}

/// How long (log time) an empty queue without settings is remembered after
/// its last push or pop, as Disque's `QUEUE_MAX_IDLE_TIME`: long enough for
/// QSTAT to show what just happened, short enough that names used once do
/// not pile up.
pub const IDLE_QUEUE_FORGOTTEN_AFTER_MS: u64 = 5 * 60 * 1000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct QueueState {
    /// Queued jobs by creation order: the oldest is handed out first.
    queued: SeqList,
    pause: PauseState,
    delivery_limit: Option<u32>,
    dead_letter: Option<Arc<str>>,
    /// When the queue came into being (log time).
    created_ms: u64,
    /// The last push or pop (Disque's `atime`).
    last_activity_ms: u64,
    /// Jobs queued into it, ever (new, requeued, enqueued, dead-lettered).
    jobs_in: u64,
    /// Jobs handed out from it by GETJOB, ever.
    jobs_out: u64,
    /// When it is to be forgotten, while it is idle: its key in
    /// `StateMachine::idle_queues`.
    forget_at_ms: Option<u64>,
}

impl QueueState {
    /// Paused, or configured: worth keeping (and snapshotting) while empty.
    fn has_settings(&self) -> bool {
        self.pause != PauseState::None
            || self.delivery_limit.is_some()
            || self.dead_letter.is_some()
    }

    fn is_idle(&self) -> bool {
        self.queued.is_empty() && !self.has_settings()
    }

    fn new(now_ms: u64) -> Self {
        QueueState {
            created_ms: now_ms,
            last_activity_ms: now_ms,
            ..QueueState::default()
        }
    }
}

/// What QSTAT reports about a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStats {
    /// The queue.
    pub name: String,
    /// Jobs waiting in it.
    pub len: usize,
    /// When it came into being (log time, ms).
    pub created_ms: u64,
    /// Its last push or pop (log time, ms).
    pub last_activity_ms: u64,
    /// Jobs queued into it so far.
    pub jobs_in: u64,
    /// Jobs handed out from it so far.
    pub jobs_out: u64,
    /// Its pause state.
    pub pause: PauseState,
    /// Its delivery limit, if set.
    pub delivery_limit: Option<u32>,
    /// Where its dead jobs go: the configured queue, or `<name>.dead`.
    pub dead_letter: String,
}

/// Why a job has an entry in `timers`. The order puts expiry first, so a job
/// whose lease and TTL end together expires rather than being requeued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Expire = 0,
    StateChange = 1,
}

/// One entry of the timer heap, 16 bytes: the heap orders entries by time
/// only (the other fields just make the order total); timers due at the
/// same time fire in their jobs' creation order, expiry first, which
/// `advance_to` sorts out when they come up. An entry is live while the
/// job in its slot has that timer at `at_ms` (its expiry, or its state
/// timer); otherwise it is stale and skipped. Two live-looking entries for
/// one timer (set, cleared and set to the same time again, or left by a
/// removed job whose slot now holds a job with the same time) fire as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at_ms: u64,
    handle: Handle,
    kind: TimerKind,
}

/// The index from job id to handle: open addressing with linear probing
/// over `u64` slots, each `tag << 32 | handle` where `tag` is the low 32
/// bits of `PackedId::index_hash` (the probe start is `tag & mask`). The id
/// itself is read from the slab. The hash is fixed, and the table is only
/// ever used for lookups, never iterated, so it cannot make anything depend
/// on hashing.
#[derive(Clone, Debug, Default)]
struct IdIndex {
    slots: Vec<u64>,
    len: usize,
}

const EMPTY_SLOT: u64 = u64::MAX;

impl IdIndex {
    fn tag(id: &PackedId) -> u32 {
        id.index_hash() as u32
    }

    /// The slot holding `id`, if it is indexed.
    fn position(&self, id: &PackedId, jobs: &[Option<Job>]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let tag = Self::tag(id);
        let mut i = tag as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == EMPTY_SLOT {
                return None;
            }
            if (slot >> 32) as u32 == tag {
                let handle = slot as u32;
                if jobs[handle as usize].as_ref().is_some_and(|j| j.id == *id) {
                    return Some(i);
                }
            }
            i = (i + 1) & mask;
        }
    }

    fn get(&self, id: &PackedId, jobs: &[Option<Job>]) -> Option<Handle> {
        self.position(id, jobs).map(|i| self.slots[i] as u32)
    }

    /// Indexes `id` (not yet indexed) at `handle`.
    fn insert(&mut self, id: &PackedId, handle: Handle) {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        self.place(u64::from(Self::tag(id)) << 32 | u64::from(handle));
        self.len += 1;
    }

    fn place(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut i = (slot >> 32) as usize & mask;
        while self.slots[i] != EMPTY_SLOT {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY_SLOT; capacity]);
        for slot in old.into_iter().filter(|&s| s != EMPTY_SLOT) {
            self.place(slot);
        }
    }

    /// Removes `id`'s entry, shifting later entries of its probe run back
    /// so that no tombstones are needed.
    fn remove(&mut self, id: &PackedId, jobs: &[Option<Job>]) {
        let Some(mut hole) = self.position(id, jobs) else {
            return;
        };
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let slot = self.slots[j];
            if slot == EMPTY_SLOT {
                break;
            }
            let home = (slot >> 32) as usize & mask;
            // The entry may fill the hole if the hole lies on its probe
            // path, from its home to where it sits.
            if j.wrapping_sub(home) & mask >= j.wrapping_sub(hole) & mask {
                self.slots[hole] = slot;
                hole = j;
            }
        }
        self.slots[hole] = EMPTY_SLOT;
        self.len -= 1;
    }
}

/// The deterministic job state machine. See the crate documentation.
///
/// Jobs live in a slab (`jobs`, with `free` slots reused) and are addressed
/// by handle; every observable order comes from their creation `seq`
/// (`order`, the queues' `queued`, the timers' keys), never from handles.
#[derive(Clone, Debug, Default)]
pub struct StateMachine {
    now_ms: u64,
    next_seq: u64,
    jobs: Vec<Option<Job>>,
    free: Vec<Handle>,
    job_count: usize,
    index: IdIndex,
    names: Names,
    /// Every job by creation order, for scans and snapshots, with lazy
    /// deletion: an entry whose slot no longer holds a job of its seq is
    /// skipped, and purged once such entries outnumber the live ones.
    order: VecDeque<SeqHandle>,
    /// Dead entries in `order`.
    order_stale: usize,
    queues: BTreeMap<Arc<str>, QueueState>,
    /// Queues that are empty and have no settings, by when they are to be
    /// forgotten: one entry per such queue, kept in step with its
    /// `forget_at_ms`.
    idle_queues: BTreeSet<(u64, Arc<str>)>,
    /// Every pending time event, earliest first, with lazy deletion:
    /// entries whose job is gone or whose state timer changed since are
    /// skipped when they come up, and purged when the heap holds more than
    /// twice as many entries as live timers.
    timers: BinaryHeap<Reverse<Timer>>,
    /// Jobs with a state timer: with `job_count`, the live entries in
    /// `timers`.
    state_timers: usize,
}

/// Equal when the states are: the same bytes in a snapshot (which holds
/// every job and queue setting, in creation order). The slab's layout and
/// stale timer entries are not part of the state.
impl PartialEq for StateMachine {
    fn eq(&self, other: &Self) -> bool {
        self.snapshot() == other.snapshot()
    }
}

impl Eq for StateMachine {}

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
        self.job_count
    }

    /// Applies one chosen command stamped `stamp_ms` by the leader. Time never
    /// goes backwards: a stamp below the current time counts as the current
    /// time. Leases, delays and TTLs that end by then take effect first.
    pub fn apply(&mut self, stamp_ms: u64, command: Command) -> Response {
        self.advance_to(stamp_ms);
        let response = self.execute(command);
        // A queue the command left idle may have been idle long enough.
        self.forget_idle_queues();
        response
    }

    fn execute(&mut self, command: Command) -> Response {
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
        self.snapshot_into(Vec::new())
    }

    /// [`snapshot`](Self::snapshot), appended to `out` (which may hold a
    /// header of the caller's: a large state is then never copied to put
    /// something in front of it).
    pub fn snapshot_into(&self, out: Vec<u8>) -> Vec<u8> {
        let mut body_bytes = 0;
        let jobs: Vec<_> = self
            .live_in_order(0)
            .map(|(_, handle)| {
                let job = self.job(handle);
                body_bytes += job.body.len();
                JobRecord {
                    seq: job.seq,
                    id: job.id.unpack(),
                    queue: self.names.get(job.queue).clone(),
                    body: snapshot::BodyRef(&job.body),
                    created_ms: job.created_ms,
                    expires_ms: job.expires_ms,
                    retry_ms: job.retry_ms,
                    state: job.state,
                    state_timer_ms: job.state_timer(),
                    nacks: job.nacks,
                    additional_deliveries: job.additional_deliveries,
                    deliveries: job.deliveries,
                    delivery_limit: job.delivery_limit(),
                }
            })
            .collect();
        let queues: Vec<_> = self
            .queues
            .iter()
            .map(|(name, q)| QueueRecord {
                name: name.clone(),
                pause: q.pause,
                delivery_limit: q.delivery_limit,
                dead_letter: q.dead_letter.clone(),
                created_ms: q.created_ms,
                last_activity_ms: q.last_activity_ms,
                jobs_in: q.jobs_in,
                jobs_out: q.jobs_out,
            })
            .collect();
        // A job's fixed fields take well under this many bytes encoded.
        const JOB_BYTES: usize = 128;
        const QUEUE_BYTES: usize = 128;
        let capacity_hint = body_bytes + jobs.len() * JOB_BYTES + queues.len() * QUEUE_BYTES;
        snapshot::encode(
            out,
            &SnapshotV1 {
                now_ms: self.now_ms,
                next_seq: self.next_seq,
                jobs,
                queues,
            },
            capacity_hint,
        )
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
            let state = machine.queue_state_mut(name);
            state.pause = record.pause;
            state.delivery_limit = record.delivery_limit;
            state.dead_letter = dead_letter;
            state.created_ms = record.created_ms;
            state.last_activity_ms = record.last_activity_ms;
            state.jobs_in = record.jobs_in;
            state.jobs_out = record.jobs_out;
        }
        for record in snapshot.jobs {
            let queue = machine.queue_name(&record.queue);
            let queue = machine.names.acquire(queue);
            let mut job = Job {
                id: record.id.pack(),
                queue,
                body: owned_body(record.body),
                seq: record.seq,
                created_ms: record.created_ms,
                expires_ms: record.expires_ms,
                retry_ms: record.retry_ms,
                state_timer_ms: 0,
                nacks: record.nacks,
                additional_deliveries: record.additional_deliveries,
                deliveries: record.deliveries,
                delivery_limit: 0,
                has_state_timer: false,
                has_delivery_limit: false,
                state: record.state,
            };
            job.set_delivery_limit(record.delivery_limit);
            let handle = machine.insert_job(job);
            if let Some(at_ms) = record.state_timer_ms {
                machine.set_state_timer(handle, Some(at_ms));
            }
            if record.state == JobState::Queued {
                let job = machine.job(handle);
                let (seq, queue) = (job.seq, machine.names.get(job.queue).clone());
                machine.queue_state_mut(queue).queued.insert(seq, handle);
            }
        }
        let names: Vec<Arc<str>> = machine.queues.keys().cloned().collect();
        for name in names {
            machine.track_idle(&name);
        }
        Ok(machine)
    }

    // ----- Queries (no log entry needed; they read the applied state) -----

    /// QLEN: how many jobs wait in `queue`.
    pub fn len(&self, queue: &str) -> usize {
        self.queues.get(queue).map_or(0, |q| q.queued.len())
    }

    /// How many jobs of `queue` a GETJOB could take now: its queued jobs,
    /// or none while it is paused for output.
    pub fn takeable(&self, queue: &str) -> usize {
        self.queues
            .get(queue)
            .filter(|q| !q.pause.refuses_out())
            .map_or(0, |q| q.queued.len())
    }

    /// How many queues exist (see [`QueueStats`] for when one does).
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// True when no job exists.
    pub fn is_empty(&self) -> bool {
        self.job_count == 0
    }

    /// QPEEK: up to `count` queued jobs of `queue` without handing them out,
    /// oldest first, or newest first for a negative count.
    pub fn peek(&self, queue: &str, count: i64) -> Vec<JobInfo> {
        let Some(q) = self.queues.get(queue) else {
            return Vec::new();
        };
        let take = count.unsigned_abs() as usize;
        let info = |handle: Handle| self.info(handle);
        if count >= 0 {
            q.queued.handles().take(take).map(info).collect()
        } else {
            q.queued.handles().rev().take(take).map(info).collect()
        }
    }

    /// SHOW: everything about one job.
    pub fn show(&self, id: &JobId) -> Option<JobInfo> {
        self.find(id).map(|handle| self.info(handle))
    }

    /// The pause state of `queue`.
    pub fn pause_state(&self, queue: &str) -> PauseState {
        self.queues.get(queue).map_or(PauseState::None, |q| q.pause)
    }

    /// The earliest log time at which something may happen on its own (a
    /// lease or delay ends, a TTL or an idle queue runs out), if anything
    /// waits on time. The leader proposes a tick when it is due. It may be
    /// earlier than needed (a timer since cancelled), never later.
    pub fn next_due_ms(&self) -> Option<u64> {
        let timer = self.timers.peek().map(|Reverse(timer)| timer.at_ms);
        let idle = self.idle_queues.first().map(|(at_ms, _)| *at_ms);
        match (timer, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// QSTAT: a queue's length, history and settings; `None` for a queue
    /// that does not exist (never used, or idle long enough to be
    /// forgotten: see [`IDLE_QUEUE_FORGOTTEN_AFTER_MS`]).
    pub fn queue_stats(&self, queue: &str) -> Option<QueueStats> {
        let (name, q) = self.queues.get_key_value(queue)?;
        Some(QueueStats {
            name: name.to_string(),
            len: q.queued.len(),
            created_ms: q.created_ms,
            last_activity_ms: q.last_activity_ms,
            jobs_in: q.jobs_in,
            jobs_out: q.jobs_out,
            pause: q.pause,
            delivery_limit: q.delivery_limit,
            dead_letter: match &q.dead_letter {
                Some(dead) => dead.to_string(),
                None => format!("{name}.dead"),
            },
        })
    }

    fn info(&self, handle: Handle) -> JobInfo {
        let job = self.job(handle);
        JobInfo {
            id: job.id.unpack(),
            queue: self.names.get(job.queue).to_string(),
            state: job.state,
            body: Bytes::copy_from_slice(&job.body),
            created_ms: job.created_ms,
            expires_ms: job.expires_ms,
            retry_ms: job.retry_ms,
            next_event_ms: job.state_timer(),
            nacks: job.nacks,
            additional_deliveries: job.additional_deliveries,
            deliveries: job.deliveries,
            delivery_limit: job.delivery_limit(),
        }
    }

    // ----- The slab --------------------------------------------------------

    fn job(&self, handle: Handle) -> &Job {
        self.jobs[handle as usize].as_ref().expect("live job")
    }

    fn job_mut(&mut self, handle: Handle) -> &mut Job {
        self.jobs[handle as usize].as_mut().expect("live job")
    }

    fn find(&self, id: &JobId) -> Option<Handle> {
        self.index.get(&id.pack(), &self.jobs)
    }

    /// Puts a new job in the slab and indexes it by id and creation order,
    /// with its expiry timer. Its state timer and queue entry are the
    /// caller's.
    fn insert_job(&mut self, job: Job) -> Handle {
        let (id, seq, expires_ms) = (job.id, job.seq, job.expires_ms);
        let handle = match self.free.pop() {
            Some(handle) => {
                self.jobs[handle as usize] = Some(job);
                handle
            }
            None => {
                let handle = Handle::try_from(self.jobs.len())
                    .ok()
                    .filter(|&h| h != Handle::MAX)
                    .expect("fewer than 2^32 - 1 jobs");
                self.jobs.push(Some(job));
                handle
            }
        };
        self.job_count += 1;
        self.index.insert(&id, handle);
        if self.order.back().is_none_or(|last| last.seq() < seq) {
            self.order.push_back(SeqHandle::new(seq, handle));
        } else {
            // Only a restore from a snapshot whose jobs are out of order.
            let at = self.order.partition_point(|e| e.seq() < seq);
            self.order.insert(at, SeqHandle::new(seq, handle));
        }
        self.push_timer(Timer {
            at_ms: expires_ms,
            handle,
            kind: TimerKind::Expire,
        });
        handle
    }

    // ----- Time ------------------------------------------------------------

    /// The creation seq of the job `timer` is pending for: the job in its
    /// slot, if that job has this timer set.
    fn timer_job_seq(&self, timer: &Timer) -> Option<u64> {
        let job = self.jobs.get(timer.handle as usize)?.as_ref()?;
        let live = match timer.kind {
            TimerKind::Expire => job.expires_ms == timer.at_ms,
            TimerKind::StateChange => job.has_state_timer && job.state_timer_ms == timer.at_ms,
        };
        live.then_some(job.seq)
    }

    fn push_timer(&mut self, timer: Timer) {
        self.timers.push(Reverse(timer));
        let live = self.job_count + self.state_timers;
        if self.timers.len() > 2 * live + PURGE_SLACK {
            // Purge stale entries (and merge equal ones): amortised
            // O(log n) per entry pushed or job removed since the last
            // purge, which left at most `live` entries. Which entries are
            // stale does not depend on when this runs, so neither does the
            // order live timers fire in.
            let mut entries = std::mem::take(&mut self.timers).into_vec();
            entries.retain(|Reverse(timer)| self.timer_job_seq(timer).is_some());
            entries.sort_unstable();
            entries.dedup();
            self.timers = BinaryHeap::from(entries);
        }
    }

    /// Fires every timer due by `stamp_ms`, in time order, and timers due
    /// at the same time in their jobs' creation order, a job's expiry
    /// before its other timer (so a job whose lease and TTL end together
    /// expires rather than being requeued). Different jobs' timers due
    /// together commute, as far as anything observable goes; the fixed
    /// order keeps it so should a future timer not commute.
    fn advance_to(&mut self, stamp_ms: u64) {
        self.now_ms = self.now_ms.max(stamp_ms);
        let mut due_together = Vec::new();
        while let Some(&Reverse(first)) = self.timers.peek() {
            if first.at_ms > self.now_ms {
                break;
            }
            while let Some(Reverse(timer)) = self.timers.peek().copied() {
                if timer.at_ms != first.at_ms {
                    break;
                }
                self.timers.pop();
                if let Some(seq) = self.timer_job_seq(&timer) {
                    due_together.push((seq, timer.kind, timer));
                }
            }
            due_together.sort_unstable();
            due_together.dedup();
            for (_, _, timer) in due_together.drain(..) {
                // An earlier timer of this group may have removed the job
                // or changed its state timer. (Firing creates no job, so a
                // slot still holds the job it held when the group began.)
                if self.timer_job_seq(&timer).is_some() {
                    self.fire(timer);
                }
            }
        }
        self.forget_idle_queues();
    }

    /// A job's expiry removes it; its state timer ends a lease or a delay.
    fn fire(&mut self, timer: Timer) {
        let handle = timer.handle;
        match timer.kind {
            TimerKind::Expire => self.delete(handle),
            TimerKind::StateChange => {
                self.set_state_timer(handle, None);
                let job = self.job_mut(handle);
                match job.state {
                    // The lease ended without an ack: deliver again.
                    JobState::Active => {
                        job.additional_deliveries = job.additional_deliveries.saturating_add(1);
                        self.requeue(handle);
                    }
                    // An ADDJOB's delay ended.
                    JobState::Delayed if job.waiting_out_add_delay() => self.queue_job(handle),
                    // A NACK's delay ended: the delivery limit applies as
                    // it does to an undelayed NACK.
                    JobState::Delayed => self.requeue(handle),
                    JobState::Queued => unreachable!("queued jobs have no state timer"),
                }
            }
        }
    }

    /// Forgets the queues that have been idle long enough by now.
    fn forget_idle_queues(&mut self) {
        while self
            .idle_queues
            .first()
            .is_some_and(|(at_ms, _)| *at_ms <= self.now_ms)
        {
            let (_, name) = self.idle_queues.pop_first().expect("an idle queue");
            let forgotten = self.queues.remove(&name);
            debug_assert!(forgotten.is_some_and(|q| q.is_idle()));
        }
    }

    fn set_state_timer(&mut self, handle: Handle, at_ms: Option<u64>) {
        let job = self.job_mut(handle);
        let had = job.has_state_timer;
        let old_ms = job.state_timer_ms;
        job.has_state_timer = at_ms.is_some();
        job.state_timer_ms = at_ms.unwrap_or(0);
        match (had, at_ms) {
            (false, Some(_)) => self.state_timers += 1,
            (true, None) => self.state_timers -= 1,
            _ => {}
        }
        match at_ms {
            // Its entry is in the heap already.
            Some(at_ms) if had && at_ms == old_ms => {}
            Some(at_ms) => self.push_timer(Timer {
                at_ms,
                handle,
                kind: TimerKind::StateChange,
            }),
            None => {}
        }
    }

    // ----- Transitions -----------------------------------------------------

    fn add(&mut self, add: AddJob) -> Result<JobId, QueueError> {
        let times = add.times()?;
        if self.find(&add.id).is_some() {
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
        let queue = self.names.acquire(queue);
        let seq = self.next_seq;
        self.next_seq += 1;
        let expires_ms = self.now_ms.saturating_add(times.ttl_ms);
        let mut job = Job {
            id: add.id.pack(),
            queue,
            body: owned_body(add.body),
            seq,
            created_ms: self.now_ms,
            expires_ms,
            retry_ms: times.retry_ms,
            state_timer_ms: 0,
            nacks: 0,
            additional_deliveries: 0,
            deliveries: 0,
            delivery_limit: 0,
            has_state_timer: false,
            has_delivery_limit: false,
            state: JobState::Delayed,
        };
        job.set_delivery_limit(add.delivery_limit);
        let handle = self.insert_job(job);
        if times.delay_ms > 0 {
            let due = self.now_ms.saturating_add(times.delay_ms);
            self.set_state_timer(handle, Some(due));
        } else {
            self.queue_job(handle);
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
                let Some(handle) = self.pop_oldest(name) else {
                    continue;
                };
                let now_ms = self.now_ms;
                let job = self.job_mut(handle);
                job.state = JobState::Active;
                job.deliveries = job.deliveries.saturating_add(1);
                out.push(Delivery {
                    queue: name.clone(),
                    id: job.id.unpack(),
                    body: Bytes::copy_from_slice(&job.body),
                    nacks: job.nacks,
                    additional_deliveries: job.additional_deliveries,
                });
                let lease_end = lease_end(now_ms, job.retry_ms);
                self.set_state_timer(handle, lease_end);
            }
            if out.len() == before {
                break;
            }
        }
        for name in queues {
            self.track_idle(name);
        }
        out
    }

    /// Takes the oldest queued job of `queue`, unless the queue is paused
    /// for output.
    fn pop_oldest(&mut self, queue: &str) -> Option<Handle> {
        let now_ms = self.now_ms;
        let queue = self.queues.get_mut(queue)?;
        if queue.pause.refuses_out() {
            return None;
        }
        let handle = queue.queued.pop_front()?;
        queue.jobs_out = queue.jobs_out.saturating_add(1);
        queue.last_activity_ms = now_ms;
        Some(handle)
    }

    fn nack(&mut self, id: &JobId, delay_ms: u64) -> bool {
        let Some(handle) = self.find(id) else {
            return false;
        };
        let now_ms = self.now_ms;
        let job = self.job_mut(handle);
        if job.state != JobState::Active || job.delivered_at_most_once() {
            return false;
        }
        job.nacks = job.nacks.saturating_add(1);
        if delay_ms > 0 {
            job.state = JobState::Delayed;
            let due = now_ms.saturating_add(delay_ms);
            self.set_state_timer(handle, Some(due));
        } else {
            self.set_state_timer(handle, None);
            self.requeue(handle);
        }
        true
    }

    fn working(&mut self, id: &JobId) -> Result<u64, QueueError> {
        let handle = self.find(id).ok_or(QueueError::NoJob)?;
        let job = self.job(handle);
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
                self.unqueue(handle);
                self.job_mut(handle).state = JobState::Active;
            }
            self.set_state_timer(handle, lease_end(self.now_ms, retry_ms));
        }
        Ok(retry_ms)
    }

    /// Disque's `enqueueJob`: a queued job stays as it is, and a delivered
    /// at-most-once (RETRY 0) job is never queued again. A job that was
    /// queued before (anything but one still waiting out its ADDJOB delay)
    /// counts one more delivery, as Disque counts it.
    fn enqueue(&mut self, id: &JobId) -> bool {
        let Some(handle) = self.find(id) else {
            return false;
        };
        let job = self.job(handle);
        if job.state == JobState::Queued || job.delivered_at_most_once() {
            return false;
        }
        if !job.waiting_out_add_delay() {
            let job = self.job_mut(handle);
            job.additional_deliveries = job.additional_deliveries.saturating_add(1);
        }
        self.set_state_timer(handle, None);
        self.queue_job(handle);
        true
    }

    fn dequeue(&mut self, id: &JobId) -> bool {
        let Some(handle) = self.find(id) else {
            return false;
        };
        let job = self.job(handle);
        if job.state != JobState::Queued {
            return false;
        }
        let retry_ms = job.retry_ms;
        self.unqueue(handle);
        self.job_mut(handle).state = JobState::Active;
        self.set_state_timer(handle, lease_end(self.now_ms, retry_ms));
        true
    }

    fn remove(&mut self, id: &JobId) -> bool {
        match self.find(id) {
            Some(handle) => {
                self.delete(handle);
                true
            }
            None => false,
        }
    }

    fn pause(&mut self, queue: &str, set: Option<PauseState>) -> PauseState {
        if let Some(pause) = set {
            let name = self.queue_name(queue);
            self.queue_state_mut(name).pause = pause;
            self.track_idle(queue);
        }
        self.pause_state(queue)
    }

    fn configure(&mut self, queue: &str, delivery_limit: Option<u32>, dead_letter: Option<&str>) {
        let name = self.queue_name(queue);
        let dead_letter = dead_letter.map(|d| self.queue_name(d));
        let state = self.queue_state_mut(name);
        state.delivery_limit = delivery_limit;
        state.dead_letter = dead_letter;
        self.track_idle(queue);
    }

    /// Puts a job that was handed out back in line, or in the dead-letter
    /// queue once it has been delivered as often as its limit allows.
    fn requeue(&mut self, handle: Handle) {
        let job = self.job(handle);
        let name = self.names.get(job.queue);
        let queue = self.queues.get(name);
        let limit = job
            .delivery_limit()
            .or_else(|| queue.and_then(|q| q.delivery_limit));
        if limit.is_some_and(|limit| job.deliveries >= limit) {
            let dead: Arc<str> = match queue.and_then(|q| q.dead_letter.clone()) {
                Some(dead) => dead,
                None => self.queue_name(&format!("{name}.dead")),
            };
            let dead = self.names.acquire(dead);
            let job = self.job_mut(handle);
            let old = std::mem::replace(&mut job.queue, dead);
            self.names.release(old);
            let job = self.job_mut(handle);
            // In the dead-letter queue, that queue's own limit applies.
            job.set_delivery_limit(None);
        }
        self.queue_job(handle);
    }

    /// Makes a job queued in its queue, at its creation position.
    fn queue_job(&mut self, handle: Handle) {
        let job = self.job_mut(handle);
        job.state = JobState::Queued;
        let (seq, name) = (job.seq, job.queue);
        let name = self.names.get(name).clone();
        let now_ms = self.now_ms;
        let queue = self.queue_state_mut(name.clone());
        queue.queued.insert(seq, handle);
        queue.jobs_in = queue.jobs_in.saturating_add(1);
        queue.last_activity_ms = now_ms;
        // No longer idle (what `track_idle` would find, without looking the
        // queue up again).
        if let Some(at_ms) = queue.forget_at_ms.take() {
            self.idle_queues.remove(&(at_ms, name));
        }
    }

    /// Takes a queued job out of its queue (its state is the caller's).
    fn unqueue(&mut self, handle: Handle) {
        let job = self.job(handle);
        let seq = job.seq;
        let queue = self.names.get(job.queue).clone();
        if let Some(q) = self.queues.get_mut(&queue) {
            q.queued.remove(seq);
        }
        self.track_idle(&queue);
    }

    /// Removes a job in any state, with its index entries. Its timer
    /// entries become stale.
    fn delete(&mut self, handle: Handle) {
        if self.jobs.get(handle as usize).is_none_or(Option::is_none) {
            return;
        }
        if self.job(handle).state == JobState::Queued {
            self.unqueue(handle);
        }
        let id = self.job(handle).id;
        self.index.remove(&id, &self.jobs);
        let job = self.jobs[handle as usize].take().expect("live job");
        self.free.push(handle);
        self.names.release(job.queue);
        self.job_count -= 1;
        if job.has_state_timer {
            self.state_timers -= 1;
        }
        self.order_stale += 1;
        while self
            .order
            .front()
            .is_some_and(|e| !self.order_entry_is_live(*e))
        {
            self.order.pop_front();
            self.order_stale -= 1;
        }
        if self.order_stale > self.job_count + PURGE_SLACK {
            let mut order = std::mem::take(&mut self.order);
            order.retain(|e| self.order_entry_is_live(*e));
            order.shrink_to_fit();
            self.order = order;
            self.order_stale = 0;
        }
    }

    fn order_entry_is_live(&self, entry: SeqHandle) -> bool {
        self.live_job(entry.handle(), entry.seq()).is_some()
    }

    /// The job at `handle`, if that slot still holds the job created as
    /// `seq` (slots are reused, so an old reference may name another job).
    fn live_job(&self, handle: Handle, seq: u64) -> Option<&Job> {
        self.jobs
            .get(handle as usize)?
            .as_ref()
            .filter(|job| job.seq == seq)
    }

    /// Every job with a seq from `from` on, in creation order: (seq, handle).
    fn live_in_order(&self, from: u64) -> impl Iterator<Item = (u64, Handle)> + '_ {
        let start = self.order.partition_point(|e| e.seq() < from);
        self.order
            .range(start..)
            .filter(|e| self.order_entry_is_live(**e))
            .map(|e| (e.seq(), e.handle()))
    }

    /// The shared name of `queue`: jobs of one queue share one allocation.
    fn queue_name(&self, queue: &str) -> Arc<str> {
        match self.queues.get_key_value(queue) {
            Some((name, _)) => name.clone(),
            None => match self.names.lookup(queue) {
                Some(name) => name.clone(),
                None => Arc::from(queue),
            },
        }
    }

    /// The state of queue `name`, which comes into being now if it did not
    /// exist.
    fn queue_state_mut(&mut self, name: Arc<str>) -> &mut QueueState {
        let now_ms = self.now_ms;
        self.queues
            .entry(name)
            .or_insert_with(|| QueueState::new(now_ms))
    }

    /// Keeps `queue`'s entry in `idle_queues` in step with whether it is
    /// idle (empty, no settings) and since when, so that it is forgotten
    /// [`IDLE_QUEUE_FORGOTTEN_AFTER_MS`] after its last push or pop and
    /// queue names do not accumulate.
    fn track_idle(&mut self, queue: &str) {
        let Some((name, state)) = self.queues.get_key_value(queue) else {
            return;
        };
        let wanted = state.is_idle().then(|| {
            state
                .last_activity_ms
                .saturating_add(IDLE_QUEUE_FORGOTTEN_AFTER_MS)
        });
        let had = state.forget_at_ms;
        if wanted == had {
            return;
        }
        let name = name.clone();
        if let Some(at_ms) = had {
            self.idle_queues.remove(&(at_ms, name.clone()));
        }
        if let Some(at_ms) = wanted {
            self.idle_queues.insert((at_ms, name.clone()));
        }
        self.queues.get_mut(&name).expect("queue").forget_at_ms = wanted;
    }
}

/// A body the machine keeps: its bytes, in an allocation of their own (no
/// copy when `body` already owns exactly its bytes).
fn owned_body(body: Bytes) -> Box<[u8]> {
    Vec::from(body).into_boxed_slice()
}

/// When a lease granted at `now_ms` ends; never for RETRY 0 (at most once).
fn lease_end(now_ms: u64, retry_ms: u64) -> Option<u64> {
    (retry_ms > 0).then(|| now_ms.saturating_add(retry_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> JobId {
        let mut random = [0u8; 18];
        random[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        JobId::new(1, random, 6_000_000, 1_000)
    }

    fn add(n: u64, delay_ms: Option<u64>) -> Command {
        Command::Add(AddJob {
            id: id(n),
            queue: format!("q{}", n % 3),
            body: Bytes::from_static(b"x"),
            ttl_ms: Some(6_000_000 + (n % 7) * 1_000),
            retry_ms: Some(1_000 + (n % 5) * 500),
            delay_ms,
            max_len: None,
            delivery_limit: (n % 11 == 0).then_some(2),
        })
    }

    fn scan_all(m: &StateMachine) -> Vec<JobInfo> {
        let page = m.scan_jobs(JobCursor::START, usize::MAX, &JobFilter::default());
        assert_eq!(page.next, None);
        page.items
    }

    /// Enough churn that the lazily deleted timer and creation-order
    /// entries are purged several times: a machine restored from a snapshot
    /// midway (which starts with no stale entries) must keep answering
    /// exactly as the original does.
    #[test]
    fn churn_past_purges_matches_a_restored_copy() {
        let mut a = StateMachine::new();
        let mut b: Option<StateMachine> = None;
        let mut x: u64 = 1;
        let mut rand = |below: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % below
        };
        let mut next = 0u64;
        let mut now = 0u64;
        for step in 0..40_000u64 {
            if step == 15_000 {
                b = Some(StateMachine::restore(&a.snapshot()).unwrap());
            }
            now += rand(40);
            let command = match rand(10) {
                0..=2 => {
                    next += 1;
                    add(next, (rand(4) == 0).then(|| 1 + rand(3_000)))
                }
                4 => Command::Get {
                    queues: vec![format!("q{}", rand(3)), format!("q{}", rand(3))],
                    count: 1 + rand(3) as u32,
                },
                3 | 5 => Command::Ack {
                    ids: vec![id(next - rand(next.clamp(1, 300)))],
                },
                6 => Command::Nack {
                    ids: vec![id(next - rand(next.clamp(1, 300)))],
                    delay_ms: rand(2) * rand(2_000),
                },
                7 => Command::Delete {
                    ids: vec![id(next - rand(next.clamp(1, 300)))],
                },
                8 => match rand(3) {
                    0 => Command::Enqueue {
                        ids: vec![id(next - rand(next.clamp(1, 300)))],
                    },
                    1 => Command::Dequeue {
                        ids: vec![id(next - rand(next.clamp(1, 300)))],
                    },
                    _ => Command::Working {
                        id: id(next - rand(next.clamp(1, 300))),
                    },
                },
                _ => Command::Tick,
            };
            let answer = a.apply(now, command.clone());
            if let Some(b) = b.as_mut() {
                assert_eq!(b.apply(now, command), answer, "step {step}");
                if step % 997 == 0 {
                    assert_eq!(scan_all(b), scan_all(&a));
                    assert_eq!(b.snapshot(), a.snapshot());
                    for q in ["q0", "q1", "q2", "q0.dead"] {
                        assert_eq!(b.peek(q, -1_000_000), a.peek(q, -1_000_000));
                        assert_eq!(b.peek(q, 1_000_000), a.peek(q, 1_000_000));
                    }
                }
            }
            if step % 4_999 == 0 {
                // Scanning page by page sees every job once, in order.
                let mut seen = Vec::new();
                let mut cursor = JobCursor::START;
                loop {
                    let page = a.scan_jobs(cursor, 7, &JobFilter::default());
                    seen.extend(page.items);
                    match page.next {
                        Some(c) => cursor = c,
                        None => break,
                    }
                }
                assert_eq!(seen, scan_all(&a));
                assert_eq!(seen.len(), a.job_count());
                assert!(seen.windows(2).all(|w| w[0].created_ms <= w[1].created_ms));
            }
        }
        assert!(a.job_count() > 0);
        assert!(a.timers.len() <= 2 * (a.job_count + a.state_timers) + PURGE_SLACK);
        assert!(a.order_stale <= a.job_count + PURGE_SLACK);
        let named: u32 = a.names.names.iter().flatten().map(|(_, jobs)| jobs).sum();
        assert_eq!(named as usize, a.job_count);
        assert_eq!(a.names.ids.len(), a.names.names.iter().flatten().count());
        assert_eq!(a, b.unwrap());
    }

    /// The chunks' rules: each is sorted, not empty, at most `SEQ_CHUNK`
    /// long, keyed at or below its first seq and above the previous
    /// chunk's last; `len` counts them all.
    fn check_chunks(list: &SeqList) {
        let mut previous_last = None;
        let mut total = 0;
        for (&key, chunk) in &list.chunks {
            assert!(!chunk.is_empty() && chunk.len() <= SEQ_CHUNK);
            assert!(key <= chunk[0].seq());
            assert!(previous_last.is_none_or(|last| last < key));
            assert!(
                chunk
                    .iter()
                    .zip(chunk.iter().skip(1))
                    .all(|(a, b)| a.seq() < b.seq())
            );
            previous_last = chunk.back().map(|e| e.seq());
            total += chunk.len();
        }
        assert_eq!(total, list.len());
    }

    #[test]
    fn seq_list_matches_an_ordered_set_under_random_inserts_and_removals() {
        let mut list = SeqList::default();
        let mut model = BTreeSet::new();
        // A fixed linear congruential sequence: the same operations every run.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % bound
        };
        for step in 0..20_000u64 {
            let seq = next(400);
            match next(4) {
                0 | 1 if !model.contains(&seq) => {
                    list.insert(seq, seq as Handle);
                    model.insert(seq);
                }
                2 => {
                    list.remove(seq);
                    model.remove(&seq);
                }
                _ => assert_eq!(list.pop_front(), model.pop_first().map(|s| s as Handle)),
            }
            if step % 97 == 0 {
                check_chunks(&list);
            }
            assert_eq!(list.len(), model.len());
        }
        check_chunks(&list);
        let forward: Vec<u64> = list.handles().map(u64::from).collect();
        assert_eq!(forward, model.iter().copied().collect::<Vec<_>>());
        let backward: Vec<u64> = list.handles().rev().map(u64::from).collect();
        assert_eq!(backward, model.iter().rev().copied().collect::<Vec<_>>());
    }

    #[test]
    fn id_index_survives_growth_and_removal() {
        let mut m = StateMachine::new();
        for n in 0..5_000 {
            m.apply(0, add(n, None));
        }
        let gone: Vec<JobId> = (0..5_000).filter(|n| n % 3 == 0).map(id).collect();
        assert_eq!(
            m.apply(0, Command::Delete { ids: gone }),
            Response::Count(1_667)
        );
        for n in 0..5_000 {
            assert_eq!(m.show(&id(n)).is_some(), n % 3 != 0, "job {n}");
        }
        assert_eq!(m.index.len, 3_333);
    }
}

//! What the whole run shares: the trace, the clients' history, and the
//! checks that run online as members report what they apply.
//!
//! Members call in through [`SimObserver`] (their `Observer` hook) from
//! their own tasks; everything runs on madsim's one thread, so a plain
//! mutex never waits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use consensus::{Ballot, NodeId, Slot};
use synod::hooks::{self, Applied, Observer};
use synod::proposal::Proposal;
use tokio::time::Instant;

use crate::history::{Call, Op, Outcome};
use crate::trace::{Described, Event, Trace};

/// A checker's finding: the run failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Which checker (`agreement`, `total-queue`, ...).
    pub checker: &'static str,
    /// What it found.
    pub detail: String,
}

/// Counts that show what a run exercised.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Client operations sent.
    pub ops: u64,
    /// Changes of any member's view of the leader.
    pub leadership_changes: u64,
    /// Kills (each member of a power failure counts).
    pub kills: u64,
    /// Partitions formed.
    pub partitions: u64,
    /// Pauses.
    pub pauses: u64,
    /// Clock jumps.
    pub clock_jumps: u64,
    /// Snapshots installed from the leader.
    pub installed_snapshots: u64,
    /// The highest slot applied anywhere.
    pub max_slot: Slot,
    /// Slots holding a stamp below the log time of the slot before (values
    /// a deposed leader stamped, chosen after a newer leader's).
    pub stamps_behind_log_time: u64,
}

/// The shared state of one run.
pub struct World {
    start: Instant,
    state: Mutex<State>,
}

/// Behind [`World`]'s lock.
pub struct State {
    trace: Trace,
    /// What the checkers found so far.
    pub findings: Vec<Finding>,
    /// Digest of the entry first applied at each slot, and by whom.
    entries: BTreeMap<Slot, (u64, NodeId)>,
    /// The log time after each slot, and who reported it first.
    log_times: BTreeMap<Slot, (u64, NodeId)>,
    /// Each member's last slot applied in its current run, and its log
    /// time after it.
    log_time: BTreeMap<NodeId, (Slot, u64)>,
    /// Slots where members disagreed (reported once each).
    disagreed: BTreeSet<Slot>,
    /// Digest of the job state after each reported slot, and by whom.
    state_digests: BTreeMap<Slot, (u64, NodeId)>,
    /// The last slot each member applied (in its current run).
    pub applied: BTreeMap<NodeId, Slot>,
    /// The slot each member must apply next, when known (not right after
    /// a restart, which starts after whatever snapshot it recovers).
    next_to_apply: BTreeMap<NodeId, Slot>,
    /// Each member's view: whom it follows, and the ballot.
    pub views: BTreeMap<NodeId, (Option<NodeId>, Ballot)>,
    /// Every client operation, in invocation order.
    pub history: Vec<Op>,
    /// Bodies of acknowledged ADDJOBs not yet seen in a GETJOB reply.
    pub undelivered: BTreeSet<String>,
    /// Bodies seen in GETJOB replies.
    pub delivered: BTreeSet<String>,
    /// Client requests the log holds more than once.
    pub repeats: Repeats,
    /// Counts.
    pub stats: Stats,
}

/// Requests the log holds more than once: a member sends a request again
/// when it suspects the first copy was lost, and the leader proposes every
/// copy it gets. Each must take effect once (the checkers would see a
/// second ADDJOB bring back an acked job, or a second NACK break a lease);
/// counting them shows the runs exercise that.
#[derive(Clone, Debug, Default)]
pub struct Repeats {
    /// Each request (origin, incarnation, request id): the first slot
    /// holding it, and whether a later slot did too.
    seen: BTreeMap<(NodeId, u64, u64), (Slot, bool)>,
    /// Requests held at more than one slot (or twice in one).
    pub requests: u64,
}

impl Repeats {
    /// Takes note of the values chosen at `slot` (once per slot).
    fn note(&mut self, slot: Slot, values: &[Proposal]) {
        let mut in_this_slot = BTreeSet::new();
        for proposal in values.iter().filter(|p| p.request_id != 0) {
            let key = (proposal.origin, proposal.incarnation, proposal.request_id);
            let (first, repeated) = self.seen.entry(key).or_insert((slot, false));
            if in_this_slot.insert(key) && *first == slot {
                continue;
            }
            if !*repeated {
                *repeated = true;
                self.requests += 1;
            }
        }
    }
}

impl World {
    /// A new run's state, recording into `trace`.
    pub fn new(trace: Trace) -> World {
        World {
            start: Instant::now(),
            state: Mutex::new(State {
                trace,
                findings: Vec::new(),
                entries: BTreeMap::new(),
                log_times: BTreeMap::new(),
                log_time: BTreeMap::new(),
                disagreed: BTreeSet::new(),
                state_digests: BTreeMap::new(),
                applied: BTreeMap::new(),
                next_to_apply: BTreeMap::new(),
                views: BTreeMap::new(),
                history: Vec::new(),
                undelivered: BTreeSet::new(),
                delivered: BTreeSet::new(),
                repeats: Repeats::default(),
                stats: Stats::default(),
            }),
        }
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held ends the run anyway.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Simulated microseconds since the run started.
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Records `event` in the trace.
    pub fn record(&self, event: Event) {
        let now_us = self.now_us();
        self.lock().trace.record(now_us, &event);
    }

    /// Records a checker's finding.
    pub fn find(&self, checker: &'static str, detail: String) {
        let now_us = self.now_us();
        self.lock().find(now_us, checker, detail);
    }

    /// True once any checker has found a violation.
    pub fn failed(&self) -> bool {
        !self.lock().findings.is_empty()
    }

    /// The member that most recently became leader in its own view.
    pub fn leader(&self) -> Option<NodeId> {
        let state = self.lock();
        state
            .views
            .iter()
            .filter(|(node, (leader, _))| *leader == Some(**node))
            .max_by_key(|(_, (_, ballot))| *ballot)
            .map(|(node, _)| *node)
    }

    /// Starts a client operation; returns its index in the history.
    pub fn invoke(&self, client: u32, member: NodeId, call: Call) -> usize {
        let invoked_us = self.now_us();
        let mut state = self.lock();
        let op = state.history.len();
        state.stats.ops += 1;
        state.trace.record(
            invoked_us,
            &Event::Invoke {
                client,
                op,
                member,
                call: call.clone(),
            },
        );
        state.history.push(Op {
            client,
            member,
            call,
            invoked_us,
            completed_us: None,
            outcome: Outcome::Pending,
        });
        op
    }

    /// Ends client operation `op` with `outcome`.
    pub fn complete(&self, op: usize, outcome: Outcome) {
        let completed_us = self.now_us();
        let mut state = self.lock();
        let state = &mut *state;
        let entry = &mut state.history[op];
        entry.completed_us = Some(completed_us);
        entry.outcome = outcome.clone();
        let client = entry.client;
        if let (Call::Add { body, .. }, Outcome::Ok { .. }) = (&entry.call, &outcome) {
            if !state.delivered.contains(body) {
                state.undelivered.insert(body.clone());
            }
        }
        for job in entry.delivered() {
            state.undelivered.remove(&job.body);
            state.delivered.insert(job.body.clone());
        }
        state.trace.record(
            completed_us,
            &Event::Complete {
                client,
                op,
                outcome,
            },
        );
    }

    /// Bumps a count.
    pub fn count(&self, bump: impl FnOnce(&mut Stats)) {
        bump(&mut self.lock().stats);
    }

    /// Takes what the run leaves: findings, stats, trace hash and event
    /// count.
    pub fn finish(&self) -> (Vec<Finding>, Stats, u64, u64) {
        let mut state = self.lock();
        state.trace.flush();
        (
            std::mem::take(&mut state.findings),
            state.stats,
            state.trace.hash(),
            state.trace.events(),
        )
    }
}

impl State {
    /// True when the run is traced to a file.
    pub fn is_tracing(&self) -> bool {
        self.trace.is_writing()
    }

    /// Records a checker's finding at `now_us`.
    pub fn find(&mut self, now_us: u64, checker: &'static str, detail: String) {
        self.trace.record(
            now_us,
            &Event::Finding {
                checker,
                detail: detail.clone(),
            },
        );
        self.findings.push(Finding { checker, detail });
    }

    /// When the last event happened, in simulated microseconds.
    pub fn last_us(&self) -> u64 {
        self.trace.last_us()
    }

    /// Records a finding made outside the simulation (a panic that ended
    /// it), as of the last event.
    pub fn find_after(&mut self, checker: &'static str, detail: String) {
        let last_us = self.trace.last_us();
        self.find(last_us, checker, detail);
    }

    /// Member `node` was killed: its next run starts after whatever
    /// snapshot it recovers.
    pub fn member_killed(&mut self, node: NodeId) {
        self.views.remove(&node);
        self.next_to_apply.remove(&node);
        self.log_time.remove(&node);
    }

    /// Records `event` at `now_us`.
    pub fn record(&mut self, now_us: u64, event: &Event) {
        self.trace.record(now_us, event);
    }

    /// Queue-state agreement: every member that reports its job state after
    /// `slot` reports the same.
    fn check_state_digest(&mut self, now_us: u64, node: NodeId, slot: Slot, digest: u64) {
        match self.state_digests.get(&slot) {
            None => {
                self.state_digests.insert(slot, (digest, node));
            }
            Some(&(first, by)) if first != digest => self.find(
                now_us,
                "queue-state agreement",
                format!(
                    "after slot {slot} member {by} has job state {first:#018x} \
                     and member {node} has {digest:#018x}"
                ),
            ),
            Some(_) => {}
        }
    }

    /// Member `node` applied `slot`: records it and runs the online
    /// checks (apply order, agreement, log time, queue-state agreement).
    pub fn applied(&mut self, now_us: u64, node: NodeId, slot: Slot, applied: Applied<'_>) {
        let Applied {
            entry,
            log_time_ms,
            state_digest,
        } = applied;
        let bytes = postcard::to_allocvec(entry).expect("an entry encodes in memory");
        let digest = hooks::digest(&bytes);
        let values = entry.values();
        let described = if self.trace.is_writing() {
            Described(values.iter().map(describe).collect())
        } else {
            Described::default()
        };
        self.record(
            now_us,
            &Event::Applied {
                node,
                slot,
                entry: digest,
                values: values.len(),
                max_stamp_ms: values.iter().map(|v| v.stamp_ms).max(),
                log_time_ms,
                described,
            },
        );
        // Each run of a member applies slots in order, each once, from
        // just after its snapshot.
        if let Some(&expected) = self.next_to_apply.get(&node) {
            if slot != expected {
                let after = self.applied.get(&node).copied().unwrap_or(0);
                let detail = format!(
                    "member {node} applied slot {slot} when slot {expected} was next \
                     (its last slot or snapshot: {after})"
                );
                self.find(now_us, "apply order", detail);
            }
        }
        self.next_to_apply.insert(node, slot + 1);
        self.applied.insert(node, slot);
        self.stats.max_slot = self.stats.max_slot.max(slot);
        // Agreement: every member applies the same entry at a slot, in
        // every run (a restarted member applies slots again after its
        // snapshot).
        match self.entries.get(&slot).copied() {
            None => {
                self.entries.insert(slot, (digest, node));
                self.repeats.note(slot, values);
            }
            Some((first, by)) if first != digest && self.disagreed.insert(slot) => {
                let detail = format!(
                    "slot {slot}: member {by} applied entry {first:#018x}, \
                     member {node} applied {digest:#018x} ({entry:?})"
                );
                self.find(now_us, "agreement", detail);
            }
            Some(_) => {}
        }
        self.check_log_time(now_us, node, slot, values, log_time_ms);
        if let Some(digest) = state_digest {
            self.record(now_us, &Event::StateDigest { node, slot, digest });
            self.check_state_digest(now_us, node, slot, digest);
        }
    }

    /// Log time never goes backwards: within one batch the leader stamps
    /// values in the order it proposed them; a member's time after a slot
    /// is at least every stamp in it and at least its time after the slot
    /// before; every member has the same time after the same slot.
    ///
    /// Raw stamps may go backwards from one slot to the next: a value a
    /// deposed leader stamped, accepted by a few members, can be chosen
    /// (re-proposed by a later leader, as Paxos demands) after a slot that
    /// a newer leader filled with later stamps. Those are counted.
    fn check_log_time(
        &mut self,
        now_us: u64,
        node: NodeId,
        slot: Slot,
        values: &[Proposal],
        log_time_ms: u64,
    ) {
        if let Some(pair) = values.windows(2).find(|p| p[1].stamp_ms < p[0].stamp_ms) {
            let detail = format!(
                "slot {slot}: stamp {} follows stamp {} within one batch",
                pair[1].stamp_ms, pair[0].stamp_ms
            );
            self.find(now_us, "log time", detail);
        }
        if let Some(highest) = values.iter().map(|v| v.stamp_ms).max() {
            if log_time_ms < highest {
                let detail = format!(
                    "member {node}: log time {log_time_ms} after slot {slot}, \
                     which holds stamp {highest}"
                );
                self.find(now_us, "log time", detail);
            }
        }
        if let Some(&(before_slot, before_ms)) = self.log_time.get(&node) {
            if before_slot < slot && log_time_ms < before_ms {
                let detail = format!(
                    "member {node}: log time {log_time_ms} after slot {slot}, \
                     {before_ms} after slot {before_slot}"
                );
                self.find(now_us, "log time", detail);
            }
        }
        self.log_time.insert(node, (slot, log_time_ms));
        match self.log_times.get(&slot).copied() {
            None => {
                self.log_times.insert(slot, (log_time_ms, node));
                let behind = self.log_times.range(..slot).next_back().is_some_and(
                    |(_, &(earlier_ms, _))| values.iter().any(|v| v.stamp_ms < earlier_ms),
                );
                if behind {
                    self.stats.stamps_behind_log_time += 1;
                }
            }
            Some((first_ms, by)) if first_ms != log_time_ms => {
                let detail = format!(
                    "after slot {slot} member {by} has log time {first_ms} \
                     and member {node} has {log_time_ms}"
                );
                self.find(now_us, "log time", detail);
            }
            Some(_) => {}
        }
    }
}

/// One value of an entry, briefly: its command, stamp and origin.
fn describe(proposal: &Proposal) -> String {
    use queue::Command;
    let ids = |ids: &[queue::JobId]| {
        ids.iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let command = match &proposal.command {
        Command::Add(add) => {
            let body = String::from_utf8_lossy(&add.body);
            format!(
                "add {} {} {}",
                add.id,
                add.queue,
                crate::history::body_key(&body)
            )
        }
        Command::Get { queues, count } => format!("get {count} from {}", queues.join(",")),
        Command::Ack { ids: list } => format!("ack {}", ids(list)),
        Command::Nack { ids: list, .. } => format!("nack {}", ids(list)),
        Command::Working { id } => format!("working {id}"),
        Command::Tick => "tick".to_string(),
        other => format!("{other:?}"),
    };
    format!(
        "{command} @{} from {}#{}/{}",
        proposal.stamp_ms, proposal.origin, proposal.incarnation, proposal.request_id
    )
}

/// The members' `Observer` hook: records and checks what they apply.
pub struct SimObserver(pub Arc<World>);

impl Observer for SimObserver {
    fn applied(&self, node: NodeId, slot: Slot, applied: Applied<'_>) {
        let now_us = self.0.now_us();
        self.0.lock().applied(now_us, node, slot, applied);
    }

    fn installed_snapshot(&self, node: NodeId, slot: Slot, state_digest: u64) {
        let now_us = self.0.now_us();
        let mut state = self.0.lock();
        state.stats.installed_snapshots += 1;
        state.applied.insert(node, slot);
        state.next_to_apply.insert(node, slot + 1);
        state.record(
            now_us,
            &Event::InstalledSnapshot {
                node,
                slot,
                digest: state_digest,
            },
        );
        state.check_state_digest(now_us, node, slot, state_digest);
    }

    fn leadership(&self, node: NodeId, leader: Option<NodeId>, ballot: Ballot) {
        let now_us = self.0.now_us();
        let mut state = self.0.lock();
        state.stats.leadership_changes += 1;
        state.views.insert(node, (leader, ballot));
        state.record(
            now_us,
            &Event::Leadership {
                node,
                leader,
                round: ballot.round,
                ballot_node: ballot.node,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use consensus::Entry;
    use queue::Command;

    use super::*;

    fn batch(stamps: &[u64]) -> Entry<Proposal> {
        let values: Arc<[Proposal]> = stamps
            .iter()
            .map(|&stamp_ms| Proposal {
                stamp_ms,
                origin: 0,
                incarnation: 0,
                request_id: 0,
                command: Command::Tick,
            })
            .collect();
        Entry::Batch(values)
    }

    /// Feeds `(member, slot, stamps, log time)` to a fresh run's checkers;
    /// returns the checkers that found something.
    fn findings(applied: &[(NodeId, Slot, &[u64], u64)]) -> Vec<&'static str> {
        let world = World::new(Trace::hash_only());
        let mut state = world.lock();
        for (i, &(node, slot, stamps, log_time_ms)) in applied.iter().enumerate() {
            let entry = batch(stamps);
            let applied = Applied {
                entry: &entry,
                log_time_ms,
                state_digest: None,
            };
            state.applied(i as u64, node, slot, applied);
        }
        state.findings.iter().map(|f| f.checker).collect()
    }

    #[madsim::test]
    async fn a_true_log_passes() {
        let log: &[(NodeId, Slot, &[u64], u64)] = &[
            (1, 1, &[10, 10], 10),
            (2, 1, &[10, 10], 10),
            (1, 2, &[12], 12),
            (2, 2, &[12], 12),
        ];
        assert_eq!(findings(log), Vec::<&str>::new());
    }

    #[madsim::test]
    async fn a_stamp_behind_an_earlier_slot_is_counted_not_failed() {
        let world = World::new(Trace::hash_only());
        let mut state = world.lock();
        for (slot, stamp, log_time_ms) in [(1, 20, 20), (2, 15, 20)] {
            let entry = batch(&[stamp]);
            let applied = Applied {
                entry: &entry,
                log_time_ms,
                state_digest: None,
            };
            state.applied(slot, 1, slot, applied);
        }
        assert!(state.findings.is_empty(), "{:?}", state.findings);
        assert_eq!(state.stats.stamps_behind_log_time, 1);
    }

    #[madsim::test]
    async fn log_time_going_backwards_is_found() {
        assert_eq!(
            findings(&[(1, 1, &[20], 20), (1, 2, &[15], 15)]),
            ["log time"]
        );
    }

    #[madsim::test]
    async fn log_time_below_a_stamp_of_its_slot_is_found() {
        assert_eq!(findings(&[(1, 1, &[20, 30], 20)]), ["log time"]);
    }

    #[madsim::test]
    async fn stamps_out_of_order_within_a_batch_are_found() {
        assert_eq!(findings(&[(1, 1, &[30, 20], 30)]), ["log time"]);
    }

    #[madsim::test]
    async fn members_disagreeing_on_log_time_are_found() {
        assert_eq!(
            findings(&[(1, 1, &[20], 20), (2, 1, &[20], 25)]),
            ["log time"]
        );
    }

    #[madsim::test]
    async fn different_entries_at_one_slot_are_found() {
        assert_eq!(
            findings(&[(1, 1, &[20], 20), (2, 1, &[20, 20], 20)]),
            ["agreement"]
        );
    }

    #[madsim::test]
    async fn a_skipped_slot_is_found() {
        assert_eq!(
            findings(&[(1, 1, &[20], 20), (1, 3, &[21], 21)]),
            ["apply order"]
        );
    }

    #[madsim::test]
    async fn a_restarted_member_may_start_after_its_snapshot() {
        let world = World::new(Trace::hash_only());
        let mut state = world.lock();
        let entry = batch(&[20]);
        let applied = Applied {
            entry: &entry,
            log_time_ms: 20,
            state_digest: None,
        };
        state.applied(0, 1, 1, applied);
        state.member_killed(1);
        state.applied(1, 1, 7, applied);
        assert!(state.findings.is_empty(), "{:?}", state.findings);
    }

    #[madsim::test]
    async fn different_job_states_after_one_slot_are_found() {
        let world = World::new(Trace::hash_only());
        let mut state = world.lock();
        let entry = batch(&[20]);
        for (node, digest) in [(1, 0xaa), (2, 0xbb)] {
            let applied = Applied {
                entry: &entry,
                log_time_ms: 20,
                state_digest: Some(digest),
            };
            state.applied(0, node, 1, applied);
        }
        let checkers: Vec<_> = state.findings.iter().map(|f| f.checker).collect();
        assert_eq!(checkers, ["queue-state agreement"]);
    }
}

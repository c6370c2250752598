//! A deterministic in-memory cluster for randomized fault schedules.
//!
//! One seed fixes everything: the group size, which faults are on and how
//! often (swarm testing), the replicas' timeouts and the workload. The network
//! drops, duplicates, delays and reorders messages and can be partitioned
//! (halves, an isolated member, one-way links); replicas crash and restart
//! from only what they persisted; applications take and ship snapshots.
//!
//! After the fault phase the network heals and every member restarts; the
//! liveness phase then requires that every slot applied anywhere is applied
//! everywhere and that a fresh proposal is chosen.
//!
//! Checked throughout: agreement (no two replicas apply different entries at
//! a slot; snapshots agree with the log they replace), validity (only
//! proposed values or no-ops), no value chosen twice, gap-free exactly-once
//! application per replica lifetime.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use bytes::Bytes;
use consensus::{
    AcceptedRecord, Ballot, Config, DurableState, Entry, Message, NodeId, ProposeError, Ready,
    Replica, Slot,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The fault mix and sizes of one schedule, all drawn from its seed.
#[derive(Clone, Debug)]
pub struct Options {
    pub members: usize,
    pub fault_ticks: u64,
    pub liveness_ticks: u64,
    pub drop_percent: u32,
    pub duplicate_percent: u32,
    pub max_delay_ticks: u64,
    /// Chance that a message is held back for up to `LONG_DELAY_TICKS`,
    /// long enough to arrive after one or more elections.
    pub long_delay_per_mille: u32,
    pub crash_per_mille: u32,
    /// Chance of a crash right after a Ready's messages left, before the
    /// host asks for the next Ready.
    pub crash_after_send_per_mille: u32,
    pub restart_after_ticks: u64,
    pub partition_per_mille: u32,
    /// Chance per tick that a member (the leader, half the time) stalls: it
    /// neither ticks nor handles messages, which queue up for it, as in a
    /// long garbage-collection pause or a stopped VM.
    pub pause_per_mille: u32,
    pub max_pause_ticks: u64,
    pub heal_per_mille: u32,
    pub proposals_per_tick: u32,
    pub snapshot_every_slots: Option<u64>,
    pub heartbeat_interval_ticks: u32,
    pub election_timeout_ticks: u32,
    pub pipeline_window_slots: usize,
    pub max_batch_values: usize,
    pub catch_up_max_slots: usize,
    pub accept_horizon_slots: u64,
}

impl Options {
    /// Swarm testing: each seed turns each fault on or off and picks its rate,
    /// so some schedules are calm and others hostile.
    pub fn from_seed(seed: u64, members: usize) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x005e_ed0f_0000_0007);
        let pick =
            |rng: &mut SmallRng, choices: &[u32]| choices[rng.random_range(0..choices.len())];
        Options {
            members,
            fault_ticks: rng.random_range(100..300),
            liveness_ticks: 1_500,
            drop_percent: pick(&mut rng, &[0, 0, 2, 10, 30]),
            duplicate_percent: pick(&mut rng, &[0, 0, 5, 20]),
            max_delay_ticks: u64::from(pick(&mut rng, &[0, 1, 3, 8, 20])),
            long_delay_per_mille: pick(&mut rng, &[0, 0, 5, 30]),
            crash_per_mille: pick(&mut rng, &[0, 5, 15, 40]),
            crash_after_send_per_mille: pick(&mut rng, &[0, 0, 2, 10]),
            restart_after_ticks: u64::from(pick(&mut rng, &[1, 5, 20, 60])),
            partition_per_mille: pick(&mut rng, &[0, 5, 20, 50]),
            pause_per_mille: pick(&mut rng, &[0, 0, 10, 30]),
            max_pause_ticks: u64::from(pick(&mut rng, &[5, 20, 60])),
            heal_per_mille: pick(&mut rng, &[20, 50, 150]),
            proposals_per_tick: pick(&mut rng, &[1, 1, 2, 4]),
            snapshot_every_slots: [None, Some(2), Some(5), Some(20)][rng.random_range(0..4)],
            heartbeat_interval_ticks: pick(&mut rng, &[1, 1, 2]),
            election_timeout_ticks: pick(&mut rng, &[4, 6, 10]),
            pipeline_window_slots: pick(&mut rng, &[1, 2, 4, 16]) as usize,
            max_batch_values: pick(&mut rng, &[1, 2, 8]) as usize,
            catch_up_max_slots: pick(&mut rng, &[4, 16, 256]) as usize,
            // Tight horizons make lagging members ignore Accepts until they
            // have caught up.
            accept_horizon_slots: u64::from(pick(&mut rng, &[17, 32, 65_536])),
        }
    }
}

/// The longest a message is held back by the long-delay fault.
const LONG_DELAY_TICKS: u64 = 150;

/// What one passing schedule did, for sanity checks on the harness itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub proposed: u64,
    pub chosen_values: u64,
    pub acknowledged: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub snapshots_installed: u64,
    pub leader_changes: u64,
    pub slots: Slot,
    /// The tick the schedule ended at and the digest of the final log: equal
    /// for two runs of one seed.
    pub final_tick: u64,
    pub final_digest: u64,
    /// The last tick at which any member's view of the leader changed.
    pub last_leadership_change_tick: u64,
}

/// A schedule that broke a check.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub members: usize,
    pub finding: String,
    pub trace: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "schedule failed: seed {} ({} members): {}",
            self.seed, self.members, self.finding
        )?;
        write!(
            f,
            "replay with its event trace:\n  SYNOD_SEED={} SYNOD_MEMBERS={} SYNOD_TRACE=1 cargo test -p consensus --test schedules replay -- --nocapture",
            self.seed, self.members
        )
    }
}

/// The application: a running hash of everything applied, which is all a
/// snapshot needs to carry to be checkable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct AppState {
    applied_through: Slot,
    digest: u64,
}

impl AppState {
    fn apply(&mut self, slot: Slot, entry: &Entry<u64>) {
        let mut digest = self.digest ^ slot.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for value in entry.values() {
            digest = (digest ^ value)
                .wrapping_mul(0x0100_0000_01b3)
                .rotate_left(7);
        }
        self.digest = digest;
        self.applied_through = slot;
    }

    fn encode(&self) -> Bytes {
        let mut bytes = Vec::with_capacity(16);
        bytes.extend_from_slice(&self.applied_through.to_le_bytes());
        bytes.extend_from_slice(&self.digest.to_le_bytes());
        Bytes::from(bytes)
    }

    fn decode(bytes: &[u8]) -> Self {
        let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        AppState {
            applied_through: word(0),
            digest: word(8),
        }
    }
}

/// What a member keeps across a crash.
#[derive(Clone, Debug, Default)]
struct Disk {
    promised: Ballot,
    accepted: BTreeMap<Slot, (Ballot, Entry<u64>)>,
    snapshot: AppState,
}

struct Member {
    id: NodeId,
    replica: Option<Replica<u64>>,
    app: AppState,
    disk: Disk,
    down_until_tick: u64,
    paused_until_tick: u64,
}

struct InFlight {
    deliver_at_tick: u64,
    message: Message<u64>,
}

/// The cluster and its checkers.
pub struct Cluster {
    seed: u64,
    options: Options,
    #[cfg(feature = "canaries")]
    canary: Option<consensus::Canary>,
    rng: SmallRng,
    now_tick: u64,
    members: Vec<Member>,
    network: Vec<InFlight>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    faults_on: bool,
    next_value: u64,
    proposed: BTreeSet<u64>,
    chosen: BTreeMap<Slot, Entry<u64>>,
    digest_at: BTreeMap<Slot, u64>,
    slot_of_value: BTreeMap<u64, Slot>,
    acknowledged: BTreeMap<u64, Slot>,
    stats: Stats,
    trace: Option<Vec<String>>,
    finding: Option<String>,
}

impl Cluster {
    pub fn new(seed: u64, members: usize, trace: bool) -> Self {
        let options = Options::from_seed(seed, members);
        let ids: Vec<NodeId> = (1..=members as NodeId).collect();
        let mut cluster = Cluster {
            seed,
            options,
            #[cfg(feature = "canaries")]
            canary: None,
            rng: SmallRng::seed_from_u64(seed),
            now_tick: 0,
            members: ids
                .iter()
                .map(|&id| Member {
                    id,
                    replica: None,
                    app: AppState::default(),
                    disk: Disk::default(),
                    down_until_tick: 0,
                    paused_until_tick: 0,
                })
                .collect(),
            network: Vec::new(),
            blocked: BTreeSet::new(),
            faults_on: true,
            next_value: 1,
            proposed: BTreeSet::new(),
            chosen: BTreeMap::new(),
            digest_at: BTreeMap::new(),
            slot_of_value: BTreeMap::new(),
            acknowledged: BTreeMap::new(),
            stats: Stats::default(),
            trace: trace.then(Vec::new),
            finding: None,
        };
        for index in 0..members {
            cluster.start(index);
        }
        cluster
    }

    /// A schedule with a perfect network and no faults, running for
    /// `ticks`: for checking that a stable group settles on one leader.
    pub fn calm(seed: u64, members: usize, ticks: u64) -> Self {
        let mut cluster = Cluster::new(seed, members, false);
        let o = &mut cluster.options;
        o.fault_ticks = ticks;
        o.drop_percent = 0;
        o.duplicate_percent = 0;
        o.max_delay_ticks = 1;
        o.crash_per_mille = 0;
        o.crash_after_send_per_mille = 0;
        o.partition_per_mille = 0;
        o.pause_per_mille = 0;
        o.long_delay_per_mille = 0;
        cluster
    }

    /// Turns on one deliberately broken protocol variant on every member.
    #[cfg(feature = "canaries")]
    pub fn with_canary(mut self, canary: consensus::Canary) -> Self {
        self.canary = Some(canary);
        for index in 0..self.members.len() {
            self.start(index);
        }
        self
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    fn config(&self, id: NodeId) -> Config {
        let o = &self.options;
        let mut config = Config::new(id, (1..=o.members as NodeId).collect::<Vec<_>>());
        config.heartbeat_interval_ticks = o.heartbeat_interval_ticks;
        config.election_timeout_ticks = o.election_timeout_ticks;
        config.catch_up_retry_ticks = o.heartbeat_interval_ticks * 2;
        config.pipeline_window_slots = o.pipeline_window_slots;
        config.max_batch_values = o.max_batch_values;
        config.catch_up_max_slots = o.catch_up_max_slots;
        config.accept_horizon_slots = o.accept_horizon_slots;
        config.seed = self.seed.wrapping_mul(31).wrapping_add(id);
        #[cfg(feature = "canaries")]
        {
            config.canary = self.canary;
        }
        config
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            trace.push(format!("t={} {}", self.now_tick, line()));
        }
    }

    fn fail(&mut self, finding: String) {
        if self.finding.is_none() {
            self.log(|| format!("FAILED: {finding}"));
            self.finding = Some(finding);
        }
    }

    /// (Re)starts member `index` from its disk.
    fn start(&mut self, index: usize) {
        let config = self.config(self.members[index].id);
        let member = &mut self.members[index];
        let durable = DurableState {
            promised: member.disk.promised,
            accepted: member
                .disk
                .accepted
                .iter()
                .map(|(slot, (ballot, entry))| AcceptedRecord {
                    slot: *slot,
                    ballot: *ballot,
                    entry: entry.clone(),
                })
                .collect(),
            snapshot_slot: member.disk.snapshot.applied_through,
        };
        member.app = member.disk.snapshot;
        member.paused_until_tick = 0;
        member.replica = Some(Replica::restart(config, durable).expect("valid config"));
        let id = member.id;
        let snapshot = member.app.applied_through;
        self.log(|| format!("start n{id} from snapshot {snapshot}"));
    }

    fn crash(&mut self, index: usize) {
        let down_for = self.rng.random_range(1..=self.options.restart_after_ticks);
        let member = &mut self.members[index];
        if member.replica.take().is_some() {
            member.down_until_tick = self.now_tick + down_for;
            self.stats.crashes += 1;
            let id = member.id;
            self.log(|| format!("crash n{id} for {down_for} ticks"));
        }
    }

    /// Runs the fault phase, heals, and runs the liveness phase.
    pub fn run(mut self) -> Result<Stats, Failure> {
        while self.now_tick < self.options.fault_ticks && self.finding.is_none() {
            self.step_one_tick();
        }
        self.heal_everything();
        // Proposals still queued at heal time drain at the pipeline's pace;
        // the deadline allows for them.
        let backlog = self.proposed.len() as u64 - self.slot_of_value.len() as u64;
        let per_tick = (self.options.pipeline_window_slots * self.options.max_batch_values) as u64;
        // A member that fell far behind fetches chosen slots a batch per
        // round trip.
        let highest = self.chosen.keys().next_back().copied().unwrap_or(0);
        let catch_up = 4 * highest / self.options.catch_up_max_slots as u64;
        let deadline =
            self.now_tick + self.options.liveness_ticks + 4 * backlog / per_tick + catch_up;
        let mut final_value: Option<(u64, u64)> = None;
        while self.finding.is_none() {
            if self.now_tick >= deadline {
                let finding = self.liveness_report(final_value.map(|(v, _)| v));
                self.fail(finding);
                break;
            }
            self.step_one_tick();
            // Propose one fresh value through the leader; re-propose if it was
            // lost to a leadership change.
            let stale = final_value.is_none_or(|(value, at)| {
                !self.slot_of_value.contains_key(&value) && self.now_tick - at > 50
            });
            if stale {
                if let Some(index) = self.leader_index() {
                    let value = self.fresh_value();
                    if self.propose_at(index, value) {
                        final_value = Some((value, self.now_tick));
                    }
                }
            }
            if let Some((value, _)) = final_value {
                if self.converged(value) {
                    break;
                }
            }
        }
        match self.finding.take() {
            None => {
                self.stats.slots = self.chosen.keys().next_back().copied().unwrap_or(0);
                self.stats.acknowledged = self.acknowledged.len() as u64;
                self.stats.proposed = self.proposed.len() as u64;
                self.stats.final_tick = self.now_tick;
                self.stats.final_digest = self.digest_at.values().next_back().copied().unwrap_or(0);
                Ok(self.stats)
            }
            Some(finding) => Err(Failure {
                seed: self.seed,
                members: self.options.members,
                finding,
                trace: self.trace.take().unwrap_or_default(),
            }),
        }
    }

    /// The first live member that believes it leads.
    fn leader_index(&self) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.replica.as_ref().is_some_and(|r| r.is_leader()))
    }

    fn is_paused(&self, index: usize) -> bool {
        self.members[index].paused_until_tick > self.now_tick
    }

    fn pause_someone(&mut self) {
        let index = match self.leader_index() {
            Some(leader) if self.rng.random_bool(0.5) => leader,
            _ => self.rng.random_range(0..self.members.len()),
        };
        let ticks = self.rng.random_range(1..=self.options.max_pause_ticks);
        let now = self.now_tick;
        let member = &mut self.members[index];
        if member.replica.is_some() && member.paused_until_tick <= now {
            member.paused_until_tick = now + ticks;
            let id = member.id;
            self.log(|| format!("pause n{id} for {ticks} ticks"));
        }
    }

    fn fresh_value(&mut self) -> u64 {
        let value = self.next_value;
        self.next_value += 1;
        value
    }

    /// Every live member has applied every slot applied anywhere, including
    /// the fresh value's.
    fn converged(&self, final_value: u64) -> bool {
        let Some(&final_slot) = self.slot_of_value.get(&final_value) else {
            return false;
        };
        let highest = self.chosen.keys().next_back().copied().unwrap_or(0);
        let target = highest.max(final_slot);
        self.members.iter().all(|m| m.app.applied_through >= target)
    }

    fn liveness_report(&self, final_value: Option<u64>) -> String {
        let mut report = format!(
            "liveness: not converged {} ticks after healing (final value {:?} at slot {:?}); highest applied slot {}:",
            self.options.liveness_ticks,
            final_value,
            final_value.and_then(|v| self.slot_of_value.get(&v)),
            self.chosen.keys().next_back().copied().unwrap_or(0),
        );
        for m in &self.members {
            let status = m.replica.as_ref().map(|r| r.status());
            let _ = write!(
                report,
                "\n  n{}: applied {} {:?}",
                m.id, m.app.applied_through, status
            );
        }
        report
    }

    fn heal_everything(&mut self) {
        self.log(|| "heal: network whole, faults off, everyone up".to_string());
        self.faults_on = false;
        self.blocked.clear();
        for member in &mut self.members {
            member.paused_until_tick = 0;
        }
        for index in 0..self.members.len() {
            if self.members[index].replica.is_none() {
                self.start(index);
            }
        }
    }

    fn step_one_tick(&mut self) {
        self.now_tick += 1;
        if self.faults_on {
            self.inject_faults();
        }
        // Restarts due now.
        for index in 0..self.members.len() {
            let m = &self.members[index];
            if m.replica.is_none() && m.down_until_tick <= self.now_tick {
                self.start(index);
            }
        }
        // Every live member ticks, in a shuffled order.
        let mut order: Vec<usize> = (0..self.members.len()).collect();
        shuffle(&mut self.rng, &mut order);
        for index in order {
            if self.is_paused(index) {
                continue;
            }
            if let Some(replica) = self.members[index].replica.as_mut() {
                replica.tick();
                self.drain(index);
            }
        }
        // Client proposals at random members, forwarded once to the hinted
        // leader the way a node forwards.
        if self.faults_on {
            for _ in 0..self.options.proposals_per_tick {
                let index = self.rng.random_range(0..self.members.len());
                let value = self.fresh_value();
                self.propose_at(index, value);
            }
        }
        self.deliver_due_messages();
    }

    /// Proposes `value` at member `index` (or the leader it names). True if a
    /// leader took it.
    fn propose_at(&mut self, index: usize, value: u64) -> bool {
        if self.is_paused(index) {
            return false;
        }
        let Some(replica) = self.members[index].replica.as_mut() else {
            return false;
        };
        self.proposed.insert(value);
        let taken = match replica.propose(value) {
            Ok(()) => Some(index),
            Err(ProposeError::NotLeader {
                leader_hint: Some(leader),
                value,
            }) if !self.is_paused((leader - 1) as usize) => {
                let leader_index = (leader - 1) as usize;
                match self.members[leader_index].replica.as_mut() {
                    Some(replica) => replica.propose(value).ok().map(|()| leader_index),
                    None => None,
                }
            }
            Err(_) => None,
        };
        let id = self.members[index].id;
        self.log(|| format!("propose {value} at n{id}: {taken:?}"));
        if let Some(leader_index) = taken {
            self.drain(leader_index);
        }
        taken.is_some()
    }

    fn inject_faults(&mut self) {
        let n = self.members.len();
        if self.rng.random_range(0..1000) < self.options.crash_per_mille {
            let index = self.rng.random_range(0..n);
            self.crash(index);
        }
        if self.rng.random_range(0..1000) < self.options.partition_per_mille {
            self.partition();
        }
        if self.rng.random_range(0..1000) < self.options.pause_per_mille {
            self.pause_someone();
        }
        if !self.blocked.is_empty() && self.rng.random_range(0..1000) < self.options.heal_per_mille
        {
            self.blocked.clear();
            self.log(|| "partition healed".to_string());
        }
    }

    fn partition(&mut self) {
        let ids: Vec<NodeId> = self.members.iter().map(|m| m.id).collect();
        self.blocked.clear();
        self.stats.partitions += 1;
        match self.rng.random_range(0..3) {
            0 => {
                // Random halves.
                let mut side = BTreeSet::new();
                for &id in &ids {
                    if self.rng.random_bool(0.5) {
                        side.insert(id);
                    }
                }
                for &a in &ids {
                    for &b in &ids {
                        if side.contains(&a) != side.contains(&b) {
                            self.blocked.insert((a, b));
                        }
                    }
                }
                self.log(|| format!("partition: {side:?} | rest"));
            }
            1 => {
                // Isolate the leader if there is one, else anyone.
                let leader = self.leader_index().map(|i| self.members[i].id);
                let victim = leader.unwrap_or_else(|| ids[self.rng.random_range(0..ids.len())]);
                for &other in &ids {
                    if other != victim {
                        self.blocked.insert((victim, other));
                        self.blocked.insert((other, victim));
                    }
                }
                self.log(|| format!("partition: isolate n{victim}"));
            }
            _ => {
                // One-way: a member hears but is not heard (or the reverse).
                let victim = ids[self.rng.random_range(0..ids.len())];
                let outbound = self.rng.random_bool(0.5);
                for &other in &ids {
                    if other != victim {
                        self.blocked.insert(if outbound {
                            (victim, other)
                        } else {
                            (other, victim)
                        });
                    }
                }
                self.log(|| format!("partition: one-way, n{victim} outbound={outbound} blocked"));
            }
        }
    }

    fn deliver_due_messages(&mut self) {
        let now = self.now_tick;
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.network.len() {
            if self.network[i].deliver_at_tick <= now {
                due.push(self.network.swap_remove(i).message);
            } else {
                i += 1;
            }
        }
        shuffle(&mut self.rng, &mut due);
        for message in due {
            if self.finding.is_some() {
                return;
            }
            if self.blocked.contains(&(message.from, message.to)) {
                continue;
            }
            let index = (message.to - 1) as usize;
            if self.members[index].replica.is_none() {
                continue;
            }
            if self.is_paused(index) {
                // Held for the stalled member, delivered when it resumes.
                let deliver_at_tick = self.members[index].paused_until_tick;
                self.network.push(InFlight {
                    deliver_at_tick,
                    message,
                });
                continue;
            }
            if self.trace.is_some() {
                let line = format!("deliver {message}");
                self.log(|| line);
            }
            let replica = self.members[index].replica.as_mut().expect("checked above");
            if let Err(error) = replica.step(message) {
                self.fail(format!("a well-formed message was refused: {error}"));
                return;
            }
            self.drain(index);
        }
    }

    fn send(&mut self, message: Message<u64>) {
        if self.faults_on {
            if self.rng.random_range(0..100) < self.options.drop_percent {
                return;
            }
            if self.rng.random_range(0..100) < self.options.duplicate_percent {
                let delay = self.rng.random_range(0..=self.options.max_delay_ticks);
                self.network.push(InFlight {
                    deliver_at_tick: self.now_tick + delay,
                    message: message.clone(),
                });
            }
        }
        let max_delay = if self.faults_on {
            self.options.max_delay_ticks
        } else {
            1
        };
        // At least one tick, so a reply never races its request in one tick.
        let delay = self.rng.random_range(1..=max_delay.max(1));
        self.network.push(InFlight {
            deliver_at_tick: self.now_tick + delay,
            message,
        });
    }

    /// Carries out member `index`'s Ready in the documented order, and its
    /// snapshot duties, until nothing is left.
    fn drain(&mut self, index: usize) {
        loop {
            let Some(replica) = self.members[index].replica.as_mut() else {
                return;
            };
            let ready = replica.ready();
            if ready.is_empty() {
                return;
            }
            self.handle_ready(index, ready);
            if self.finding.is_some() {
                return;
            }
            if self.faults_on
                && self.rng.random_range(0..1000) < self.options.crash_after_send_per_mille
            {
                self.crash(index);
                return;
            }
        }
    }

    fn handle_ready(&mut self, index: usize, ready: Ready<u64>) {
        let Ready {
            promised,
            accepted,
            snapshot,
            messages,
            committed,
            leadership,
            dropped_proposals: _,
            snapshot_requests,
        } = ready;
        let id = self.members[index].id;

        // 1. Persist.
        {
            let disk = &mut self.members[index].disk;
            if let Some(ballot) = promised {
                disk.promised = ballot;
            }
            for record in accepted {
                if record.slot > disk.snapshot.applied_through {
                    disk.accepted
                        .insert(record.slot, (record.ballot, record.entry));
                }
            }
        }
        if let Some(snapshot) = snapshot {
            let state = AppState::decode(&snapshot.data);
            if state.applied_through != snapshot.slot {
                self.fail(format!(
                    "n{id}: snapshot slot {} carries state of slot {}",
                    snapshot.slot, state.applied_through
                ));
                return;
            }
            if let Some(&digest) = self.digest_at.get(&snapshot.slot) {
                if digest != state.digest {
                    self.fail(format!("agreement: n{id} installed a snapshot at slot {} that disagrees with the applied log", snapshot.slot));
                    return;
                }
            }
            self.stats.snapshots_installed += 1;
            self.log(|| format!("n{id} installs snapshot at slot {}", snapshot.slot));
            let member = &mut self.members[index];
            member.app = state;
            member.disk.snapshot = state;
            member.disk.accepted = member.disk.accepted.split_off(&(snapshot.slot + 1));
        }

        // 2. Send.
        for message in messages {
            self.send(message);
        }

        // 3. Apply.
        let is_leader = self.members[index]
            .replica
            .as_ref()
            .is_some_and(|r| r.is_leader());
        for c in committed {
            let expected = self.members[index].app.applied_through + 1;
            if c.slot != expected {
                self.fail(format!(
                    "n{id} was handed slot {} when slot {expected} was next",
                    c.slot
                ));
                return;
            }
            match self.chosen.get(&c.slot) {
                Some(entry) if *entry != c.entry => {
                    self.fail(format!(
                        "agreement: slot {} is {:?} on n{id} but {:?} elsewhere",
                        c.slot, c.entry, entry
                    ));
                    return;
                }
                Some(_) => {}
                None => {
                    for &value in c.entry.values() {
                        if !self.proposed.contains(&value) {
                            self.fail(format!(
                                "validity: slot {} holds {value}, never proposed",
                                c.slot
                            ));
                            return;
                        }
                        if let Some(slot) = self.slot_of_value.insert(value, c.slot) {
                            self.fail(format!(
                                "value {value} chosen at slots {slot} and {}",
                                c.slot
                            ));
                            return;
                        }
                        self.stats.chosen_values += 1;
                    }
                    self.chosen.insert(c.slot, c.entry.clone());
                }
            }
            if is_leader {
                for &value in c.entry.values() {
                    self.acknowledged.insert(value, c.slot);
                }
            }
            let member = &mut self.members[index];
            member.app.apply(c.slot, &c.entry);
            let digest = member.app.digest;
            if let Some(&known) = self.digest_at.get(&c.slot) {
                if known != digest {
                    self.fail(format!(
                        "agreement: n{id}'s state after slot {} differs from another replica's",
                        c.slot
                    ));
                    return;
                }
            } else {
                self.digest_at.insert(c.slot, digest);
            }
            if self.trace.is_some() {
                self.log(|| format!("n{id} applies slot {} {:?}", c.slot, c.entry));
            }
        }

        // Snapshots: the application compacts every few slots.
        if let Some(every) = self.options.snapshot_every_slots {
            let member = &mut self.members[index];
            if member.app.applied_through >= member.disk.snapshot.applied_through + every {
                member.disk.snapshot = member.app;
                let slot = member.app.applied_through;
                member.disk.accepted = member.disk.accepted.split_off(&(slot + 1));
                if let Some(replica) = member.replica.as_mut() {
                    replica
                        .snapshot_taken(slot)
                        .expect("snapshot at the applied slot");
                }
            }
        }

        // 4. Leadership and snapshot requests.
        if let Some(leadership) = leadership {
            self.stats.leader_changes += 1;
            self.stats.last_leadership_change_tick = self.now_tick;
            self.log(|| format!("n{id} leadership {:?}", leadership));
        }
        for to in snapshot_requests {
            let member = &mut self.members[index];
            let state = member.app;
            if let Some(replica) = member.replica.as_mut() {
                replica
                    .send_snapshot(to, state.applied_through, state.encode())
                    .expect("snapshot of the applied state to a member");
            }
        }
    }
}

fn shuffle<T>(rng: &mut SmallRng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        let j = rng.random_range(0..=i);
        items.swap(i, j);
    }
}

/// How a finding that is a replica's own panic (a broken invariant) begins.
pub const REPLICA_PANICKED: &str = "a replica panicked";

/// Runs one schedule; a panic inside a replica (a broken invariant) is a
/// finding like any other.
pub fn run_schedule(seed: u64, members: usize, trace: bool) -> Result<Stats, Failure> {
    run_catching(seed, members, || Cluster::new(seed, members, trace))
}

pub fn run_catching(
    seed: u64,
    members: usize,
    make: impl FnOnce() -> Cluster + std::panic::UnwindSafe,
) -> Result<Stats, Failure> {
    match std::panic::catch_unwind(|| make().run()) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Failure {
                seed,
                members,
                finding: format!("{REPLICA_PANICKED}: {message}"),
                trace: Vec::new(),
            })
        }
    }
}

/// How many schedules to run: `SYNOD_SCHEDULES` or the CI default.
pub fn schedule_count(default: u64) -> u64 {
    std::env::var("SYNOD_SCHEDULES")
        .ok()
        .map(|s| s.parse().expect("SYNOD_SCHEDULES must be a number"))
        .unwrap_or(default)
}

//! One member of the group. In the terms of "Paxos Made Moderately Complex"
//! (PMMC), a `Replica` plays every role at once: acceptor (it promises and
//! accepts), learner (it finds out what is chosen and hands it on in slot
//! order) and, when elected, leader, whose phase 1 is run by a [`Scout`] and
//! whose phase 2 for each slot is tallied by a [`Commander`].

use std::collections::{BTreeMap, VecDeque};
use std::mem;
use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::ballot::{Ballot, NodeId, Slot};
use crate::config::Config;
use crate::entry::Entry;
use crate::error::{ConfigError, ProposeError, SnapshotError, StepError};
use crate::log::{Log, LogSlot};
use crate::message::{Message, Payload, PromisedSlot};
use crate::quorum::{Members, Tally};
use crate::ready::{AcceptedRecord, Committed, DurableState, Leadership, Ready, Snapshot};

/// What part a replica currently plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepts and learns; forwards nothing itself.
    Follower,
    /// Running phase 1 for its own ballot.
    Candidate,
    /// Won phase 1; proposes values in phase 2.
    Leader,
}

/// A summary of a replica's state, for status displays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// The replica's id.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// The leader it believes in, if any.
    pub leader: Option<NodeId>,
    /// The highest ballot it has promised.
    pub promised: Ballot,
    /// Every slot up to here is known chosen.
    pub commit_through: Slot,
    /// Every slot up to here has been handed to the application.
    pub applied_through: Slot,
    /// Slots up to here are compacted into a snapshot.
    pub snapshot_slot: Slot,
    /// The highest slot in the log.
    pub last_slot: Slot,
}

/// One member of a Multi-Paxos group. See the crate documentation for how to
/// drive it.
pub struct Replica<V> {
    config: Config,
    members: Members,
    my_index: usize,
    rng: SmallRng,
    now_tick: u64,

    // Acceptor state. Every change reaches `ready.promised` or
    // `ready.accepted`, to be made durable before messages leave.
    promised: Ballot,
    log: Log<V>,

    // Learner state.
    snapshot_slot: Slot,
    commit_through: Slot,
    applied_through: Slot,
    catch_up_requested_at_tick: Option<u64>,
    /// Slots through `.1` were already matched against the commit point of
    /// ballot `.0` (see `learn_commit`).
    commit_scan: (Ballot, Slot),

    // Proposer state.
    role: RoleState<V>,
    leader_hint: Option<NodeId>,
    highest_round_seen: u64,
    timeouts: Timeouts,

    ready: Ready<V>,
    reported_leader: Option<NodeId>,
    #[cfg(feature = "canaries")]
    deferred_persist: (Option<Ballot>, Vec<AcceptedRecord<V>>),
    #[cfg(debug_assertions)]
    last_checked_promised: Ballot,
}

enum RoleState<V> {
    Follower,
    Candidate(Scout<V>),
    Leader(Leader<V>),
}

/// Phase 1 of one ballot (PMMC's scout): collects promises and, from them,
/// the highest-ballot value accepted at each slot.
struct Scout<V> {
    ballot: Ballot,
    first_unchosen_slot: Slot,
    promised_by: Tally,
    slots: BTreeMap<Slot, PromisedSlot<V>>,
    /// The highest snapshot slot reported, and who reported it.
    snapshot: (Slot, NodeId),
}

/// A leader's state for one ballot.
struct Leader<V> {
    ballot: Ballot,
    next_slot: Slot,
    /// Phase 2 of each slot in flight (PMMC's commanders).
    commanders: BTreeMap<Slot, Commander>,
    /// Proposals waiting for room in the pipeline.
    pending: VecDeque<V>,
    announced_commit_through: Slot,
    /// Members heard from since the last quorum check (self included).
    heard_from: Tally,
}

/// Phase 2 of one slot (PMMC's commander): who has accepted it.
struct Commander {
    accepted_by: Tally,
    proposed_at_tick: u64,
}

/// A countdown in ticks.
#[derive(Clone, Copy, Debug)]
struct Timeout {
    elapsed_ticks: u32,
    after_ticks: u32,
}

impl Timeout {
    fn new(after_ticks: u32) -> Self {
        Timeout {
            elapsed_ticks: 0,
            after_ticks,
        }
    }

    /// Advances one tick; true (and restarts) when the timeout expires.
    fn tick(&mut self) -> bool {
        self.elapsed_ticks += 1;
        let fired = self.elapsed_ticks >= self.after_ticks;
        if fired {
            self.elapsed_ticks = 0;
        }
        fired
    }

    fn reset(&mut self, after_ticks: u32) {
        *self = Timeout::new(after_ticks);
    }
}

/// Every timeout a replica runs, by name. Which ones tick depends on the role.
struct Timeouts {
    /// Follower and candidate: no word from a leader; campaign.
    election: Timeout,
    /// Candidate: re-send `Prepare` to members that have not promised.
    prepare_retry: Timeout,
    /// Leader: send heartbeats; re-send unanswered `Accept`s.
    heartbeat: Timeout,
    /// Leader: step down unless a quorum was heard from since the last check.
    quorum_check: Timeout,
}

impl<V: Clone + PartialEq + core::fmt::Debug> Replica<V> {
    /// A brand-new member with empty durable state.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::restart(config, DurableState::default())
    }

    /// A member restarting from what it persisted. Everything not in `durable`
    /// (role, known leader, what is known chosen beyond the snapshot) is
    /// relearned from the group.
    pub fn restart(config: Config, durable: DurableState<V>) -> Result<Self, ConfigError> {
        config.validate()?;
        let members = Members::new(&config.members);
        let my_index = members
            .index_of(config.id)
            .expect("validate() checked membership");
        let snapshot_slot = durable.snapshot_slot;
        let mut promised = durable.promised;
        let mut log = Log::new(snapshot_slot);
        for record in durable.accepted {
            // A promise is always persisted with (or before) the accept it
            // allowed; taking the maximum is only belt and braces, since
            // raising a promise is always safe.
            promised = promised.max(record.ballot);
            log.put(
                record.slot,
                LogSlot {
                    ballot: record.ballot,
                    entry: record.entry,
                    chosen: false,
                },
            );
        }
        let mut rng = SmallRng::seed_from_u64(config.seed ^ promised.round.rotate_left(32));
        let election_after = election_timeout_ticks(&config, &mut rng);
        let timeouts = Timeouts {
            election: Timeout::new(election_after),
            prepare_retry: Timeout::new(config.heartbeat_interval_ticks),
            heartbeat: Timeout::new(config.heartbeat_interval_ticks),
            quorum_check: Timeout::new(config.election_timeout_ticks),
        };
        let mut replica = Replica {
            members,
            my_index,
            rng,
            now_tick: 0,
            promised,
            log,
            snapshot_slot,
            commit_through: snapshot_slot,
            applied_through: snapshot_slot,
            catch_up_requested_at_tick: None,
            commit_scan: (Ballot::ZERO, 0),
            role: RoleState::Follower,
            leader_hint: None,
            highest_round_seen: promised.round,
            timeouts,
            ready: Ready::default(),
            reported_leader: None,
            #[cfg(feature = "canaries")]
            deferred_persist: (None, Vec::new()),
            #[cfg(debug_assertions)]
            last_checked_promised: promised,
            config,
        };
        replica.check_invariants();
        Ok(replica)
    }

    // ----- Accessors -------------------------------------------------------

    /// This replica's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// True while this replica leads.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }

    /// The leader this replica believes in: itself when leading.
    pub fn leader(&self) -> Option<NodeId> {
        if self.is_leader() {
            Some(self.config.id)
        } else {
            self.leader_hint
        }
    }

    /// Every slot up to here is handed to the application (or in a snapshot).
    pub fn applied_through(&self) -> Slot {
        self.applied_through
    }

    /// A summary of the replica's state.
    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: match self.role {
                RoleState::Follower => Role::Follower,
                RoleState::Candidate(_) => Role::Candidate,
                RoleState::Leader(_) => Role::Leader,
            },
            leader: self.leader(),
            promised: self.promised,
            commit_through: self.commit_through,
            applied_through: self.applied_through,
            snapshot_slot: self.snapshot_slot,
            last_slot: self.log.last_slot(),
        }
    }

    /// True when [`ready`](Self::ready) has something to do.
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
            || matches!(&self.role, RoleState::Leader(leader)
                if !leader.pending.is_empty()
                    && leader.commanders.len() < self.config.pipeline_window_slots)
    }

    // ----- Inputs ----------------------------------------------------------

    /// Advances logical time by one tick and fires whatever timeouts expire.
    pub fn tick(&mut self) {
        self.now_tick += 1;
        match self.role {
            RoleState::Follower => {
                if self.timeouts.election.tick() {
                    self.on_election_timeout();
                }
            }
            RoleState::Candidate(_) => {
                if self.timeouts.election.tick() {
                    self.on_election_timeout();
                } else if self.timeouts.prepare_retry.tick() {
                    self.on_prepare_retry_timeout();
                }
            }
            RoleState::Leader(_) => {
                if self.timeouts.heartbeat.tick() {
                    self.on_heartbeat_timeout();
                }
                if self.timeouts.quorum_check.tick() {
                    self.on_quorum_check_timeout();
                }
            }
        }
        self.check_invariants();
    }

    /// Queues `value` to be ordered. Values proposed between two calls to
    /// [`ready`](Self::ready) share slots (up to `max_batch_values` each), so
    /// proposing many values and then calling `ready` once is how to batch.
    pub fn propose(&mut self, value: V) -> Result<(), ProposeError<V>> {
        let RoleState::Leader(leader) = &mut self.role else {
            return Err(ProposeError::NotLeader {
                leader_hint: self.leader_hint,
                value,
            });
        };
        if leader.pending.len() >= self.config.max_pending_values {
            return Err(ProposeError::Busy { value });
        }
        leader.pending.push_back(value);
        Ok(())
    }

    /// Handles one message from a peer.
    pub fn step(&mut self, message: Message<V>) -> Result<(), StepError> {
        let Message { from, to, payload } = message;
        if to != self.config.id {
            return Err(StepError::WrongRecipient {
                to,
                me: self.config.id,
            });
        }
        let from_index = match self.members.index_of(from) {
            Some(index) if index != self.my_index => index,
            _ => return Err(StepError::UnknownSender { from }),
        };
        // Only a ballot's owner may prepare or lead with it.
        if let Payload::Prepare { ballot, .. }
        | Payload::Accept { ballot, .. }
        | Payload::Commit { ballot, .. }
        | Payload::Heartbeat { ballot, .. } = &payload
        {
            if ballot.node != from {
                return Err(StepError::ForeignBallot {
                    from,
                    ballot: *ballot,
                });
            }
        }
        if let Payload::Promise { accepted, .. } = &payload {
            // An acceptor reports its log in ascending slot order; anything
            // else is corrupt and could make a candidate re-propose wrongly.
            let ascending = accepted.windows(2).all(|pair| pair[0].slot < pair[1].slot);
            if !ascending || accepted.first().is_some_and(|first| first.slot == 0) {
                return Err(StepError::InvalidPromise);
            }
        }
        if !slots_in_range(&payload) {
            return Err(StepError::InvalidSlot);
        }
        if !rounds_in_range(&payload) {
            return Err(StepError::InvalidBallot);
        }
        match payload {
            Payload::Prepare {
                ballot,
                first_unchosen_slot,
            } => self.on_prepare(from, ballot, first_unchosen_slot),
            Payload::Promise {
                ballot,
                snapshot_slot,
                accepted,
            } => self.on_promise(from, from_index, ballot, snapshot_slot, accepted),
            Payload::Accept {
                ballot,
                slot,
                entry,
                commit_through,
            } => self.on_accept(from, ballot, slot, entry, commit_through),
            Payload::Accepted { ballot, slot } => self.on_accepted(from_index, ballot, slot),
            Payload::Nack { ballot, promised } => self.on_nack(ballot, promised),
            Payload::Commit {
                ballot,
                commit_through,
            } => self.on_commit(from, ballot, commit_through, false),
            Payload::Heartbeat {
                ballot,
                commit_through,
            } => self.on_commit(from, ballot, commit_through, true),
            Payload::HeartbeatAck {
                ballot,
                commit_through,
            } => self.on_heartbeat_ack(from, from_index, ballot, commit_through),
            Payload::CatchUpRequest { first_missing_slot } => {
                self.on_catch_up_request(from, from_index, first_missing_slot)
            }
            Payload::CatchUp {
                first_slot,
                entries,
            } => self.on_catch_up(from, first_slot, entries),
            Payload::InstallSnapshot {
                snapshot_slot,
                data,
            } => self.on_install_snapshot(snapshot_slot, data),
        }
        self.check_invariants();
        Ok(())
    }

    /// Tells the replica that the application has durably snapshotted its
    /// state through `slot`, so the log up to there can be dropped. Peers that
    /// later need those slots get a snapshot instead (see
    /// [`Ready::snapshot_requests`]).
    pub fn snapshot_taken(&mut self, slot: Slot) -> Result<(), SnapshotError> {
        if slot > self.applied_through {
            return Err(SnapshotError::AheadOfApplied {
                slot,
                applied_through: self.applied_through,
            });
        }
        if slot > self.snapshot_slot {
            self.log.compact_through(slot);
            self.snapshot_slot = slot;
        }
        self.check_invariants();
        Ok(())
    }

    /// Sends the application's snapshot `data`, covering every slot through
    /// `slot`, to `to`; the answer to a [`Ready::snapshot_requests`] entry.
    pub fn send_snapshot(
        &mut self,
        to: NodeId,
        slot: Slot,
        data: Bytes,
    ) -> Result<(), SnapshotError> {
        if self.members.index_of(to).is_none_or(|i| i == self.my_index) {
            return Err(SnapshotError::UnknownRecipient { to });
        }
        if slot > self.applied_through {
            return Err(SnapshotError::AheadOfApplied {
                slot,
                applied_through: self.applied_through,
            });
        }
        self.send(
            to,
            Payload::InstallSnapshot {
                snapshot_slot: slot,
                data,
            },
        );
        Ok(())
    }

    /// Takes everything the host must now do. Read [`Ready`] for the order.
    pub fn ready(&mut self) -> Ready<V> {
        self.fill_pipeline();
        self.announce_commit();
        let leader = self.leader();
        if leader != self.reported_leader {
            self.reported_leader = leader;
            self.ready.leadership = Some(Leadership {
                leader,
                ballot: self.promised,
            });
        }
        #[cfg(feature = "canaries")]
        if self.config.canary == Some(crate::Canary::SendBeforePersist) {
            // Broken on purpose: this Ready's state is persisted with the
            // next one, after this Ready's messages have left.
            let promised = self.ready.promised.take();
            let accepted = mem::take(&mut self.ready.accepted);
            let (old_promised, old_accepted) =
                mem::replace(&mut self.deferred_persist, (promised, accepted));
            self.ready.promised = old_promised;
            self.ready.accepted = old_accepted;
        }
        self.check_invariants();
        mem::take(&mut self.ready)
    }

    // ----- Acceptor --------------------------------------------------------

    /// P1a. "Paxos Made Simple", §2.2 (b): promise never to accept a lower
    /// ballot, and report the highest-ballot value accepted at each slot.
    fn on_prepare(&mut self, from: NodeId, ballot: Ballot, first_unchosen_slot: Slot) {
        if ballot < self.promised {
            self.send(
                from,
                Payload::Nack {
                    ballot,
                    promised: self.promised,
                },
            );
            return;
        }
        if ballot > self.promised {
            self.promise(ballot);
        }
        // A candidate is at work: give it time before competing with it.
        self.reset_election_timeout();
        let accepted = self.promised_slots(first_unchosen_slot);
        self.send(
            from,
            Payload::Promise {
                ballot,
                snapshot_slot: self.snapshot_slot,
                accepted,
            },
        );
    }

    /// P2a. "Paxos Made Simple", §2.2: accept unless a higher ballot was
    /// promised.
    fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        slot: Slot,
        entry: Entry<V>,
        commit_through: Slot,
    ) {
        if ballot < self.promised {
            #[cfg(feature = "canaries")]
            if self.config.canary == Some(crate::Canary::AcceptBelowPromise) {
                // Broken on purpose: no promise check, no invariant check.
                if !self.knows_chosen(slot) {
                    self.store_accepted(slot, ballot, entry);
                }
                self.send(from, Payload::Accepted { ballot, slot });
                return;
            }
            self.send(
                from,
                Payload::Nack {
                    ballot,
                    promised: self.promised,
                },
            );
            return;
        }
        self.follow(ballot);
        if slot > self.horizon() {
            // Too far ahead of what we know chosen: treat it as lost, and let
            // the commit point start a catch-up that brings us within reach.
            self.learn_commit(from, ballot, commit_through);
            return;
        }
        // A slot known chosen keeps its value. Answering is still safe: any
        // ballot at or above the one that chose it carries the same value,
        // and a lower one cannot gather a quorum (the choosing quorum
        // promised above it).
        if !self.knows_chosen(slot) {
            self.accept(slot, ballot, entry);
            // A retransmitted Accept can fill a hole the leader already
            // declared chosen (see `learn_commit`): the value is now the
            // leader's, so it is the chosen one, and no fetch is needed.
            let (scan_ballot, scanned_through) = self.commit_scan;
            if scan_ballot == ballot && slot <= scanned_through {
                if let Some(s) = self.log.get_mut(slot) {
                    s.chosen = true;
                }
            }
        }
        self.send(from, Payload::Accepted { ballot, slot });
        self.learn_commit(from, ballot, commit_through);
    }

    fn on_commit(&mut self, from: NodeId, ballot: Ballot, commit_through: Slot, heartbeat: bool) {
        if ballot < self.promised {
            // A deposed leader: tell it, so it steps down at once.
            self.send(
                from,
                Payload::Nack {
                    ballot,
                    promised: self.promised,
                },
            );
            return;
        }
        self.follow(ballot);
        self.learn_commit(from, ballot, commit_through);
        if heartbeat {
            let commit_through = self.commit_through;
            self.send(
                from,
                Payload::HeartbeatAck {
                    ballot,
                    commit_through,
                },
            );
        }
    }

    /// Called with a ballot at or above the promise, from its leader: promise
    /// it if new, and treat its owner as the live leader.
    fn follow(&mut self, ballot: Ballot) {
        debug_assert!(ballot >= self.promised);
        if ballot > self.promised {
            self.promise(ballot);
        }
        debug_assert!(matches!(self.role, RoleState::Follower));
        self.leader_hint = Some(ballot.node);
        self.reset_election_timeout();
    }

    /// Raises the promise; a candidate or leader with a lower ballot is
    /// thereby preempted and steps down.
    fn promise(&mut self, ballot: Ballot) {
        assert!(ballot > self.promised, "promises only grow");
        self.promised = ballot;
        self.ready.promised = Some(ballot);
        self.highest_round_seen = self.highest_round_seen.max(ballot.round);
        if self.leader_hint != Some(ballot.node) {
            self.leader_hint = None;
        }
        let own_ballot = match &self.role {
            RoleState::Follower => None,
            RoleState::Candidate(scout) => Some(scout.ballot),
            RoleState::Leader(leader) => Some(leader.ballot),
        };
        if own_ballot.is_some_and(|own| own < ballot) {
            self.step_down();
        }
    }

    fn accept(&mut self, slot: Slot, ballot: Ballot, entry: Entry<V>) {
        assert!(
            ballot >= self.promised,
            "acceptor {} must not accept ballot {ballot} below its promise {}",
            self.config.id,
            self.promised
        );
        debug_assert!(
            !self.knows_chosen(slot),
            "a chosen slot is never re-accepted"
        );
        self.store_accepted(slot, ballot, entry);
    }

    fn store_accepted(&mut self, slot: Slot, ballot: Ballot, entry: Entry<V>) {
        self.ready.accepted.push(AcceptedRecord {
            slot,
            ballot,
            entry: entry.clone(),
        });
        self.log.put(
            slot,
            LogSlot {
                ballot,
                entry,
                chosen: false,
            },
        );
    }

    /// The highest slot this replica stores (see
    /// [`Config::accept_horizon_slots`]).
    fn horizon(&self) -> Slot {
        self.commit_through
            .saturating_add(self.config.accept_horizon_slots)
    }

    fn knows_chosen(&self, slot: Slot) -> bool {
        slot <= self.snapshot_slot || self.log.get(slot).is_some_and(|s| s.chosen)
    }

    fn promised_slots(&self, from: Slot) -> Vec<PromisedSlot<V>> {
        self.log
            .iter_from(from)
            .map(|(slot, s)| PromisedSlot {
                slot,
                ballot: s.ballot,
                entry: s.entry.clone(),
                chosen: s.chosen,
            })
            .collect()
    }

    // ----- Learner ---------------------------------------------------------

    /// The leader of `ballot` says every slot through `leader_commit` is
    /// chosen. Where this acceptor accepted at that same ballot, it holds the
    /// leader's value, which is the chosen one. Slots where that fails (holes,
    /// or values from older ballots) must be fetched with a catch-up request;
    /// matched slots beyond them are marked chosen now, so catch-up only has
    /// to fill the holes.
    fn learn_commit(&mut self, leader: NodeId, ballot: Ballot, leader_commit: Slot) {
        // Each slot is examined once per ballot, however often the leader
        // repeats its commit point.
        let scanned_through = match self.commit_scan {
            (scan_ballot, through) if scan_ballot == ballot => through,
            _ => 0,
        };
        let first = self.commit_through.max(scanned_through) + 1;
        let last = leader_commit.min(self.log.last_slot());
        for slot in first..=last {
            if let Some(s) = self.log.get_mut(slot) {
                if s.ballot == ballot {
                    s.chosen = true;
                }
            }
        }
        if last >= first {
            self.commit_scan = (ballot, last);
        }
        self.advance_commit();
        if self.commit_through < leader_commit {
            self.request_catch_up(leader);
        }
    }

    /// Records `entry` as chosen at `slot`.
    fn learn_chosen(&mut self, slot: Slot, entry: Entry<V>) {
        if slot <= self.snapshot_slot {
            return;
        }
        match self.log.get_mut(slot) {
            Some(s) if s.chosen => {
                assert_eq!(s.entry, entry, "the chosen value at slot {slot} changed");
            }
            Some(s) => {
                s.entry = entry;
                s.chosen = true;
            }
            None => self.log.put(
                slot,
                LogSlot {
                    ballot: Ballot::ZERO,
                    entry,
                    chosen: true,
                },
            ),
        }
        if let RoleState::Leader(leader) = &mut self.role {
            leader.commanders.remove(&slot);
        }
    }

    /// Moves the chosen prefix forward and hands newly chosen entries to the
    /// application, in slot order, each once.
    fn advance_commit(&mut self) {
        while self
            .log
            .get(self.commit_through + 1)
            .is_some_and(|s| s.chosen)
        {
            self.commit_through += 1;
        }
        while self.applied_through < self.commit_through {
            self.applied_through += 1;
            let slot = self.applied_through;
            let entry = self
                .log
                .get(slot)
                .expect("slots in the chosen prefix are in the log")
                .entry
                .clone();
            self.ready.committed.push(Committed { slot, entry });
        }
    }

    fn request_catch_up(&mut self, from: NodeId) {
        if from == self.config.id {
            return;
        }
        if let Some(at) = self.catch_up_requested_at_tick {
            if self.now_tick - at < u64::from(self.config.catch_up_retry_ticks) {
                return;
            }
        }
        self.catch_up_requested_at_tick = Some(self.now_tick);
        self.send(
            from,
            Payload::CatchUpRequest {
                first_missing_slot: self.commit_through + 1,
            },
        );
    }

    fn on_catch_up_request(&mut self, from: NodeId, from_index: usize, first_missing_slot: Slot) {
        if let RoleState::Leader(leader) = &mut self.role {
            leader.heard_from.record(from_index);
        }
        if first_missing_slot <= self.snapshot_slot {
            if !self.ready.snapshot_requests.contains(&from) {
                self.ready.snapshot_requests.push(from);
            }
            return;
        }
        let last = self
            .commit_through
            .min(first_missing_slot.saturating_add(self.config.catch_up_max_slots as Slot - 1));
        if first_missing_slot > last {
            return;
        }
        let entries = (first_missing_slot..=last)
            .map(|slot| {
                self.log
                    .get(slot)
                    .expect("slots in the chosen prefix are in the log")
                    .entry
                    .clone()
            })
            .collect();
        self.send(
            from,
            Payload::CatchUp {
                first_slot: first_missing_slot,
                entries,
            },
        );
    }

    fn on_catch_up(&mut self, from: NodeId, first_slot: Slot, mut entries: Vec<Entry<V>>) {
        // Entries past the horizon are dropped as if lost.
        let storable = match self.horizon().checked_sub(first_slot) {
            Some(room) => (room + 1).min(entries.len() as u64),
            None => 0,
        };
        entries.truncate(storable as usize);
        // A leader's commit point vouches, to its followers, for the values
        // they accepted at its ballot. A slot chosen with another value than
        // the leader proposed there, or one it never opened, was chosen at a
        // higher ballot: this leader is deposed and must not announce it.
        if let RoleState::Leader(leader) = &self.role {
            let deposed = (first_slot..).zip(&entries).any(|(slot, entry)| {
                slot > self.commit_through
                    && (slot >= leader.next_slot
                        || self.log.get(slot).is_some_and(|s| {
                            s.ballot == leader.ballot && !s.chosen && s.entry != *entry
                        }))
            });
            if deposed {
                self.step_down();
            }
        }
        let full = entries.len() >= self.config.catch_up_max_slots;
        let before = self.commit_through;
        for (slot, entry) in (first_slot..).zip(entries) {
            if slot > self.commit_through {
                self.learn_chosen(slot, entry);
            }
        }
        self.advance_commit();
        // Only an answer that moved us forward may trigger the next request:
        // a duplicated or stale answer must not, or duplicates multiply.
        if self.commit_through > before {
            self.catch_up_requested_at_tick = None;
            if full {
                // There is likely more; ask now rather than at the next
                // heartbeat.
                self.request_catch_up(from);
            }
        }
    }

    fn on_install_snapshot(&mut self, snapshot_slot: Slot, data: Bytes) {
        if snapshot_slot <= self.applied_through {
            return;
        }
        self.catch_up_requested_at_tick = None;
        // As in `on_catch_up`: the snapshot may hold, for a slot this leader
        // has in flight, another value chosen at a higher ballot, and it
        // cannot tell. Step down rather than vouch for its own value there.
        if let RoleState::Leader(leader) = &self.role {
            if leader
                .commanders
                .first_key_value()
                .is_some_and(|(slot, _)| *slot <= snapshot_slot)
            {
                self.step_down();
            }
        }
        // Everything not yet applied in this Ready is covered by the snapshot.
        self.ready.committed.clear();
        self.ready.snapshot = Some(Snapshot {
            slot: snapshot_slot,
            data,
        });
        self.log.compact_through(snapshot_slot);
        self.snapshot_slot = snapshot_slot;
        self.commit_through = self.commit_through.max(snapshot_slot);
        self.applied_through = snapshot_slot;
        if let RoleState::Leader(leader) = &mut self.role {
            leader.commanders.retain(|slot, _| *slot > snapshot_slot);
            leader.next_slot = leader.next_slot.max(snapshot_slot + 1);
        }
        self.advance_commit();
    }

    // ----- Proposer: elections ---------------------------------------------

    fn on_election_timeout(&mut self) {
        self.start_campaign();
    }

    /// Phase 1 with a ballot above any seen, over every slot from the first
    /// not known chosen ("Paxos Made Simple", §3: one phase 1 covers all
    /// instances).
    fn start_campaign(&mut self) {
        // Rounds in messages are capped at MAX_ROUND, so this cannot overflow.
        let round = self.promised.round.max(self.highest_round_seen) + 1;
        let ballot = Ballot::new(round, self.config.id);
        self.promise(ballot);
        self.leader_hint = None;
        let first_unchosen_slot = self.commit_through + 1;
        self.role = RoleState::Candidate(Scout {
            ballot,
            first_unchosen_slot,
            promised_by: Tally::default(),
            slots: BTreeMap::new(),
            snapshot: (0, self.config.id),
        });
        self.reset_election_timeout();
        self.timeouts
            .prepare_retry
            .reset(self.config.heartbeat_interval_ticks);
        self.broadcast(|| Payload::Prepare {
            ballot,
            first_unchosen_slot,
        });
        // This replica's own acceptor promises without a message.
        let own = self.promised_slots(first_unchosen_slot);
        self.on_promise(
            self.config.id,
            self.my_index,
            ballot,
            self.snapshot_slot,
            own,
        );
    }

    fn on_prepare_retry_timeout(&mut self) {
        let RoleState::Candidate(scout) = &self.role else {
            return;
        };
        let (ballot, first_unchosen_slot, promised_by) =
            (scout.ballot, scout.first_unchosen_slot, scout.promised_by);
        for index in 0..self.members.len() {
            if !promised_by.has(index) {
                let to = self.members.ids()[index];
                self.send(
                    to,
                    Payload::Prepare {
                        ballot,
                        first_unchosen_slot,
                    },
                );
            }
        }
    }

    /// P1b. Merges the promise into the scout; a quorum makes this replica
    /// leader.
    fn on_promise(
        &mut self,
        from: NodeId,
        from_index: usize,
        ballot: Ballot,
        snapshot_slot: Slot,
        accepted: Vec<PromisedSlot<V>>,
    ) {
        let RoleState::Candidate(scout) = &mut self.role else {
            return;
        };
        if scout.ballot != ballot {
            return;
        }
        // A candidate leads only over slots it can hold: a promise reaching
        // past its log end plus the accept horizon is not counted. The member
        // with the longest log can always count every promise, so someone
        // can always win; a member far behind must catch up first.
        let reach = self
            .commit_through
            .max(self.log.last_slot())
            .saturating_add(self.config.accept_horizon_slots);
        let last_reported = accepted.last().map_or(0, |a| a.slot);
        if snapshot_slot > reach || last_reported > reach {
            // Yield: our Prepares keep resetting the others' election timers,
            // so wait longer than they will and let one of them campaign.
            self.step_down();
            let after = 2 * self.config.election_timeout_ticks
                + election_timeout_ticks(&self.config, &mut self.rng);
            self.timeouts.election.reset(after);
            return;
        }
        if !scout.promised_by.record(from_index) {
            return;
        }
        #[cfg(feature = "canaries")]
        let accepted = if self.config.canary == Some(crate::Canary::IgnorePromisedValues) {
            // Broken on purpose: see the reported slots, forget their values.
            accepted
                .into_iter()
                .map(|reported| PromisedSlot {
                    slot: reported.slot,
                    ballot: Ballot::ZERO,
                    entry: Entry::Noop,
                    chosen: false,
                })
                .collect()
        } else {
            accepted
        };
        if snapshot_slot > scout.snapshot.0 {
            scout.snapshot = (snapshot_slot, from);
        }
        for reported in accepted {
            use std::collections::btree_map::Entry as MapEntry;
            match scout.slots.entry(reported.slot) {
                MapEntry::Vacant(vacant) => {
                    vacant.insert(reported);
                }
                MapEntry::Occupied(mut occupied) => {
                    let held = occupied.get();
                    // A chosen value beats everything; otherwise the highest
                    // ballot wins ("Paxos Made Simple", §2.2 (b)).
                    let better = !held.chosen && (reported.chosen || reported.ballot > held.ballot);
                    if better {
                        occupied.insert(reported);
                    }
                }
            }
        }
        if scout.promised_by.reached(&self.members) {
            let RoleState::Candidate(scout) = mem::replace(&mut self.role, RoleState::Follower)
            else {
                unreachable!("matched above")
            };
            self.become_leader(scout);
        }
    }

    /// Phase 1 is won. Re-propose, at our ballot, the highest-ballot value
    /// reported for every open slot, and fill the holes with no-ops (PMMC §3;
    /// "Paxos Made Simple", §3).
    fn become_leader(&mut self, mut scout: Scout<V>) {
        let ballot = scout.ballot;
        debug_assert_eq!(ballot, self.promised);
        self.role = RoleState::Leader(Leader {
            ballot,
            next_slot: 0,
            commanders: BTreeMap::new(),
            pending: VecDeque::new(),
            announced_commit_through: 0,
            heard_from: Tally::default(),
        });
        self.leader_hint = Some(self.config.id);
        self.timeouts
            .heartbeat
            .reset(self.config.heartbeat_interval_ticks);
        self.timeouts
            .quorum_check
            .reset(self.config.election_timeout_ticks);

        // Slots inside some promiser's snapshot are chosen: never propose
        // there, and fetch them if we lack them.
        let (snapshot_slot, snapshot_holder) = scout.snapshot;
        if snapshot_slot > self.commit_through {
            self.catch_up_requested_at_tick = None;
            self.request_catch_up(snapshot_holder);
        }
        let first_open = self.commit_through.max(snapshot_slot) + 1;
        let last_reported = scout.slots.last_key_value().map_or(0, |(slot, _)| *slot);
        let last = last_reported.max(first_open - 1);
        for slot in first_open..=last {
            if self.knows_chosen(slot) {
                continue;
            }
            match scout.slots.remove(&slot) {
                Some(reported) if reported.chosen => self.learn_chosen(slot, reported.entry),
                Some(reported) => self.propose_slot(slot, reported.entry),
                None => self.propose_slot(slot, Entry::Noop),
            }
        }
        self.advance_commit();
        let next_slot = (last + 1).max(self.log.last_slot() + 1);
        if let RoleState::Leader(leader) = &mut self.role {
            leader.next_slot = next_slot;
        }
        // Announce the new leadership at once, so followers stop campaigning.
        let commit_through = self.commit_through;
        self.broadcast(|| Payload::Heartbeat {
            ballot,
            commit_through,
        });
    }

    fn on_nack(&mut self, ballot: Ballot, promised: Ballot) {
        self.highest_round_seen = self.highest_round_seen.max(promised.round);
        let own_ballot = match &self.role {
            RoleState::Follower => return,
            RoleState::Candidate(scout) => scout.ballot,
            RoleState::Leader(leader) => leader.ballot,
        };
        if ballot == own_ballot && promised > own_ballot {
            // Preempted (PMMC §3): a higher ballot is active.
            self.step_down();
            self.leader_hint = None;
        }
    }

    /// Back to follower. Proposals not yet in a slot are handed back; those in
    /// flight may still be chosen under the next leader.
    fn step_down(&mut self) {
        if let RoleState::Leader(leader) = mem::replace(&mut self.role, RoleState::Follower) {
            self.ready.dropped_proposals.extend(leader.pending);
            if self.leader_hint == Some(self.config.id) {
                self.leader_hint = None;
            }
        }
        self.reset_election_timeout();
    }

    fn reset_election_timeout(&mut self) {
        let after = election_timeout_ticks(&self.config, &mut self.rng);
        self.timeouts.election.reset(after);
    }

    // ----- Proposer: phase 2 -----------------------------------------------

    /// Starts phase 2 for `entry` at `slot` (PMMC's commander): the leader's
    /// own acceptor votes at once, the others are asked.
    fn propose_slot(&mut self, slot: Slot, entry: Entry<V>) {
        let RoleState::Leader(leader) = &self.role else {
            unreachable!("only a leader proposes");
        };
        let ballot = leader.ballot;
        self.accept(slot, ballot, entry.clone());
        let mut accepted_by = Tally::default();
        accepted_by.record(self.my_index);
        let commit_through = self.commit_through;
        self.broadcast(|| Payload::Accept {
            ballot,
            slot,
            entry: entry.clone(),
            commit_through,
        });
        if accepted_by.reached(&self.members) {
            self.mark_chosen_by_quorum(slot, ballot);
        } else if let RoleState::Leader(leader) = &mut self.role {
            leader.commanders.insert(
                slot,
                Commander {
                    accepted_by,
                    proposed_at_tick: self.now_tick,
                },
            );
        }
    }

    /// P2b. A quorum of acceptances at our ballot chooses the slot.
    fn on_accepted(&mut self, from_index: usize, ballot: Ballot, slot: Slot) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if leader.ballot != ballot {
            return;
        }
        leader.heard_from.record(from_index);
        let Some(commander) = leader.commanders.get_mut(&slot) else {
            return;
        };
        commander.accepted_by.record(from_index);
        if commander.accepted_by.reached(&self.members) {
            leader.commanders.remove(&slot);
            self.mark_chosen_by_quorum(slot, ballot);
        }
    }

    fn mark_chosen_by_quorum(&mut self, slot: Slot, ballot: Ballot) {
        if let Some(s) = self.log.get_mut(slot) {
            assert_eq!(s.ballot, ballot, "a leader's slot holds its own proposal");
            s.chosen = true;
            self.advance_commit();
        }
    }

    /// Moves pending proposals into slots while the pipeline has room.
    fn fill_pipeline(&mut self) {
        loop {
            let RoleState::Leader(leader) = &mut self.role else {
                return;
            };
            if leader.pending.is_empty()
                || leader.commanders.len() >= self.config.pipeline_window_slots
            {
                return;
            }
            let count = leader.pending.len().min(self.config.max_batch_values);
            let batch: Arc<[V]> = leader.pending.drain(..count).collect();
            let slot = leader.next_slot;
            leader.next_slot += 1;
            self.propose_slot(slot, Entry::Batch(batch));
        }
    }

    /// Tells followers how far the chosen prefix reaches: on the `Accept`s
    /// already going to them, or in a `Commit` of its own.
    fn announce_commit(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if self.commit_through <= leader.announced_commit_through {
            return;
        }
        leader.announced_commit_through = self.commit_through;
        let ballot = leader.ballot;
        let mut told = Tally::default();
        for message in &mut self.ready.messages {
            if let Payload::Accept {
                ballot: b,
                commit_through,
                ..
            }
            | Payload::Heartbeat {
                ballot: b,
                commit_through,
            } = &mut message.payload
            {
                if *b == ballot {
                    *commit_through = self.commit_through;
                    if let Some(index) = self.members.index_of(message.to) {
                        told.record(index);
                    }
                }
            }
        }
        let commit_through = self.commit_through;
        for index in 0..self.members.len() {
            if index != self.my_index && !told.has(index) {
                let to = self.members.ids()[index];
                self.send(
                    to,
                    Payload::Commit {
                        ballot,
                        commit_through,
                    },
                );
            }
        }
    }

    fn on_heartbeat_timeout(&mut self) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let ballot = leader.ballot;
        let commit_through = self.commit_through;
        self.broadcast(|| Payload::Heartbeat {
            ballot,
            commit_through,
        });
        // Re-send Accepts that have gone unanswered for a whole interval: the
        // transport may have lost them.
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let interval = u64::from(self.config.heartbeat_interval_ticks);
        let mut resend = Vec::new();
        for (slot, commander) in &leader.commanders {
            if self.now_tick - commander.proposed_at_tick < interval {
                continue;
            }
            for index in 0..self.members.len() {
                if !commander.accepted_by.has(index) {
                    resend.push((*slot, self.members.ids()[index]));
                }
            }
        }
        for (slot, to) in resend {
            let entry = self
                .log
                .get(slot)
                .expect("a leader's in-flight slot is in its log")
                .entry
                .clone();
            self.send(
                to,
                Payload::Accept {
                    ballot,
                    slot,
                    entry,
                    commit_through,
                },
            );
        }
    }

    fn on_heartbeat_ack(
        &mut self,
        from: NodeId,
        from_index: usize,
        ballot: Ballot,
        commit_through: Slot,
    ) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if leader.ballot != ballot {
            return;
        }
        leader.heard_from.record(from_index);
        // A leader elected behind a follower (whose snapshot or log holds
        // slots it lacks) fetches them, or its commit point never moves.
        if commit_through > self.commit_through {
            self.request_catch_up(from);
        }
    }

    /// A leader cut off from a quorum cannot choose anything; stepping down
    /// lets its clients look elsewhere instead of waiting.
    fn on_quorum_check_timeout(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        leader.heard_from.record(self.my_index);
        if leader.heard_from.reached(&self.members) {
            leader.heard_from = Tally::default();
        } else {
            self.step_down();
        }
    }

    // ----- Plumbing --------------------------------------------------------

    fn send(&mut self, to: NodeId, payload: Payload<V>) {
        debug_assert_ne!(to, self.config.id, "a replica never messages itself");
        self.ready.messages.push(Message {
            from: self.config.id,
            to,
            payload,
        });
    }

    fn broadcast(&mut self, mut payload: impl FnMut() -> Payload<V>) {
        for index in 0..self.members.len() {
            if index != self.my_index {
                let to = self.members.ids()[index];
                self.send(to, payload());
            }
        }
    }

    /// The invariants of "Synod design: consensus", checked after every input
    /// in debug builds. A failure is a bug in this crate.
    fn check_invariants(&mut self) {
        #[cfg(debug_assertions)]
        {
            assert!(
                self.promised >= self.last_checked_promised,
                "promised ballot went backwards: {} after {}",
                self.promised,
                self.last_checked_promised
            );
            self.last_checked_promised = self.promised;
            assert!(
                self.applied_through <= self.commit_through,
                "applied {} beyond chosen {}",
                self.applied_through,
                self.commit_through
            );
            assert!(self.snapshot_slot <= self.applied_through);
            assert!(
                !self
                    .log
                    .get(self.commit_through + 1)
                    .is_some_and(|s| s.chosen),
                "the chosen prefix was not advanced"
            );
            match &self.role {
                RoleState::Follower => {}
                RoleState::Candidate(scout) => assert_eq!(scout.ballot, self.promised),
                RoleState::Leader(leader) => {
                    assert_eq!(leader.ballot, self.promised, "a leader holds the promise");
                    assert!(leader.next_slot > self.commit_through);
                    if let Some((slot, _)) = leader.commanders.first_key_value() {
                        assert!(*slot > self.commit_through, "in-flight slot already chosen");
                    }
                }
            }
        }
    }
}

/// The highest slot a message may name: far beyond any real log (146,000
/// years at a million slots a second), and low enough that slot arithmetic
/// can never overflow.
pub const MAX_SLOT: Slot = 1 << 62;

/// Every slot a message names is in `1..=MAX_SLOT` (commit points and
/// snapshot slots may also be 0).
fn slots_in_range<V>(payload: &Payload<V>) -> bool {
    let slot = |s: Slot| (1..=MAX_SLOT).contains(&s);
    let point = |s: Slot| s <= MAX_SLOT;
    match payload {
        Payload::Prepare {
            first_unchosen_slot,
            ..
        } => slot(*first_unchosen_slot),
        Payload::Promise {
            snapshot_slot,
            accepted,
            ..
        } => point(*snapshot_slot) && accepted.iter().all(|a| slot(a.slot)),
        Payload::Accept {
            slot: s,
            commit_through,
            ..
        } => slot(*s) && point(*commit_through),
        Payload::Accepted { slot: s, .. } => slot(*s),
        Payload::Nack { .. } => true,
        Payload::Commit { commit_through, .. }
        | Payload::Heartbeat { commit_through, .. }
        | Payload::HeartbeatAck { commit_through, .. } => point(*commit_through),
        Payload::CatchUpRequest { first_missing_slot } => slot(*first_missing_slot),
        Payload::CatchUp {
            first_slot,
            entries,
        } => slot(*first_slot) && entries.len() as u64 <= MAX_SLOT - first_slot,
        Payload::InstallSnapshot { snapshot_slot, .. } => slot(*snapshot_slot),
    }
}

/// The highest ballot round a message may carry; a campaign can always pick a
/// higher one.
pub const MAX_ROUND: u64 = 1 << 62;

/// Every ballot a message carries has a round of at most `MAX_ROUND`.
fn rounds_in_range<V>(payload: &Payload<V>) -> bool {
    let ok = |b: &Ballot| b.round <= MAX_ROUND;
    match payload {
        Payload::Prepare { ballot, .. }
        | Payload::Accept { ballot, .. }
        | Payload::Accepted { ballot, .. }
        | Payload::Commit { ballot, .. }
        | Payload::Heartbeat { ballot, .. }
        | Payload::HeartbeatAck { ballot, .. } => ok(ballot),
        Payload::Promise {
            ballot, accepted, ..
        } => ok(ballot) && accepted.iter().all(|a| ok(&a.ballot)),
        Payload::Nack { ballot, promised } => ok(ballot) && ok(promised),
        Payload::CatchUpRequest { .. }
        | Payload::CatchUp { .. }
        | Payload::InstallSnapshot { .. } => true,
    }
}

/// The election timeout, randomized within `[t, 2t)` from the seeded PRNG.
fn election_timeout_ticks(config: &Config, rng: &mut SmallRng) -> u32 {
    let base = config.election_timeout_ticks;
    base + rng.random_range(0..base)
}

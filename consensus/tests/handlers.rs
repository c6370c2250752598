//! One test per message handler (and per other input), asserting the exact
//! [`Ready`] that comes out, in the style of openraft's engine tests: drive a
//! replica to a known state, feed it one input, and compare every output
//! field, so a test fails both when something expected is missing and when
//! something unexpected appears.
//!
//! Unless a test says otherwise the group is `[1, 2, 3]`, the replica under
//! test is node 1 (or node 2 when it plays a follower), heartbeats go out
//! every tick and elections start after 5 to 9 ticks of silence.

use std::sync::Arc;

use bytes::Bytes;
use consensus::{
    AcceptedRecord, Ballot, Committed, Config, DurableState, Entry, Leadership, Message, NodeId,
    Payload, PromisedSlot, ProposeError, Ready, Replica, Role, Slot, SnapshotError, StepError,
};

type V = u32;

// ----- Setup ---------------------------------------------------------------

fn config(id: NodeId) -> Config {
    Config {
        heartbeat_interval_ticks: 1,
        election_timeout_ticks: 5,
        catch_up_retry_ticks: 3,
        seed: 7,
        ..Config::new(id, [1, 2, 3])
    }
}

fn config5(id: NodeId) -> Config {
    Config {
        members: vec![1, 2, 3, 4, 5],
        ..config(id)
    }
}

fn replica(id: NodeId) -> Replica<V> {
    Replica::new(config(id)).unwrap()
}

/// Ticks until the election timeout fires and phase 1 starts; returns that
/// tick's Ready. Every earlier tick must do nothing at all.
fn campaign(r: &mut Replica<V>) -> Ready<V> {
    for _ in 0..20 {
        r.tick();
        let ready = r.ready();
        if r.status().role != Role::Follower {
            return ready;
        }
        assert_eq!(ready, Ready::default(), "a quiet follower does nothing");
    }
    panic!("no election within 20 ticks");
}

/// Node `id` of `[1, 2, 3]` after winning phase 1 at ballot `1.id` with a
/// promise from `promiser`; its Ready is drained.
fn leader(id: NodeId, promiser: NodeId) -> Replica<V> {
    let mut r = replica(id);
    campaign(&mut r);
    r.step(msg(promiser, id, promise(ballot(1, id), 0, vec![])))
        .unwrap();
    r.ready();
    assert!(r.is_leader());
    r
}

/// A follower that has received a Heartbeat from leader `1.1`; its Ready is
/// drained.
fn follower(id: NodeId) -> Replica<V> {
    let mut r = replica(id);
    r.step(msg(1, id, heartbeat(ballot(1, 1), 0))).unwrap();
    r.ready();
    r
}

// ----- Shorthands for messages and records ----------------------------------

fn ballot(round: u64, node: NodeId) -> Ballot {
    Ballot::new(round, node)
}

fn batch(values: &[V]) -> Entry<V> {
    Entry::Batch(Arc::from(values))
}

fn msg(from: NodeId, to: NodeId, payload: Payload<V>) -> Message<V> {
    Message { from, to, payload }
}

/// `payload()` from `from` to each other member of `[1, 2, 3]`, in id order
/// (the order a replica broadcasts in).
fn to_others(from: NodeId, payload: Payload<V>) -> Vec<Message<V>> {
    [1, 2, 3]
        .into_iter()
        .filter(|&to| to != from)
        .map(|to| msg(from, to, payload.clone()))
        .collect()
}

fn prepare(ballot: Ballot, first_unchosen_slot: Slot) -> Payload<V> {
    Payload::Prepare {
        ballot,
        first_unchosen_slot,
    }
}

fn promise(ballot: Ballot, snapshot_slot: Slot, accepted: Vec<PromisedSlot<V>>) -> Payload<V> {
    Payload::Promise {
        ballot,
        snapshot_slot,
        accepted,
    }
}

fn reported(slot: Slot, ballot: Ballot, entry: Entry<V>, chosen: bool) -> PromisedSlot<V> {
    PromisedSlot {
        slot,
        ballot,
        entry,
        chosen,
    }
}

fn accept(ballot: Ballot, slot: Slot, entry: Entry<V>, commit_through: Slot) -> Payload<V> {
    Payload::Accept {
        ballot,
        slot,
        entry,
        commit_through,
    }
}

fn accepted(ballot: Ballot, slot: Slot) -> Payload<V> {
    Payload::Accepted { ballot, slot }
}

fn nack(ballot: Ballot, promised: Ballot) -> Payload<V> {
    Payload::Nack { ballot, promised }
}

fn commit(ballot: Ballot, commit_through: Slot) -> Payload<V> {
    Payload::Commit {
        ballot,
        commit_through,
    }
}

fn heartbeat(ballot: Ballot, commit_through: Slot) -> Payload<V> {
    Payload::Heartbeat {
        ballot,
        commit_through,
    }
}

fn heartbeat_ack(ballot: Ballot, commit_through: Slot) -> Payload<V> {
    Payload::HeartbeatAck {
        ballot,
        commit_through,
    }
}

fn catch_up_request(first_missing_slot: Slot) -> Payload<V> {
    Payload::CatchUpRequest { first_missing_slot }
}

fn catch_up(first_slot: Slot, entries: Vec<Entry<V>>) -> Payload<V> {
    Payload::CatchUp {
        first_slot,
        entries,
    }
}

fn install_snapshot(snapshot_slot: Slot, data: &'static [u8]) -> Payload<V> {
    Payload::InstallSnapshot {
        snapshot_slot,
        data: Bytes::from_static(data),
    }
}

fn record(slot: Slot, ballot: Ballot, entry: Entry<V>) -> AcceptedRecord<V> {
    AcceptedRecord {
        slot,
        ballot,
        entry,
    }
}

fn committed(slot: Slot, entry: Entry<V>) -> Committed<V> {
    Committed { slot, entry }
}

fn leadership(leader: Option<NodeId>, ballot: Ballot) -> Option<Leadership> {
    Some(Leadership { leader, ballot })
}

// ----- Elections: timeout, Prepare, Promise ----------------------------------

/// A follower that hears nobody campaigns with a ballot of a fresh round; its
/// own acceptor promises without a message. "Paxos Made Simple", §2.2 (1a).
#[test]
fn election_timeout_starts_phase_1() {
    let mut r = replica(1);
    let ready = campaign(&mut r);
    assert_eq!(
        ready,
        Ready {
            promised: Some(ballot(1, 1)),
            messages: to_others(1, prepare(ballot(1, 1), 1)),
            ..Ready::default()
        }
    );
    assert_eq!(r.status().role, Role::Candidate);

    // Subcase: while no quorum answers, the candidate re-sends Prepare every
    // heartbeat interval, to those that have not promised only.
    r.tick();
    assert_eq!(
        r.ready(),
        Ready {
            messages: to_others(1, prepare(ballot(1, 1), 1)),
            ..Ready::default()
        },
        "prepare retry"
    );
}

/// P1a at the acceptor. "Paxos Made Simple", §2.2 (1b): promise never to
/// accept below the ballot and report what was accepted; refuse lower ballots.
#[test]
fn prepare_grants_refuses_and_repeats() {
    let mut r = follower(2);
    // Node 2 accepts two values from leader 1.1; slot 1 is then known chosen
    // through the commit point piggybacked on the second Accept.
    r.step(msg(1, 2, accept(ballot(1, 1), 1, batch(&[7]), 0)))
        .unwrap();
    r.step(msg(1, 2, accept(ballot(1, 1), 2, batch(&[8]), 1)))
        .unwrap();
    r.ready();

    // Subcase: a higher ballot is granted; the promise reports every slot
    // from the one asked for, with its ballot and whether it is chosen. The
    // acceptor no longer knows who leads.
    r.step(msg(3, 2, prepare(ballot(2, 3), 1))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            promised: Some(ballot(2, 3)),
            messages: vec![msg(
                2,
                3,
                promise(
                    ballot(2, 3),
                    0,
                    vec![
                        reported(1, ballot(1, 1), batch(&[7]), true),
                        reported(2, ballot(1, 1), batch(&[8]), false),
                    ]
                )
            )],
            leadership: leadership(None, ballot(2, 3)),
            ..Ready::default()
        },
        "grant"
    );

    // Subcase: a ballot below the promise gets a Nack naming the promise.
    r.step(msg(1, 2, prepare(ballot(1, 1), 1))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![msg(2, 1, nack(ballot(1, 1), ballot(2, 3)))],
            ..Ready::default()
        },
        "refuse below promise"
    );

    // Subcase: a duplicate Prepare at the promised ballot is answered again
    // (the first Promise may have been lost); nothing new to persist. Only
    // slots from the requested one on are reported.
    r.step(msg(3, 2, prepare(ballot(2, 3), 2))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![msg(
                2,
                3,
                promise(
                    ballot(2, 3),
                    0,
                    vec![reported(2, ballot(1, 1), batch(&[8]), false)]
                )
            )],
            ..Ready::default()
        },
        "duplicate prepare"
    );
}

/// P1b at the candidate: a quorum of promises (its own and one peer's) makes
/// it leader, and it announces itself with a heartbeat at once.
#[test]
fn promise_quorum_makes_leader() {
    let mut r = replica(1);
    campaign(&mut r);
    r.step(msg(2, 1, promise(ballot(1, 1), 0, vec![]))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            messages: to_others(1, heartbeat(ballot(1, 1), 0)),
            leadership: leadership(Some(1), ballot(1, 1)),
            ..Ready::default()
        }
    );
    assert!(r.is_leader());

    // Subcase: the late promise of the third member changes nothing.
    r.step(msg(3, 1, promise(ballot(1, 1), 0, vec![]))).unwrap();
    assert_eq!(r.ready(), Ready::default(), "late promise");
}

/// The new leader re-proposes, at its own ballot, the highest-ballot value
/// reported for each open slot ("Paxos Made Simple", §2.2 (2a)), adopts values
/// reported as chosen, and fills holes with no-ops ("Paxos Made Simple", §3).
/// The reported values are made up to exercise each rule.
#[test]
fn promise_quorum_reproposes_reported_values() {
    let mut r = replica(1);
    // Node 1's own acceptor holds [20] at slot 2, from leader 1.2.
    r.step(msg(2, 1, accept(ballot(1, 2), 2, batch(&[20]), 0)))
        .unwrap();
    r.ready();
    let ready = campaign(&mut r);
    assert_eq!(
        ready.messages,
        to_others(1, prepare(ballot(2, 1), 1)),
        "a campaign's round is above every round seen"
    );

    r.step(msg(
        3,
        1,
        promise(
            ballot(2, 1),
            0,
            vec![
                reported(1, ballot(1, 2), batch(&[10]), true),
                reported(2, ballot(1, 3), batch(&[21]), false),
                reported(4, ballot(1, 3), batch(&[40]), false),
            ],
        ),
    ))
    .unwrap();
    let b = ballot(2, 1);
    let mut messages = Vec::new();
    // Slot 1 is adopted as chosen: no Accept for it. Slot 2: [21]@1.3 beats
    // the own [20]@1.2. Slot 3: a hole, filled with a no-op. Slot 4: [40].
    // All carry the commit point the leader reached (slot 1).
    messages.extend(to_others(1, accept(b, 2, batch(&[21]), 1)));
    messages.extend(to_others(1, accept(b, 3, Entry::Noop, 1)));
    messages.extend(to_others(1, accept(b, 4, batch(&[40]), 1)));
    messages.extend(to_others(1, heartbeat(b, 1)));
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![
                record(2, b, batch(&[21])),
                record(3, b, Entry::Noop),
                record(4, b, batch(&[40])),
            ],
            messages,
            committed: vec![committed(1, batch(&[10]))],
            leadership: leadership(Some(1), b),
            ..Ready::default()
        }
    );

    // New proposals go after the last re-proposed slot.
    r.propose(5).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(5, b, batch(&[5]))],
            messages: to_others(1, accept(b, 5, batch(&[5]), 1)),
            ..Ready::default()
        },
        "next proposal"
    );
}

/// A promise for an older campaign of the same candidate does not count.
#[test]
fn promise_of_stale_ballot_is_ignored() {
    let mut r = replica(1);
    campaign(&mut r);
    // No answer: the election timeout fires again and a new round starts.
    while r.status().promised == ballot(1, 1) {
        r.tick();
        r.ready();
    }
    assert_eq!(r.status().promised, ballot(2, 1));

    r.step(msg(2, 1, promise(ballot(1, 1), 0, vec![]))).unwrap();
    assert_eq!(r.ready(), Ready::default(), "stale promise");
    assert_eq!(r.status().role, Role::Candidate);

    r.step(msg(2, 1, promise(ballot(2, 1), 0, vec![]))).unwrap();
    assert!(r.is_leader(), "current promise");
}

/// In a group of five a quorum is three: a promise delivered twice counts
/// once. Also, a lower-ballot report never replaces a higher one.
#[test]
fn duplicated_promise_counts_once() {
    let mut r = Replica::new(config5(1)).unwrap();
    campaign(&mut r);
    let b = ballot(1, 1);
    let from_3 = promise(b, 0, vec![reported(1, ballot(0, 3), batch(&[13]), false)]);
    let from_2 = promise(b, 0, vec![reported(1, ballot(0, 2), batch(&[12]), false)]);

    r.step(msg(3, 1, from_3.clone())).unwrap();
    r.step(msg(3, 1, from_3)).unwrap();
    assert_eq!(r.ready(), Ready::default(), "duplicate promise");
    assert_eq!(r.status().role, Role::Candidate);

    r.step(msg(2, 1, from_2)).unwrap();
    assert!(r.is_leader(), "third distinct promise");
    let ready = r.ready();
    assert_eq!(
        ready.accepted,
        vec![record(1, b, batch(&[13]))],
        "[13]@0.3 beats the later-reported [12]@0.2"
    );
}

// ----- Phase 2: Accept, Accepted ----------------------------------------------

/// P2a at the acceptor. "Paxos Made Simple", §2.2 (2b): accept unless a
/// higher ballot was promised; the leader's ballot is promised on the way.
#[test]
fn accept_is_accepted_and_acknowledged() {
    let mut r = replica(2);
    r.step(msg(1, 2, accept(ballot(1, 1), 1, batch(&[7]), 0)))
        .unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            promised: Some(ballot(1, 1)),
            accepted: vec![record(1, ballot(1, 1), batch(&[7]))],
            messages: vec![msg(2, 1, accepted(ballot(1, 1), 1))],
            leadership: leadership(Some(1), ballot(1, 1)),
            ..Ready::default()
        }
    );

    // Subcase: the same Accept again is accepted and acknowledged again.
    r.step(msg(1, 2, accept(ballot(1, 1), 1, batch(&[7]), 0)))
        .unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(1, ballot(1, 1), batch(&[7]))],
            messages: vec![msg(2, 1, accepted(ballot(1, 1), 1))],
            ..Ready::default()
        },
        "duplicate accept"
    );
}

#[test]
fn accept_below_promise_is_nacked() {
    let mut r = replica(2);
    r.step(msg(3, 2, prepare(ballot(2, 3), 1))).unwrap();
    r.ready();
    r.step(msg(1, 2, accept(ballot(1, 1), 1, batch(&[7]), 0)))
        .unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![msg(2, 1, nack(ballot(1, 1), ballot(2, 3)))],
            ..Ready::default()
        }
    );
}

/// An Accept with a higher ballot preempts a candidate or a leader ("Paxos
/// Made Moderately Complex", §3): it steps down and follows the new leader.
#[test]
fn accept_with_higher_ballot_deposes() {
    // Subcase: a candidate.
    let mut r = replica(1);
    campaign(&mut r);
    r.step(msg(2, 1, accept(ballot(2, 2), 1, batch(&[7]), 0)))
        .unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            promised: Some(ballot(2, 2)),
            accepted: vec![record(1, ballot(2, 2), batch(&[7]))],
            messages: vec![msg(1, 2, accepted(ballot(2, 2), 1))],
            leadership: leadership(Some(2), ballot(2, 2)),
            ..Ready::default()
        },
        "candidate"
    );
    assert_eq!(r.status().role, Role::Follower);

    // Subcase: a leader, with a proposal not yet in a slot; it comes back in
    // dropped_proposals.
    let mut r = leader(1, 2);
    r.propose(9).unwrap();
    r.step(msg(3, 1, accept(ballot(2, 3), 1, batch(&[7]), 0)))
        .unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            promised: Some(ballot(2, 3)),
            accepted: vec![record(1, ballot(2, 3), batch(&[7]))],
            messages: vec![msg(1, 3, accepted(ballot(2, 3), 1))],
            leadership: leadership(Some(3), ballot(2, 3)),
            dropped_proposals: vec![9],
            ..Ready::default()
        },
        "leader"
    );
    assert_eq!(r.status().role, Role::Follower);
}

/// The commit point piggybacked on an Accept (or sent in a Commit) marks a
/// slot chosen where this acceptor accepted at the leader's ballot: that is
/// the leader's value, the chosen one ("Paxos Made Simple", §2.3).
#[test]
fn accept_piggybacked_commit_marks_slots_chosen_by_ballot_match() {
    let mut r = follower(2);
    let b = ballot(1, 1);
    r.step(msg(1, 2, accept(b, 1, batch(&[7]), 0))).unwrap();
    r.step(msg(1, 2, accept(b, 2, batch(&[8]), 0))).unwrap();
    r.ready();

    r.step(msg(1, 2, accept(b, 3, batch(&[9]), 2))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(3, b, batch(&[9]))],
            messages: vec![msg(2, 1, accepted(b, 3))],
            committed: vec![committed(1, batch(&[7])), committed(2, batch(&[8]))],
            ..Ready::default()
        }
    );

    // Subcase: a Commit message does the same for slot 3.
    r.step(msg(1, 2, commit(b, 3))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            committed: vec![committed(3, batch(&[9]))],
            ..Ready::default()
        },
        "commit"
    );
    assert_eq!(r.status().commit_through, 3);
}

/// A slot accepted at another ballot is not the leader's value, and a slot
/// never received is unknown: both must be fetched.
#[test]
fn commit_point_past_unknown_slots_requests_catch_up() {
    // Subcase: a gap. Slots 1 and 2 never arrived.
    let mut r = follower(2);
    r.step(msg(1, 2, accept(ballot(1, 1), 3, batch(&[9]), 2)))
        .unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(3, ballot(1, 1), batch(&[9]))],
            messages: vec![
                msg(2, 1, accepted(ballot(1, 1), 3)),
                msg(2, 1, catch_up_request(1)),
            ],
            ..Ready::default()
        },
        "gap"
    );

    // Subcase: the follower asks once per catch_up_retry_ticks (3), however
    // often it hears of the gap.
    r.step(msg(1, 2, commit(ballot(1, 1), 2))).unwrap();
    assert_eq!(r.ready(), Ready::default(), "no second request yet");
    for _ in 0..3 {
        r.tick();
    }
    r.step(msg(1, 2, commit(ballot(1, 1), 2))).unwrap();
    assert_eq!(
        r.ready().messages,
        vec![msg(2, 1, catch_up_request(1))],
        "request again after catch_up_retry_ticks"
    );

    // Subcase: past the hole, a slot accepted at the leader's ballot is
    // marked chosen; it is applied once the hole is filled.
    let mut r = follower(2);
    r.step(msg(1, 2, accept(ballot(1, 1), 2, batch(&[8]), 0)))
        .unwrap();
    r.ready();
    r.step(msg(1, 2, commit(ballot(1, 1), 2))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![msg(2, 1, catch_up_request(1))],
            ..Ready::default()
        },
        "hole below an accepted slot"
    );
    r.step(msg(1, 2, catch_up(1, vec![batch(&[7])]))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            committed: vec![committed(1, batch(&[7])), committed(2, batch(&[8]))],
            ..Ready::default()
        },
        "hole filled"
    );

    // Subcase: slot 1 holds a value of an older ballot, which may not be the
    // chosen one.
    let mut r = replica(2);
    r.step(msg(3, 2, accept(ballot(1, 3), 1, batch(&[5]), 0)))
        .unwrap();
    r.ready();
    r.step(msg(1, 2, commit(ballot(2, 1), 1))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            promised: Some(ballot(2, 1)),
            messages: vec![msg(2, 1, catch_up_request(1))],
            leadership: leadership(Some(1), ballot(2, 1)),
            ..Ready::default()
        },
        "ballot mismatch"
    );
    assert_eq!(r.status().commit_through, 0);
}

/// P2b at the leader: its own vote and one more choose the slot; the news
/// goes out in Commit messages with the next Ready.
#[test]
fn accepted_quorum_chooses_slot() {
    let mut r = leader(1, 2);
    let b = ballot(1, 1);
    r.propose(7).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(1, b, batch(&[7]))],
            messages: to_others(1, accept(b, 1, batch(&[7]), 0)),
            ..Ready::default()
        },
        "propose"
    );

    r.step(msg(2, 1, accepted(b, 1))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            messages: to_others(1, commit(b, 1)),
            committed: vec![committed(1, batch(&[7]))],
            ..Ready::default()
        },
        "chosen"
    );

    // Subcase: later and duplicated votes for a chosen slot change nothing.
    r.step(msg(2, 1, accepted(b, 1))).unwrap();
    r.step(msg(3, 1, accepted(b, 1))).unwrap();
    assert_eq!(r.ready(), Ready::default(), "late votes");

    // Subcase: when an Accept leaves in the same Ready, the commit point
    // rides on it instead of a separate Commit.
    r.propose(8).unwrap();
    r.ready();
    r.propose(9).unwrap();
    r.step(msg(3, 1, accepted(b, 2))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(3, b, batch(&[9]))],
            messages: to_others(1, accept(b, 3, batch(&[9]), 2)),
            committed: vec![committed(2, batch(&[8]))],
            ..Ready::default()
        },
        "commit piggybacked"
    );
}

/// In a group of five a slot needs three votes; a vote delivered twice counts
/// once.
#[test]
fn duplicated_accepted_counts_once() {
    let mut r = Replica::new(config5(1)).unwrap();
    campaign(&mut r);
    let b = ballot(1, 1);
    r.step(msg(2, 1, promise(b, 0, vec![]))).unwrap();
    r.step(msg(3, 1, promise(b, 0, vec![]))).unwrap();
    assert!(r.is_leader());
    r.propose(7).unwrap();
    r.ready();

    r.step(msg(4, 1, accepted(b, 1))).unwrap();
    r.step(msg(4, 1, accepted(b, 1))).unwrap();
    assert_eq!(r.ready(), Ready::default(), "two votes of five");
    r.step(msg(5, 1, accepted(b, 1))).unwrap();
    assert_eq!(
        r.ready().committed,
        vec![committed(1, batch(&[7]))],
        "three distinct votes"
    );
}

/// A vote for an older ballot of this leader is not a vote for its value.
#[test]
fn accepted_of_stale_ballot_is_ignored() {
    let mut r = replica(1);
    campaign(&mut r);
    while r.status().promised == ballot(1, 1) {
        r.tick();
        r.ready();
    }
    let b = ballot(2, 1);
    r.step(msg(2, 1, promise(b, 0, vec![]))).unwrap();
    r.propose(7).unwrap();
    r.ready();

    r.step(msg(2, 1, accepted(ballot(1, 1), 1))).unwrap();
    assert_eq!(r.ready(), Ready::default(), "stale vote");
    r.step(msg(2, 1, accepted(b, 1))).unwrap();
    assert_eq!(
        r.ready().committed,
        vec![committed(1, batch(&[7]))],
        "current vote"
    );
}

// ----- Preemption: Nack --------------------------------------------------------

/// "Paxos Made Moderately Complex", §3: a preempted leader learns it from an
/// explicit Nack, steps down and hands back proposals it never placed.
#[test]
fn nack_deposes_leader() {
    let mut r = leader(1, 2);
    r.propose(9).unwrap();
    r.step(msg(2, 1, nack(ballot(1, 1), ballot(3, 3)))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            leadership: leadership(None, ballot(1, 1)),
            dropped_proposals: vec![9],
            ..Ready::default()
        }
    );
    assert_eq!(r.status().role, Role::Follower);
    assert_eq!(
        r.status().promised,
        ballot(1, 1),
        "a Nack is not a promise: it persists nothing"
    );

    // Subcase: its next campaign outbids the ballot the Nack named.
    assert_eq!(
        campaign(&mut r).messages,
        to_others(1, prepare(ballot(4, 1), 1)),
        "next campaign"
    );
}

#[test]
fn nack_deposes_candidate() {
    let mut r = replica(1);
    campaign(&mut r);
    // Subcase: a Nack of some other ballot is ignored.
    r.step(msg(2, 1, nack(ballot(0, 1), ballot(1, 2)))).unwrap();
    assert_eq!(r.status().role, Role::Candidate, "other ballot");

    r.step(msg(2, 1, nack(ballot(1, 1), ballot(1, 2)))).unwrap();
    assert_eq!(r.status().role, Role::Follower);
    assert_eq!(
        r.ready(),
        Ready::default(),
        "a candidate led nobody: nothing to report"
    );
}

// ----- Heartbeats and the quorum check -----------------------------------------

#[test]
fn heartbeat_is_sent_acked_and_nacked() {
    // Subcase: the leader sends one every heartbeat interval (one tick).
    let mut r = leader(1, 2);
    r.tick();
    assert_eq!(
        r.ready(),
        Ready {
            messages: to_others(1, heartbeat(ballot(1, 1), 0)),
            ..Ready::default()
        },
        "leader tick"
    );

    // Subcase: a follower acknowledges with its commit point and follows.
    let mut r = replica(2);
    r.step(msg(1, 2, heartbeat(ballot(1, 1), 0))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            promised: Some(ballot(1, 1)),
            messages: vec![msg(2, 1, heartbeat_ack(ballot(1, 1), 0))],
            leadership: leadership(Some(1), ballot(1, 1)),
            ..Ready::default()
        },
        "follower"
    );
    // Heartbeats keep the follower from campaigning.
    for _ in 0..30 {
        r.tick();
        r.step(msg(1, 2, heartbeat(ballot(1, 1), 0))).unwrap();
        r.ready();
    }
    assert_eq!(r.status().role, Role::Follower, "no election");

    // Subcase: a leader acknowledged by a follower that knows more chosen
    // slots than it does (say, one outside its phase 1 quorum that holds a
    // snapshot) fetches them from that follower.
    let mut l = leader(1, 2);
    l.step(msg(3, 1, heartbeat_ack(ballot(1, 1), 4))).unwrap();
    assert_eq!(
        l.ready(),
        Ready {
            messages: vec![msg(1, 3, catch_up_request(1))],
            ..Ready::default()
        },
        "leader behind a follower"
    );

    // Subcase: a heartbeat or commit of a deposed leader is answered with a
    // Nack, so it steps down at once.
    r.step(msg(3, 2, prepare(ballot(2, 3), 1))).unwrap();
    r.ready();
    r.step(msg(1, 2, heartbeat(ballot(1, 1), 0))).unwrap();
    r.step(msg(1, 2, commit(ballot(1, 1), 0))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![
                msg(2, 1, nack(ballot(1, 1), ballot(2, 3))),
                msg(2, 1, nack(ballot(1, 1), ballot(2, 3))),
            ],
            ..Ready::default()
        },
        "stale leader"
    );
}

/// A leader that hears from no quorum for election_timeout_ticks (5) steps
/// down; acknowledgements reset the check.
#[test]
fn quorum_check() {
    let b = ballot(1, 1);
    // Subcase: nobody answers.
    let mut r = leader(1, 2);
    for tick in 1..5 {
        r.tick();
        assert_eq!(
            r.ready(),
            Ready {
                messages: to_others(1, heartbeat(b, 0)),
                ..Ready::default()
            },
            "tick {tick}"
        );
    }
    r.tick();
    assert_eq!(
        r.ready(),
        Ready {
            messages: to_others(1, heartbeat(b, 0)),
            leadership: leadership(None, b),
            ..Ready::default()
        },
        "tick 5: steps down"
    );
    assert_eq!(r.status().role, Role::Follower);

    // Subcase: one follower acknowledges in each period.
    let mut r = leader(1, 2);
    for _ in 0..3 {
        for _ in 0..4 {
            r.tick();
        }
        r.step(msg(3, 1, heartbeat_ack(b, 0))).unwrap();
        r.tick();
    }
    assert!(r.is_leader(), "acknowledged");
    // Subcase: an Accepted counts too; an ack for another ballot does not.
    r.propose(1).unwrap();
    r.ready();
    for _ in 0..4 {
        r.tick();
    }
    r.step(msg(2, 1, accepted(b, 1))).unwrap();
    r.tick();
    assert!(r.is_leader(), "accepted counts");
    for _ in 0..4 {
        r.tick();
    }
    r.step(msg(2, 1, heartbeat_ack(ballot(0, 1), 0))).unwrap();
    r.tick();
    assert!(!r.is_leader(), "ack of another ballot");
}

/// A leader re-sends an Accept that went unanswered for a heartbeat interval,
/// to the members that have not voted.
#[test]
fn unanswered_accept_is_resent() {
    let mut r = leader(1, 2);
    let b = ballot(1, 1);
    r.propose(7).unwrap();
    r.ready();
    r.tick();
    let mut messages = to_others(1, heartbeat(b, 0));
    messages.extend(to_others(1, accept(b, 1, batch(&[7]), 0)));
    assert_eq!(
        r.ready(),
        Ready {
            messages,
            ..Ready::default()
        }
    );
}

// ----- Learning: CatchUpRequest, CatchUp, InstallSnapshot ------------------------

/// A replica whose slots 1..=3 are chosen (values [1], [2], [3]), as leader.
fn leader_with_three_chosen(config: Config) -> Replica<V> {
    let mut r = Replica::new(config).unwrap();
    campaign(&mut r);
    r.step(msg(2, 1, promise(ballot(1, 1), 0, vec![]))).unwrap();
    for value in 1..=3 {
        r.propose(value).unwrap();
        r.ready();
        r.step(msg(2, 1, accepted(ballot(1, 1), Slot::from(value))))
            .unwrap();
    }
    r.ready();
    assert_eq!(r.status().commit_through, 3);
    r
}

#[test]
fn catch_up_request_is_answered_or_needs_snapshot() {
    let mut r = leader_with_three_chosen(Config {
        catch_up_max_slots: 2,
        ..config(1)
    });

    // Subcase: answered with chosen entries, at most catch_up_max_slots.
    r.step(msg(3, 1, catch_up_request(1))).unwrap();
    r.step(msg(3, 1, catch_up_request(3))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![
                msg(1, 3, catch_up(1, vec![batch(&[1]), batch(&[2])])),
                msg(1, 3, catch_up(3, vec![batch(&[3])])),
            ],
            ..Ready::default()
        },
        "answered"
    );

    // Subcase: nothing chosen there yet.
    r.step(msg(3, 1, catch_up_request(4))).unwrap();
    assert_eq!(r.ready(), Ready::default(), "beyond the commit point");

    // Subcase: compacted slots are asked for; the host must send a snapshot.
    // Several requests in one Ready name the peer once.
    r.snapshot_taken(2).unwrap();
    r.step(msg(3, 1, catch_up_request(2))).unwrap();
    r.step(msg(3, 1, catch_up_request(1))).unwrap();
    r.step(msg(2, 1, catch_up_request(1))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            snapshot_requests: vec![3, 2],
            ..Ready::default()
        },
        "below the snapshot"
    );
    r.step(msg(3, 1, catch_up_request(3))).unwrap();
    assert_eq!(
        r.ready().messages,
        vec![msg(1, 3, catch_up(3, vec![batch(&[3])]))],
        "just above the snapshot"
    );
}

/// Entries learned from a CatchUp are applied in slot order, once; none is
/// persisted as accepted (this acceptor never voted for them).
#[test]
fn catch_up_is_applied_in_order() {
    let mut r = Replica::new(Config {
        catch_up_max_slots: 3,
        ..config(2)
    })
    .unwrap();
    // Subcase: slots beyond a gap wait for it.
    r.step(msg(1, 2, catch_up(3, vec![batch(&[3])]))).unwrap();
    assert_eq!(r.ready(), Ready::default(), "beyond a gap");
    r.step(msg(1, 2, catch_up(1, vec![batch(&[1]), Entry::Noop])))
        .unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            committed: vec![
                committed(1, batch(&[1])),
                committed(2, Entry::Noop),
                committed(3, batch(&[3])),
            ],
            ..Ready::default()
        },
        "gap filled"
    );

    // Subcase: overlap with what is already known; a full message (3
    // entries) asks for more at once.
    r.step(msg(
        1,
        2,
        catch_up(2, vec![Entry::Noop, batch(&[3]), batch(&[4])]),
    ))
    .unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![msg(2, 1, catch_up_request(5))],
            committed: vec![committed(4, batch(&[4]))],
            ..Ready::default()
        },
        "overlap, full"
    );

    // Subcase: the same answer again makes no progress and asks for nothing,
    // or duplicated answers would multiply requests.
    r.step(msg(
        1,
        2,
        catch_up(2, vec![Entry::Noop, batch(&[3]), batch(&[4])]),
    ))
    .unwrap();
    assert_eq!(r.ready(), Ready::default(), "duplicate, no progress");
}

#[test]
fn install_snapshot_replaces_applied_prefix() {
    let b = ballot(1, 1);
    // Subcase: entries committed earlier in the same Ready are covered by the
    // snapshot and dropped from `committed`; chosen entries past it follow.
    let mut r = follower(2);
    r.step(msg(1, 2, accept(b, 1, batch(&[1]), 0))).unwrap();
    r.step(msg(1, 2, accept(b, 2, batch(&[2]), 1))).unwrap();
    r.step(msg(1, 2, catch_up(4, vec![batch(&[4])]))).unwrap();
    r.step(msg(1, 2, install_snapshot(3, b"abc"))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(1, b, batch(&[1])), record(2, b, batch(&[2]))],
            snapshot: Some(consensus::Snapshot {
                slot: 3,
                data: Bytes::from_static(b"abc"),
            }),
            messages: vec![msg(2, 1, accepted(b, 1)), msg(2, 1, accepted(b, 2))],
            committed: vec![committed(4, batch(&[4]))],
            ..Ready::default()
        },
        "install"
    );
    let status = r.status();
    assert_eq!(
        (
            status.snapshot_slot,
            status.commit_through,
            status.applied_through
        ),
        (3, 4, 4)
    );

    // Subcase: a snapshot at or below what was applied is ignored.
    r.step(msg(1, 2, install_snapshot(4, b"old"))).unwrap();
    assert_eq!(r.ready(), Ready::default(), "old snapshot");

    // Subcase: the compacted slots are reported as such in a Promise.
    r.step(msg(3, 2, prepare(ballot(2, 3), 1))).unwrap();
    assert_eq!(
        r.ready().messages,
        vec![msg(
            2,
            3,
            promise(
                ballot(2, 3),
                3,
                vec![reported(4, Ballot::ZERO, batch(&[4]), true)]
            )
        )],
        "promise after the snapshot"
    );
}

// ----- Local calls: snapshot_taken, send_snapshot, propose -----------------------

#[test]
fn snapshot_errors() {
    let mut r = leader_with_three_chosen(config(1));
    assert_eq!(
        r.snapshot_taken(4),
        Err(SnapshotError::AheadOfApplied {
            slot: 4,
            applied_through: 3
        }),
        "snapshot_taken ahead of applied"
    );
    assert_eq!(r.status().snapshot_slot, 0);
    assert_eq!(r.snapshot_taken(3), Ok(()));
    assert_eq!(r.snapshot_taken(1), Ok(()), "an older snapshot is a no-op");
    assert_eq!(r.status().snapshot_slot, 3);

    let data = Bytes::from_static(b"s");
    assert_eq!(
        r.send_snapshot(9, 3, data.clone()),
        Err(SnapshotError::UnknownRecipient { to: 9 }),
        "not a member"
    );
    assert_eq!(
        r.send_snapshot(1, 3, data.clone()),
        Err(SnapshotError::UnknownRecipient { to: 1 }),
        "itself"
    );
    assert_eq!(
        r.send_snapshot(2, 4, data.clone()),
        Err(SnapshotError::AheadOfApplied {
            slot: 4,
            applied_through: 3
        }),
        "send_snapshot ahead of applied"
    );
    assert_eq!(r.ready(), Ready::default(), "errors send nothing");
    assert_eq!(r.send_snapshot(2, 3, data), Ok(()));
    assert_eq!(
        r.ready().messages,
        vec![msg(1, 2, install_snapshot(3, b"s"))]
    );
}

#[test]
fn propose_errors() {
    // Subcase: no leader known.
    let mut r = replica(1);
    assert_eq!(
        r.propose(5),
        Err(ProposeError::NotLeader {
            leader_hint: None,
            value: 5
        }),
        "no leader"
    );
    // Subcase: a candidate is not a leader either.
    campaign(&mut r);
    assert_eq!(
        r.propose(5),
        Err(ProposeError::NotLeader {
            leader_hint: None,
            value: 5
        }),
        "candidate"
    );
    // Subcase: a follower names its leader.
    let r2 = &mut follower(2);
    let err = r2.propose(6).unwrap_err();
    assert_eq!(
        err,
        ProposeError::NotLeader {
            leader_hint: Some(1),
            value: 6
        },
        "follower"
    );
    assert_eq!(err.into_value(), 6);

    // Subcase: Busy once max_pending_values wait for a slot.
    let mut r = Replica::new(Config {
        max_pending_values: 2,
        ..config(1)
    })
    .unwrap();
    campaign(&mut r);
    r.step(msg(2, 1, promise(ballot(1, 1), 0, vec![]))).unwrap();
    r.ready();
    assert_eq!(r.propose(1), Ok(()));
    assert_eq!(r.propose(2), Ok(()));
    assert_eq!(r.propose(3), Err(ProposeError::Busy { value: 3 }), "busy");
    // Ready moves the pending values into a slot, which makes room.
    r.ready();
    assert_eq!(r.propose(3), Ok(()), "room again");
}

/// With pipeline_window_slots = 2, a third batch waits until a slot in
/// flight is chosen.
#[test]
fn pipeline_window() {
    let mut r = Replica::new(Config {
        pipeline_window_slots: 2,
        ..config(1)
    })
    .unwrap();
    campaign(&mut r);
    r.step(msg(2, 1, promise(ballot(1, 1), 0, vec![]))).unwrap();
    r.ready();
    let b = ballot(1, 1);
    for value in 1..=2 {
        r.propose(value).unwrap();
        assert_eq!(
            r.ready().messages,
            to_others(1, accept(b, Slot::from(value), batch(&[value]), 0))
        );
    }
    r.propose(3).unwrap();
    assert!(!r.has_ready(), "the window is full");
    assert_eq!(r.ready(), Ready::default(), "third batch waits");

    r.step(msg(2, 1, accepted(b, 1))).unwrap();
    assert!(r.has_ready());
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(3, b, batch(&[3]))],
            messages: to_others(1, accept(b, 3, batch(&[3]), 1)),
            committed: vec![committed(1, batch(&[1]))],
            ..Ready::default()
        },
        "slot 1 chosen: slot 3 starts"
    );
}

/// Values proposed between two `ready` calls share a slot, at most
/// max_batch_values (2) to a slot.
#[test]
fn batching() {
    let mut r = Replica::new(Config {
        max_batch_values: 2,
        ..config(1)
    })
    .unwrap();
    campaign(&mut r);
    r.step(msg(2, 1, promise(ballot(1, 1), 0, vec![]))).unwrap();
    r.ready();
    let b = ballot(1, 1);
    for value in [1, 2, 3] {
        r.propose(value).unwrap();
    }
    let mut messages = to_others(1, accept(b, 1, batch(&[1, 2]), 0));
    messages.extend(to_others(1, accept(b, 2, batch(&[3]), 0)));
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(1, b, batch(&[1, 2])), record(2, b, batch(&[3]))],
            messages,
            ..Ready::default()
        }
    );
}

// ----- Refused messages ------------------------------------------------------------

/// Each malformed message is refused with its error, and the replica is left
/// exactly as it was.
#[test]
fn step_errors_leave_state_unchanged() {
    let mut r = follower(2);
    r.step(msg(1, 2, accept(ballot(1, 1), 1, batch(&[7]), 0)))
        .unwrap();
    r.ready();
    let before = r.status();
    let cases = [
        (
            msg(9, 2, prepare(ballot(5, 9), 1)),
            StepError::UnknownSender { from: 9 },
        ),
        (
            msg(2, 2, prepare(ballot(5, 2), 1)),
            StepError::UnknownSender { from: 2 },
        ),
        (
            msg(3, 1, prepare(ballot(5, 3), 1)),
            StepError::WrongRecipient { to: 1, me: 2 },
        ),
        (
            msg(3, 2, prepare(ballot(5, 1), 1)),
            StepError::ForeignBallot {
                from: 3,
                ballot: ballot(5, 1),
            },
        ),
        (
            msg(3, 2, accept(ballot(5, 1), 1, Entry::Noop, 1)),
            StepError::ForeignBallot {
                from: 3,
                ballot: ballot(5, 1),
            },
        ),
        (
            msg(3, 2, commit(ballot(5, 1), 1)),
            StepError::ForeignBallot {
                from: 3,
                ballot: ballot(5, 1),
            },
        ),
        (
            msg(3, 2, heartbeat(ballot(5, 1), 1)),
            StepError::ForeignBallot {
                from: 3,
                ballot: ballot(5, 1),
            },
        ),
        (
            msg(1, 2, accept(ballot(5, 1), 0, Entry::Noop, 1)),
            StepError::InvalidSlot,
        ),
        (msg(1, 2, accepted(ballot(1, 2), 0)), StepError::InvalidSlot),
        (
            msg(1, 2, catch_up(0, vec![Entry::Noop])),
            StepError::InvalidSlot,
        ),
        (msg(1, 2, catch_up_request(0)), StepError::InvalidSlot),
    ];
    for (message, error) in cases {
        let text = message.to_string();
        assert_eq!(r.step(message), Err(error), "{text}");
        assert_eq!(r.status(), before, "{text}: state changed");
        assert_eq!(r.ready(), Ready::default(), "{text}: output");
    }
}

// ----- Restart ------------------------------------------------------------------------

/// An acceptor keeps its promise and its accepted values across a restart
/// ("Paxos Made Simple", §2.2: "an acceptor must remember this information
/// even if it fails and then restarts").
#[test]
fn restart_keeps_promise_and_accepted_values() {
    // Node 2 persists what each Ready asks it to.
    let mut r = replica(2);
    let mut durable = DurableState::default();
    let mut persist = |ready: Ready<V>| {
        if let Some(promised) = ready.promised {
            durable.promised = promised;
        }
        durable.accepted.extend(ready.accepted);
    };
    r.step(msg(1, 2, accept(ballot(1, 1), 1, batch(&[7]), 0)))
        .unwrap();
    r.step(msg(1, 2, accept(ballot(1, 1), 2, batch(&[8]), 0)))
        .unwrap();
    persist(r.ready());
    r.step(msg(3, 2, prepare(ballot(2, 3), 3))).unwrap();
    persist(r.ready());
    assert_eq!(
        durable,
        DurableState {
            promised: ballot(2, 3),
            accepted: vec![
                record(1, ballot(1, 1), batch(&[7])),
                record(2, ballot(1, 1), batch(&[8])),
            ],
            snapshot_slot: 0,
        }
    );

    let mut r = Replica::restart(config(2), durable.clone()).unwrap();
    assert_eq!(r.status().promised, ballot(2, 3));
    assert_eq!(r.ready(), Ready::default(), "a restart has nothing to say");

    // Subcase: the promise still holds.
    r.step(msg(1, 2, accept(ballot(1, 1), 3, batch(&[9]), 0)))
        .unwrap();
    assert_eq!(
        r.ready().messages,
        vec![msg(2, 1, nack(ballot(1, 1), ballot(2, 3)))],
        "promise kept"
    );
    // Subcase: the accepted values are reported to the next candidate.
    r.step(msg(3, 2, prepare(ballot(3, 3), 1))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            promised: Some(ballot(3, 3)),
            messages: vec![msg(
                2,
                3,
                promise(
                    ballot(3, 3),
                    0,
                    vec![
                        reported(1, ballot(1, 1), batch(&[7]), false),
                        reported(2, ballot(1, 1), batch(&[8]), false),
                    ]
                )
            )],
            ..Ready::default()
        },
        "accepted values reported"
    );

    // Subcase: records at or below the snapshot slot are dropped, and a
    // record's ballot is a promise too.
    let r = Replica::restart(
        config(2),
        DurableState {
            promised: Ballot::ZERO,
            snapshot_slot: 1,
            ..durable
        },
    )
    .unwrap();
    let status = r.status();
    assert_eq!(status.promised, ballot(1, 1), "promise from records");
    assert_eq!(
        (
            status.snapshot_slot,
            status.applied_through,
            status.last_slot
        ),
        (1, 1, 2)
    );
}

// ----- Degenerate group -------------------------------------------------------------

/// A group of one is its own quorum: it elects itself at its first timeout
/// and chooses every value at once.
#[test]
fn single_member_group() {
    let mut r = Replica::new(Config {
        members: vec![1],
        ..config(1)
    })
    .unwrap();
    assert_eq!(
        campaign(&mut r),
        Ready {
            promised: Some(ballot(1, 1)),
            leadership: leadership(Some(1), ballot(1, 1)),
            ..Ready::default()
        }
    );
    assert!(r.is_leader());
    r.propose(5).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(1, ballot(1, 1), batch(&[5]))],
            committed: vec![committed(1, batch(&[5]))],
            ..Ready::default()
        }
    );
    for _ in 0..20 {
        r.tick();
    }
    assert!(r.is_leader(), "a group of one always hears a quorum");
    assert_eq!(r.ready(), Ready::default());
}

// ----- Regression: a deposed leader must not vouch for its values --------------------

/// Five real replicas and a hand-driven network, for histories that need
/// more members than one replica under test can fake convincingly.
struct Group {
    replicas: Vec<Replica<V>>,
    in_flight: Vec<Message<V>>,
    /// What each member applied, by slot.
    applied: Vec<Vec<Committed<V>>>,
}

impl Group {
    fn new() -> Self {
        Group {
            replicas: (1..=5)
                .map(|id| Replica::new(config5(id)).unwrap())
                .collect(),
            in_flight: Vec::new(),
            applied: vec![Vec::new(); 5],
        }
    }

    fn node(&mut self, id: NodeId) -> &mut Replica<V> {
        &mut self.replicas[id as usize - 1]
    }

    /// Takes `id`'s Ready: messages go in flight, committed entries are
    /// applied. Returns the Ready for inspection.
    fn flush(&mut self, id: NodeId) -> Ready<V> {
        let ready = self.node(id).ready();
        self.in_flight.extend(ready.messages.iter().cloned());
        self.applied[id as usize - 1].extend(ready.committed.iter().cloned());
        ready
    }

    fn campaign(&mut self, id: NodeId) {
        while self.node(id).status().role == Role::Follower {
            self.node(id).tick();
            self.flush(id);
        }
    }

    fn propose(&mut self, id: NodeId, value: V) {
        self.node(id).propose(value).unwrap();
        self.flush(id);
    }

    /// Removes the in-flight messages from `from` to one of `to` and returns
    /// them, in the order sent.
    fn take(&mut self, from: NodeId, to: &[NodeId]) -> Vec<Message<V>> {
        let (taken, kept) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|m| m.from == from && to.contains(&m.to));
        self.in_flight = kept;
        taken
    }

    /// Delivers the in-flight messages from `from` to each of `to`; returns
    /// the last recipient's Ready.
    fn deliver(&mut self, from: NodeId, to: &[NodeId]) -> Ready<V> {
        let mut last = Ready::default();
        for message in self.take(from, to) {
            let to = message.to;
            self.node(to).step(message).unwrap();
            last = self.flush(to);
        }
        last
    }

    /// Delivers everything, including the answers, until nothing is left.
    fn deliver_all(&mut self) {
        while !self.in_flight.is_empty() {
            for message in std::mem::take(&mut self.in_flight) {
                let to = message.to;
                self.node(to).step(message).unwrap();
                self.flush(to);
            }
        }
    }

    /// Loses every message in flight.
    fn drop_all(&mut self) {
        self.in_flight.clear();
    }

    /// The value `id` applied at `slot`, if any.
    fn applied_at(&self, id: NodeId, slot: Slot) -> Option<&Entry<V>> {
        self.applied[id as usize - 1]
            .iter()
            .find(|c| c.slot == slot)
            .map(|c| &c.entry)
    }
}

/// The history shared by the two tests below, in a group of five. Returns
/// the group with node 1 still leading at ballot 2.1 (it has not heard of
/// 2.5), node 2 holding `[100]` accepted at 2.1 in slot 3, `[300]` chosen in
/// slot 3 at ballot 2.5 by nodes 3, 4 and 5, and node 1's request for slots
/// from 2 on still on its way to node 4.
fn deposed_leader_history() -> (Group, Message<V>) {
    let mut g = Group::new();
    // Node 4 leads at 1.4 and gets slots 1 and 2 chosen. Node 1 misses the
    // Accept for slot 2, learns from the Commit that slot 2 is chosen, and
    // asks node 4 for it; that request is delayed.
    g.campaign(4);
    g.deliver_all();
    g.propose(4, 1);
    g.deliver_all();
    g.propose(4, 2);
    g.take(4, &[1]);
    g.deliver(4, &[2, 3, 5]);
    g.deliver(2, &[4]);
    g.deliver(3, &[4]);
    g.deliver(5, &[4]);
    g.deliver(4, &[1, 2, 3, 5]);
    let request = g.take(1, &[4]);
    assert_eq!(request, vec![msg(1, 4, catch_up_request(2))]);
    g.drop_all();

    // Node 1 wins ballot 2.1 with nodes 2 and 3 (and adopts slot 2 as
    // chosen from node 2's promise), then proposes [100] in slot 3. Only
    // node 2 accepts it.
    g.campaign(1);
    g.deliver(1, &[2, 3]);
    g.deliver(2, &[1]);
    g.deliver(3, &[1]);
    assert!(g.node(1).is_leader());
    g.drop_all();
    g.propose(1, 100);
    g.deliver(1, &[2]);
    g.drop_all();

    // Node 5 wins ballot 2.5 with nodes 3 and 4, which never heard of [100],
    // and gets [300] chosen in slot 3.
    g.campaign(5);
    assert_eq!(g.node(5).status().promised, ballot(2, 5));
    g.deliver(5, &[3, 4]);
    g.deliver(3, &[5]);
    g.deliver(4, &[5]);
    assert!(g.node(5).is_leader());
    g.drop_all();
    g.propose(5, 300);
    g.deliver(5, &[3, 4]);
    g.deliver(3, &[5]);
    g.deliver(4, &[5]);
    g.deliver(5, &[3, 4]);
    g.drop_all();
    assert_eq!(g.applied_at(4, 3), Some(&batch(&[300])));
    assert!(g.node(1).is_leader(), "node 1 has not heard of ballot 2.5");
    (g, request.into_iter().next().unwrap())
}

/// A leader that learns from a CatchUp that a slot it has in flight was
/// chosen with another value has been deposed by a higher ballot. It must
/// step down rather than announce a commit point past that slot: its
/// followers take the commit point as vouching for the value they accepted
/// at its ballot, and node 2 would apply [100] where everyone else applies
/// [300] ("Paxos Made Simple", §2.3: a learner must never learn a value that
/// was not chosen).
#[test]
fn deposed_leader_learning_from_catch_up_does_not_vouch_for_its_value() {
    let (mut g, request) = deposed_leader_history();
    // The delayed request reaches node 4, which answers with slots 2 and 3.
    g.node(4).step(request).unwrap();
    g.flush(4);
    let ready = g.deliver(4, &[1]);
    assert_eq!(ready.committed, vec![committed(3, batch(&[300]))]);
    assert!(!g.node(1).is_leader(), "node 1 steps down");
    assert_eq!(ready.leadership, leadership(None, ballot(2, 1)));

    g.deliver(1, &[2]);
    assert_eq!(g.applied_at(2, 3), None, "node 2 does not apply [100]");
    // Node 2 learns slot 3 from the real leader instead.
    g.node(5).tick();
    g.flush(5);
    g.deliver_all();
    assert_eq!(g.applied_at(2, 3), Some(&batch(&[300])));
}

/// The same with a snapshot: node 4 has compacted slot 3 away and node 1
/// receives a snapshot covering the slot it has in flight. It cannot tell
/// whether its own value was the one chosen, so it steps down.
#[test]
fn deposed_leader_installing_snapshot_does_not_vouch_for_its_value() {
    let (mut g, request) = deposed_leader_history();
    g.node(4).snapshot_taken(3).unwrap();
    g.node(4).step(request).unwrap();
    assert_eq!(g.flush(4).snapshot_requests, vec![1]);
    g.node(4)
        .send_snapshot(1, 3, Bytes::from_static(b"1,2,300"))
        .unwrap();
    g.flush(4);
    let ready = g.deliver(4, &[1]);
    assert_eq!(ready.snapshot.map(|s| s.slot), Some(3));
    assert!(!g.node(1).is_leader(), "node 1 steps down");

    g.deliver(1, &[2]);
    assert_eq!(g.applied_at(2, 3), None, "node 2 does not apply [100]");
    g.node(5).tick();
    g.flush(5);
    g.deliver_all();
    assert_eq!(g.applied_at(2, 3), Some(&batch(&[300])));
}

/// An Accept past the accept horizon is treated as lost: nothing is stored
/// or answered, but its commit point starts a catch-up, after which the
/// follower accepts again.
#[test]
fn accept_beyond_horizon_is_ignored_until_caught_up() {
    let mut r = Replica::new(Config {
        accept_horizon_slots: 70,
        ..config(2)
    })
    .unwrap();
    let b = ballot(1, 1);
    r.step(msg(1, 2, accept(b, 80, batch(&[8]), 79))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            promised: Some(b),
            messages: vec![msg(2, 1, catch_up_request(1))],
            leadership: leadership(Some(1), b),
            ..Ready::default()
        },
        "slot 80 is past 0 + 70: fetch the chosen prefix first"
    );
    assert_eq!(r.status().last_slot, 0, "nothing stored");

    let prefix = (1..=79).map(|v| batch(&[v as V])).collect();
    r.step(msg(1, 2, catch_up(1, prefix))).unwrap();
    assert_eq!(
        r.ready().committed.len(),
        70,
        "the horizon caps catch-up as well: slots 71..79 wait for the next request"
    );
    r.step(msg(1, 2, accept(b, 80, batch(&[8]), 79))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(80, b, batch(&[8]))],
            messages: vec![msg(2, 1, accepted(b, 80)), msg(2, 1, catch_up_request(71))],
            ..Ready::default()
        },
        "within reach now (70 + 70): accepted; the rest of the prefix is fetched"
    );
}

/// A candidate whose promiser's log reaches past its own log end plus the
/// accept horizon does not count that promise: it is too far behind to
/// lead. It steps down and stays quiet longer than the others will, because
/// its Prepares were resetting their election timers.
#[test]
fn candidate_far_behind_yields() {
    let mut r = Replica::new(Config {
        accept_horizon_slots: 70,
        ..config(1)
    })
    .unwrap();
    campaign(&mut r);
    let b = ballot(1, 1);
    let far = reported(500, ballot(0, 2), batch(&[5]), false);
    r.step(msg(2, 1, promise(b, 0, vec![far]))).unwrap();
    assert_eq!(r.status().role, Role::Follower, "yielded");
    assert_eq!(r.ready(), Ready::default(), "nothing to say");
    // Others time out within 2 election timeouts (5..10 ticks here); this
    // replica waits at least 2 * 5 + 5 ticks.
    for tick in 1..15 {
        r.tick();
        assert_eq!(r.ready(), Ready::default(), "quiet at tick {tick}");
    }
}

/// The leader declared slots 1 and 2 chosen while this follower had a hole
/// at 1 (its Accept was lost). When the leader re-sends that Accept, the
/// follower holds the leader's value there, which is the chosen one: both
/// slots are applied at once, with no catch-up round trip.
#[test]
fn retransmitted_accept_fills_a_hole_the_leader_declared_chosen() {
    let mut r = follower(2);
    let b = ballot(1, 1);
    r.step(msg(1, 2, accept(b, 2, batch(&[2]), 2))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(2, b, batch(&[2]))],
            messages: vec![msg(2, 1, accepted(b, 2)), msg(2, 1, catch_up_request(1))],
            ..Ready::default()
        },
        "slot 2 matched, slot 1 missing: ask for it"
    );
    r.step(msg(1, 2, accept(b, 1, batch(&[1]), 2))).unwrap();
    assert_eq!(
        r.ready(),
        Ready {
            accepted: vec![record(1, b, batch(&[1]))],
            messages: vec![msg(2, 1, accepted(b, 1))],
            committed: vec![committed(1, batch(&[1])), committed(2, batch(&[2]))],
            ..Ready::default()
        },
        "the re-sent Accept fills the hole; both slots apply"
    );
}

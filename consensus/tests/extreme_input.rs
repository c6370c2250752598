//! A peer's message with extreme numbers in it (slot 0, `u64::MAX`, rounds at
//! the end of the range, empty or huge batches) is either refused with a
//! `StepError` or handled; it never panics, hangs or allocates without bound,
//! whatever role the recipient plays.
//!
//! Peers are trusted to follow the protocol (Paxos tolerates crashes, not
//! lies), so this checks robustness against corrupt numbers, not against a
//! peer that lies consistently.

use std::sync::Arc;

use bytes::Bytes;
use consensus::{Ballot, Config, Entry, Message, Payload, PromisedSlot, Replica, Role};
use proptest::prelude::*;

fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        Just(1 << 62),
        Just((1 << 62) + 1),
        0u64..20,
        any::<u64>(),
    ]
}

fn ballot() -> impl Strategy<Value = Ballot> {
    (number(), 1u64..=3).prop_map(|(round, node)| Ballot::new(round, node))
}

fn entry() -> impl Strategy<Value = Entry<u64>> {
    prop_oneof![
        Just(Entry::Noop),
        proptest::collection::vec(any::<u64>(), 0..4).prop_map(|v| Entry::Batch(Arc::from(v))),
    ]
}

fn payload() -> impl Strategy<Value = Payload<u64>> {
    prop_oneof![
        (ballot(), number()).prop_map(|(ballot, first_unchosen_slot)| Payload::Prepare {
            ballot,
            first_unchosen_slot
        }),
        (
            ballot(),
            number(),
            proptest::collection::vec((number(), ballot(), entry(), any::<bool>()), 0..4)
        )
            .prop_map(|(ballot, snapshot_slot, accepted)| Payload::Promise {
                ballot,
                snapshot_slot,
                accepted: accepted
                    .into_iter()
                    .map(|(slot, ballot, entry, chosen)| PromisedSlot {
                        slot,
                        ballot,
                        entry,
                        chosen
                    })
                    .collect(),
            }),
        (ballot(), number(), entry(), number()).prop_map(
            |(ballot, slot, entry, commit_through)| {
                Payload::Accept {
                    ballot,
                    slot,
                    entry,
                    commit_through,
                }
            }
        ),
        (ballot(), number()).prop_map(|(ballot, slot)| Payload::Accepted { ballot, slot }),
        (ballot(), ballot()).prop_map(|(ballot, promised)| Payload::Nack { ballot, promised }),
        (ballot(), number()).prop_map(|(ballot, commit_through)| Payload::Commit {
            ballot,
            commit_through
        }),
        (ballot(), number()).prop_map(|(ballot, commit_through)| Payload::Heartbeat {
            ballot,
            commit_through
        }),
        (ballot(), number()).prop_map(|(ballot, commit_through)| Payload::HeartbeatAck {
            ballot,
            commit_through
        }),
        number().prop_map(|first_missing_slot| Payload::CatchUpRequest { first_missing_slot }),
        (number(), proptest::collection::vec(entry(), 0..4)).prop_map(|(first_slot, entries)| {
            Payload::CatchUp {
                first_slot,
                entries,
            }
        }),
        number().prop_map(|snapshot_slot| Payload::InstallSnapshot {
            snapshot_slot,
            data: Bytes::from_static(b"state"),
        }),
    ]
}

fn config(id: u64) -> Config {
    Config {
        heartbeat_interval_ticks: 1,
        election_timeout_ticks: 3,
        ..Config::new(id, [1, 2, 3])
    }
}

/// Node 1 in the given role, with a few slots chosen.
fn replica_in(role: Role) -> Replica<u64> {
    let mut r = Replica::new(config(1)).unwrap();
    if role == Role::Follower {
        return r;
    }
    while r.status().role == Role::Follower {
        r.tick();
    }
    let ballot = r.status().promised;
    r.ready();
    if role == Role::Leader {
        let promise = Payload::Promise {
            ballot,
            snapshot_slot: 0,
            accepted: vec![],
        };
        r.step(Message {
            from: 2,
            to: 1,
            payload: promise,
        })
        .unwrap();
        for value in 0..3 {
            r.propose(value).unwrap();
            r.ready();
            let slot = r.status().last_slot;
            let accepted = Payload::Accepted { ballot, slot };
            r.step(Message {
                from: 2,
                to: 1,
                payload: accepted,
            })
            .unwrap();
        }
        r.ready();
        assert_eq!(r.status().applied_through, 3);
    }
    assert_eq!(r.status().role, role);
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn extreme_numbers_never_panic(
        role in prop_oneof![Just(Role::Follower), Just(Role::Candidate), Just(Role::Leader)],
        from in 2u64..=3,
        payloads in proptest::collection::vec(payload(), 1..3),
    ) {
        let mut r = replica_in(role);
        for payload in payloads {
            // Owned ballots must belong to their sender to get past the
            // ForeignBallot check and reach the handlers.
            let payload = match payload {
                Payload::Prepare { ballot, first_unchosen_slot } => Payload::Prepare {
                    ballot: Ballot::new(ballot.round, from),
                    first_unchosen_slot,
                },
                Payload::Accept { ballot, slot, entry, commit_through } => Payload::Accept {
                    ballot: Ballot::new(ballot.round, from),
                    slot,
                    entry,
                    commit_through,
                },
                other => other,
            };
            let _ = r.step(Message { from, to: 1, payload });
            let ready = r.ready();
            prop_assert!(ready.messages.len() < 1_000, "bounded output");
        }
        for _ in 0..10 {
            r.tick();
            let ready = r.ready();
            prop_assert!(ready.messages.len() < 1_000, "bounded output");
        }
    }
}

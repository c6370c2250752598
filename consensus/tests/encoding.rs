//! Properties of the wire types: ballots are totally ordered as `(round,
//! node)`, every `Message` round-trips through postcard exactly, and decoding
//! damaged or random bytes fails cleanly instead of panicking.

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use consensus::{Ballot, Entry, Message, Payload, PromisedSlot};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

// ----- Strategies -----------------------------------------------------------

/// Mostly tiny numbers, so that equal rounds and nodes (the interesting ties)
/// come up often, plus the extremes and anything at all.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..4,
        1 => Just(u64::MAX),
        2 => any::<u64>(),
    ]
}

fn ballot() -> impl Strategy<Value = Ballot> {
    (number(), number()).prop_map(|(round, node)| Ballot::new(round, node))
}

fn entry() -> impl Strategy<Value = Entry<u64>> {
    prop_oneof![
        Just(Entry::Noop),
        vec(any::<u64>(), 0..8).prop_map(|values| Entry::Batch(Arc::from(values))),
    ]
}

fn promised_slot() -> impl Strategy<Value = PromisedSlot<u64>> {
    (number(), ballot(), entry(), any::<bool>()).prop_map(|(slot, ballot, entry, chosen)| {
        PromisedSlot {
            slot,
            ballot,
            entry,
            chosen,
        }
    })
}

/// Every [`Payload`] variant; [`variant_index`] (an exhaustive match) keeps
/// this list honest when a variant is added.
fn payload() -> impl Strategy<Value = Payload<u64>> {
    prop_oneof![
        (ballot(), number()).prop_map(|(ballot, first_unchosen_slot)| Payload::Prepare {
            ballot,
            first_unchosen_slot,
        }),
        (ballot(), number(), vec(promised_slot(), 0..5)).prop_map(
            |(ballot, snapshot_slot, accepted)| Payload::Promise {
                ballot,
                snapshot_slot,
                accepted,
            }
        ),
        (ballot(), number(), entry(), number()).prop_map(
            |(ballot, slot, entry, commit_through)| Payload::Accept {
                ballot,
                slot,
                entry,
                commit_through,
            }
        ),
        (ballot(), number()).prop_map(|(ballot, slot)| Payload::Accepted { ballot, slot }),
        (ballot(), ballot()).prop_map(|(ballot, promised)| Payload::Nack { ballot, promised }),
        (ballot(), number()).prop_map(|(ballot, commit_through)| Payload::Commit {
            ballot,
            commit_through,
        }),
        (ballot(), number()).prop_map(|(ballot, commit_through)| Payload::Heartbeat {
            ballot,
            commit_through,
        }),
        (ballot(), number()).prop_map(|(ballot, commit_through)| Payload::HeartbeatAck {
            ballot,
            commit_through,
        }),
        number().prop_map(|first_missing_slot| Payload::CatchUpRequest { first_missing_slot }),
        (number(), vec(entry(), 0..5)).prop_map(|(first_slot, entries)| Payload::CatchUp {
            first_slot,
            entries,
        }),
        (number(), vec(any::<u8>(), 0..64)).prop_map(|(snapshot_slot, data)| {
            Payload::InstallSnapshot {
                snapshot_slot,
                data: Bytes::from(data),
            }
        }),
    ]
}

fn message() -> impl Strategy<Value = Message<u64>> {
    (number(), number(), payload()).prop_map(|(from, to, payload)| Message { from, to, payload })
}

/// Which variant `payload` is. No wildcard arm: adding a variant breaks the
/// build here until the strategy and the coverage test learn about it.
fn variant_index(payload: &Payload<u64>) -> usize {
    match payload {
        Payload::Prepare { .. } => 0,
        Payload::Promise { .. } => 1,
        Payload::Accept { .. } => 2,
        Payload::Accepted { .. } => 3,
        Payload::Nack { .. } => 4,
        Payload::Commit { .. } => 5,
        Payload::Heartbeat { .. } => 6,
        Payload::HeartbeatAck { .. } => 7,
        Payload::CatchUpRequest { .. } => 8,
        Payload::CatchUp { .. } => 9,
        Payload::InstallSnapshot { .. } => 10,
    }
}
const VARIANTS: usize = 11;

fn encode(message: &Message<u64>) -> Vec<u8> {
    postcard::to_allocvec(message).expect("encoding into a Vec cannot fail")
}

// ----- Ballot ordering ------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// `Ord`, `PartialOrd` and `Eq` all agree with the lexicographic order of
    /// `(round, node)`.
    #[test]
    fn ballot_order_is_round_then_node(a in ballot(), b in ballot()) {
        let expected = (a.round, a.node).cmp(&(b.round, b.node));
        prop_assert_eq!(a.cmp(&b), expected);
        prop_assert_eq!(a.partial_cmp(&b), Some(expected));
        prop_assert_eq!(a == b, expected == Ordering::Equal);
        prop_assert_eq!(b.cmp(&a), expected.reverse());
        prop_assert_eq!(a.max(b), if expected == Ordering::Less { b } else { a });
    }

    /// Exactly one of `a < b`, `a == b`, `a > b` holds, and `a <= b && b <= a`
    /// only for equal ballots.
    #[test]
    fn ballot_order_is_total_and_antisymmetric(a in ballot(), b in ballot()) {
        let relations = [a < b, a == b, a > b];
        prop_assert_eq!(relations.iter().filter(|&&r| r).count(), 1);
        prop_assert!(a <= b || b <= a, "total");
        if a <= b && b <= a {
            prop_assert_eq!(a, b);
        }
        prop_assert!(a <= a && a == a, "reflexive");
    }

    #[test]
    fn ballot_order_is_transitive(a in ballot(), b in ballot(), c in ballot()) {
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
        if a < b && b < c {
            prop_assert!(a < c);
        }
        // Sorting three ballots always yields a chain, whatever the input
        // order, which only a transitive order guarantees.
        let mut sorted = [a, b, c];
        sorted.sort();
        prop_assert!(sorted[0] <= sorted[1] && sorted[1] <= sorted[2] && sorted[0] <= sorted[2]);
    }

    #[test]
    fn ballot_zero_is_the_minimum(a in ballot()) {
        prop_assert!(Ballot::ZERO <= a);
        prop_assert_eq!(Ballot::ZERO < a, a != Ballot::ZERO);
        prop_assert_eq!(Ballot::ZERO, Ballot::default());
    }

    /// Sorting ballots and sorting their `(round, node)` pairs agree.
    #[test]
    fn ballot_sort_matches_tuple_sort(ballots in vec(ballot(), 0..32)) {
        let mut by_ballot = ballots.clone();
        by_ballot.sort();
        let mut by_tuple = ballots;
        by_tuple.sort_by_key(|b| (b.round, b.node));
        prop_assert_eq!(by_ballot, by_tuple);
    }
}

// ----- Round trips ----------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Encoding then decoding gives back exactly the message, consuming every
    /// byte, and re-encoding gives back exactly the bytes.
    #[test]
    fn message_round_trips(message in message()) {
        let bytes = encode(&message);
        let (decoded, rest): (Message<u64>, &[u8]) =
            postcard::take_from_bytes(&bytes).expect("a valid encoding decodes");
        prop_assert!(rest.is_empty(), "{} trailing bytes", rest.len());
        prop_assert_eq!(&decoded, &message);
        prop_assert_eq!(postcard::from_bytes::<Message<u64>>(&bytes).ok(), Some(message));
        prop_assert_eq!(encode(&decoded), bytes);
    }

    /// Entries and promised slots also round-trip on their own.
    #[test]
    fn parts_round_trip(entry in entry(), promised in promised_slot()) {
        let bytes = postcard::to_allocvec(&entry).unwrap();
        prop_assert_eq!(postcard::from_bytes::<Entry<u64>>(&bytes).unwrap(), entry);
        let bytes = postcard::to_allocvec(&promised).unwrap();
        prop_assert_eq!(postcard::from_bytes::<PromisedSlot<u64>>(&bytes).unwrap(), promised);
    }
}

/// The message strategy produces every payload variant, and both entry
/// variants inside `Accept`, `Promise` and `CatchUp`.
#[test]
fn strategy_covers_every_variant() {
    let mut runner = TestRunner::deterministic();
    let strategy = message();
    let mut payloads = [0usize; VARIANTS];
    let (mut noops, mut batches, mut empty_batches) = (0, 0, 0);
    for _ in 0..5000 {
        let message = strategy.new_tree(&mut runner).unwrap().current();
        payloads[variant_index(&message.payload)] += 1;
        let entries: Vec<&Entry<u64>> = match &message.payload {
            Payload::Accept { entry, .. } => vec![entry],
            Payload::Promise { accepted, .. } => accepted.iter().map(|s| &s.entry).collect(),
            Payload::CatchUp { entries, .. } => entries.iter().collect(),
            _ => Vec::new(),
        };
        for entry in entries {
            match entry {
                Entry::Noop => noops += 1,
                Entry::Batch(values) if values.is_empty() => empty_batches += 1,
                Entry::Batch(_) => batches += 1,
            }
        }
    }
    assert!(
        payloads.iter().all(|&count| count > 0),
        "some variant never generated: {payloads:?}"
    );
    assert!(noops > 0 && batches > 0 && empty_batches > 0);
}

/// One hand-written message of every variant, so a change to the encoding of
/// any of them shows up even if the strategy drifts.
#[test]
fn every_variant_round_trips_by_hand() {
    let b = Ballot::new(7, 2);
    let batch = Entry::Batch(Arc::from(vec![1u64, u64::MAX, 0]));
    let payloads = vec![
        Payload::Prepare {
            ballot: b,
            first_unchosen_slot: 3,
        },
        Payload::Promise {
            ballot: b,
            snapshot_slot: 1,
            accepted: vec![
                PromisedSlot {
                    slot: 2,
                    ballot: Ballot::new(6, 1),
                    entry: Entry::Noop,
                    chosen: true,
                },
                PromisedSlot {
                    slot: 3,
                    ballot: Ballot::new(6, 3),
                    entry: batch.clone(),
                    chosen: false,
                },
            ],
        },
        Payload::Accept {
            ballot: b,
            slot: 4,
            entry: batch.clone(),
            commit_through: 3,
        },
        Payload::Accepted { ballot: b, slot: 4 },
        Payload::Nack {
            ballot: Ballot::new(1, 1),
            promised: b,
        },
        Payload::Commit {
            ballot: b,
            commit_through: 4,
        },
        Payload::Heartbeat {
            ballot: b,
            commit_through: 4,
        },
        Payload::HeartbeatAck {
            ballot: b,
            commit_through: 3,
        },
        Payload::CatchUpRequest {
            first_missing_slot: 5,
        },
        Payload::CatchUp {
            first_slot: 5,
            entries: vec![Entry::Noop, batch, Entry::Batch(Arc::from(Vec::new()))],
        },
        Payload::InstallSnapshot {
            snapshot_slot: 9,
            data: Bytes::from_static(b"state"),
        },
    ];
    let mut seen = [false; VARIANTS];
    for payload in payloads {
        seen[variant_index(&payload)] = true;
        let message = Message {
            from: 2,
            to: 1,
            payload,
        };
        let bytes = encode(&message);
        assert_eq!(
            postcard::from_bytes::<Message<u64>>(&bytes).unwrap(),
            message
        );
    }
    assert!(seen.iter().all(|&s| s), "a variant is missing: {seen:?}");
}

// ----- Damaged and random input ---------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Every strict prefix of a valid encoding is an error: the encoding is
    /// self-delimiting, so a prefix that decoded would contradict the full
    /// decode consuming every byte. Either way, nothing panics.
    #[test]
    fn truncated_encodings_are_rejected(message in message()) {
        let bytes = encode(&message);
        for len in 0..bytes.len() {
            prop_assert!(
                postcard::from_bytes::<Message<u64>>(&bytes[..len]).is_err(),
                "prefix of {len}/{} bytes decoded",
                bytes.len()
            );
        }
    }

    /// Flipping bytes of a valid encoding yields an error or some message,
    /// never a panic; a message that does come out re-encodes consistently.
    #[test]
    fn corrupted_encodings_do_not_panic(
        message in message(),
        flips in vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
    ) {
        let mut bytes = encode(&message);
        for (at, mask) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        check_decoding_is_sane(&bytes)?;
    }

    /// Arbitrary bytes decode to an error or a message, never a panic.
    #[test]
    fn random_bytes_do_not_panic(bytes in vec(any::<u8>(), 0..256)) {
        check_decoding_is_sane(&bytes)?;
    }

    /// Random bytes behind a plausible header (small ids and each variant's
    /// tag) reach deeper into the decoder than fully random ones.
    #[test]
    fn random_bodies_do_not_panic(
        from in 0u8..4,
        to in 0u8..4,
        tag in 0u8..(VARIANTS as u8 + 1),
        body in vec(any::<u8>(), 0..128),
    ) {
        let mut bytes = vec![from, to, tag];
        bytes.extend(body);
        check_decoding_is_sane(&bytes)?;
    }
}

/// Decodes `bytes`; if a message comes out, its own encoding must decode to
/// it again.
fn check_decoding_is_sane(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(message) = postcard::from_bytes::<Message<u64>>(bytes) {
        let again = encode(&message);
        prop_assert_eq!(
            postcard::from_bytes::<Message<u64>>(&again).ok(),
            Some(message)
        );
    }
    Ok(())
}

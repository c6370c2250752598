//! Proof that the fault-schedule harness can find safety bugs: each canary is
//! a deliberately broken variant of the protocol (behind the `canaries`
//! feature), and each must be caught within the schedule budget CI runs.

mod cluster;

use cluster::{Cluster, REPLICA_PANICKED, run_catching, schedule_count};
use consensus::Canary;

/// A failing schedule: its seed, group size and finding.
type Caught = (u64, usize, String);

/// Runs schedules with `canary` on (3-member groups, then 5-member ones)
/// until one fails by the harness's own checkers. Returns the first failure
/// of any kind and the first caught by those checkers (not by a replica's
/// panic); the former is found on the way to the latter.
fn search(canary: Canary) -> (Option<Caught>, Option<Caught>) {
    let budget = schedule_count(5_000);
    let mut first = None;
    for members in [3, 5] {
        let base = 7_000_000_000 + members as u64 * 1_000_000;
        for seed in base..base + budget {
            let result = run_catching(seed, members, move || {
                Cluster::new(seed, members, false).with_canary(canary)
            });
            if let Err(failure) = result {
                let caught = (seed, members, failure.finding);
                if !caught.2.starts_with(REPLICA_PANICKED) {
                    return (first.or(Some(caught.clone())), Some(caught));
                }
                first.get_or_insert(caught);
            }
        }
    }
    (first, None)
}

/// The canary must be caught, and caught by the harness's own checkers too
/// (agreement, validity, liveness), not only by a replica's debug assertions,
/// which a release build would not have.
fn assert_caught(canary: Canary) {
    // Replica panics are findings; keep their default report off the output.
    // The hook is process-wide and tests run in parallel, so set it once.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let (by_anything, by_checkers) = search(canary);
    for (how, found) in [
        ("first", by_anything),
        ("by the harness's checkers", by_checkers),
    ] {
        match found {
            Some((seed, members, finding)) => {
                eprintln!("{canary:?} caught {how} at seed {seed} ({members} members): {finding}")
            }
            None => panic!("{canary:?} was not caught {how} within the schedule budget"),
        }
    }
}

/// A new leader that ignores the values acceptors report in their promises
/// can overwrite a chosen value ("Paxos Made Simple", §2.2 (b)).
#[test]
fn leader_ignoring_promised_values_is_caught() {
    assert_caught(Canary::IgnorePromisedValues);
}

/// An acceptor that accepts below its promise lets a deposed leader choose a
/// value the new leader never saw ("Paxos Made Simple", §2.2, P1a).
#[test]
fn acceptor_accepting_below_promise_is_caught() {
    assert_caught(Canary::AcceptBelowPromise);
}

/// Sending a promise or an acceptance before it is durable lets a crash
/// forget a vote that a quorum was counted with.
#[test]
fn sending_before_persisting_is_caught() {
    assert_caught(Canary::SendBeforePersist);
}

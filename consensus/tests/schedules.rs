//! Randomized fault schedules over 3- and 5-member groups (see
//! `cluster/mod.rs` for what a schedule does and checks).
//!
//! `SYNOD_SCHEDULES=N` changes how many schedules each size runs (CI: 25,000
//! each); `SYNOD_SEED=S SYNOD_MEMBERS=M SYNOD_TRACE=1` replays one schedule
//! with its event trace via the `replay` test.

mod cluster;

use cluster::{Failure, Stats, run_schedule, schedule_count};

const CI_SCHEDULES_PER_SIZE: u64 = 25_000;

/// Runs `seeds` for a group of `members`; panics with the first failure's
/// seed and replay command.
fn run_seeds(members: usize, seeds: impl Iterator<Item = u64>) -> Stats {
    let mut total = Stats::default();
    for seed in seeds {
        match run_schedule(seed, members, false) {
            Ok(stats) => {
                total.proposed += stats.proposed;
                total.chosen_values += stats.chosen_values;
                total.acknowledged += stats.acknowledged;
                total.crashes += stats.crashes;
                total.partitions += stats.partitions;
                total.snapshots_installed += stats.snapshots_installed;
                total.leader_changes += stats.leader_changes;
                total.slots += stats.slots;
            }
            Err(failure) => fail(failure),
        }
    }
    total
}

fn fail(failure: Failure) -> ! {
    panic!("{failure}");
}

/// Splits the schedule budget into interleaved shards so the test runner's
/// threads share the work.
fn shard(members: usize, shard: u64, shards: u64) -> Stats {
    let count = schedule_count(CI_SCHEDULES_PER_SIZE);
    // Sizes use disjoint seed ranges, so no schedule is run twice.
    let base = members as u64 * 1_000_000_000;
    let stats = run_seeds(
        members,
        (0..count).filter(|i| i % shards == shard).map(|i| base + i),
    );
    eprintln!("{members} members, shard {shard}/{shards}: {stats:?}");
    // The faults must actually have happened, or the schedules prove little.
    if count / shards >= 500 && members > 1 {
        assert!(
            stats.crashes > 0 && stats.partitions > 0,
            "no faults injected: {stats:?}"
        );
        assert!(
            stats.snapshots_installed > 0,
            "no snapshot was ever shipped: {stats:?}"
        );
        assert!(
            stats.chosen_values > 0 && stats.acknowledged > 0,
            "nothing was chosen: {stats:?}"
        );
    }
    stats
}

#[test]
fn three_members_shard_0() {
    shard(3, 0, 2);
}

#[test]
fn three_members_shard_1() {
    shard(3, 1, 2);
}

#[test]
fn five_members_shard_0() {
    shard(5, 0, 2);
}

#[test]
fn five_members_shard_1() {
    shard(5, 1, 2);
}

#[test]
fn single_member() {
    shard(1, 0, 1);
}

/// "No livelock of dueling proposers in a stable network": with no faults,
/// members that started together settle on one leader early, and nobody's
/// view of the leader changes afterwards.
#[test]
fn stable_network_settles_on_one_leader() {
    for members in [3, 5] {
        for seed in 0..300 {
            let cluster = cluster::Cluster::calm(seed, members, 1_500);
            let stats = match cluster::run_catching(seed, members, move || cluster) {
                Ok(stats) => stats,
                Err(failure) => fail(failure),
            };
            assert!(
                stats.last_leadership_change_tick < 200,
                "seed {seed}, {members} members: leadership still changing at tick {}",
                stats.last_leadership_change_tick
            );
        }
    }
}

/// Replays one schedule: `SYNOD_SEED=S SYNOD_MEMBERS=M SYNOD_TRACE=1`.
/// Without `SYNOD_SEED` it replays seed 0 of a 3-member group.
#[test]
fn replay() {
    let seed = std::env::var("SYNOD_SEED").map_or(0, |s| s.parse().expect("SYNOD_SEED"));
    let members = std::env::var("SYNOD_MEMBERS").map_or(3, |s| s.parse().expect("SYNOD_MEMBERS"));
    let trace = std::env::var_os("SYNOD_TRACE").is_some();
    let cluster = cluster::Cluster::new(seed, members, trace);
    eprintln!(
        "seed {seed}, {members} members, options {:#?}",
        cluster.options()
    );
    let make = move || {
        let cluster = cluster::Cluster::new(seed, members, trace);
        // SYNOD_CANARY=IgnorePromisedValues (or AcceptBelowPromise,
        // SendBeforePersist) replays a canary's schedule; needs
        // `--features canaries`.
        #[cfg(feature = "canaries")]
        let cluster = match std::env::var("SYNOD_CANARY").ok().as_deref() {
            None => cluster,
            Some("IgnorePromisedValues") => {
                cluster.with_canary(consensus::Canary::IgnorePromisedValues)
            }
            Some("AcceptBelowPromise") => {
                cluster.with_canary(consensus::Canary::AcceptBelowPromise)
            }
            Some("SendBeforePersist") => cluster.with_canary(consensus::Canary::SendBeforePersist),
            Some(other) => panic!("unknown SYNOD_CANARY {other}"),
        };
        cluster
    };
    match cluster::run_catching(seed, members, make) {
        Ok(stats) => eprintln!("passed: {stats:?}"),
        Err(failure) => {
            for line in &failure.trace {
                eprintln!("{line}");
            }
            fail(failure);
        }
    }
}

/// The same seed gives the same run, event for event.
#[test]
fn schedules_are_deterministic() {
    for seed in 0..20 {
        let trace = |_| {
            let cluster = cluster::Cluster::new(seed, 3, true);
            format!(
                "{:?}",
                cluster::run_catching(seed, 3, move || cluster).map_err(|f| f.finding)
            )
        };
        let first = trace(());
        assert_eq!(first, trace(()), "seed {seed} ran differently twice");
    }
}

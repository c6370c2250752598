//! The fault phase: at seeded random times, each fault kind this run has
//! on strikes, and later undoes itself.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use consensus::NodeId;
use rand::Rng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use tokio::time::Instant;

use crate::cluster::{Cluster, MemberState};
use crate::options::{Options, PartitionKind};
use crate::trace::Event;
use crate::world::World;

/// The kinds of fault, each with its own clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Partition,
    Crash,
    Pause,
    ClockJump,
}

/// A fault's undoing, due at a set time.
#[derive(Clone, Debug)]
enum Undo {
    HealNetwork,
    /// Flapping: the next change, and how many are left.
    Flap {
        left: u32,
    },
    Restart(Vec<NodeId>),
    Resume(NodeId),
}

/// A time in `[mean/2, 3*mean/2]`.
fn around(rng: &mut SmallRng, mean_ms: u64) -> Duration {
    Duration::from_millis(rng.random_range(mean_ms / 2..=mean_ms * 3 / 2))
}

/// Up to `max_ms`, at least a tenth of it.
fn up_to(rng: &mut SmallRng, max_ms: u64) -> Duration {
    Duration::from_millis(rng.random_range((max_ms / 10).max(1)..=max_ms))
}

/// Every link between `groups`, both ways.
fn between(groups: &[Vec<NodeId>]) -> BTreeSet<(NodeId, NodeId)> {
    let mut cut = BTreeSet::new();
    for (i, a) in groups.iter().enumerate() {
        for b in &groups[i + 1..] {
            for &x in a {
                for &y in b {
                    cut.insert((x, y));
                    cut.insert((y, x));
                }
            }
        }
    }
    cut
}

/// Two random groups, neither empty.
fn random_halves(rng: &mut SmallRng, ids: &[NodeId]) -> Vec<Vec<NodeId>> {
    let mut shuffled = ids.to_vec();
    shuffled.shuffle(rng);
    let split = rng.random_range(1..shuffled.len());
    let other = shuffled.split_off(split);
    vec![shuffled, other]
}

/// Runs the fault phase until `options.fault_phase_ms` has passed or a
/// checker has found a violation.
pub async fn run(cluster: &mut Cluster, options: &Options, world: &World, rng: &mut SmallRng) {
    let start = Instant::now();
    let end = start + Duration::from_millis(options.fault_phase_ms);
    cluster.set_link_faults(true);
    let mut next: BTreeMap<Kind, Instant> = BTreeMap::new();
    if let Some(p) = &options.partitions {
        next.insert(Kind::Partition, start + around(rng, p.every_ms));
    }
    if let Some(c) = &options.crashes {
        next.insert(Kind::Crash, start + around(rng, c.every_ms));
    }
    if let Some(p) = &options.pauses {
        next.insert(Kind::Pause, start + around(rng, p.every_ms));
    }
    if let Some(c) = &options.clock_jumps {
        next.insert(Kind::ClockJump, start + around(rng, c.every_ms));
    }
    // Keyed by due time and a sequence number, so equal times keep order.
    let mut undo: BTreeMap<(Instant, u64), Undo> = BTreeMap::new();
    let mut sequence = 0u64;
    let mut schedule = |undo: &mut BTreeMap<(Instant, u64), Undo>, at: Instant, what: Undo| {
        sequence += 1;
        undo.insert((at, sequence), what);
    };
    loop {
        if world.failed() {
            return;
        }
        let wake = next
            .values()
            .copied()
            .chain(undo.keys().next().map(|(at, _)| *at))
            .min()
            .unwrap_or(end)
            .min(end);
        tokio::time::sleep_until(wake).await;
        let now = Instant::now();
        if now >= end {
            return;
        }
        // Undo first, so that a member due to restart can be picked again.
        while let Some(entry) = undo.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Undo::HealNetwork => cluster.heal_network(),
                Undo::Flap { left } => {
                    if cluster.is_partitioned() {
                        cluster.heal_network();
                    } else {
                        let ids: Vec<NodeId> = cluster.members.keys().copied().collect();
                        let groups = random_halves(rng, &ids);
                        cluster.partition(PartitionKind::Flapping, between(&groups));
                    }
                    let after = Duration::from_millis(rng.random_range(50..=500));
                    let what = if left > 0 {
                        Undo::Flap { left: left - 1 }
                    } else {
                        Undo::HealNetwork
                    };
                    schedule(&mut undo, now + after, what);
                }
                Undo::Restart(ids) => {
                    for id in ids {
                        if cluster.members[&id].state == MemberState::Down {
                            cluster.restart(id);
                        }
                    }
                }
                Undo::Resume(id) => cluster.resume(id),
            }
        }
        let due: Vec<Kind> = next
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(kind, _)| *kind)
            .collect();
        for kind in due {
            match kind {
                Kind::Partition => {
                    let p = options.partitions.as_ref().expect("partitions on");
                    next.insert(kind, now + around(rng, p.every_ms));
                    // One partition at a time; the next waits its turn.
                    if cluster.is_partitioned()
                        || undo.values().any(|u| matches!(u, Undo::Flap { .. }))
                    {
                        continue;
                    }
                    let kind = p.kinds[rng.random_range(0..p.kinds.len())];
                    let lasting = up_to(rng, p.max_lasting_ms);
                    if let Some(what) = partition(cluster, world, rng, kind) {
                        schedule(&mut undo, now + lasting, what);
                    }
                }
                Kind::Crash => {
                    let c = options.crashes.as_ref().expect("crashes on");
                    next.insert(kind, now + around(rng, c.every_ms));
                    let down = up_to(rng, c.max_down_ms);
                    let alive: Vec<NodeId> = cluster
                        .members
                        .iter()
                        .filter(|(_, m)| m.state != MemberState::Down)
                        .map(|(&id, _)| id)
                        .collect();
                    if alive.is_empty() {
                        continue;
                    }
                    let victims = if rng.random_range(0..100) < c.power_failure_percent {
                        world.record(Event::PowerFailure);
                        alive
                    } else {
                        vec![alive[rng.random_range(0..alive.len())]]
                    };
                    for &id in &victims {
                        cluster.kill(id);
                    }
                    schedule(&mut undo, now + down, Undo::Restart(victims));
                }
                Kind::Pause => {
                    let p = options.pauses.as_ref().expect("pauses on");
                    next.insert(kind, now + around(rng, p.every_ms));
                    let up = cluster.in_state(MemberState::Up);
                    // The leader half the time: a paused leader is the
                    // interesting case (it wakes believing it still leads).
                    let leader = world.leader().filter(|id| up.contains(id));
                    let victim = match leader {
                        Some(leader) if rng.random_bool(0.5) => leader,
                        _ if up.is_empty() => continue,
                        _ => up[rng.random_range(0..up.len())],
                    };
                    cluster.pause(victim);
                    let lasting = up_to(rng, p.max_lasting_ms);
                    schedule(&mut undo, now + lasting, Undo::Resume(victim));
                }
                Kind::ClockJump => {
                    let c = options.clock_jumps.as_ref().expect("clock jumps on");
                    next.insert(kind, now + around(rng, c.every_ms));
                    let Some(leader) = world.leader() else {
                        continue;
                    };
                    // Jump from where the clock is now, staying within the
                    // largest offset; forward and backward alike.
                    let max = c.max_offset_ms as i64;
                    let offset = cluster.clock_offset(leader) + rng.random_range(-max..=max);
                    cluster.set_clock_offset(leader, offset.clamp(-max, max));
                    world.count(|s| s.clock_jumps += 1);
                }
            }
        }
    }
}

/// Forms a partition of `kind`; returns how it ends.
fn partition(
    cluster: &mut Cluster,
    world: &World,
    rng: &mut SmallRng,
    kind: PartitionKind,
) -> Option<Undo> {
    let ids: Vec<NodeId> = cluster.members.keys().copied().collect();
    let cut = match kind {
        PartitionKind::Halves => between(&random_halves(rng, &ids)),
        PartitionKind::LeaderIsolated => {
            let leader = world.leader()?;
            let rest: Vec<NodeId> = ids.iter().copied().filter(|&id| id != leader).collect();
            between(&[vec![leader], rest])
        }
        PartitionKind::OneWay => {
            // One member hears the others but is not heard, or the reverse.
            let one = ids[rng.random_range(0..ids.len())];
            let outgoing = rng.random_bool(0.5);
            ids.iter()
                .filter(|&&id| id != one)
                .map(|&id| if outgoing { (one, id) } else { (id, one) })
                .collect()
        }
        PartitionKind::Flapping => {
            let groups = random_halves(rng, &ids);
            cluster.partition(kind, between(&groups));
            return Some(Undo::Flap {
                left: rng.random_range(3..=12),
            });
        }
    };
    cluster.partition(kind, cut);
    Some(Undo::HealNetwork)
}

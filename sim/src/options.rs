//! What one seed decides: the cluster, which faults are on and how often
//! (swarm testing: each kind is on or off per seed, so some runs are calm
//! and others hostile), the timings and the workload.

use std::fmt;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// How the members are cut apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKind {
    /// Two random groups that cannot reach each other.
    Halves,
    /// The current leader alone on one side.
    LeaderIsolated,
    /// One member's messages go out but none come in, or the reverse.
    OneWay,
    /// Random halves that form and heal every few hundred milliseconds.
    Flapping,
}

/// Network partitions.
#[derive(Clone, Debug, Serialize)]
pub struct Partitions {
    /// The kinds drawn from.
    pub kinds: Vec<PartitionKind>,
    /// Mean time between partitions.
    pub every_ms: u64,
    /// The longest a partition lasts.
    pub max_lasting_ms: u64,
}

/// Kills of members, their unsynced writes lost, and restarts.
#[derive(Clone, Debug, Serialize)]
pub struct Crashes {
    /// Mean time between crashes.
    pub every_ms: u64,
    /// The longest a member stays down.
    pub max_down_ms: u64,
    /// Chance that a crash is a power failure of every member at once.
    pub power_failure_percent: u32,
}

/// Members that stop running for a while (a long GC pause, a stopped VM).
#[derive(Clone, Debug, Serialize)]
pub struct Pauses {
    /// Mean time between pauses.
    pub every_ms: u64,
    /// The longest a pause lasts.
    pub max_lasting_ms: u64,
}

/// Loss and delay of peer frames, injected in the member's transport.
#[derive(Clone, Debug, Serialize)]
pub struct LinkFaultRates {
    /// Frames lost, per thousand.
    pub drop_per_mille: u32,
    /// Frames held back, per thousand.
    pub delay_per_mille: u32,
    /// The longest a frame is held back.
    pub max_delay_ms: u64,
}

/// Jumps of the leader's wall clock, forward and backward.
#[derive(Clone, Debug, Serialize)]
pub struct ClockJumps {
    /// Mean time between jumps.
    pub every_ms: u64,
    /// The largest offset from the true time.
    pub max_offset_ms: u64,
}

/// What the clients do.
#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    /// Clients, each on its own simulated machine.
    pub clients: u32,
    /// Queues the jobs are spread over.
    pub queues: u32,
    /// The longest a client waits between operations.
    pub max_think_ms: u64,
    /// Chance that an operation is ADDJOB (otherwise GETJOB).
    pub add_percent: u32,
    /// Extra bytes in each job body.
    pub body_padding_bytes: usize,
    /// Each job's RETRY (its lease), drawn from 1 to this many seconds.
    pub max_retry_secs: u64,
    /// Chance that GETJOB uses NOHANG instead of a TIMEOUT.
    pub nohang_percent: u32,
    /// The longest GETJOB TIMEOUT.
    pub max_getjob_timeout_ms: u64,
    /// The most jobs one GETJOB asks for.
    pub max_count: u32,
    /// Chance that a delivered job is NACKed instead of acked.
    pub nack_percent: u32,
    /// Chance that a delivered job gets a WORKING before its ACKJOB.
    pub working_percent: u32,
    /// Chance that a delivered job is never acked (its lease runs out).
    pub forget_percent: u32,
    /// Chance that a client moves to another member before an operation.
    pub switch_member_percent: u32,
}

/// Everything one run is made of, drawn from its seed.
#[derive(Clone, Debug, Serialize)]
pub struct Options {
    /// The seed.
    pub seed: u64,
    /// The deliberately broken variant running, if any (not drawn).
    pub canary: Option<String>,
    /// Cluster size.
    pub members: usize,
    /// How long faults are injected.
    pub fault_phase_ms: u64,
    /// How long the healed cluster has to deliver every acknowledged job.
    pub liveness_budget_ms: u64,
    /// Simulated network latency range.
    pub net_latency_us: (u64, u64),
    /// Simulated fsync duration range.
    pub fsync_us: (u64, u64),
    /// Members snapshot once their log segment passes this size.
    pub snapshot_after_bytes: u64,
    /// How long a member lets a client's write wait to be applied.
    pub request_timeout_ms: u64,
    /// Network partitions, if on.
    pub partitions: Option<Partitions>,
    /// Crashes, if on.
    pub crashes: Option<Crashes>,
    /// Pauses, if on.
    pub pauses: Option<Pauses>,
    /// Frame loss and delay, if on.
    pub link_faults: Option<LinkFaultRates>,
    /// Clock jumps, if on.
    pub clock_jumps: Option<ClockJumps>,
    /// The clients' workload.
    pub workload: Workload,
}

fn pick<T: Copy>(rng: &mut SmallRng, choices: &[T]) -> T {
    choices[rng.random_range(0..choices.len())]
}

impl Options {
    /// The options of `seed`. `members` overrides the drawn cluster size.
    pub fn from_seed(seed: u64, members: Option<usize>) -> Options {
        // Salted so that the options do not mirror the runtime's own use
        // of the same seed.
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x0051_a0d5_eed0_0001);
        let drawn_members = pick(&mut rng, &[3, 3, 5]);
        let on = |rng: &mut SmallRng| rng.random_bool(0.5);
        let partitions = on(&mut rng).then(|| {
            let all = [
                PartitionKind::Halves,
                PartitionKind::LeaderIsolated,
                PartitionKind::OneWay,
                PartitionKind::Flapping,
            ];
            let mut kinds: Vec<PartitionKind> =
                all.into_iter().filter(|_| rng.random_bool(0.5)).collect();
            if kinds.is_empty() {
                kinds.push(pick(&mut rng, &all));
            }
            Partitions {
                kinds,
                every_ms: pick(&mut rng, &[500, 1_500, 4_000]),
                max_lasting_ms: pick(&mut rng, &[300, 1_500, 5_000]),
            }
        });
        let crashes = on(&mut rng).then(|| Crashes {
            every_ms: pick(&mut rng, &[700, 2_000, 6_000]),
            max_down_ms: pick(&mut rng, &[50, 1_000, 5_000]),
            power_failure_percent: pick(&mut rng, &[0, 10, 40]),
        });
        let pauses = on(&mut rng).then(|| Pauses {
            every_ms: pick(&mut rng, &[1_000, 4_000]),
            max_lasting_ms: pick(&mut rng, &[200, 1_000, 3_000]),
        });
        let link_faults = on(&mut rng).then(|| LinkFaultRates {
            drop_per_mille: pick(&mut rng, &[0, 5, 20, 100]),
            delay_per_mille: pick(&mut rng, &[0, 50, 200]),
            max_delay_ms: pick(&mut rng, &[20, 200, 2_000]),
        });
        let clock_jumps = on(&mut rng).then(|| ClockJumps {
            every_ms: pick(&mut rng, &[1_000, 5_000]),
            max_offset_ms: pick(&mut rng, &[500, 5_000, 60_000]),
        });
        let workload = Workload {
            clients: rng.random_range(1..=6),
            queues: rng.random_range(1..=3),
            max_think_ms: pick(&mut rng, &[2, 20, 100]),
            add_percent: pick(&mut rng, &[30, 50, 70]),
            body_padding_bytes: pick(&mut rng, &[0, 0, 200, 2_000]),
            max_retry_secs: pick(&mut rng, &[1, 2, 5]),
            nohang_percent: pick(&mut rng, &[0, 25, 75]),
            max_getjob_timeout_ms: pick(&mut rng, &[100, 1_000, 3_000]),
            max_count: pick(&mut rng, &[1, 3]),
            nack_percent: pick(&mut rng, &[0, 10]),
            working_percent: pick(&mut rng, &[0, 10]),
            forget_percent: pick(&mut rng, &[0, 10, 30]),
            switch_member_percent: pick(&mut rng, &[2, 20]),
        };
        // After a forward jump and the heal, log time stands still until
        // the true time catches up (it never goes back), and with it every
        // lease: the liveness phase allows for that.
        let frozen_ms = clock_jumps.as_ref().map_or(0, |c| c.max_offset_ms);
        Options {
            seed,
            canary: None,
            members: members.unwrap_or(drawn_members),
            fault_phase_ms: rng.random_range(20_000..=30_000),
            liveness_budget_ms: 60_000 + frozen_ms,
            net_latency_us: pick(&mut rng, &[(100, 1_000), (1_000, 10_000), (5_000, 30_000)]),
            fsync_us: pick(&mut rng, &[(50, 500), (500, 5_000), (2_000, 20_000)]),
            snapshot_after_bytes: pick(&mut rng, &[4 << 10, 32 << 10, 256 << 10, 64 << 20]),
            request_timeout_ms: pick(&mut rng, &[1_000, 3_000, 5_000]),
            partitions,
            crashes,
            pauses,
            link_faults,
            clock_jumps,
            workload,
        }
    }
}

impl fmt::Display for Options {
    /// One line: size, faults with their rates, timings, workload.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |ms: u64| ms as f64 / 1000.0;
        write!(f, "{} members", self.members)?;
        if let Some(canary) = &self.canary {
            write!(f, ", canary {canary}")?;
        }
        write!(f, "; faults:")?;
        let mut any = false;
        if let Some(p) = &self.partitions {
            let kinds: Vec<String> = p
                .kinds
                .iter()
                .map(|k| format!("{k:?}").to_lowercase())
                .collect();
            write!(
                f,
                " partitions[{}] every {}s up to {}s;",
                kinds.join(","),
                secs(p.every_ms),
                secs(p.max_lasting_ms)
            )?;
            any = true;
        }
        if let Some(c) = &self.crashes {
            write!(
                f,
                " crashes every {}s down up to {}s, {}% power failures;",
                secs(c.every_ms),
                secs(c.max_down_ms),
                c.power_failure_percent
            )?;
            any = true;
        }
        if let Some(p) = &self.pauses {
            write!(
                f,
                " pauses every {}s up to {}s;",
                secs(p.every_ms),
                secs(p.max_lasting_ms)
            )?;
            any = true;
        }
        if let Some(l) = &self.link_faults {
            write!(
                f,
                " frames lost {}‰, delayed {}‰ up to {}ms;",
                l.drop_per_mille, l.delay_per_mille, l.max_delay_ms
            )?;
            any = true;
        }
        if let Some(c) = &self.clock_jumps {
            write!(
                f,
                " leader clock jumps every {}s up to ±{}s;",
                secs(c.every_ms),
                secs(c.max_offset_ms)
            )?;
            any = true;
        }
        if !any {
            write!(f, " none;")?;
        }
        let w = &self.workload;
        write!(
            f,
            " faults for {}s; latency {}-{}µs, fsync {}-{}µs, snapshot after {} KiB, request timeout {}s; \
             {} clients on {} queues, {}% ADDJOB, RETRY 1-{}s, think ≤{}ms, body +{} B",
            secs(self.fault_phase_ms),
            self.net_latency_us.0,
            self.net_latency_us.1,
            self.fsync_us.0,
            self.fsync_us.1,
            self.snapshot_after_bytes >> 10,
            secs(self.request_timeout_ms),
            w.clients,
            w.queues,
            w.add_percent,
            w.max_retry_secs,
            w.max_think_ms,
            w.body_padding_bytes,
        )
    }
}

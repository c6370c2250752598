//! The job state machine's hot paths with a million jobs resident.
//!
//! The fixture holds `RESIDENT` jobs spread over four queues, each with a
//! 16-byte body (its own allocation, as a body decoded from the log has),
//! a one-day TTL and a 60 s RETRY, all queued. Every command is stamped with
//! the same time, so no lease, delay or TTL falls due while measuring.
//!
//! * `add`: ADDJOB into one of the queues (ids random, as a leader draws
//!   them). The commands are built before timing; afterwards (untimed) the
//!   new jobs are deleted again so the resident count stays put.
//! * `get_ack`: GETJOB COUNT 1 from one queue (round robin) and ACKJOB of the
//!   job it returned: one pair per iteration. Afterwards (untimed) as many
//!   jobs are added as were acked.
//! * `tick`: a tick entry with nothing due.
//!
//! Before the timed benchmarks, the memory report prints how much the
//! process's resident memory (VmRSS) grows per job, in this fresh process:
//! A) jobs with an empty body, which the machine stores without an
//! allocation, so the figure is the overhead beyond the body and the queue
//! name; B) jobs with a 16-byte body, which the machine keeps in an
//! allocation of its own; each queued, and again after every job was handed
//! out (active, with a lease timer).
//!
//! Run with `cargo bench -p queue --bench jobs`. Under `cargo test` (no
//! `--bench` argument) each benchmark runs once on 10,000 jobs and the memory
//! report is skipped; so it is under `--profile-time`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use queue::{AddJob, Command, JobId, Response, StateMachine};

/// Jobs resident while measuring.
const RESIDENT: u64 = 1_000_000;
const QUEUES: [&str; 4] = ["jobs.0", "jobs.1", "jobs.2", "jobs.3"];
const TTL_MS: u64 = 24 * 3600 * 1000;
const RETRY_MS: u64 = 60_000;
/// Every command's stamp.
const NOW_MS: u64 = 1_000;

/// A bijection on u64 (splitmix64's finaliser): distinct `n`, distinct ids.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Job `n`'s id: random-looking, as a leader would draw it.
fn job_id(n: u64) -> JobId {
    let mut random = [0u8; 18];
    random[..8].copy_from_slice(&mix(n).to_le_bytes());
    random[8..16].copy_from_slice(&mix(!n).to_le_bytes());
    JobId::new(1, random, TTL_MS, RETRY_MS)
}

/// A 16-byte body in an allocation of its own.
fn owned_body(n: u64) -> Bytes {
    let mut body = Vec::with_capacity(16);
    body.extend_from_slice(&n.to_le_bytes());
    body.extend_from_slice(&n.to_be_bytes());
    Bytes::from(body)
}

fn add_job(n: u64, body: Bytes) -> Command {
    Command::Add(AddJob {
        id: job_id(n),
        queue: QUEUES[(n % QUEUES.len() as u64) as usize].to_string(),
        body,
        ttl_ms: Some(TTL_MS),
        retry_ms: Some(RETRY_MS),
        delay_ms: None,
        max_len: None,
        delivery_limit: None,
    })
}

/// A state machine and the number of the next job to add.
struct Fixture {
    machine: StateMachine,
    next: u64,
}

impl Fixture {
    fn with_jobs(count: u64, body: impl Fn(u64) -> Bytes) -> Self {
        let mut fixture = Fixture {
            machine: StateMachine::new(),
            next: 0,
        };
        fixture.add(count, body);
        fixture
    }

    fn add(&mut self, count: u64, body: impl Fn(u64) -> Bytes) {
        for n in self.next..self.next + count {
            let response = self.machine.apply(NOW_MS, add_job(n, body(n)));
            debug_assert!(matches!(response, Response::Added(_)));
        }
        self.next += count;
    }
}

// ----- Memory ------------------------------------------------------------------

/// This process's resident set size, from /proc/self/status.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn per_job(from: u64, to: u64, jobs: u64) -> f64 {
    (to as f64 - from as f64) / jobs as f64
}

/// Hands out every queued job, in GETJOBs of 1,000 whose answers are
/// dropped.
fn deliver_all(machine: &mut StateMachine) {
    for queue in QUEUES {
        let get = Command::Get {
            queues: vec![queue.to_string()],
            count: 1_000,
        };
        while let Response::Jobs(jobs) = machine.apply(NOW_MS, get.clone()) {
            if jobs.is_empty() {
                break;
            }
        }
    }
}

/// Prints the memory each resident job takes, measured as growth of the
/// process's RSS (so it includes the allocator's own per-chunk overhead and
/// the B-trees' unused node slots).
fn memory_report(jobs: u64) {
    let Some(r0) = rss_bytes() else {
        println!("memory: /proc/self/status unreadable; skipped");
        return;
    };
    let rss = |before| rss_bytes().unwrap_or(before);
    // A: queued jobs with empty bodies: no body allocation, so this is the
    //    overhead beyond the body (the queue name is one `Arc<str>` per
    //    queue, shared by its jobs).
    let mut shared = Fixture::with_jobs(jobs, |_| Bytes::new());
    let r1 = rss(r0);
    // B: queued jobs with a 16-byte body allocated per job.
    let mut owned = Fixture::with_jobs(jobs, owned_body);
    let r2 = rss(r1);
    // A, then B, handed out: active, each with a lease timer besides its
    // expiry timer.
    deliver_all(&mut shared.machine);
    let r3 = rss(r2);
    deliver_all(&mut owned.machine);
    let r4 = rss(r3);
    assert_eq!(shared.machine.job_count() as u64, jobs);
    assert_eq!(owned.machine.job_count() as u64, jobs);

    let a_queued = per_job(r0, r1, jobs);
    let b_queued = per_job(r1, r2, jobs);
    println!("memory: {jobs} jobs, growth of RSS per job:");
    println!("memory:   A queued, empty body (overhead beyond body): {a_queued:6.1} B");
    println!(
        "memory:   A handed out (active, lease timer):           {:6.1} B",
        a_queued + per_job(r2, r3, jobs)
    );
    println!("memory:   B queued, own 16-byte body:                  {b_queued:6.1} B");
    println!(
        "memory:   B handed out:                                {:6.1} B",
        b_queued + per_job(r3, r4, jobs)
    );
}

// ----- Throughput --------------------------------------------------------------

fn benches(c: &mut Criterion, resident: u64) {
    let mut fixture = Fixture::with_jobs(resident, owned_body);
    let mut group = c.benchmark_group(format!("jobs/{resident}_resident"));
    group.throughput(Throughput::Elements(1));

    // At most this many commands are timed between untimed clean-ups, so
    // the resident count stays within half of `resident` of its target.
    let chunk = (resident / 2).max(1);

    group.bench_function("add", |b| {
        // The measurement loop needs a wall clock; the state machine does not
        // see it.
        #[allow(clippy::disallowed_methods)]
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let count = left.min(chunk);
                let first = fixture.next;
                let commands: Vec<Command> = (first..first + count)
                    .map(|n| add_job(n, owned_body(n)))
                    .collect();
                let start = Instant::now();
                for command in commands {
                    black_box(fixture.machine.apply(NOW_MS, command));
                }
                elapsed += start.elapsed();
                fixture.next += count;
                let ids = (first..first + count).map(job_id).collect();
                let deleted = fixture.machine.apply(NOW_MS, Command::Delete { ids });
                assert_eq!(deleted, Response::Count(count));
                left -= count;
            }
            elapsed
        });
    });

    group.bench_function("get_ack", |b| {
        #[allow(clippy::disallowed_methods)]
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let count = left.min(chunk);
                let gets: Vec<Command> = (0..count)
                    .map(|i| Command::Get {
                        queues: vec![QUEUES[(i % QUEUES.len() as u64) as usize].to_string()],
                        count: 1,
                    })
                    .collect();
                let start = Instant::now();
                for get in gets {
                    let Response::Jobs(jobs) = fixture.machine.apply(NOW_MS, get) else {
                        unreachable!("GETJOB answers jobs")
                    };
                    let ack = Command::Ack {
                        ids: vec![jobs[0].id],
                    };
                    black_box(fixture.machine.apply(NOW_MS, ack));
                }
                elapsed += start.elapsed();
                fixture.add(count, owned_body);
                left -= count;
            }
            elapsed
        });
    });

    group.bench_function("tick_nothing_due", |b| {
        b.iter(|| fixture.machine.apply(black_box(NOW_MS), Command::Tick));
    });
    group.finish();
    assert_eq!(fixture.machine.job_count() as u64, resident);
}

fn main() {
    let bench_mode = std::env::args().any(|arg| arg == "--bench");
    let resident = if bench_mode { RESIDENT } else { 10_000 };
    // `--profile-time` (for a profiler) measures only the benchmarks.
    let profiling = std::env::args().any(|arg| arg == "--profile-time");
    if bench_mode && !profiling {
        memory_report(RESIDENT);
    }
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .configure_from_args();
    benches(&mut criterion, resident);
    criterion.final_summary();
}

//! One seed's run: start the members and clients, inject faults, heal,
//! then demand liveness (a leader, service, every acknowledged job
//! delivered, every member caught up) within bounded simulated time, and
//! check the history.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use consensus::Slot;
use madsim::runtime::{Handle, Runtime};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

use crate::checkers::{self, TotalQueue, Verdict};
use crate::client::{self, Client};
use crate::cluster::{self, Cluster};
use crate::options::Options;
use crate::trace::{Event, Trace};
use crate::world::{Finding, Stats, World};

/// How long the members have to catch up with each other after the drain.
const CONVERGENCE_BUDGET: Duration = Duration::from_secs(20);

/// A deliberately broken variant to run (with the `canaries` feature).
#[cfg(feature = "canaries")]
pub type Canary = synod::hooks::NodeCanary;
/// A deliberately broken variant to run (none without the `canaries`
/// feature).
#[cfg(not(feature = "canaries"))]
pub type Canary = std::convert::Infallible;

/// What one run came to.
#[derive(Clone, Debug)]
pub struct Report {
    /// Its options.
    pub options: Options,
    /// Every violation found (empty: the run passed).
    pub findings: Vec<Finding>,
    /// Hash of the event trace: equal for two runs of one seed.
    pub trace_hash: u64,
    /// Events in the trace.
    pub events: u64,
    /// Counts of what happened.
    pub stats: Stats,
    /// The total-queue classification.
    pub total_queue: TotalQueue,
    /// Client requests the log held more than once.
    pub repeated_requests: u64,
    /// Frames the transport lost and delayed on purpose.
    pub frames_dropped_delayed: (u64, u64),
    /// Simulated time the run took.
    pub simulated: Duration,
}

impl Report {
    /// True if no checker found anything.
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

thread_local! {
    /// The last panic on this thread, as "message at location".
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Keeps panics quiet and remembers the last one per thread: a panic in a
/// member is a finding, reported with its seed.
fn catch_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        panic::set_hook(Box::new(|info| {
            let message = match info.payload().downcast_ref::<&str>() {
                Some(text) => text.to_string(),
                None => info
                    .payload()
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| "(no message)".to_string()),
            };
            let location = info
                .location()
                .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
            PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{location}")));
        }));
    });
}

/// Runs `options` in a new simulation on this thread, tracing to
/// `trace_path` if given. Use a fresh thread per run: madsim makes the
/// standard library's hash maps deterministic only on a thread's first
/// runtime.
pub fn run(options: Options, canary: Option<Canary>, trace_path: Option<&str>) -> Report {
    catch_panics();
    let trace = match trace_path {
        Some(path) => Trace::to_file(path, &options).unwrap_or_else(|error| {
            eprintln!("cannot write the trace to {path}: {error}");
            Trace::hash_only()
        }),
        None => Trace::hash_only(),
    };
    let seed = options.seed;
    let mut net = madsim::Config::default();
    let (low, high) = options.net_latency_us;
    net.net.send_latency = Duration::from_micros(low)..Duration::from_micros(high);
    let mut runtime = Runtime::with_seed_and_config(seed, net);
    // A safety net: a run that cannot end is a finding, not a hang.
    let limit = Duration::from_millis(options.fault_phase_ms + options.liveness_budget_ms)
        + CONVERGENCE_BUDGET
        + Duration::from_secs(60);
    runtime.set_time_limit(limit);
    // Kept outside the simulation so that a panic inside it still leaves
    // the findings and the trace.
    let kept: Arc<Mutex<Option<Arc<World>>>> = Arc::default();
    let outcome = {
        let options = options.clone();
        let kept = kept.clone();
        panic::catch_unwind(AssertUnwindSafe(move || {
            runtime.block_on(async move {
                let world = Arc::new(World::new(trace));
                *kept.lock().expect("one thread") = Some(world.clone());
                scenario(&options, world, canary).await
            })
        }))
    };
    let world = kept
        .lock()
        .expect("one thread")
        .take()
        .expect("the simulation started");
    let (verdict, frames_dropped_delayed, simulated) = match outcome {
        Ok(ended) => ended,
        Err(_) => {
            let message = PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "(unknown panic)".to_string());
            let mut state = world.lock();
            state.find_after("panic", message);
            let simulated = Duration::from_micros(state.last_us());
            (Verdict::default(), (0, 0), simulated)
        }
    };
    let repeated_requests = world.lock().repeats.requests;
    let (findings, stats, trace_hash, events) = world.finish();
    Report {
        options,
        findings,
        trace_hash,
        events,
        stats,
        total_queue: verdict.total_queue,
        repeated_requests,
        frames_dropped_delayed,
        simulated,
    }
}

/// The run itself, inside the simulation.
async fn scenario(
    options: &Options,
    world: Arc<World>,
    canary: Option<Canary>,
) -> (Verdict, (u64, u64), Duration) {
    let start = Instant::now();
    let handle = Handle::current();
    let mut rng = SmallRng::seed_from_u64(options.seed ^ 0xfa17_5eed);
    #[cfg(feature = "canaries")]
    let mut cluster = Cluster::start(
        &handle,
        options,
        world.clone(),
        cluster::shared_rng(options.seed, 1),
        canary,
    );
    #[cfg(not(feature = "canaries"))]
    let mut cluster = {
        let _ = canary;
        Cluster::start(
            &handle,
            options,
            world.clone(),
            cluster::shared_rng(options.seed, 1),
        )
    };
    let members = cluster.client_addrs();
    let request_timeout = Duration::from_millis(options.request_timeout_ms);

    world.record(Event::Phase { name: "faults" });
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for id in 1..=options.workload.clients {
        let machine = handle
            .create_node()
            .name(format!("client-{id}"))
            .ip(client_ip(id))
            .build();
        let client = Client::new(
            id,
            world.clone(),
            members.clone(),
            request_timeout,
            options.seed,
        );
        workers.push(machine.spawn(client::work(client, options.workload.clone(), stop.clone())));
    }
    crate::faults::run(&mut cluster, options, &world, &mut rng).await;

    world.record(Event::Phase { name: "heal" });
    stop.store(true, Ordering::Relaxed);
    cluster.heal();
    // Every worker's last request is bounded by its timeout.
    for worker in workers {
        if worker.await.is_err() {
            world.find("harness", "a client task failed".to_string());
        }
    }
    if !world.failed() {
        liveness(options, &world, &handle, &members, request_timeout).await;
    }
    if !world.failed() {
        convergence(options, &world).await;
    }
    world.record(Event::Phase { name: "end" });

    let clocks_true = options.clock_jumps.is_none();
    let history = world.lock().history.clone();
    let mut verdict = checkers::check(&history, clocks_true);
    for finding in std::mem::take(&mut verdict.findings) {
        world.find(finding.checker, finding.detail);
    }
    (verdict, cluster.link_fault_counts(), start.elapsed())
}

fn client_ip(id: u32) -> std::net::IpAddr {
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 1, id as u8))
}

/// The healed cluster must serve through every member and deliver every
/// acknowledged job within the budget.
async fn liveness(
    options: &Options,
    world: &Arc<World>,
    handle: &Handle,
    members: &[(consensus::NodeId, std::net::SocketAddr)],
    request_timeout: Duration,
) {
    world.record(Event::Phase { name: "liveness" });
    let deadline = Instant::now() + Duration::from_millis(options.liveness_budget_ms);
    let machine = handle
        .create_node()
        .name("drain")
        .ip(std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 2, 1)))
        .build();
    let client = Client::new(
        0,
        world.clone(),
        members.to_vec(),
        request_timeout,
        options.seed ^ 0xd7a1_4000,
    );
    let drained = machine
        .spawn(client::drain(client, options.workload.queues, deadline))
        .await;
    match drained {
        Ok(Ok(())) => {}
        Ok(Err(what)) => world.find(
            "liveness",
            format!("{what} (within {} s)", options.liveness_budget_ms / 1000),
        ),
        Err(_) => world.find("harness", "the drain task failed".to_string()),
    }
}

/// Every member must apply everything applied anywhere.
async fn convergence(options: &Options, world: &World) {
    world.record(Event::Phase {
        name: "convergence",
    });
    let deadline = Instant::now() + CONVERGENCE_BUDGET;
    let target: Slot = world.lock().stats.max_slot;
    loop {
        let behind: Vec<(u64, Slot)> = {
            let state = world.lock();
            (1..=options.members as u64)
                .map(|id| (id, state.applied.get(&id).copied().unwrap_or(0)))
                .filter(|&(_, slot)| slot < target)
                .collect()
        };
        if behind.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            world.find(
                "liveness",
                format!(
                    "members (id, applied slot) {behind:?} did not reach slot {target} within {} s",
                    CONVERGENCE_BUDGET.as_secs()
                ),
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

//! `synod bench`: load against a running cluster, measured the way a user
//! would see it: every ADDJOB waits for its job to be durable on a
//! majority, every dequeue is a GETJOB and an ACKJOB of what it got.
//!
//! Each connection keeps `pipeline` requests in flight, like
//! redis-benchmark's `-P`, so `connections × pipeline` requests are in
//! flight in all. Replies come back in order, so a connection is one task
//! with a queue of what it is waiting for: no channel or wakeup per
//! request, which keeps the load generator's own CPU small (it shares the
//! machine with the members). Latencies go into HDR histograms.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::{BenchArgs, Target, Workload};
use crate::resp::{self, ReplyParser, Value};
use crate::status;

/// Latencies are recorded in microseconds, up to a minute.
const HIGHEST_LATENCY_US: u64 = 60_000_000;

/// What one connection measured.
struct Measured {
    enqueue: Histogram<u64>,
    /// From a GETJOB's send to its ACKJOB's reply: one round, any number
    /// of jobs.
    dequeue_round: Histogram<u64>,
    /// The first few error replies, for the report.
    errors: Vec<String>,
}

impl Measured {
    fn new() -> Measured {
        let histogram = || {
            Histogram::new_with_bounds(1, HIGHEST_LATENCY_US, 3).expect("valid histogram bounds")
        };
        Measured {
            enqueue: histogram(),
            dequeue_round: histogram(),
            errors: Vec::new(),
        }
    }

    fn merge(&mut self, other: &Measured) {
        // Both have the same bounds, so adding cannot fail.
        let _ = self.enqueue.add(&other.enqueue);
        let _ = self.dequeue_round.add(&other.dequeue_round);
        for error in &other.errors {
            if self.errors.len() < MAX_ERRORS_KEPT && !self.errors.contains(error) {
                self.errors.push(error.clone());
            }
        }
    }
}

/// At most this many distinct error replies are shown.
const MAX_ERRORS_KEPT: usize = 5;

/// Counts every connection bumps, for the progress line.
#[derive(Default)]
struct Counters {
    enqueued: AtomicU64,
    dequeued: AtomicU64,
    errors: AtomicU64,
    /// ADDJOBs sent in a phase with a limit (replies are counted in
    /// `enqueued`; requests in flight must not overshoot the limit).
    claimed: AtomicU64,
    /// Set when the phase's time is up: connections send nothing new.
    stop: AtomicBool,
}

/// What a connection does in one phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// ADDJOB until `limit` jobs are in (or time is up).
    Enqueue,
    /// GETJOB NOHANG + ACKJOB until the queue is empty (or time is up).
    Dequeue,
    /// Each lane alternates an ADDJOB with a GETJOB + ACKJOB.
    Mixed,
}

/// A request a connection waits for a reply to.
enum Waiting {
    Add { sent: Instant },
    Get { sent: Instant },
    Ack { round_started: Instant, jobs: u64 },
}

/// What every connection of a phase shares.
struct Plan {
    phase: Phase,
    queue: String,
    body: Bytes,
    batch: u32,
    pipeline: usize,
    /// Stop adding once this many jobs are in, in all (`Enqueue` only).
    limit: Option<u64>,
    counters: Arc<Counters>,
}

impl Plan {
    /// Claims one more ADDJOB under the limit; false once it is reached.
    fn claim_add(&self) -> bool {
        if self.counters.stop.load(Ordering::Relaxed) {
            return false;
        }
        match self.limit {
            None => true,
            Some(limit) => self.counters.claimed.fetch_add(1, Ordering::Relaxed) < limit,
        }
    }
}

/// Runs `synod bench`; returns the exit code.
pub async fn run(args: BenchArgs) -> i32 {
    if args.connections == 0 || args.pipeline == 0 {
        eprintln!("synod bench: --connections and --pipeline must be at least 1");
        return 2;
    }
    let addrs = match choose_members(&args).await {
        Ok(addrs) => addrs,
        Err(error) => {
            eprintln!("synod bench: {error}");
            return 1;
        }
    };
    let queue = args
        .queue
        .clone()
        .unwrap_or_else(|| format!("bench-{}", std::process::id()));
    let body = Bytes::from(vec![b'x'; args.body_size]);
    let in_flight = args.connections * args.pipeline;
    let against: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let setup = format!(
        "{} connections x {} pipelined = {in_flight} in flight, body {} B, queue {queue}, against {}{}",
        args.connections,
        args.pipeline,
        args.body_size,
        against.join(","),
        if args.target == Target::Leader {
            " (the leader)"
        } else {
            ""
        },
    );
    eprintln!("synod bench: {setup}");
    let duration = Duration::from_secs_f64(args.duration_secs);
    let plan = |phase, limit| Plan {
        phase,
        queue: queue.clone(),
        body: body.clone(),
        batch: args.batch,
        pipeline: args.pipeline,
        limit,
        counters: Arc::new(Counters::default()),
    };
    let mut results = Vec::new();
    match args.workload {
        Workload::Enqueue => {
            let outcome = run_phase(&addrs, &args, plan(Phase::Enqueue, None), duration).await;
            results.push(("enqueue", outcome));
        }
        Workload::Dequeue => {
            // Filling is not timed out: the dequeue phase needs the jobs.
            let fill = plan(Phase::Enqueue, Some(args.jobs));
            let outcome = run_phase(&addrs, &args, fill, Duration::MAX).await;
            results.push(("fill", outcome));
            let outcome = run_phase(&addrs, &args, plan(Phase::Dequeue, None), duration).await;
            results.push(("dequeue+ack", outcome));
        }
        Workload::Mixed => {
            let outcome = run_phase(&addrs, &args, plan(Phase::Mixed, None), duration).await;
            results.push(("mixed", outcome));
        }
    }
    let mut failed = false;
    for (name, outcome) in &results {
        match outcome {
            Ok(report) => {
                if args.json {
                    println!("{}", report.json(name, &args, in_flight));
                } else {
                    println!("{}", report.text(name));
                }
                failed |= report.errors > 0;
            }
            Err(error) => {
                eprintln!("synod bench: {name}: {error}");
                failed = true;
            }
        }
    }
    i32::from(failed)
}

/// The members to load: the leader alone, or all of them.
async fn choose_members(args: &BenchArgs) -> Result<Vec<SocketAddr>, String> {
    if args.target == Target::All {
        return Ok(args.addrs.clone());
    }
    let mut reasons = Vec::new();
    for &addr in &args.addrs {
        match status::request(addr, &["INFO"]).await {
            Ok(Value::Bulk(text)) => {
                let fields = status::info_fields(&String::from_utf8_lossy(&text));
                if fields.iter().any(|(k, v)| k == "role" && v == "leader") {
                    return Ok(vec![addr]);
                }
                reasons.push(format!("{addr} follows"));
            }
            Ok(other) => reasons.push(format!("{addr} answered INFO with {other:?}")),
            Err(error) => reasons.push(format!("{addr}: {error}")),
        }
    }
    Err(format!(
        "no leader among the members given ({}); is the cluster up? (`--target all` loads every member)",
        reasons.join("; ")
    ))
}

/// What one phase measured.
struct Report {
    elapsed: Duration,
    enqueued: u64,
    dequeued: u64,
    errors: u64,
    measured: Measured,
}

impl Report {
    fn text(&self, name: &str) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut lines = Vec::new();
        let quantiles = |h: &Histogram<u64>| {
            let [p50, p99, p999, max] = quantiles_ms(h);
            format!("p50 {p50} ms, p99 {p99} ms, p999 {p999} ms, max {max} ms")
        };
        if self.enqueued > 0 {
            lines.push(format!(
                "{name:<12} {:>9.0} ADDJOB/s ({} jobs in {:.1} s); latency {}",
                self.enqueued as f64 / secs,
                self.enqueued,
                secs,
                quantiles(&self.measured.enqueue),
            ));
        }
        if self.dequeued > 0 {
            lines.push(format!(
                "{name:<12} {:>9.0} jobs/s dequeued and acked ({} jobs in {:.1} s); GETJOB+ACKJOB round {}",
                self.dequeued as f64 / secs,
                self.dequeued,
                secs,
                quantiles(&self.measured.dequeue_round),
            ));
        }
        if lines.is_empty() {
            lines.push(format!("{name:<12} nothing done in {secs:.1} s"));
        }
        if self.errors > 0 {
            lines.push(format!(
                "{name:<12} {} error replies, e.g. {}",
                self.errors,
                self.measured.errors.join(" | ")
            ));
        }
        lines.join("\n")
    }

    /// One JSON object per phase, for scripts (`--json`).
    fn json(&self, name: &str, args: &BenchArgs, in_flight: usize) -> String {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let quantiles = |h: &Histogram<u64>| {
            let [p50, p99, p999, max] = quantiles_ms(h);
            format!("{{\"p50_ms\":{p50},\"p99_ms\":{p99},\"p999_ms\":{p999},\"max_ms\":{max}}}")
        };
        format!(
            "{{\"phase\":\"{name}\",\"connections\":{},\"pipeline\":{},\"in_flight\":{in_flight},\
             \"body_bytes\":{},\"seconds\":{secs:.3},\"enqueued\":{},\"enqueue_per_sec\":{:.0},\
             \"enqueue_latency\":{},\"dequeued\":{},\"dequeue_per_sec\":{:.0},\
             \"dequeue_round_latency\":{},\"errors\":{}}}",
            args.connections,
            args.pipeline,
            args.body_size,
            self.enqueued,
            self.enqueued as f64 / secs,
            quantiles(&self.measured.enqueue),
            self.dequeued,
            self.dequeued as f64 / secs,
            quantiles(&self.measured.dequeue_round),
            self.errors,
        )
    }
}

/// p50, p99, p999 and max of `histogram`, in milliseconds.
fn quantiles_ms(histogram: &Histogram<u64>) -> [String; 4] {
    [
        ms(histogram.value_at_quantile(0.5)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.value_at_quantile(0.999)),
        ms(histogram.max()),
    ]
}

/// Microseconds as milliseconds, three decimals.
fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// Runs one phase on every connection until it is done or `duration`
/// has passed, with a progress line each second.
async fn run_phase(
    addrs: &[SocketAddr],
    args: &BenchArgs,
    plan: Plan,
    duration: Duration,
) -> Result<Report, String> {
    let counters = plan.counters.clone();
    let plan = Arc::new(plan);
    let mut connections = Vec::new();
    for i in 0..args.connections {
        let addr = addrs[i % addrs.len()];
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        connections.push(tokio::spawn(drive(stream, plan.clone())));
    }
    let started = Instant::now();
    let progress = tokio::spawn(progress(plan.phase, counters.clone(), started));
    let deadline = started.checked_add(duration);
    let all = async {
        let mut measured = Measured::new();
        let mut failure = None;
        for connection in connections {
            match connection.await {
                Ok(Ok(m)) => measured.merge(&m),
                Ok(Err(error)) => failure = Some(error),
                Err(error) => failure = Some(format!("a connection's task failed: {error}")),
            }
        }
        (measured, failure)
    };
    tokio::pin!(all);
    let (measured, failure) = match deadline {
        Some(deadline) => tokio::select! {
            done = &mut all => done,
            _ = tokio::time::sleep_until(deadline.into()) => {
                counters.stop.store(true, Ordering::Relaxed);
                all.await
            }
        },
        None => all.await,
    };
    let elapsed = started.elapsed();
    progress.abort();
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(Report {
        elapsed,
        enqueued: counters.enqueued.load(Ordering::Relaxed),
        dequeued: counters.dequeued.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        measured,
    })
}

/// Prints rates each second: on one rewritten line on a terminal, a line
/// per second otherwise.
async fn progress(phase: Phase, counters: Arc<Counters>, started: Instant) {
    let terminal = std::io::stderr().is_terminal();
    let mut last = (0, 0);
    let mut interval = tokio::time::interval(Duration::from_secs(1));
    interval.tick().await;
    loop {
        interval.tick().await;
        let enqueued = counters.enqueued.load(Ordering::Relaxed);
        let dequeued = counters.dequeued.load(Ordering::Relaxed);
        let errors = counters.errors.load(Ordering::Relaxed);
        let line = format!(
            "{:>4.0} s  {phase:?}: enqueue {:>8}/s, dequeue {:>8}/s, {enqueued} in, {dequeued} out, {errors} errors",
            started.elapsed().as_secs_f64(),
            enqueued - last.0,
            dequeued - last.1,
        );
        last = (enqueued, dequeued);
        if terminal {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
    }
}

/// One connection: keeps `pipeline` requests in flight until the phase
/// ends, then waits for the replies it is owed.
async fn drive(mut stream: TcpStream, plan: Arc<Plan>) -> Result<Measured, String> {
    let mut measured = Measured::new();
    let mut waiting: VecDeque<Waiting> = VecDeque::with_capacity(plan.pipeline * 2);
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut parser = ReplyParser::new();
    // Each lane starts with what its phase does first.
    for _ in 0..plan.pipeline {
        start_lane(&plan, &mut waiting, &mut out, Instant::now());
    }
    let counters = &plan.counters;
    while !waiting.is_empty() {
        if !out.is_empty() {
            stream
                .write_all(&out)
                .await
                .map_err(|e| format!("cannot send: {e}"))?;
            out.clear();
        }
        let read = stream
            .read_buf(&mut input)
            .await
            .map_err(|e| format!("cannot read: {e}"))?;
        if read == 0 {
            return Err("the member closed the connection".to_string());
        }
        let now = Instant::now();
        while let Some(reply) = parser
            .parse(&mut input)
            .map_err(|e| format!("bad reply: {e}"))?
        {
            let Some(was) = waiting.pop_front() else {
                return Err("a reply nobody asked for".to_string());
            };
            if let Value::Error(error) = &reply {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                if measured.errors.len() < MAX_ERRORS_KEPT && !measured.errors.contains(error) {
                    measured.errors.push(error.clone());
                }
                // The lane goes on with its next request.
                next_after_add(&plan, &mut waiting, &mut out, now);
                continue;
            }
            match was {
                Waiting::Add { sent } => {
                    record(&mut measured.enqueue, now - sent);
                    counters.enqueued.fetch_add(1, Ordering::Relaxed);
                    next_after_add(&plan, &mut waiting, &mut out, now);
                }
                Waiting::Get { sent } => {
                    let ids = job_ids(&reply);
                    if ids.is_empty() {
                        // Empty: the dequeue phase is over for this lane;
                        // a mixed lane adds again.
                        if plan.phase == Phase::Mixed {
                            send_add(&plan, &mut waiting, &mut out, now);
                        }
                        continue;
                    }
                    let jobs = ids.len() as u64;
                    let mut args: Vec<&[u8]> = Vec::with_capacity(ids.len() + 1);
                    args.push(b"ACKJOB");
                    args.extend(ids.iter().map(|id| id.as_ref()));
                    resp::encode_request(&args, &mut out);
                    waiting.push_back(Waiting::Ack {
                        round_started: sent,
                        jobs,
                    });
                }
                Waiting::Ack {
                    round_started,
                    jobs,
                } => {
                    record(&mut measured.dequeue_round, now - round_started);
                    counters.dequeued.fetch_add(jobs, Ordering::Relaxed);
                    if !counters.stop.load(Ordering::Relaxed) {
                        match plan.phase {
                            Phase::Mixed => send_add(&plan, &mut waiting, &mut out, now),
                            _ => send_get(&plan, &mut waiting, &mut out, now),
                        }
                    }
                }
            }
        }
    }
    Ok(measured)
}

fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let us = (latency.as_micros() as u64).clamp(1, HIGHEST_LATENCY_US);
    // Within bounds by the clamp.
    let _ = histogram.record(us);
}

fn start_lane(plan: &Plan, waiting: &mut VecDeque<Waiting>, out: &mut BytesMut, now: Instant) {
    match plan.phase {
        Phase::Enqueue | Phase::Mixed => send_add(plan, waiting, out, now),
        Phase::Dequeue => send_get(plan, waiting, out, now),
    }
}

/// After an ADDJOB (or an error) a lane adds again, or in a mixed phase
/// takes a job; nothing once the phase is over.
fn next_after_add(plan: &Plan, waiting: &mut VecDeque<Waiting>, out: &mut BytesMut, now: Instant) {
    if plan.counters.stop.load(Ordering::Relaxed) {
        return;
    }
    match plan.phase {
        Phase::Enqueue => send_add(plan, waiting, out, now),
        Phase::Dequeue | Phase::Mixed => send_get(plan, waiting, out, now),
    }
}

fn send_add(plan: &Plan, waiting: &mut VecDeque<Waiting>, out: &mut BytesMut, now: Instant) {
    if !plan.claim_add() {
        return;
    }
    let args: [&[u8]; 4] = [b"ADDJOB", plan.queue.as_bytes(), &plan.body, b"0"];
    resp::encode_request(&args, out);
    waiting.push_back(Waiting::Add { sent: now });
}

fn send_get(plan: &Plan, waiting: &mut VecDeque<Waiting>, out: &mut BytesMut, now: Instant) {
    if plan.counters.stop.load(Ordering::Relaxed) {
        return;
    }
    let count = plan.batch.to_string();
    let args: [&[u8]; 6] = [
        b"GETJOB",
        b"NOHANG",
        b"COUNT",
        count.as_bytes(),
        b"FROM",
        plan.queue.as_bytes(),
    ];
    resp::encode_request(&args, out);
    waiting.push_back(Waiting::Get { sent: now });
}

/// The job ids in a GETJOB reply (`[[queue, id, body], ...]`; null when
/// there are none).
fn job_ids(reply: &Value) -> Vec<Bytes> {
    let Value::Array(jobs) = reply else {
        return Vec::new();
    };
    jobs.iter()
        .filter_map(|job| match job {
            Value::Array(fields) => match fields.get(1) {
                Some(Value::Bulk(id)) => Some(id.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn job_ids_are_the_second_field_of_each_job() {
        let job = |id: &'static str| {
            Value::Array(vec![
                Value::Bulk(Bytes::from_static(b"q")),
                Value::Bulk(Bytes::from_static(id.as_bytes())),
                Value::Bulk(Bytes::from_static(b"body")),
            ])
        };
        let reply = Value::Array(vec![job("D-1"), job("D-2")]);
        assert_eq!(job_ids(&reply), ["D-1", "D-2"]);
        assert!(job_ids(&Value::NullArray).is_empty());
        assert!(job_ids(&Value::Null).is_empty());
    }

    #[test]
    fn json_report_holds_rates_and_quantiles() {
        let mut measured = Measured::new();
        record(&mut measured.enqueue, Duration::from_micros(1500));
        let report = Report {
            elapsed: Duration::from_secs(2),
            enqueued: 1000,
            dequeued: 0,
            errors: 0,
            measured,
        };
        let args = match crate::cli::Cli::parse_from(["synod", "bench"]).command {
            crate::cli::CliCommand::Bench(args) => args,
            other => panic!("parsed as {other:?}"),
        };
        let json = report.json("enqueue", &args, 16);
        assert!(json.contains("\"enqueue_per_sec\":500,"), "{json}");
        assert!(json.contains("\"p50_ms\":1.50"), "{json}");
        assert!(json.contains("\"in_flight\":16"), "{json}");
    }
}

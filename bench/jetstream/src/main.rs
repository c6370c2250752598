//! `jetstream-bench`: load against a NATS JetStream cluster, measured the
//! way `synod bench` measures Synod, so that `bench/compare` can put the two
//! side by side.
//!
//! * `setup` (re)creates a file-backed, three-replica work-queue stream and
//!   a durable pull consumer on it, waits until both followers are current,
//!   warms up the publish and consume paths, and prints the URL of the
//!   member that leads the stream (the client then talks to it, as
//!   `synod bench` talks to Synod's leader).
//! * `publish` is the counterpart of `synod bench -w enqueue`: every
//!   publish waits for the stream's acknowledgement (the PubAck, sent once
//!   the message is stored by a majority).
//! * `consume` is the counterpart of `synod bench -w dequeue`: a round is a
//!   fetch of up to `--batch` messages, then an acknowledgement of each, and
//!   ends when the server has confirmed every one of those acks (as a round
//!   of GETJOB + ACKJOB ends with ACKJOB's reply).
//!
//! Load has the same shape as `synod bench`: `--connections` NATS
//! connections, each with `--pipeline` lanes, and a lane has one request
//! (or one fetch round) outstanding at a time, so `connections × pipeline`
//! are in flight. Each phase stops after `--duration` seconds or `--jobs`
//! messages, whichever comes first. The report is `synod bench --json`'s
//! object, field for field, so one parser reads both.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::PullConsumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use hdrhistogram::Histogram;

/// The stream every phase uses; `setup` deletes and recreates it.
const STREAM: &str = "BENCH";
/// The one subject the stream holds.
const SUBJECT: &str = "bench.jobs";
/// The durable consumer every `consume` lane fetches from.
const CONSUMER: &str = "workers";
/// Latencies are recorded in microseconds, up to a minute (as `synod bench`).
const HIGHEST_LATENCY_US: u64 = 60_000_000;
/// At most this many distinct errors are reported.
const MAX_ERRORS_KEPT: usize = 5;
/// A consume round not done by then (a lost reply) fails the lane.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages published and consumed by `setup` before any phase is measured.
const WARM_UP_MESSAGES: usize = 200;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "\
usage:
  jetstream-bench setup   --servers n1=nats://HOST:PORT,n2=...,n3=...
  jetstream-bench publish --url nats://HOST:PORT [options]
  jetstream-bench consume --url nats://HOST:PORT [options]
options (defaults as `synod bench`):
  -c, --connections N   NATS connections (16)
  -P, --pipeline N      lanes per connection, each with one request in flight (16)
  -d, --body-size N     message body in bytes (100)
  -t, --duration S      seconds to run (10)
  -n, --jobs N          stop after this many messages (no limit)
  -b, --batch N         messages per fetch (consume; 64)
      --plain-ack       consume: ack without waiting for the server's confirmation";

/// What the command line asked for.
struct Options {
    command: String,
    servers: Vec<(String, String)>,
    url: String,
    connections: usize,
    pipeline: usize,
    body_size: usize,
    duration: Duration,
    jobs: Option<u64>,
    batch: usize,
    plain_ack: bool,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
        let command = args.next().ok_or("no command given")?;
        let mut options = Options {
            command,
            servers: Vec::new(),
            url: String::new(),
            connections: 16,
            pipeline: 16,
            body_size: 100,
            duration: Duration::from_secs(10),
            jobs: None,
            batch: 64,
            plain_ack: false,
        };
        while let Some(flag) = args.next() {
            if flag == "--plain-ack" {
                options.plain_ack = true;
                continue;
            }
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag}: `{value}` is not a whole number"))
            };
            match flag.as_str() {
                "--servers" => {
                    for pair in value.split(',') {
                        let (name, url) = pair
                            .split_once('=')
                            .ok_or_else(|| format!("--servers: `{pair}` is not NAME=URL"))?;
                        options.servers.push((name.to_string(), url.to_string()));
                    }
                }
                "--url" => options.url = value.clone(),
                "-c" | "--connections" => options.connections = number()? as usize,
                "-P" | "--pipeline" => options.pipeline = number()? as usize,
                "-d" | "--body-size" => options.body_size = number()? as usize,
                "-n" | "--jobs" => options.jobs = Some(number()?),
                "-b" | "--batch" => options.batch = number()? as usize,
                "-t" | "--duration" => {
                    let secs: f64 = value
                        .parse()
                        .map_err(|_| format!("{flag}: `{value}` is not a number of seconds"))?;
                    options.duration = Duration::from_secs_f64(secs);
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if options.connections == 0 || options.pipeline == 0 || options.batch == 0 {
            return Err("--connections, --pipeline and --batch must be at least 1".to_string());
        }
        Ok(options)
    }
}

// A current-thread runtime, like `synod bench`'s: the client shares two
// cores with three servers, so it must not take more CPU than it needs.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("jetstream-bench: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let outcome = match options.command.as_str() {
        "setup" => setup(&options).await,
        "publish" | "consume" if options.url.is_empty() => Err("--url is required".into()),
        "publish" => run_phase(&options, Phase::Publish).await,
        "consume" => run_phase(&options, Phase::Consume).await,
        other => {
            eprintln!("jetstream-bench: unknown command `{other}`\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        // The report is out, but some requests failed.
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("jetstream-bench {}: {error}", options.command);
            ExitCode::FAILURE
        }
    }
}

/// Creates the stream and consumer afresh and prints the stream leader's URL.
async fn setup(options: &Options) -> Result<bool, Error> {
    let (_, first) = options.servers.first().ok_or("--servers is required")?;
    let js = jetstream::new(async_nats::connect(first.as_str()).await?);
    // A stream left by an earlier run would hold its messages and acks.
    let _ = js.delete_stream(STREAM).await;
    let mut stream = js
        .create_stream(stream::Config {
            name: STREAM.to_string(),
            subjects: vec![SUBJECT.to_string()],
            // A message is removed once acknowledged, as a job is by ACKJOB.
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: 3,
            ..Default::default()
        })
        .await?;
    // Measuring before both followers have caught up would measure a
    // stream that acknowledges with one replica missing.
    let started = Instant::now();
    let leader = loop {
        let info = stream.info().await?;
        if let Some(cluster) = &info.cluster {
            let current = cluster.replicas.len() == 2 && cluster.replicas.iter().all(|r| r.current);
            if let (Some(leader), true) = (&cluster.leader, current) {
                break leader.clone();
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err("the stream has no leader with two current followers after 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let consumer: PullConsumer = stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some(CONSUMER.to_string()),
            ack_policy: AckPolicy::Explicit,
            // Above the most messages a phase holds unacknowledged at once,
            // so the server never holds a fetch back for this reason.
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await?;
    let consumer_leader = consumer
        .cached_info()
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .unwrap_or_default();
    let url = options
        .servers
        .iter()
        .find(|(name, _)| *name == leader)
        .map(|(_, url)| url.clone())
        .ok_or_else(|| format!("the stream leader `{leader}` is not among --servers"))?;
    // Warm up on the leader: the first requests pay for connection set-up
    // and the servers' first allocations, which no phase should measure.
    let js = jetstream::new(async_nats::connect(url.as_str()).await?);
    let body = Bytes::from(vec![b'x'; 100]);
    for _ in 0..WARM_UP_MESSAGES {
        js.publish(SUBJECT, body.clone()).await?.await?;
    }
    let consumer: PullConsumer = js.get_consumer_from_stream(CONSUMER, STREAM).await?;
    let mut left = WARM_UP_MESSAGES;
    while left > 0 {
        if started.elapsed() > Duration::from_secs(60) {
            return Err("the warm-up messages did not come back within 60 s".into());
        }
        let mut batch = consumer.fetch().max_messages(left).messages().await?;
        while let Some(message) = batch.next().await {
            message?.double_ack().await?;
            left -= 1;
        }
    }
    eprintln!(
        "jetstream-bench: stream {STREAM} (file, 3 replicas, work queue) led by {leader}; \
         consumer {CONSUMER} led by {consumer_leader}; warmed up with {WARM_UP_MESSAGES} messages"
    );
    println!("{url}");
    Ok(true)
}

/// Which side of the queue a phase loads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Publish,
    Consume,
}

/// What every lane of a phase shares.
struct Shared {
    phase: Phase,
    body: Bytes,
    batch: usize,
    plain_ack: bool,
    limit: Option<u64>,
    /// Messages claimed (publish) or acknowledged (consume) so far.
    done: AtomicU64,
    errors: AtomicU64,
    /// Set when the phase's time is up: lanes start nothing new.
    stop: AtomicBool,
}

impl Shared {
    /// Claims `n` more messages under the limit; false once the phase is over.
    fn claim(&self, n: u64) -> bool {
        if self.stop.load(Ordering::Relaxed) {
            return false;
        }
        match self.limit {
            None => true,
            Some(limit) => self.done.fetch_add(n, Ordering::Relaxed) < limit,
        }
    }
}

/// What one lane measured.
struct Measured {
    latency: Histogram<u64>,
    messages: u64,
    errors: Vec<String>,
}

impl Measured {
    fn new() -> Measured {
        Measured {
            latency: Histogram::new_with_bounds(1, HIGHEST_LATENCY_US, 3)
                .expect("valid histogram bounds"),
            messages: 0,
            errors: Vec::new(),
        }
    }

    fn record(&mut self, latency: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, HIGHEST_LATENCY_US);
        // Within bounds by the clamp.
        let _ = self.latency.record(us);
    }

    fn error(&mut self, shared: &Shared, error: impl std::fmt::Display) {
        shared.errors.fetch_add(1, Ordering::Relaxed);
        let error = error.to_string();
        if self.errors.len() < MAX_ERRORS_KEPT && !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }

    fn merge(&mut self, other: Measured) {
        // Both have the same bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.messages += other.messages;
        for error in other.errors {
            if self.errors.len() < MAX_ERRORS_KEPT && !self.errors.contains(&error) {
                self.errors.push(error);
            }
        }
    }
}

/// Runs `publish` or `consume` and prints its report; true if no request
/// failed.
async fn run_phase(options: &Options, phase: Phase) -> Result<bool, Error> {
    let shared = Arc::new(Shared {
        phase,
        body: Bytes::from(vec![b'x'; options.body_size]),
        batch: options.batch,
        plain_ack: options.plain_ack,
        limit: options.jobs,
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    // Every connection is open and every lane ready before the clock starts.
    let mut lanes = Vec::new();
    for _ in 0..options.connections {
        let client = async_nats::connect(options.url.as_str()).await?;
        let js = jetstream::new(client.clone());
        let consumer: Option<PullConsumer> = match phase {
            Phase::Publish => None,
            Phase::Consume => Some(js.get_consumer_from_stream(CONSUMER, STREAM).await?),
        };
        for _ in 0..options.pipeline {
            lanes.push((client.clone(), js.clone(), consumer.clone()));
        }
    }
    let started = Instant::now();
    let tasks: Vec<_> = lanes
        .into_iter()
        .map(|(client, js, consumer)| {
            let shared = shared.clone();
            tokio::spawn(async move {
                match consumer {
                    None => publish_lane(&js, &shared).await,
                    Some(consumer) => consume_lane(&client, &consumer, &shared).await,
                }
            })
        })
        .collect();
    let timer = {
        let shared = shared.clone();
        let duration = options.duration;
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            shared.stop.store(true, Ordering::Relaxed);
        })
    };
    let mut measured = Measured::new();
    for task in tasks {
        match task.await {
            Ok(lane) => measured.merge(lane),
            Err(error) => measured.error(&shared, format!("a lane's task failed: {error}")),
        }
    }
    let elapsed = started.elapsed();
    timer.abort();
    println!("{}", report(options, &shared, &measured, elapsed));
    Ok(shared.errors.load(Ordering::Relaxed) == 0)
}

/// One publishing lane: publish, wait for the PubAck, again.
async fn publish_lane(js: &jetstream::Context, shared: &Shared) -> Measured {
    let mut measured = Measured::new();
    while shared.claim(1) {
        let sent = Instant::now();
        let acked = match js.publish(SUBJECT, shared.body.clone()).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match acked {
            Ok(()) => {
                measured.record(sent.elapsed());
                measured.messages += 1;
            }
            Err(error) => measured.error(shared, error),
        }
    }
    measured
}

/// One consuming lane: fetch a batch, acknowledge each message, again,
/// until the stream is empty or the phase is over.
async fn consume_lane(
    client: &async_nats::Client,
    consumer: &PullConsumer,
    shared: &Shared,
) -> Measured {
    let mut measured = Measured::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let round = tokio::time::timeout(ROUND_TIMEOUT, consume_round(client, consumer, shared));
        match round
            .await
            .unwrap_or_else(|_| Err("a round took over 10 s".into()))
        {
            // Empty: the backlog is drained for this lane.
            Ok(0) => break,
            Ok(n) => {
                measured.record(started.elapsed());
                measured.messages += n;
                if !shared.claim(n) {
                    break;
                }
            }
            Err(error) => {
                measured.error(shared, error);
                break;
            }
        }
    }
    measured
}

/// One round: a fetch and the acks of what it brought; returns the number
/// of messages acknowledged.
async fn consume_round(
    client: &async_nats::Client,
    consumer: &PullConsumer,
    shared: &Shared,
) -> Result<u64, Error> {
    // `fetch` asks the server not to wait when the stream has fewer
    // messages than the batch, like GETJOB NOHANG. No expiry: nats-server
    // 2.9 takes one as "wait that long for messages" even then, which
    // would stall a lane on a drained stream.
    let mut batch = consumer
        .fetch()
        .max_messages(shared.batch)
        .messages()
        .await?;
    let mut fetched = 0;
    let mut replies = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message?;
        fetched += 1;
        if shared.plain_ack {
            message.ack().await?;
            continue;
        }
        let reply = message
            .reply
            .clone()
            .ok_or("a fetched message has no reply subject to ack on")?;
        // A request on the client's shared reply subscription: the server
        // answers an ack that carries a reply subject once it has processed
        // it. (The library's `double_ack` does the same but subscribes a
        // fresh inbox for every ack, which would load the client and the
        // server with subscription churn that has nothing to do with
        // JetStream.)
        replies.push(client.request(reply, Bytes::from_static(b"+ACK")));
    }
    if shared.plain_ack {
        // Plain acks have no reply; the round ends once they are sent.
        client.flush().await?;
    }
    for outcome in futures::future::join_all(replies).await {
        outcome?;
    }
    Ok(fetched)
}

/// `synod bench --json`'s report object, with this phase's figures.
fn report(options: &Options, shared: &Shared, measured: &Measured, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let ms = |us: u64| format!("{:.3}", us as f64 / 1000.0);
    let h = &measured.latency;
    let quantiles = format!(
        "{{\"p50_ms\":{},\"p99_ms\":{},\"p999_ms\":{},\"max_ms\":{}}}",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max())
    );
    let empty = "{\"p50_ms\":0.000,\"p99_ms\":0.000,\"p999_ms\":0.000,\"max_ms\":0.000}";
    let (name, enqueued, enqueue_latency, dequeued, dequeue_latency) = match shared.phase {
        Phase::Publish => ("enqueue", measured.messages, quantiles.as_str(), 0, empty),
        Phase::Consume => (
            "dequeue+ack",
            0,
            empty,
            measured.messages,
            quantiles.as_str(),
        ),
    };
    let errors: Vec<String> = measured
        .errors
        .iter()
        .map(|e| format!("\"{}\"", e.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!(
        "{{\"phase\":\"{name}\",\"connections\":{},\"pipeline\":{},\"in_flight\":{},\
         \"batch\":{},\"plain_ack\":{},\"body_bytes\":{},\"seconds\":{secs:.3},\
         \"enqueued\":{enqueued},\"enqueue_per_sec\":{:.0},\"enqueue_latency\":{enqueue_latency},\
         \"dequeued\":{dequeued},\"dequeue_per_sec\":{:.0},\"dequeue_round_latency\":{dequeue_latency},\
         \"errors\":{},\"error_examples\":[{}]}}",
        options.connections,
        options.pipeline,
        options.connections * options.pipeline,
        options.batch,
        options.plain_ack,
        options.body_size,
        enqueued as f64 / secs,
        dequeued as f64 / secs,
        shared.errors.load(Ordering::Relaxed),
        errors.join(","),
    )
}

//! Simulated clients speaking RESP to the members: the fault phase's
//! workers, and the liveness phase's drain. Every request goes into the
//! history; every wait is bounded, so a partitioned or paused member
//! cannot hold a client forever.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use consensus::NodeId;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use synod::resp::{self, ReplyParser, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::history::{Call, Outcome, PADDING_SEPARATOR, Reply, decode};
use crate::options::Workload;
use crate::world::World;

/// How long a client waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How much longer than the member's own timeout a client waits for a
/// reply before it calls the outcome unknown.
const REPLY_GRACE: Duration = Duration::from_secs(1);

struct Connection {
    member: NodeId,
    stream: TcpStream,
    parser: ReplyParser,
    buf: BytesMut,
}

impl Connection {
    /// Sends one request and reads its reply.
    async fn exchange(&mut self, args: &[String]) -> io::Result<Value> {
        let mut out = BytesMut::new();
        resp::encode_request(args, &mut out);
        self.stream.write_all(&out).await?;
        // Simulated TCP sends nothing until flushed.
        self.stream.flush().await?;
        loop {
            match self.parser.parse(&mut self.buf) {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(error) => return Err(io::Error::new(io::ErrorKind::InvalidData, error)),
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// One client: a connection to one member at a time, and a history.
pub struct Client {
    id: u32,
    world: Arc<World>,
    members: Vec<(NodeId, SocketAddr)>,
    rng: SmallRng,
    connection: Option<Connection>,
    /// How long a member lets a write wait (the members' setting).
    request_timeout: Duration,
}

impl Client {
    /// Client `id` of the members at `members`, its choices seeded by
    /// `seed`.
    pub fn new(
        id: u32,
        world: Arc<World>,
        members: Vec<(NodeId, SocketAddr)>,
        request_timeout: Duration,
        seed: u64,
    ) -> Client {
        let rng = SmallRng::seed_from_u64(seed ^ u64::from(id).wrapping_mul(0xc2b2_ae3d_27d4_eb4f));
        Client {
            id,
            world,
            members,
            rng,
            connection: None,
            request_timeout,
        }
    }

    fn disconnect(&mut self) {
        self.connection = None;
    }

    /// Connects to `member` (any member if `None`) unless connected there
    /// already. False if it cannot.
    async fn connect(&mut self, member: Option<NodeId>) -> bool {
        if let Some(connection) = &self.connection {
            if member.is_none_or(|m| m == connection.member) {
                return true;
            }
        }
        self.connection = None;
        let (member, addr) = match member {
            Some(member) => *self
                .members
                .iter()
                .find(|(id, _)| *id == member)
                .expect("a member"),
            None => self.members[self.rng.random_range(0..self.members.len())],
        };
        // Refused at once when the member is down or cut off; the timeout
        // covers the rest.
        match timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                self.connection = Some(Connection {
                    member,
                    stream,
                    parser: ReplyParser::new(),
                    buf: BytesMut::new(),
                });
                true
            }
            _ => false,
        }
    }

    /// Sends `call` (as `args`) on the current connection and waits up to
    /// `limit` for the reply. `None` if not connected (nothing was sent).
    async fn call(&mut self, call: Call, args: &[String], limit: Duration) -> Option<Outcome> {
        let connection = self.connection.as_mut()?;
        let op = self.world.invoke(self.id, connection.member, call.clone());
        let outcome = match timeout(limit, connection.exchange(args)).await {
            Ok(Ok(value)) => match decode(&call, value) {
                Ok(outcome) => outcome,
                Err(unexpected) => {
                    self.world.find("protocol", unexpected.clone());
                    Outcome::Unknown { why: unexpected }
                }
            },
            Ok(Err(error)) => Outcome::Unknown {
                why: error.to_string(),
            },
            Err(_) => Outcome::Unknown {
                why: "timed out".to_string(),
            },
        };
        // A late reply would answer the next request: start afresh.
        if matches!(outcome, Outcome::Unknown { .. }) {
            self.disconnect();
        }
        self.world.complete(op, outcome.clone());
        Some(outcome)
    }

    /// ADDJOB of `body` (made `padding` bytes longer) to `queue`.
    async fn add(
        &mut self,
        queue: &str,
        body: String,
        padding: &str,
        retry_secs: u64,
    ) -> Option<Outcome> {
        let wire_body = if padding.is_empty() {
            body.clone()
        } else {
            format!("{body}{PADDING_SEPARATOR}{padding}")
        };
        let args = [
            "ADDJOB".to_string(),
            queue.to_string(),
            wire_body,
            self.request_timeout.as_millis().to_string(),
            "RETRY".to_string(),
            retry_secs.to_string(),
        ];
        let call = Call::Add {
            queue: queue.to_string(),
            body,
            retry_secs,
        };
        let limit = self.request_timeout + REPLY_GRACE;
        self.call(call, &args, limit).await
    }

    /// GETJOB from `queues`: NOHANG when `timeout_ms` is `None`.
    async fn get(
        &mut self,
        queues: Vec<String>,
        count: u32,
        timeout_ms: Option<u64>,
    ) -> Option<Outcome> {
        let mut args = vec!["GETJOB".to_string()];
        match timeout_ms {
            None => args.push("NOHANG".to_string()),
            Some(ms) => args.extend(["TIMEOUT".to_string(), ms.to_string()]),
        }
        args.extend(["COUNT".to_string(), count.to_string(), "FROM".to_string()]);
        args.extend(queues.iter().cloned());
        // A parked GETJOB waits its timeout, then its write may wait the
        // member's request timeout.
        let limit =
            Duration::from_millis(timeout_ms.unwrap_or(0)) + self.request_timeout + REPLY_GRACE;
        let call = Call::Get {
            queues,
            count,
            timeout_ms,
        };
        self.call(call, &args, limit).await
    }

    /// ACKJOB, NACK or WORKING of one job.
    async fn settle(&mut self, call: Call) -> Option<Outcome> {
        let (command, id) = match &call {
            Call::Ack { id } => ("ACKJOB", id),
            Call::Nack { id } => ("NACK", id),
            Call::Working { id } => ("WORKING", id),
            other => unreachable!("not a settling call: {other:?}"),
        };
        let args = [command.to_string(), id.clone()];
        let limit = self.request_timeout + REPLY_GRACE;
        self.call(call, &args, limit).await
    }
}

/// A fault-phase worker: adds jobs with unique bodies, takes them, and
/// acks, NACKs, extends or forgets them, until `stop`.
pub async fn work(mut client: Client, workload: Workload, stop: Arc<AtomicBool>) {
    let queues: Vec<String> = (0..workload.queues).map(|q| format!("q{q}")).collect();
    let padding = "x".repeat(workload.body_padding_bytes);
    let mut next_body = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let think = client.rng.random_range(1..=workload.max_think_ms);
        tokio::time::sleep(Duration::from_millis(think)).await;
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if client.rng.random_range(0..100) < workload.switch_member_percent {
            client.disconnect();
        }
        if !client.connect(None).await {
            let wait = client.rng.random_range(20..=200);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            continue;
        }
        if client.rng.random_range(0..100) < workload.add_percent {
            let queue = queues[client.rng.random_range(0..queues.len())].clone();
            let body = format!("c{}-{next_body}", client.id);
            next_body += 1;
            let retry_secs = client.rng.random_range(1..=workload.max_retry_secs);
            client.add(&queue, body, &padding, retry_secs).await;
            continue;
        }
        let count = client.rng.random_range(1..=workload.max_count);
        let timeout_ms = (client.rng.random_range(0..100) >= workload.nohang_percent)
            .then(|| client.rng.random_range(10..=workload.max_getjob_timeout_ms));
        let mut from = queues.clone();
        from.shuffle(&mut client.rng);
        let Some(Outcome::Ok {
            reply: Reply::Jobs { jobs },
        }) = client.get(from, count, timeout_ms).await
        else {
            continue;
        };
        for job in jobs {
            let roll = client.rng.random_range(0..100);
            if roll < workload.forget_percent {
                continue;
            }
            // The connection may have broken; settle through any member.
            if !client.connect(None).await {
                continue;
            }
            if roll < workload.forget_percent + workload.nack_percent {
                client.settle(Call::Nack { id: job.id }).await;
                continue;
            }
            if client.rng.random_range(0..100) < workload.working_percent {
                client.settle(Call::Working { id: job.id.clone() }).await;
                if !client.connect(None).await {
                    continue;
                }
            }
            client.settle(Call::Ack { id: job.id }).await;
        }
    }
}

/// The liveness phase's client: first an ADDJOB through every member (each
/// must serve), then GETJOB and ACKJOB round the members until every
/// acknowledged job has been delivered at least once. `Err` says what did
/// not happen before `deadline`.
pub async fn drain(mut client: Client, queues: u32, deadline: Instant) -> Result<(), String> {
    let queues: Vec<String> = (0..queues).map(|q| format!("q{q}")).collect();
    let members: Vec<NodeId> = client.members.iter().map(|(id, _)| *id).collect();
    let pause = Duration::from_millis(100);
    for &member in &members {
        for attempt in 0.. {
            if Instant::now() >= deadline {
                return Err(format!(
                    "member {member} did not accept an ADDJOB after the heal"
                ));
            }
            if client.connect(Some(member)).await {
                // A new body each time: a failed ADDJOB may still be
                // applied, under another job id.
                let body = format!("probe-{member}-{attempt}");
                if let Some(Outcome::Ok { .. }) = client.add(&queues[0], body, "", 1).await {
                    break;
                }
            }
            tokio::time::sleep(pause).await;
        }
    }
    for turn in 0.. {
        let undelivered = client.world.lock().undelivered.len();
        if undelivered == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{undelivered} acknowledged jobs were not delivered after the heal"
            ));
        }
        let member = members[turn % members.len()];
        if !client.connect(Some(member)).await {
            tokio::time::sleep(pause).await;
            continue;
        }
        let Some(Outcome::Ok {
            reply: Reply::Jobs { jobs },
        }) = client.get(queues.clone(), 100, Some(500)).await
        else {
            tokio::time::sleep(pause).await;
            continue;
        };
        for job in jobs {
            if client.connect(Some(member)).await {
                client.settle(Call::Ack { id: job.id }).await;
            }
        }
    }
    unreachable!("the drain loop returns")
}

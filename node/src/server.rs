//! The client side of a member: RESP connections speaking Disque's
//! commands, and `synod node`'s start-up.
//!
//! Each connection has a reader, which parses requests and hands them to
//! the event loop at once (so a pipelining client's commands share slots),
//! and a writer, which sends the replies in request order. The queue
//! between them is bounded: a client that sends without reading stops
//! being read once it has that many replies outstanding, so no client can
//! make the member hold unbounded memory.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use consensus::NodeId;
use queue::{Command, JobId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::commands::reply::{self, ClientInfo, HelloNode, InfoSection};
use crate::commands::{self, ClientCommand, ClientSubcommand, LibraryAttribute};
use crate::node::{
    ClientInput, MemberAddrs, NodeConfig, NodeError, NodeHandle, View, WriteError, WriteOutcome,
};
use crate::resp::{self, Limits, Protocol, Request, RequestParser, Value};
use crate::storage::Disk;

/// How the client server behaves.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// This member's id.
    pub node_id: NodeId,
    /// Every member, for HELLO.
    pub members: BTreeMap<NodeId, MemberAddrs>,
    /// Request size limits.
    pub limits: Limits,
    /// Replies a connection may have outstanding before it is no longer
    /// read.
    pub max_pending_per_connection: usize,
    /// Connections served at once.
    pub max_clients: usize,
    /// How long a write waits to be applied when the client sets no timeout.
    pub request_timeout: Duration,
    /// Seeds the job ids this member draws.
    pub seed: u64,
}

/// Disque's node id for member `id`: 40 hex digits whose first 8 are the
/// node part of the job ids this member draws, so that clients can tell
/// from a job id which member made it.
pub fn disque_node_id(id: NodeId) -> String {
    format!("{:08x}{:032x}", id as u32, id)
}

/// A reply that is known now or comes later, and the protocol to send it in.
enum Outgoing {
    Now(Value, Protocol),
    Later(Pin<Box<dyn Future<Output = Value> + Send>>, Protocol),
    /// Send nothing more; close the connection.
    Close,
}

/// One connection as CLIENT LIST shows it. Each connection updates only
/// its own entry, so a command costs one uncontended lock and no copy.
struct LiveClient {
    /// What it set and did; `age_secs` and `idle_secs` are filled in when
    /// it is shown.
    info: ClientInfo,
    connected_at: Instant,
    last_command_at: Instant,
}

impl LiveClient {
    fn shown(&self, now: Instant) -> ClientInfo {
        ClientInfo {
            age_secs: now.duration_since(self.connected_at).as_secs(),
            idle_secs: now.duration_since(self.last_command_at).as_secs(),
            ..self.info.clone()
        }
    }
}

/// The connections, for CLIENT LIST.
type Registry = Arc<Mutex<BTreeMap<u64, Arc<Mutex<LiveClient>>>>>;

/// Accepts clients on `listener` until `handle`'s member stops. Beyond
/// `config.max_clients` connections, a new one gets Redis's error and is
/// closed.
pub async fn serve(listener: TcpListener, handle: NodeHandle, config: Arc<ServerConfig>) {
    let registry: Registry = Arc::default();
    let mut next_connection: u64 = 1;
    loop {
        let (mut stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a client failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if registry.lock().expect("registry").len() >= config.max_clients {
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
                let _ = stream.flush().await;
            });
            continue;
        }
        let id = next_connection;
        next_connection += 1;
        let connection = Connection::new(
            id,
            addr,
            &stream,
            handle.clone(),
            config.clone(),
            registry.clone(),
        );
        // Counted from here, so a burst of connections cannot pass the
        // limit before their tasks start.
        registry
            .lock()
            .expect("registry")
            .insert(id, connection.me.clone());
        tokio::spawn(connection.run(stream));
    }
}

/// One client connection's state, owned by its reader.
struct Connection {
    id: u64,
    handle: NodeHandle,
    config: Arc<ServerConfig>,
    registry: Registry,
    protocol: Protocol,
    rng: SmallRng,
    /// Its entry in the registry.
    me: Arc<Mutex<LiveClient>>,
}

impl Connection {
    fn new(
        id: u64,
        addr: SocketAddr,
        stream: &TcpStream,
        handle: NodeHandle,
        config: Arc<ServerConfig>,
        registry: Registry,
    ) -> Self {
        let laddr = stream
            .local_addr()
            .map_or_else(|_| String::new(), |a| a.to_string());
        let info = ClientInfo {
            id,
            addr: addr.to_string(),
            laddr,
            name: String::new(),
            age_secs: 0,
            idle_secs: 0,
            protocol: Protocol::Resp2,
            lib_name: String::new(),
            lib_ver: String::new(),
            last_command: String::new(),
        };
        let now = Instant::now();
        let me = Arc::new(Mutex::new(LiveClient {
            info,
            connected_at: now,
            last_command_at: now,
        }));
        let rng = SmallRng::seed_from_u64(config.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Connection {
            id,
            handle,
            config,
            registry,
            protocol: Protocol::Resp2,
            rng,
            me,
        }
    }

    async fn run(mut self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let (mut reader, writer) = tokio::io::split(stream);
        let (outgoing, replies) = mpsc::channel(self.config.max_pending_per_connection.max(1));
        let writer = tokio::spawn(write_replies(writer, replies));
        let mut parser = RequestParser::new(self.config.limits);
        let mut buf = BytesMut::with_capacity(16 * 1024);
        'read: loop {
            loop {
                let item = match parser.parse(&mut buf) {
                    Ok(Some(Request::Command(args))) => self.dispatch(&args).await,
                    Ok(Some(Request::Rejected(error))) => {
                        vec![Outgoing::Now(Value::from(error), self.protocol)]
                    }
                    Ok(None) => break,
                    Err(error) => {
                        let _ = outgoing
                            .send(Outgoing::Now(Value::from(error), self.protocol))
                            .await;
                        let _ = outgoing.send(Outgoing::Close).await;
                        break 'read;
                    }
                };
                for out in item {
                    let close = matches!(out, Outgoing::Close);
                    if outgoing.send(out).await.is_err() || close {
                        break 'read;
                    }
                }
            }
            match reader.read_buf(&mut buf).await {
                Ok(0) | Err(_) => {
                    // The client is gone (Redis too takes end of input as
                    // the client leaving). Drop what it still waits for, so
                    // that a blocked GETJOB stops waiting at once instead
                    // of taking the next job for nobody.
                    writer.abort();
                    break 'read;
                }
                Ok(_) => {}
            }
        }
        drop(outgoing);
        let _ = writer.await;
        self.registry.lock().expect("registry").remove(&self.id);
    }

    /// Notes a command for CLIENT LIST.
    fn touch(&mut self, command: &str) {
        let mut me = self.me.lock().expect("client entry");
        me.last_command_at = Instant::now();
        me.info.protocol = self.protocol;
        if me.info.last_command != command {
            me.info.last_command = command.to_string();
        }
    }

    /// Changes what CLIENT LIST shows of this connection.
    fn update(&self, change: impl FnOnce(&mut ClientInfo)) {
        change(&mut self.me.lock().expect("client entry").info);
    }

    /// What to send for one request (usually one reply; QUIT also closes).
    async fn dispatch(&mut self, args: &[Bytes]) -> Vec<Outgoing> {
        let command = match commands::parse(args) {
            Ok(command) => command,
            Err(error) => return vec![Outgoing::Now(Value::from(error), self.protocol)],
        };
        self.touch(command.name());
        if let Some(value) = reply::local(&command) {
            let now = Outgoing::Now(value, self.protocol);
            return match command {
                ClientCommand::Quit => vec![now, Outgoing::Close],
                _ => vec![now],
            };
        }
        let protocol = self.protocol;
        let one = |out| vec![out];
        match command {
            ClientCommand::Hello {
                protocol: wanted,
                client_name,
                ..
            } => {
                self.protocol = wanted;
                if let Some(name) = client_name {
                    self.update(|info| info.name = String::from_utf8_lossy(&name).into_owned());
                }
                self.touch("hello");
                let version = env!("CARGO_PKG_VERSION");
                one(Outgoing::Now(
                    reply::hello_handshake(version, self.id, wanted),
                    wanted,
                ))
            }
            ClientCommand::DisqueHello => one(self.read(ClientCommand::DisqueHello).await),
            ClientCommand::Client(sub) => one(Outgoing::Now(self.client_command(sub), protocol)),
            ClientCommand::AddJob(add) => {
                if let Err(error) = add.check_replicate(self.config.members.len()) {
                    return one(Outgoing::Now(Value::from(error), protocol));
                }
                let times = match add.times() {
                    Ok(times) => times,
                    Err(error) => return one(Outgoing::Now(reply::queue_error(&error), protocol)),
                };
                let mut random = [0u8; 18];
                self.rng.fill(&mut random[..]);
                let id = JobId::new(
                    self.config.node_id as u32,
                    random,
                    times.ttl_ms,
                    times.retry_ms,
                );
                let timeout = add
                    .timeout_ms
                    .map_or(self.config.request_timeout, Duration::from_millis);
                let command = Command::Add(add.to_add_job(id));
                one(self.write(command, timeout, false).await)
            }
            ClientCommand::GetJob(get) => {
                let (reply, outcome) = oneshot::channel();
                let deadline = get
                    .timeout_ms
                    .map(|ms| Instant::now() + Duration::from_millis(ms));
                let input = ClientInput::Get {
                    queues: get.queues,
                    count: get.count,
                    nohang: get.nohang,
                    deadline,
                    reply,
                };
                if !self.handle.submit(input).await {
                    return one(Outgoing::Now(stopping(), protocol));
                }
                let with_counters = get.with_counters;
                one(Outgoing::Later(
                    Box::pin(async move { outcome_value(outcome.await, with_counters) }),
                    protocol,
                ))
            }
            ClientCommand::QConfig(config) if !config.is_read_only() => {
                // The setting the client did not name keeps its value, read
                // on the event loop just before proposing.
                let (reply, outcome) = oneshot::channel();
                let input = ClientInput::WriteFrom {
                    build: Box::new(move |machine: &queue::StateMachine| {
                        let stats = machine.queue_stats(&config.queue);
                        config
                            .to_command(stats.as_ref())
                            .expect("QCONFIG with a setting makes a command")
                    }),
                    deadline: Instant::now() + self.config.request_timeout,
                    reply,
                };
                if !self.handle.submit(input).await {
                    return one(Outgoing::Now(stopping(), protocol));
                }
                one(Outgoing::Later(
                    Box::pin(async move { outcome_value(outcome.await, false) }),
                    protocol,
                ))
            }
            other => match other.to_queue_command() {
                Some(command) => one(self
                    .write(command, self.config.request_timeout, false)
                    .await),
                None => one(self.read(other).await),
            },
        }
    }

    /// Proposes `command`; its reply comes when this member applies it.
    async fn write(
        &mut self,
        command: Command,
        timeout: Duration,
        with_counters: bool,
    ) -> Outgoing {
        let (reply, outcome) = oneshot::channel();
        let input = ClientInput::Write {
            command,
            deadline: Instant::now() + timeout,
            reply,
        };
        if !self.handle.submit(input).await {
            return Outgoing::Now(stopping(), self.protocol);
        }
        Outgoing::Later(
            Box::pin(async move { outcome_value(outcome.await, with_counters) }),
            self.protocol,
        )
    }

    /// Answers a read from this member's applied state.
    async fn read(&mut self, command: ClientCommand) -> Outgoing {
        let members: Vec<String> = self
            .config
            .members
            .keys()
            .map(|&id| disque_node_id(id))
            .collect();
        let read: crate::node::ReadFn = Box::new(move |view: &View<'_>| {
            let now_ms = view.machine.now_ms();
            match command {
                ClientCommand::Show { id } => {
                    reply::show(view.machine.show(&id).as_ref(), now_ms, &members)
                }
                ClientCommand::QLen { queue } => reply::qlen(view.machine.len(&queue)),
                ClientCommand::QPeek { queue, count } => {
                    reply::qpeek(&view.machine.peek(&queue, count))
                }
                ClientCommand::QStat { queue } => {
                    let blocked = view.blocked.get(&queue).copied().unwrap_or(0);
                    reply::qstat(view.machine.queue_stats(&queue).as_ref(), now_ms, blocked)
                }
                ClientCommand::QScan(scan) => {
                    if scan.nothing_matches {
                        return reply::empty_scan();
                    }
                    let count = scan_count(scan.busyloop, scan.count);
                    let page = view
                        .machine
                        .scan_queues(scan.cursor.as_deref(), count, scan.filter);
                    reply::qscan(&page)
                }
                ClientCommand::JScan(scan) => {
                    if scan.nothing_matches {
                        return reply::empty_scan();
                    }
                    let count = scan_count(scan.busyloop, scan.count);
                    let page = view.machine.scan_jobs(scan.cursor, count, &scan.filter);
                    reply::jscan(&page, scan.reply, now_ms, &members)
                }
                ClientCommand::Pause { queue, .. } => {
                    reply::paused(view.machine.pause_state(&queue))
                }
                ClientCommand::QConfig(config) => reply::queue_config(
                    &config.queue,
                    view.machine.queue_stats(&config.queue).as_ref(),
                ),
                ClientCommand::Info { sections } => reply::info(&info_sections(view), &sections),
                ClientCommand::DisqueHello => hello_nodes(view),
                other => Value::error(format!("ERR '{}' is not available here", other.name())),
            }
        });
        let (reply, value) = oneshot::channel();
        if !self.handle.submit(ClientInput::Read { read, reply }).await {
            return Outgoing::Now(stopping(), self.protocol);
        }
        Outgoing::Later(
            Box::pin(async move { value.await.unwrap_or_else(|_| stopping()) }),
            self.protocol,
        )
    }

    fn client_command(&mut self, sub: ClientSubcommand) -> Value {
        match sub {
            ClientSubcommand::SetName(name) => {
                self.update(|info| info.name = String::from_utf8_lossy(&name).into_owned());
                self.touch("client");
                Value::ok()
            }
            ClientSubcommand::GetName => {
                let name = self.me.lock().expect("client entry").info.name.clone();
                let name = (!name.is_empty()).then(|| Bytes::from(name));
                reply::client_name(name.as_ref())
            }
            ClientSubcommand::SetInfo { attribute, value } => {
                let value = String::from_utf8_lossy(&value).into_owned();
                self.update(|info| match attribute {
                    LibraryAttribute::Name => info.lib_name = value,
                    LibraryAttribute::Version => info.lib_ver = value,
                });
                self.touch("client");
                Value::ok()
            }
            ClientSubcommand::Id => Value::Integer(self.id as i64),
            ClientSubcommand::Info => {
                let me = self.me.lock().expect("client entry");
                reply::client_info(&me.shown(Instant::now()))
            }
            ClientSubcommand::List => {
                let now = Instant::now();
                let entries: Vec<Arc<Mutex<LiveClient>>> = self
                    .registry
                    .lock()
                    .expect("registry")
                    .values()
                    .cloned()
                    .collect();
                let clients: Vec<ClientInfo> = entries
                    .iter()
                    .map(|entry| entry.lock().expect("client entry").shown(now))
                    .collect();
                reply::client_list(&clients)
            }
            ClientSubcommand::NoOp | ClientSubcommand::Help => Value::ok(),
        }
    }
}

/// A member heard from this recently is in touch (heartbeats are far more
/// frequent).
const IN_TOUCH_WITHIN: Duration = Duration::from_secs(1);
/// A member not heard from for this long counts as failed.
const FAILED_AFTER: Duration = Duration::from_secs(10);

/// Bare HELLO: every member with a client address, with Disque's priority
/// from when this member last heard from it.
fn hello_nodes(view: &View<'_>) -> Value {
    let now = Instant::now();
    let me = view.config.id;
    let nodes: Vec<HelloNode> = view
        .config
        .members
        .iter()
        .filter_map(|(&id, addrs)| {
            let client = addrs.client?;
            let priority = match view.heard_from.get(&id) {
                _ if id == me => 1,
                None => 5,
                Some(&at) if now.duration_since(at) < IN_TOUCH_WITHIN => 1,
                Some(&at) if now.duration_since(at) < FAILED_AFTER => 10,
                Some(_) => 100,
            };
            Some(HelloNode {
                id: disque_node_id(id),
                host: client.ip().to_string(),
                port: client.port(),
                priority,
            })
        })
        .collect();
    reply::hello_nodes(&disque_node_id(me), &nodes)
}

/// How many items a scan examines: all of them with BUSYLOOP.
fn scan_count(busyloop: bool, count: usize) -> usize {
    if busyloop { usize::MAX } else { count }
}

fn stopping() -> Value {
    Value::error(WriteError::Stopping.to_string())
}

fn outcome_value(
    outcome: Result<WriteOutcome, oneshot::error::RecvError>,
    with_counters: bool,
) -> Value {
    match outcome {
        Ok(Ok(response)) => reply::response(&response, with_counters),
        Ok(Err(error)) => Value::error(error.to_string()),
        Err(_) => stopping(),
    }
}

/// INFO's sections from the member's view.
fn info_sections(view: &View<'_>) -> Vec<InfoSection> {
    let status = view.status;
    let role = match status.role {
        consensus::Role::Leader => "leader",
        consensus::Role::Candidate => "candidate",
        consensus::Role::Follower => "follower",
    };
    let field = |key: &str, value: String| (key.to_string(), value);
    let leader = status
        .leader
        .map_or_else(|| "none".to_string(), |id| id.to_string());
    vec![
        InfoSection {
            name: "Server".to_string(),
            fields: vec![
                field("synod_version", env!("CARGO_PKG_VERSION").to_string()),
                field("node_id", view.config.id.to_string()),
                field("disque_node_id", disque_node_id(view.config.id)),
                field("members", view.config.members.len().to_string()),
                field("log_time_ms", view.machine.now_ms().to_string()),
            ],
        },
        InfoSection {
            name: "Replication".to_string(),
            fields: vec![
                field("role", role.to_string()),
                field("leader", leader),
                field(
                    "ballot",
                    format!("{}.{}", status.promised.round, status.promised.node),
                ),
                field("chosen_slot", status.commit_through.to_string()),
                field("applied_slot", status.applied_through.to_string()),
                field("last_slot", status.last_slot.to_string()),
                field("snapshot_slot", status.snapshot_slot.to_string()),
            ],
        },
        InfoSection {
            name: "Jobs".to_string(),
            fields: vec![
                field("jobs", view.machine.job_count().to_string()),
                field("queues", view.machine.queue_count().to_string()),
                field(
                    "blocked_clients",
                    view.blocked.values().sum::<usize>().to_string(),
                ),
            ],
        },
        InfoSection {
            name: "Persistence".to_string(),
            fields: vec![
                field(
                    "log_records_appended",
                    view.storage.appended_records.to_string(),
                ),
                field(
                    "log_records_durable",
                    view.storage.durable_records.to_string(),
                ),
                field("log_segment_bytes", view.storage.segment_bytes.to_string()),
                field(
                    "snapshot_on_disk_slot",
                    view.storage.snapshot_slot.to_string(),
                ),
            ],
        },
    ]
}

/// Sends each reply in order, batching those that are ready into one write.
async fn write_replies(
    mut writer: tokio::io::WriteHalf<TcpStream>,
    mut replies: mpsc::Receiver<Outgoing>,
) {
    let mut out = BytesMut::with_capacity(16 * 1024);
    while let Some(first) = replies.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Outgoing::Now(value, protocol) => resp::encode(&value, protocol, &mut out),
                Outgoing::Later(mut future, protocol) => {
                    // Replies to pipelined requests usually come together
                    // (one slot answers many): take a ready one without a
                    // write of its own.
                    let value = match poll_once(future.as_mut()) {
                        Some(value) => value,
                        None => {
                            if !out.is_empty() {
                                // Send what is ready before waiting.
                                if writer.write_all(&out).await.is_err()
                                    || writer.flush().await.is_err()
                                {
                                    return;
                                }
                                out.clear();
                            }
                            future.await
                        }
                    };
                    resp::encode(&value, protocol, &mut out);
                }
                Outgoing::Close => {
                    let _ = writer.write_all(&out).await;
                    let _ = writer.flush().await;
                    let _ = writer.shutdown().await;
                    return;
                }
            }
            next = replies.try_recv().ok();
        }
        if writer.write_all(&out).await.is_err() || writer.flush().await.is_err() {
            return;
        }
        out.clear();
    }
}

/// The future's output if it is ready now. Polling with a waker that does
/// nothing is fine: a pending future is awaited (polled with the task's
/// waker) right after.
fn poll_once<T>(future: Pin<&mut (dyn Future<Output = T> + Send)>) -> Option<T> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.poll(&mut context) {
        std::task::Poll::Ready(value) => Some(value),
        std::task::Poll::Pending => None,
    }
}

/// Runs one member on `disk` until `shutdown`: consensus with its peers on
/// the first listener, clients on the second. What `synod node` runs, and
/// what the simulator runs on each simulated machine.
pub async fn member<D: Disk>(
    config: NodeConfig,
    server: Arc<ServerConfig>,
    disk: D,
    (peer_listener, client_listener): (TcpListener, TcpListener),
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    // Job ids are drawn from the seed mixed with the start time, so a member
    // restarted with the same --seed does not draw the same ids again (an
    // ADDJOB whose id exists is answered as done and adds nothing).
    let start_nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let server = Arc::new(ServerConfig {
        seed: server.seed ^ start_nanos.rotate_left(29),
        ..(*server).clone()
    });
    let (ready, handle) = oneshot::channel();
    let clients = tokio::spawn(async move {
        if let Ok(handle) = handle.await {
            serve(client_listener, handle, server).await;
        }
    });
    let result = crate::node::run(config, disk, peer_listener, ready, shutdown).await;
    clients.abort();
    result
}

/// `synod node`: recovers the member from its data directory and serves
/// until Ctrl-C or SIGTERM. Returns the process exit code.
#[cfg(not(madsim))]
pub async fn run_member(args: crate::cli::NodeArgs) -> i32 {
    use crate::cli::Fsync;
    use crate::nosync::NoSync;
    use crate::storage::FileDisk;

    let members = match args.members() {
        Ok(members) => members,
        Err(error) => {
            eprintln!("synod node: {error}");
            return 2;
        }
    };
    let disk = match FileDisk::open(&args.data) {
        Ok(disk) => disk,
        Err(error) => {
            eprintln!(
                "synod node: cannot use data directory {}: {error}",
                args.data.display()
            );
            return 1;
        }
    };
    let listen = |addr: SocketAddr, whom: &'static str| async move {
        TcpListener::bind(addr).await.map_err(|error| {
            eprintln!("synod node: cannot listen for {whom} on {addr}: {error}");
        })
    };
    let Ok(peer_listener) = listen(args.peer_listen, "members").await else {
        return 1;
    };
    let Ok(client_listener) = listen(args.listen, "clients").await else {
        return 1;
    };
    let seed = args.seed.unwrap_or_else(draw_seed);
    let mut config = crate::node::NodeConfig::new(args.id, members.clone());
    config.seed = seed;
    config.snapshot_after_bytes = args.snapshot_after_bytes;
    let server = Arc::new(ServerConfig {
        node_id: args.id,
        members,
        limits: Limits {
            max_bulk_bytes: args.max_body_bytes,
            ..Limits::default()
        },
        max_pending_per_connection: 1024,
        max_clients: 10_000,
        request_timeout: config.request_timeout,
        seed,
    });
    tracing::info!(
        id = args.id,
        clients = %args.listen,
        peers = %args.peer_listen,
        data = %args.data.display(),
        "starting"
    );
    let listeners = (peer_listener, client_listener);
    let result = match args.fsync {
        Fsync::Always => member(config, server, disk, listeners, shutdown_signal()).await,
        Fsync::Never => member(config, server, NoSync(disk), listeners, shutdown_signal()).await,
    };
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            0
        }
        Err(error) => {
            tracing::error!("{error}");
            eprintln!("synod node: {error}");
            1
        }
    }
}

/// A seed from the wall clock and the process id, for members started
/// without `--seed`.
#[cfg(not(madsim))]
fn draw_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

/// Completes on Ctrl-C or SIGTERM.
#[cfg(not(madsim))]
async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        biased;
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match &mut terminate {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
    tracing::info!("shutting down");
}

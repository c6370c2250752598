//! One member: the event loop that drives the consensus replica, the job
//! state machine and the write-ahead log, and the requests of its clients.
//!
//! Everything that changes state happens on one task, in this order for each
//! batch of inputs (see [`consensus::Ready`]): persist what the replica asks
//! (appended to the log, made durable by one group-commit fsync running in
//! the background while inputs keep arriving), then send its messages, then
//! apply the chosen entries to the state machine and answer the clients
//! whose requests they carried. A `Ready` whose records are not yet durable
//! waits, with everything behind it, until the fsync that covers them ends.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use consensus::{
    AcceptedRecord, Ballot, Committed, Config, DurableState, Entry, Message, NodeId, Payload,
    Replica, Slot, Status,
};
use queue::{Command, Response, StateMachine};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::dedup::AppliedRequests;
use crate::hooks::{self, Hooks};
use crate::peer::{self, PeerFrame, PeerLinks};
use crate::proposal::{Forwarded, Proposal};
use crate::storage::Disk;
use crate::wal::{InstallJob, SnapshotInstalled, Wal, WalError};

/// Where a member listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberAddrs {
    /// For the other members.
    pub peer: SocketAddr,
    /// For clients (RESP), when known: HELLO lists it so that clients can
    /// find every member.
    pub client: Option<SocketAddr>,
}

/// How one member runs.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This member's id.
    pub id: NodeId,
    /// Every member, this one included.
    pub members: BTreeMap<NodeId, MemberAddrs>,
    /// How long one consensus tick is; heartbeats and election timeouts
    /// are counted in ticks (see [`consensus::Config::new`]).
    pub tick: Duration,
    /// Take a snapshot once the current log segment holds this many bytes,
    /// or as many as the last snapshot if that is more.
    pub snapshot_after_bytes: u64,
    /// How long a client request may wait for its entry to be applied
    /// before it is answered with an error.
    pub request_timeout: Duration,
    /// Seeds everything random in this member (election jitter, backoff,
    /// job ids), so a simulated run replays exactly.
    pub seed: u64,
    /// What a test harness sees and injects (none for a real member).
    pub hooks: Hooks,
}

impl NodeConfig {
    /// Defaults for a member `id` of `members`.
    pub fn new(id: NodeId, members: BTreeMap<NodeId, MemberAddrs>) -> Self {
        NodeConfig {
            id,
            members,
            tick: Duration::from_millis(10),
            snapshot_after_bytes: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            seed: id,
            hooks: Hooks::default(),
        }
    }
}

/// Why a member stopped.
#[derive(Debug, Error)]
pub enum NodeError {
    /// The write-ahead log failed or holds damage it cannot repair.
    #[error("{0}")]
    Wal(#[from] WalError),
    /// A snapshot on disk or from a peer does not decode.
    #[error("snapshot for slot {slot} is unusable: {reason}")]
    Snapshot {
        /// The slot it claims to cover.
        slot: Slot,
        /// What is wrong.
        reason: String,
    },
    /// A log record does not decode although its checksum matched.
    #[error("log record {index} does not decode: {reason}")]
    Record {
        /// Its position among the recovered records.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A background task of the member failed.
    #[error("background task failed: {0}")]
    Task(String),
}

/// Why a client's write was not applied (as far as this member knows: it
/// may still be applied later, so clients retry with the same job id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum WriteError {
    /// No leader answered in time: an election, a partition, or overload.
    #[error("NOREPL Timeout reached before the command was replicated; retry")]
    Timeout,
    /// The leader's queue of proposals is full.
    #[error("BUSY too many requests in flight; retry later")]
    Busy,
    /// The member is shutting down.
    #[error("SHUTDOWN the node is stopping")]
    Stopping,
}

/// What a write came to.
pub type WriteOutcome = Result<Response, WriteError>;

/// What a read sees: the member's applied state and status.
pub struct View<'a> {
    /// The applied job state.
    pub machine: &'a StateMachine,
    /// The consensus replica's status.
    pub status: Status,
    /// This member's configuration.
    pub config: &'a NodeConfig,
    /// Clients parked in a blocking GETJOB, per queue.
    pub blocked: &'a BTreeMap<String, usize>,
    /// Log and snapshot figures.
    pub storage: StorageStatus,
    /// When each peer was last heard from (any frame).
    pub heard_from: &'a BTreeMap<NodeId, Instant>,
}

/// Log and snapshot figures for INFO.
#[derive(Clone, Copy, Debug, Default)]
pub struct StorageStatus {
    /// Records appended to the log since start.
    pub appended_records: u64,
    /// Records known durable.
    pub durable_records: u64,
    /// Bytes in the current log segment.
    pub segment_bytes: u64,
    /// The slot of the last snapshot on disk.
    pub snapshot_slot: Slot,
}

/// A read, computed on the event loop from the current [`View`].
pub type ReadFn = Box<dyn FnOnce(&View<'_>) -> crate::resp::Value + Send>;

/// A client request handed to the event loop.
pub enum ClientInput {
    /// A read of the local applied state (possibly behind the leader's).
    Read {
        /// Computes the reply.
        read: ReadFn,
        /// Where the reply goes.
        reply: oneshot::Sender<crate::resp::Value>,
    },
    /// A command to replicate and apply; answered when this member applies it.
    Write {
        /// The command.
        command: Command,
        /// Answer with [`WriteError::Timeout`] after this.
        deadline: Instant,
        /// Where the outcome goes.
        reply: oneshot::Sender<WriteOutcome>,
    },
    /// A command built from the applied state at the moment it is
    /// proposed (QCONFIG keeps the setting it does not name).
    WriteFrom {
        /// Builds the command.
        build: Box<dyn FnOnce(&StateMachine) -> Command + Send>,
        /// Answer with [`WriteError::Timeout`] after this.
        deadline: Instant,
        /// Where the outcome goes.
        reply: oneshot::Sender<WriteOutcome>,
    },
    /// GETJOB that waits (until `deadline`, or forever) for a job in one of
    /// `queues` unless `nohang`.
    Get {
        /// Queues, in the order to scan.
        queues: Vec<String>,
        /// The most jobs to take.
        count: u32,
        /// Answer at once, with whatever there is.
        nohang: bool,
        /// Give up (answer with no jobs) after this; `None` waits forever.
        deadline: Option<Instant>,
        /// Where the outcome goes.
        reply: oneshot::Sender<WriteOutcome>,
    },
}

/// A handle for submitting client requests to a running member.
#[derive(Clone)]
pub struct NodeHandle {
    inbox: mpsc::Sender<Input>,
}

impl NodeHandle {
    /// Hands `input` to the event loop. False if the member has stopped.
    pub async fn submit(&self, input: ClientInput) -> bool {
        self.inbox.send(Input::Client(input)).await.is_ok()
    }
}

/// What the event loop reacts to.
pub(crate) enum Input {
    Peer(NodeId, PeerFrame),
    Client(ClientInput),
    Synced(Result<u64, WalError>),
    /// The background snapshot finished: collect it from `snapshot_task`.
    SnapshotDone,
}

/// A snapshot being written in the background.
struct SnapshotTask {
    handle: tokio::task::JoinHandle<Result<SnapshotInstalled, WalError>>,
    slot: Slot,
    payload: Bytes,
}

impl From<(NodeId, PeerFrame)> for Input {
    fn from((from, frame): (NodeId, PeerFrame)) -> Self {
        Input::Peer(from, frame)
    }
}

/// One record of the write-ahead log: what consensus asked to persist.
#[derive(Debug, Serialize, Deserialize)]
enum WalRecord {
    Promised(Ballot),
    Accepted {
        slot: Slot,
        ballot: Ballot,
        entry: Entry<Proposal>,
    },
}

impl WalRecord {
    fn accepted(record: &AcceptedRecord<Proposal>) -> Self {
        WalRecord::Accepted {
            slot: record.slot,
            ballot: record.ballot,
            entry: record.entry.clone(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("in-memory encoding cannot fail")
    }
}

/// A snapshot, as written to disk and sent to peers: the state machine and
/// the record of applied requests, after applying `slot`.
#[derive(Serialize, Deserialize)]
struct NodeSnapshot {
    slot: Slot,
    state: Bytes,
    applied_requests: AppliedRequests,
}

/// Room kept in front of the state machine's snapshot for the slot and the
/// state's length (two varints of at most ten bytes each).
const SNAPSHOT_HEADER_ROOM: usize = 20;

impl NodeSnapshot {
    /// The snapshot after applying `slot`, encoded as a `NodeSnapshot`.
    /// The state machine writes its part straight into the buffer, after
    /// room for what goes in front of it, so the state is not copied.
    fn encode(slot: Slot, machine: &StateMachine, applied_requests: &AppliedRequests) -> Bytes {
        let mut bytes = machine.snapshot_into(vec![0; SNAPSHOT_HEADER_ROOM]);
        let state_len = bytes.len() - SNAPSHOT_HEADER_ROOM;
        // `slot`, then the length prefix of `state` (a tuple encodes as its
        // fields one after another, and a length as a varint like a u64).
        let header = postcard::to_allocvec(&(slot, state_len as u64))
            .expect("in-memory encoding cannot fail");
        let start = SNAPSHOT_HEADER_ROOM - header.len();
        bytes[start..SNAPSHOT_HEADER_ROOM].copy_from_slice(&header);
        let bytes =
            postcard::to_extend(applied_requests, bytes).expect("in-memory encoding cannot fail");
        Bytes::from(bytes).slice(start..)
    }

    fn decode(bytes: &[u8]) -> Result<Self, NodeError> {
        postcard::from_bytes(bytes).map_err(|e| NodeError::Snapshot {
            slot: 0,
            reason: e.to_string(),
        })
    }

    fn restore_machine(&self) -> Result<StateMachine, NodeError> {
        StateMachine::restore(&self.state).map_err(|e| NodeError::Snapshot {
            slot: self.slot,
            reason: e.to_string(),
        })
    }
}

/// A `Ready`'s second half, held until the log records of its first half
/// (and of every earlier one) are durable.
struct Held {
    lsn: u64,
    messages: Vec<Message<Proposal>>,
    committed: Vec<Committed<Proposal>>,
    dropped: Vec<Proposal>,
    snapshot_requests: Vec<NodeId>,
    /// The replica's commit point once this `Ready` was out: safe to
    /// announce when it is durable.
    commit_through: Slot,
    /// Commit points taken off the `Accept`s sent early: sent as `Commit`s
    /// once durable.
    commits_owed: CommitsOwed,
}

/// Per peer, the ballot and commit point an early `Accept` could not carry.
type CommitsOwed = BTreeMap<NodeId, (Ballot, Slot)>;

/// What a pending request is.
enum PendingKind {
    Write,
    /// A GETJOB, parked again if it comes back empty while it may wait.
    Get {
        queues: Vec<String>,
        count: u32,
        wait: Wait,
    },
}

/// How long a GETJOB may wait for a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// Not at all (NOHANG).
    NoHang,
    /// Until its TIMEOUT.
    Until(Instant),
    /// As long as it takes (no TIMEOUT).
    Forever,
}

impl Wait {
    fn new(nohang: bool, deadline: Option<Instant>) -> Wait {
        match (nohang, deadline) {
            (true, _) => Wait::NoHang,
            (false, Some(deadline)) => Wait::Until(deadline),
            (false, None) => Wait::Forever,
        }
    }

    /// True while the GETJOB may still wait at `now`.
    fn may_wait(self, now: Instant) -> bool {
        match self {
            Wait::NoHang => false,
            Wait::Until(deadline) => deadline > now,
            Wait::Forever => true,
        }
    }
}

/// A local client's request on its way through the log.
struct Pending {
    command: Command,
    kind: PendingKind,
    /// When to stop waiting for it to be applied.
    deadline: Instant,
    /// The member it was last proposed by or forwarded to, and when.
    routed: Option<(NodeId, Instant)>,
    reply: oneshot::Sender<WriteOutcome>,
}

/// A GETJOB waiting for a job.
struct Parked {
    queues: Vec<String>,
    count: u32,
    wait: Wait,
    reply: oneshot::Sender<WriteOutcome>,
}

/// Limits on what a member holds for its clients.
const MAX_PARKED_GETS: usize = 100_000;
/// How often a member says Hello to every peer.
const HELLO_EVERY: Duration = Duration::from_millis(300);
/// A forwarded request unanswered this long is forwarded again.
const REFORWARD_AFTER: Duration = Duration::from_secs(2);
/// Requests routed per event-loop pass before `ready()` is taken, so one
/// pass batches many client commands into few slots.
const MAX_INPUTS_PER_PASS: usize = 4096;

/// A running member's state, owned by its event loop.
struct Node<D: Disk> {
    config: NodeConfig,
    replica: Replica<Proposal>,
    machine: StateMachine,
    wal: Wal<D>,
    peers: PeerLinks,
    inbox: mpsc::Sender<Input>,
    /// Ready halves waiting for durability, oldest first.
    held: VecDeque<Held>,
    /// Accepted records above the last snapshot: what a new log segment
    /// must carry forward when the old ones are dropped.
    accepted_above: BTreeMap<Slot, AcceptedRecord<Proposal>>,
    promised: Ballot,
    /// When each peer was last heard from, for HELLO.
    heard_from: BTreeMap<NodeId, Instant>,
    /// Where the last `Promised` record is in the log: a leader sends its
    /// `Accept`s early only once its promise is durable.
    promised_lsn: u64,
    /// The highest commit point whose every vote is durable here: the most
    /// an `Accept` sent before this member's fsync may announce.
    safe_commit_through: Slot,
    applied_slot: Slot,
    /// The last snapshot on disk, for peers that need it.
    /// (its slot, its `NodeSnapshot` bytes)
    snapshot: Option<(Slot, Bytes)>,
    /// Client requests applied lately, so a second copy is skipped.
    applied_requests: AppliedRequests,
    snapshot_task: Option<SnapshotTask>,
    /// This member's client requests in the log, by request id.
    pending: BTreeMap<u64, Pending>,
    next_request_id: u64,
    /// Requests waiting for a leader to be known.
    unrouted: VecDeque<u64>,
    /// Requests to forward to the leader at the end of this pass.
    to_forward: Vec<Forwarded>,
    parked: VecDeque<Parked>,
    blocked_per_queue: BTreeMap<String, usize>,
    /// This run of the member: distinguishes its requests from those of
    /// earlier runs, whose entries it replays after a restart.
    incarnation: u64,
    /// The highest stamp this member has proposed.
    last_stamp_ms: u64,
    last_tick_proposed: Option<Instant>,
    /// When this member last said Hello to every peer.
    last_hello_sent: Option<Instant>,
}

/// Runs member `config.id` until `shutdown` completes: recovers from `disk`,
/// then serves peers on `peer_listener` and hands back a [`NodeHandle`]
/// through `ready` for the client server.
pub async fn run<D: Disk>(
    config: NodeConfig,
    disk: D,
    peer_listener: TcpListener,
    ready: oneshot::Sender<NodeHandle>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NodeError> {
    let (inbox, mut inputs) = mpsc::channel(16 * 1024);
    let mut node = Node::recover(config, disk, inbox.clone()).await?;
    tokio::spawn(peer::accept_peers(
        peer_listener,
        node.config.id,
        inbox.clone(),
    ));
    let _ = ready.send(NodeHandle {
        inbox: inbox.clone(),
    });
    drop(inbox);
    let mut ticker = tokio::time::interval(node.config.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            input = inputs.recv() => {
                let Some(input) = input else { break };
                node.handle(input).await?;
                // Take whatever else has arrived, so that one pass (and one
                // `ready()`) covers many requests.
                for _ in 0..MAX_INPUTS_PER_PASS {
                    match inputs.try_recv() {
                        Ok(input) => node.handle(input).await?,
                        Err(_) => break,
                    }
                }
            }
            _ = ticker.tick() => node.on_tick(),
        }
        node.flush_forwards();
        node.process_ready().await?;
    }
    node.stop();
    Ok(())
}

impl<D: Disk> Node<D> {
    /// Rebuilds the member from its snapshot and log.
    async fn recover(
        config: NodeConfig,
        disk: D,
        inbox: mpsc::Sender<Input>,
    ) -> Result<Self, NodeError> {
        let (wal, recovery) = Wal::open(disk).await?;
        if let Some(tail) = &recovery.truncated {
            tracing::warn!("log tail was torn or damaged and has been cut: {tail:?}");
        }
        let (machine, applied_requests, snapshot) = match recovery.snapshot {
            None => (StateMachine::new(), AppliedRequests::default(), None),
            Some(bytes) => {
                let snapshot = NodeSnapshot::decode(&bytes)?;
                let machine = snapshot.restore_machine()?;
                let slot = snapshot.slot;
                (
                    machine,
                    snapshot.applied_requests,
                    Some((slot, Bytes::from(bytes))),
                )
            }
        };
        let snapshot_slot = snapshot.as_ref().map_or(0, |(slot, _)| *slot);
        let mut durable = DurableState::<Proposal> {
            snapshot_slot,
            ..DurableState::default()
        };
        let mut accepted_above = BTreeMap::new();
        for (index, bytes) in recovery.records.iter().enumerate() {
            let record: WalRecord = postcard::from_bytes(bytes).map_err(|e| NodeError::Record {
                index,
                reason: e.to_string(),
            })?;
            match record {
                WalRecord::Promised(ballot) => durable.promised = durable.promised.max(ballot),
                WalRecord::Accepted {
                    slot,
                    ballot,
                    entry,
                } => {
                    if slot > snapshot_slot {
                        let record = AcceptedRecord {
                            slot,
                            ballot,
                            entry,
                        };
                        accepted_above.insert(slot, record.clone());
                        durable.accepted.push(record);
                    }
                }
            }
        }
        let promised = durable.promised;
        tracing::info!(
            id = config.id,
            snapshot_slot,
            jobs = machine.job_count(),
            accepted = accepted_above.len(),
            ?promised,
            "recovered"
        );
        let mut consensus = Config::new(
            config.id,
            config.members.keys().copied().collect::<Vec<_>>(),
        );
        consensus.seed = config.seed;
        #[cfg(feature = "canaries")]
        if let Some(hooks::NodeCanary::Consensus(canary)) = config.hooks.canary {
            consensus.canary = Some(canary);
        }
        let replica =
            Replica::restart(consensus, durable).map_err(|e| NodeError::Config(e.to_string()))?;
        let peer_addrs = config
            .members
            .iter()
            .map(|(&id, addrs)| (id, addrs.peer))
            .collect();
        let peers = PeerLinks::start(
            config.id,
            &peer_addrs,
            config.seed,
            config.hooks.links.clone(),
        );
        let last_stamp_ms = machine.now_ms();
        Ok(Node {
            replica,
            machine,
            wal,
            peers,
            inbox,
            held: VecDeque::new(),
            accepted_above,
            promised,
            promised_lsn: 0,
            heard_from: BTreeMap::new(),
            safe_commit_through: snapshot_slot,
            applied_slot: snapshot_slot,
            snapshot,
            applied_requests,
            snapshot_task: None,
            pending: BTreeMap::new(),
            next_request_id: 1,
            unrouted: VecDeque::new(),
            to_forward: Vec::new(),
            parked: VecDeque::new(),
            blocked_per_queue: BTreeMap::new(),
            incarnation: draw_incarnation(config.seed),
            last_stamp_ms,
            last_tick_proposed: None,
            last_hello_sent: None,
            config,
        })
    }

    async fn handle(&mut self, input: Input) -> Result<(), NodeError> {
        match input {
            Input::Peer(from, frame) => self.on_peer(from, frame),
            Input::Client(request) => self.on_client(request),
            Input::Synced(result) => {
                let lsn = result?;
                self.wal.synced(lsn)?;
            }
            Input::SnapshotDone => self.finish_snapshot_task().await?,
        }
        Ok(())
    }

    // ----- Peers -------------------------------------------------------------

    fn on_peer(&mut self, from: NodeId, frame: PeerFrame) {
        self.heard_from.insert(from, Instant::now());
        match frame {
            PeerFrame::Hello { .. } => {}
            PeerFrame::Paxos(message) => {
                if let Err(error) = self.replica.step(message) {
                    tracing::warn!(from, %error, "ignored a peer message");
                }
            }
            PeerFrame::Forward {
                origin,
                incarnation,
                requests,
            } => self.on_forward(origin, incarnation, requests),
            PeerFrame::Refused {
                request_ids,
                leader_hint,
            } => {
                tracing::debug!(
                    from,
                    ?leader_hint,
                    count = request_ids.len(),
                    "requests refused"
                );
                for request_id in request_ids {
                    if self.pending.contains_key(&request_id) {
                        self.unrouted.push_back(request_id);
                    }
                }
            }
        }
    }

    /// A follower's clients' requests: propose them if leading, else say no.
    fn on_forward(&mut self, origin: NodeId, incarnation: u64, requests: Vec<Forwarded>) {
        let mut refused = Vec::new();
        for request in requests {
            let proposal = Proposal {
                stamp_ms: self.stamp_ms(),
                origin,
                incarnation,
                request_id: request.request_id,
                command: request.command,
            };
            if let Err(error) = self.replica.propose(proposal) {
                refused.push(error.into_value().request_id);
            }
        }
        if !refused.is_empty() {
            let frame = PeerFrame::Refused {
                request_ids: refused,
                leader_hint: self.replica.leader(),
            };
            self.peers.send(origin, frame);
        }
    }

    // ----- Clients -----------------------------------------------------------

    fn on_client(&mut self, request: ClientInput) {
        match request {
            ClientInput::Read { read, reply } => {
                let view = View {
                    machine: &self.machine,
                    status: self.replica.status(),
                    config: &self.config,
                    blocked: &self.blocked_per_queue,
                    heard_from: &self.heard_from,
                    storage: StorageStatus {
                        appended_records: self.wal.appended(),
                        durable_records: self.wal.durable(),
                        segment_bytes: self.wal.current_segment_bytes(),
                        snapshot_slot: self.snapshot.as_ref().map_or(0, |(slot, _)| *slot),
                    },
                };
                let _ = reply.send(read(&view));
            }
            ClientInput::Write {
                command,
                deadline,
                reply,
            } => self.submit(command, PendingKind::Write, deadline, reply),
            ClientInput::WriteFrom {
                build,
                deadline,
                reply,
            } => {
                let command = build(&self.machine);
                self.submit(command, PendingKind::Write, deadline, reply);
            }
            ClientInput::Get {
                queues,
                count,
                nohang,
                deadline,
                reply,
            } => {
                #[cfg(feature = "canaries")]
                if self.config.hooks.is(hooks::NodeCanary::LeaseNotReplicated) {
                    // Broken on purpose: the lease is taken here only.
                    let stamp_ms = self.stamp_ms();
                    let response = self.machine.apply(stamp_ms, Command::Get { queues, count });
                    let _ = reply.send(Ok(response));
                    return;
                }
                let wait = Wait::new(nohang, deadline);
                if nohang || self.any_queued(&queues) {
                    self.submit_get(queues, count, wait, reply);
                } else if self.parked.len() >= MAX_PARKED_GETS {
                    let _ = reply.send(Err(WriteError::Busy));
                } else {
                    self.park(Parked {
                        queues,
                        count,
                        wait,
                        reply,
                    });
                }
            }
        }
    }

    /// True when a GETJOB on `queues` would find a job now (a queue paused
    /// for output has none to give: proposing would only fill the log).
    fn any_queued(&self, queues: &[String]) -> bool {
        queues.iter().any(|queue| self.machine.takeable(queue) > 0)
    }

    fn submit_get(
        &mut self,
        queues: Vec<String>,
        count: u32,
        wait: Wait,
        reply: oneshot::Sender<WriteOutcome>,
    ) {
        let command = Command::Get {
            queues: queues.clone(),
            count,
        };
        // Once proposed, the outcome is awaited even past the client's
        // TIMEOUT (up to the request timeout): answering nil while the
        // entry may still be applied would lease jobs to nobody, and with
        // a TIMEOUT shorter than a round through the log, again and again.
        let request_deadline = Instant::now() + self.config.request_timeout;
        let kind = PendingKind::Get {
            queues,
            count,
            wait,
        };
        self.submit(command, kind, request_deadline, reply);
    }

    fn park(&mut self, parked: Parked) {
        for queue in &parked.queues {
            *self.blocked_per_queue.entry(queue.clone()).or_default() += 1;
        }
        self.parked.push_back(parked);
    }

    fn unpark_counts(&mut self, parked: &Parked) {
        for queue in &parked.queues {
            if let Some(count) = self.blocked_per_queue.get_mut(queue) {
                *count -= 1;
                if *count == 0 {
                    self.blocked_per_queue.remove(queue);
                }
            }
        }
    }

    /// Starts a local client's command on its way into the log.
    fn submit(
        &mut self,
        command: Command,
        kind: PendingKind,
        deadline: Instant,
        reply: oneshot::Sender<WriteOutcome>,
    ) {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        self.pending.insert(
            request_id,
            Pending {
                command,
                kind,
                deadline,
                routed: None,
                reply,
            },
        );
        self.route(request_id);
    }

    /// Proposes a pending request if leading, queues it for the leader
    /// otherwise, or keeps it until a leader is known.
    fn route(&mut self, request_id: u64) {
        let Some(pending) = self.pending.get(&request_id) else {
            return;
        };
        let command = pending.command.clone();
        let now = Instant::now();
        let route_to = if self.replica.is_leader() {
            Some(self.config.id)
        } else {
            self.replica.leader()
        };
        if let Some(pending) = self.pending.get_mut(&request_id) {
            pending.routed = route_to.map(|to| (to, now));
        }
        if self.replica.is_leader() {
            let proposal = Proposal {
                stamp_ms: self.stamp_ms(),
                origin: self.config.id,
                incarnation: self.incarnation,
                request_id,
                command,
            };
            if self.replica.propose(proposal).is_err() {
                self.finish(request_id, Err(WriteError::Busy));
            }
        } else if self.replica.leader().is_some() {
            self.to_forward.push(Forwarded {
                request_id,
                command,
            });
        } else {
            self.unrouted.push_back(request_id);
        }
    }

    fn flush_forwards(&mut self) {
        if self.to_forward.is_empty() {
            return;
        }
        let requests = std::mem::take(&mut self.to_forward);
        match self.replica.leader() {
            Some(leader) if leader != self.config.id => {
                let frame = PeerFrame::Forward {
                    origin: self.config.id,
                    incarnation: self.incarnation,
                    requests,
                };
                if !self.peers.send(leader, frame) {
                    tracing::debug!(
                        leader,
                        "forward queue full; requests wait for their timeout"
                    );
                }
            }
            _ => {
                for request in requests {
                    self.unrouted.push_back(request.request_id);
                }
            }
        }
    }

    /// Answers a pending request.
    fn finish(&mut self, request_id: u64, outcome: WriteOutcome) {
        if let Some(pending) = self.pending.remove(&request_id) {
            let _ = pending.reply.send(outcome);
        }
    }

    // ----- Time --------------------------------------------------------------

    /// The leader's stamp for a new proposal: its wall clock, but never
    /// below a stamp already proposed or applied, so that log time never
    /// goes backwards even when the clock does.
    fn stamp_ms(&mut self) -> u64 {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64)
            .saturating_add_signed(self.config.hooks.clock_offset_ms());
        self.last_stamp_ms = self.last_stamp_ms.max(wall_ms).max(self.machine.now_ms());
        self.last_stamp_ms
    }

    fn on_tick(&mut self) {
        self.replica.tick();
        let now = Instant::now();
        // Followers exchange no consensus messages, so every member greets
        // every peer now and then: each knows who is in touch (HELLO).
        if self
            .last_hello_sent
            .is_none_or(|at| now.duration_since(at) >= HELLO_EVERY)
        {
            self.last_hello_sent = Some(now);
            let me = self.config.id;
            for &peer in self.config.members.keys().filter(|&&id| id != me) {
                self.peers.send(peer, PeerFrame::Hello { from: me });
            }
        }
        if self.replica.is_leader() {
            // Move log time forward when a lease, delay or TTL falls due, at
            // most once per tick.
            let due = self.machine.next_due_ms();
            let stamp = self.stamp_ms();
            let recently = self
                .last_tick_proposed
                .is_some_and(|at| now.duration_since(at) < self.config.tick);
            if due.is_some_and(|due| due <= stamp) && !recently {
                self.last_tick_proposed = Some(now);
                let tick = Proposal {
                    stamp_ms: stamp,
                    origin: 0,
                    incarnation: 0,
                    request_id: 0,
                    command: Command::Tick,
                };
                let _ = self.replica.propose(tick);
            }
        }
        // Requests that waited for a leader, and requests sent to a member
        // that no longer leads (or, if forwarded, that have gone unanswered
        // for a while: the frame may have been lost). Sending one twice is
        // safe: ADDJOB carries its job id, and the other commands are
        // at-least-once by nature.
        if let Some(leader) = self.replica.leader() {
            let mut again: Vec<u64> = self.unrouted.drain(..).collect();
            again.extend(self.pending.iter().filter_map(|(&id, pending)| {
                let (to, at) = pending.routed?;
                let stale = to != leader
                    || (to != self.config.id && now.duration_since(at) >= REFORWARD_AFTER);
                stale.then_some(id)
            }));
            again.sort_unstable();
            again.dedup();
            for request_id in again {
                self.route(request_id);
            }
        }
        // Requests out of time.
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, pending)| pending.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        for request_id in expired {
            let pending = self.pending.remove(&request_id).expect("pending");
            match pending.kind {
                // A GETJOB that still may wait goes back to waiting.
                PendingKind::Get {
                    queues,
                    count,
                    wait,
                } if wait.may_wait(now) => self.park(Parked {
                    queues,
                    count,
                    wait,
                    reply: pending.reply,
                }),
                // NOHANG without an answer: whether it took jobs is
                // unknown, as for any write.
                PendingKind::Get {
                    wait: Wait::NoHang, ..
                } => {
                    let _ = pending.reply.send(Err(WriteError::Timeout));
                }
                // Its TIMEOUT has passed.
                PendingKind::Get { .. } => {
                    let _ = pending.reply.send(Ok(Response::Jobs(Vec::new())));
                }
                PendingKind::Write => {
                    let _ = pending.reply.send(Err(WriteError::Timeout));
                }
            }
        }
        self.unrouted.retain(|id| self.pending.contains_key(id));
        // Parked GETJOBs out of time, or whose client left.
        let mut index = 0;
        while index < self.parked.len() {
            let parked = &self.parked[index];
            let timed_out = !parked.wait.may_wait(now);
            if timed_out || parked.reply.is_closed() {
                let parked = self.parked.remove(index).expect("parked");
                self.unpark_counts(&parked);
                let _ = parked.reply.send(Ok(Response::Jobs(Vec::new())));
            } else {
                index += 1;
            }
        }
    }

    // ----- Consensus output --------------------------------------------------

    /// Persists, sends and applies what the replica produced, in that order.
    async fn process_ready(&mut self) -> Result<(), NodeError> {
        while self.replica.has_ready() {
            let ready = self.replica.ready();
            if let Some(snapshot) = ready.snapshot {
                self.install_received_snapshot(snapshot.slot, snapshot.data)
                    .await?;
            }
            if let Some(ballot) = ready.promised {
                self.promised = ballot;
                self.append(&WalRecord::Promised(ballot))?;
                self.promised_lsn = self.wal.appended();
            }
            for record in ready.accepted {
                self.append(&WalRecord::accepted(&record))?;
                self.accepted_above.insert(record.slot, record);
            }
            if let Some(leadership) = ready.leadership {
                if let Some(observer) = &self.config.hooks.observer {
                    observer.leadership(self.config.id, leadership.leader, leadership.ballot);
                }
                tracing::info!(
                    id = self.config.id,
                    leader = ?leadership.leader,
                    ballot = ?leadership.ballot,
                    "leadership changed"
                );
            }
            let (messages, commits_owed) = self.send_accepts_early(ready.messages);
            self.held.push_back(Held {
                lsn: self.wal.appended(),
                messages,
                committed: ready.committed,
                dropped: ready.dropped_proposals,
                snapshot_requests: ready.snapshot_requests,
                commit_through: self.replica.status().commit_through,
                commits_owed,
            });
        }
        self.start_sync();
        self.release_held();
        self.maybe_snapshot()?;
        Ok(())
    }

    /// Sends a leader's `Accept`s now, before its own records are durable,
    /// so that its fsync and its followers' overlap; returns the messages
    /// that must wait, and the commit points taken off the early ones.
    ///
    /// An `Accept` is a request, not a vote, so it may leave early. What it
    /// must not carry early is a commit point counting this member's own
    /// votes that are not yet durable (were it to crash, a slot announced
    /// chosen could be chosen again differently), so an early `Accept`
    /// announces at most `safe_commit_through`, and the rest follows in a
    /// `Commit` once durable. Nor may it leave before the leader's promise
    /// of its ballot is durable: a member restarted without it could lead
    /// again with the same ballot and different values.
    fn send_accepts_early(
        &mut self,
        messages: Vec<Message<Proposal>>,
    ) -> (Vec<Message<Proposal>>, CommitsOwed) {
        let mut owed = CommitsOwed::new();
        if self.wal.durable() < self.promised_lsn {
            return (messages, owed);
        }
        let mut wait = Vec::with_capacity(messages.len());
        for mut message in messages {
            let Payload::Accept {
                ballot,
                commit_through,
                ..
            } = &mut message.payload
            else {
                wait.push(message);
                continue;
            };
            if *commit_through > self.safe_commit_through {
                let announced = owed.entry(message.to).or_insert((*ballot, 0));
                *announced = (*ballot, announced.1.max(*commit_through));
                *commit_through = self.safe_commit_through;
            }
            self.peers.send(message.to, PeerFrame::Paxos(message));
        }
        (wait, owed)
    }

    fn append(&mut self, record: &WalRecord) -> Result<(), NodeError> {
        self.wal.append(&record.encode())?;
        Ok(())
    }

    /// Starts a group commit covering every record appended so far, unless
    /// one is running (the next starts when it ends).
    fn start_sync(&mut self) {
        if let Some(job) = self.wal.start_sync() {
            let inbox = self.inbox.clone();
            tokio::spawn(async move {
                let result = job.run().await;
                let _ = inbox.send(Input::Synced(result)).await;
            });
        }
    }

    /// Sends, applies and answers everything whose records are durable.
    fn release_held(&mut self) {
        let mut applied_any = false;
        #[cfg(feature = "canaries")]
        let durable = if self.config.hooks.is(hooks::NodeCanary::AckBeforeFsync) {
            self.wal.appended()
        } else {
            self.wal.durable()
        };
        #[cfg(not(feature = "canaries"))]
        let durable = self.wal.durable();
        while self.held.front().is_some_and(|held| held.lsn <= durable) {
            let held = self.held.pop_front().expect("held");
            self.safe_commit_through = self.safe_commit_through.max(held.commit_through);
            for message in held.messages {
                let to = message.to;
                self.peers.send(to, PeerFrame::Paxos(message));
            }
            for (to, (ballot, commit_through)) in held.commits_owed {
                let commit = Message {
                    from: self.config.id,
                    to,
                    payload: Payload::Commit {
                        ballot,
                        commit_through,
                    },
                };
                self.peers.send(to, PeerFrame::Paxos(commit));
            }
            for committed in held.committed {
                applied_any = true;
                self.apply(committed);
            }
            for proposal in held.dropped {
                if self.is_mine(&proposal) {
                    if self.pending.contains_key(&proposal.request_id) {
                        self.unrouted.push_back(proposal.request_id);
                    }
                } else if proposal.origin != 0 {
                    let frame = PeerFrame::Refused {
                        request_ids: vec![proposal.request_id],
                        leader_hint: self.replica.leader(),
                    };
                    self.peers.send(proposal.origin, frame);
                }
            }
            for peer in held.snapshot_requests {
                if let Some((slot, payload)) = &self.snapshot {
                    if let Err(error) = self.replica.send_snapshot(peer, *slot, payload.clone()) {
                        tracing::warn!(peer, %error, "cannot send snapshot");
                    }
                }
            }
        }
        if applied_any {
            self.wake_parked();
        }
    }

    /// True for a proposal made for one of this run's own clients.
    fn is_mine(&self, proposal: &Proposal) -> bool {
        proposal.origin == self.config.id
            && proposal.incarnation == self.incarnation
            && proposal.request_id != 0
    }

    fn apply(&mut self, committed: Committed<Proposal>) {
        if committed.slot <= self.applied_slot {
            // Chosen before a snapshot from the leader that this member
            // installed while the entry waited for an fsync: its effect is
            // in that snapshot already. (Its local clients get NOREPL.)
            return;
        }
        for proposal in committed.entry.values() {
            if proposal.request_id != 0 {
                let now_ms = self.machine.now_ms().max(proposal.stamp_ms);
                let first = self.applied_requests.first_time(
                    now_ms,
                    proposal.origin,
                    proposal.incarnation,
                    proposal.request_id,
                );
                if !first {
                    // A second copy of a request (forwarded again after a
                    // leader change): it took effect already. Its stamp
                    // still moves log time, as every stamp in the log does.
                    self.machine.apply(proposal.stamp_ms, Command::Tick);
                    tracing::debug!(
                        slot = committed.slot,
                        origin = proposal.origin,
                        request = proposal.request_id,
                        "skipped a request applied before"
                    );
                    continue;
                }
            }
            let response = self
                .machine
                .apply(proposal.stamp_ms, proposal.command.clone());
            tracing::trace!(
                slot = committed.slot,
                origin = proposal.origin,
                request = proposal.request_id,
                command = ?proposal.command,
                ?response,
                "applied"
            );
            if !self.is_mine(proposal) {
                continue;
            }
            let Some(pending) = self.pending.remove(&proposal.request_id) else {
                continue;
            };
            match (pending.kind, &response) {
                // Someone else took the job first: wait again.
                (
                    PendingKind::Get {
                        queues,
                        count,
                        wait,
                    },
                    Response::Jobs(jobs),
                ) if jobs.is_empty() && wait.may_wait(Instant::now()) => {
                    self.park(Parked {
                        queues,
                        count,
                        wait,
                        reply: pending.reply,
                    });
                }
                _ => {
                    let _ = pending.reply.send(Ok(response));
                }
            }
        }
        self.applied_slot = committed.slot;
        self.accepted_above.remove(&committed.slot);
        if let Some(observer) = &self.config.hooks.observer {
            let state_digest = (committed.slot % hooks::STATE_DIGEST_EVERY_SLOTS == 0)
                .then(|| hooks::digest(&self.machine.snapshot()));
            let applied = hooks::Applied {
                entry: &committed.entry,
                log_time_ms: self.machine.now_ms(),
                state_digest,
            };
            observer.applied(self.config.id, committed.slot, applied);
        }
    }

    /// Sends parked GETJOBs on their way when their queues have jobs: for
    /// each queue, at most as many as it holds, oldest waiter first.
    fn wake_parked(&mut self) {
        if self.parked.is_empty() {
            return;
        }
        let mut available: BTreeMap<String, usize> = BTreeMap::new();
        let mut index = 0;
        while index < self.parked.len() {
            let parked = &self.parked[index];
            let mut takes = None;
            for queue in &parked.queues {
                let left = available
                    .entry(queue.clone())
                    .or_insert_with(|| self.machine.takeable(queue));
                if *left > 0 {
                    *left -= 1;
                    takes = Some(());
                    break;
                }
            }
            if takes.is_some() {
                let parked = self.parked.remove(index).expect("parked");
                self.unpark_counts(&parked);
                self.submit_get(parked.queues, parked.count, parked.wait, parked.reply);
            } else {
                index += 1;
            }
        }
    }

    // ----- Snapshots ---------------------------------------------------------

    /// Starts a new log segment that carries what is still needed after a
    /// snapshot at `slot` (the promise and every accepted value above it),
    /// and returns the job that writes `payload` as the snapshot and then
    /// drops the older segments.
    fn start_install(&mut self, slot: Slot, payload: &Bytes) -> Result<InstallJob<D>, NodeError> {
        let carry = std::iter::once(WalRecord::Promised(self.promised).encode()).chain(
            self.accepted_above
                .range(slot + 1..)
                .map(|(_, record)| WalRecord::accepted(record).encode()),
        );
        let rotation = self.wal.rotate(carry.collect::<Vec<_>>())?;
        Ok(self.wal.install_snapshot(rotation, payload.clone()))
    }

    /// Snapshots the state machine once the log segment has grown past the
    /// configured size and past the last snapshot's size, in the
    /// background. The second bound keeps the cost of snapshots in
    /// proportion to the log: a large state is not written out again for
    /// every few megabytes of log (under load, with a million jobs
    /// resident, snapshotting had become most of a member's work).
    fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        let last_snapshot_bytes = self
            .snapshot
            .as_ref()
            .map_or(0, |(_, payload)| payload.len() as u64);
        let threshold = self.config.snapshot_after_bytes.max(last_snapshot_bytes);
        if self.snapshot_task.is_some()
            || !self.wal.can_rotate()
            || self.wal.current_segment_bytes() < threshold
            || self.applied_slot <= self.snapshot.as_ref().map_or(0, |(slot, _)| *slot)
        {
            return Ok(());
        }
        let slot = self.applied_slot;
        let payload = NodeSnapshot::encode(slot, &self.machine, &self.applied_requests);
        let job = self.start_install(slot, &payload)?;
        let inbox = self.inbox.clone();
        let handle = tokio::spawn(async move {
            let result = job.run().await;
            let _ = inbox.send(Input::SnapshotDone).await;
            result
        });
        self.snapshot_task = Some(SnapshotTask {
            handle,
            slot,
            payload,
        });
        Ok(())
    }

    /// Waits for the background snapshot, if one is being written, and
    /// takes note of it.
    async fn finish_snapshot_task(&mut self) -> Result<(), NodeError> {
        let Some(task) = self.snapshot_task.take() else {
            return Ok(());
        };
        let installed = task
            .handle
            .await
            .map_err(|e| NodeError::Task(e.to_string()))??;
        self.on_snapshot_installed(installed, task.slot, task.payload);
        Ok(())
    }

    fn on_snapshot_installed(&mut self, installed: SnapshotInstalled, slot: Slot, payload: Bytes) {
        self.wal.snapshot_installed(installed);
        if self.snapshot.as_ref().is_none_or(|(have, _)| *have < slot) {
            self.snapshot = Some((slot, payload));
        }
        self.accepted_above = self.accepted_above.split_off(&(slot + 1));
        if slot <= self.applied_slot {
            if let Err(error) = self.replica.snapshot_taken(slot) {
                tracing::warn!(%error, "snapshot not reported to consensus");
            }
        }
        tracing::info!(id = self.config.id, slot, "snapshot written");
    }

    /// A snapshot from the leader replaces the state machine; it is durable
    /// before anything after it is sent or applied.
    async fn install_received_snapshot(
        &mut self,
        slot: Slot,
        payload: Bytes,
    ) -> Result<(), NodeError> {
        let snapshot = NodeSnapshot::decode(&payload)?;
        if snapshot.slot != slot {
            return Err(NodeError::Snapshot {
                slot,
                reason: format!("it says it covers slot {}", snapshot.slot),
            });
        }
        let machine = snapshot.restore_machine()?;
        // One snapshot at a time: let a local one finish first.
        self.finish_snapshot_task().await?;
        self.machine = machine;
        self.applied_requests = snapshot.applied_requests;
        self.applied_slot = slot;
        if let Some(observer) = &self.config.hooks.observer {
            observer.installed_snapshot(self.config.id, slot, hooks::digest(&snapshot.state));
        }
        let installed = self.start_install(slot, &payload)?.run().await?;
        self.wal.snapshot_installed(installed);
        self.snapshot = Some((slot, payload));
        self.accepted_above = self.accepted_above.split_off(&(slot + 1));
        tracing::info!(
            id = self.config.id,
            slot,
            "installed a snapshot from the leader"
        );
        Ok(())
    }

    /// Answers every waiting client: the member is stopping.
    fn stop(&mut self) {
        for (_, pending) in std::mem::take(&mut self.pending) {
            let _ = pending.reply.send(Err(WriteError::Stopping));
        }
        for parked in std::mem::take(&mut self.parked) {
            let _ = parked.reply.send(Err(WriteError::Stopping));
        }
    }
}

/// A number for this run of a member, different from its other runs': the
/// seed mixed with the wall clock at start (simulated time under the
/// simulator, so runs replay exactly). Never 0, which marks ticks.
fn draw_incarnation(seed: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    let mut rng = SmallRng::seed_from_u64(seed ^ nanos.rotate_left(23));
    rng.random::<u64>() | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_written_in_place_reads_back_whole() {
        let mut machine = StateMachine::new();
        let mut applied_requests = AppliedRequests::default();
        assert!(applied_requests.first_time(1_000, 2, 7, 1));
        machine.apply(1_000, Command::Tick);
        // Slots and states of one-, two- and many-byte lengths.
        for (slot, jobs) in [(42, 0), (300, 3), (1 << 40, 40)] {
            for n in 0..jobs {
                let id = queue::JobId::new(1, [n as u8; 18], 60_000, 1_000);
                let add = queue::AddJob {
                    id,
                    queue: "q".to_string(),
                    body: Bytes::from(vec![b'x'; 50]),
                    ttl_ms: None,
                    retry_ms: None,
                    delay_ms: None,
                    max_len: None,
                    delivery_limit: None,
                };
                machine.apply(1_000, Command::Add(add));
            }
            let state = machine.snapshot();
            let bytes = NodeSnapshot::encode(slot, &machine, &applied_requests);
            // The same bytes as encoding the owned form.
            let owned = NodeSnapshot {
                slot,
                state: Bytes::from(state.clone()),
                applied_requests: applied_requests.clone(),
            };
            assert_eq!(bytes, postcard::to_allocvec(&owned).expect("encodes"));
            let decoded = NodeSnapshot::decode(&bytes).expect("decodes");
            assert_eq!(decoded.slot, slot);
            assert_eq!(decoded.state, state);
            assert_eq!(decoded.applied_requests, applied_requests);
        }
    }
}

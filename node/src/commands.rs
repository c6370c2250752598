//! The client command layer: Disque's commands, parsed from the arguments a
//! RESP client sends into typed commands, and the replies in Disque's shapes.
//!
//! Both halves are pure: [`parse`] looks only at the arguments, and the
//! builders in [`reply`] look only at what the node hands them (a
//! [`queue::Response`], a [`queue::JobInfo`], the cluster members, the log
//! time). The node decides what needs consensus and what is read locally.
//!
//! ```
//! use bytes::Bytes;
//! use queue::{Command, JobId, Response, StateMachine};
//! use synod::commands::{self, ClientCommand, reply};
//! use synod::resp::Value;
//!
//! let args = ["ADDJOB", "emails", "hello", "0", "RETRY", "30"].map(Bytes::from);
//! let Ok(ClientCommand::AddJob(add)) = commands::parse(&args) else { panic!() };
//! assert_eq!(add.retry_ms, Some(30_000), "Disque's RETRY is in seconds");
//!
//! // The node checks REPLICATE against the cluster, draws the id, proposes.
//! add.check_replicate(3).unwrap();
//! let times = add.times().unwrap();
//! let id = JobId::new(1, [7; 18], times.ttl_ms, times.retry_ms);
//! let mut jobs = StateMachine::new();
//! let response = jobs.apply(1_000, Command::Add(add.to_add_job(id)));
//! assert_eq!(reply::response(&response, false), Value::simple(id.to_string()));
//!
//! // Errors are whole RESP error lines, Disque's words.
//! let bad = commands::parse(&["ACKJOB", "nope"].map(Bytes::from)).unwrap_err();
//! assert_eq!(Value::from(bad), Value::error("BADID Invalid Job ID format."));
//! ```

mod error;
mod parse;
pub mod reply;

use bytes::Bytes;
use queue::{AddJob, Command, JobCursor, JobFilter, JobId, JobTimes, PauseState, QueueError};
use queue::{QueueFilter, QueueStats};

use crate::resp::Protocol;

pub use error::CommandError;
pub use parse::parse;

/// Scans (QSCAN, JSCAN) look at this many items per call unless told.
pub const DEFAULT_SCAN_COUNT: usize = 100;

/// One client command, checked and typed. Units are converted: every time is
/// in milliseconds, whatever unit Disque's grammar uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCommand {
    /// `ADDJOB queue body ms-timeout [REPLICATE n] [DELAY s] [RETRY s]
    /// [TTL s] [MAXLEN n] [ASYNC] [DELIVERY-LIMIT n]`.
    AddJob(AddJobCommand),
    /// `GETJOB [NOHANG] [TIMEOUT ms] [COUNT n] [WITHCOUNTERS] FROM q ...`.
    GetJob(GetJobCommand),
    /// `ACKJOB id ...`.
    AckJob {
        /// The jobs (possibly none, as Disque allows).
        ids: Vec<JobId>,
    },
    /// `FASTACK id ...`: in Synod the same as ACKJOB, since every replica
    /// applies the ack.
    FastAck {
        /// The jobs.
        ids: Vec<JobId>,
    },
    /// `NACK [DELAY s] id ...`; the leading `DELAY` is Synod's addition.
    Nack {
        /// The jobs.
        ids: Vec<JobId>,
        /// Keep them invisible this long before queueing them again.
        delay_ms: u64,
    },
    /// `WORKING id`.
    Working {
        /// The job.
        id: JobId,
    },
    /// `DELJOB id ...`.
    DelJob {
        /// The jobs.
        ids: Vec<JobId>,
    },
    /// `ENQUEUE id ...`.
    Enqueue {
        /// The jobs.
        ids: Vec<JobId>,
    },
    /// `DEQUEUE id ...`.
    Dequeue {
        /// The jobs.
        ids: Vec<JobId>,
    },
    /// `SHOW id`.
    Show {
        /// The job.
        id: JobId,
    },
    /// `QLEN queue`.
    QLen {
        /// The queue.
        queue: String,
    },
    /// `QPEEK queue count`: oldest first, or newest first for a negative
    /// count.
    QPeek {
        /// The queue.
        queue: String,
        /// How many, and from which end.
        count: i64,
    },
    /// `QSTAT queue`.
    QStat {
        /// The queue.
        queue: String,
    },
    /// `QSCAN [cursor] [COUNT n] [BUSYLOOP] [MINLEN n] [MAXLEN n]
    /// [IMPORTRATE r]`.
    QScan(QueueScan),
    /// `JSCAN [cursor] [COUNT n] [BUSYLOOP] [QUEUE q] [STATE s ...]
    /// [REPLY all|id]`.
    JScan(JobScan),
    /// `PAUSE queue option ...` with options `in`, `out`, `all`, `none`,
    /// `state`, `bcast`.
    Pause {
        /// The queue.
        queue: String,
        /// The new state, or `None` to only read it (`PAUSE q state`).
        set: Option<PauseState>,
        /// `BCAST` was given. Every replica applies a PAUSE, so there is
        /// nothing more to send; kept so the node can log it.
        bcast: bool,
    },
    /// Synod's `QCONFIG queue [DELIVERY-LIMIT n|NONE] [DEAD-LETTER q|NONE]`.
    QConfig(QueueConfig),
    /// Bare `HELLO`: Disque's node list.
    DisqueHello,
    /// `HELLO protover [AUTH user pass] [SETNAME name]`: the Redis 6+
    /// handshake that switches the connection's protocol.
    Hello {
        /// The protocol to speak from now on.
        protocol: Protocol,
        /// `AUTH user pass`, if given. Synod has no users (like a Redis
        /// without `requirepass`, any pair is accepted).
        auth: Option<(Bytes, Bytes)>,
        /// `SETNAME name`, if given (checked like `CLIENT SETNAME`).
        client_name: Option<Bytes>,
    },
    /// `INFO [section ...]`.
    Info {
        /// The sections asked for, lowercased; empty for the default set.
        sections: Vec<String>,
    },
    /// `PING [message]`.
    Ping {
        /// The message to echo instead of `PONG`.
        message: Option<Bytes>,
    },
    /// `ECHO message`.
    Echo {
        /// The message.
        message: Bytes,
    },
    /// `QUIT`: reply `OK`, then close.
    Quit,
    /// `SELECT 0`: there is only one database.
    Select,
    /// `CLIENT subcommand ...`.
    Client(ClientSubcommand),
    /// `COMMAND [subcommand ...]`.
    Command(Introspection),
    /// `CONFIG GET pattern ...` and the other CONFIG forms clients send.
    Config(ConfigSubcommand),
}

/// ADDJOB, as the client gave it. The node draws the id (it needs
/// [`times`](Self::times) for that), checks [`check_replicate`]
/// (Self::check_replicate), then proposes [`to_add_job`](Self::to_add_job).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddJobCommand {
    /// The queue.
    pub queue: String,
    /// The job's body.
    pub body: Bytes,
    /// How long the client waits for the job to be replicated (`None`,
    /// from `0`: the member's request timeout, since a reply that never
    /// comes helps no client; Disque waits forever).
    pub timeout_ms: Option<u64>,
    /// `REPLICATE n` (1 to 65535). In Synod every job is on every replica;
    /// this only has to fit the cluster.
    pub replicate: Option<u16>,
    /// `DELAY s`.
    pub delay_ms: Option<u64>,
    /// `RETRY s` (0: at most once).
    pub retry_ms: Option<u64>,
    /// `TTL s`.
    pub ttl_ms: Option<u64>,
    /// `MAXLEN n`.
    pub max_len: Option<u64>,
    /// `ASYNC`: reply before the job is replicated. Synod replies when the
    /// job is chosen either way; kept so the node may use it.
    pub asynchronous: bool,
    /// Synod's `DELIVERY-LIMIT n`: dead-letter the job after `n` deliveries.
    pub delivery_limit: Option<u32>,
}

impl AddJobCommand {
    /// The job's TTL, RETRY and DELAY with Disque's defaults applied, as
    /// the state machine will apply them: what [`JobId::new`] needs.
    pub fn times(&self) -> Result<JobTimes, QueueError> {
        // The id does not take part in the defaults; any will do here.
        self.to_add_job(JobId::new(0, [0; 18], 0, 0)).times()
    }

    /// Disque's `NOREPL` error when `REPLICATE` asks for more copies than
    /// `cluster_size` members (this node included) can hold.
    pub fn check_replicate(&self, cluster_size: usize) -> Result<(), CommandError> {
        match self.replicate {
            Some(copies) if usize::from(copies) > cluster_size => Err(CommandError::NoRepl),
            _ => Ok(()),
        }
    }

    /// The state machine command, with the id the node drew.
    pub fn to_add_job(&self, id: JobId) -> AddJob {
        AddJob {
            id,
            queue: self.queue.clone(),
            body: self.body.clone(),
            ttl_ms: self.ttl_ms,
            retry_ms: self.retry_ms,
            delay_ms: self.delay_ms,
            max_len: self.max_len,
            delivery_limit: self.delivery_limit,
        }
    }
}

/// GETJOB's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetJobCommand {
    /// The queues, in the order to scan them (repeats allowed, as Disque).
    pub queues: Vec<String>,
    /// The most jobs to return (at least 1).
    pub count: u32,
    /// How long to block when no job is queued (`None`: forever, Disque's
    /// default and `TIMEOUT 0`).
    pub timeout_ms: Option<u64>,
    /// `NOHANG`: never block; reply null at once when nothing is queued.
    pub nohang: bool,
    /// `WITHCOUNTERS`: each job also carries its nack and
    /// additional-delivery counts.
    pub with_counters: bool,
}

/// QSCAN's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueScan {
    /// Where to continue: a queue name, or `None` to start (cursor `0`).
    pub cursor: Option<String>,
    /// How many queues to examine (Disque: a hint; 0 examines one).
    pub count: usize,
    /// `BUSYLOOP`: scan everything in one reply.
    pub busyloop: bool,
    /// `MINLEN` and `MAXLEN` (Disque's `-1` means unset).
    pub filter: QueueFilter,
    /// The filters exclude every queue: a `MAXLEN` below `-1`, or an
    /// `IMPORTRATE` above 0 (Synod imports no jobs from other nodes, so
    /// every queue's import rate is 0). The reply is then cursor `0` and no
    /// names.
    pub nothing_matches: bool,
}

/// JSCAN's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobScan {
    /// Where to continue (`JobCursor::START` for cursor `0`).
    pub cursor: JobCursor,
    /// How many jobs to examine (Disque: a hint; 0 examines one).
    pub count: usize,
    /// `BUSYLOOP`: scan everything in one reply.
    pub busyloop: bool,
    /// `QUEUE` and `STATE` filters. Disque's `active` covers Synod's
    /// delayed and active jobs; Synod adds `delayed`.
    pub filter: JobFilter,
    /// Only states no Synod job is ever in were asked for (`wait-repl`,
    /// `acked`): the reply is then cursor `0` and no jobs.
    pub nothing_matches: bool,
    /// What to return per job.
    pub reply: JobScanReply,
}

/// JSCAN's `REPLY` option.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JobScanReply {
    /// `REPLY id` (the default): the job ids.
    #[default]
    Id,
    /// `REPLY all`: each job as SHOW shows it.
    All,
}

/// QCONFIG's arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// The queue.
    pub queue: String,
    /// `DELIVERY-LIMIT`: `None` if not given, `Some(None)` for `NONE`.
    pub delivery_limit: Option<Option<u32>>,
    /// `DEAD-LETTER`: `None` if not given, `Some(None)` for `NONE` (back to
    /// `<queue>.dead`).
    pub dead_letter: Option<Option<String>>,
}

impl QueueConfig {
    /// True for `QCONFIG queue` alone, which only reads the settings.
    pub fn is_read_only(&self) -> bool {
        self.delivery_limit.is_none() && self.dead_letter.is_none()
    }

    /// The state machine command, keeping the setting the client did not
    /// name as it is in `current` (the queue's QSTAT, `None` if the queue
    /// does not exist). `None` for the read-only form.
    pub fn to_command(&self, current: Option<&QueueStats>) -> Option<Command> {
        if self.is_read_only() {
            return None;
        }
        let delivery_limit = match self.delivery_limit {
            Some(limit) => limit,
            None => current.and_then(|stats| stats.delivery_limit),
        };
        let dead_letter = match &self.dead_letter {
            Some(queue) => queue.clone(),
            // QSTAT shows the default `<queue>.dead` too; naming it
            // explicitly would mean the same, but keep it unset.
            None => current
                .map(|stats| stats.dead_letter.clone())
                .filter(|dead| *dead != format!("{}.dead", self.queue)),
        };
        Some(Command::Configure {
            queue: self.queue.clone(),
            delivery_limit,
            dead_letter,
        })
    }
}

/// The `CLIENT` subcommands Synod answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientSubcommand {
    /// `CLIENT SETNAME name` (empty clears the name).
    SetName(Bytes),
    /// `CLIENT GETNAME`.
    GetName,
    /// `CLIENT SETINFO LIB-NAME|LIB-VER value`.
    SetInfo {
        /// Which attribute.
        attribute: LibraryAttribute,
        /// Its value.
        value: Bytes,
    },
    /// `CLIENT ID`.
    Id,
    /// `CLIENT LIST [...]` (filters are ignored: every client is listed).
    List,
    /// `CLIENT INFO`.
    Info,
    /// `CLIENT NO-EVICT on|off`, `CLIENT NO-TOUCH on|off`: accepted, no
    /// effect (nothing is evicted, nothing has an LRU clock).
    NoOp,
    /// `CLIENT HELP`.
    Help,
}

/// What `CLIENT SETINFO` sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LibraryAttribute {
    /// `LIB-NAME`.
    Name,
    /// `LIB-VER`.
    Version,
}

/// The `COMMAND` forms. Synod describes no commands: tools that ask
/// (redis-cli for hints) then simply go without.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Introspection {
    /// `COMMAND`: an empty array.
    All,
    /// `COMMAND COUNT`: 0.
    Count,
    /// `COMMAND DOCS [name ...]`: an empty map.
    Docs,
    /// `COMMAND INFO [name ...]`: a null per name.
    Info {
        /// The names asked about.
        names: Vec<Bytes>,
    },
    /// `COMMAND LIST [FILTERBY ...]`: an empty array.
    List,
    /// `COMMAND HELP`.
    Help,
}

/// The `CONFIG` forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSubcommand {
    /// `CONFIG GET pattern ...`: redis-benchmark asks for `save` and
    /// `appendonly`.
    Get {
        /// Glob patterns, matched without regard to case.
        patterns: Vec<Bytes>,
    },
    /// `CONFIG RESETSTAT`: `OK`, nothing to reset.
    ResetStat,
    /// `CONFIG HELP`.
    Help,
}

impl ClientCommand {
    /// The command's name, lowercase, as in error messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            ClientCommand::AddJob(_) => "addjob",
            ClientCommand::GetJob(_) => "getjob",
            ClientCommand::AckJob { .. } => "ackjob",
            ClientCommand::FastAck { .. } => "fastack",
            ClientCommand::Nack { .. } => "nack",
            ClientCommand::Working { .. } => "working",
            ClientCommand::DelJob { .. } => "deljob",
            ClientCommand::Enqueue { .. } => "enqueue",
            ClientCommand::Dequeue { .. } => "dequeue",
            ClientCommand::Show { .. } => "show",
            ClientCommand::QLen { .. } => "qlen",
            ClientCommand::QPeek { .. } => "qpeek",
            ClientCommand::QStat { .. } => "qstat",
            ClientCommand::QScan(_) => "qscan",
            ClientCommand::JScan(_) => "jscan",
            ClientCommand::Pause { .. } => "pause",
            ClientCommand::QConfig(_) => "qconfig",
            ClientCommand::DisqueHello | ClientCommand::Hello { .. } => "hello",
            ClientCommand::Info { .. } => "info",
            ClientCommand::Ping { .. } => "ping",
            ClientCommand::Echo { .. } => "echo",
            ClientCommand::Quit => "quit",
            ClientCommand::Select => "select",
            ClientCommand::Client(_) => "client",
            ClientCommand::Command(_) => "command",
            ClientCommand::Config(_) => "config",
        }
    }

    /// The state machine command for the commands that change state and
    /// need nothing from the node: GETJOB, ACKJOB, FASTACK, NACK, WORKING,
    /// DELJOB, ENQUEUE, DEQUEUE and a PAUSE that sets a state. `None` for
    /// the rest: ADDJOB needs an id ([`AddJobCommand::to_add_job`]),
    /// QCONFIG the current settings ([`QueueConfig::to_command`]), and the
    /// others only read.
    pub fn to_queue_command(&self) -> Option<Command> {
        Some(match self {
            ClientCommand::GetJob(get) => Command::Get {
                queues: get.queues.clone(),
                count: get.count,
            },
            ClientCommand::AckJob { ids } | ClientCommand::FastAck { ids } => {
                Command::Ack { ids: ids.clone() }
            }
            ClientCommand::Nack { ids, delay_ms } => Command::Nack {
                ids: ids.clone(),
                delay_ms: *delay_ms,
            },
            ClientCommand::Working { id } => Command::Working { id: *id },
            ClientCommand::DelJob { ids } => Command::Delete { ids: ids.clone() },
            ClientCommand::Enqueue { ids } => Command::Enqueue { ids: ids.clone() },
            ClientCommand::Dequeue { ids } => Command::Dequeue { ids: ids.clone() },
            ClientCommand::Pause {
                queue,
                set: Some(state),
                ..
            } => Command::Pause {
                queue: queue.clone(),
                set: Some(*state),
            },
            _ => return None,
        })
    }
}

//! Replies in Disque's shapes, built from what the node has after applying
//! a command or reading its state.
//!
//! Where Disque (a RESP2 server) replies with a flat array of keys and
//! values (SHOW, QSTAT), the builders give a [`Value::Map`]: a map in RESP3,
//! and in RESP2 exactly Disque's flat array, in Disque's key order.

use bytes::Bytes;
use queue::{
    Delivery, JobCursor, JobId, JobInfo, JobState, Page, PauseState, QueueError, QueueStats,
    Response,
};

use super::{ClientCommand, ClientSubcommand, ConfigSubcommand, Introspection, JobScanReply};
use crate::resp::{Protocol, Value};

/// Disque's HELLO reply format version.
pub const HELLO_FORMAT_VERSION: i64 = 1;

/// What `CONFIG GET` knows: Redis parameters that tools ask about, with
/// the nearest truthful value. Synod writes every change to its log and
/// fsyncs it (like `appendonly yes`), and takes no timed RDB-style saves.
const CONFIG: &[(&str, &str)] = &[("save", ""), ("appendonly", "yes")];

/// A bulk string of ASCII text.
fn bulk(text: &str) -> Value {
    Value::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

/// An unsigned count as a RESP integer (saturating: a reply never fails).
fn int(n: u64) -> Value {
    Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

/// A map entry keyed by a bulk string, as Disque writes its keys.
fn entry(key: &str, value: Value) -> (Value, Value) {
    (bulk(key), value)
}

/// Disque's name for a pause state.
pub fn pause_name(state: PauseState) -> &'static str {
    match state {
        PauseState::None => "none",
        PauseState::In => "in",
        PauseState::Out => "out",
        PauseState::All => "all",
    }
}

/// Disque's name for a job state. A delayed job is `active` in Disque (it is
/// not queued, and will be when its delay ends).
pub fn job_state_name(state: JobState) -> &'static str {
    match state {
        JobState::Delayed | JobState::Active => "active",
        JobState::Queued => "queued",
    }
}

/// Any state machine answer to a command the node proposed. `with_counters`
/// is GETJOB's `WITHCOUNTERS`.
pub fn response(response: &Response, with_counters: bool) -> Value {
    match response {
        Response::Added(id) => added(id),
        Response::Jobs(deliveries) => jobs(deliveries, with_counters),
        Response::Count(n) => count(*n),
        Response::Extended { retry_ms } => working(*retry_ms),
        Response::Paused(state) => paused(*state),
        Response::Done => Value::ok(),
        Response::Error(error) => queue_error(error),
    }
}

/// A refused state machine command: its error line (`NOJOB ...`).
pub fn queue_error(error: &QueueError) -> Value {
    Value::Error(error.to_string())
}

impl From<QueueError> for Value {
    fn from(error: QueueError) -> Self {
        queue_error(&error)
    }
}

/// ADDJOB: the new job's id, a status reply as Disque sends it.
pub fn added(id: &JobId) -> Value {
    Value::Simple(id.to_string())
}

/// `[queue, id, body]`, and with counters `nacks n additional-deliveries n`.
fn job_entry(queue: &str, id: &JobId, body: &Bytes, counters: Option<(u32, u32)>) -> Value {
    let mut fields = vec![
        bulk(queue),
        bulk(&id.to_string()),
        Value::Bulk(body.clone()),
    ];
    if let Some((nacks, additional_deliveries)) = counters {
        fields.extend([
            bulk("nacks"),
            int(nacks.into()),
            bulk("additional-deliveries"),
            int(additional_deliveries.into()),
        ]);
    }
    Value::Array(fields)
}

/// GETJOB: one entry per job; none at all is Disque's null array (as when
/// NOHANG finds nothing or the timeout passes).
pub fn jobs(deliveries: &[Delivery], with_counters: bool) -> Value {
    if deliveries.is_empty() {
        return no_jobs();
    }
    Value::Array(
        deliveries
            .iter()
            .map(|d| {
                let counters = with_counters.then_some((d.nacks, d.additional_deliveries));
                job_entry(&d.queue, &d.id, &d.body, counters)
            })
            .collect(),
    )
}

/// GETJOB with nothing to hand out: `*-1` in RESP2, `_` in RESP3.
pub fn no_jobs() -> Value {
    Value::NullArray
}

/// ACKJOB, FASTACK, NACK, DELJOB, ENQUEUE, DEQUEUE: how many jobs it
/// applied to.
pub fn count(n: u64) -> Value {
    int(n)
}

/// WORKING: the seconds the lease was extended by (the job's RETRY; whole
/// seconds, rounded down, since Disque's RETRY is in seconds).
pub fn working(retry_ms: u64) -> Value {
    int(retry_ms / 1000)
}

/// QLEN.
pub fn qlen(len: usize) -> Value {
    int(len as u64)
}

/// QPEEK: like GETJOB's entries, but an empty array when there are none.
pub fn qpeek(jobs: &[JobInfo]) -> Value {
    Value::Array(
        jobs.iter()
            .map(|job| job_entry(&job.queue, &job.id, &job.body, None))
            .collect(),
    )
}

/// SHOW: the job's fields with Disque's keys in Disque's order, then
/// Synod's (`deliveries`, `delivery-limit`); null for an unknown job.
///
/// `now_ms` is the state machine's log time; `cluster_nodes` the members'
/// ids, which stand for Disque's `nodes-delivered` (every replica holds
/// every job). Disque's `delay` is the DELAY still to run (0 once queued),
/// since Synod does not keep the original; `nodes-confirmed` is empty, as
/// in Disque once replication is done.
pub fn show(job: Option<&JobInfo>, now_ms: u64, cluster_nodes: &[String]) -> Value {
    match job {
        Some(job) => job_info(job, now_ms, cluster_nodes),
        None => Value::Null,
    }
}

fn job_info(job: &JobInfo, now_ms: u64, cluster_nodes: &[String]) -> Value {
    let until = |at_ms: u64| at_ms.saturating_sub(now_ms);
    let delay_secs = match (job.state, job.next_event_ms) {
        (JobState::Delayed, Some(at_ms)) => until(at_ms).div_ceil(1000),
        _ => 0,
    };
    let next_awake_ms = job
        .next_event_ms
        .map_or(job.expires_ms, |at_ms| at_ms.min(job.expires_ms));
    let nodes = Value::Array(cluster_nodes.iter().map(|id| bulk(id)).collect());
    Value::Map(vec![
        entry("id", bulk(&job.id.to_string())),
        entry("queue", bulk(&job.queue)),
        entry("state", bulk(job_state_name(job.state))),
        entry("repl", int(cluster_nodes.len() as u64)),
        entry("ttl", int(until(job.expires_ms) / 1000)),
        // Disque's ctime is milliseconds times a million.
        entry("ctime", int(job.created_ms.saturating_mul(1_000_000))),
        entry("delay", int(delay_secs)),
        entry("retry", int(job.retry_ms / 1000)),
        entry("nacks", int(job.nacks.into())),
        entry(
            "additional-deliveries",
            int(job.additional_deliveries.into()),
        ),
        entry("nodes-delivered", nodes),
        entry("nodes-confirmed", Value::Array(Vec::new())),
        entry(
            "next-requeue-within",
            job.next_event_ms
                .map_or(Value::Null, |at_ms| int(until(at_ms))),
        ),
        entry("next-awake-within", int(until(next_awake_ms))),
        entry("body", Value::Bulk(job.body.clone())),
        entry("deliveries", int(job.deliveries.into())),
        entry(
            "delivery-limit",
            job.delivery_limit.map_or(Value::Null, |n| int(n.into())),
        ),
    ])
}

/// QSTAT: Disque's keys in Disque's order (`age` and `idle` in seconds;
/// Synod imports from no node, so `import-from` is empty and `import-rate`
/// 0), then Synod's `delivery-limit` and `dead-letter`. `blocked` is the
/// number of clients this node has waiting on the queue. Null (Disque's
/// `*-1`) for a queue that does not exist.
pub fn qstat(stats: Option<&QueueStats>, now_ms: u64, blocked: usize) -> Value {
    let Some(stats) = stats else {
        return Value::NullArray;
    };
    let seconds_since = |at_ms: u64| int(now_ms.saturating_sub(at_ms) / 1000);
    Value::Map(vec![
        entry("name", bulk(&stats.name)),
        entry("len", int(stats.len as u64)),
        entry("age", seconds_since(stats.created_ms)),
        entry("idle", seconds_since(stats.last_activity_ms)),
        entry("blocked", int(blocked as u64)),
        entry("import-from", Value::Array(Vec::new())),
        entry("import-rate", int(0)),
        entry("jobs-in", int(stats.jobs_in)),
        entry("jobs-out", int(stats.jobs_out)),
        entry("pause", bulk(pause_name(stats.pause))),
        entry(
            "delivery-limit",
            stats.delivery_limit.map_or(Value::Null, |n| int(n.into())),
        ),
        entry("dead-letter", bulk(&stats.dead_letter)),
    ])
}

/// PAUSE: the queue's state afterwards, a status reply.
pub fn paused(state: PauseState) -> Value {
    Value::simple(pause_name(state))
}

/// The read-only `QCONFIG queue`: its delivery limit (null: none) and its
/// dead-letter queue. `stats` is `None` for a queue that does not exist,
/// which has the defaults.
pub fn queue_config(queue: &str, stats: Option<&QueueStats>) -> Value {
    let delivery_limit = stats.and_then(|s| s.delivery_limit);
    let dead_letter = stats.map_or_else(|| format!("{queue}.dead"), |s| s.dead_letter.clone());
    Value::Map(vec![
        entry(
            "delivery-limit",
            delivery_limit.map_or(Value::Null, |n| int(n.into())),
        ),
        entry("dead-letter", bulk(&dead_letter)),
    ])
}

/// A QSCAN cursor as text: `0` when the scan is complete, otherwise the
/// next queue's name in lowercase hex (names may hold any character, a
/// cursor must be one plain word).
pub fn queue_cursor_text(next: Option<&str>) -> String {
    match next {
        None => "0".to_string(),
        Some(name) => name.bytes().map(|b| format!("{b:02x}")).collect(),
    }
}

/// A JSCAN cursor as text: `0` when the scan is complete, otherwise the
/// decimal position to continue from.
pub fn job_cursor_text(next: Option<JobCursor>) -> String {
    match next {
        None => "0".to_string(),
        Some(JobCursor(position)) => position.to_string(),
    }
}

/// QSCAN: `[cursor, [name, ...]]`.
pub fn qscan(page: &Page<String, String>) -> Value {
    Value::Array(vec![
        bulk(&queue_cursor_text(page.next.as_deref())),
        Value::Array(page.items.iter().map(|name| bulk(name)).collect()),
    ])
}

/// JSCAN: `[cursor, [job, ...]]`, each job its id (a status reply, as
/// Disque) or, with `REPLY all`, what SHOW gives.
pub fn jscan(
    page: &Page<JobInfo, JobCursor>,
    reply: JobScanReply,
    now_ms: u64,
    cluster_nodes: &[String],
) -> Value {
    let items = page
        .items
        .iter()
        .map(|job| match reply {
            JobScanReply::Id => added(&job.id),
            JobScanReply::All => job_info(job, now_ms, cluster_nodes),
        })
        .collect();
    Value::Array(vec![bulk(&job_cursor_text(page.next)), Value::Array(items)])
}

/// A QSCAN or JSCAN whose filters exclude everything: complete, and empty.
pub fn empty_scan() -> Value {
    Value::Array(vec![bulk("0"), Value::Array(Vec::new())])
}

/// One cluster member as bare HELLO lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloNode {
    /// The member's id.
    pub id: String,
    /// The host clients connect to.
    pub host: String,
    /// The client port.
    pub port: u16,
    /// Disque's priority: 1 for a member in touch, 5 without a connection,
    /// 10 suspected failing, 100 failed; clients prefer low numbers.
    pub priority: u32,
}

/// Bare HELLO: `[1, my-id, [id, host, port, priority], ...]`, the port and
/// priority as bulk strings, as Disque.
pub fn hello_nodes(my_id: &str, nodes: &[HelloNode]) -> Value {
    let mut reply = vec![Value::Integer(HELLO_FORMAT_VERSION), bulk(my_id)];
    reply.extend(nodes.iter().map(|node| {
        Value::Array(vec![
            bulk(&node.id),
            bulk(&node.host),
            bulk(&node.port.to_string()),
            bulk(&node.priority.to_string()),
        ])
    }));
    Value::Array(reply)
}

/// `HELLO 2|3`: Redis 6+'s handshake map (a flat array in RESP2), to be
/// encoded in the protocol just chosen. Every member takes writes, so the
/// role is always `master`.
pub fn hello_handshake(version: &str, client_id: u64, protocol: Protocol) -> Value {
    let proto = match protocol {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    Value::Map(vec![
        entry("server", bulk("synod")),
        entry("version", bulk(version)),
        entry("proto", Value::Integer(proto)),
        entry("id", int(client_id)),
        entry("mode", bulk("cluster")),
        entry("role", bulk("master")),
        entry("modules", Value::Array(Vec::new())),
    ])
}

/// One INFO section, as the node fills it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfoSection {
    /// Its title, capitalised (`Server`); selected by its lowercase form.
    pub name: String,
    /// `key:value` lines, in order.
    pub fields: Vec<(String, String)>,
}

/// INFO: `# Section\r\nkey:value\r\n...`, sections apart by an empty line,
/// as Redis. `wanted` is [`ClientCommand::Info`]'s list: empty, `all`,
/// `default` or `everything` select every section; other names select
/// sections by name, in any case. Unknown names select nothing.
pub fn info(sections: &[InfoSection], wanted: &[String]) -> Value {
    let everything = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| ["all", "default", "everything"].contains(&w.to_ascii_lowercase().as_str()));
    let mut text = String::new();
    let selected = sections.iter().filter(|section| {
        everything || wanted.iter().any(|w| w.eq_ignore_ascii_case(&section.name))
    });
    for (i, section) in selected.enumerate() {
        if i > 0 {
            text.push_str("\r\n");
        }
        text.push_str("# ");
        text.push_str(&section.name);
        text.push_str("\r\n");
        for (key, value) in &section.fields {
            text.push_str(key);
            text.push(':');
            text.push_str(value);
            text.push_str("\r\n");
        }
    }
    Value::text(text)
}

/// PING: `PONG`, or the message.
pub fn ping(message: Option<&Bytes>) -> Value {
    match message {
        Some(message) => Value::Bulk(message.clone()),
        None => Value::simple("PONG"),
    }
}

/// What the node knows of one connection, for `CLIENT INFO` and `CLIENT
/// LIST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// The connection's id (`CLIENT ID`).
    pub id: u64,
    /// The client's address, `ip:port`.
    pub addr: String,
    /// The server's address it connected to, `ip:port`.
    pub laddr: String,
    /// Its name (`CLIENT SETNAME`), empty if none.
    pub name: String,
    /// Seconds since it connected.
    pub age_secs: u64,
    /// Seconds since its last command.
    pub idle_secs: u64,
    /// The protocol it speaks.
    pub protocol: Protocol,
    /// `CLIENT SETINFO LIB-NAME`, empty if none.
    pub lib_name: String,
    /// `CLIENT SETINFO LIB-VER`, empty if none.
    pub lib_ver: String,
    /// Its last command's name, lowercase.
    pub last_command: String,
}

/// One `CLIENT LIST` line, without its `\n`: Redis 7's fields (clients such
/// as redis-py read some as integers), zero where Synod has no such thing.
pub fn client_info_line(client: &ClientInfo) -> String {
    let resp = match client.protocol {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    format!(
        "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 \
         multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 \
         omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
        client.id,
        client.addr,
        client.laddr,
        client.name,
        client.age_secs,
        client.idle_secs,
        client.last_command,
        resp,
        client.lib_name,
        client.lib_ver,
    )
}

/// `CLIENT INFO`: the connection's line and `\n`, as text.
pub fn client_info(client: &ClientInfo) -> Value {
    Value::text(client_info_line(client) + "\n")
}

/// `CLIENT LIST`: a line and `\n` per connection, as text.
pub fn client_list(clients: &[ClientInfo]) -> Value {
    let text: String = clients
        .iter()
        .map(|client| client_info_line(client) + "\n")
        .collect();
    Value::text(text)
}

/// `CLIENT GETNAME`: the name, or null without one.
pub fn client_name(name: Option<&Bytes>) -> Value {
    match name {
        Some(name) if !name.is_empty() => Value::Bulk(name.clone()),
        _ => Value::Null,
    }
}

/// A HELP reply: one status line each.
fn help(lines: &[&str]) -> Value {
    Value::Array(lines.iter().map(|line| Value::simple(*line)).collect())
}

/// `COMMAND ...`: Synod describes no commands.
pub fn introspection(form: &Introspection) -> Value {
    match form {
        Introspection::All | Introspection::List => Value::Array(Vec::new()),
        Introspection::Count => Value::Integer(0),
        Introspection::Docs => Value::Map(Vec::new()),
        Introspection::Info { names } => Value::Array(names.iter().map(|_| Value::Null).collect()),
        Introspection::Help => help(&[
            "COMMAND [<subcommand> [<arg> [value] [opt] ...]]. Subcommands are:",
            "(no subcommand), COUNT, DOCS, INFO, LIST: Synod describes no commands.",
        ]),
    }
}

/// `CONFIG GET pattern ...`: the known parameters matching any pattern
/// (Redis's glob, without regard to case), each once, as a map (a flat
/// array in RESP2). Unknown names: an empty map.
pub fn config_get(patterns: &[Bytes]) -> Value {
    Value::Map(
        CONFIG
            .iter()
            .filter(|(name, _)| patterns.iter().any(|p| glob_match(p, name.as_bytes())))
            .map(|(name, value)| (bulk(name), bulk(value)))
            .collect(),
    )
}

/// Redis's glob (`*`, `?`, `[abc]`, `[^a-z]`, `\` escapes) without regard
/// to ASCII case. Iterative, backtracking only to the last `*`, so any
/// pattern costs at most `pattern × text` steps and no stack.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: its pattern index + 1, and the
    // text index it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            Some(_) => match_one(pattern, p, text[t]),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((after_star, swallowed))) => {
                p = after_star;
                t = swallowed + 1;
                star = Some((after_star, swallowed + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&b| b == b'*')
}

/// Matches the pattern element at `p` (not `*`) against `c`: the index of
/// the next element if it matches.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    let c = c.to_ascii_lowercase();
    match pattern[p] {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => {
            (pattern[p + 1].to_ascii_lowercase() == c).then_some(p + 2)
        }
        b'[' => match pattern[p + 1..].iter().position(|&b| b == b']') {
            // An unclosed `[` is an ordinary byte.
            None => (c == b'[').then_some(p + 1),
            Some(len) => {
                let class = &pattern[p + 1..p + 1 + len];
                let (negated, class) = match class.split_first() {
                    Some((b'^', rest)) => (true, rest),
                    _ => (false, class),
                };
                let mut found = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == b'-' {
                        let (a, b) = (
                            class[i].to_ascii_lowercase(),
                            class[i + 2].to_ascii_lowercase(),
                        );
                        let (low, high) = (a.min(b), a.max(b));
                        found |= (low..=high).contains(&c);
                        i += 3;
                    } else {
                        found |= class[i].to_ascii_lowercase() == c;
                        i += 1;
                    }
                }
                (found != negated).then_some(p + 2 + len)
            }
        },
        literal => (literal.to_ascii_lowercase() == c).then_some(p + 1),
    }
}

/// The reply to a command that needs nothing from the node or the
/// connection (PING, ECHO, QUIT, SELECT, COMMAND, CONFIG, `CLIENT NO-EVICT`,
/// `NO-TOUCH`, `HELP`); `None` for the others, `CLIENT SETINFO` included
/// (the connection records it). The node closes the connection after
/// QUIT's reply.
pub fn local(command: &ClientCommand) -> Option<Value> {
    Some(match command {
        ClientCommand::Ping { message } => ping(message.as_ref()),
        ClientCommand::Echo { message } => Value::Bulk(message.clone()),
        ClientCommand::Quit | ClientCommand::Select => Value::ok(),
        ClientCommand::Command(form) => introspection(form),
        ClientCommand::Config(ConfigSubcommand::Get { patterns }) => config_get(patterns),
        ClientCommand::Config(ConfigSubcommand::ResetStat) => Value::ok(),
        ClientCommand::Config(ConfigSubcommand::Help) => help(&[
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>: the known parameters matching the pattern.",
            "RESETSTAT: does nothing.",
        ]),
        ClientCommand::Client(ClientSubcommand::NoOp) => Value::ok(),
        ClientCommand::Client(ClientSubcommand::Help) => help(&[
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME, SETNAME <name>, SETINFO <attr> <value>, ID, INFO, LIST,",
            "NO-EVICT (on|off), NO-TOUCH (on|off).",
        ]),
        _ => return None,
    })
}

//! What the clients did: every operation with its invocation, its
//! completion and what came of it, as Jepsen records a history.

use serde::Serialize;
use synod::resp::Value;

/// A job as a GETJOB reply hands it out.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Delivered {
    /// Its queue.
    pub queue: String,
    /// Its id.
    pub id: String,
    /// Its body without the padding (see [`body_key`]).
    pub body: String,
}

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// ADDJOB of a unique body.
    Add {
        /// The queue.
        queue: String,
        /// The body (unique in the run), without padding.
        body: String,
        /// The job's RETRY: its lease.
        retry_secs: u64,
    },
    /// GETJOB.
    Get {
        /// The queues, in order.
        queues: Vec<String>,
        /// COUNT.
        count: u32,
        /// TIMEOUT in milliseconds; `None` for NOHANG.
        timeout_ms: Option<u64>,
    },
    /// ACKJOB of one job.
    Ack {
        /// The job.
        id: String,
    },
    /// NACK of one job.
    Nack {
        /// The job.
        id: String,
    },
    /// WORKING on one job.
    Working {
        /// The job.
        id: String,
    },
}

/// A successful reply, decoded for the call it answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// ADDJOB: the new job's id.
    Added {
        /// The id.
        id: String,
    },
    /// GETJOB: the jobs handed out (none on timeout or NOHANG).
    Jobs {
        /// The jobs.
        jobs: Vec<Delivered>,
    },
    /// ACKJOB, NACK: how many jobs it applied to; WORKING: seconds.
    Count {
        /// The number.
        n: i64,
    },
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Not yet complete.
    Pending,
    /// A reply of the expected shape.
    Ok {
        /// The reply.
        reply: Reply,
    },
    /// An error reply. Synod's errors (NOREPL, BUSY, SHUTDOWN) leave the
    /// outcome open: the command may still be applied.
    Fail {
        /// The error line.
        error: String,
    },
    /// No reply: the client timed out or the connection broke.
    Unknown {
        /// Why.
        why: String,
    },
}

/// One operation of one client.
#[derive(Clone, Debug)]
pub struct Op {
    /// The client.
    pub client: u32,
    /// The member it was sent to.
    pub member: u64,
    /// What was asked.
    pub call: Call,
    /// When it was sent, in simulated microseconds since the start.
    pub invoked_us: u64,
    /// When its outcome was known.
    pub completed_us: Option<u64>,
    /// What came of it.
    pub outcome: Outcome,
}

impl Op {
    /// The jobs it delivered, if it is a GETJOB that succeeded.
    pub fn delivered(&self) -> &[Delivered] {
        match &self.outcome {
            Outcome::Ok {
                reply: Reply::Jobs { jobs },
            } => jobs,
            _ => &[],
        }
    }
}

/// Separates a body's unique key from its padding.
pub const PADDING_SEPARATOR: char = '|';

/// The unique part of a job body.
pub fn body_key(body: &str) -> &str {
    body.split(PADDING_SEPARATOR).next().unwrap_or(body)
}

/// Decodes `value` as the reply to `call`; `Err` holds what was unexpected.
pub fn decode(call: &Call, value: Value) -> Result<Outcome, String> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let reply = match (call, value) {
        (_, Value::Error(error)) => return Ok(Outcome::Fail { error }),
        (Call::Add { .. }, Value::Simple(id)) => Reply::Added { id },
        (Call::Get { .. }, Value::NullArray) => Reply::Jobs { jobs: Vec::new() },
        (Call::Get { .. }, Value::Array(entries)) => {
            let mut jobs = Vec::with_capacity(entries.len());
            for entry in entries {
                match entry {
                    Value::Array(fields) => match fields.as_slice() {
                        [Value::Bulk(queue), Value::Bulk(id), Value::Bulk(body)] => {
                            jobs.push(Delivered {
                                queue: text(queue),
                                id: text(id),
                                body: body_key(&text(body)).to_string(),
                            })
                        }
                        other => return Err(format!("GETJOB entry {other:?}")),
                    },
                    other => return Err(format!("GETJOB entry {other:?}")),
                }
            }
            Reply::Jobs { jobs }
        }
        (Call::Ack { .. } | Call::Nack { .. } | Call::Working { .. }, Value::Integer(n)) => {
            Reply::Count { n }
        }
        (call, value) => return Err(format!("{call:?} answered {value:?}")),
    };
    Ok(Outcome::Ok { reply })
}

//! The deterministic job state machine behind Synod.
//!
//! Every replica applies the same chosen commands, in the same order, with
//! the same time stamps, and so computes the same state: which jobs exist,
//! which are queued, which are leased to a consumer and until when. There is
//! no clock here and no randomness: time is the stamp the leader put on the
//! log entry, and job ids are drawn by the leader and carried in the command.
//!
//! ```
//! use bytes::Bytes;
//! use queue::{AddJob, Command, JobId, Response, StateMachine};
//!
//! let mut jobs = StateMachine::new();
//! let id = JobId::new(1, [7; 18], 60_000, 5_000);
//! let add = AddJob {
//!     id,
//!     queue: "emails".to_string(),
//!     body: Bytes::from_static(b"send welcome"),
//!     ttl_ms: Some(60_000),
//!     retry_ms: Some(5_000),
//!     delay_ms: None,
//!     max_len: None,
//!     delivery_limit: None,
//! };
//! assert_eq!(jobs.apply(1_000, Command::Add(add)), Response::Added(id));
//!
//! // A consumer takes it: it is leased until 1_000 + 5_000.
//! let get = Command::Get { queues: vec!["emails".to_string()], count: 1 };
//! let Response::Jobs(delivered) = jobs.apply(1_000, get.clone()) else { panic!() };
//! assert_eq!(delivered[0].id, id);
//!
//! // Not acked in time: the lease ends and the job is queued again.
//! assert_eq!(jobs.len("emails"), 0);
//! jobs.apply(6_000, Command::Tick);
//! assert_eq!(jobs.len("emails"), 1);
//!
//! // Delivered again, and acked this time.
//! let Response::Jobs(again) = jobs.apply(6_500, get) else { panic!() };
//! assert_eq!(again[0].additional_deliveries, 1);
//! assert_eq!(jobs.apply(7_000, Command::Ack { ids: vec![id] }), Response::Count(1));
//! assert!(jobs.is_empty());
//! ```

mod command;
mod error;
mod id;
mod machine;
mod snapshot;

pub use command::{
    AddJob, Command, DEFAULT_TTL_MS, Delivery, JobTimes, MAX_DEFAULT_RETRY_MS,
    MIN_DEFAULT_RETRY_MS, PauseState, Response,
};
pub use error::QueueError;
pub use id::JobId;
pub use machine::{
    IDLE_QUEUE_FORGOTTEN_AFTER_MS, JobCursor, JobFilter, JobInfo, JobState, Page, QueueFilter,
    QueueStats, StateMachine,
};
pub use snapshot::{SNAPSHOT_FORMAT, SnapshotError};

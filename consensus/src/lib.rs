//! Multi-Paxos, sans-IO.
//!
//! This crate orders opaque values into a log that every member of a group
//! agrees on. It does no IO of its own: no sockets, no clock, no threads, no
//! files. The host feeds it inputs and carries out the effects it asks for,
//! which makes it deterministic and easy to test.
//!
//! # A tour
//!
//! **Create** one [`Replica`] per member. Every member lists the whole group.
//!
//! ```
//! use consensus::{Config, Replica};
//!
//! let members = [1, 2, 3];
//! let mut replicas: Vec<Replica<String>> = members
//!     .iter()
//!     .map(|&id| Replica::new(Config::new(id, members)).unwrap())
//!     .collect();
//! # let _ = &mut replicas;
//! ```
//!
//! **Tick** each replica on a fixed interval (say every 10 ms). Time inside
//! the library is only ever counted in ticks. A follower that hears no leader
//! for its randomized election timeout starts phase 1 ("Prepare") with a
//! higher ballot.
//!
//! **Handle [`Ready`]**. After any input, [`Replica::ready`] returns what the
//! host must do, in this order: make the new promise and accepted values
//! durable; *then* send the messages; then apply the newly committed entries;
//! then note any leadership change. [`Replica::step`] feeds a received message
//! back in. Here the "network" is a vector and "disk" is a no-op:
//!
//! ```
//! # use consensus::{Config, Message, Replica};
//! # let members = [1, 2, 3];
//! # let mut replicas: Vec<Replica<String>> = members
//! #     .iter()
//! #     .map(|&id| Replica::new(Config::new(id, members)).unwrap())
//! #     .collect();
//! let mut network: Vec<Message<String>> = Vec::new();
//! let mut applied: Vec<Vec<String>> = vec![Vec::new(); 3];
//!
//! // Run the group until someone leads.
//! while !replicas.iter().any(|r| r.is_leader()) {
//!     for replica in &mut replicas {
//!         replica.tick();
//!     }
//!     deliver(&mut replicas, &mut network, &mut applied);
//! }
//!
//! // Propose through the leader; the value is chosen once a majority accepts.
//! let leader = replicas.iter().position(|r| r.is_leader()).unwrap();
//! replicas[leader].propose("hello".to_string()).unwrap();
//! deliver(&mut replicas, &mut network, &mut applied);
//!
//! // Every member applied the same log.
//! assert!(applied.iter().all(|log| log == &["hello".to_string()]));
//!
//! /// Drains every replica's Ready and delivers messages until all is quiet.
//! fn deliver(
//!     replicas: &mut [Replica<String>],
//!     network: &mut Vec<Message<String>>,
//!     applied: &mut [Vec<String>],
//! ) {
//!     loop {
//!         for (i, replica) in replicas.iter_mut().enumerate() {
//!             let ready = replica.ready();
//!             // 1. Persist ready.promised and ready.accepted here (fsync).
//!             // 2. Then send.
//!             network.extend(ready.messages);
//!             // 3. Then apply, in slot order.
//!             for committed in ready.committed {
//!                 applied[i].extend(committed.entry.values().iter().cloned());
//!             }
//!         }
//!         if network.is_empty() {
//!             return;
//!         }
//!         for message in std::mem::take(network) {
//!             let to = (message.to - 1) as usize;
//!             replicas[to].step(message).unwrap();
//!         }
//!     }
//! }
//! ```
//!
//! **Restart** a member from exactly what it persisted with
//! [`Replica::restart`] and a [`DurableState`]; it relearns everything else.
//!
//! **Compact** the log: once the application has durably snapshotted its
//! state through a slot, call [`Replica::snapshot_taken`]. A peer that later
//! needs compacted slots shows up in [`Ready::snapshot_requests`]; answer with
//! [`Replica::send_snapshot`], and the peer receives it in [`Ready::snapshot`].
//!
//! # The protocol
//!
//! Ballots are `(round, node)`. A candidate runs phase 1 once for its
//! leadership, over every slot from the first it does not know chosen; on a
//! quorum of promises it re-proposes the highest-ballot value reported for
//! each slot and fills holes with no-ops. Phase 2 is pipelined (up to
//! [`Config::pipeline_window_slots`] slots in flight) and batched (values
//! proposed between two `ready` calls share a slot). The leader learns a slot
//! is chosen from a quorum of `Accepted` and tells the others with the commit
//! point piggybacked on `Accept`, or in `Commit` and `Heartbeat` messages.
//! Lagging members fetch chosen entries (`CatchUpRequest`/`CatchUp`), or a
//! snapshot where the log is compacted. A stale proposer is told so with a
//! `Nack` carrying the higher ballot.
//!
//! In debug builds every input ends with a check of the replica's invariants;
//! a violation panics.

mod ballot;
mod config;
mod entry;
mod error;
mod log;
mod message;
mod quorum;
mod ready;
mod replica;

pub use ballot::{Ballot, NodeId, Slot};
pub use config::Config;
pub use entry::Entry;
pub use error::{ConfigError, ProposeError, SnapshotError, StepError};
pub use message::{Message, Payload, PromisedSlot};
pub use ready::{AcceptedRecord, Committed, DurableState, Leadership, Ready, Snapshot};
pub use replica::{MAX_ROUND, MAX_SLOT, Replica, Role, Status};

/// Deliberately broken protocol variants. The test suite turns each on and
/// asserts that the randomized cluster harness catches it, which shows the
/// harness can find real safety bugs.
#[cfg(feature = "canaries")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Canary {
    /// A new leader ignores the accepted values reported in promises.
    IgnorePromisedValues,
    /// An acceptor accepts ballots below its promise.
    AcceptBelowPromise,
    /// Promises and accepted values are persisted one `Ready` late, after the
    /// messages that vouch for them have left.
    SendBeforePersist,
}

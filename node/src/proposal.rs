//! What the replicated log orders: client commands, stamped with the
//! leader's time and tagged with where their reply is owed.

use consensus::NodeId;
use queue::Command;
use serde::{Deserialize, Serialize};

/// One value in the log. The leader stamps it when it proposes; every
/// replica applies `command` at `stamp_ms`, and the member `origin`, if it
/// is still the same run of that member (`incarnation`), answers its client
/// request `request_id` when it applies it. A restarted member replays
/// entries its previous run proposed; the incarnation keeps it from taking
/// their outcomes for its new requests' replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The leader's clock when it proposed this (ms since the Unix epoch,
    /// never below an earlier stamp it knows of).
    pub stamp_ms: u64,
    /// The member whose client asked for it (0 for the leader's own ticks).
    pub origin: NodeId,
    /// Which run of `origin` asked: drawn when the member starts.
    pub incarnation: u64,
    /// The request's number in its origin's run (0 for requests nobody
    /// waits for).
    pub request_id: u64,
    /// What to apply.
    pub command: Command,
}

/// A client request a follower passes to the leader, which stamps and
/// proposes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    /// The origin's request number.
    pub request_id: u64,
    /// What to apply.
    pub command: Command,
}

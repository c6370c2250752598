//! Errors a caller can act on. A broken protocol invariant is never an error
//! value: it is a bug, and the replica panics.

use thiserror::Error;

use crate::ballot::{NodeId, Slot};

/// Why a [`Config`](crate::Config) was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Paxos needs an odd number of members (a majority must survive any
    /// split), and tallies fit in 64 bits.
    #[error("a group needs an odd number of members from 1 to 63, not {count}")]
    MemberCount {
        /// How many members were given.
        count: usize,
    },
    /// The same id appears twice in the member list.
    #[error("member {id} is listed twice")]
    DuplicateMember {
        /// The repeated id.
        id: NodeId,
    },
    /// The replica's own id is not in the member list.
    #[error("node {id} is not one of the members")]
    NotAMember {
        /// The replica's id.
        id: NodeId,
    },
    /// A count or interval that must be positive is zero.
    #[error("intervals, windows, batch and catch-up sizes must be positive")]
    ZeroSetting,
    /// A leader's own pipeline would reach past what followers store.
    #[error(
        "accept horizon ({accept_horizon_slots} slots) must exceed the pipeline window ({pipeline_window_slots} slots)"
    )]
    HorizonInsideWindow {
        /// The configured horizon.
        accept_horizon_slots: u64,
        /// The configured window.
        pipeline_window_slots: usize,
    },
    /// Followers would time out between two heartbeats of a healthy leader.
    #[error(
        "election timeout ({election_timeout_ticks} ticks) must exceed the heartbeat interval ({heartbeat_interval_ticks} ticks)"
    )]
    ElectionTimeoutTooShort {
        /// The configured election timeout.
        election_timeout_ticks: u32,
        /// The configured heartbeat interval.
        heartbeat_interval_ticks: u32,
    },
}

/// Why a proposal was refused. The value comes back so the caller can forward
/// it to the leader or retry without having cloned it.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProposeError<V> {
    /// Only the leader proposes. Forward to `leader_hint` if known, otherwise
    /// retry once an election has finished.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The member this replica believes leads, if any.
        leader_hint: Option<NodeId>,
        /// The refused value.
        value: V,
    },
    /// The leader's pipeline and pending queue are full; retry later.
    #[error("too many proposals are pending; retry later")]
    Busy {
        /// The refused value.
        value: V,
    },
}

impl<V> ProposeError<V> {
    /// Takes back the refused value.
    pub fn into_value(self) -> V {
        match self {
            ProposeError::NotLeader { value, .. } | ProposeError::Busy { value } => value,
        }
    }
}

/// Why an incoming message was refused. The replica's state is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StepError {
    /// The message names a sender outside the group.
    #[error("message from {from}, who is not a member")]
    UnknownSender {
        /// The claimed sender.
        from: NodeId,
    },
    /// The message is addressed to another member.
    #[error("message for node {to} delivered to node {me}")]
    WrongRecipient {
        /// The addressee.
        to: NodeId,
        /// This replica.
        me: NodeId,
    },
    /// A Prepare, Accept, Commit or Heartbeat carries a ballot its sender
    /// does not own; only a ballot's owner may lead with it.
    #[error("node {from} used ballot {ballot}, which it does not own")]
    ForeignBallot {
        /// The sender.
        from: NodeId,
        /// The ballot it used.
        ballot: crate::Ballot,
    },
    /// A ballot round beyond [`MAX_ROUND`](crate::MAX_ROUND), which no
    /// member could ever outbid.
    #[error("message carries a ballot round beyond the maximum")]
    InvalidBallot,
    /// A Promise whose reported slots are not in ascending order.
    #[error("promise reports slots out of order")]
    InvalidPromise,
    /// The message names slot 0, which does not exist, or a slot beyond
    /// [`MAX_SLOT`](crate::MAX_SLOT).
    #[error("message names slot 0 or a slot beyond the maximum")]
    InvalidSlot,
}

/// Why a snapshot call was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// A snapshot can only cover slots the application has applied.
    #[error("snapshot at slot {slot} is ahead of the applied slot {applied_through}")]
    AheadOfApplied {
        /// The slot the snapshot claims to cover.
        slot: Slot,
        /// The last slot handed to the application.
        applied_through: Slot,
    },
    /// Snapshots are sent only to members.
    #[error("node {to} is not a member")]
    UnknownRecipient {
        /// The intended recipient.
        to: NodeId,
    },
}

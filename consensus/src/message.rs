//! The messages replicas exchange. Names follow "Paxos Made Simple": phase 1
//! is Prepare/Promise (P1a/P1b), phase 2 is Accept/Accepted (P2a/P2b).

use core::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ballot::{Ballot, NodeId, Slot};
use crate::entry::Entry;

/// One message from one member to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message<V> {
    /// The sender.
    pub from: NodeId,
    /// The recipient.
    pub to: NodeId,
    /// What is said.
    pub payload: Payload<V>,
}

/// What a [`Message`] says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload<V> {
    /// P1a: a candidate asks acceptors to promise `ballot` and to report what
    /// they accepted from `first_unchosen_slot` on.
    Prepare {
        /// The candidate's ballot.
        ballot: Ballot,
        /// The first slot the candidate does not know to be chosen.
        first_unchosen_slot: Slot,
    },
    /// P1b: the acceptor promises to accept nothing below `ballot` and reports
    /// its accepted values from the requested slot on.
    Promise {
        /// The promised ballot.
        ballot: Ballot,
        /// Slots up to here are chosen and compacted into the acceptor's
        /// snapshot; the candidate must not propose there.
        snapshot_slot: Slot,
        /// The acceptor's log from the requested slot on, in slot order.
        accepted: Vec<PromisedSlot<V>>,
    },
    /// P2a: the leader asks acceptors to accept `entry` at `slot`.
    Accept {
        /// The leader's ballot.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
        /// The proposed value.
        entry: Entry<V>,
        /// Piggybacked commit: every slot up to here is chosen (see
        /// [`Payload::Commit`]).
        commit_through: Slot,
    },
    /// P2b: the acceptor accepted the leader's value at `slot`.
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
        /// The slot.
        slot: Slot,
    },
    /// The recipient's ballot is stale: the sender has promised `promised`.
    /// Preemption is explicit so a proposer learns at once, not by timeout.
    Nack {
        /// The ballot that was refused.
        ballot: Ballot,
        /// The higher ballot the sender has promised.
        promised: Ballot,
    },
    /// Every slot up to `commit_through` is chosen. For each such slot where
    /// the recipient accepted a value at `ballot`, that value is the chosen
    /// one; other slots must be fetched with a [`Payload::CatchUpRequest`].
    Commit {
        /// The leader's ballot.
        ballot: Ballot,
        /// The end of the leader's chosen prefix.
        commit_through: Slot,
    },
    /// Sent by a leader every heartbeat interval: keeps followers from
    /// starting elections and carries the same news as [`Payload::Commit`].
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The end of the leader's chosen prefix.
        commit_through: Slot,
    },
    /// A follower's answer to a heartbeat, so the leader knows it still
    /// reaches a quorum, and learns when a follower knows more than it does
    /// (a new leader may start behind a follower's snapshot).
    HeartbeatAck {
        /// The heartbeat's ballot.
        ballot: Ballot,
        /// The end of the follower's chosen prefix.
        commit_through: Slot,
    },
    /// A lagging replica asks for chosen entries from `first_missing_slot` on.
    CatchUpRequest {
        /// The first slot the requester does not know to be chosen.
        first_missing_slot: Slot,
    },
    /// Chosen entries for consecutive slots starting at `first_slot`.
    CatchUp {
        /// The slot of `entries[0]`.
        first_slot: Slot,
        /// Chosen entries, in slot order.
        entries: Vec<Entry<V>>,
    },
    /// The application's state through `snapshot_slot`, sent because the
    /// slots the recipient asked for were compacted away.
    InstallSnapshot {
        /// The last slot the snapshot covers.
        snapshot_slot: Slot,
        /// The application's snapshot, opaque to the library.
        data: Bytes,
    },
}

/// One slot of an acceptor's log as reported in a [`Payload::Promise`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromisedSlot<V> {
    /// The slot.
    pub slot: Slot,
    /// The ballot at which `entry` was accepted.
    pub ballot: Ballot,
    /// The accepted value.
    pub entry: Entry<V>,
    /// The acceptor knows `entry` is chosen: the candidate adopts it as
    /// chosen whatever the ballots say.
    pub chosen: bool,
}

impl<V: fmt::Debug> fmt::Display for Message<V> {
    /// A compact one-line form for traces and logs, e.g.
    /// `1->2 Accept b=1.1 slot=3 [7] commit=2`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}->{} ", self.from, self.to)?;
        match &self.payload {
            Payload::Prepare {
                ballot,
                first_unchosen_slot,
            } => write!(f, "Prepare b={ballot} from={first_unchosen_slot}"),
            Payload::Promise {
                ballot,
                snapshot_slot,
                accepted,
            } => {
                write!(f, "Promise b={ballot} snapshot={snapshot_slot} [")?;
                for (i, slot) in accepted.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    let chosen = if slot.chosen { "!" } else { "" };
                    write!(
                        f,
                        "{sep}{}:{}@{}{chosen}",
                        slot.slot, slot.entry, slot.ballot
                    )?;
                }
                f.write_str("]")
            }
            Payload::Accept {
                ballot,
                slot,
                entry,
                commit_through,
            } => write!(
                f,
                "Accept b={ballot} slot={slot} {entry} commit={commit_through}"
            ),
            Payload::Accepted { ballot, slot } => write!(f, "Accepted b={ballot} slot={slot}"),
            Payload::Nack { ballot, promised } => {
                write!(f, "Nack b={ballot} promised={promised}")
            }
            Payload::Commit {
                ballot,
                commit_through,
            } => write!(f, "Commit b={ballot} commit={commit_through}"),
            Payload::Heartbeat {
                ballot,
                commit_through,
            } => write!(f, "Heartbeat b={ballot} commit={commit_through}"),
            Payload::HeartbeatAck {
                ballot,
                commit_through,
            } => write!(f, "HeartbeatAck b={ballot} commit={commit_through}"),
            Payload::CatchUpRequest { first_missing_slot } => {
                write!(f, "CatchUpRequest from={first_missing_slot}")
            }
            Payload::CatchUp {
                first_slot,
                entries,
            } => {
                write!(f, "CatchUp from={first_slot} [")?;
                for (i, entry) in entries.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    write!(f, "{sep}{entry}")?;
                }
                f.write_str("]")
            }
            Payload::InstallSnapshot {
                snapshot_slot,
                data,
            } => write!(
                f,
                "InstallSnapshot slot={snapshot_slot} bytes={}",
                data.len()
            ),
        }
    }
}

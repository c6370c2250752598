//! What a replica asks its host to do, and in which order.

use bytes::Bytes;

use crate::ballot::{Ballot, NodeId, Slot};
use crate::entry::Entry;
use crate::message::Message;

/// Everything a replica needs its host to do after one or more inputs, taken
/// with [`Replica::ready`](crate::Replica::ready).
///
/// **Act on the fields in the order they are declared**, and finish one
/// `Ready` before starting on the next:
///
/// 1. make `promised`, `accepted` and `snapshot` durable;
/// 2. only then send `messages`;
/// 3. apply `committed`;
/// 4. note `leadership`, `dropped_proposals` and `snapshot_requests`.
///
/// Step 1 before step 2 is what makes Paxos safe across crashes: a `Promise`
/// or `Accepted` that leaves before the state it vouches for is on disk can be
/// forgotten by a restart, and then two values can be chosen for one slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready<V> {
    /// **Persist before sending `messages`.** The acceptor's new promise, if
    /// it changed. Only the latest promise matters.
    pub promised: Option<Ballot>,
    /// **Persist before sending `messages`.** Values this acceptor accepted,
    /// in the order accepted. A later record for the same slot replaces an
    /// earlier one.
    pub accepted: Vec<AcceptedRecord<V>>,
    /// **Install and persist before sending `messages` and before applying
    /// `committed`.** A snapshot received from another member: it replaces
    /// the application's state and covers every slot up to its slot. Log
    /// records at or below that slot may be dropped only once it is durable.
    pub snapshot: Option<Snapshot>,
    /// **Send only after everything above is durable.** Messages to peers, in
    /// any order; the transport may lose, delay, duplicate or reorder them.
    ///
    /// One exception is safe, and worth taking when fsyncs are slow: a
    /// leader's [`Payload::Accept`](crate::Payload::Accept) is a request,
    /// not a vote, so it may leave before the leader's own records are
    /// durable (its fsync and its followers' then overlap), provided that
    /// (1) the `Promised` record of its ballot is durable already (a member
    /// restarted without it could lead again with the same ballot and other
    /// values), and (2) its `commit_through` is lowered to a commit point
    /// reached when every record so far was durable (the leader counts its
    /// own vote at once; were it to crash before its fsync, a slot announced
    /// chosen could be chosen again with another value). The commit point
    /// taken off goes out later, in a `Commit`, once durable.
    pub messages: Vec<Message<V>>,
    /// **Apply after the above, in this order.** Newly chosen entries in
    /// ascending, gap-free slot order, each exactly once per replica lifetime
    /// (a restarted replica starts again after its snapshot's slot).
    pub committed: Vec<Committed<V>>,
    /// The leader this replica now believes in, when that changed: clients can
    /// be redirected or their requests forwarded.
    pub leadership: Option<Leadership>,
    /// Values that were proposed here but will never be placed in a slot,
    /// because this replica stopped leading before it got to them. Answer
    /// their clients with an error or forward them to the new leader.
    pub dropped_proposals: Vec<V>,
    /// Peers that need a snapshot because the slots they lack were compacted
    /// away. Answer each with
    /// [`Replica::send_snapshot`](crate::Replica::send_snapshot).
    pub snapshot_requests: Vec<NodeId>,
}

impl<V> Default for Ready<V> {
    fn default() -> Self {
        Ready {
            promised: None,
            accepted: Vec::new(),
            snapshot: None,
            messages: Vec::new(),
            committed: Vec::new(),
            leadership: None,
            dropped_proposals: Vec::new(),
            snapshot_requests: Vec::new(),
        }
    }
}

impl<V> Ready<V> {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.promised.is_none()
            && self.accepted.is_empty()
            && self.snapshot.is_none()
            && self.messages.is_empty()
            && self.committed.is_empty()
            && self.leadership.is_none()
            && self.dropped_proposals.is_empty()
            && self.snapshot_requests.is_empty()
    }
}

/// An accepted value to persist: the acceptor's vote for `entry` at `slot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedRecord<V> {
    /// The slot.
    pub slot: Slot,
    /// The ballot of the leader that proposed it.
    pub ballot: Ballot,
    /// The value.
    pub entry: Entry<V>,
}

/// A chosen entry to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed<V> {
    /// The slot.
    pub slot: Slot,
    /// The chosen value.
    pub entry: Entry<V>,
}

/// A snapshot of the application's state covering every slot up to `slot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The last slot the snapshot covers.
    pub slot: Slot,
    /// The application's bytes.
    pub data: Bytes,
}

/// Who leads, as far as this replica knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leadership {
    /// The leader, or `None` while an election is under way.
    pub leader: Option<NodeId>,
    /// The highest ballot this replica has promised.
    pub ballot: Ballot,
}

/// What a replica restarts from: exactly what it persisted from earlier
/// [`Ready`]s, plus the slot of the application snapshot it restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurableState<V> {
    /// The last persisted promise.
    pub promised: Ballot,
    /// Persisted accepted records in any order; for a slot with several, the
    /// one persisted last must come last. Records at or below
    /// `snapshot_slot` are ignored.
    pub accepted: Vec<AcceptedRecord<V>>,
    /// The last slot covered by the application's snapshot (0 for none).
    pub snapshot_slot: Slot,
}

impl<V> Default for DurableState<V> {
    fn default() -> Self {
        DurableState {
            promised: Ballot::ZERO,
            accepted: Vec::new(),
            snapshot_slot: 0,
        }
    }
}

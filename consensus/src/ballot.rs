//! Ballots, slots and member ids: the totally ordered names of the protocol.

use core::fmt;

use serde::{Deserialize, Serialize};

/// Identifies one member of the group. Any `u64` works; ids need not be dense.
pub type NodeId = u64;

/// A position in the replicated log. Slots start at 1; slot 0 means "none"
/// (for example, `applied_through == 0` means nothing has been applied).
pub type Slot = u64;

/// A ballot number `(round, node)`, ordered by round first and node id second,
/// so two proposers can never share one ballot ("Paxos Made Simple", §2.2:
/// "different proposers choose their numbers from disjoint sets").
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    /// Grows with every new campaign.
    pub round: u64,
    /// The member that owns this ballot; it alone may propose with it.
    pub node: NodeId,
}

impl Ballot {
    /// The ballot every acceptor has promised before hearing anyone; it is
    /// below every ballot a proposer can pick.
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// Creates the ballot `(round, node)`.
    pub const fn new(round: u64, node: NodeId) -> Self {
        Ballot { round, node }
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

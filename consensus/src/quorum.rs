//! Group membership and vote counting.

use crate::ballot::NodeId;

/// The most members a group may have: votes are tallied in a 64-bit mask.
pub const MAX_MEMBERS: usize = 64;

/// The fixed membership of a group: member ids in ascending order, so a
/// member's index (its bit in a [`Tally`]) is the same on every replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Members {
    ids: Vec<NodeId>,
}

impl Members {
    /// `ids` must already be validated: non-empty, unique, at most
    /// [`MAX_MEMBERS`].
    pub(crate) fn new(ids: &[NodeId]) -> Self {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        debug_assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
        debug_assert!(!ids.is_empty() && ids.len() <= MAX_MEMBERS);
        Members { ids }
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The smallest number of members that forms a quorum: any two majorities
    /// intersect, which is all Paxos needs ("Paxos Made Simple", §2.2).
    pub(crate) fn majority(&self) -> usize {
        majority_of(self.ids.len())
    }

    pub(crate) fn index_of(&self, id: NodeId) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    pub(crate) fn ids(&self) -> &[NodeId] {
        &self.ids
    }
}

/// A majority of `members`.
pub(crate) fn majority_of(members: usize) -> usize {
    members / 2 + 1
}

/// The set of members that voted for one thing (a ballot's promises, a slot's
/// acceptances), as a bit mask over member indexes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    votes: u64,
}

impl Tally {
    /// Records the vote of the member at `member_index`; returns false if that
    /// member had already voted, so duplicated messages are counted once.
    pub(crate) fn record(&mut self, member_index: usize) -> bool {
        debug_assert!(member_index < MAX_MEMBERS);
        let bit = 1u64 << member_index;
        let fresh = self.votes & bit == 0;
        self.votes |= bit;
        fresh
    }

    pub(crate) fn has(&self, member_index: usize) -> bool {
        self.votes & (1u64 << member_index) != 0
    }

    pub(crate) fn count(&self) -> usize {
        self.votes.count_ones() as usize
    }

    pub(crate) fn reached(&self, members: &Members) -> bool {
        self.count() >= members.majority()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any two sets that each hold a majority share a member.
        #[test]
        fn two_majorities_always_intersect(n in 1usize..=MAX_MEMBERS, a: u64, b: u64) {
            let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
            let (a, b) = (a & mask, b & mask);
            let quorum = majority_of(n);
            if a.count_ones() as usize >= quorum && b.count_ones() as usize >= quorum {
                prop_assert_ne!(a & b, 0);
            }
        }

        /// A tally counts each member once, however often or in what order
        /// its vote arrives, and reaches a quorum exactly at a majority.
        #[test]
        fn tally_counts_distinct_voters(n in 1usize..=9, votes in proptest::collection::vec(0usize..9, 0..40)) {
            let ids: Vec<NodeId> = (1..=n as u64).collect();
            let members = Members::new(&ids);
            let mut tally = Tally::default();
            let mut distinct = std::collections::BTreeSet::new();
            for vote in votes.into_iter().filter(|v| *v < n) {
                prop_assert_eq!(tally.record(vote), distinct.insert(vote));
                prop_assert!(tally.has(vote));
            }
            prop_assert_eq!(tally.count(), distinct.len());
            prop_assert_eq!(tally.reached(&members), distinct.len() * 2 > n);
        }
    }

    #[test]
    fn majorities_of_small_groups() {
        assert_eq!(
            [1, 2, 3, 4, 5, 7].map(majority_of),
            [1, 2, 2, 3, 3, 4],
            "majority of 1, 2, 3, 4, 5, 7 members"
        );
    }
}

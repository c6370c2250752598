//! A client request the log holds twice takes effect once.
//!
//! A follower forwards a request again when the leader it sent it to stops
//! leading (or does not answer): the first copy may still be chosen, by the
//! new leader's phase 1. Both copies then sit in the log. Applying both
//! would resurrect an acked job (a second ADDJOB) or requeue a job another
//! consumer leased (a second NACK), so every member skips the second copy.
//!
//! Which requests were applied is part of the replicated state: built only
//! from the log (the requests' ids and the entries' stamps), saved in
//! snapshots, and identical on every member. A request stays remembered
//! for at least [`DEDUP_WINDOW_MS`] of log time after its block of ids was
//! last used (and at most twice that): a copy chosen later than that would
//! be applied again.

use std::collections::{BTreeMap, VecDeque};

use consensus::NodeId;
use serde::{Deserialize, Serialize};

/// How long (log time) a request stays remembered. Forwards are retried
/// only while their request waits for a reply (seconds), and a copy left
/// in the log is chosen at the next election. But log time is the leaders'
/// clocks: a leader whose clock jumps forward moves it on at once, so the
/// window must also outlast such a jump. The simulator found a second copy
/// applied after a 60 s jump with a one-minute window (seed 9408, an acked
/// job handed out again); three minutes covers jumps of two and a half. A
/// larger forward jump of a leader's clock while a request is being
/// retried could still let its second copy take effect.
pub const DEDUP_WINDOW_MS: u64 = 180_000;

/// Request ids are remembered in blocks of this many, one bit each.
const BLOCK_IDS: u64 = 64;

/// A block of request ids of one run of one member: `(origin, incarnation,
/// request_id / BLOCK_IDS)`.
type BlockKey = (NodeId, u64, u64);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Block {
    /// Bit `id % BLOCK_IDS` is set once request `id` was applied.
    applied: u64,
    /// The last time (log time) a request of this block was applied.
    last_used_ms: u64,
}

/// The client requests applied in the last [`DEDUP_WINDOW_MS`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRequests {
    blocks: BTreeMap<BlockKey, Block>,
    /// Each block once, by when to look at it again: `(checked_ms, key)`,
    /// in time order (log time never goes back). A block whose turn comes
    /// is removed if unused for the whole window, else looked at again a
    /// window later.
    expiry: VecDeque<(u64, BlockKey)>,
}

impl AppliedRequests {
    /// Records that `request_id` of run `incarnation` of member `origin` is
    /// applied at log time `now_ms`. False if it was applied before (within
    /// the window): then the caller must skip it.
    pub fn first_time(
        &mut self,
        now_ms: u64,
        origin: NodeId,
        incarnation: u64,
        request_id: u64,
    ) -> bool {
        self.forget_before(now_ms);
        let key = (origin, incarnation, request_id / BLOCK_IDS);
        let bit = 1 << (request_id % BLOCK_IDS);
        let block = self.blocks.entry(key).or_insert_with(|| {
            self.expiry.push_back((now_ms, key));
            Block::default()
        });
        if block.applied & bit != 0 {
            return false;
        }
        block.applied |= bit;
        block.last_used_ms = now_ms;
        true
    }

    /// Forgets the blocks unused for the whole window before `now_ms`.
    fn forget_before(&mut self, now_ms: u64) {
        while let Some(&(checked_ms, key)) = self.expiry.front() {
            if checked_ms.saturating_add(DEDUP_WINDOW_MS) > now_ms {
                break;
            }
            self.expiry.pop_front();
            let last_used_ms = self.blocks.get(&key).map_or(0, |block| block.last_used_ms);
            if last_used_ms.saturating_add(DEDUP_WINDOW_MS) <= now_ms {
                self.blocks.remove(&key);
            } else {
                self.expiry.push_back((now_ms, key));
            }
        }
    }

    /// How many blocks are remembered (for tests and INFO).
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_counts_once_within_the_window_and_again_after_it() {
        let mut applied = AppliedRequests::default();
        assert!(applied.first_time(1_000, 2, 7, 5));
        assert!(
            !applied.first_time(1_500, 2, 7, 5),
            "the second copy is skipped"
        );
        assert!(applied.first_time(1_500, 2, 7, 6), "another request is not");
        assert!(
            applied.first_time(1_500, 2, 8, 5),
            "nor the same id of another run"
        );
        assert!(applied.first_time(1_500, 3, 7, 5), "nor of another member");
        // Block 0 of (2, 7) was last used at 1_500: remembered for at least
        // the window after that, and forgotten within two.
        assert!(!applied.first_time(1_500 + DEDUP_WINDOW_MS - 1, 2, 7, 6));
        assert!(applied.first_time(1_500 + 2 * DEDUP_WINDOW_MS + 1, 2, 7, 6));
    }

    #[test]
    fn busy_blocks_stay_and_idle_ones_go() {
        let mut applied = AppliedRequests::default();
        // Request ids 0, 1, 2, ... one per 100 ms for three windows: block
        // 0 (ids 0..64) is used for 6.4 s, then idle.
        let mut id = 0;
        let mut now_ms = 0;
        while now_ms < 3 * DEDUP_WINDOW_MS {
            assert!(applied.first_time(now_ms, 1, 1, id));
            id += 1;
            now_ms += 100;
        }
        // Only the blocks used within the last two windows are left (of the
        // ~29 blocks used in all, those of the first window are gone).
        let used_blocks = id / BLOCK_IDS + 1;
        let two_windows_blocks = 2 * DEDUP_WINDOW_MS / 100 / BLOCK_IDS + 2;
        assert!(applied.blocks() as u64 <= two_windows_blocks);
        assert!(
            (applied.blocks() as u64) < used_blocks,
            "nothing was forgotten"
        );
        // The newest ids are still remembered; the oldest are not.
        assert!(!applied.first_time(now_ms, 1, 1, id - 1));
        assert!(applied.first_time(now_ms, 1, 1, 0));
        // One expiry entry per block.
        assert_eq!(applied.expiry.len(), applied.blocks());
    }
}

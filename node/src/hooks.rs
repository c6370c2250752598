//! What a test harness (the simulator) can see and change in a member
//! without touching its logic: every applied entry and leadership change,
//! each peer message's fate, and the member's clock.
//!
//! A member started by `synod node` has no hooks; every hook is optional
//! and costs one `Option` check when absent.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use consensus::{Ballot, Entry, NodeId, Slot};

use crate::peer::PeerFrame;
use crate::proposal::Proposal;

/// Members report a digest of their whole job state every this many
/// applied slots (and the simulator compares members at the same slot).
pub const STATE_DIGEST_EVERY_SLOTS: Slot = 32;

/// Told what a member does, as it does it.
pub trait Observer: Send + Sync {
    /// `node` applied `entry` at `slot`, after which its log time (the
    /// state machine's "now") is `log_time_ms`. Every
    /// `STATE_DIGEST_EVERY_SLOTS` slots, `state_digest` is [`digest`] of its
    /// state machine's snapshot after applying it.
    fn applied(&self, node: NodeId, slot: Slot, applied: Applied<'_>);

    /// `node` installed a snapshot from the leader covering up to `slot`,
    /// with this state digest.
    fn installed_snapshot(&self, node: NodeId, slot: Slot, state_digest: u64);

    /// `node` now believes `leader` leads (`None`: an election is on).
    fn leadership(&self, node: NodeId, leader: Option<NodeId>, ballot: Ballot);
}

/// What a member reports after applying one slot.
#[derive(Clone, Copy, Debug)]
pub struct Applied<'a> {
    /// The chosen entry.
    pub entry: &'a Entry<Proposal>,
    /// The state machine's time after the slot: the highest stamp applied
    /// so far. A stamp can be lower than an earlier slot's (a value that a
    /// deposed leader stamped, chosen after a newer leader's), and the
    /// state machine then keeps its time.
    pub log_time_ms: u64,
    /// Every `STATE_DIGEST_EVERY_SLOTS` slots, the [`digest`] of the state
    /// machine's snapshot after the slot.
    pub state_digest: Option<u64>,
}

/// What becomes of one peer frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkVerdict {
    /// Send it now.
    Deliver,
    /// Lose it.
    Drop,
    /// Send it after this long (frames behind it are not held up).
    Delay(Duration),
}

/// Decides each peer frame's fate: message loss and delay injected in the
/// transport, since the simulated network itself never loses TCP bytes.
pub trait LinkFaults: Send + Sync {
    /// The fate of `frame`, the next from `from` to `to` (which the
    /// simulator may also write to its trace).
    fn verdict(&self, from: NodeId, to: NodeId, frame: &PeerFrame) -> LinkVerdict;
}

/// Deliberately broken variants of the member, for proving that the
/// simulator catches real bugs. Never set outside tests.
#[cfg(feature = "canaries")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeCanary {
    /// Messages and replies leave as soon as records are appended, before
    /// the fsync that makes them durable.
    AckBeforeFsync,
    /// GETJOB is answered from the member's own state and never goes
    /// through the log: the lease exists on one member only.
    LeaseNotReplicated,
    /// The consensus library's own broken variant.
    Consensus(consensus::Canary),
}

/// The hooks a member runs with.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Sees applied entries and leadership changes.
    pub observer: Option<Arc<dyn Observer>>,
    /// Decides peer frames' fates.
    pub links: Option<Arc<dyn LinkFaults>>,
    /// Added to the member's wall clock, in milliseconds (clock jumps).
    pub clock_offset_ms: Option<Arc<AtomicI64>>,
    /// A broken variant to run.
    #[cfg(feature = "canaries")]
    pub canary: Option<NodeCanary>,
}

impl Hooks {
    /// The clock offset now (0 without one).
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
            .as_ref()
            .map_or(0, |offset| offset.load(Ordering::Relaxed))
    }

    /// True when running the given canary.
    #[cfg(feature = "canaries")]
    pub fn is(&self, canary: NodeCanary) -> bool {
        self.canary == Some(canary)
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Hooks");
        out.field("observer", &self.observer.is_some())
            .field("links", &self.links.is_some())
            .field("clock_offset_ms", &self.clock_offset_ms());
        #[cfg(feature = "canaries")]
        out.field("canary", &self.canary);
        out.finish()
    }
}

/// A stable 64-bit digest (FNV-1a) of `bytes`: the same on every member and
/// every run, unlike the standard library's seeded hashers.
pub fn digest(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_fnv1a() {
        assert_eq!(digest(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(digest(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(digest(b"ab"), digest(b"ba"));
    }
}

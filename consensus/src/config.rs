//! How one replica is set up: who it is, who the group is, and its timeouts.

use crate::ballot::NodeId;
use crate::error::ConfigError;
use crate::quorum::MAX_MEMBERS;

/// Settings of one [`Replica`](crate::Replica). All durations are in ticks:
/// the caller decides how long a tick is by how often it calls
/// [`Replica::tick`](crate::Replica::tick).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This replica's id; must be one of `members`.
    pub id: NodeId,
    /// Every member of the group, this one included. An odd count from 1 to
    /// 63; order does not matter.
    pub members: Vec<NodeId>,
    /// A leader sends a `Heartbeat` this often, and re-sends `Prepare` or
    /// `Accept` messages that have gone unanswered this long.
    pub heartbeat_interval_ticks: u32,
    /// A follower that hears no leader for this many ticks, plus a random
    /// extra of up to as many again, starts an election. The randomness keeps
    /// two followers from campaigning in lockstep. A leader that hears from no
    /// quorum for this long steps down.
    pub election_timeout_ticks: u32,
    /// A follower that asked for missing slots and got no answer asks again
    /// after this many ticks.
    pub catch_up_retry_ticks: u32,
    /// How many slots a leader may have in phase 2 at once (the pipeline).
    pub pipeline_window_slots: usize,
    /// The most values a leader packs into one slot.
    pub max_batch_values: usize,
    /// The most proposals a leader holds while its pipeline is full; beyond
    /// this, [`Replica::propose`](crate::Replica::propose) answers
    /// [`ProposeError::Busy`](crate::ProposeError::Busy).
    pub max_pending_values: usize,
    /// The most chosen entries sent in one `CatchUp` message.
    pub catch_up_max_slots: usize,
    /// How far past its chosen prefix a replica stores slots. `Accept`s,
    /// catch-up entries and promised slots beyond it are ignored (as if
    /// lost), which bounds the memory a far-behind replica, or a peer
    /// sending nonsense, can make it spend on holes. Must exceed the
    /// leader's pipeline window; a lagging replica accepts again once it has
    /// caught up.
    pub accept_horizon_slots: u64,
    /// Seeds the election-timeout jitter, so runs replay exactly.
    pub seed: u64,
    /// A deliberately broken protocol variant, for proving that the test
    /// harness catches safety bugs. Never set outside tests.
    #[cfg(feature = "canaries")]
    pub canary: Option<crate::Canary>,
}

impl Config {
    /// A configuration with defaults suited to a tick of about 10 ms:
    /// heartbeats every 50 ms and elections after 300–600 ms of silence.
    pub fn new(id: NodeId, members: impl Into<Vec<NodeId>>) -> Self {
        Config {
            id,
            members: members.into(),
            heartbeat_interval_ticks: 5,
            election_timeout_ticks: 30,
            catch_up_retry_ticks: 10,
            pipeline_window_slots: 64,
            max_batch_values: 1024,
            max_pending_values: 65_536,
            catch_up_max_slots: 256,
            accept_horizon_slots: 65_536,
            seed: id,
            #[cfg(feature = "canaries")]
            canary: None,
        }
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let count = self.members.len();
        if count == 0 || count % 2 == 0 || count >= MAX_MEMBERS {
            return Err(ConfigError::MemberCount { count });
        }
        let mut sorted = self.members.clone();
        sorted.sort_unstable();
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ConfigError::DuplicateMember { id: pair[0] });
        }
        if !self.members.contains(&self.id) {
            return Err(ConfigError::NotAMember { id: self.id });
        }
        if self.heartbeat_interval_ticks == 0 || self.catch_up_retry_ticks == 0 {
            return Err(ConfigError::ZeroSetting);
        }
        if self.pipeline_window_slots == 0
            || self.max_batch_values == 0
            || self.max_pending_values == 0
            || self.catch_up_max_slots == 0
        {
            return Err(ConfigError::ZeroSetting);
        }
        if self.accept_horizon_slots <= self.pipeline_window_slots as u64 {
            return Err(ConfigError::HorizonInsideWindow {
                accept_horizon_slots: self.accept_horizon_slots,
                pipeline_window_slots: self.pipeline_window_slots,
            });
        }
        if self.election_timeout_ticks <= self.heartbeat_interval_ticks {
            return Err(ConfigError::ElectionTimeoutTooShort {
                election_timeout_ticks: self.election_timeout_ticks,
                heartbeat_interval_ticks: self.heartbeat_interval_ticks,
            });
        }
        Ok(())
    }
}
